//! Identifiers written by senders (a Message-ID above all) as postern keeps and shows them.
//!
//! A sender may put any length and any byte into such a header. Stored as it is, it could
//! overflow an index entry or carry NUL (which PostgreSQL refuses in text); logged as it is, it
//! could flood a log line or move a terminal's cursor. So every place that keeps or prints one
//! goes through this module: [`is_plain`] says whether the value may be used as it is,
//! [`bounded`] makes any value fit.

/// The longest identifier kept or shown as it is, in bytes: far above real Message-IDs (under
/// 100 bytes), far below an index entry's limit.
pub const MAX_IDENTIFIER_BYTES: usize = 255;

/// Whether `value` may be stored, indexed and shown as it is: at most
/// [`MAX_IDENTIFIER_BYTES`] bytes and no control character (NUL included).
pub fn is_plain(value: &str) -> bool {
    value.len() <= MAX_IDENTIFIER_BYTES && !value.chars().any(char::is_control)
}

/// `value` made fit to store as informational text or to log: control characters removed and
/// cut to [`MAX_IDENTIFIER_BYTES`] bytes (at a character boundary), with `…` marking a cut.
pub fn bounded(value: &str) -> String {
    let printable: String = value.chars().filter(|c| !c.is_control()).collect();
    if printable.len() <= MAX_IDENTIFIER_BYTES {
        return printable;
    }
    let mut cut = MAX_IDENTIFIER_BYTES - '…'.len_utf8();
    while !printable.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &printable[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_stay_as_they_are() {
        assert!(is_plain("m-1@example.org"));
        assert_eq!(bounded("m-1@example.org"), "m-1@example.org");
        assert!(!is_plain("a\0b"));
        assert!(!is_plain(&"a".repeat(MAX_IDENTIFIER_BYTES + 1)));
        assert!(is_plain(&"a".repeat(MAX_IDENTIFIER_BYTES)));
    }

    #[test]
    fn hostile_values_are_cut_and_cleaned() {
        let hostile = format!("{}\u{1b}[31m\r\n\0", "é".repeat(400));
        let kept = bounded(&hostile);
        assert!(kept.len() <= MAX_IDENTIFIER_BYTES, "{}", kept.len());
        assert!(kept.ends_with('…'));
        assert!(!kept.chars().any(char::is_control));
        assert!(is_plain(&kept));
        assert_eq!(bounded("a\u{1b}b\0"), "ab");
    }
}
