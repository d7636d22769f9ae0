//! Reject notices: telling a person why their mail was refused (GitLab's
//! `EmailRejectionMailer`, <https://gitlab.com/gitlab-org/gitlab/-/blob/master/app/mailers/email_rejection_mailer.rb>),
//! without ever answering a machine (no backscatter, no loops).
//!
//! A notice is queued in the outbox in the same transaction as the refusal. It is never sent to
//! automatic mail (those are ignored before any handler), to a null or `MAILER-DAEMON` sender, to
//! postern's own addresses, or twice to the same sender for the same reason within an hour.

use postern_mail::Email;
use postern_store::{EnqueueOutcome, NewOutboxMail, Timestamp, Tx};

use crate::content::escape_html;
use crate::error::{ProcessError, Rejection};
use crate::processor::ProcessorConfig;

/// The default for [`ProcessorConfig::reject_notice_window_seconds`]: one notice per sender and
/// reason per hour.
pub const NOTICE_WINDOW_SECONDS: i64 = 3600;

/// Queues the reject notice for `rejection` if one may be sent. Returns whether it was queued.
pub async fn queue_reject_notice(
    tx: &mut Tx,
    email: &Email<'_>,
    rejection: &Rejection,
    inbound_id: i64,
    config: &ProcessorConfig,
) -> Result<bool, ProcessError> {
    if !rejection.kind.sends_reject_notice() {
        return Ok(false);
    }
    // GitLab answers the `From` address; no From, no notice.
    let Some(recipient) = email.from().into_iter().next() else {
        return Ok(false);
    };
    if !may_answer(email, &recipient, config) {
        return Ok(false);
    }
    let window = Timestamp::now().0 / config.reject_notice_window_seconds.max(1);
    let dedupe_key = format!(
        "reject:{}:{}:{window}",
        recipient.to_lowercase(),
        rejection.kind.as_str()
    );
    let raw = compose(email, &recipient, rejection, config)?;
    let queued = tx
        .enqueue_outbox(&NewOutboxMail {
            kind: "reject".to_owned(),
            recipients: vec![recipient],
            raw,
            inbound_id: Some(inbound_id),
            dedupe_key: Some(dedupe_key),
            not_before: None,
        })
        .await?;
    Ok(matches!(queued, EnqueueOutcome::Queued(_)))
}

/// Whether `recipient` may receive an automatic answer at all.
fn may_answer(email: &Email<'_>, recipient: &str, config: &ProcessorConfig) -> bool {
    let local = recipient
        .split('@')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if matches!(local.as_str(), "mailer-daemon" | "postmaster" | "") {
        return false;
    }
    let null_return_path = email.header_values("Return-Path").iter().any(|value| {
        value
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            == "<>"
    });
    if null_return_path {
        return false;
    }
    let own = [
        config.incoming_address.as_ref(),
        config.service_desk_address.as_ref(),
    ];
    let is_own_address = own.iter().flatten().any(|template| {
        template.key_from_address(recipient).is_some()
            || template.as_str().eq_ignore_ascii_case(recipient)
    }) || recipient.eq_ignore_ascii_case(&config.sender_address);
    !is_own_address
}

/// GitLab's rejection mail: `[Rejected] <subject>`, threaded on the original, `Reply-To` only
/// when trying again can work, the reason in text and HTML.
fn compose(
    email: &Email<'_>,
    recipient: &str,
    rejection: &Rejection,
    config: &ProcessorConfig,
) -> Result<Vec<u8>, ProcessError> {
    let subject = format!("[Rejected] {}", email.subject().unwrap_or(""));
    let message_id = format!("{}@{}", random_hex()?, config.host);
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

fn random_hex() -> Result<String, ProcessError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| ProcessError::Temporary(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
