//! The six handlers of GitLab's receiver (<https://gitlab.com/gitlab-org/gitlab/-/blob/master/lib/gitlab/email/handler/>)
//! and what they share: finding the project and the author, checking permissions, and creating
//! a comment with its quick actions.

pub(crate) mod issue;
pub(crate) mod merge_request;
pub(crate) mod note;
mod service_desk;

use postern_mail::{Email, ProjectRef, Route};
use postern_store::{
    Issue, IssueState, IssueUpdate, Mailbox, NewNote, Note, Noteable, Project, Role, Tx, User,
};

use crate::config::ProcessorConfig;
use crate::error::{ErrorKind, ProcessError};
use crate::permissions::Actor;
use crate::processor::Created;
use crate::quick;

/// What a handler works with. Lives for one message.
pub struct Context<'a, 'raw> {
    /// The message's transaction; everything a handler writes goes through it.
    pub tx: &'a mut Tx,
    /// The parsed message.
    pub email: &'a Email<'raw>,
    /// Its body text in every variant, worked out before the transaction began.
    pub texts: &'a crate::content::MessageTexts,
    /// Its attachments, written before the transaction began; a handler records those it
    /// keeps.
    pub uploads: &'a mut crate::content::Uploads,
    /// Instance settings.
    pub config: &'a ProcessorConfig,
    /// Project git repositories (merge requests by email).
    pub repositories: &'a postern_git::Repositories,
    /// The git half of a merge request by email (see `merge_request`).
    pub(crate) git: &'a mut merge_request::GitState,
    /// What sender authentication says of the message.
    pub trust: crate::sender::SenderTrust,
    /// Whether the key was found only in `References`, in no address of the mail.
    pub key_only_in_references: bool,
    /// Whether automatic mail (the Service Desk thank-you) may answer the sender
    /// (`crate::auto_mail`).
    pub may_auto_reply: bool,
}

/// A handler's successful result.
#[derive(Debug, Default)]
pub struct Handled {
    /// What was created, if anything (commands-only comments and unsubscribes create nothing).
    pub created: Option<Created>,
}

/// Runs the handler for `route`.
pub async fn run(
    context: &mut Context<'_, '_>,
    route: &Route,
    mailbox: Mailbox,
) -> Result<Handled, ProcessError> {
    match route {
        Route::CreateNote { reply_key } => note::create_note(context, reply_key).await,
        Route::CreateIssue { project, token } => issue::create_issue(context, project, token).await,
        Route::CreateNoteOnIssuable {
            project,
            token,
            issue_iid,
        } => note::create_note_on_issuable(context, project, token, issue_iid).await,
        Route::Unsubscribe { reply_key } => note::unsubscribe(context, reply_key).await,
        Route::CreateMergeRequest { project, token } => {
            merge_request::create_merge_request(context, project, token).await
        }
        Route::ServiceDesk { project } => {
            service_desk::service_desk(context, project, mailbox).await
        }
    }
}

/// The project a route acts on, as the handlers find it: a reply key's notification's
/// project, the project an incoming-email or Service Desk address names. `None` when there is
/// none (the handler then refuses the mail for that). Sender authentication decides under
/// this project's policy ([`crate::authentication::effective_policy`]).
pub(crate) async fn project_of_route(
    tx: &mut Tx,
    route: &Route,
) -> Result<Option<Project>, ProcessError> {
    match route {
        Route::CreateNote { reply_key } | Route::Unsubscribe { reply_key } => {
            match tx
                .sent_notification_by_key(&note::key_text(reply_key))
                .await?
            {
                Some(notification) => Ok(tx.project_by_id(notification.project_id).await?),
                None => Ok(None),
            }
        }
        Route::CreateIssue { project, .. }
        | Route::CreateNoteOnIssuable { project, .. }
        | Route::CreateMergeRequest { project, .. }
        | Route::ServiceDesk { project } => resolve_project(tx, project).await,
    }
}

/// Finds the project an address names. The id form also checks the slug, so a guessed id with
/// another project's slug finds nothing.
pub(crate) async fn resolve_project(
    tx: &mut Tx,
    reference: &ProjectRef,
) -> Result<Option<Project>, ProcessError> {
    Ok(match reference {
        ProjectRef::Id { slug, id } => match id.parse::<i64>() {
            Ok(id) => tx
                .project_by_id(id)
                .await?
                .filter(|project| project.full_path_slug == *slug),
            Err(_) => None,
        },
        ProjectRef::Path { path } => tx.project_by_full_path(path).await?,
        ProjectRef::ServiceDeskKey { slug, key } => {
            tx.project_by_service_desk_key(slug, key).await?
        }
    })
}

/// The user whose incoming-email token is `token` (exact match).
pub(crate) async fn author_by_token(tx: &mut Tx, token: &str) -> Result<User, ProcessError> {
    if token.is_empty() {
        return Err(ErrorKind::UserNotFound.into());
    }
    tx.user_by_incoming_token(token)
        .await?
        .ok_or_else(|| ErrorKind::UserNotFound.into())
}

/// An incoming-email token names its owner, but it travels in an address anyone on a Cc or a
/// forward sees: it acts only for mail whose `From` is one of the owner's verified addresses
/// (GitLab asks nothing more than the token). Checked after the permission, so the refusals
/// GitLab gives keep their order.
pub(crate) fn check_token_sender(email: &Email<'_>, author: &User) -> Result<(), ProcessError> {
    if crate::sender::is_from(email, author) {
        Ok(())
    } else {
        Err(ErrorKind::UserNotFound.into())
    }
}

/// The project an address names and the author its token names — project first, as GitLab
/// checks them — with the author's role in the project.
pub(crate) async fn project_and_author(
    tx: &mut Tx,
    reference: &ProjectRef,
    token: &str,
) -> Result<(Project, User, Option<Role>), ProcessError> {
    let project = resolve_project(tx, reference)
        .await?
        .ok_or(ErrorKind::ProjectNotFound)?;
    let author = author_by_token(tx, token).await?;
    let role = role_of(tx, &project, &author).await?;
    Ok((project, author, role))
}

/// The author's role in `project`.
pub(crate) async fn role_of(
    tx: &mut Tx,
    project: &Project,
    user: &User,
) -> Result<Option<Role>, ProcessError> {
    Ok(tx.member_role(project.id, user.id).await?)
}

/// A comment to create, with what GitLab attaches to it.
pub(crate) struct CommentRequest<'a> {
    pub project: &'a Project,
    pub author: &'a User,
    pub role: Option<Role>,
    pub noteable: Noteable,
    pub issue: Option<&'a Issue>,
    pub text: String,
    pub discussion_id: Option<String>,
    pub external_author: Option<String>,
    pub internal: bool,
    /// The instance: how many quick actions may run from this comment, and the mail a change
    /// they make sends.
    pub config: &'a ProcessorConfig,
}

/// Creates a comment the way `Notes::CreateService` does: quick actions are taken out of the
/// text and run as far as the author may; a comment made only of commands creates no note (and
/// is not an error). The Support Bot's text arrives already redacted, so nothing runs for it.
/// As in GitLab, the commands are read first, the note is saved, and then they are carried
/// out: "Fixed. `/close`" is an answer on the ticket before the ticket closes, which is what
/// the closed notice to its customer looks for (`notify::ticket_closed`).
pub(crate) async fn create_comment(
    tx: &mut Tx,
    request: CommentRequest<'_>,
) -> Result<Option<Note>, ProcessError> {
    let (text, actions) = if request.author.is_support_bot() {
        (request.text.clone(), Vec::new())
    } else {
        crate::content::extract_checked_quick_actions(
            &request.text,
            request.config.limits.max_quick_actions,
        )?
    };
    let actor = Actor {
        user: request.author,
        role: request.role,
    };
    let effects = match request.issue {
        Some(issue) => {
            Some(quick::interpret(tx, &actions, &actor, request.project, Some(issue), false).await?)
        }
        None => None,
    };
    let note = if text.trim().is_empty() {
        None
    } else {
        Some(
            tx.create_note(NewNote {
                noteable: request.noteable,
                author_id: request.author.id,
                body: text,
                external_author: request.external_author,
                in_reply_to_discussion_id: request.discussion_id,
                internal: request.internal,
                system: false,
            })
            .await?,
        )
    };
    if let (Some(issue), Some(effects)) = (request.issue, effects) {
        if effects.changes_issue() {
            crate::system_notes::update_issue(
                tx,
                request.config,
                request.project,
                request.author,
                issue,
                effects.update,
            )
            .await?;
        }
        crate::system_notes::record_not_done(tx, request.author, issue, &effects.refused).await?;
    } else if let Noteable::MergeRequest(id) = request.noteable {
        quick::run_on_merge_request(tx, &actions, &actor, request.project, id).await?;
    }
    Ok(note)
}

/// GitLab's reopen rule: a closed issue that gets a comment from an external
/// participant (through the Support Bot) is reopened, when the project asks for it, by a
/// confidential Support Bot note that mentions the assignees.
pub(crate) async fn reopen_on_external_note(
    tx: &mut Tx,
    project: &Project,
    issue: &Issue,
    author: &User,
) -> Result<(), ProcessError> {
    if !(issue.state == IssueState::Closed
        && author.is_support_bot()
        && project
            .service_desk
            .reopen_issue_on_external_participant_note)
    {
        return Ok(());
    }
    let mut mentions = Vec::new();
    for assignee in &issue.assignee_ids {
        if let Some(user) = tx.user_by_id(*assignee).await? {
            mentions.push(format!("@{}", user.username));
        }
    }
    // GitLab's note ends in `/reopen`, which runs and is then removed from the stored text;
    // here the state is changed directly and the text stored as GitLab shows it.
    let text = format!(
        "{} :wave: This issue has been reopened because it received a new comment from an external participant.",
        mentions.join(" ")
    );
    tx.create_note(NewNote {
        noteable: Noteable::Issue(issue.id),
        author_id: author.id,
        body: text.trim_start().to_owned(),
        external_author: None,
        in_reply_to_discussion_id: None,
        internal: true,
        system: false,
    })
    .await?;
    // A "reopened" system note by the Support Bot, as GitLab's `/reopen` writes one; no mail:
    // the note above already mentions the assignees.
    let reopened = tx
        .update_issue(
            issue.id,
            IssueUpdate {
                state: Some(IssueState::Opened),
                ..IssueUpdate::default()
            },
        )
        .await?;
    tx.create_note(NewNote {
        noteable: Noteable::Issue(reopened.id),
        author_id: author.id,
        body: "reopened".to_owned(),
        external_author: None,
        in_reply_to_discussion_id: None,
        internal: false,
        system: true,
    })
    .await?;
    Ok(())
}

/// Tells people about a new comment: the participants and subscribers of its issue or merge
/// request, and, for a member's comment on a Service Desk ticket, the ticket's outside
/// participants.
pub(crate) async fn after_comment(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    author: &User,
    note: &Note,
    issue: Option<&Issue>,
) -> Result<(), ProcessError> {
    // Reload: the comment may have changed the issue (quick actions, participants).
    let issue = match issue {
        Some(issue) => tx.issue_by_id(issue.id).await?,
        None => None,
    };
    crate::notify::notify(
        tx,
        config,
        project,
        author,
        crate::notify::Change::Commented {
            note,
            issue: issue.as_ref(),
        },
    )
    .await?;
    if let Some(issue) = &issue {
        crate::notify::to_external_participants(tx, config, project, issue, note, author).await?;
    }
    Ok(())
}

/// The `created` entry for a comment.
pub(crate) fn created_note(project: &Project, note: &Note) -> Created {
    Created {
        kind: "note".to_owned(),
        project: project.full_path.clone(),
        iid: None,
        note_id: Some(note.id),
    }
}
