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

/// A subject too long for a title, cut as a person would: at the last word boundary that
/// leaves room for an ellipsis within [`MAX_TITLE_CHARS`] (or, in a word longer than half the
/// limit, at the limit itself), then `…`. `None` when the subject fits as it is.
pub fn cut_title(subject: &str) -> Option<String> {
    if subject.chars().count() <= MAX_TITLE_CHARS {
        return None;
    }
    // Room for the ellipsis; the byte offset of the first character that does not fit.
    let end = subject
        .char_indices()
        .nth(MAX_TITLE_CHARS - 1)
        .map_or(subject.len(), |(offset, _)| offset);
    let head = &subject[..end];
    // A break found in the second half keeps most of the subject; one nearer the start would
    // throw away more than a cut mid-word.
    let half = head.len() / 2;
    let cut = match head.rfind(char::is_whitespace) {
        Some(space) if space >= half => head[..space].trim_end(),
        _ => head,
    };
    Some(format!("{cut}…"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_that_fits_is_not_cut() {
        assert_eq!(cut_title(&"é".repeat(MAX_TITLE_CHARS)), None);
    }

    #[test]
    fn a_long_subject_is_cut_at_the_last_word_within_the_limit() {
        let subject = format!("{} tail", "ab ".repeat(100));
        let title = cut_title(&subject).unwrap_or_default();
        assert!(title.chars().count() <= MAX_TITLE_CHARS, "{title}");
        assert!(title.ends_with("ab…"), "{title}");
    }

    #[test]
    fn one_long_word_is_cut_at_the_limit_on_a_character_boundary() {
        let title = cut_title(&"ü".repeat(400)).unwrap_or_default();
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.ends_with("ü…"));
    }
}
