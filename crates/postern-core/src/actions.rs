//! Tracker changes made by a person directly (the CLI and the web UI), with the same
//! rules and the same notifications as when they arrive by mail.

use postern_store::{
    CreatedNotification, Issue, MergeRequest, NewSentNotification, Note, Noteable, Project, Tx,
    User,
};

use crate::config::ProcessorConfig;
use crate::content::{Uploads, upload_attachments};
use crate::error::{ErrorKind, ProcessError, Rejection};
use crate::handlers::issue::{open_with_actions, title_errors};
use crate::handlers::{CommentRequest, after_comment, create_comment};
use crate::permissions::{Ability, Actor, validate};
use crate::unsubscribe::Asker;

/// The longest title, in characters (GitLab's limit).
pub use crate::handlers::issue::MAX_TITLE_CHARS;

/// What is wrong with `title` as an issue's title, worded as GitLab words it (empty when it
/// is fine), for a form to show next to the field before [`open_issue`] refuses it.
pub fn title_problems(title: &str) -> Vec<String> {
    title_errors(title)
}

/// Opens an issue as `author` (quick actions in `description` run as they would by mail) and
/// notifies the people concerned.
pub async fn open_issue(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    author: &User,
    title: &str,
    description: &str,
) -> Result<Issue, ProcessError> {
    let role = tx.member_role(project.id, author.id).await?;
    let actor = Actor { user: author, role };
    validate(&actor, project, Ability::CreateIssue, None)?;
    let errors = title_errors(title);
    if !errors.is_empty() {
        return Err(Rejection::invalid_record(ErrorKind::InvalidIssue, "issue", &errors).into());
    }
    open_with_actions(tx, config, project, &actor, title, description).await
}

/// Comments on `issue` as `author` (quick actions run as far as the author may), then notifies
/// participants and subscribers, and a ticket's outside participants. `None` when the text was
/// only quick actions.
pub async fn comment(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    author: &User,
    issue: &Issue,
    body: &str,
) -> Result<Option<Note>, ProcessError> {
    comment_as(
        tx,
        config,
        project,
        author,
        issue,
        body,
        NoteVisibility::Public,
    )
    .await
}

/// Who a comment is for: everyone who reads the issue, or (GitLab's "Make this an internal
/// note") reporters and up only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteVisibility {
    /// An ordinary comment, mailed to the people concerned.
    Public,
    /// An internal note: written by reporters and up, read by reporters and up, and mailed to
    /// nobody (`notify` never mails one, so a reply by mail cannot turn it into a public
    /// comment, and a ticket's customer never receives it).
    Internal,
}

/// [`comment`], as an internal note when `visibility` says so. Only those who may read
/// internal notes may write one; anyone else is refused (`user_not_authorized`) rather than
/// having their note published.
pub async fn comment_as(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    author: &User,
    issue: &Issue,
    body: &str,
    visibility: NoteVisibility,
) -> Result<Option<Note>, ProcessError> {
    let internal = visibility == NoteVisibility::Internal;
    if internal {
        let role = tx.member_role(project.id, author.id).await?;
        if !(Actor { user: author, role }).can_read_internal_notes() {
            return Err(ErrorKind::UserNotAuthorized.into());
        }
    }
    let target = Target {
        noteable: Noteable::Issue(issue.id),
        issue: Some(issue),
        in_project: true,
    };
    comment_on(tx, config, project, author, target, body, internal).await
}

/// Comments on merge request `mr` as `author`, as a mail reply to its notification would:
/// `/close` and `/reopen` run when the author may update it, then participants and subscribers
/// are notified. `None` when the text was only quick actions.
pub async fn comment_on_merge_request(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    author: &User,
    mr: &MergeRequest,
    body: &str,
) -> Result<Option<Note>, ProcessError> {
    let target = Target {
        noteable: Noteable::MergeRequest(mr.id),
        issue: None,
        in_project: mr.project_id == project.id,
    };
    comment_on(tx, config, project, author, target, body, false).await
}

/// [`comment_as`] with files the person attached in the browser, staged with the store before
/// the transaction as a mail's attachments are ([`Uploads::stage`]): each becomes an upload of
/// the project linked below the text, as GitLab links a mail's attachments, so the note (an
/// internal one too) decides who may load them.
#[allow(clippy::too_many_arguments, reason = "comment_as and the staged files")]
pub async fn comment_with_files(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    author: &User,
    issue: &Issue,
    body: &str,
    visibility: NoteVisibility,
    files: &mut Uploads,
) -> Result<Option<Note>, ProcessError> {
    if files.is_empty() {
        return comment_as(tx, config, project, author, issue, body, visibility).await;
    }
    // The author's right to comment is checked before anything is recorded.
    let role = tx.member_role(project.id, author.id).await?;
    validate(
        &Actor { user: author, role },
        project,
        Ability::CreateNote,
        Some(issue),
    )?;
    let links = upload_attachments(tx, files, project.id, author.id, false).await?;
    let mut text = body.trim_end().to_owned();
    for link in links {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&link.markdown);
    }
    comment_as(tx, config, project, author, issue, &text, visibility).await
}

/// What a comment is on: the noteable, its issue when it is one (the note rules read it), and
/// whether it belongs to the project the comment is made in.
struct Target<'a> {
    noteable: Noteable,
    issue: Option<&'a Issue>,
    in_project: bool,
}

/// The comment of [`comment`] and [`comment_on_merge_request`]: the author's right to comment,
/// the target, a non-empty text; then the note and its notifications.
async fn comment_on(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    author: &User,
    target: Target<'_>,
    body: &str,
    internal: bool,
) -> Result<Option<Note>, ProcessError> {
    let role = tx.member_role(project.id, author.id).await?;
    let actor = Actor { user: author, role };
    validate(&actor, project, Ability::CreateNote, target.issue)?;
    if !target.in_project {
        return Err(ErrorKind::NoteableNotFound.into());
    }
    if body.trim().is_empty() {
        return Err(ErrorKind::EmptyEmail.into());
    }
    let note = create_comment(
        tx,
        CommentRequest {
            project,
            author,
            role,
            noteable: target.noteable,
            issue: target.issue,
            text: body.to_owned(),
            discussion_id: None,
            external_author: None,
            internal,
            config,
        },
    )
    .await?;
    if let Some(note) = &note {
        after_comment(tx, config, project, author, note, target.issue).await?;
    }
    Ok(note)
}

/// Records a notification to `recipient` about `noteable` of `project` and returns it with its
/// reply key, for an operator to hand its reply address out by hand. Nothing is checked here:
/// whether the key acts is decided when mail uses it, against the recipient's access then
/// (`permissions::can_read`).
pub async fn record_notification(
    tx: &mut Tx,
    project: &Project,
    recipient: &User,
    noteable: Noteable,
) -> Result<CreatedNotification, ProcessError> {
    Ok(tx
        .create_sent_notification(NewSentNotification {
            partition: 0,
            namespace_id: project.id,
            recipient_id: recipient.id,
            noteable,
            in_reply_to_discussion_id: None,
            reply_key: None,
            participant_email: None,
        })
        .await?)
}

/// What a one-click unsubscribe link (RFC 8058, from a notification's `List-Unsubscribe`)
/// is about: the thread its recipient stops hearing about.
#[derive(Debug, Clone)]
pub struct UnsubscribeLink {
    /// The project of the thread.
    pub project: Project,
    /// `#IID` or `!IID`.
    pub reference: String,
    /// The issue's or merge request's title.
    pub title: String,
    /// The mail went to an outside participant of a Service Desk ticket (its recipient is
    /// the Support Bot): unsubscribing removes them from the ticket.
    pub outside: bool,
}

/// The thread the one-click unsubscribe `token` belongs to, without changing anything (the
/// confirmation page); `None` for an unknown or expired token (a key older than
/// `reply_key_max_age_days`, as for replies), or a thread that is gone.
pub async fn unsubscribe_link(
    tx: &mut Tx,
    config: &ProcessorConfig,
    token: &str,
) -> Result<Option<(UnsubscribeLink, postern_store::SentNotification)>, ProcessError> {
    let Some(sent) = tx.sent_notification_by_unsubscribe_token(token).await? else {
        return Ok(None);
    };
    if crate::handlers::note::is_expired(
        sent.created_at,
        postern_store::Timestamp::now(),
        config.reply_key_max_age_days,
    ) {
        return Ok(None);
    }
    let (reference, title) = match sent.noteable {
        Noteable::Issue(id) => match tx.issue_by_id(id).await? {
            Some(issue) => (format!("#{}", issue.iid), issue.title),
            None => return Ok(None),
        },
        Noteable::MergeRequest(id) => match tx.merge_request_by_id(id).await? {
            Some(mr) => (format!("!{}", mr.iid), mr.title),
            None => return Ok(None),
        },
    };
    let Some(project) = tx.project_by_id(sent.project_id).await? else {
        return Ok(None);
    };
    let outside = tx
        .user_by_id(sent.recipient_id)
        .await?
        .is_some_and(|recipient| recipient.is_support_bot());
    Ok(Some((
        UnsubscribeLink {
            project,
            reference,
            title,
            outside,
        },
        sent,
    )))
}

/// One-click unsubscribe: the recipient of the notification `token` was mailed with stops
/// getting mail about its thread, as with a mail to its `-unsubscribe` address; for Service
/// Desk mail, the outside participant it went to leaves the ticket (its participant list).
/// The token is the authorisation (RFC 8058: no sign-in, no further question), and it does
/// nothing else. Unsubscribing again changes nothing.
pub async fn unsubscribe_by_link(
    tx: &mut Tx,
    config: &ProcessorConfig,
    token: &str,
) -> Result<Option<UnsubscribeLink>, ProcessError> {
    let Some((link, sent)) = unsubscribe_link(tx, config, token).await? else {
        return Ok(None);
    };
    if !link.outside {
        tx.set_subscription(sent.recipient_id, sent.noteable, false)
            .await?;
    } else if let Noteable::Issue(id) = sent.noteable
        && let Some(ticket) = tx.issue_by_id(id).await?
    {
        crate::unsubscribe::outside_participant(tx, &sent, &ticket, Asker::Link).await?;
    }
    Ok(Some(link))
}
