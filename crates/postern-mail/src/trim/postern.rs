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

// ---------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------

fn is_empty(line: &str) -> bool {
    line.chars().all(|c| is_blank(c) || c == '\u{200b}')
}

fn is_quote(line: &str) -> bool {
    line.trim_start_matches(is_blank).starts_with('>')
}

/// One pass with a little state: fences, indented code, diff hunks, shell transcripts.
fn classify(lines: &[&str]) -> Vec<Kind> {
    let mut kinds = Vec::with_capacity(lines.len());
    let mut fence: Option<(char, usize)> = None;
    let mut hunk = (0usize, 0usize); // old and new lines still expected in a diff hunk
    let mut transcript = false; // `>` lines continue a shell command
    for (i, &line) in lines.iter().enumerate() {
        let prev = if i > 0 { Some(kinds[i - 1]) } else { None };
        // Fenced code: up to the closing fence of the same character, at least as long.
        if let Some((ch, len)) = fence {
            if fence_of(line).is_some_and(|(c, l)| c == ch && l >= len) {
                fence = None;
            }
            kinds.push(Kind::Opaque);
            continue;
        }
        if let Some(open) = fence_of(line) {
            fence = Some(open);
            kinds.push(Kind::Opaque);
            continue;
        }
        // Diff hunk body: exactly as many lines as its header says.
        if hunk.0 > 0 || hunk.1 > 0 {
            let consumed = match line.as_bytes().first() {
                None | Some(b' ') => Some((1, 1)),
                Some(b'-') => Some((1, 0)),
                Some(b'+') => Some((0, 1)),
                Some(b'\\') => Some((0, 0)),
                _ => None,
            };
            if let Some((old, new)) = consumed {
                hunk = (hunk.0.saturating_sub(old), hunk.1.saturating_sub(new));
                kinds.push(Kind::Opaque);
                continue;
            }
            hunk = (0, 0);
        }
        if let Some(sizes) = hunk_header(line) {
            hunk = sizes;
            kinds.push(Kind::Opaque);
            continue;
        }
        if is_diff_file_header(lines, i) {
            kinds.push(Kind::Opaque);
            continue;
        }
        if is_empty(line) {
            transcript = false;
            kinds.push(Kind::Empty);
            continue;
        }
        // Shell transcript: `>` continuation prompts after a command that opened a heredoc
        // or left a quote open; a Python REPL's `>>> ` prompts.
        if is_quote(line) {
            let repl = line.starts_with(">>> ") && prev != Some(Kind::Quote);
            if transcript || repl {
                transcript = true;
                kinds.push(Kind::Opaque);
                continue;
            }
            kinds.push(Kind::Quote);
            continue;
        }
        transcript = opens_continuation(line);
        // Indented code: four spaces or a tab, after a blank line or more code.
        let indented = line.starts_with("    ") || line.starts_with('\t');
        if indented && matches!(prev, None | Some(Kind::Empty) | Some(Kind::Opaque)) {
            kinds.push(Kind::Opaque);
            continue;
        }
        kinds.push(Kind::Text);
    }
    kinds
}

/// A fence line: three or more backticks or tildes (then an info string).
fn fence_of(line: &str) -> Option<(char, usize)> {
    let t = line.trim_start_matches(' ');
    let ch = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = t.chars().take_while(|c| *c == ch).count();
    (len >= 3).then_some((ch, len))
}

/// `@@ -a[,b] +c[,d] @@`: the old and new line counts (1 when omitted).
fn hunk_header(line: &str) -> Option<(usize, usize)> {
    let rest = line.strip_prefix("@@ -")?;
    let (old, rest) = rest.split_once(" +")?;
    let (new, _) = rest.split_once(" @@")?;
    let count = |range: &str| -> Option<usize> {
        let mut parts = range.splitn(2, ',');
        let start = parts.next()?;
        if start.is_empty() || !start.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match parts.next() {
            None => Some(1),
            Some(n) if !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse::<usize>().ok().map(|n| n.min(MAX_HUNK_LINES))
            }
            Some(_) => None,
        }
    };
    Some((count(old)?, count(new)?))
}

/// `diff --git …`, `index …`, and the `--- a/x` / `+++ b/x` pair.
fn is_diff_file_header(lines: &[&str], i: usize) -> bool {
    let line = lines[i];
    if line.starts_with("diff --git ") {
        return true;
    }
    if line.starts_with("--- ") {
        return lines.get(i + 1).is_some_and(|n| n.starts_with("+++ "));
    }
    if line.starts_with("+++ ") {
        return i > 0 && lines[i - 1].starts_with("--- ");
    }
    if line.starts_with("index ") {
        return i > 0 && lines[i - 1].starts_with("diff --git ");
    }
    false
}

/// A shell command line (`$ ` or `% ` prompt) whose next lines are `>` continuations: it opens
/// a heredoc, ends with a backslash, or leaves a quote open.
fn opens_continuation(line: &str) -> bool {
    let t = line.trim_start_matches(is_blank);
    let Some(cmd) = t.strip_prefix("$ ").or_else(|| t.strip_prefix("% ")) else {
        return false;
    };
    cmd.contains("<<")
        || cmd.ends_with('\\')
        || cmd.matches('"').count() % 2 == 1
        || cmd.matches('\'').count() % 2 == 1
}

// ---------------------------------------------------------------------------------------
// History and forwards
// ---------------------------------------------------------------------------------------

/// The first line (outside opaque blocks) where quoted history or a forward starts.
fn find_event(lines: &[&str], kinds: &[Kind]) -> Option<(usize, Event)> {
    for i in 0..lines.len() {
        if let Some(event) = event_at(lines, kinds, i) {
            return Some((i, event));
        }
    }
    None
}

fn event_at(lines: &[&str], kinds: &[Kind], i: usize) -> Option<Event> {
    let kind = kinds[i];
    if kind == Kind::Empty || kind == Kind::Opaque {
        return None;
    }
    let line = lines[i];
    // Apple Mail quotes its own attribution line ("> On … wrote:").
    let unquoted = line.trim_start_matches(|c: char| c == '>' || is_blank(c));
    if is_attribution(unquoted) {
        return Some(Event::Attribution { lines: 1 });
    }
    if kind == Kind::Quote {
        return None;
    }
    // An attribution wrapped over two lines by the sender's client.
    if let Some(next) = lines.get(i + 1)
        && matches!(kinds.get(i + 1), Some(Kind::Text | Kind::Quote))
        && next.trim_end_matches(is_blank).ends_with([':', '：'])
        && !line.trim_end().ends_with([':', '：'])
        && line.len() + next.len() < MAX_ATTRIBUTION_CHARS
    {
        let joined = format!("{} {}", line.trim_end(), next.trim_start());
        if is_attribution(&joined) {
            return Some(Event::Attribution { lines: 2 });
        }
    }
    let core = marker_core(line);
    if !core.is_empty() {
        if FORWARD_PHRASES.contains(&core.as_str()) {
            return Some(Event::Forward);
        }
        if ORIGINAL_PHRASES.contains(&core.as_str()) && line.contains("--") {
            return Some(header_or_forward(lines, i + 1));
        }
    }
    // Outlook's rule of underscores above its header block.
    let trimmed = line.trim_matches(is_blank);
    if trimmed.len() >= 10
        && trimmed.bytes().all(|b| b == b'_')
        && header_block_len(lines, i + 1) >= MIN_HEADER_BLOCK_LINES
    {
        return Some(header_or_forward(lines, i + 1));
    }
    if header_block_len(lines, i) >= MIN_HEADER_BLOCK_LINES {
        return Some(header_or_forward(lines, i));
    }
    None
}

/// A marker line's phrase, lower-cased, without its dashes, asterisks, blanks and final
/// colon; empty when the line cannot be a marker (a cheap filter: markers start with a dash
/// or end with a colon).
fn marker_core(line: &str) -> String {
    let t = line.trim_matches(|c: char| is_blank(c) || c == '*');
    if t.len() > 80 || !(t.starts_with('-') || t.ends_with(':') || t.ends_with('：')) {
        return String::new();
    }
    let core = t
        .trim_matches(|c: char| c == '-' || is_blank(c))
        .trim_end_matches([':', '：'])
        .trim_matches(is_blank);
    core.to_lowercase()
}

/// The header block starting at `from` is a forward if its subject says so.
fn header_or_forward(lines: &[&str], from: usize) -> Event {
    let end = (from + MAX_HEADER_BLOCK_LINES).min(lines.len());
    for line in lines.iter().take(end).skip(from) {
        if let Some((Role::Subject, value)) = header_label(line) {
            let value = value
                .trim_matches(|c: char| is_blank(c) || c == '*')
                .to_lowercase();
            if FORWARD_SUBJECT_PREFIXES
                .iter()
                .any(|p| value.starts_with(p))
            {
                return Event::Forward;
            }
            return Event::Header;
        }
    }
    Event::Header
}

/// How many consecutive header lines start at `from`, when the first is a `From`-role label
/// and the block also has a date or subject; 0 otherwise.
fn header_block_len(lines: &[&str], from: usize) -> usize {
    let Some((Role::From, _)) = lines.get(from).and_then(|l| header_label(l)) else {
        return 0;
    };
    let mut len = 0;
    let mut dated_or_subject = false;
    for line in lines.iter().skip(from).take(MAX_HEADER_BLOCK_LINES) {
        match header_label(line) {
            Some((role, _)) => {
                dated_or_subject |= matches!(role, Role::Sent | Role::Subject);
                len += 1;
            }
            None => break,
        }
    }
    if dated_or_subject { len } else { 0 }
}

/// `Label: value` (also `*Label:*`, `Label :`, full-width colon): the label's role and the
/// value.
fn header_label(line: &str) -> Option<(Role, &str)> {
    let t = line.trim_start_matches(|c: char| is_blank(c) || c == '*');
    let head_end = t
        .char_indices()
        .take_while(|(i, _)| *i <= MAX_LABEL_BYTES)
        .find(|(_, c)| *c == ':' || *c == '：')
        .map(|(i, _)| i)?;
    let label = t[..head_end].trim_end_matches(|c: char| is_blank(c) || c == '*');
    let colon_len = t[head_end..].chars().next().map_or(1, char::len_utf8);
    let value = t[head_end + colon_len..].trim_start_matches('*');
    if value.trim_matches(is_blank).is_empty() {
        return None;
    }
    HEADER_LABELS
        .iter()
        .find(|(_, _, l)| l.eq_ignore_ascii_case(label) || *l == label)
        .map(|(_, role, _)| (*role, value))
}

/// An attribution line in one of the languages of [`ATTRIBUTION_VERBS`], or the verb-less
/// Gmail form that ends with the address ("2024年3月5日(火) 10:12 X <x@y>:").
fn is_attribution(line: &str) -> bool {
    let t = line.trim_matches(is_blank);
    // Zoho frames it in dashes and drops the colon: "---- On … wrote ----".
    let framed = t.starts_with("--") && t.ends_with("--");
    let t = if framed {
        t.trim_matches(|c: char| c == '-' || is_blank(c))
    } else {
        t
    };
    if t.len() > MAX_ATTRIBUTION_CHARS || !(framed || t.ends_with(':') || t.ends_with('：')) {
        return false;
    }
    let body = t.trim_end_matches([':', '：']).trim_end_matches(is_blank);
    let has_digit = body.bytes().any(|b| b.is_ascii_digit());
    let has_address = body.contains('@');
    if body.ends_with('>') && has_address && body.contains('<') && four_digits(body) {
        return true;
    }
    let led = ATTRIBUTION_LEADS.iter().any(|lead| t.starts_with(lead));
    ATTRIBUTION_VERBS.iter().any(|(_, _, verb)| {
        contains_word(body, verb.word) && (!verb.needs_context || has_digit || has_address || led)
    })
}

fn four_digits(s: &str) -> bool {
    let mut run = 0;
    for b in s.bytes() {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run == 4 {
            return true;
        }
    }
    false
}

/// `word` occurs in `s` and is not glued to a letter on its left (CJK verbs are glued to the
/// name in Chinese and Korean, so only Latin-script words need the boundary).
fn contains_word(s: &str, word: &str) -> bool {
    let latin = word.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let mut from = 0;
    while let Some(pos) = s[from..].find(word) {
        let at = from + pos;
        let left_ok = !latin
            || s[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphabetic());
        if left_ok {
            return true;
        }
        from = at + word.len();
    }
    false
}

// ---------------------------------------------------------------------------------------
// Quotes and answers
// ---------------------------------------------------------------------------------------

/// After an attribution at `at` (body from `body`): keep the quoted lines each answer
/// replies to and the answers; stop at the next history. Returns whether there was an
/// answer. A single quote answered once at the very end, with nothing written above the
/// attribution, is bottom posting: only the answer is kept (GitLab does the same).
fn keep_answers(lines: &[&str], kinds: &[Kind], keep: &mut [bool], at: usize, body: usize) -> bool {
    let wrote_above = (0..at).any(|j| kinds[j] != Kind::Empty);
    let first_content = (body..lines.len()).find(|&j| kinds[j] != Kind::Empty);
    if !wrote_above && (body..lines.len()).all(|j| kinds[j] != Kind::Quote) {
        // Only an attribution above what the sender wrote (a client put its line first and
        // quoted nothing): the attribution goes, the text stays, as in GitLab.
        keep_range(keep, body, lines.len());
        return first_content.is_some();
    }
    if first_content.is_none_or(|j| kinds[j] != Kind::Quote) {
        return false; // unquoted history under the attribution (Outlook web, Yahoo)
    }
    let mut pending: Vec<usize> = Vec::new();
    let mut answers: Vec<(Vec<usize>, usize)> = Vec::new(); // (quote lines before, answer)
    let mut quote_after_answer = false;
    for j in body..lines.len() {
        match kinds[j] {
            Kind::Empty => pending.push(j),
            Kind::Quote => {
                if !answers.is_empty() {
                    quote_after_answer = true;
                }
                pending.push(j);
            }
            Kind::Text | Kind::Opaque => {
                // A signature under the quote ends the mail; it answers nothing.
                let line = lines[j];
                if event_at(lines, kinds, j).is_some() {
                    break;
                }
                if line == "-- " || line.trim() == "--" {
                    // Quoted text after the signature still makes this an interleaved reply.
                    quote_after_answer |= (j..lines.len()).any(|k| kinds[k] == Kind::Quote);
                    break;
                }
                answers.push((std::mem::take(&mut pending), j));
            }
        }
    }
    if answers.is_empty() {
        return false;
    }
    let quote_blocks = answers
        .iter()
        .filter(|(before, _)| before.iter().any(|&j| kinds[j] == Kind::Quote))
        .count();
    let bottom_posted = !wrote_above && quote_blocks == 1 && !quote_after_answer;
    for (before, answer) in answers {
        if !bottom_posted {
            for j in before {
                keep[j] = true;
            }
        } else {
            // Blank lines between answer paragraphs stay; the quote goes.
            for j in before {
                keep[j] = kinds[j] == Kind::Empty;
            }
        }
        keep[answer] = true;
    }
    true
}

/// A `>` block that ends the kept text (before `end`) is history (GitLab drops it too),
/// unless the sender introduced it: the line above ends with a colon ("The log says:") or is
/// a shell command.
fn drop_unintroduced_trailing_quote(
    lines: &[&str],
    kinds: &[Kind],
    keep: &mut [bool],
    thread: &Thread<'_>,
    end: usize,
) {
    let mut j = end;
    while j > 0 && kinds[j - 1] == Kind::Empty {
        j -= 1;
    }
    let block_end = j;
    while j > 0 && matches!(kinds[j - 1], Kind::Quote | Kind::Empty) {
        j -= 1;
    }
    while j < block_end && kinds[j] == Kind::Empty {
        j += 1;
    }
    if j >= block_end || (j..block_end).all(|k| kinds[k] != Kind::Quote) {
        return;
    }
    let intro = (0..j).rev().find(|&k| kinds[k] != Kind::Empty);
    let Some(intro) = intro else {
        return; // only a quote: nothing else was written, keep it as GitLab does
    };
    let line = lines[intro].trim_end_matches(is_blank);
    let introduced = kinds[intro] == Kind::Opaque || line.ends_with(':') || line.ends_with('：');
    if introduced && !thread.holds(&lines[j..block_end]) {
        return;
    }
    for k in keep.iter_mut().take(end).skip(j) {
        *k = false;
    }
}

// ---------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------

/// Removes mobile footers, then cuts at the first delimiter that starts a signature; only
/// lines before `end` are looked at and cut.
fn remove_signature(lines: &[&str], kinds: &[Kind], keep: &mut [bool], end: usize) {
    let kept: Vec<usize> = (0..end.min(lines.len())).filter(|&i| keep[i]).collect();
    // At the very end, a run of footers may carry more ("Sent from my phone, excuse typos.").
    for &i in kept.iter().rev() {
        if kinds[i] == Kind::Empty {
            continue;
        }
        if kinds[i] == Kind::Text && is_footer_with(lines[i], MAX_TRAILING_FOOTER_CHARS, true) {
            keep[i] = false;
        } else {
            break;
        }
    }
    for &i in &kept {
        if kinds[i] == Kind::Text && is_footer(lines[i]) {
            keep[i] = false;
        }
    }
    let kept: Vec<usize> = kept.into_iter().filter(|&i| keep[i]).collect();
    // Non-blank lines after each position, and whether any of them is prose, from the end.
    let mut after = vec![(0usize, false); kept.len() + 1];
    for p in (0..kept.len()).rev() {
        let i = kept[p];
        let (n, prose) = after[p + 1];
        after[p] = if kinds[i] == Kind::Empty {
            (n, prose)
        } else {
            (n + 1, prose || is_prose(lines[i]))
        };
    }
    for (p, &i) in kept.iter().enumerate() {
        if kinds[i] != Kind::Text {
            continue;
        }
        let line = lines[i];
        let (rest_lines, rest_prose) = after[p + 1];
        let cut = if line == "-- " {
            true
        } else if line.trim_matches(is_blank) == "--" {
            let between_grep = p > 0
                && is_grep_line(lines[kept[p - 1]])
                && kept.get(p + 1).is_some_and(|&n| is_grep_line(lines[n]));
            // Corporate signatures carry long disclaimers: `--` cuts whatever follows, as in
            // GitLab, unless it separates `grep -C` output.
            !between_grep
        } else if is_rule(line) {
            let under_text = p > 0 && kept[p - 1] + 1 == i && kinds[kept[p - 1]] != Kind::Empty;
            !under_text && rest_lines <= MAX_SIGNATURE_LINES && !rest_prose
        } else {
            false
        };
        if cut {
            for &j in &kept[p..] {
                keep[j] = false;
            }
            return;
        }
    }
}

/// A line of only `-_=*+~#,—ᐧ` characters (GitLab's delimiter set), two or more of them.
fn is_rule(line: &str) -> bool {
    let core = line.trim_matches(is_blank);
    core.chars().count() >= 2 && core.chars().all(|c| "-_,=+~#*ᐧ—".contains(c))
}

/// `grep -n -C` output: `file-12-text`, `file:12:text`, `12-text`, `12:text`.
fn is_grep_line(line: &str) -> bool {
    let prefix_end = line
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map_or(line.len(), |(i, _)| i);
    let head = &line[..prefix_end];
    // A run of digits framed by `-` or `:` on both sides, or starting the line.
    let bytes = head.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || matches!(bytes[i - 1], b'-' | b':')) {
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if j < bytes.len() && matches!(bytes[j], b'-' | b':') {
                return true;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    false
}

/// A sentence: ends with sentence punctuation and has a few words (a signature's
/// "Acme Corp." does not count).
fn is_prose(line: &str) -> bool {
    let t = line.trim_matches(is_blank);
    if t.ends_with(['。', '！', '？']) {
        return true;
    }
    t.ends_with(['.', '!', '?']) && t.split_whitespace().count() >= MIN_PROSE_WORDS
}

/// A mobile or webmail footer of [`FOOTERS`], the whole line.
fn is_footer(line: &str) -> bool {
    is_footer_with(line, MAX_FOOTER_TAIL_CHARS, false)
}

/// A footer whose tail has at most `max_tail` characters; `lenient` allows punctuation and
/// more words in the tail (only used for the footers that end a mail).
fn is_footer_with(line: &str, max_tail: usize, lenient: bool) -> bool {
    if line.len() > MAX_FOOTER_LINE_BYTES {
        return false;
    }
    let unlinked = without_links(line);
    let t = unlinked
        .trim_matches(|c: char| is_blank(c) || matches!(c, '(' | ')' | '<' | '>'))
        .trim_end_matches('.');
    FOOTERS.iter().any(|(_, start, end)| {
        let Some(rest) = strip_prefix_ci(t, start) else {
            return false;
        };
        let Some(tail) = rest.strip_suffix(end) else {
            return false;
        };
        let tail = tail.trim_matches(is_blank);
        // Lenient: what follows the first punctuation is an apology ("please excuse typos");
        // the device name before it must still be short.
        let punctuation = [',', '.', ';', ':', '!', '?', '，', '。'];
        let device = match tail.find(punctuation) {
            Some(at) if lenient => &tail[..at],
            Some(_) => return false,
            None => tail,
        };
        !device.trim_matches(is_blank).is_empty()
            && tail.chars().count() <= max_tail
            && device.split_whitespace().count() <= MAX_FOOTER_TAIL_WORDS
    })
}

/// `[text](url)` → `text`, and a `<url>` glued to a word removed ("Outlook Mobile<https://…>"),
/// in one pass.
fn without_links(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(pos) = rest.find(['[', '<']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with('[')
            && let Some(close) = tail.find("](")
            && let Some(end) = tail[close..].find(')')
        {
            out.push_str(&tail[1..close]);
            rest = &tail[close + end + 1..];
        } else if tail.starts_with("<http")
            && let Some(end) = tail.find('>')
        {
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
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
