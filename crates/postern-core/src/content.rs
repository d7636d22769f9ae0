//! The text a handler stores: GitLab's four message variants (`ReplyProcessing`, see
//! <https://gitlab.com/gitlab-org/gitlab/-/blob/master/lib/gitlab/email/handler/reply_processing.rb>),
//! attachments uploaded and linked, and quick actions redacted when the author is the Support
//! Bot.

use std::path::PathBuf;

use postern_mail::reply::{finish_reply, selected_body};
use postern_mail::trim::TrimMode;
use postern_mail::{Email, OverLimit, ReplyOptions, redact_quick_actions};
use postern_store::{NewUpload, StagedUploads, Store, Tx, new_upload_secret};

use crate::error::{ErrorKind, ProcessError, Rejection};

/// Which of GitLab's message variants a handler wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `message`: trimmed reply (comments on merge requests, merge request descriptions).
    Trimmed,
    /// `message_with_appended_reply`: trimmed, with the quoted part appended in `<details>`
    /// (comments on issues).
    TrimmedWithAppendedReply,
    /// `message_including_reply`: nothing trimmed (comments by issue address, Service Desk replies).
    Untrimmed,
    /// `message_including_reply_or_only_quotes`: nothing trimmed and a quote-only body kept (new
    /// issues and tickets).
    UntrimmedWithQuotes,
}

impl Variant {
    fn options(self, trim_mode: TrimMode) -> ReplyOptions {
        match self {
            Variant::Trimmed => ReplyOptions {
                trim_mode,
                ..ReplyOptions::default()
            },
            Variant::TrimmedWithAppendedReply => ReplyOptions {
                append_reply: true,
                trim_mode,
                ..ReplyOptions::default()
            },
            Variant::Untrimmed => ReplyOptions {
                trim_reply: false,
                append_reply: false,
                allow_only_quotes: false,
                trim_mode,
            },
            Variant::UntrimmedWithQuotes => ReplyOptions {
                trim_reply: false,
                append_reply: false,
                allow_only_quotes: true,
                trim_mode,
            },
        }
    }
}

/// Where uploads go and how large one may be.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    /// Directory under which `<secret>/<file name>` folders are written, when the store keeps
    /// uploads as files (SQLite; a PostgreSQL store keeps their bytes itself, see
    /// [`Store::stage_uploads`]).
    pub directory: PathBuf,
    /// Larger attachments are skipped silently, as GitLab's `max_attachment_size` does.
    pub max_bytes: usize,
}

/// An uploaded attachment's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLink {
    /// `/uploads/<secret>/<file name>`.
    pub url: String,
    /// `![alt](url)` for images, video and audio, `[name](url)` otherwise.
    pub markdown: String,
}

/// A message's body text in each of GitLab's variants, stripped, without attachments or
/// redaction.
///
/// Choosing the part, converting HTML and trimming are the slow, input-sized part of handling a
/// message, and they depend on nothing but its bytes, so they are done once, before the
/// transaction that records the outcome: the handlers only pick the variant they need.
#[derive(Debug, Clone, Default)]
pub struct MessageTexts {
    /// `Trimmed` and `TrimmedWithAppendedReply` (the same text; the second shows `elided`).
    trimmed: String,
    /// What trimming cut away.
    elided: Option<String>,
    untrimmed: String,
    untrimmed_with_quotes: String,
}

impl MessageTexts {
    /// Works out every variant of `email`'s body, trimming in `trim_mode`.
    pub fn of(email: &Email<'_>, trim_mode: TrimMode) -> MessageTexts {
        // NUL is no text (PostgreSQL refuses it in a text column), whatever the part decoded to.
        let selected = selected_body(email).replace('\0', "");
        let texts = |variant: Variant| finish_reply(&selected, variant.options(trim_mode));
        let trimmed = texts(Variant::Trimmed);
        MessageTexts {
            trimmed: trimmed.body.trim().to_owned(),
            elided: trimmed.elided,
            untrimmed: texts(Variant::Untrimmed).body.trim().to_owned(),
            untrimmed_with_quotes: texts(Variant::UntrimmedWithQuotes).body.trim().to_owned(),
        }
    }

    /// The body of `variant`, and what trimming cut away (for the trimmed variants).
    pub fn body(&self, variant: Variant) -> (String, Option<String>) {
        match variant {
            Variant::Trimmed | Variant::TrimmedWithAppendedReply => {
                (self.trimmed.clone(), self.elided.clone())
            }
            Variant::Untrimmed => (self.untrimmed.clone(), None),
            Variant::UntrimmedWithQuotes => (self.untrimmed_with_quotes.clone(), None),
        }
    }
}

/// Builds the stored text: body, then each attachment link after a blank line, then redaction
/// for the Support Bot, then (for issue comments) the elided quote in `<details>`.
pub fn compose(
    body: &str,
    elided: Option<&str>,
    links: &[UploadLink],
    support_bot: bool,
    variant: Variant,
) -> String {
    let mut message = body.to_owned();
    for link in links {
        message.push_str("\n\n");
        message.push_str(&link.markdown);
    }
    if support_bot {
        message = redact_quick_actions(&message);
    }
    if variant != Variant::TrimmedWithAppendedReply {
        return message;
    }
    let reply = elided.unwrap_or("").trim();
    if message.trim().is_empty() || reply.is_empty() {
        return message;
    }
    // GitLab does not append the quote to a message made only of quick actions.
    let (without_commands, _) = postern_mail::extract_quick_actions(&message);
    if without_commands.trim().is_empty() {
        return message;
    }
    format!("{message}\n\n<details><summary>...</summary>\n\n{reply}\n\n</details>")
}

/// One attachment, staged before the transaction and waiting for the row that records it.
#[derive(Debug, Clone)]
struct StagedUpload {
    secret: String,
    filename: String,
    /// `<secret>/<file name>`: its place under the upload directory, and its key in the store's
    /// staged bytes.
    relative: String,
    content_type: String,
    size: usize,
    is_media: bool,
    is_patch: bool,
}

/// The attachments of one message, staged with the store before its transaction (on SQLite,
/// written and made durable: the slow part of storing them), so that the transaction only
/// records them. Those no handler records (a refused message, a patch that became a commit)
/// are discarded when this is dropped.
#[derive(Debug, Default)]
pub struct Uploads {
    staged: Vec<StagedUpload>,
    bytes: StagedUploads,
}

impl Uploads {
    /// Stages every attachment of `email` that a handler may upload (as GitLab's
    /// `max_attachment_size`, larger ones are skipped silently) with `store`, which keeps them
    /// where its backend says (files under the policy's directory, or itself).
    pub async fn stage(
        email: &Email<'_>,
        policy: &UploadPolicy,
        store: &Store,
    ) -> Result<Uploads, ProcessError> {
        let mut uploads = Uploads::default();
        let mut files = Vec::new();
        for attachment in postern_mail::attachments(email) {
            if attachment.size > policy.max_bytes {
                continue;
            }
            let secret = new_upload_secret()?;
            let filename = sanitize_file_name(&attachment.filename);
            // The file name is sanitised: no separator, never `.` or `..`.
            let relative = format!("{secret}/{filename}");
            files.push((relative.clone(), attachment.content));
            uploads.staged.push(StagedUpload {
                secret,
                filename,
                relative,
                content_type: attachment.content_type.clone(),
                size: attachment.size,
                is_media: attachment.is_media(),
                is_patch: attachment.is_patch(),
            });
        }
        uploads.bytes = store.stage_uploads(&policy.directory, &files).await?;
        Ok(uploads)
    }

    /// Nothing was staged.
    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }
}

/// Records the staged attachments of a message as uploads of `project_id` (`.patch` files
/// excluded when `skip_patches`) and returns their links. Their bytes become part of `tx`.
pub async fn upload_attachments(
    tx: &mut Tx,
    uploads: &mut Uploads,
    project_id: i64,
    author_id: i64,
    skip_patches: bool,
) -> Result<Vec<UploadLink>, ProcessError> {
    let mut links = Vec::new();
    let staged = std::mem::take(&mut uploads.staged);
    for attachment in staged {
        if skip_patches && attachment.is_patch {
            continue;
        }
        let upload = tx
            .create_upload(
                NewUpload {
                    project_id,
                    secret: attachment.secret.clone(),
                    filename: attachment.filename.clone(),
                    content_type: attachment.content_type.clone(),
                    size: i64::try_from(attachment.size).unwrap_or(i64::MAX),
                    uploaded_by: Some(author_id),
                    relative_path: attachment.relative.clone(),
                },
                &mut uploads.bytes,
            )
            .await?;
        let url = format!("/uploads/{}/{}", upload.file.secret, upload.file.filename);
        let markdown = if attachment.is_media {
            format!("![{}]({url})", file_stem(&attachment.filename))
        } else {
            format!("[{}]({url})", attachment.filename)
        };
        links.push(UploadLink { url, markdown });
    }
    Ok(links)
}

/// The refusal of a message over an attachment limit (found by the receiver's first step,
/// `postern_mail::receiver::by_bytes`, before any attachment is written); the reason names the
/// limit.
pub fn over_limit(over: OverLimit) -> Rejection {
    let reason = match over {
        OverLimit::Attachments { count, max } => {
            format!("The email has {count} attachments; at most {max} are accepted from one email.")
        }
        OverLimit::AttachmentBytes { bytes, max } => format!(
            "The email's attachments are {bytes} bytes together; at most {max} bytes are accepted from one email."
        ),
    };
    Rejection::with_reason(ErrorKind::LimitExceeded, reason)
}

/// Refuses more quick actions from one message than `limits` allow.
pub fn check_quick_actions(
    scan: &postern_mail::QuickActionScan,
    max_quick_actions: usize,
) -> Result<(), Rejection> {
    if scan.total > max_quick_actions {
        return Err(Rejection::with_reason(
            ErrorKind::LimitExceeded,
            format!(
                "The email has {} quick actions; at most {} run from one email.",
                scan.total, max_quick_actions
            ),
        ));
    }
    Ok(())
}

/// `text` without its quick-action lines and the actions removed, refused when it has more
/// than `max_quick_actions` (the scan counts the rest without keeping them).
pub fn extract_checked_quick_actions(
    text: &str,
    max_quick_actions: usize,
) -> Result<(String, Vec<postern_mail::QuickAction>), Rejection> {
    let (remaining, scan) = postern_mail::extract_quick_actions_capped(text, max_quick_actions);
    check_quick_actions(&scan, max_quick_actions)?;
    Ok((remaining, scan.actions))
}

/// A file name safe on disk and in a URL: only `[A-Za-z0-9._+-]` (others become `_`, as
/// CarrierWave's sanitiser does), never empty, never a dot-only name.
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        return "attachment".to_owned();
    }
    postern_mail::attachments::short_name(&cleaned)
}

/// Text for an HTML mail part: the five characters HTML gives meaning to, escaped.
pub(crate) fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn file_stem(name: &str) -> &str {
    match name.rfind('.') {
        Some(dot) if dot > 0 => &name[..dot],
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_ATTACHMENT_NAME_BYTES;

    #[test]
    fn appended_reply_goes_into_details() {
        let text = compose(
            "Cool!",
            Some("> quoted"),
            &[],
            false,
            Variant::TrimmedWithAppendedReply,
        );
        assert_eq!(
            text,
            "Cool!\n\n<details><summary>...</summary>\n\n> quoted\n\n</details>"
        );
    }

    #[test]
    fn commands_only_message_gets_no_details() {
        let text = compose(
            "/close",
            Some("> q"),
            &[],
            false,
            Variant::TrimmedWithAppendedReply,
        );
        assert_eq!(text, "/close");
    }

    #[test]
    fn support_bot_text_is_redacted_after_links() {
        let link = UploadLink {
            url: "/uploads/s/a.png".into(),
            markdown: "![a](/uploads/s/a.png)".into(),
        };
        let text = compose("Hi\n/close", None, &[link], true, Variant::Untrimmed);
        // GitLab's pattern swallows the blank line after a command (`\s*\n`), and redaction
        // puts back one newline.
        assert_eq!(text, "Hi\n`/close`\n![a](/uploads/s/a.png)");
    }

    #[test]
    fn file_names_are_sanitised() {
        assert_eq!(sanitize_file_name("../../etc/pass wd.txt"), "pass_wd.txt");
        assert_eq!(sanitize_file_name(".."), "attachment");
        assert_eq!(sanitize_file_name("bricks.png"), "bricks.png");
        assert_eq!(file_stem("bricks.png"), "bricks");
    }

    #[test]
    fn long_file_names_are_cut_keeping_the_extension() {
        let long = format!("{}.png", "a".repeat(1000));
        let cut = sanitize_file_name(&long);
        assert_eq!(cut.len(), MAX_ATTACHMENT_NAME_BYTES);
        assert!(cut.ends_with("a.png"), "{cut}");
        // A long "extension" is not one.
        let dotted = format!("x.{}", "b".repeat(500));
        assert_eq!(sanitize_file_name(&dotted).len(), MAX_ATTACHMENT_NAME_BYTES);
    }
}
