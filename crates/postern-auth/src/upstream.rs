//! Verdicts written by a trusted MTA: `Authentication-Results` (RFC 8601).
//!
//! Which headers count: walking the header block top-down, only those above the topmost
//! `Received` line of a trusted host (the trusted MTA prepends its results above its own
//! `Received` line; everything below that line arrived with the message and is attacker
//! text), and among them only those whose authserv-id is trusted. With no trusted `Received`
//! line in the message, none counts. When several trusted headers are present (OpenDKIM and
//! OpenDMARC each write one), their results are merged, the topmost winning for SPF, ARC and
//! DMARC.
//!
//! The parser is hand-written and linear: comments are stripped (their text is kept for the
//! DMARC policy that OpenDMARC and Gmail write as `(p=reject ...)`), the value is split at
//! `;` outside quotes, and each part is read as `method=result` followed by `ptype.prop=value`
//! pairs.

use crate::headers::fields;
use crate::received::trusted_received_position;
use crate::verdict::{AuthResult, DkimCheck, DmarcPolicy};

/// The results of one header, or the merged results of the trusted headers.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Upstream {
    /// The authserv-id (of the topmost header, once merged).
    pub(crate) authserv_id: String,
    pub(crate) dkim: Vec<DkimCheck>,
    pub(crate) spf: Option<(AuthResult, Option<String>)>,
    pub(crate) arc: Option<AuthResult>,
    /// DMARC result, the `header.from` domain and the policy if the header states it.
    pub(crate) dmarc: Option<(AuthResult, Option<String>, Option<DmarcPolicy>)>,
}

/// The trusted results in `raw`, if any header counts.
pub(crate) fn trusted_results(
    raw: &[u8],
    trusted_ids: &[String],
    trusted_hosts: &[String],
) -> Option<Upstream> {
    if trusted_ids.is_empty() {
        return None;
    }
    let fields = fields(raw);
    let boundary = trusted_received_position(&fields, trusted_hosts)?;
    let mut merged: Option<Upstream> = None;
    for field in &fields[..boundary] {
        if !field.is("Authentication-Results") {
            continue;
        }
        let Some(value) = field.value.as_deref() else {
            continue;
        };
        let Some(header) = parse(value) else {
            continue;
        };
        if !trusted_ids
            .iter()
            .any(|id| id.eq_ignore_ascii_case(&header.authserv_id))
        {
            continue;
        }
        let merged = merged.get_or_insert_with(|| Upstream {
            authserv_id: header.authserv_id.clone(),
            ..Upstream::default()
        });
        merged.dkim.extend(header.dkim);
        merged.spf = merged.spf.take().or(header.spf);
        merged.arc = merged.arc.or(header.arc);
        merged.dmarc = merged.dmarc.take().or(header.dmarc);
    }
    merged
}

/// Parses one header value; `None` when it has no authserv-id.
pub(crate) fn parse(value: &str) -> Option<Upstream> {
    let (text, comments) = strip_comments(value);
    let mut parts = split_outside_quotes(&text);
    let first = parts.next()?;
    let authserv_id = unquote(first.split_whitespace().next()?).to_string();
    let mut header = Upstream {
        authserv_id,
        ..Upstream::default()
    };
    for part in parts {
        let pairs = pairs(part);
        let Some((method, result)) = pairs.first() else {
            continue;
        };
        let method = method.split('/').next().unwrap_or_default();
        let result = parse_result(result);
        let prop = |name: &str| {
            pairs
                .iter()
                .skip(1)
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| unquote(v).to_string())
        };
        match method.to_ascii_lowercase().as_str() {
            "dkim" => {
                let domain = prop("header.d").or_else(|| {
                    prop("header.i")
                        .and_then(|i| i.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
                });
                header.dkim.push(DkimCheck {
                    domain: domain.map(|d| d.to_ascii_lowercase()),
                    selector: prop("header.s"),
                    result,
                    aligned: false,
                });
            }
            "spf" if header.spf.is_none() => {
                let domain = prop("smtp.mailfrom")
                    .map(|m| m.rsplit_once('@').map_or(m.clone(), |(_, d)| d.to_string()))
                    .or_else(|| prop("smtp.helo"));
                header.spf = Some((result, domain.map(|d| d.to_ascii_lowercase())));
            }
            "arc" if header.arc.is_none() => header.arc = Some(result),
            "dmarc" if header.dmarc.is_none() => {
                let from = prop("header.from").map(|d| d.to_ascii_lowercase());
                let policy = prop("policy.dmarc")
                    .or_else(|| prop("polrec.p"))
                    .and_then(|p| policy_word(&p))
                    .or_else(|| policy_in_comments(&comments));
                header.dmarc = Some((result, from, policy));
            }
            _ => {}
        }
    }
    Some(header)
}

fn parse_result(word: &str) -> AuthResult {
    match unquote(word).to_ascii_lowercase().as_str() {
        "pass" => AuthResult::Pass,
        "fail" | "hardfail" => AuthResult::Fail,
        "softfail" => AuthResult::SoftFail,
        "neutral" | "policy" => AuthResult::Neutral,
        "temperror" => AuthResult::TempError,
        "permerror" => AuthResult::PermError,
        // `none`, `bestguesspass` and anything unknown claim nothing.
        _ => AuthResult::None,
    }
}

fn policy_word(word: &str) -> Option<DmarcPolicy> {
    match word.to_ascii_lowercase().as_str() {
        "none" => Some(DmarcPolicy::None),
        "quarantine" => Some(DmarcPolicy::Quarantine),
        "reject" => Some(DmarcPolicy::Reject),
        _ => None,
    }
}

/// `p=reject` or `policy=reject` inside a comment (OpenDMARC, Gmail, rspamd).
fn policy_in_comments(comments: &str) -> Option<DmarcPolicy> {
    comments.split_whitespace().find_map(|word| {
        let (key, value) = word.split_once('=')?;
        let key = key.to_ascii_lowercase();
        (key == "p" || key == "policy")
            .then(|| policy_word(value.trim_end_matches([')', ';', ','])))
            .flatten()
    })
}

/// The value without comments, and the comments' text (space-separated).
fn strip_comments(value: &str) -> (String, String) {
    let mut text = String::with_capacity(value.len());
    let mut comments = String::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for ch in value.chars() {
        if escaped {
            escaped = false;
            if depth > 0 {
                comments.push(ch);
            } else {
                text.push(ch);
            }
            continue;
        }
        match ch {
            '\\' => escaped = true,
            '"' if depth == 0 => {
                quoted = !quoted;
                text.push(ch);
            }
            '(' if !quoted => {
                depth += 1;
                comments.push(' ');
                text.push(' ');
            }
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth > 0 => comments.push(ch),
            _ => text.push(ch),
        }
    }
    (text, comments)
}

fn split_outside_quotes(text: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    text.split(move |ch| {
        if ch == '"' {
            quoted = !quoted;
        }
        ch == ';' && !quoted
    })
}

/// `key=value` pairs of one resinfo, tolerating spaces around `=`.
fn pairs(part: &str) -> Vec<(String, String)> {
    let normalised = normalise_equals(part);
    normalised
        .split_whitespace()
        .filter_map(|word| {
            let (key, value) = word.split_once('=')?;
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

/// Removes whitespace around `=` outside quotes, so `dkim = pass` reads as `dkim=pass`.
fn normalise_equals(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut quoted = false;
    let mut chars = part.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '"' {
            quoted = !quoted;
        }
        if !quoted && ch == '=' {
            while out.ends_with(char::is_whitespace) {
                out.pop();
            }
            out.push('=');
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            continue;
        }
        if quoted && ch.is_whitespace() {
            // Keep a quoted value one word; spaces inside it are not separators.
            out.push('\u{a0}');
            continue;
        }
        out.push(ch);
    }
    out
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
