//! A message's `Message-ID` read straight from the raw header block, without parsing the
//! message: log lines about a message carry it from the moment the message is in hand, before
//! anything (the store, the processor) has looked at the message.

/// The longest `Message-ID` put into a log line; a hostile header must not flood the log.
const MAX_CHARS: usize = 200;

/// The header block at the start of `raw`: up to and including the empty line that ends it
/// (CRLF or bare LF), or all of `raw` when it has none; at most `max` bytes either way.
pub fn header_block(raw: &[u8], max: usize) -> &[u8] {
    let raw = &raw[..raw.len().min(max)];
    // No header at all: the block is just the empty line.
    if raw.starts_with(b"\n") {
        return &raw[..1];
    }
    if raw.starts_with(b"\r\n") {
        return &raw[..2];
    }
    let mut at = 0;
    while let Some(offset) = raw[at..].iter().position(|&b| b == b'\n') {
        let next = at + offset + 1;
        let rest = &raw[next..];
        if rest.starts_with(b"\n") {
            return &raw[..next + 1];
        }
        if rest.starts_with(b"\r\n") {
            return &raw[..next + 2];
        }
        at = next;
    }
    raw
}

/// The first `Message-ID` header's value without angle brackets, unfolded, trimmed, with
/// control characters left out and at most `MAX_CHARS` (200) characters. `None` when the header
/// block has none (or it is empty).
pub fn message_id(raw: &[u8]) -> Option<String> {
    let mut lines = raw
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let mut value = Vec::new();
    let mut found = false;
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if found {
            if !folded {
                break;
            }
            value.extend_from_slice(line);
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(b"message-id")
        {
            found = true;
            value.extend_from_slice(&line[colon + 1..]);
        }
    }
    let text = String::from_utf8_lossy(&value);
    let id: String = text
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CHARS)
        .collect();
    (!id.trim().is_empty()).then(|| id.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::{header_block, message_id};

    #[test]
    fn header_block_ends_at_the_empty_line_and_the_cap() {
        assert_eq!(
            header_block(b"A: 1\r\nB: 2\r\n\r\nbody\r\n", 100),
            b"A: 1\r\nB: 2\r\n\r\n"
        );
        assert_eq!(header_block(b"A: 1\n\nbody\n", 100), b"A: 1\n\n");
        assert_eq!(header_block(b"A: 1\r\nB: 2", 100), b"A: 1\r\nB: 2");
        assert_eq!(header_block(b"A: 1\r\nB: 2\r\n\r\nbody", 6), b"A: 1\r\n");
        assert_eq!(header_block(b"\r\nbody", 100), b"\r\n");
    }

    #[test]
    fn reads_plain_folded_and_missing_ids() {
        assert_eq!(
            message_id(b"From: a@x\r\nMessage-ID: <m-1@x>\r\n\r\nBody\r\n").as_deref(),
            Some("m-1@x")
        );
        assert_eq!(
            message_id(b"message-id:\r\n <folded@x>\nSubject: s\n\nBody").as_deref(),
            Some("folded@x")
        );
        assert_eq!(
            message_id(b"From: a@x\r\n\r\nMessage-ID: <in-body@x>\r\n"),
            None
        );
        assert_eq!(message_id(b"Message-ID: <>\r\n\r\n"), None);
    }

    #[test]
    fn a_hostile_id_is_bounded_and_has_no_control_characters() {
        let raw = format!("Message-ID: <{}\u{1b}[31m@x>\r\n\r\n", "a".repeat(5000));
        let id = message_id(raw.as_bytes()).expect("an id");
        assert!(id.chars().count() <= 200 && !id.contains('\u{1b}'), "{id}");
    }
}
