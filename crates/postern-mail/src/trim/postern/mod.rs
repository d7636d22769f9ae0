//! The `postern` trimming mode: keep every line the sender newly wrote, byte for byte; drop
//! the quoted thread and the signature; re-flow nothing.
//!
//! It differs from the GitLab mode (`super::run`) where GitLab's trimmer is known to be wrong
//! (`testdata/reply-complaints/` has one case per complaint):
//!
//! * **Delimiters look at context.** A `---`, `===`, `***` … line directly under a line of
//!   text is a setext heading's underline; elsewhere it only starts a signature when what
//!   follows is short and reads like one (no prose). `--` between two lines of `grep -C`
//!   output is grep's separator; elsewhere `--` and `-- ` start a signature.
//! * **Some blocks are opaque.** Fenced code, indented code, diff hunks (sized by their
//!   `@@` header, so blank context lines stay inside) and shell transcripts are never cut.
//! * **History is recognised by data**, not by shape alone: attribution lines ("On … wrote:")
//!   and Outlook-style header blocks in many languages ([`super::tables`]).
//! * **A forward is content.** When a forward marker comes before any history, the forward
//!   is kept whole.
//! * **Interleaved answers survive**, with the quoted lines they answer; the attribution line
//!   and the quote after the last answer go. A `>` block with no attribution that the sender
//!   introduces ("The log says:") is their own quote and stays.
//!
//! Cost: one pass to classify lines (each look-ahead is capped by a named constant), one pass
//! to find where history starts, one pass to build the result: linear in the input.

use super::preprocess::remove_pgp_armour;
use std::collections::HashSet;

use super::ruby::is_blank;
use super::tables::{
    ATTRIBUTION_LEADS, ATTRIBUTION_VERBS, FOOTERS, FORWARD_PHRASES, FORWARD_SUBJECT_PREFIXES,
    HEADER_LABELS, ORIGINAL_PHRASES, Role,
};

mod answers;
mod classify;
mod history;

use answers::*;
use classify::*;
use history::*;

/// Longest line looked at as an attribution line (longer lines are prose).
const MAX_ATTRIBUTION_CHARS: usize = 400;
/// Longest header-block label line prefix searched for a label.
const MAX_LABEL_BYTES: usize = 40;
/// Most lines of an Outlook-style header block looked at after its first line.
const MAX_HEADER_BLOCK_LINES: usize = 12;
/// Fewest header lines that make a block (GitLab's trimmer uses the same figure).
const MIN_HEADER_BLOCK_LINES: usize = 3;
/// Most non-blank lines a signature can have after its delimiter.
const MAX_SIGNATURE_LINES: usize = 10;
/// Longest tail of a mobile footer ("Sent from my <tail>").
pub(super) const MAX_FOOTER_TAIL_CHARS: usize = 30;
/// Longest tail of a footer in the run of footers that ends a mail.
const MAX_TRAILING_FOOTER_CHARS: usize = 80;
/// Longest line looked at as a footer.
const MAX_FOOTER_LINE_BYTES: usize = 300;
/// Most words in a footer's tail.
const MAX_FOOTER_TAIL_WORDS: usize = 5;
/// Words from which a line ending in sentence punctuation counts as prose.
const MIN_PROSE_WORDS: usize = 4;
/// Most bytes of the thread's earlier texts looked at.
const MAX_THREAD_BYTES: usize = 1 << 20;
/// Most lines of a diff hunk body followed from its `@@` header (a larger count in a header
/// is clamped, so a forged header cannot make the rest of a mail opaque beyond this).
const MAX_HUNK_LINES: usize = 100_000;

/// What one line is, for this mode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Empty,
    /// The sender's text; never cut by shape (code, diff, transcript, REPL).
    Opaque,
    Text,
    /// A `>` quoted line.
    Quote,
}

/// Where the quoted history (or a forward) starts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Event {
    /// An attribution line ("On … wrote:"), `lines` long (2 when wrapped by the client).
    Attribution { lines: usize },
    /// A header block, an "Original Message" marker or an Outlook underscore rule.
    Header,
    /// A forward marker or a header block whose subject says forward.
    Forward,
}

/// `trim_split` in postern mode: (kept text, what was cut).
pub(super) fn run(text: &str, split: bool) -> (String, String) {
    run_in_thread(text, split, &Thread::default())
}

/// The thread's earlier texts (what the tracker sent, e.g. the notification being answered),
/// as a set of their non-blank lines: a quote made of them is history whatever introduces it.
#[derive(Default)]
pub(super) struct Thread<'a> {
    lines: HashSet<&'a str>,
}

impl<'a> Thread<'a> {
    /// At most [`MAX_THREAD_BYTES`] of the texts are read (the newest first is the caller's
    /// order); the rest is ignored, which only makes the rule apply less.
    pub(super) fn new(texts: &[&'a str]) -> Thread<'a> {
        let mut lines = HashSet::new();
        let mut budget = MAX_THREAD_BYTES;
        for text in texts {
            for line in text.lines() {
                if budget < line.len() {
                    return Thread { lines };
                }
                budget -= line.len();
                let line = line.trim_matches(is_blank);
                if !line.is_empty() {
                    lines.insert(line);
                }
            }
        }
        Thread { lines }
    }

    /// Every non-blank line of the quote `block` (its `>` markers removed) is a thread line.
    fn holds(&self, block: &[&str]) -> bool {
        if self.lines.is_empty() {
            return false;
        }
        let mut any = false;
        for line in block {
            let text = line.trim_start_matches(|c: char| c == '>' || is_blank(c));
            let text = text.trim_end_matches(is_blank);
            if text.is_empty() {
                continue;
            }
            if !self.lines.contains(text) {
                return false;
            }
            any = true;
        }
        any
    }
}

/// [`run`] knowing the thread's earlier texts.
pub(super) fn run_in_thread(text: &str, split: bool, thread: &Thread<'_>) -> (String, String) {
    if super::ruby::is_blank_text(text) {
        return (String::new(), String::new());
    }
    let text = normalise(text);
    let lines: Vec<&str> = text.split('\n').collect();
    let kinds = classify(&lines);

    let mut keep = vec![false; lines.len()];
    // A forward's own signature and footers are part of the forward.
    let mut signature_end = lines.len();
    match find_event(&lines, &kinds) {
        None => {
            keep_range(&mut keep, 0, lines.len());
            drop_unintroduced_trailing_quote(&lines, &kinds, &mut keep, thread, lines.len());
        }
        Some((at, Event::Forward)) => {
            keep_range(&mut keep, 0, lines.len());
            signature_end = at;
        }
        Some((at, Event::Header)) => {
            keep_range(&mut keep, 0, at);
            drop_unintroduced_trailing_quote(&lines, &kinds, &mut keep, thread, at);
        }
        Some((at, Event::Attribution { lines: len })) => {
            keep_range(&mut keep, 0, at);
            let answered = keep_answers(&lines, &kinds, &mut keep, at, at + len);
            if !answered {
                drop_unintroduced_trailing_quote(&lines, &kinds, &mut keep, thread, at);
            }
        }
    }
    remove_signature(&lines, &kinds, &mut keep, signature_end);

    let kept = join_selected(&lines, &keep, true);
    let cut = if split {
        join_selected(&lines, &keep, false)
    } else {
        String::new()
    };
    (
        strip_blank_lines(&kept).to_owned(),
        strip_blank_lines(&cut).to_owned(),
    )
}

/// What Ruby's `strip` removes (ASCII whitespace and NUL).
const STRIPPED: [char; 7] = ['\0', '\t', '\n', '\x0B', '\x0C', '\r', ' '];

/// Leading blank lines and trailing whitespace removed, like Ruby's `strip` but keeping the
/// indentation of the first kept line (an indented code block may open a reply).
fn strip_blank_lines(text: &str) -> &str {
    let text = strip_end(text);
    let Some(first) = text.find(|c: char| !STRIPPED.contains(&c)) else {
        return "";
    };
    let line_start = text[..first].rfind('\n').map_or(0, |i| i + 1);
    &text[line_start..]
}

fn strip_end(text: &str) -> &str {
    text.trim_end_matches(STRIPPED)
}

/// Line ends to LF and PGP armour removed (the GitLab mode's first clean-ups; the others
/// rewrite the sender's text, e.g. a Markdown table row `| a |` into a quote).
fn normalise(text: &str) -> String {
    let text = if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_owned()
    };
    remove_pgp_armour(&text)
}

fn keep_range(keep: &mut [bool], from: usize, to: usize) -> usize {
    for k in keep.iter_mut().take(to).skip(from) {
        *k = true;
    }
    to
}

fn join_selected(lines: &[&str], keep: &[bool], wanted: bool) -> String {
    let mut out = String::new();
    let mut first = true;
    for (line, &k) in lines.iter().zip(keep) {
        if k == wanted {
            if !first {
                out.push('\n');
            }
            out.push_str(line);
            first = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_of_the_thread_is_history_even_when_introduced() {
        let reply =
            "The notification says:\n\n> Issue #12 was updated.\n> Reply above this line.\n";
        assert_eq!(run(reply, false).0, reply.trim_end());
        let thread = Thread::new(&["Issue #12 was updated.\nReply above this line.\n"]);
        assert_eq!(
            run_in_thread(reply, false, &thread).0,
            "The notification says:"
        );
        // A quote of something else stays.
        let other = Thread::new(&["Something unrelated.\n"]);
        assert_eq!(run_in_thread(reply, false, &other).0, reply.trim_end());
    }

    #[test]
    fn hunk_headers() {
        assert_eq!(hunk_header("@@ -10,7 +10,8 @@ fn x"), Some((7, 8)));
        assert_eq!(hunk_header("@@ -1 +1 @@"), Some((1, 1)));
        assert_eq!(hunk_header("@@ -a,1 +1 @@"), None);
        assert_eq!(
            hunk_header("@@ -1,999999999 +1,1 @@"),
            Some((MAX_HUNK_LINES, 1))
        );
    }

    #[test]
    fn attributions() {
        assert!(is_attribution(
            "On Tue, Mar 5, 2024 at 10:12 AM A <a@b.c> wrote:"
        ));
        assert!(is_attribution("W dniu 5.03.2024 o 10:12, Jan pisze:"));
        assert!(is_attribution(
            "王小明 <x@example.cn> 于2024年3月5日周二 10:12写道："
        ));
        assert!(is_attribution(
            "2024年3月5日(火) 10:12 山本 健 <ken@example.jp>:"
        ));
        assert!(!is_attribution("As Knuth wrote:"));
        assert!(!is_attribution("The release notes say:"));
        assert!(!is_attribution("Der Hersteller schreibt im Changelog:"));
    }

    #[test]
    fn footers() {
        assert!(is_footer("Sent from my iPhone"));
        assert!(is_footer("Von meinem iPhone gesendet"));
        assert!(is_footer("iPhoneから送信"));
        assert!(!is_footer(
            "From my tests, the leak only happens on resize."
        ));
        assert!(!is_footer(
            "Inviato da me ieri il file di log completo, ma non lo vedo."
        ));
    }

    #[test]
    fn grep_lines() {
        assert!(is_grep_line("src/a.rs-12-    let x = 1;"));
        assert!(is_grep_line("src/a.rs:13:    let y = 2;"));
        assert!(is_grep_line("12:01:07 worker"));
        assert!(!is_grep_line("Jane Doe"));
    }

    #[test]
    fn header_labels() {
        assert_eq!(
            header_label("From: A <a@b.c>").map(|r| r.0),
            Some(Role::From)
        );
        assert_eq!(
            header_label("*Sent:* Tuesday").map(|r| r.0),
            Some(Role::Sent)
        );
        assert_eq!(
            header_label("发件人：\"T\"<t@x.org>;").map(|r| r.0),
            Some(Role::From)
        );
        assert_eq!(header_label("Note: this is text"), None);
    }
}
