//! Verifying a Service Desk custom email address: postern mails a token to the
//! address's `+verify` form; the mail provider forwards it back to postern, and the Service Desk
//! handler checks it. Both ends queue their mail here, in the caller's transaction.

use mail_builder::MessageBuilder;
use postern_store::{
    CustomEmailVerificationState, NewOutboxMail, Project, Role, Timestamp, Tx, User,
};

use crate::config::ProcessorConfig;
use crate::content::escape_html;
use crate::error::ProcessError;

/// Characters in a verification token: GitLab's tokens match `[A-Za-z0-9_-]{12}`, the URL-safe
/// Base64 alphabet.
const TOKEN_LENGTH: usize = 12;

/// Starts verification of the project's custom email: records a fresh token and queues the
/// verification mail to `local+verify@domain`. Returns the address it was sent to.
pub async fn start(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    triggerer: &User,
) -> Result<String, ProcessError> {
    let mut settings = project.service_desk.clone();
    let custom = settings
        .custom_email
        .clone()
        .ok_or_else(|| ProcessError::Internal("the project has no custom email".to_owned()))?;
    let Some((local, domain)) = custom.split_once('@') else {
        return Err(ProcessError::Internal(format!("not an address: {custom}")));
    };
    let verify_address = format!("{local}+verify@{domain}");
    let token = postern_vocab::random::url_safe(TOKEN_LENGTH)?;
    settings.custom_email_enabled = false;
    settings.custom_email_verification_state = Some(CustomEmailVerificationState::Started);
    settings.custom_email_verification_token = Some(token.clone());
    settings.custom_email_verification_error = None;
    settings.custom_email_verification_triggered_at = Some(Timestamp::now());
    settings.custom_email_verification_triggerer_id = Some(triggerer.id);
    tx.update_service_desk(project.id, &settings).await?;
    let text = format!(
        "This email is sent to verify that {custom} forwards to {}.\n\nVerification token: {token}\n",
        project.full_path
    );
    // Not marked automatic: it must pass postern's own intake when it is forwarded back.
    let raw = message(
        config,
        &custom,
        &verify_address,
        "Verify custom email address",
        &text,
        false,
    )?;
    tx.enqueue_outbox(&NewOutboxMail {
        kind: "custom_email_verification".to_owned(),
        recipients: vec![verify_address.clone()],
        raw,
        inbound_id: None,
        dedupe_key: Some(format!("verify:{}:{token}", project.id)),
        not_before: None,
    })
    .await?;
    Ok(verify_address)
}

/// Tells the project's owners and whoever started the verification how it ended (each mail
/// within the automatic-mail limits of [`crate::auto_mail`]).
pub async fn report_result(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    error: Option<&str>,
) -> Result<usize, ProcessError> {
    let settings = &project.service_desk;
    let custom = settings.custom_email.clone().unwrap_or_default();
    let mut recipients = Vec::new();
    for member in tx.list_members(project.id).await? {
        if member.role == Role::Owner {
            recipients.push(member.user_id);
        }
    }
    recipients.extend(settings.custom_email_verification_triggerer_id);
    recipients.sort_unstable();
    recipients.dedup();
    let text = match error {
        None => format!(
            "The custom email address {custom} of {} is verified. You can now enable it for Service Desk.\n",
            project.full_path
        ),
        Some(error) => format!(
            "The verification of {custom} for {} failed: {error}.\n",
            project.full_path
        ),
    };
    let mut queued = 0;
    for user_id in recipients {
        let Some(user) = tx.user_by_id(user_id).await? else {
            continue;
        };
        let Some(to) = user.primary_email().map(str::to_owned) else {
            continue;
        };
        // Automatic mail caused by whoever sent the verification mail, so it passes the
        // limits; it goes to the project's people, not to that sender, so the sender's
        // authentication does not decide it.
        let kind = "custom_email_verification_result";
        let Some(permit) = crate::auto_mail::may_send(tx, config, kind, &to, true).await? else {
            continue;
        };
        let raw = message(
            config,
            &config.sender_address,
            &to,
            "Service Desk custom email address verification result",
            &text,
            true,
        )?;
        let mail = NewOutboxMail {
            kind: kind.to_owned(),
            recipients: vec![to],
            raw,
            inbound_id: None,
            dedupe_key: None,
            not_before: None,
        };
        if permit.queue(tx, &mail).await? {
            queued += 1;
        }
    }
    Ok(queued)
}

fn message(
    config: &ProcessorConfig,
    from: &str,
    to: &str,
    subject: &str,
    text: &str,
    automatic: bool,
) -> Result<Vec<u8>, ProcessError> {
    let mut builder = MessageBuilder::new()
        .from((config.instance_name.as_str(), from))
        .to(to)
        .subject(subject);
    if automatic {
        builder = crate::notify::automatic(builder, "auto-generated", &config.host);
    }
    builder
        .text_body(text.to_owned())
        .html_body(format!(
            "<p>{}</p>\n",
            escape_html(text).replace('\n', "<br>\n")
        ))
        .write_to_vec()
        .map_err(|e| ProcessError::Internal(format!("cannot compose verification mail: {e}")))
}
