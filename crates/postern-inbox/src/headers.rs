//! The header block of a raw message, found without parsing it: what a watcher keeps of a
//! message too large to fetch whole.

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

#[cfg(test)]
mod tests {
    use super::header_block;

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
}
