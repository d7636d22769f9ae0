//! `@username` mentions in a comment or description: GitLab notifies the people a text names,
//! if they may read it. Finding the names is a pure pass over the text; who may read is decided
//! by the notifier ([`crate::permissions::can_read`]), never here.

/// Distinct names taken from one text; the rest are ignored, so a text of nothing but
/// mentions costs a bounded number of look-ups.
pub const MAX_MENTIONS: usize = 50;

/// Longest username looked up, in bytes (GitLab's limit is 255).
const MAX_USERNAME_BYTES: usize = 255;

/// The usernames `text` mentions, in order, without duplicates, at most [`MAX_MENTIONS`]. As in
/// GitLab's user reference pattern: `@` not preceded by a word character (so an address is not
/// a mention), then `[A-Za-z0-9_]` and `[A-Za-z0-9_.-]*`, not ending in `.`. Code — fenced
/// blocks and `inline` spans — mentions no one, as GitLab's Markdown filters skip it. `@all`
/// and `@here` are not names.
pub fn mentioned_usernames(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        scan_line(line, &mut names);
        if names.len() >= MAX_MENTIONS {
            break;
        }
    }
    names
}

fn scan_line(line: &str, names: &mut Vec<String>) {
    let bytes = line.as_bytes();
    let mut in_code = false;
    let mut i = 0;
    while i < bytes.len() && names.len() < MAX_MENTIONS {
        let b = bytes[i];
        if b == b'`' {
            in_code = !in_code;
            i += 1;
            continue;
        }
        let after_word = i > 0 && is_word_byte(bytes[i - 1]);
        if in_code || b != b'@' || after_word {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        if end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
            while end < bytes.len()
                && (bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'_' | b'.' | b'-'))
            {
                end += 1;
            }
        }
        let mut name_end = end;
        while name_end > start && bytes[name_end - 1] == b'.' {
            name_end -= 1;
        }
        // ASCII only, so the byte offsets are character boundaries.
        let name = &line[start..name_end];
        let reserved = matches!(name.to_ascii_lowercase().as_str(), "all" | "here");
        if !name.is_empty()
            && !reserved
            && name.len() <= MAX_USERNAME_BYTES
            && !names.iter().any(|known| known.eq_ignore_ascii_case(name))
        {
            names.push(name.to_owned());
        }
        i = end.max(i + 1);
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_once_in_order() {
        assert_eq!(
            mentioned_usernames("@finn and @jake.the-dog, ping @finn. (@pb)"),
            ["finn", "jake.the-dog", "pb"]
        );
    }

    #[test]
    fn addresses_code_and_reserved_words_are_not_mentions() {
        let text = "mail finn@example.com\n`@inline`\n```\n@fenced\n```\n@all @here @\n";
        assert!(
            mentioned_usernames(text).is_empty(),
            "{:?}",
            mentioned_usernames(text)
        );
    }

    #[test]
    fn the_number_of_names_is_capped() {
        let text: String = (0..500).map(|n| format!("@user{n} ")).collect();
        assert_eq!(mentioned_usernames(&text).len(), MAX_MENTIONS);
    }
}
