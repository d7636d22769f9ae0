//! Tracker changes made by a person directly (the CLI and the web UI), with the same
//! rules and the same notifications as when they arrive by mail.

use postern_store::{
    CreatedNotification, Issue, MergeRequest, NewSentNotification, Note, Noteable, Project, Tx,
    User,
};

use crate::config::ProcessorConfig;
use crate::error::{ErrorKind, ProcessError, Rejection};
use crate::handlers::issue::{open_with_actions, title_errors};
use crate::handlers::{CommentRequest, after_comment, create_comment};
use crate::permissions::{Ability, Actor, validate};

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
    let target = Target {
        noteable: Noteable::Issue(issue.id),
        issue: Some(issue),
        in_project: true,
    };
    comment_on(tx, config, project, author, target, body).await
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
    comment_on(tx, config, project, author, target, body).await
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
            internal: false,
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
        })
        .await?)
}
