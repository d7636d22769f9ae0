//! [`GitError`]: what can go wrong when postern runs `git` on a repository.
//!
//! Errors of `apply_patches` have their own type, [`crate::PatchError`], because they carry
//! GitLab's user-facing texts; this one is for everything else.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// A failed operation on a repository.
///
/// The `command` fields name the git subcommand (`"update-ref"`, `"am"`), never the full
/// command line, so that an error can be logged without leaking paths or patch contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The name is not one GitLab accepts for a new branch (see [`crate::validate_branch_name`]).
    #[error("invalid branch name {name:?}")]
    InvalidBranchName {
        /// The rejected name.
        name: String,
    },
    /// A revision argument that postern refuses to pass to git (empty, starting with `-`, …).
    #[error("invalid revision {revision:?}")]
    InvalidRevision {
        /// The rejected revision.
        revision: String,
    },
    /// Project ids are positive; anything else would make an odd directory name.
    #[error("invalid project id {0}")]
    InvalidProjectId(i64),
    /// A path given to `commit_files` that git would not store (absolute, `..`, `.git`, …).
    #[error("invalid file path {path:?} in commit")]
    InvalidPath {
        /// The rejected path.
        path: String,
    },
    /// The git binary could not be started at all.
    #[error("could not run {}: {source}", binary.display())]
    Spawn {
        /// The binary postern tried to run.
        binary: PathBuf,
        /// Why the operating system refused.
        #[source]
        source: io::Error,
    },
    /// git ran longer than the configured timeout; it and its children were killed.
    #[error("git {command} did not finish within {timeout:?} and was killed")]
    Timeout {
        /// The subcommand.
        command: String,
        /// The limit it exceeded.
        timeout: Duration,
    },
    /// git exited unsuccessfully.
    #[error("git {command} failed ({status}): {stderr}")]
    Failed {
        /// The subcommand.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its standard error, lossily decoded and trimmed.
        stderr: String,
    },
    /// git succeeded but printed something postern cannot read.
    #[error("unexpected output from git {command}: {detail}")]
    Unexpected {
        /// The subcommand.
        command: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A filesystem operation of postern's own (creating directories, temporary files) failed.
    #[error("{context}: {source}")]
    Io {
        /// What postern was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl GitError {
    /// Whether the same operation with the same arguments would fail the same way again: the
    /// arguments themselves are refused (branch names, including `a..b` and names too long for
    /// a file system, revisions, paths, project ids). Everything else is a failure on postern's
    /// side that can clear: git missing, a timeout, a lock held by another git, I/O, output
    /// postern could not read.
    pub fn is_permanent(&self) -> bool {
        match self {
            GitError::InvalidBranchName { .. }
            | GitError::InvalidRevision { .. }
            | GitError::InvalidProjectId(_)
            | GitError::InvalidPath { .. } => true,
            GitError::Spawn { .. }
            | GitError::Timeout { .. }
            | GitError::Failed { .. }
            | GitError::Unexpected { .. }
            | GitError::Io { .. } => false,
        }
    }

    /// Wraps an I/O error with a short description of what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        GitError::Io {
            context: context.into(),
            source,
        }
    }
}
