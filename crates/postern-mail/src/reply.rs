//! The text a person wrote, exactly as GitLab's `ReplyParser` produces it
//! (<https://gitlab.com/gitlab-org/gitlab/-/blob/master/lib/gitlab/email/reply_parser.rb>).
//!
//! Steps: choose the part (first `text/plain`, else first `text/html`, else the whole body),
//! decode it to UTF-8, give up on bodies that show a failed MIME parse, convert HTML to Markdown,
//! trim quotes and signatures (optional), remove **one** trailing space or tab per line (GitLab's
//! quirk, kept for identical output), and treat a body of only blank or quoted lines as empty.

use mail_parser::{Message, MessagePart, PartType};

use crate::attachments::{MAX_NESTING, file_name};
use crate::limits::MAX_TRIM_BYTES;
use crate::message::{Email, content_type_of};
use crate::{html, trim};

/// The three switches of GitLab's `ReplyParser.new(message, …)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyOptions {
    /// Cut quotes, signatures and embedded mails (default true).
    pub trim_reply: bool,
    /// Also return the part that trimming cut away.
    pub append_reply: bool,
    /// Keep a body made only of `>` quotes (forwarded without new content).
    pub allow_only_quotes: bool,
    /// Which trimmer `trim_reply` uses (default GitLab's, so `parse_reply` is GitLab's parser).
    pub trim_mode: trim::TrimMode,
}

impl Default for ReplyOptions {
    fn default() -> Self {
        ReplyOptions {
            trim_reply: true,
            append_reply: false,
            allow_only_quotes: false,
            trim_mode: trim::TrimMode::Gitlab,
        }
    }
}

/// What the reply parser returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The reply text.
    pub body: String,
    /// The part trimming cut away (`None` when trimming is off). GitLab returns it only with
    /// `append_reply`; it is kept here in every trimming mode so callers can show it.
    pub elided: Option<String>,
}

/// Options GitLab refuses to combine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// `allow_only_quotes` with `trim_reply`: trimming removes quotes, so the pair is meaningless.
    OnlyQuotesWithTrim,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // GitLab's ArgumentError text.
            ReplyError::OnlyQuotesWithTrim => {
                f.write_str("Cannot use `allow_only_quotes: true` with `trim_reply: true`")
            }
        }
    }
}

impl std::error::Error for ReplyError {}

/// Runs GitLab's reply parser over `email`.
pub fn parse_reply(email: &Email<'_>, options: ReplyOptions) -> Result<Reply, ReplyError> {
    check_options(options)?;
    let selected = select_body(email.inner());
    Ok(finish_reply(&selected, options))
}

/// The text part of `email` the reply is read from, decoded and converted (the first half of
/// [`parse_reply`]); [`finish_reply`] does the rest for each set of options.
pub fn selected_body(email: &Email<'_>) -> String {
    select_body(email.inner())
}

/// Refuses the option pairs GitLab refuses.
pub fn check_options(options: ReplyOptions) -> Result<(), ReplyError> {
    if options.allow_only_quotes && options.trim_reply {
        return Err(ReplyError::OnlyQuotesWithTrim);
    }
    Ok(())
}

/// The trimming and clean-up half of the parser, for a body already chosen and converted.
pub fn finish_reply(selected: &str, options: ReplyOptions) -> Reply {
    // One trimming pass gives both halves; `trim(text)` is `trim_split(text).0`.
    let (body, elided) = if options.trim_reply {
        let (kept, cut) = trim_capped(selected, options.trim_mode);
        (kept, Some(cut))
    } else {
        (selected.to_owned(), None)
    };
    let body = remove_one_trailing_blank(&body);
    let only_quotes_or_blank = body.split_inclusive('\n').all(|line| {
        line.trim().is_empty() || (!options.allow_only_quotes && line.starts_with('>'))
    });
    if only_quotes_or_blank {
        // GitLab returns a plain "" here even in append mode; what was cut is still reported.
        return Reply {
            body: String::new(),
            elided,
        };
    }
    // Only the body loses its trailing blanks; GitLab returns the elided part as trimmed.
    Reply { body, elided }
}

/// The trimmer on the first [`MAX_TRIM_BYTES`] of `text` (cut at a line end): the rest is part
/// of what was cut. When the trimmer cut nothing from that first part, the person's own text
/// goes on past the cap, and the kept text ends with [`trim_cut_notice`] to say so.
fn trim_capped(text: &str, mode: trim::TrimMode) -> (String, String) {
    if text.len() <= MAX_TRIM_BYTES {
        return trim::trim_reply_split(text, mode);
    }
    let (head, tail) = text.split_at(crate::limits::cut_point(text, MAX_TRIM_BYTES, b'\n'));
    let (mut kept, mut cut) = trim::trim_reply_split(head, mode);
    if cut.is_empty() {
        if !kept.is_empty() {
            kept.push_str("\n\n");
        }
        kept.push_str(&trim_cut_notice());
    }
    let tail = tail.trim();
    if !tail.is_empty() {
        if !cut.is_empty() {
            cut.push('\n');
        }
        cut.push_str(tail);
    }
    (kept, cut)
}

/// The line that ends a reply whose text went on past [`MAX_TRIM_BYTES`].
pub fn trim_cut_notice() -> String {
    format!("[Text cut: only its first {MAX_TRIM_BYTES} bytes were read.]")
}

/// GitLab's `body.gsub(/[ \t]$/, '')`: one space or tab before each line end and at the very end.
fn remove_one_trailing_blank(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (content, newline) = match line.strip_suffix('\n') {
            Some(content) => (content, "\n"),
            None => (line, ""),
        };
        let content = content
            .strip_suffix(' ')
            .or_else(|| content.strip_suffix('\t'))
            .unwrap_or(content);
        out.push_str(content);
        out.push_str(newline);
    }
    out
}

/// Part choice, decoding, the failed-parse guard and HTML conversion (`select_body`).
pub fn select_body(message: &Message<'_>) -> String {
    let root = message.root_part();
    let chosen = if matches!(root.body, PartType::Multipart(_)) {
        first_leaf(message, "text/plain")
            .or_else(|| first_leaf(message, "text/html"))
            .map(Chosen::Part)
            .unwrap_or(Chosen::WholeBody)
    } else {
        Chosen::Part(root)
    };
    let (decoded, is_html) = match chosen {
        Chosen::Part(part) => (
            normalise_newlines(&part_text(part)),
            content_type_of(part).is_some_and(|ct| ct.contains("text/html")),
        ),
        Chosen::WholeBody => {
            // A multipart without text: GitLab decodes the raw multipart body, which then
            // contains part headers and fails the guard below.
            let raw = message.raw_message();
            let start = (root.offset_body as usize).min(raw.len());
            let end = (root.offset_end as usize).clamp(start, raw.len());
            (
                normalise_newlines(&String::from_utf8_lossy(&raw[start..end])),
                false,
            )
        }
    };
    if looks_like_failed_parse(&decoded) {
        return String::new();
    }
    if is_html {
        html::html_to_markdown(&decoded)
    } else {
        decoded
    }
}

enum Chosen<'m, 'raw> {
    Part(&'m MessagePart<'raw>),
    WholeBody,
}

/// GitLab's guard: these phrases mean the MIME structure was not understood. (Quirk kept: a reply
/// that literally mentions `text/plain` comes out empty in GitLab too.)
fn looks_like_failed_parse(text: &str) -> bool {
    ["Content-Type:", "multipart/alternative", "text/plain"]
        .iter()
        .any(|phrase| text.contains(phrase))
}

/// The first non-attachment leaf of the given type, depth-first in MIME order, not entering
/// forwarded messages (the `mail` gem's `text_part` / `html_part`).
fn first_leaf<'m, 'raw>(message: &'m Message<'raw>, wanted: &str) -> Option<&'m MessagePart<'raw>> {
    let mut stack: Vec<(u32, usize)> = vec![(0, 0)];
    while let Some((id, depth)) = stack.pop() {
        let part = message.parts.get(id as usize)?;
        match &part.body {
            PartType::Multipart(children) => {
                if depth < MAX_NESTING {
                    stack.extend(children.iter().rev().map(|child| (*child, depth + 1)));
                }
            }
            PartType::Message(_) => {}
            _ => {
                if content_type_of(part).as_deref() == Some(wanted) && file_name(part).is_none() {
                    return Some(part);
                }
            }
        }
    }
    None
}

/// A part's content as text, already converted from its charset by mail-parser.
fn part_text(part: &MessagePart<'_>) -> String {
    match &part.body {
        PartType::Text(text) | PartType::Html(text) => text.to_string(),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        PartType::Message(_) | PartType::Multipart(_) => String::new(),
    }
}

/// CRLF and lone CR → LF, as the `mail` gem's decoders and the trimmer do.
fn normalise_newlines(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_owned();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod capped_tests {
    use super::*;

    #[test]
    fn text_past_the_cap_is_cut_with_a_notice_when_nothing_was_trimmed() {
        let text = "my own words\n".repeat(MAX_TRIM_BYTES / 13 + 100);
        let reply = finish_reply(&text, ReplyOptions::default());
        assert!(
            reply
                .body
                .ends_with(&format!("my own words\n\n{}", trim_cut_notice()))
        );
        assert!(reply.body.len() <= MAX_TRIM_BYTES + trim_cut_notice().len() + 2);
        assert!(
            reply
                .elided
                .is_some_and(|cut| cut.starts_with("my own words"))
        );
    }

    #[test]
    fn a_quote_inside_the_cap_is_trimmed_and_the_rest_elided() {
        let text = format!(
            "Thanks!\n\nOn Mon, Bob wrote:\n{}",
            "> quoted history\n".repeat(MAX_TRIM_BYTES / 17 + 100)
        );
        let reply = finish_reply(&text, ReplyOptions::default());
        assert_eq!(reply.body, "Thanks!");
        let elided = reply.elided.unwrap_or_default();
        assert!(elided.starts_with("On Mon, Bob wrote:"));
        assert!(elided.ends_with("> quoted history"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_trailing_blank_is_removed() {
        assert_eq!(remove_one_trailing_blank("a  \nb\t\nc "), "a \nb\nc");
    }

    #[test]
    fn mentioning_text_plain_empties_the_body() {
        let raw = b"From: a@b.c\r\nContent-Type: text/plain\r\n\r\nSet it to text/plain please\r\n";
        let reply =
            parse_reply(&Email::parse(raw), ReplyOptions::default()).expect("valid options");
        assert_eq!(reply.body, "");
    }

    #[test]
    fn only_quotes_is_empty_unless_allowed() {
        let raw = b"From: a@b.c\r\n\r\n> quoted\r\n>more\r\n";
        let email = Email::parse(raw);
        let trimmed = ReplyOptions {
            trim_reply: false,
            ..ReplyOptions::default()
        };
        assert_eq!(parse_reply(&email, trimmed).expect("valid").body, "");
        let allowed = ReplyOptions {
            trim_reply: false,
            allow_only_quotes: true,
            ..ReplyOptions::default()
        };
        assert_eq!(
            parse_reply(&email, allowed).expect("valid").body,
            "> quoted\n>more\n"
        );
    }

    #[test]
    fn only_quotes_with_trim_is_refused() {
        let options = ReplyOptions {
            allow_only_quotes: true,
            ..ReplyOptions::default()
        };
        let error = parse_reply(&Email::parse(b"From: a@b.c\r\n\r\nx"), options);
        assert_eq!(error, Err(ReplyError::OnlyQuotesWithTrim));
    }
}
