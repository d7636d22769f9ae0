//! Git repositories of projects, and applying emailed patches to them.
//!
//! This crate owns postern's on-disk git repositories: one bare repository per project under a
//! root directory (`<data dir>/repositories/<project id>.git`). It creates them, reads branches
//! and commits from them, seeds them with files, and implements the git half of GitLab's *new
//! merge request by email*: the `.patch` attachments of a mail are applied with `git am` onto
//! the source branch (created from the target branch if it does not exist yet), exactly as
//! GitLab's `Commits::CommitPatchService` and Gitaly's `UserApplyPatch` do, with GitLab's texts
//! for the errors a sender sees.
//!
//! Everything is done by running the system `git` (synchronously; async callers use
//! `spawn_blocking`). Each git process gets a clean environment: no system or user
//! configuration, no hooks, the C locale, postern's committer identity, and a timeout after
//! which it is killed together with its children.
//!
//! Main types:
//! - [`Repositories`]: the root directory plus the settings every git call uses (committer,
//!   timeout, git binary, default branch); hands out [`Repository`] values.
//! - [`Repository`]: one project's bare repository; [`Repository::apply_patches`] is the
//!   operation behind new merge requests by email, in two halves for callers that hold a lock
//!   or a transaction: [`Repository::prepare_patches`] (the slow part: checks, `git am` in a
//!   throw-away worktree, no ref moved) and [`Repository::publish_patches`] (one
//!   compare-and-swap of the branch).
//! - [`PatchLimits`]: every cap on what one mail's patches may make git do, checked in one
//!   linear pass over the patch text before git runs ([`check_patches`]: declared binary
//!   sizes, lines, files) and enforced on `git am` itself by operating-system limits (file
//!   size, heap).
//! - [`Patch`], [`CommitInfo`], [`Diff`], and the errors [`GitError`] and [`PatchError`], each
//!   with `is_permanent()`: whether the same request would fail the same way again.
//!
//! ```
//! use postern_git::{Identity, Patch, Repositories};
//!
//! let data = tempfile::tempdir()?;
//! let repositories = Repositories::new(data.path().join("repositories"))
//!     .with_committer(Identity::new("postern", "postern@example.com"));
//! let repository = repositories.repository(42)?;
//! let author = Identity::new("Jake the Dog", "jake@example.com");
//! repository.commit_files("main", &[("README", b"Hello\n".as_slice())], "Add README", &author)?;
//!
//! let patch = Patch {
//!     filename: "0001-Greet.patch".into(),
//!     content: b"From: Finn <finn@example.com>\nDate: Thu, 18 Oct 2018 13:40:35 +0200\n\
//!         Subject: [PATCH] Greet\n\n---\ndiff --git a/README b/README\n--- a/README\n\
//!         +++ b/README\n@@ -1 +1,2 @@\n Hello\n+World\n"
//!         .to_vec(),
//! };
//! let commits = repository.apply_patches("greeting", "main", &[patch])?;
//! assert_eq!(commits[0].title, "Greet");
//! assert_eq!(commits[0].author_email, "finn@example.com");
//! assert_eq!(repository.branches()?, ["greeting", "main"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What this crate must never do: parse mail (the caller extracts, decodes and sorts the
//! attachments), touch the database, or decide permissions; it depends on no other postern
//! crate. It never runs repository hooks, and it never leaves a repository half-changed: a
//! failed `apply_patches` leaves every ref and worktree as it was (objects git wrote meanwhile
//! stay as unreachable garbage for `git gc`). It runs no housekeeping itself.
//!
//! Unix only: timeouts kill git's whole process group.
#![deny(missing_docs)]

mod check;
mod command;
mod error;
mod limits;
mod patch;
mod refname;
mod repository;

use std::fmt;

pub use check::check_patches;
pub use error::GitError;
pub use limits::{
    MAX_BINARY_HUNK_BYTES, MAX_BINARY_TOTAL_BYTES, MAX_GIT_MEMORY_BYTES, MAX_PATCH_FILES,
    MAX_PATCH_LINES, MAX_PATCHES_SIZE, MAX_WRITTEN_FILE_BYTES, PatchLimit, PatchLimits,
};
pub use patch::{Patch, PatchError, PreparedPatches, could_not_apply_patches};
pub use refname::{MAX_BRANCH_COMPONENT_BYTES, MAX_BRANCH_NAME_BYTES, validate_branch_name};
pub use repository::{
    CommitInfo, DEFAULT_TIMEOUT, DIFF_TEXT_FILE_BYTES, Diff, Repositories, Repository,
};

/// A person as git records them: a name and an email address.
///
/// Used for the author of commits made by [`Repository::commit_files`] and for postern's own
/// committer identity ([`Repositories::with_committer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Display name, e.g. `Jake the Dog`.
    pub name: String,
    /// Email address, without angle brackets.
    pub email: String,
}

impl Identity {
    /// Builds an identity from a name and an email address.
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> Self {
        Identity {
            name: name.into(),
            email: email.into(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}
