//! New merge request by email (spec §6.4): the subject names the source branch; `.patch`
//! attachments, in file-name order, become its commits on top of the target branch.

use postern_git::{CommitInfo, Patch};
use postern_mail::{ProjectRef, extract_quick_actions};
use postern_store::{Commit, NewMergeRequest};

use super::{Context, Handled, project_and_author};
use crate::content::{self, Variant};
use crate::error::{ErrorKind, ProcessError, Rejection};
use crate::permissions::{Ability, Actor, validate};
use crate::processor::Created;

fn invalid(errors: &[String]) -> ProcessError {
    Rejection::invalid_record(ErrorKind::InvalidMergeRequest, "merge_request", errors).into()
}

/// Mail to `<project>-<id>-<token>-merge-request` opens a merge request.
pub async fn create_merge_request(
    context: &mut Context<'_, '_>,
    project: &ProjectRef,
    token: &str,
) -> Result<Handled, ProcessError> {
    let tx = &mut *context.tx;
    let (project, author, role) = project_and_author(tx, project, token).await?;
    let actor = Actor {
        user: &author,
        role,
    };
    validate(&actor, &project, Ability::CreateMergeRequest, None)?;

    let source_branch = context.email.subject().unwrap_or("").trim().to_owned();
    if source_branch.is_empty() {
        return Err(invalid(&[
            "You must select source and target branch".to_owned()
        ]));
    }
    if postern_git::validate_branch_name(&source_branch).is_err() {
        return Err(invalid(&[format!(
            "Source branch \"{source_branch}\" is not a valid branch name"
        )]));
    }
    // The description is the trimmed reply; its quick actions (e.g. `/target_branch`) run.
    let (body, _) = context.texts.body(Variant::Trimmed);
    let (description, actions) = extract_quick_actions(&body);
    crate::content::check_quick_actions(&actions, context.config.limits.max_quick_actions)?;
    let target_branch = actions
        .iter()
        .rev()
        .find(|action| action.command == "target_branch")
        .and_then(|action| action.argument.clone())
        .unwrap_or_else(|| project.default_branch.clone());
    if target_branch == source_branch {
        return Err(invalid(&[
            "You can't use same project/branch for source and target".to_owned(),
        ]));
    }

    let attachments = postern_mail::attachments(context.email);
    let patches: Vec<Patch> = postern_mail::patches(&attachments)
        .into_iter()
        .map(|attachment| Patch {
            filename: attachment.filename.clone(),
            content: attachment.content.to_vec(),
        })
        .collect();
    let repository = context
        .repositories
        .repository(project.id)
        .map_err(|e| ProcessError::Temporary(format!("project repository: {e}")))?;
    let previous_head = repository
        .head_of(&source_branch)
        .map_err(|e| ProcessError::Temporary(e.to_string()))?;
    let has_patches = !patches.is_empty();
    let applied = if !has_patches {
        None
    } else {
        // git runs for up to a few hundred milliseconds: off the async workers.
        let (repo, source, target, files) = (
            repository.clone(),
            source_branch.clone(),
            target_branch.clone(),
            patches,
        );
        Some(
            tokio::task::spawn_blocking(move || repo.apply_patches(&source, &target, &files))
                .await
                .map_err(|e| ProcessError::Internal(format!("patch task failed: {e}")))?,
        )
    };
    if let Some(Err(error)) = applied {
        return Err(Rejection::with_reason(
            ErrorKind::InvalidAttachment,
            postern_git::could_not_apply_patches(&source_branch, &error),
        )
        .into());
    }
    if !has_patches && previous_head.is_none() {
        return Err(invalid(&[format!(
            "Source branch \"{source_branch}\" does not exist"
        )]));
    }
    // From here on the branch may have moved: undo that if the record cannot be written, so a
    // retry of the same message starts from the same repository.
    let result = record(
        context,
        &project,
        &author,
        &repository,
        &source_branch,
        &target_branch,
        description,
    )
    .await;
    if result.is_err() && has_patches {
        let _ = repository.reset_branch(&source_branch, previous_head.as_deref());
    }
    result
}

async fn record(
    context: &mut Context<'_, '_>,
    project: &postern_store::Project,
    author: &postern_store::User,
    repository: &postern_git::Repository,
    source_branch: &str,
    target_branch: &str,
    description: String,
) -> Result<Handled, ProcessError> {
    let tx = &mut *context.tx;
    if !repository
        .branch_exists(target_branch)
        .map_err(|e| ProcessError::Temporary(e.to_string()))?
    {
        return Err(invalid(&[format!(
            "Target branch \"{target_branch}\" does not exist"
        )]));
    }
    let commits = repository
        .commits_between(target_branch, source_branch)
        .map_err(|e| ProcessError::Temporary(e.to_string()))?;
    let (title, description) = title_and_description(source_branch, description, &commits);
    // Patches became commits; only the other attachments are uploaded and linked.
    let links =
        content::upload_attachments(tx, context.uploads, project.id, author.id, true).await?;
    let description = content::compose(&description, None, &links, false, Variant::Trimmed);
    let merge_request = tx
        .create_merge_request(NewMergeRequest {
            project_id: project.id,
            title,
            description,
            source_branch: source_branch.to_owned(),
            target_branch: target_branch.to_owned(),
            author_id: author.id,
            commits: commits
                .iter()
                .map(|commit| Commit {
                    sha: commit.sha.clone(),
                    title: commit.title.clone(),
                    message: commit.message.clone(),
                    author_name: commit.author_name.clone(),
                    author_email: commit.author_email.clone(),
                })
                .collect(),
        })
        .await?;
    crate::notify::notify(
        tx,
        context.config,
        project,
        author,
        crate::notify::Change::MergeRequestOpened(&merge_request),
    )
    .await?;
    Ok(Handled {
        created: Some(Created {
            kind: "merge_request".to_owned(),
            project: project.full_path.clone(),
            iid: Some(merge_request.iid),
            note_id: None,
        }),
    })
}

/// GitLab's build service: one commit gives the title and (without a mailed description) the
/// description; several commits give a title made from the branch name.
fn title_and_description(
    branch: &str,
    description: String,
    commits: &[CommitInfo],
) -> (String, String) {
    match commits {
        [single] => {
            let body = commit_body(&single.message);
            let description = if description.trim().is_empty() {
                body
            } else {
                description
            };
            (single.title.clone(), description)
        }
        _ => (humanize(branch), description),
    }
}

/// The commit message without its subject line.
fn commit_body(message: &str) -> String {
    let mut lines = message.lines();
    lines.next();
    lines.collect::<Vec<_>>().join("\n").trim().to_owned()
}

/// `fix-login_bug` → `Fix login bug`.
fn humanize(branch: &str) -> String {
    let spaced = branch.replace(['-', '_'], " ");
    let mut chars = spaced.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_become_titles() {
        assert_eq!(humanize("fix-login_bug"), "Fix login bug");
        assert_eq!(
            commit_body("Title\n\nSigned-off-by: A <a@b>\n"),
            "Signed-off-by: A <a@b>"
        );
    }
}
