//! New merge request by email: the subject names the source branch; `.patch`
//! attachments, in file-name order, become its commits on top of the target branch.
//!
//! The git work is slow (`git am` runs for as long as the patches and the limits allow), so it
//! is split in two. [`plan`] and [`Plan::run`] run before the message's write transaction:
//! the same checks as the handler (project, author, permission, branch names) against a
//! read-only transaction, then the patches applied in a throw-away worktree and the commits
//! read, with no ref moved. The handler, inside the transaction, redoes the cheap checks, takes
//! the prepared result if it is for the same project and branches, and only moves the branch
//! (a compare-and-swap) before writing the rows.
//!
//! Crash safety: the branch moves before the merge request row is written and the transaction
//! commits after both. A failure in between, in the handler or when the transaction commits,
//! puts the branch back (again a compare-and-swap; see [`Published`]); a crash in between
//! leaves a moved branch and no row (an orphan ref, as GitLab's own `CommitPatchService` can),
//! never a row without its branch. Publishing after the commit instead could leave exactly
//! that, a merge request naming commits no branch holds.

use postern_git::{CommitInfo, GitError, Patch, PatchError, PreparedPatches, Repository};
use postern_mail::{Email, ProjectRef, Route};
use postern_store::{Commit, NewMergeRequest, Project, Tx, User};

use super::{Context, Handled, project_and_author};
use crate::config::ProcessorConfig;
use crate::content::{self, MessageTexts, Variant};
use crate::error::{ErrorKind, ProcessError, Rejection};
use crate::permissions::{Ability, Actor, validate};
use crate::processor::Created;

fn invalid(errors: &[String]) -> ProcessError {
    Rejection::invalid_record(ErrorKind::InvalidMergeRequest, "merge_request", errors).into()
}

/// A failed git operation outside applying patches: refused for good when the arguments are
/// what git refuses (a branch name, …), with the reason in the notice; temporary otherwise.
fn git_failure(error: &GitError) -> ProcessError {
    if error.is_permanent() {
        invalid(&[error.to_string()])
    } else {
        ProcessError::Temporary(format!("git: {error}"))
    }
}

/// A failure to apply the patches: GitLab's `Could not apply patches to <branch>:` notice for
/// every refusal of the patches themselves (a limit of postern's as `limit_exceeded`),
/// temporary when running git failed on postern's side.
fn patch_failure(source_branch: &str, error: &PatchError) -> ProcessError {
    if !error.is_permanent() {
        return ProcessError::Temporary(format!("applying patches: {error}"));
    }
    let kind = match error {
        PatchError::LimitExceeded { .. } => ErrorKind::LimitExceeded,
        _ => ErrorKind::InvalidAttachment,
    };
    Rejection::with_reason(
        kind,
        postern_git::could_not_apply_patches(source_branch, error),
    )
    .into()
}

/// What a mail asks for, from the mail and the store alone: the checks before any git work.
struct Request {
    project: Project,
    author: User,
    source_branch: String,
    target_branch: String,
    description: String,
}

async fn request(
    tx: &mut Tx,
    email: &Email<'_>,
    texts: &MessageTexts,
    config: &ProcessorConfig,
    project: &ProjectRef,
    token: &str,
) -> Result<Request, ProcessError> {
    let (project, author, role) = project_and_author(tx, project, token).await?;
    let actor = Actor {
        user: &author,
        role,
    };
    validate(&actor, &project, Ability::CreateMergeRequest, None)?;
    super::check_token_sender(email, &author)?;

    let source_branch = email.subject().unwrap_or("").trim().to_owned();
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
    if let Some(refusal) = crate::branches::source_refusal(tx, &project, &source_branch).await? {
        return Err(invalid(&[refusal]));
    }
    // The description is the trimmed reply; its quick actions (e.g. `/target_branch`) run.
    let (body, _) = texts.body(Variant::Trimmed);
    let (description, actions) =
        crate::content::extract_checked_quick_actions(&body, config.limits.max_quick_actions)?;
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
    Ok(Request {
        project,
        author,
        source_branch,
        target_branch,
        description,
    })
}

/// The git work a merge request by email needs, decided before the write transaction.
pub(crate) struct Plan {
    project_id: i64,
    source_branch: String,
    target_branch: String,
    patches: Vec<Patch>,
}

/// Whether the mail has `.patch` attachments: only then is there slow git work (`git am`) to do
/// before the transaction. Without, the handler's few quick git reads run inside it.
pub(crate) fn has_patches(email: &Email<'_>) -> bool {
    !postern_mail::patches(&postern_mail::attachments(email)).is_empty()
}

/// Works out, in a read-only transaction, whether a message routed to `route` needs git work
/// and which; `None` when it is not a merge request, or the handler will refuse it before any
/// git work (or the store cannot tell now: the handler then finds out itself).
pub(crate) async fn plan(
    tx: &mut Tx,
    route: &Route,
    email: &Email<'_>,
    texts: &MessageTexts,
    config: &ProcessorConfig,
) -> Option<Plan> {
    let Route::CreateMergeRequest { project, token } = route else {
        return None;
    };
    let request = request(tx, email, texts, config, project, token)
        .await
        .ok()?;
    Some(Plan::of(&request, email))
}

/// The git half of a merge request by email across the processing of one message: prepared
/// before the write transaction, published inside it, put back if that does not commit.
#[derive(Default)]
pub(crate) struct GitState {
    /// What [`Plan::run`] did before the transaction; the handler takes it.
    pub(crate) prepared: Option<PreparedMergeRequest>,
    /// The branch the handler moved, until the transaction has committed.
    pub(crate) published: Option<Published>,
}

impl GitState {
    /// Puts back a branch the handler moved, when the transaction did not commit.
    pub(crate) async fn undo(&mut self) {
        if let Some(published) = self.published.take() {
            published.undo().await;
        }
    }
}

impl Plan {
    fn of(request: &Request, email: &Email<'_>) -> Plan {
        let attachments = postern_mail::attachments(email);
        let patches = postern_mail::patches(&attachments)
            .into_iter()
            .map(|attachment| Patch {
                filename: attachment.filename.clone(),
                content: attachment.content.to_vec(),
            })
            .collect();
        Plan {
            project_id: request.project.id,
            source_branch: request.source_branch.clone(),
            target_branch: request.target_branch.clone(),
            patches,
        }
    }

    /// Does the git work, off the async workers: applies the patches without moving a ref
    /// and reads the commits the merge request will list.
    pub(crate) async fn run(
        self,
        repositories: &postern_git::Repositories,
    ) -> PreparedMergeRequest {
        let repositories = repositories.clone();
        let (project_id, source, target) = (
            self.project_id,
            self.source_branch.clone(),
            self.target_branch.clone(),
        );
        let outcome = tokio::task::spawn_blocking(move || {
            git_work(
                &repositories,
                self.project_id,
                &self.source_branch,
                &self.target_branch,
                &self.patches,
            )
        })
        .await
        .unwrap_or_else(|e| Err(ProcessError::Internal(format!("patch task failed: {e}"))));
        PreparedMergeRequest {
            project_id,
            source_branch: source,
            target_branch: target,
            outcome,
        }
    }
}

/// The result of [`Plan::run`], handed to the handler.
pub(crate) struct PreparedMergeRequest {
    project_id: i64,
    source_branch: String,
    target_branch: String,
    outcome: Result<GitWork, ProcessError>,
}

impl PreparedMergeRequest {
    /// Whether this is the work `request` needs: the project or its default branch may have
    /// changed between the preparation and the transaction.
    fn is_for(&self, request: &Request) -> bool {
        self.project_id == request.project.id
            && self.source_branch == request.source_branch
            && self.target_branch == request.target_branch
    }
}

/// What git said, before the transaction.
struct GitWork {
    repository: Repository,
    /// Where the source branch pointed (`None`: it did not exist).
    previous_head: Option<String>,
    /// The patches applied, not yet published; `None` when the mail had none.
    patches: Option<PreparedPatches>,
    /// Whether the target branch exists (an invalid name does not).
    target_exists: bool,
    /// The commits on the source branch (with the patches) that the target lacks.
    commits: Vec<CommitInfo>,
}

fn git_work(
    repositories: &postern_git::Repositories,
    project_id: i64,
    source_branch: &str,
    target_branch: &str,
    patches: &[Patch],
) -> Result<GitWork, ProcessError> {
    let repository = repositories
        .repository(project_id)
        .map_err(|e| git_failure(&e))?;
    let previous_head = repository
        .head_of(source_branch)
        .map_err(|e| git_failure(&e))?;
    // Checked before `git am` runs: patches never move a branch that exists. (Publishing is a
    // compare-and-swap from "no branch", so one created in the meantime is not moved either.)
    if previous_head.is_some() && !patches.is_empty() {
        return Err(invalid(&[crate::branches::existing_source_refusal(
            source_branch,
        )]));
    }
    let patches = repository
        .prepare_patches(source_branch, target_branch, patches)
        .map_err(|e| patch_failure(source_branch, &e))?;
    // `/target_branch a..b` names no branch: the merge request is refused for it, for good.
    let target_head = match postern_git::validate_branch_name(target_branch) {
        Ok(()) => repository
            .head_of(target_branch)
            .map_err(|e| git_failure(&e))?,
        Err(_) => None,
    };
    let tip = match &patches {
        Some(prepared) => Some(prepared.new_tip().to_owned()),
        None => previous_head.clone(),
    };
    let commits = match (&target_head, &tip) {
        (Some(target), Some(tip)) => repository
            .commits_between(target, tip)
            .map_err(|e| git_failure(&e))?,
        _ => Vec::new(),
    };
    Ok(GitWork {
        repository,
        previous_head,
        patches,
        target_exists: target_head.is_some(),
        commits,
    })
}

/// Mail to `<project>-<id>-<token>-merge-request` opens a merge request.
pub async fn create_merge_request(
    context: &mut Context<'_, '_>,
    project: &ProjectRef,
    token: &str,
) -> Result<Handled, ProcessError> {
    let request = request(
        context.tx,
        context.email,
        context.texts,
        context.config,
        project,
        token,
    )
    .await?;
    let prepared = match context.git.prepared.take() {
        Some(prepared) if prepared.is_for(&request) => prepared,
        // No patches (only quick reads of the repository), or prepared for other branches
        // because the project changed in between (rare, and bounded by the same limits).
        _ => {
            Plan::of(&request, context.email)
                .run(context.repositories)
                .await
        }
    };
    let work = prepared.outcome?;
    if work.patches.is_none() && work.previous_head.is_none() {
        return Err(invalid(&[format!(
            "Source branch \"{}\" does not exist",
            request.source_branch
        )]));
    }
    if !work.target_exists {
        return Err(invalid(&[format!(
            "Target branch \"{}\" does not exist",
            request.target_branch
        )]));
    }
    // The branch moves first (a quick compare-and-swap); the rows follow in this transaction.
    if let Some(patches) = &work.patches {
        let (repository, patches) = (work.repository.clone(), patches.clone());
        tokio::task::spawn_blocking(move || repository.publish_patches(&patches))
            .await
            .map_err(|e| ProcessError::Internal(format!("patch task failed: {e}")))?
            .map_err(|e| patch_failure(&request.source_branch, &e))?;
    }
    let result = record(context, &request, &work.commits).await;
    if let Some(patches) = work.patches {
        let published = Published {
            repository: work.repository,
            patches,
        };
        match &result {
            // The processor puts it back should the transaction still fail.
            Ok(_) => context.git.published = Some(published),
            // The rows roll back: so does the branch, so a retry starts from the same
            // repository.
            Err(_) => published.undo().await,
        }
    }
    result
}

/// A source branch a handler moved, to put back if the transaction that records the merge
/// request does not commit after all.
#[derive(Debug)]
pub(crate) struct Published {
    repository: Repository,
    patches: PreparedPatches,
}

impl Published {
    /// Moves the branch back where it was (compare-and-swap: only if nobody moved it since).
    pub(crate) async fn undo(self) {
        let Published {
            repository,
            patches,
        } = self;
        let undone =
            tokio::task::spawn_blocking(move || repository.unpublish_patches(&patches)).await;
        match undone {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "putting a source branch back after a failed merge request");
            }
            Err(error) => {
                tracing::warn!(error = %error, "putting a source branch back after a failed merge request");
            }
        }
    }
}

async fn record(
    context: &mut Context<'_, '_>,
    request: &Request,
    commits: &[CommitInfo],
) -> Result<Handled, ProcessError> {
    let tx = &mut *context.tx;
    let (project, author) = (&request.project, &request.author);
    let (title, description) =
        title_and_description(&request.source_branch, request.description.clone(), commits);
    // Patches became commits; only the other attachments are uploaded and linked.
    let links =
        content::upload_attachments(tx, context.uploads, project.id, author.id, true).await?;
    let description = content::compose(&description, None, &links, false, Variant::Trimmed);
    let merge_request = tx
        .create_merge_request(NewMergeRequest {
            project_id: project.id,
            title,
            description,
            source_branch: request.source_branch.clone(),
            target_branch: request.target_branch.clone(),
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
