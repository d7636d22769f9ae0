//! `EmailReplyTrimmer.preprocess!`: clean-ups applied to the whole text before it is split into
//! lines, in the gem's order.

use super::matchers::{DATE_SOMEONE_WROTE, SOMEONE_WROTE_ON_DATE, date_someone_email_find};
use super::on_date;
use super::ruby::{is_blank, prefix_lines, rx, rx_ci, strip};
use regex::{Captures, Regex};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

/// `/\A-----BEGIN PGP SIGNED MESSAGE-----\n(?:Hash: \w+)?\s+/i`
static PGP_SIGNED: LazyLock<Regex> =
    LazyLock::new(|| rx_ci(r"(?i)\A-----BEGIN PGP SIGNED MESSAGE-----\n(?:Hash: [%W%]+)?[%S%]+"));

/// `/^-----BEGIN PGP SIGNATURE-----$[\s\S]+^-----END PGP SIGNATURE-----/`
static PGP_SIGNATURE: LazyLock<Regex> =
    LazyLock::new(|| rx(r"(?m)^-----BEGIN PGP SIGNATURE-----$(?s:.)+^-----END PGP SIGNATURE-----"));

/// `/^Unsubscribe: .+@.+(\n.+http:.+)?\s*\z/i`
static UNSUBSCRIBE: LazyLock<Regex> =
    LazyLock::new(|| rx_ci(r"(?im)^Unsubscribe: .+@.+(?:\n.+http:.+)?[%S%]*\z"));

/// `/^.*>{5} "[^"\n]+" == .+ writes:/` (alias-style quote marker).
static ALIAS_MARKER: LazyLock<Regex> =
    LazyLock::new(|| rx(r#"(?m)^.*>{5} "[^"\n]+" == .+ writes:"#));

/// `/^>{4,}[[:blank:]]*$\n([\s\S]+?)\n^<{4,}[[:blank:]]*$/`
static ENCLOSED_QUAD: LazyLock<Regex> =
    LazyLock::new(|| rx(r"(?m)^>{4,}[%BLANK%]*$\n((?s:.)+?)\n^<{4,}[%BLANK%]*$"));

/// `/\n+[[:space:]]*/`
static NEWLINES: LazyLock<Regex> = LazyLock::new(|| rx(r"\n+\s*"));

/// PGP armour removed as `preprocess!` removes it (the postern mode's only shared clean-up).
pub(super) fn remove_pgp_armour(text: &str) -> String {
    let signed = PGP_SIGNED.replace(text, "");
    if signed.contains("-----BEGIN PGP SIGNATURE-----") {
        PGP_SIGNATURE.replace_all(&signed, "").into_owned()
    } else {
        signed.into_owned()
    }
}

/// `preprocess!(text)`, returning the new text.
pub(super) fn preprocess(text: &str) -> String {
    // normalize line endings
    let text = text.replace("\r\n", "\n");

    // remove PGP markers
    let text = PGP_SIGNED.replace(&text, "");
    // (Each `contains` below is a literal that every match holds: it only skips a scan.)
    let text = if text.contains("-----BEGIN PGP SIGNATURE-----") {
        PGP_SIGNATURE.replace_all(&text, "")
    } else {
        text
    };

    // remove unsubscribe links
    let text = UNSUBSCRIBE.replace_all(&text, "");

    // remove alias-style quotes marker
    let text = if text.contains("\" == ") {
        ALIAS_MARKER.replace_all(&text, "")
    } else {
        text
    };

    // change enclosed-style quotes format
    let tripled = enclosed_triple(&text);
    let text = if tripled.contains("<<<<") {
        ENCLOSED_QUAD.replace_all(&tripled, |c: &Captures<'_>| prefix_lines(&c[1]))
    } else {
        Cow::Borrowed(tripled.as_str())
    };

    // fix all quotes formats
    let text = fix_quote_formats(&text);

    // fix embedded email markers that might span over multiple lines
    let mut text = on_date::gsub_all(text, collapse);
    for (re, needle) in SOMEONE_WROTE_ON_DATE.iter().zip(["wrote", "schrieb"]) {
        // A literal every match contains: skips a whole-text scan in the common case.
        if text.contains(needle) {
            text = re
                .replace_all(&text, |c: &Captures<'_>| collapse(&c[0]))
                .into_owned();
        }
    }
    for (re, needle) in DATE_SOMEONE_WROTE
        .iter()
        .zip(["написал:", "napisał(a):", "пише:"])
    {
        if text.contains(needle) {
            text = re
                .replace_all(&text, |c: &Captures<'_>| collapse(&c[0]))
                .into_owned();
        }
    }
    if text.contains('@') {
        text = date_someone_email_gsub(&text);
    }

    // remove leading/trailing whitespaces
    strip(&text).to_owned()
}

/// `text.gsub!(/^((?:[[:blank:]]*[[:alpha:]]*[>|])+)/) { $1.gsub(/([[:alpha:]]+>|\|)/, ">") }`,
/// by hand: it touches every quoted line, and a regex replacement per line was a large part of
/// the trimmer's time on long quote chains.
///
/// The outer group is deterministic (blanks, letters and `[>|]` are disjoint classes, so no
/// backtracking can help), hence: repeat "blanks, letters, one `>` or `|`" as long as it
/// succeeds. The inner `gsub` turns a run of letters followed by `>` into `>`, and `|` into `>`.
fn fix_quote_formats(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let prefix_len = quote_prefix_len(line);
        let prefix = &line[..prefix_len];
        if prefix.contains(|c: char| c == '|' || c.is_alphabetic()) {
            rewrite_quote_prefix(prefix, &mut out);
        } else {
            out.push_str(prefix);
        }
        out.push_str(&line[prefix_len..]);
    }
    out
}

/// Length of the match of `^(?:[[:blank:]]*[[:alpha:]]*[>|])+` at the start of `line` (0 if
/// none).
fn quote_prefix_len(line: &str) -> usize {
    let mut matched = 0;
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.next_if(|&(_, c)| is_blank(c)).is_some() {}
        while chars.next_if(|&(_, c)| c.is_alphabetic()).is_some() {}
        match chars.next() {
            Some((i, c @ ('>' | '|'))) => matched = i + c.len_utf8(),
            _ => return matched,
        }
    }
}

/// `$1.gsub(/([[:alpha:]]+>|\|)/, ">")`, appended to `out`.
fn rewrite_quote_prefix(prefix: &str, out: &mut String) {
    let mut rest = prefix;
    while let Some(c) = rest.chars().next() {
        if c.is_alphabetic() {
            let run = rest
                .find(|c: char| !c.is_alphabetic())
                .unwrap_or(rest.len());
            if rest[run..].starts_with('>') {
                out.push('>');
                rest = &rest[run + 1..];
            } else {
                out.push_str(&rest[..run]);
                rest = &rest[run..];
            }
        } else {
            out.push(if c == '|' { '>' } else { c });
            rest = &rest[c.len_utf8()..];
        }
    }
}

/// The `gsub!` block for embedded markers: `m.count("\n") > 4 ? m : m.gsub(/\n+[[:space:]]*/, " ")`.
fn collapse(m: &str) -> String {
    if m.bytes().filter(|&b| b == b'\n').count() > 4 {
        m.to_owned()
    } else {
        NEWLINES.replace_all(m, " ").into_owned()
    }
}

/// `text.gsub!(DATE_SOMEONE_EMAIL_REGEX) { collapse }` (with the look-ahead).
fn date_someone_email_gsub(text: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    let mut pos = 0;
    while pos <= text.len() {
        let Some((s, e)) = date_someone_email_find(text, pos) else {
            break;
        };
        out.push_str(&text[last..s]);
        out.push_str(&collapse(&text[s..e]));
        last = e;
        // The match is never empty (it holds at least `\d{4}` and `<…@….…>`).
        pos = e.max(s + 1);
    }
    if last == 0 {
        return text.to_owned();
    }
    out.push_str(&text[last..]);
    out
}

/// `text.gsub!(/^>>> ?(.+) ?>>>$\n([\s\S]+?)\n^<<< ?\1 ?<<<$/) { $2.gsub(/^/, "> ") }`.
///
/// The back-reference `\1` has no equivalent in the `regex` crate, so this follows Ruby's
/// backtracking by hand:
/// * an opening line is `>>>` + `(.+)` + `>>>`, with an optional space on either side of the
///   group; the candidates for `\1` are tried in Ruby's order (leading space consumed first;
///   then the longest group first, i.e. the trailing space inside it first);
/// * for a candidate, the lazy body ends at the *first* later line that is a closing line
///   `<<<` + ` ?` + `\1` + ` ?` + `<<<`, and the body (`[\s\S]+?`) must hold at least one
///   character, so the closing line starts two bytes or more after the opening line's newline;
/// * like `gsub`, the scan resumes after the closing line.
///
/// Closing lines are indexed by the group values they accept, so the scan stays linear-ish on
/// long texts with many unmatched openers.
fn enclosed_triple(text: &str) -> String {
    if !text.contains("<<<") || !text.contains(">>>") {
        return text.to_owned();
    }
    // (start, end) of every line, end excluding the newline.
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            lines.push((start, i));
            start = i + 1;
        }
    }
    lines.push((start, text.len()));

    // group value → indexes of the closing lines that accept it (ascending).
    let mut closers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (idx, &(s, e)) in lines.iter().enumerate() {
        let line = &text[s..e];
        if let Some(inner) = line.strip_prefix("<<<").and_then(|l| l.strip_suffix("<<<")) {
            let mut keys: Vec<&str> = vec![inner];
            if let Some(k) = inner.strip_prefix(' ') {
                keys.push(k);
            }
            if let Some(k) = inner.strip_suffix(' ') {
                keys.push(k);
            }
            if let Some(k) = inner.strip_prefix(' ').and_then(|k| k.strip_suffix(' ')) {
                keys.push(k);
            }
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                closers.entry(k).or_default().push(idx);
            }
        }
    }
    if closers.is_empty() {
        return text.to_owned();
    }

    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut idx = 0;
    while idx < lines.len() {
        let (s, e) = lines[idx];
        let found = opener_candidates(&text[s..e])
            .into_iter()
            .find_map(|group| {
                // The body starts after the opening line's newline (which must exist).
                let body_start = e + 1;
                if e >= text.len() {
                    return None;
                }
                let list = closers.get(group)?;
                let first = list.partition_point(|&c| lines[c].0 < body_start + 2);
                list.get(first).map(|&c| (c, body_start))
            });
        match found {
            Some((close, body_start)) => {
                let (close_start, close_end) = lines[close];
                out.push_str(&text[last..s]);
                // The body is everything up to the newline before the closing line.
                out.push_str(&prefix_lines(&text[body_start..close_start - 1]));
                last = close_end;
                idx = close + 1;
            }
            None => idx += 1,
        }
    }
    if last == 0 {
        return text.to_owned();
    }
    out.push_str(&text[last..]);
    out
}

/// The values `(.+)` can take in `^>>> ?(.+) ?>>>$` for one line, in Ruby's try order.
fn opener_candidates(line: &str) -> Vec<&str> {
    let Some(rest) = line.strip_prefix(">>>") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // ` ?` is greedy: with the space first, then without.
    let leads: &[usize] = if rest.starts_with(' ') { &[1, 0] } else { &[0] };
    for &lead in leads {
        let after = &rest[lead..];
        let Some(body) = after.strip_suffix(">>>") else {
            continue;
        };
        // `(.+)` greedy, then ` ?`: the group keeps a trailing space first, then gives it up.
        let mut cands = vec![body];
        if let Some(b) = body.strip_suffix(' ') {
            cands.push(b);
        }
        for c in cands {
            if !c.is_empty() && !c.contains('\n') {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statics_compile() {
        for re in [
            &*PGP_SIGNED,
            &*PGP_SIGNATURE,
            &*UNSUBSCRIBE,
            &*ALIAS_MARKER,
            &*ENCLOSED_QUAD,
            &*NEWLINES,
        ] {
            assert!(!re.as_str().is_empty());
        }
    }

    #[test]
    fn enclosed_quotes() {
        assert_eq!(
            enclosed_triple(">>> Bob >>>\nhi\nthere\n<<< Bob <<<\nok"),
            "> hi\n> there\nok"
        );
        assert_eq!(
            enclosed_triple(">>>Bob>>>\nhi\n<<<Al<<<"),
            ">>>Bob>>>\nhi\n<<<Al<<<"
        );
        // The body needs one character: an empty line alone is not enough.
        assert_eq!(enclosed_triple(">>>a>>>\n\n<<<a<<<"), ">>>a>>>\n\n<<<a<<<");
        // Expected values are what the gem's `preprocess!` returns.
        assert_eq!(preprocess(">>>>\nhi\n\n<<<<\nafter"), "> hi\n\nafter");
    }

    #[test]
    fn quote_formats() {
        assert_eq!(preprocess("Bob> hi\n| x"), "> hi\n> x");
    }

    #[test]
    fn pgp_and_unsubscribe() {
        assert_eq!(
            preprocess(
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\n\nhello\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----"
            ),
            "hello"
        );
        assert_eq!(preprocess("hello\nUnsubscribe: a@b.c\n"), "hello");
    }
}
