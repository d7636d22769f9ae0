//! New issue by email (GitLab's `CreateIssueHandler`,
//! <https://gitlab.com/gitlab-org/gitlab/-/blob/master/lib/gitlab/email/handler/create_issue_handler.rb>):
//! the subject is the title, the whole text (quotes kept) the description, and the author's
//! quick actions shape the new issue.

use postern_mail::ProjectRef;
use postern_store::{Issue, IssueType, IssueUpdate, NewIssue, Project, Tx};

use super::{Context, Handled, check_token_sender, project_and_author};
use crate::config::ProcessorConfig;
use crate::content::{self, Variant};
use crate::error::{ErrorKind, ProcessError, Rejection};
use crate::notify::Change;
use crate::permissions::{Ability, Actor, validate};
use crate::processor::Created;
use crate::quick;

/// GitLab's limit on titles.
pub const MAX_TITLE_CHARS: usize = 255;

/// Validation errors of an issue title, worded as GitLab words them.
pub(crate) fn title_errors(title: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if title.trim().is_empty() {
        errors.push("Title can't be blank".to_owned());
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        errors.push(format!(
            "Title is too long (maximum is {MAX_TITLE_CHARS} characters)"
        ));
    }
    errors
}

/// Creates the issue `actor` asked for — `text`'s quick actions shape it as far as the actor may
/// — and notifies the people concerned. The caller has checked the permission and the title.
pub(crate) async fn open_with_actions(
    tx: &mut Tx,
    config: &ProcessorConfig,
    project: &Project,
    actor: &Actor<'_>,
    title: &str,
    text: &str,
) -> Result<Issue, ProcessError> {
    let (description, actions) =
        crate::content::extract_checked_quick_actions(text, config.limits.max_quick_actions)?;
    let update = quick::interpret(tx, &actions, actor, project, None, false)
        .await?
        .update;
    let mut issue = tx
        .create_issue(NewIssue {
            project_id: project.id,
            issue_type: IssueType::Issue,
            title: update.title.clone().unwrap_or_else(|| title.to_owned()),
            description,
            confidential: update.confidential.unwrap_or(false),
            author_id: actor.user.id,
            external_author: None,
            labels: update.labels.clone().unwrap_or_default(),
            assignee_ids: update.assignee_ids.clone().unwrap_or_default(),
            due_date: update.due_date.clone().flatten(),
        })
        .await?;
    if let Some(state) = update.state
        && state != issue.state
    {
        issue = tx
            .update_issue(
                issue.id,
                IssueUpdate {
                    state: Some(state),
                    ..IssueUpdate::default()
                },
            )
            .await?;
    }
    crate::notify::notify(tx, config, project, actor.user, Change::IssueOpened(&issue)).await?;
    Ok(issue)
}

/// Mail to `<project>-<id>-<token>-issue` (or legacy `<path>+<token>`) opens an issue.
pub async fn create_issue(
    context: &mut Context<'_, '_>,
    project: &ProjectRef,
    token: &str,
) -> Result<Handled, ProcessError> {
    let config = context.config;
    let tx: &mut Tx = context.tx;
    let (project, author, role) = project_and_author(tx, project, token).await?;
    let actor = Actor {
        user: &author,
        role,
    };
    validate(&actor, &project, Ability::CreateIssue, None)?;
    check_token_sender(context.email, &author)?;

    let title = context.email.subject().unwrap_or("").to_owned();
    let errors = title_errors(&title);
    if !errors.is_empty() {
        return Err(Rejection::invalid_record(ErrorKind::InvalidIssue, "issue", &errors).into());
    }
    let (body, _) = context.texts.body(Variant::UntrimmedWithQuotes);
    let links =
        content::upload_attachments(tx, context.uploads, project.id, author.id, false).await?;
    let text = content::compose(&body, None, &links, false, Variant::UntrimmedWithQuotes);
    let issue = open_with_actions(tx, config, &project, &actor, &title, &text).await?;
    Ok(Handled {
        created: Some(Created {
            kind: "issue".to_owned(),
            project: project.full_path.clone(),
            iid: Some(issue.iid),
            note_id: None,
        }),
    })
}
