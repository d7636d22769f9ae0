//! A top-down walk over a message's header block: field name and unfolded value, in order,
//! stopping at the blank line, after [`MAX_HEADER_FIELDS`] fields, or at bytes that are not
//! a header. Linear in the header block; used where the position of a field matters
//! (upstream `Authentication-Results` and `Received` lines), which a parsed message forgets.

use crate::config::MAX_HEADER_FIELDS;

/// Longest field value kept; a longer `Authentication-Results` or `Received` is not from a
/// real MTA and is skipped (its position still counts).
pub(crate) const MAX_VALUE_BYTES: usize = 8 * 1024;

/// One header field.
pub(crate) struct Field<'a> {
    /// The name as written.
    pub(crate) name: &'a [u8],
    /// The value with folding removed (`None` when longer than [`MAX_VALUE_BYTES`]).
    pub(crate) value: Option<String>,
}

impl Field<'_> {
    pub(crate) fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// The header fields of `raw`, top-down.
pub(crate) fn fields(raw: &[u8]) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    let mut rest = raw;
    while out.len() < MAX_HEADER_FIELDS {
        let Some(first_len) = line_end(rest) else {
            break;
        };
        let line = &rest[..first_len];
        if trim_eol(line).is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            break;
        };
        let name = &line[..colon];
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            break;
        }
        let mut value = trim_eol(&line[colon + 1..]).to_vec();
        let mut consumed = first_len;
        // Continuation lines start with a space or a tab.
        while let Some(&next) = rest.get(consumed) {
            if next != b' ' && next != b'\t' {
                break;
            }
            let Some(end) = line_end(&rest[consumed..]) else {
                break;
            };
            if value.len() <= MAX_VALUE_BYTES {
                value.extend_from_slice(trim_eol(&rest[consumed..consumed + end]));
            }
            consumed += end;
        }
        let value = (value.len() <= MAX_VALUE_BYTES)
            .then(|| String::from_utf8_lossy(&value).trim().to_string());
        out.push(Field { name, value });
        rest = &rest[consumed..];
    }
    out
}

/// Length of the first line including its line break (or the rest when unterminated).
fn line_end(bytes: &[u8]) -> Option<usize> {
    if bytes.is_empty() {
        return None;
    }
    Some(
        bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| p + 1),
    )
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_and_stops_at_the_body() {
        let raw = b"A: one\r\n two\r\nB:three\r\n\r\nC: body\r\n";
        let f = fields(raw);
        assert_eq!(f.len(), 2);
        assert!(f[0].is("a"));
        assert_eq!(f[0].value.as_deref(), Some("one two"));
        assert_eq!(f[1].value.as_deref(), Some("three"));
    }

    #[test]
    fn a_huge_value_is_kept_as_a_position_without_its_text() {
        let mut raw = b"X: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_VALUE_BYTES + 10));
        raw.extend_from_slice(b"\r\nY: z\r\n\r\n");
        let f = fields(&raw);
        assert_eq!(f.len(), 2);
        assert!(f[0].value.is_none());
        assert_eq!(f[1].value.as_deref(), Some("z"));
    }

    #[test]
    fn stops_after_the_field_cap() {
        let raw = "X: y\r\n".repeat(MAX_HEADER_FIELDS + 50);
        assert_eq!(fields(raw.as_bytes()).len(), MAX_HEADER_FIELDS);
    }
}
