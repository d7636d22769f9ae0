//! Identifiers the store mints or derives: tokens, reply keys, discussion ids, upload secrets,
//! project slugs and the content identity of an inbound message.
//!
//! Formats follow GitLab (reply keys as in
//! <https://gitlab.com/gitlab-org/gitlab/-/blob/master/gems/gitlab-email_handler/lib/gitlab/email_handler/reply_key.rb>,
//! `glimt-` incoming-email tokens, lower-case path slugs) so addresses and keys look the same to
//! users and to mail_room-era tooling.

use postern_vocab::random;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// Length of a reply key: a 128-bit number in base 36 needs at most 25 digits.
pub(crate) const REPLY_KEY_LEN: usize = 25;

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    random::bytes::<N>().map_err(|e| StoreError::Random(e.to_string()))
}

fn random_u128() -> Result<u128, StoreError> {
    Ok(u128::from_le_bytes(random_bytes::<16>()?))
}

/// Lowercase base 36 (`0-9a-z`) of `n`, without padding.
pub fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(REPLY_KEY_LEN);
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    // Only ASCII digits were pushed.
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) use postern_vocab::random::to_hex as hex;

/// 32 lowercase hex characters of a random 128-bit number (raw message file names).
pub(crate) fn random_file_stem() -> Result<String, StoreError> {
    Ok(hex(&random_bytes::<16>()?))
}

/// A user's incoming-email token: `glimt-` + base 36 of a random 128-bit number (GitLab's
/// current format). It is the secret part of the user's new-issue/new-MR addresses.
pub fn new_incoming_email_token() -> Result<String, StoreError> {
    Ok(format!("glimt-{}", base36(random_u128()?)))
}

/// A reply key: a random 128-bit number in base 36, left-padded with `0` to 25 characters.
pub fn new_reply_key() -> Result<String, StoreError> {
    Ok(format!(
        "{:0>width$}",
        base36(random_u128()?),
        width = REPLY_KEY_LEN
    ))
}

/// A new discussion id: 40 lowercase hex characters (160 random bits), like GitLab's SHA1-shaped
/// discussion ids.
pub fn new_discussion_id() -> Result<String, StoreError> {
    Ok(hex(&random_bytes::<20>()?))
}

/// An upload secret: 32 lowercase hex characters, the unguessable part of `/uploads/<secret>/…`.
pub fn new_upload_secret() -> Result<String, StoreError> {
    Ok(hex(&random_bytes::<16>()?))
}

/// GitLab's `full_path_slug`: lowercase the full path, replace every character outside
/// `[a-z0-9]` with `-`, keep at most 63 characters, then strip leading and trailing `-`.
///
/// ```
/// assert_eq!(postern_store::full_path_slug("GitLab-org/GitLab_CE"), "gitlab-org-gitlab-ce");
/// ```
pub fn full_path_slug(full_path: &str) -> String {
    let replaced: String = full_path
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    replaced.trim_matches('-').to_owned()
}

/// The content identity of an inbound message: the Message-ID (or empty when there is none),
/// a `|`, and the lowercase hex SHA-256 of `body`.
///
/// The caller decides what `body` is (the store never parses mail); intake passes the raw
/// message bytes after the header block, so the same message that arrives twice — through IMAP
/// and through LMTP, or redelivered after a crash — gets the same identity even though the
/// transport added different `Received:` headers.
///
/// The Message-ID is written by the sender, so it may be of any length or hold any byte. The
/// identity is a unique key, and an index entry has a size limit (about 2.7 KB on PostgreSQL),
/// so a Message-ID that is not a short printable value ([`is_plain_identifier`]) is replaced by
/// `sha256:` and its own hash: the identity stays unique and bounded whatever the header holds.
pub fn content_identity(message_id: Option<&str>, body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!(
        "{}|{}",
        message_id.map(indexed_identifier).unwrap_or_default(),
        hex(&digest)
    )
}

/// A header-derived identifier (a Message-ID) as it goes into a unique or indexed column:
/// itself when it is a short printable value ([`is_plain_identifier`]), else `sha256:` and the
/// hash of its bytes. Writing and looking up through this one function keeps both sides equal.
pub fn indexed_identifier(value: &str) -> std::borrow::Cow<'_, str> {
    if is_plain_identifier(value) {
        std::borrow::Cow::Borrowed(value)
    } else {
        std::borrow::Cow::Owned(format!("sha256:{}", hex(&Sha256::digest(value.as_bytes()))))
    }
}

/// The longest header-derived identifier (Message-ID) stored as it is, in bytes.
pub use postern_vocab::identifier::MAX_IDENTIFIER_BYTES as MAX_STORED_IDENTIFIER_BYTES;

/// Whether `value` may be stored and indexed as it is (short, no control character).
pub use postern_vocab::identifier::is_plain as is_plain_identifier;

/// `value` made storable as informational text (control characters removed, cut with `…`).
pub use postern_vocab::identifier::bounded as bounded_identifier;

/// `text` without NUL characters, which PostgreSQL refuses in a text column (SQLite would
/// store them, and then every reader would have to cope). Other control characters are kept:
/// line breaks and tabs are text.
pub fn without_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Lowercased form used for case-insensitive unique columns (emails, usernames, paths).
/// Computed in Rust, not with SQL `lower()`, so both backends agree on non-ASCII text.
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_and_padding() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(u128::MAX).len(), 25);
        let key = new_reply_key().expect("rng works in tests");
        assert_eq!(key.len(), 25);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
    }

    #[test]
    fn tokens_have_gitlab_shapes() {
        let t = new_incoming_email_token().expect("rng works in tests");
        assert!(t.starts_with("glimt-"));
        let s = new_upload_secret().expect("rng works in tests");
        assert_eq!(s.len(), 32);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(new_discussion_id().expect("rng works in tests").len(), 40);
    }

    #[test]
    fn slug_rules() {
        assert_eq!(
            full_path_slug("gitlab-org/gitlab-ce"),
            "gitlab-org-gitlab-ce"
        );
        assert_eq!(
            full_path_slug("Group/Sub.Group/My_Project"),
            "group-sub-group-my-project"
        );
        assert_eq!(full_path_slug("-a/b-"), "a-b");
        let long = format!("{}/{}", "a".repeat(40), "b".repeat(40));
        let slug = full_path_slug(&long);
        assert_eq!(slug.len(), 63);
        // Truncation happens before stripping: a `-` landing at position 63 is removed.
        let edge = format!("{}/x", "a".repeat(62));
        assert_eq!(full_path_slug(&edge), "a".repeat(62));
    }

    #[test]
    fn content_identity_shape() {
        let id = content_identity(Some("<a@b>"), b"hello");
        assert_eq!(
            id,
            "<a@b>|2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(content_identity(None, b"").starts_with('|'));
    }
}
