//! Limits on what one message may make postern do. Each is enforced before anything is written,
//! and a message over one is refused with [`ErrorKind::LimitExceeded`](crate::ErrorKind) and a
//! reject notice that names the limit, so the sender knows what to change.

/// Limits per message, configurable; [`MessageLimits::default`] is the production default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// Attachments uploaded from one message. Each is a file and a row, written in the
    /// message's transaction; tens of thousands of one-byte attachments cost a small mail.
    pub max_attachments: usize,
    /// Decoded bytes of all attachments of one message together.
    pub max_attachment_bytes: usize,
    /// Quick actions run from one message (a comment of nothing but `/label` lines).
    pub max_quick_actions: usize,
}

impl Default for MessageLimits {
    /// 100 attachments, 50 MiB of them, 100 quick actions: far above what a person sends, far
    /// below what makes one message a burden.
    fn default() -> Self {
        MessageLimits {
            max_attachments: 100,
            max_attachment_bytes: 50 * 1024 * 1024,
            max_quick_actions: 100,
        }
    }
}

/// Longest stored attachment file name, in bytes: the same cap `postern inspect` shows names
/// with (file systems refuse names over 255 bytes, and a URL path segment gains nothing from
/// more). Longer names are cut keeping the extension, by `postern_mail::attachments::short_name`.
pub use postern_mail::limits::MAX_ATTACHMENT_NAME_BYTES;
