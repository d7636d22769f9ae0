//! The postern mode's history and forwards.

use super::*;

/// The first line (outside opaque blocks) where quoted history or a forward starts.
pub(super) fn find_event(lines: &[&str], kinds: &[Kind]) -> Option<(usize, Event)> {
    for i in 0..lines.len() {
        if let Some(event) = event_at(lines, kinds, i) {
            return Some((i, event));
        }
    }
    None
}

pub(super) fn event_at(lines: &[&str], kinds: &[Kind], i: usize) -> Option<Event> {
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
pub(super) fn marker_core(line: &str) -> String {
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
pub(super) fn header_or_forward(lines: &[&str], from: usize) -> Event {
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
pub(super) fn header_block_len(lines: &[&str], from: usize) -> usize {
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
pub(super) fn header_label(line: &str) -> Option<(Role, &str)> {
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
pub(super) fn is_attribution(line: &str) -> bool {
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

pub(super) fn four_digits(s: &str) -> bool {
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
pub(super) fn contains_word(s: &str, word: &str) -> bool {
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
