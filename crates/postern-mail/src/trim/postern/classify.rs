//! The postern mode's classification.

use super::*;

pub(super) fn is_empty(line: &str) -> bool {
    line.chars().all(|c| is_blank(c) || c == '\u{200b}')
}

pub(super) fn is_quote(line: &str) -> bool {
    line.trim_start_matches(is_blank).starts_with('>')
}

/// One pass with a little state: fences, indented code, diff hunks, shell transcripts.
pub(super) fn classify(lines: &[&str]) -> Vec<Kind> {
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
pub(super) fn fence_of(line: &str) -> Option<(char, usize)> {
    let t = line.trim_start_matches(' ');
    let ch = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = t.chars().take_while(|c| *c == ch).count();
    (len >= 3).then_some((ch, len))
}

/// `@@ -a[,b] +c[,d] @@`: the old and new line counts (1 when omitted).
pub(super) fn hunk_header(line: &str) -> Option<(usize, usize)> {
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
pub(super) fn is_diff_file_header(lines: &[&str], i: usize) -> bool {
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
pub(super) fn opens_continuation(line: &str) -> bool {
    let t = line.trim_start_matches(is_blank);
    let Some(cmd) = t.strip_prefix("$ ").or_else(|| t.strip_prefix("% ")) else {
        return false;
    };
    cmd.contains("<<")
        || cmd.ends_with('\\')
        || cmd.matches('"').count() % 2 == 1
        || cmd.matches('\'').count() % 2 == 1
}
