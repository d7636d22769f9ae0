//! The postern mode's quotes and answers.

use super::*;

/// After an attribution at `at` (body from `body`): keep the quoted lines each answer
/// replies to and the answers; stop at the next history. Returns whether there was an
/// answer. A single quote answered once at the very end, with nothing written above the
/// attribution, is bottom posting: only the answer is kept (GitLab does the same).
pub(super) fn keep_answers(
    lines: &[&str],
    kinds: &[Kind],
    keep: &mut [bool],
    at: usize,
    body: usize,
) -> bool {
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
pub(super) fn drop_unintroduced_trailing_quote(
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
pub(super) fn remove_signature(lines: &[&str], kinds: &[Kind], keep: &mut [bool], end: usize) {
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
pub(super) fn is_rule(line: &str) -> bool {
    let core = line.trim_matches(is_blank);
    core.chars().count() >= 2 && core.chars().all(|c| "-_,=+~#*ᐧ—".contains(c))
}

/// `grep -n -C` output: `file-12-text`, `file:12:text`, `12-text`, `12:text`.
pub(super) fn is_grep_line(line: &str) -> bool {
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
pub(super) fn is_prose(line: &str) -> bool {
    let t = line.trim_matches(is_blank);
    if t.ends_with(['。', '！', '？']) {
        return true;
    }
    t.ends_with(['.', '!', '?']) && t.split_whitespace().count() >= MIN_PROSE_WORDS
}

/// A mobile or webmail footer of [`FOOTERS`], the whole line.
pub(super) fn is_footer(line: &str) -> bool {
    is_footer_with(line, MAX_FOOTER_TAIL_CHARS, false)
}

/// A footer whose tail has at most `max_tail` characters; `lenient` allows punctuation and
/// more words in the tail (only used for the footers that end a mail).
pub(super) fn is_footer_with(line: &str, max_tail: usize, lenient: bool) -> bool {
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
pub(super) fn without_links(line: &str) -> String {
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

pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}
