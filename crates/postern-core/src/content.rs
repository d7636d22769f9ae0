//! The text a handler stores: GitLab's four message variants (spec §4.4), attachments uploaded
//! and linked, and quick actions redacted when the author is the Support Bot.

use std::path::PathBuf;

use postern_mail::reply::{finish_reply, selected_body};
use postern_mail::{Email, ReplyOptions, redact_quick_actions};
use postern_store::{NewUpload, Tx, new_upload_secret};

use crate::error::ProcessError;

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
    fn options(self) -> ReplyOptions {
        match self {
            Variant::Trimmed => ReplyOptions::default(),
            Variant::TrimmedWithAppendedReply => ReplyOptions {
                append_reply: true,
                ..ReplyOptions::default()
            },
            Variant::Untrimmed => ReplyOptions {
                trim_reply: false,
                append_reply: false,
                allow_only_quotes: false,
            },
            Variant::UntrimmedWithQuotes => ReplyOptions {
                trim_reply: false,
                append_reply: false,
                allow_only_quotes: true,
            },
        }
    }
}

/// Where uploads go and how large one may be.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    /// Directory under which `<secret>/<file name>` folders are written.
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
    /// Works out every variant of `email`'s body.
    pub fn of(email: &Email<'_>) -> MessageTexts {
        let selected = selected_body(email);
        let texts = |variant: Variant| finish_reply(&selected, variant.options());
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

/// Uploads every attachment of `email` (signature parts excluded, `.patch` files excluded when
/// `skip_patches`), writing files under the policy's directory and recording them in the store.
pub async fn upload_attachments(
    tx: &mut Tx,
    email: &Email<'_>,
    project_id: i64,
    author_id: i64,
    policy: &UploadPolicy,
    skip_patches: bool,
) -> Result<Vec<UploadLink>, ProcessError> {
    let mut links = Vec::new();
    for attachment in postern_mail::attachments(email) {
        if attachment.size > policy.max_bytes || (skip_patches && attachment.is_patch()) {
            continue;
        }
        let secret = new_upload_secret()?;
        let filename = sanitize_file_name(&attachment.filename);
        let relative = PathBuf::from(&secret).join(&filename);
        // Durable with the transaction that records the upload, gone if it rolls back.
        tx.write_file(&policy.directory.join(&relative), attachment.content)
            .await?;
        let upload = tx
            .create_upload(NewUpload {
                project_id,
                secret: secret.clone(),
                filename: filename.clone(),
                content_type: attachment.content_type.clone(),
                size: i64::try_from(attachment.size).unwrap_or(i64::MAX),
                uploaded_by: Some(author_id),
                relative_path: relative.to_string_lossy().into_owned(),
            })
            .await?;
        let url = format!("/uploads/{}/{}", upload.secret, upload.filename);
        let markdown = if attachment.is_media() {
            format!("![{}]({url})", file_stem(&filename))
        } else {
            format!("[{filename}]({url})")
        };
        links.push(UploadLink { url, markdown });
    }
    Ok(links)
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
        "attachment".to_owned()
    } else {
        cleaned
    }
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
}
