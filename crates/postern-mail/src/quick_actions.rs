//! Quick actions (`/close`, `/label ~bug` …) in a mail body: finding them, and redacting them.
//!
//! The rules are GitLab's `Gitlab::QuickActions::Extractor#commands_regex`: a command counts only
//! at the start of a line, outside fenced code, inline-code spans, HTML blocks and `>>>` quotes,
//! and only if its name is a known command (case-insensitive).
//!
//! That pattern, run as a regular expression, is quadratic: its inline-code branch (`^.*`…`$`
//! with dot matching newlines) keeps every match attempt alive to the end of the text, so each
//! line start costs the length of the rest of the message (40 000 `/label` lines took 17.5 s).
//! This module gives exactly the pattern's matches in one forward pass: each branch is decided
//! from the line it starts on plus cursors that only move forward (the next closing fence, the
//! next `>`, the next closing HTML tag), and the inline-code branch, whose extent depends only on
//! the last backticks of the text, is computed once. The regular expression itself is kept in the
//! tests as the oracle the pass is compared with.

use std::ops::Range;

use serde::Serialize;

use crate::limits::MAX_QUICK_ACTIONS;

/// Command names GitLab knows for issues, merge requests and tickets, aliases included.
pub const COMMAND_NAMES: &[&str] = &[
    "add_child",
    "add_contacts",
    "add_email",
    "approve",
    "assign",
    "assign_reviewer",
    "award",
    "blocked_by",
    "blocks",
    "board_move",
    "cc",
    "clone",
    "close",
    "confidential",
    "convert_to_ticket",
    "copy_metadata",
    "create_merge_request",
    "done",
    "draft",
    "due",
    "duplicate",
    "epic",
    "estimate",
    "estimate_time",
    "health_status",
    "invite_email",
    "iteration",
    "label",
    "labels",
    "lock",
    "merge",
    "milestone",
    "move",
    "parent_epic",
    "promote",
    "promote_to_incident",
    "ready",
    "reassign",
    "reassign_reviewer",
    "rebase",
    "relabel",
    "relate",
    "remove_child",
    "remove_contacts",
    "remove_due_date",
    "remove_email",
    "remove_epic",
    "remove_estimate",
    "remove_iteration",
    "remove_label",
    "remove_milestone",
    "remove_parent",
    "remove_parent_epic",
    "remove_reviewer",
    "remove_time_estimate",
    "remove_time_spent",
    "remove_weight",
    "reopen",
    "request_review",
    "reviewer",
    "set_parent",
    "severity",
    "shrug",
    "spend",
    "spent",
    "submit_review",
    "subscribe",
    "tableflip",
    "target_branch",
    "timeline",
    "title",
    "todo",
    "type",
    "unapprove",
    "unassign",
    "unassign_reviewer",
    "unlabel",
    "unlock",
    "unsubscribe",
    "weight",
    "wip",
];

/// One quick action found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuickAction {
    /// The command name, lowercased (`label`).
    pub command: String,
    /// The argument text, if any (`~bug ~"needs review"`).
    pub argument: Option<String>,
    /// The line as written, without the line break (`/label ~bug`).
    pub line: String,
}

/// Quick actions of one text, at most a cap of them, and how many the text has in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QuickActionScan {
    /// The first quick actions, in order, at most the cap.
    pub actions: Vec<QuickAction>,
    /// Every quick action in the text, the ones past the cap included; a caller that refuses
    /// floods compares this with its own limit.
    pub total: usize,
}

fn without_carriage_returns(content: &str) -> String {
    content.replace('\r', "")
}

/// The quick actions in `content`, in order, all of them (see [`scan_quick_actions`] for the
/// capped form).
pub fn find_quick_actions(content: &str) -> Vec<QuickAction> {
    let content = without_carriage_returns(content);
    Matches::new(&content)
        .filter_map(|found| found.action(&content))
        .collect()
}

/// The first [`MAX_QUICK_ACTIONS`] quick actions in `content` and how many it has in all: the
/// rest are counted, not kept, so a flood costs no memory.
pub fn scan_quick_actions(content: &str) -> QuickActionScan {
    let content = without_carriage_returns(content);
    let mut scan = QuickActionScan::default();
    for found in Matches::new(&content) {
        if !found.is_command() {
            continue;
        }
        scan.total += 1;
        if scan.actions.len() < MAX_QUICK_ACTIONS
            && let Some(action) = found.action(&content)
        {
            scan.actions.push(action);
        }
    }
    scan
}

/// `content` without its quick-action lines (GitLab's `extract_commands`, right-stripped), and the
/// actions that were removed, all of them.
pub fn extract_quick_actions(content: &str) -> (String, Vec<QuickAction>) {
    let (text, scan) = extract_quick_actions_capped(content, usize::MAX);
    (text, scan.actions)
}

/// [`extract_quick_actions`] that removes at most `max` actions: the ones past it stay in the
/// text as written, and are counted in [`QuickActionScan::total`] so the caller can refuse the
/// message or say what was not run.
pub fn extract_quick_actions_capped(content: &str, max: usize) -> (String, QuickActionScan) {
    let content = without_carriage_returns(content);
    let mut scan = QuickActionScan::default();
    let mut remaining = String::with_capacity(content.len());
    let mut copied = 0;
    for found in Matches::new(&content) {
        if !found.is_command() {
            continue;
        }
        scan.total += 1;
        if scan.actions.len() >= max {
            continue;
        }
        if let Some(action) = found.action(&content) {
            scan.actions.push(action);
            remaining.push_str(&content[copied..found.whole.start]);
            copied = found.whole.end;
        }
    }
    remaining.push_str(&content[copied..]);
    remaining.truncate(remaining.trim_end().len());
    (remaining, scan)
}

/// Wraps every quick action in a code span so it is shown, not run (Service Desk mail from
/// outsiders; GitLab's `redact_commands`): `/label ~x` → `` `/label ~x` ``. Not capped: every
/// action of an outsider's text must be made harmless, and the output is as long as the input.
pub fn redact_quick_actions(content: &str) -> String {
    let content = without_carriage_returns(content);
    let mut out = String::with_capacity(content.len() + content.len() / 4);
    let mut copied = 0;
    for found in Matches::new(&content) {
        let Some(name) = found.name.clone() else {
            continue;
        };
        out.push_str(&content[copied..found.whole.start]);
        out.push_str("`/");
        out.push_str(&content[name]);
        if let Some(arg) = found.arg.clone() {
            out.push(' ');
            out.push_str(&content[arg]);
        }
        out.push('`');
        if content[found.whole.clone()].contains('\n') {
            out.push('\n');
        }
        copied = found.whole.end;
    }
    out.push_str(&content[copied..]);
    out.truncate(out.trim_end().len());
    out
}

/// One match of GitLab's pattern: a skipped block (code, inline code, HTML, quote) or a command.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    /// The whole match.
    whole: Range<usize>,
    /// The command name as written; `None` for a skipped block.
    name: Option<Range<usize>>,
    /// The argument as written (after the one space), when there was a space.
    arg: Option<Range<usize>>,
}

impl Found {
    fn is_command(&self) -> bool {
        self.name.is_some()
    }

    fn action(&self, content: &str) -> Option<QuickAction> {
        let name = self.name.clone()?;
        let argument = self
            .arg
            .clone()
            .map(|arg| content[arg].trim().to_owned())
            .filter(|arg| !arg.is_empty());
        let line = content[self.whole.clone()]
            .trim_end_matches(['\n', ' ', '\t'])
            .to_owned();
        Some(QuickAction {
            command: content[name].to_lowercase(),
            argument,
            line,
        })
    }
}

/// Whether `i` is where the pattern's `$` (multi-line) holds: the end of the text or a line break.
fn at_line_end(bytes: &[u8], i: usize) -> bool {
    i == bytes.len() || bytes.get(i) == Some(&b'\n')
}

/// Position of the first `byte` at or after `from`.
fn find_byte(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    let rest = bytes.get(from..)?;
    rest.iter().position(|&b| b == byte).map(|i| from + i)
}

/// The first match of some forward search at or after a position, remembered: the positions
/// asked for never go down, so each byte is examined once over the whole text.
#[derive(Debug, Default)]
struct Cursor {
    /// Every position below this was examined.
    searched_to: usize,
    /// The last answer (position, and the end it implies), valid for any query at or below it.
    found: Option<(usize, usize)>,
}

impl Cursor {
    /// The first position `p >= from` for which `check(p)` gives an end, with that end.
    /// `candidates(p)` is the next position at or after `p` worth checking.
    fn next(
        &mut self,
        from: usize,
        mut candidate: impl FnMut(usize) -> Option<usize>,
        mut check: impl FnMut(usize) -> Option<usize>,
    ) -> Option<(usize, usize)> {
        if let Some((at, end)) = self.found
            && at >= from
        {
            return Some((at, end));
        }
        let mut next = from.max(self.searched_to);
        while let Some(at) = candidate(next) {
            if let Some(end) = check(at) {
                self.found = Some((at, end));
                self.searched_to = at + 1;
                return Some((at, end));
            }
            next = at + 1;
        }
        self.found = None;
        self.searched_to = usize::MAX;
        None
    }
}

/// The matches of GitLab's pattern in `text`, in order, found in one forward pass.
struct Matches<'t> {
    text: &'t str,
    bytes: &'t [u8],
    /// Where the next search starts.
    position: usize,
    /// The span of the inline-code branch: it starts at any line start at or before `.0` and
    /// always ends at `.1` (see [`inline_code_extent`]).
    inline_code: Option<(usize, usize)>,
    /// Next line that is exactly three backticks, after a fence opening.
    code_close: Cursor,
    /// Next line that is exactly `>>>`, after a quote opening.
    quote_close: Cursor,
    /// Next `>` after an HTML opening `<`.
    tag_end: Cursor,
    /// Next `</…>` line closing an HTML block.
    html_close: Cursor,
    /// Next `>` after a closing tag's `</`.
    close_tag_end: Cursor,
    /// Command names, sorted for lookup.
    names: Vec<&'static str>,
}

impl<'t> Matches<'t> {
    fn new(text: &'t str) -> Self {
        let mut names: Vec<&'static str> = COMMAND_NAMES.to_vec();
        names.sort_unstable();
        Matches {
            text,
            bytes: text.as_bytes(),
            position: 0,
            inline_code: inline_code_extent(text.as_bytes()),
            code_close: Cursor::default(),
            quote_close: Cursor::default(),
            tag_end: Cursor::default(),
            html_close: Cursor::default(),
            close_tag_end: Cursor::default(),
            names,
        }
    }

    /// The pattern's first branch, `^```.+?\n```$`: the end of the fenced block opened at `line`.
    fn code_at(&mut self, line: usize) -> Option<usize> {
        if !self.bytes[line..].starts_with(b"```") {
            return None;
        }
        let bytes = self.bytes;
        // `.+?` takes at least one character after the opening backticks.
        self.code_close
            .next(
                line + 4,
                |from| find_byte(bytes, from, b'\n'),
                |at| exact_line_after(bytes, at, b"```"),
            )
            .map(|(_, end)| end)
    }

    /// The fourth branch, `^>>>.+?\n>>>$`, like the first.
    fn quote_at(&mut self, line: usize) -> Option<usize> {
        if !self.bytes[line..].starts_with(b">>>") {
            return None;
        }
        let bytes = self.bytes;
        self.quote_close
            .next(
                line + 4,
                |from| find_byte(bytes, from, b'\n'),
                |at| exact_line_after(bytes, at, b">>>"),
            )
            .map(|(_, end)| end)
    }

    /// The second branch, `^.*`\n*.+?\n*`$`: from any line start up to the text's last inline-code
    /// opening, to one fixed end.
    fn inline_code_at(&self, line: usize) -> Option<usize> {
        self.inline_code
            .filter(|&(opening, _)| opening >= line)
            .map(|(_, end)| end)
    }

    /// The third branch, `^<[^>]+?>\n.+?\n</[^>]+?>$`.
    fn html_at(&mut self, line: usize) -> Option<usize> {
        let bytes = self.bytes;
        if bytes[line] != b'<' || matches!(bytes.get(line + 1), None | Some(b'>')) {
            return None;
        }
        let (tag_end, _) =
            self.tag_end
                .next(line + 1, |from| find_byte(bytes, from, b'>'), Some)?;
        if bytes.get(tag_end + 1) != Some(&b'\n') {
            return None;
        }
        let close_tag_end = &mut self.close_tag_end;
        // `.+?` takes at least one character after the opening line's break.
        self.html_close
            .next(
                tag_end + 3,
                |from| find_byte(bytes, from, b'\n'),
                |at| {
                    let start = at + 1;
                    if !bytes[start..].starts_with(b"</")
                        || matches!(bytes.get(start + 2), None | Some(b'>'))
                    {
                        return None;
                    }
                    let (gt, _) =
                        close_tag_end.next(start + 3, |from| find_byte(bytes, from, b'>'), Some)?;
                    at_line_end(bytes, gt + 1).then_some(gt + 1)
                },
            )
            .map(|(_, end)| end)
    }

    /// The last branch: `^/(?P<cmd>names)(?:\x20(?P<arg>[^\n]*))?(?:\s*\n|$)`, case-insensitive.
    ///
    /// What may follow a name (a space, white space up to a line break, the end of the text)
    /// is never a letter or `_`, so the only name that can match is the whole run of name
    /// characters after the slash: one lookup instead of trying every name in turn.
    fn command_at(&self, line: usize) -> Option<Found> {
        if self.bytes[line] != b'/' {
            return None;
        }
        let mut folded = [0u8; LONGEST_NAME];
        let (name_len, folded_len) = name_run(&self.text[line + 1..], &mut folded)?;
        if self
            .names
            .binary_search_by(|name| name.as_bytes().cmp(&folded[..folded_len]))
            .is_err()
        {
            return None;
        }
        let name_end = line + 1 + name_len;
        if self.bytes.get(name_end) == Some(&b' ') {
            let arg_start = name_end + 1;
            let arg_end = find_byte(self.bytes, arg_start, b'\n').unwrap_or(self.bytes.len());
            let end = self.after_trailing_space(arg_end).unwrap_or(arg_end);
            return Some(Found {
                whole: line..end,
                name: Some(line + 1..name_end),
                arg: Some(arg_start..arg_end),
            });
        }
        let end = match self.after_trailing_space(name_end) {
            Some(end) => end,
            None if name_end == self.bytes.len() => name_end,
            None => return None,
        };
        Some(Found {
            whole: line..end,
            name: Some(line + 1..name_end),
            arg: None,
        })
    }

    /// `\s*\n` from `from`: just past the last line break of the white space that starts there.
    fn after_trailing_space(&self, from: usize) -> Option<usize> {
        let mut last_break = None;
        for (offset, c) in self.text[from..].char_indices() {
            if !c.is_whitespace() {
                break;
            }
            if c == '\n' {
                last_break = Some(from + offset + 1);
            }
        }
        last_break
    }
}

impl Iterator for Matches<'_> {
    type Item = Found;

    fn next(&mut self) -> Option<Found> {
        let len = self.bytes.len();
        loop {
            let position = self.position;
            let line = if position == 0 || self.bytes.get(position - 1) == Some(&b'\n') {
                position
            } else {
                find_byte(self.bytes, position, b'\n')? + 1
            };
            // Every branch needs at least one character.
            if line >= len {
                self.position = len;
                return None;
            }
            let skipped = self
                .code_at(line)
                .or_else(|| self.inline_code_at(line))
                .or_else(|| self.html_at(line))
                .or_else(|| self.quote_at(line));
            if let Some(end) = skipped {
                self.position = end;
                return Some(Found {
                    whole: line..end,
                    name: None,
                    arg: None,
                });
            }
            if let Some(found) = self.command_at(line) {
                self.position = found.whole.end;
                return Some(found);
            }
            self.position = line + 1;
        }
    }
}

/// Whether the line after the break at `at` is exactly `marker`; the end of that line if so.
fn exact_line_after(bytes: &[u8], at: usize, marker: &[u8]) -> Option<usize> {
    let start = at + 1;
    let end = start + marker.len();
    (bytes.get(start..end) == Some(marker) && at_line_end(bytes, end)).then_some(end)
}

/// The inline-code branch `^.*`\n*.+?\n*`$` (dot matching newlines): `.*` is greedy, so from
/// any line start it reaches the last backtick `a` that still has a line-ending backtick at
/// least two characters after it, and then the closing backtick `b` it settles on does not
/// depend on where it started. Returns `(a, b + 1)`.
fn inline_code_extent(bytes: &[u8]) -> Option<(usize, usize)> {
    let closes = |b: usize| bytes[b] == b'`' && at_line_end(bytes, b + 1);
    let last_close = (0..bytes.len()).rev().find(|&b| closes(b))?;
    let opening = bytes[..last_close.checked_sub(1)?]
        .iter()
        .rposition(|&b| b == b'`')?;
    let newlines = bytes[opening + 1..]
        .iter()
        .take_while(|&&b| b == b'\n')
        .count();
    // `\n*` first takes every line break, then `.+?` the shortest run before a closing backtick;
    // only when that finds none does `\n*` give one back, for a backtick right after the breaks.
    let close = (opening + newlines + 2..bytes.len())
        .find(|&b| closes(b))
        .unwrap_or(opening + newlines + 1);
    Some((opening, close + 1))
}

/// The longest command name there is, in characters.
const LONGEST_NAME: usize = 24;

/// The run of characters at the start of `text` that can be part of a command name, with its
/// length in bytes and the length of its lowercase form (written to `folded`), compared as the pattern's `(?i)` does (Unicode simple
/// case folding: `K` and `ſ` also match `k` and `s`). `None` when the run is empty or longer
/// than any name.
fn name_run(text: &str, folded: &mut [u8; LONGEST_NAME]) -> Option<(usize, usize)> {
    let mut folded_len = 0;
    let mut len = 0;
    for c in text.chars() {
        let lower = match c {
            'a'..='z' | '_' => c as u8,
            'A'..='Z' => c.to_ascii_lowercase() as u8,
            '\u{212A}' => b'k',
            '\u{17F}' => b's',
            _ => break,
        };
        *folded.get_mut(folded_len)? = lower;
        folded_len += 1;
        len += c.len_utf8();
    }
    (len > 0).then_some((len, folded_len))
}

#[cfg(any(test, feature = "oracle"))]
#[doc(hidden)]
#[allow(clippy::expect_used, reason = "a constant pattern")]
pub mod oracle;

#[cfg(test)]
mod tests;
