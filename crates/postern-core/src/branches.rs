//! Which branches mail may write to, in one place for the mail handler, the web UI and the
//! command line.
//!
//! A merge request by email creates its source branch; it never moves one that exists (GitLab
//! appends the patches to it, so `Subject: main` wrote to `main`), and never uses a protected
//! branch as its source. A project's default branch is protected from its creation.

use postern_store::{Project, Tx};

use crate::error::{ChangeError, ProcessError, Refusal};

/// Why a branch cannot be changed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BranchRefusal {
    /// Not a name git accepts for a branch.
    #[error("\"{0}\" is not a valid branch name")]
    InvalidName(String),
}

/// Why a merge request by email may not use `source_branch` (a protected branch), as the
/// refusal's text; `None` when it may. Whether the branch exists is git's to say, before the
/// patches are applied ([`existing_source_refusal`]).
pub async fn source_refusal(
    tx: &mut Tx,
    project: &Project,
    source_branch: &str,
) -> Result<Option<String>, ProcessError> {
    if tx.is_protected_branch(project.id, source_branch).await? {
        return Ok(Some(format!(
            "Source branch \"{source_branch}\" is protected: a merge request by email needs a new branch"
        )));
    }
    Ok(None)
}

/// The refusal for patches mailed to a branch that exists: they would move it.
pub fn existing_source_refusal(source_branch: &str) -> String {
    format!(
        "Source branch \"{source_branch}\" already exists: a merge request by email creates a new branch and never changes an existing one"
    )
}

/// Protects `name` in `project`. Returns whether it was not protected before.
pub async fn protect(tx: &mut Tx, project: &Project, name: &str) -> Result<bool, BranchError> {
    if postern_git::validate_branch_name(name).is_err() {
        return Err(BranchRefusal::InvalidName(name.to_owned()).into());
    }
    Ok(tx.protect_branch(project.id, name).await?)
}

/// Unprotects `name` in `project`. Returns whether it was protected.
pub async fn unprotect(tx: &mut Tx, project: &Project, name: &str) -> Result<bool, BranchError> {
    Ok(tx.unprotect_branch(project.id, name).await?)
}

impl Refusal for BranchRefusal {}

/// Either a refusal to show the person who asked, or a store failure.
pub type BranchError = ChangeError<BranchRefusal>;
