//! Applying the `.patch` attachments of a *new merge request by email*.
//!
//! GitLab's path is `CreateMergeRequestHandler#apply_patches_to_source_branch` →
//! `Commits::CommitPatchService` (size check, branch-name check, creating the branch) →
//! Gitaly `UserApplyPatch`, which checks out the base commit in a temporary worktree of the bare
//! repository, pipes the patches (joined with `"\n"`) into `git am --quiet --3way` with the
//! GitLab user as committer, and moves the branch with a compare-and-swap. postern does the
//! same, with its own committer identity, and one deliberate difference: GitLab creates a new
//! source branch *before* applying, so a patch that fails leaves the new branch behind; postern
//! creates or moves the branch only once every patch applied.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use tempfile::TempDir;

use crate::check::check_patches;
use crate::command::{Location, Output, ResourceLimits};
use crate::limits::{PatchLimit, PatchLimits};
use crate::repository::parse_sha;
use crate::{CommitInfo, GitError, Repository, validate_branch_name};

/// Directory inside the bare repository that holds temporary worktrees while patches are
/// applied (Gitaly uses `gitlab-worktree` the same way). Removed again when empty.
const WORKTREES_DIR: &str = "postern-worktrees";

/// One `.patch` attachment: the output of `git format-patch`, already decoded from the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// The attachment's file name (the caller sorts patches by it).
    pub filename: String,
    /// The decoded content.
    pub content: Vec<u8>,
}

/// Why [`Repository::apply_patches`] failed. The repository is unchanged in every case.
///
/// `Display` gives a readable message (GitLab's own text where GitLab has one);
/// [`PatchError::gitlab_message`] reproduces what GitLab actually puts in its rejection mail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The patches add up to [`crate::MAX_PATCHES_SIZE`] bytes or more (`CommitPatchService`).
    #[error("Patches are too big")]
    TooBig {
        /// Their total size in bytes.
        size: usize,
    },
    /// The source branch does not exist and its name is invalid (`Commits::CreateService`
    /// with `Branches::ValidateNewService`'s "Branch name is invalid").
    #[error(
        "Something went wrong when we tried to create '{branch}' for you: Branch name is invalid"
    )]
    InvalidBranchName {
        /// The rejected source branch name (the mail's Subject).
        branch: String,
    },
    /// The source branch does not exist and the target branch to create it from does not
    /// either (`Branches::CreateService`).
    #[error("Failed to create branch '{branch}': invalid reference name '{target}'")]
    TargetNotFound {
        /// The source branch that was to be created.
        branch: String,
        /// The missing target branch.
        target: String,
    },
    /// A patch did not apply. `output` is `git am`'s standard output, e.g. ``Patch failed at
    /// 0001 This does not apply to the `feature` branch`` and a newline.
    #[error("{}", .output.trim_end())]
    DoesNotApply {
        /// What `git am` printed.
        output: String,
    },
    /// `git am` failed for another reason (not a patch, corrupt patch, …).
    #[error("git am failed ({status}): {stderr}")]
    AmFailed {
        /// Its exit status.
        status: ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// The source branch moved (or appeared) while the patches were being applied; nothing
    /// was overwritten.
    #[error("Could not update refs/heads/{branch}. Please refresh and try again.")]
    BranchMoved {
        /// The source branch.
        branch: String,
    },
    /// The patches declare more than one of the [`PatchLimits`] allows, or `git am` hit one of
    /// its operating-system limits while applying them. postern's own refusal (GitLab has no
    /// such limits); the text names the limit.
    #[error("The patches are over a limit of postern: at most {max} {}", .limit.describe())]
    LimitExceeded {
        /// Which limit.
        limit: PatchLimit,
        /// Its value.
        max: u64,
    },
    /// Running git failed (timeout, I/O, an unexpected error).
    #[error(transparent)]
    Git(#[from] GitError),
}

impl PatchError {
    /// Whether sending the same patches again would fail the same way: every refusal of the
    /// patches themselves (size, limits, branch names, conflicts, malformed patches, a branch
    /// changed meanwhile). Only a failure to run git on postern's side (timeout, I/O) is
    /// temporary; see [`GitError::is_permanent`].
    pub fn is_permanent(&self) -> bool {
        match self {
            PatchError::Git(error) => error.is_permanent(),
            PatchError::TooBig { .. }
            | PatchError::InvalidBranchName { .. }
            | PatchError::TargetNotFound { .. }
            | PatchError::DoesNotApply { .. }
            | PatchError::AmFailed { .. }
            | PatchError::BranchMoved { .. }
            | PatchError::LimitExceeded { .. } => true,
        }
    }

    /// The message GitLab's `CommitPatchService` returns for this failure, which GitLab puts
    /// after `Could not apply patches to <branch>:` (see [`could_not_apply_patches`]).
    ///
    /// For failures GitLab detects itself this is the same as `Display`. Failures inside
    /// Gitaly reach GitLab as gRPC errors, whose Ruby message is `"<code>:<details>"`; GitLab's
    /// `Gitlab::Git::BaseError` then cuts the `" debug_error_string:…"` suffix but keeps the
    /// `.` before it. So a conflict reads `9:Patch failed at 0001 <subject>\n.` (9 is
    /// `FAILED_PRECONDITION`), and other `git am` failures read
    /// `13:apply patch: exit status 128, stderr: "<stderr>".` (13 is `INTERNAL`; the quoting
    /// approximates Go's `%q`).
    pub fn gitlab_message(&self) -> String {
        match self {
            PatchError::DoesNotApply { output } => format!("9:{output}."),
            PatchError::AmFailed { status, stderr } => {
                let status = match status.code() {
                    Some(code) => format!("exit status {code}"),
                    None => "signal: killed".to_owned(),
                };
                // Gitaly quotes git's stderr untrimmed, so with its final newline.
                let stderr = format!("{stderr}\n");
                format!("13:apply patch: {status}, stderr: {stderr:?}.")
            }
            PatchError::BranchMoved { .. } => format!("13:update reference: {self}."),
            other => other.to_string(),
        }
    }
}

/// GitLab's rejection text for patches that could not be applied to `branch`:
/// `"Could not apply patches to <branch>:\n<message>"`, the message of the
/// `Gitlab::Email::InvalidAttachment` that `CreateMergeRequestHandler` raises.
///
/// ```
/// use postern_git::{PatchError, could_not_apply_patches};
///
/// let error = PatchError::TooBig { size: 3 << 20 };
/// assert_eq!(could_not_apply_patches("fix", &error), "Could not apply patches to fix:\nPatches are too big");
/// ```
pub fn could_not_apply_patches(branch: &str, error: &PatchError) -> String {
    format!(
        "Could not apply patches to {branch}:\n{}",
        error.gitlab_message()
    )
}

/// Patches applied in a throw-away worktree by [`Repository::prepare_patches`]: the new commits
/// are in the repository's object store, but no ref has moved.
/// [`Repository::publish_patches`] moves the source branch to them; dropping the value instead
/// leaves the objects as unreachable garbage for `git gc`, and the repository as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedPatches {
    source_branch: String,
    old_tip: Option<String>,
    base: String,
    new_tip: String,
    commits: Vec<CommitInfo>,
}

impl PreparedPatches {
    /// The branch the commits are for.
    pub fn source_branch(&self) -> &str {
        &self.source_branch
    }

    /// Where the source branch pointed when the patches were applied (`None`: it did not
    /// exist). Publishing succeeds only if it still does.
    pub fn old_tip(&self) -> Option<&str> {
        self.old_tip.as_deref()
    }

    /// The commit the patches were applied on: the old tip, or the target branch's head.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The last new commit, where publishing moves the branch.
    pub fn new_tip(&self) -> &str {
        &self.new_tip
    }

    /// The new commits, oldest first.
    pub fn commits(&self) -> &[CommitInfo] {
        &self.commits
    }
}

impl Repository {
    /// Applies `patches` (already sorted by file name) as commits on `source_branch`, and
    /// returns the new commits, oldest first: [`Repository::prepare_patches`] then
    /// [`Repository::publish_patches`].
    ///
    /// If `source_branch` exists the patches go on top of it; otherwise it is created from
    /// `target_branch`, which must exist. The patches are applied with `git am --3way` (as
    /// Gitaly does), which keeps each patch's author, date and message; postern's identity is
    /// the committer. Each patch is fed to `git am` as GitLab does: all of them in one mailbox,
    /// joined with newlines, so `Patch failed at 0002` counts from the first patch of the mail.
    ///
    /// On any error the repository is left as it was: no branch created or moved, no worktree
    /// or lock left behind. The branch is moved with a compare-and-swap, so a concurrent change
    /// to it yields [`PatchError::BranchMoved`] rather than being overwritten. An empty
    /// `patches` changes nothing and returns no commits.
    pub fn apply_patches(
        &self,
        source_branch: &str,
        target_branch: &str,
        patches: &[Patch],
    ) -> Result<Vec<CommitInfo>, PatchError> {
        match self.prepare_patches(source_branch, target_branch, patches)? {
            Some(prepared) => {
                self.publish_patches(&prepared)?;
                Ok(prepared.commits)
            }
            None => Ok(Vec::new()),
        }
    }

    /// The slow half of [`Repository::apply_patches`]: checks the patches against the
    /// [`PatchLimits`], applies them in a temporary worktree under operating-system limits, and
    /// reads the new commits. No ref moves; `Ok(None)` when `patches` is empty.
    ///
    /// The checks come first, in this order, each before any git process runs: the encoded
    /// size ([`PatchError::TooBig`]), the source branch name, then one linear pass over the
    /// text for the declared sizes, lines and files ([`PatchError::LimitExceeded`]).
    pub fn prepare_patches(
        &self,
        source_branch: &str,
        target_branch: &str,
        patches: &[Patch],
    ) -> Result<Option<PreparedPatches>, PatchError> {
        let limits = &self.git.patch_limits;
        let size = patches.iter().map(|patch| patch.content.len()).sum();
        if size >= limits.max_encoded_bytes {
            return Err(PatchError::TooBig { size });
        }
        if validate_branch_name(source_branch).is_err() {
            return Err(PatchError::InvalidBranchName {
                branch: source_branch.to_owned(),
            });
        }
        if patches.is_empty() {
            return Ok(None);
        }
        check_patches(patches, limits)?;

        let old_tip = self.head_of(source_branch)?;
        let base = match &old_tip {
            Some(tip) => tip.clone(),
            None => {
                let target = match validate_branch_name(target_branch) {
                    Ok(()) => self.head_of(target_branch)?,
                    Err(_) => None,
                };
                target.ok_or_else(|| PatchError::TargetNotFound {
                    branch: source_branch.to_owned(),
                    target: target_branch.to_owned(),
                })?
            }
        };

        let new_tip = {
            let worktree = Worktree::add(self, &base)?;
            let mut mailbox = Vec::with_capacity(size + patches.len());
            for (i, patch) in patches.iter().enumerate() {
                if i > 0 {
                    mailbox.push(b'\n');
                }
                mailbox.extend_from_slice(&patch.content);
            }
            let am = self
                .git
                .call(Location::WorkTree(worktree.path()), "am")
                // Pack files are mapped, not allocated, so they are outside `RLIMIT_DATA`; small
                // windows keep the mappings of a large repository modest all the same. (`-c`
                // would have to come before the subcommand; git ≥ 2.31 reads these variables.)
                .env("GIT_CONFIG_COUNT", "2")
                .env("GIT_CONFIG_KEY_0", "core.packedGitWindowSize")
                .env("GIT_CONFIG_VALUE_0", "32m")
                .env("GIT_CONFIG_KEY_1", "core.packedGitLimit")
                .env("GIT_CONFIG_VALUE_1", "256m")
                .args(["--quiet", "--3way"])
                .limits(ResourceLimits {
                    file_bytes: limits.max_written_file_bytes,
                    memory_bytes: limits.max_memory_bytes,
                })
                .stdin(mailbox)
                .run()?;
            if !am.status.success() {
                return Err(am_failure(&am, limits));
            }
            let head = self
                .git
                .call(Location::WorkTree(worktree.path()), "rev-parse")
                .args(["--verify", "HEAD^{commit}"])
                .run_ok()?;
            parse_sha("rev-parse", &head)?
            // The worktree goes here; the commits are in the repository's object store already.
        };

        let commits = self.commits_between(&base, &new_tip)?;
        Ok(Some(PreparedPatches {
            source_branch: source_branch.to_owned(),
            old_tip,
            base,
            new_tip,
            commits,
        }))
    }

    /// The quick half of [`Repository::apply_patches`]: moves the source branch to the
    /// prepared commits with a compare-and-swap, only if it is still where it was when they
    /// were prepared ([`PatchError::BranchMoved`] otherwise). This is the only step that
    /// changes a ref, and nothing can fail after it.
    pub fn publish_patches(&self, prepared: &PreparedPatches) -> Result<(), PatchError> {
        let branch = &prepared.source_branch;
        if let Err(error) = self.update_branch(branch, &prepared.new_tip, prepared.old_tip()) {
            return Err(if self.head_of(branch)? != prepared.old_tip {
                PatchError::BranchMoved {
                    branch: branch.to_owned(),
                }
            } else {
                PatchError::Git(error)
            });
        }
        Ok(())
    }

    /// Undoes [`Repository::publish_patches`] when what was to record the new commits failed:
    /// puts the source branch back where it was (deletes it if it did not exist), only if it is
    /// still at the prepared tip, so that a change made meanwhile by someone else stays.
    pub fn unpublish_patches(&self, prepared: &PreparedPatches) -> Result<(), GitError> {
        let branch = format!("refs/heads/{}", prepared.source_branch);
        let call = self.git.call(Location::GitDir(&self.path), "update-ref");
        let call = match &prepared.old_tip {
            Some(old) => call.arg(branch).arg(old).arg(&prepared.new_tip),
            None => call.arg("-d").arg(branch).arg(&prepared.new_tip),
        };
        call.run_ok()?;
        Ok(())
    }
}

/// What a failed `git am` means: over an operating-system limit (killed by `SIGXFSZ`, or out
/// of memory under `RLIMIT_DATA`), a conflict, or another failure.
fn am_failure(am: &Output, limits: &PatchLimits) -> PatchError {
    /// The signal the kernel sends for a write beyond `RLIMIT_FSIZE`.
    const SIGXFSZ: i32 = 25;
    let over = |limit: PatchLimit| PatchError::LimitExceeded {
        limit,
        max: limit.value(limits),
    };
    if am.status.signal() == Some(SIGXFSZ) {
        return over(PatchLimit::WrittenFile);
    }
    let stderr = String::from_utf8_lossy(&am.stderr).trim().to_owned();
    // git's `xmalloc` and `xmmap` die with "Out of memory, malloc failed" / "Out of memory?
    // mmap failed"; `git apply` reports an inflate buffer it could not allocate this way too.
    if stderr.contains("Out of memory") || stderr.contains("Cannot allocate memory") {
        return over(PatchLimit::Memory);
    }
    let output = String::from_utf8_lossy(&am.stdout).into_owned();
    // The same test Gitaly uses to tell a conflict from other failures.
    if output.starts_with("Patch failed at") {
        PatchError::DoesNotApply { output }
    } else {
        PatchError::AmFailed {
            status: am.status,
            stderr,
        }
    }
}

/// A temporary detached worktree of a bare repository, removed (with its administrative files
/// under `<repo>/worktrees/`) when dropped.
///
/// Created by `prepare_patches` for one `git am` run and dropped at the end of it, whatever the
/// outcome; removal errors are ignored because the directory guard and `git worktree prune`
/// clean up behind a failed `git worktree remove`.
struct Worktree<'r> {
    /// The repository the worktree belongs to.
    repository: &'r Repository,
    /// `<repo>/postern-worktrees/am-XXXXXX`, where the commit is checked out.
    path: PathBuf,
    /// Deletes `path` when dropped, should `git worktree remove` fail; `None` once removed.
    dir: Option<TempDir>,
}

impl<'r> Worktree<'r> {
    /// Checks `commit` out, detached, in a new worktree of `repository`.
    fn add(repository: &'r Repository, commit: &str) -> Result<Self, GitError> {
        let parent = repository.path.join(WORKTREES_DIR);
        let make_dir = || {
            fs::create_dir_all(&parent)?;
            tempfile::Builder::new().prefix("am-").tempdir_in(&parent)
        };
        // A concurrent apply may remove the (then empty) parent between the two steps; one
        // retry covers that race.
        let dir = make_dir().or_else(|_| make_dir()).map_err(|e| {
            GitError::io(
                format!("creating a worktree directory in {}", parent.display()),
                e,
            )
        })?;
        // From here on, dropping the guard cleans up even if `worktree add` fails half-way.
        let worktree = Worktree {
            repository,
            path: dir.path().to_owned(),
            dir: Some(dir),
        };
        repository
            .git
            .call(Location::GitDir(&repository.path), "worktree")
            .args(["add", "--detach", "--quiet"])
            .arg(worktree.path())
            .arg(commit)
            .run_ok()?;
        Ok(worktree)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Worktree<'_> {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let repository = self.repository;
        let at = Location::GitDir(&repository.path);
        // Twice --force: also when a killed git left the worktree locked.
        let _ = repository
            .git
            .call(at, "worktree")
            .args(["remove", "--force", "--force"])
            .arg(&self.path)
            .run();
        // Deletes what `worktree remove` left, if it failed; then prune forgets the worktree.
        drop(dir);
        let _ = repository.git.call(at, "worktree").arg("prune").run();
        // Only succeeds when empty, i.e. when no other apply is running.
        let _ = fs::remove_dir(repository.path.join(WORKTREES_DIR));
    }
}
