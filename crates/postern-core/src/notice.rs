//! Reject notices: telling a person why their mail was refused (GitLab's
//! `EmailRejectionMailer`, <https://gitlab.com/gitlab-org/gitlab/-/blob/master/app/mailers/email_rejection_mailer.rb>),
//! without ever answering a machine (no backscatter, no loops).
//!
//! A notice is queued in the outbox in the same transaction as the refusal. It is never sent to
//! automatic mail (those are ignored before any handler), to a null sender, to a message the
//! caller says may not be answered, or twice to the same sender for the same reason within
//! [`ProcessorConfig::reject_notice_window_seconds`]; and it passes [`crate::auto_mail`] like
//! every automatic mail (no mailer daemons, no own addresses, the per-recipient and hourly
//! budgets).

use postern_mail::Email;
use postern_store::{NewOutboxMail, Timestamp, Tx};

use crate::config::ProcessorConfig;
use crate::content::escape_html;
use crate::error::{ProcessError, Rejection};

/// The default for [`ProcessorConfig::reject_notice_window_seconds`]: one notice per sender and
/// reason per hour.
pub const NOTICE_WINDOW_SECONDS: i64 = 3600;

/// Queues the reject notice for `rejection` if one may be sent. Returns whether it was queued.
/// `may_auto_reply` is the caller's word on whether the message's sender may be answered at all.
pub async fn queue_reject_notice(
    tx: &mut Tx,
    email: &Email<'_>,
    rejection: &Rejection,
    inbound_id: i64,
    config: &ProcessorConfig,
    may_auto_reply: bool,
) -> Result<bool, ProcessError> {
    if !rejection.kind.sends_reject_notice() {
        return Ok(false);
    }
    // GitLab answers the `From` address; no From, no notice.
    let Some(recipient) = email.from().into_iter().next() else {
        return Ok(false);
    };
    let window = Timestamp::now().0 / config.reject_notice_window_seconds.max(1);
    let dedupe_key = format!(
        "reject:{}:{}:{window}",
        recipient.to_lowercase(),
        rejection.kind.as_str()
    );
    let answerable = may_auto_reply && !has_null_return_path(email);
    let Some(permit) =
        crate::auto_mail::may_send(tx, config, "reject", &recipient, answerable).await?
    else {
        return Ok(false);
    };
    let raw = compose(email, &recipient, rejection, config)?;
    permit
        .queue(
            tx,
            &NewOutboxMail {
                kind: "reject".to_owned(),
                recipients: vec![recipient],
                raw,
                inbound_id: Some(inbound_id),
                dedupe_key: Some(dedupe_key),
                not_before: None,
            },
        )
        .await
}

/// `Return-Path: <>`: a bounce or an auto-reply, which must never be answered.
fn has_null_return_path(email: &Email<'_>) -> bool {
    email.header_values("Return-Path").iter().any(|value| {
        value
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            == "<>"
    })
}

/// GitLab's rejection mail: `[Rejected] <subject>`, threaded on the original, `Reply-To` only
/// when trying again can work, the reason in text and HTML.
fn compose(
    email: &Email<'_>,
    recipient: &str,
    rejection: &Rejection,
    config: &ProcessorConfig,
) -> Result<Vec<u8>, ProcessError> {
    let subject = format!(
        "[Rejected] {}",
        crate::notify::subject_text(email.subject().unwrap_or(""))
    );
    let message_id = format!("{}@{}", postern_vocab::random::hex(16)?, config.host);
    let intro = format!(
        "Unfortunately, your email message to {} could not be processed.",
        config.instance_name
    );
    let text = format!("{intro}\n\n{}\n", rejection.reason);
    let html = format!(
        "<p>{}</p>\n<p>{}</p>\n",
        escape_html(&intro),
        escape_html(&rejection.reason).replace('\n', "<br>\n")
    );
    let builder = mail_builder::MessageBuilder::new()
        .from((
            config.instance_name.as_str(),
            config.sender_address.as_str(),
        ))
        .to(recipient)
        .subject(subject)
        .message_id(message_id);
    let mut builder = crate::notify::automatic(builder, "auto-replied", &config.host)
        .text_body(text)
        .html_body(html);
    if let Some(original) = email.message_id().and_then(postern_mail::header_message_id) {
        builder = builder
            .in_reply_to(original.to_owned())
            .references(original.to_owned());
    }
    if rejection.kind.can_retry()
        && let Some(first_to) = email.to().into_iter().next()
    {
        builder = builder.reply_to(first_to);
    }
    builder
        .write_to_vec()
        .map_err(|e| ProcessError::Internal(format!("cannot compose reject notice: {e}")))
}
