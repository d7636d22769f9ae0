//! Limits on what one message may make postern do. Each is enforced before anything is written,
//! and a message over one is refused with [`ErrorKind::LimitExceeded`](crate::ErrorKind) and a
//! reject notice that names the limit, so the sender knows what to change.

use postern_mail::AttachmentLimits;

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
    /// 100 attachments, 50 MiB of them (the receiver's [`AttachmentLimits`] defaults), 100
    /// quick actions: far above what a person sends, far below what makes one message a burden.
    fn default() -> Self {
        let attachments = AttachmentLimits::default();
        MessageLimits {
            max_attachments: attachments.max_attachments,
            max_attachment_bytes: attachments.max_attachment_bytes,
            max_quick_actions: 100,
        }
    }
}

impl MessageLimits {
    /// The attachment limits, which the receiver's first step checks
    /// (`postern_mail::receiver::by_bytes`).
    pub fn attachments(&self) -> AttachmentLimits {
        AttachmentLimits {
            max_attachments: self.max_attachments,
            max_attachment_bytes: self.max_attachment_bytes,
        }
    }
}

/// Longest stored attachment file name, in bytes: the same cap `postern inspect` shows names
/// with (file systems refuse names over 255 bytes, and a URL path segment gains nothing from
/// more). Longer names are cut keeping the extension, by `postern_mail::attachments::short_name`.
pub use postern_mail::limits::MAX_ATTACHMENT_NAME_BYTES;
