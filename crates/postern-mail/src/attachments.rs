//! Attachments as GitLab's `AttachmentUploader` sees them, and the `.patch` files a new merge
//! request by email applies.
//!
//! An attachment is a leaf part with a file name (from `Content-Disposition`, the `Content-Type`
//! `name`, or `Content-Location`), as in Ruby's `mail` gem; inline images with a name count too.
//! A forwarded `message/rfc822` part contributes the attachments inside it, not itself. In a
//! `multipart/signed` message the signature part (its type equals the `protocol` parameter) is
//! skipped, so an S/MIME `smime.p7s` never becomes an upload.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};
use serde::Serialize;

use crate::message::{Email, content_type_of};

use crate::limits::MAX_ATTACHMENT_NAME_BYTES;
pub use crate::limits::MAX_NESTING;

/// Patches larger than this in total are refused by GitLab ("Patches are too big").
pub const MAX_PATCH_BYTES: usize = 2 * 1024 * 1024;

/// One attachment of a message, borrowing its decoded content from the parsed [`Email`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment<'m> {
    /// The decoded file name.
    pub filename: String,
    /// Lowercased `type/subtype`; `application/octet-stream` when the part declares none.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
    /// The decoded content (not copied: a 10 MB attachment stays in the parsed message only).
    #[serde(skip)]
    pub content: &'m [u8],
}

impl Attachment<'_> {
    /// Whether GitLab would treat this as a patch for "new merge request by email".
    pub fn is_patch(&self) -> bool {
        self.filename.ends_with(".patch")
    }

    /// Whether GitLab links this as an image (`![alt](url)`) rather than a file link.
    pub fn is_media(&self) -> bool {
        ["image/", "video/", "audio/"]
            .iter()
            .any(|prefix| self.content_type.starts_with(prefix))
    }
}

/// Every attachment of `email`, in MIME order, signature parts of signed mail excluded.
pub fn attachments<'m>(email: &'m Email<'_>) -> Vec<Attachment<'m>> {
    let message = email.inner();
    let skipped_type = signature_protocol(message);
    let mut found = Vec::new();
    collect(message, skipped_type.as_deref(), &mut found);
    found
}

/// The `.patch` attachments sorted by file name, as GitLab applies them.
pub fn patches<'a, 'm>(all: &'a [Attachment<'m>]) -> Vec<&'a Attachment<'m>> {
    let mut patches: Vec<&Attachment<'m>> = all.iter().filter(|a| a.is_patch()).collect();
    patches.sort_by(|a, b| a.filename.cmp(&b.filename));
    patches
}

/// `name` cut to [`MAX_ATTACHMENT_NAME_BYTES`] (for display, and for the stored file name), on
/// a character boundary, keeping a short extension (`.png`) at its end.
pub fn short_name(name: &str) -> String {
    if name.len() <= MAX_ATTACHMENT_NAME_BYTES {
        return name.to_owned();
    }
    let extension = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= 16 => &name[dot..],
        _ => "",
    };
    let mut end = MAX_ATTACHMENT_NAME_BYTES - extension.len();
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{extension}", &name[..end])
}

/// For `multipart/signed; protocol="application/pkcs7-signature"`, the normalised protocol type.
fn signature_protocol(message: &Message<'_>) -> Option<String> {
    let root = message.root_part();
    if content_type_of(root).as_deref() != Some("multipart/signed") {
        return None;
    }
    let protocol = root.content_type()?.attribute("protocol")?;
    Some(normalise_type(protocol))
}

/// Lowercase, and `x-` removed from the subtype: `application/x-pkcs7-signature` is the same as
/// `application/pkcs7-signature` for GitLab's comparison.
fn normalise_type(content_type: &str) -> String {
    let lower = content_type.trim().to_ascii_lowercase();
    match lower.split_once('/') {
        Some((main, sub)) => format!("{main}/{}", sub.strip_prefix("x-").unwrap_or(sub)),
        None => lower,
    }
}

/// Walks the part tree with an explicit stack (no recursion on input depth).
fn collect<'m>(
    message: &'m Message<'_>,
    skipped_type: Option<&str>,
    found: &mut Vec<Attachment<'m>>,
) {
    // (message, part id, depth); children are pushed in reverse to keep MIME order.
    let mut stack: Vec<(&'m Message<'_>, u32, usize)> = vec![(message, 0, 0)];
    while let Some((owner, id, depth)) = stack.pop() {
        let Some(part) = owner.parts.get(id as usize) else {
            continue;
        };
        match &part.body {
            PartType::Multipart(children) => {
                if depth < MAX_NESTING {
                    for child in children.iter().rev() {
                        stack.push((owner, *child, depth + 1));
                    }
                }
            }
            PartType::Message(inner) => {
                if depth < MAX_NESTING {
                    stack.push((inner, 0, depth + 1));
                }
            }
            _ => {
                // The top part of a single-part message is the body, never an attachment.
                if depth == 0 {
                    continue;
                }
                let Some(filename) = file_name(part) else {
                    continue;
                };
                let content_type =
                    content_type_of(part).unwrap_or_else(|| "application/octet-stream".to_owned());
                if skipped_type.is_some_and(|skip| normalise_type(&content_type) == skip) {
                    continue;
                }
                let content = part.contents();
                found.push(Attachment {
                    filename,
                    content_type,
                    size: content.len(),
                    content,
                });
            }
        }
    }
}

/// The `mail` gem's notion of an attachment's name.
pub(crate) fn file_name(part: &MessagePart<'_>) -> Option<String> {
    part.attachment_name()
        .or_else(|| part.content_location())
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_prefix_is_ignored_when_comparing_signature_types() {
        assert_eq!(
            normalise_type("application/x-pkcs7-signature"),
            normalise_type("Application/PKCS7-Signature")
        );
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        assert_eq!(short_name("short.png"), "short.png");
        let long = format!("{}.png", "é".repeat(200));
        let short = short_name(&long);
        assert!(short.len() <= MAX_ATTACHMENT_NAME_BYTES, "{}", short.len());
        assert!(short.ends_with("é.png"));
        let no_extension = "x".repeat(300);
        assert_eq!(short_name(&no_extension).len(), MAX_ATTACHMENT_NAME_BYTES);
    }

    #[test]
    fn patches_sort_by_file_name() {
        let make = |name: &str| Attachment {
            filename: name.into(),
            content_type: "text/x-patch".into(),
            size: 0,
            content: &[],
        };
        let all = vec![make("0002-b.patch"), make("x.png"), make("0001-a.patch")];
        let names: Vec<_> = patches(&all).iter().map(|a| a.filename.as_str()).collect();
        assert_eq!(names, ["0001-a.patch", "0002-b.patch"]);
    }
}
