//! Service Desk: mail from people outside the project becomes a ticket authored by
//! the Support Bot; their replies join the ticket; `+verify` mail checks a custom address.

use std::sync::LazyLock;

use postern_mail::key::custom_email_reply_parts;
use postern_mail::{ProjectRef, extract_quick_actions};
use postern_store::{
    CustomEmailVerificationState, IssueType, Mailbox, NewIssue, NewNote, Noteable, Project,
    Timestamp, Tx, User, Visibility,
};
use regex::Regex;

use super::{
    CommentRequest, Context, Handled, after_comment, create_comment, created_note,
    reopen_on_external_note, resolve_project,
};
use crate::content::{self, Variant};
use crate::error::{ErrorKind, ProcessError, Rejection};
use crate::handlers::issue::{cut_title, title_errors};
use crate::permissions::Actor;
use crate::processor::Created;
use crate::quick;
use crate::sender::{self, SenderTrust};

/// GitLab's cap on email participants of one issue.
pub const MAX_PARTICIPANTS: usize = 10;

/// How long after it was triggered a verification mail is accepted.
pub const VERIFICATION_SECONDS: i64 = 30 * 60;

/// Handles a Service Desk key: verification, reply, or new ticket.
pub async fn service_desk(
    context: &mut Context<'_, '_>,
    reference: &ProjectRef,
    mailbox: Mailbox,
) -> Result<Handled, ProcessError> {
    let email = context.email;
    let config = context.config;
    let tx = &mut *context.tx;
    let uploads = &mut *context.uploads;
    let project = resolve_project(tx, reference)
        .await?
        .ok_or(ErrorKind::ProjectNotFound)?;
    if !service_desk_enabled(config, &project, mailbox) {
        // GitLab's answer (the sender learns nothing of the project); the operator is told
        // why.
        return Err(Rejection::new(ErrorKind::ProjectNotFound)
            .recorded_as(format!(
                "Service Desk is disabled for {} (the sender is told the project was not found)",
                project.full_path
            ))
            .into());
    }
    let bot = tx.ensure_support_bot().await?;
    let parts = Parts {
        email,
        texts: context.texts,
        config,
        may_auto_reply: context.may_auto_reply,
    };

    if email
        .to()
        .first()
        .is_some_and(|address| address.contains("+verify"))
    {
        verify_custom_email(tx, &parts, &project).await?;
        return Ok(Handled::default());
    }

    let from_address = sender::identity(email);
    if let Some(ticket) = ticket_replied_to(tx, &project, email).await?
        && joins_ticket(tx, &parts, &ticket, context.trust).await?
    {
        let (body, _) = parts.texts.body(Variant::Untrimmed);
        let links = content::upload_attachments(tx, uploads, project.id, bot.id, false).await?;
        let text = content::compose(&body, None, &links, true, Variant::Untrimmed);
        let note = create_comment(
            tx,
            CommentRequest {
                project: &project,
                author: &bot,
                role: None,
                noteable: Noteable::Issue(ticket.id),
                issue: Some(&ticket),
                text,
                discussion_id: None,
                external_author: from_address.clone(),
                internal: false,
                config,
            },
        )
        .await?;
        add_participants(tx, &parts, &project, ticket.id, from_address.as_deref()).await?;
        reopen_on_external_note(tx, &project, &ticket, &bot).await?;
        if let Some(note) = &note {
            after_comment(tx, config, &project, &bot, note, Some(&ticket)).await?;
        }
        return Ok(Handled {
            created: note.map(|note| created_note(&project, &note)),
        });
    }
    new_ticket(tx, &parts, uploads, &project, &bot, from_address).await
}

/// Most `References` ids looked up for the ticket a mail answers: a reply names its ticket's
/// first mail among the last few; the header is the sender's to make long.
const MAX_REFERENCES_LOOKED_UP: usize = 20;

/// The ticket of this project whose first mail the message answers: `In-Reply-To`, else the
/// `References` ids, newest first.
async fn ticket_replied_to(
    tx: &mut Tx,
    project: &Project,
    email: &postern_mail::Email<'_>,
) -> Result<Option<postern_store::Issue>, ProcessError> {
    let mut ids: Vec<String> = email.in_reply_to().into_iter().collect();
    ids.extend(
        email
            .references()
            .into_iter()
            .rev()
            .take(MAX_REFERENCES_LOOKED_UP),
    );
    for id in ids {
        if let Some(ticket) = tx.ticket_by_message_id(project.id, &id).await? {
            return Ok(Some(ticket));
        }
    }
    Ok(None)
}

/// Whether a mail that answers `ticket` joins it. Its Message-ID is no secret (every copy of
/// the thread carries it), so naming it is not enough: the mail's `From` must already be one of
/// the ticket's participants (with a passing sender-authentication policy), or the mail must be
/// addressed with postern's reply key for this ticket. Anyone else opens a ticket of their own,
/// and so never becomes a participant who receives the ticket's answers.
async fn joins_ticket(
    tx: &mut Tx,
    context: &Parts<'_, '_>,
    ticket: &postern_store::Issue,
    trust: SenderTrust,
) -> Result<bool, ProcessError> {
    let email = context.email;
    let mut participants = ticket.email_participants.clone();
    participants.extend(ticket.external_author.clone());
    if trust.policy_passes() && sender::is_participant(email, &participants) {
        return Ok(true);
    }
    let template = context.config.incoming_address.as_ref();
    for address in email.to().into_iter().chain(email.cc()) {
        let key = template
            .and_then(|template| template.key_from_address(&address))
            .or_else(|| custom_email_reply_parts(&address).map(|(key, _)| key));
        let Some(key) = key else { continue };
        if let Some(sent) = tx.sent_notification_by_key(&key).await?
            && sent.noteable == Noteable::Issue(ticket.id)
            && tx
                .user_by_id(sent.recipient_id)
                .await?
                .is_some_and(|recipient| recipient.is_support_bot())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The parts of the handler context the helpers read, split from the transaction so both can be
/// borrowed at once.
struct Parts<'a, 'raw> {
    email: &'a postern_mail::Email<'raw>,
    texts: &'a content::MessageTexts,
    config: &'a crate::config::ProcessorConfig,
    may_auto_reply: bool,
}

/// `ServiceDesk.enabled?`: the project has it on, and mail can reach it (a wildcard incoming
/// address, or the dedicated Service Desk mailbox).
fn service_desk_enabled(
    config: &crate::config::ProcessorConfig,
    project: &Project,
    mailbox: Mailbox,
) -> bool {
    let reachable = match mailbox {
        Mailbox::Incoming => config
            .incoming_address
            .as_ref()
            .is_some_and(postern_mail::AddressTemplate::supports_wildcard),
        Mailbox::ServiceDesk => config.service_desk_address.is_some(),
    };
    reachable && project.service_desk.enabled
}

async fn new_ticket(
    tx: &mut Tx,
    context: &Parts<'_, '_>,
    uploads: &mut content::Uploads,
    project: &Project,
    bot: &User,
    from_address: Option<String>,
) -> Result<Handled, ProcessError> {
    let email = context.email;
    let subject = email.subject().unwrap_or("");
    // A customer is not told to write a shorter subject (GitLab refuses the ticket with "Title
    // is too long"): the title is cut as a person would cut it, and the whole subject opens
    // the description. A blank subject is still refused, as GitLab does.
    let cut = cut_title(subject);
    let title = cut.clone().unwrap_or_else(|| subject.to_owned());
    let errors = title_errors(&title);
    if !errors.is_empty() {
        return Err(Rejection::invalid_record(ErrorKind::InvalidIssue, "issue", &errors).into());
    }
    let (body, _) = context.texts.body(Variant::UntrimmedWithQuotes);
    let links = content::upload_attachments(tx, uploads, project.id, bot.id, false).await?;
    let mut description = content::compose(&body, None, &links, true, Variant::UntrimmedWithQuotes);
    if cut.is_some() {
        description = format!("**Subject:** {}\n\n{description}", subject.trim());
    }
    let settings = &project.service_desk;
    let template = settings
        .issue_template_content
        .as_deref()
        .filter(|content| !content.trim().is_empty());
    // The template's quick actions run (as the Support Bot); the customer's were redacted above.
    let mut effects = quick::Effects::default();
    if let Some(template) = template {
        let (template_text, actions) = extract_quick_actions(template);
        let actor = Actor {
            user: bot,
            role: None,
        };
        effects = quick::interpret(tx, &actions, &actor, project, None, true).await?;
        description.push_str("  \n");
        description.push_str(&template_text);
    }
    let confidential = settings.tickets_confidential_by_default
        || project.visibility == Visibility::Public
        || effects.update.confidential == Some(true);
    let ticket = tx
        .create_issue(NewIssue {
            project_id: project.id,
            issue_type: IssueType::Ticket,
            title: effects.update.title.clone().unwrap_or(title),
            description,
            confidential,
            author_id: bot.id,
            external_author: from_address.clone(),
            labels: effects.update.labels.clone().unwrap_or_default(),
            assignee_ids: effects.update.assignee_ids.clone().unwrap_or_default(),
            due_date: effects.update.due_date.clone().flatten(),
        })
        .await?;
    if let Some(message_id) = email.message_id() {
        tx.record_issue_email(ticket.id, message_id).await?;
    }
    if let Some(key) = &settings.issue_template_key
        && template.is_none()
    {
        tx.create_note(NewNote {
            noteable: Noteable::Issue(ticket.id),
            author_id: bot.id,
            body: format!(
                "WARNING: The template file {key}.md used for service desk issues is empty or could not be found.\nPlease check service desk settings and update the file to be used."
            ),
            external_author: None,
            in_reply_to_discussion_id: None,
            internal: false,
            system: false,
        })
        .await?;
    }
    add_participants(tx, context, project, ticket.id, from_address.as_deref()).await?;
    let ticket = tx.issue_by_id(ticket.id).await?.unwrap_or(ticket);
    // The thank-you answers this mail, so it goes where the sender asked answers to go.
    crate::notify::thank_you(
        tx,
        context.config,
        project,
        &ticket,
        bot,
        crate::notify::Answering {
            message_id: email.message_id(),
            answer_to: sender::answer_address(email).as_deref(),
            may_auto_reply: context.may_auto_reply,
        },
    )
    .await?;
    crate::notify::notify(
        tx,
        context.config,
        project,
        bot,
        crate::notify::Change::IssueOpened(&ticket),
    )
    .await?;
    Ok(Handled {
        created: Some(Created {
            kind: "ticket".to_owned(),
            project: project.full_path.clone(),
            iid: Some(ticket.iid),
            note_id: None,
        }),
    })
}

/// The sender, and with `add_external_participants_from_cc` the Cc addresses (never postern's
/// own addresses), join the ticket — at most [`MAX_PARTICIPANTS`].
async fn add_participants(
    tx: &mut Tx,
    context: &Parts<'_, '_>,
    project: &Project,
    issue_id: i64,
    from_address: Option<&str>,
) -> Result<(), ProcessError> {
    let mut candidates: Vec<String> = from_address.map(str::to_owned).into_iter().collect();
    if project.service_desk.add_external_participants_from_cc {
        candidates.extend(context.email.cc());
    }
    // The Cc list is the sender's to write: one look at the ticket, then at most
    // MAX_PARTICIPANTS additions, whatever its length. An address longer than SMTP allows
    // (254 bytes) is no one's.
    let mut participants: Vec<String> = tx
        .issue_by_id(issue_id)
        .await?
        .map(|issue| issue.email_participants)
        .unwrap_or_default()
        .iter()
        .map(|address| address.to_lowercase())
        .collect();
    for address in candidates {
        if participants.len() >= MAX_PARTICIPANTS {
            break;
        }
        let folded = address.to_lowercase();
        if address.len() > MAX_ADDRESS_BYTES
            || participants.contains(&folded)
            || is_own_address(context, project, &address)
        {
            continue;
        }
        tx.add_issue_participant(issue_id, &address).await?;
        participants.push(folded);
    }
    Ok(())
}

/// The longest address SMTP carries (RFC 5321's path limit less the angle brackets).
const MAX_ADDRESS_BYTES: usize = 254;

fn is_own_address(context: &Parts<'_, '_>, project: &Project, address: &str) -> bool {
    let config = context.config;
    [
        config.incoming_address.as_ref(),
        config.service_desk_address.as_ref(),
    ]
    .into_iter()
    .flatten()
    .any(|template| template.key_from_address(address).is_some())
        || project
            .service_desk
            .custom_email
            .as_deref()
            .is_some_and(|custom| custom.eq_ignore_ascii_case(address))
}

static VERIFICATION_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Verification token: ([A-Za-z0-9_-]{12})").expect("constant pattern")
});

/// GitLab's custom-email verification update: the result is recorded on the project; no
/// ticket is created. Only a mail that carries the pending verification's token decides it:
/// the `+verify` address is no secret, and GitLab lets any mail to it fail the verification
/// (`incorrect_token`), so a stranger could keep a project from ever verifying. Any other mail
/// is dropped without a change.
async fn verify_custom_email(
    tx: &mut Tx,
    context: &Parts<'_, '_>,
    project: &Project,
) -> Result<(), ProcessError> {
    let mut settings = project.service_desk.clone();
    if settings.custom_email_verification_state != Some(CustomEmailVerificationState::Started) {
        return Ok(());
    }
    let email = context.email;
    let (body, _) = context.texts.body(Variant::Trimmed);
    let token_matches = VERIFICATION_TOKEN
        .captures(&body)
        .and_then(|captures| captures.get(1))
        .is_some_and(|token| {
            settings.custom_email_verification_token.as_deref() == Some(token.as_str())
        });
    if !token_matches {
        return Ok(());
    }
    let within_timeframe = settings
        .custom_email_verification_triggered_at
        .is_some_and(|at| Timestamp::now().0 - at.0 <= VERIFICATION_SECONDS);
    let alias_targeted = context
        .config
        .service_desk_address
        .as_ref()
        .is_some_and(|template| {
            email
                .to()
                .into_iter()
                .chain(email.header_values("Delivered-To"))
                .any(|address| template.key_from_address(&address).is_some())
        });
    let from_matches = match (email.from().first(), settings.custom_email.as_deref()) {
        (Some(from), Some(custom)) => from.eq_ignore_ascii_case(custom),
        _ => false,
    };
    let error = if !within_timeframe {
        Some("mail_not_received_within_timeframe")
    } else if alias_targeted {
        Some("incorrect_forwarding_target")
    } else if !from_matches {
        Some("incorrect_from")
    } else {
        None
    };
    settings.custom_email_enabled = false;
    settings.custom_email_verification_state = Some(match error {
        None => CustomEmailVerificationState::Finished,
        Some(_) => CustomEmailVerificationState::Failed,
    });
    settings.custom_email_verification_error = error.map(str::to_owned);
    let updated = tx.update_service_desk(project.id, &settings).await?;
    crate::verification::report_result(tx, context.config, &updated, error).await?;
    Ok(())
}
