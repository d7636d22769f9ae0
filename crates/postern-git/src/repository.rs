//! [`Repositories`] (the root directory and shared settings) and [`Repository`] (one bare
//! repository): creating, reading and seeding them. Applying patches is in `patch.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command::{Git, Location, ResourceLimits};
use crate::refname::check_revision;
use crate::{GitError, Identity, PatchLimits, validate_branch_name};

/// The largest file [`Repository::diff_capped`] diffs as text; larger ones show as binary
/// ("Binary files … differ"). git holds both versions of a file and its line index in memory
/// while it diffs it, before it writes a line: a page showing 1 MiB of a new 230 MB file cost
/// git 416 MB and 1.9 s, and 241 MB and 0.6 s as binary (git still inflates a loose object
/// whole). Large enough that a big generated file still shows its start.
pub const DIFF_TEXT_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// How long one git process may run before it is killed, unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The repositories of all projects, under one root directory.
///
/// Created once at start-up from the configuration and kept for the life of the process (it is
/// cheap to clone); dropping it changes nothing on disk.
#[derive(Debug, Clone)]
pub struct Repositories {
    /// `<data dir>/repositories`; created on first use. Each project's repository is the
    /// bare repository `<root>/<project id>.git`.
    root: PathBuf,
    /// Binary, committer and timeout for every git call; copied into each [`Repository`].
    git: Git,
    /// The branch `HEAD` names in newly created repositories (GitLab's default: `main`).
    default_branch: String,
}

/// One project's bare repository.
///
/// Handed out by [`Repositories::repository`]; holds only a path and settings, so it is cheap
/// to clone, and dropping it changes nothing on disk.
#[derive(Debug, Clone)]
pub struct Repository {
    /// Absolute path of the bare repository (`<root>/<id>.git`).
    pub(crate) path: PathBuf,
    /// Settings shared with the [`Repositories`] it came from.
    pub(crate) git: Git,
}

/// One commit, as the merge request code needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full hexadecimal object id.
    pub sha: String,
    /// First line of the message.
    pub title: String,
    /// The whole message as git stores it (normally ending in a newline).
    pub message: String,
    /// Author name, as recorded (no mailmap).
    pub author_name: String,
    /// Author email, as recorded.
    pub author_email: String,
    /// Author date, in seconds since the Unix epoch.
    pub authored_at: i64,
}

impl Repositories {
    /// Repositories under `root` (normally `<data dir>/repositories`), with the default
    /// settings: committer `postern <postern@localhost>`, [`DEFAULT_TIMEOUT`], `git` from
    /// `PATH`, default branch `main`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Repositories {
            root: root.into(),
            git: Git {
                binary: PathBuf::from("git"),
                timeout: DEFAULT_TIMEOUT,
                committer: Identity::new("postern", "postern@localhost"),
                patch_limits: PatchLimits::default(),
            },
            default_branch: "main".to_owned(),
        }
    }

    /// Sets the committer of every commit postern creates (authors come from the patches).
    pub fn with_committer(mut self, committer: Identity) -> Self {
        self.git.committer = committer;
        self
    }

    /// Sets how long one git process may run before it is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.git.timeout = timeout;
        self
    }

    /// Sets the caps on mailed patches and on the `git am` that applies them (default:
    /// [`PatchLimits::default`]).
    pub fn with_patch_limits(mut self, limits: PatchLimits) -> Self {
        self.git.patch_limits = limits;
        self
    }

    /// Runs this git binary instead of `git` from `PATH`.
    pub fn with_git_binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.git.binary = binary.into();
        self
    }

    /// Sets the branch `HEAD` names in repositories created from now on.
    pub fn with_default_branch(mut self, branch: impl Into<String>) -> Self {
        self.default_branch = branch.into();
        self
    }

    /// The root directory, as configured.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The repository of project `project_id`, created (`git init --bare`) if missing.
    ///
    /// Creation is safe against a concurrent call for the same project: the repository is
    /// initialised in a temporary directory and renamed into place, and whoever renames second
    /// uses the first one's repository.
    pub fn repository(&self, project_id: i64) -> Result<Repository, GitError> {
        if project_id <= 0 {
            return Err(GitError::InvalidProjectId(project_id));
        }
        let root = std::path::absolute(&self.root)
            .map_err(|e| GitError::io(format!("resolving {}", self.root.display()), e))?;
        let path = root.join(format!("{project_id}.git"));
        let repository = Repository {
            path,
            git: self.git.clone(),
        };
        if repository.path.is_dir() {
            return Ok(repository);
        }
        validate_branch_name(&self.default_branch)?;
        fs::create_dir_all(&root)
            .map_err(|e| GitError::io(format!("creating {}", root.display()), e))?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".init-{project_id}-"))
            .tempdir_in(&root)
            .map_err(|e| GitError::io(format!("creating a directory in {}", root.display()), e))?;
        self.git
            .call(Location::Nowhere, "init")
            .args(["--bare", "--quiet", "--initial-branch"])
            .arg(&self.default_branch)
            .arg(staging.path())
            .run_ok()?;
        match fs::rename(staging.path(), &repository.path) {
            Ok(()) => {
                // Renamed away: nothing left for the guard to delete.
                let _ = staging.keep();
            }
            // Someone else created it meanwhile; the guard deletes our copy.
            Err(_) if repository.path.is_dir() => {}
            Err(e) => {
                let context = format!("moving a new repository to {}", repository.path.display());
                return Err(GitError::io(context, e));
            }
        }
        Ok(repository)
    }
}

impl Repository {
    /// Path of the bare repository.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The caps [`Repository::apply_patches`] enforces.
    pub fn patch_limits(&self) -> &PatchLimits {
        &self.git.patch_limits
    }

    /// Names of all branches, sorted.
    pub fn branches(&self) -> Result<Vec<String>, GitError> {
        let out = self
            .git
            .call(Location::GitDir(&self.path), "for-each-ref")
            .args(["--format=%(refname)", "refs/heads/"])
            .run_ok()?;
        let out = String::from_utf8_lossy(&out);
        Ok(out
            .lines()
            .filter_map(|line| line.strip_prefix("refs/heads/"))
            .map(str::to_owned)
            .collect())
    }

    /// Whether branch `name` exists.
    pub fn branch_exists(&self, name: &str) -> Result<bool, GitError> {
        Ok(self.head_of(name)?.is_some())
    }

    /// The commit branch `branch` points at, or `None` if there is no such branch.
    pub fn head_of(&self, branch: &str) -> Result<Option<String>, GitError> {
        validate_branch_name(branch)?;
        let output = self
            .git
            .call(Location::GitDir(&self.path), "rev-parse")
            .args(["--verify", "--quiet", "--end-of-options"])
            .arg(format!("refs/heads/{branch}^{{commit}}"))
            .run()?;
        // With --quiet, a missing ref is exit status 1 and silence; anything else says why.
        if output.status.success() {
            Ok(Some(parse_sha("rev-parse", &output.stdout)?))
        } else if output.stderr.is_empty() {
            Ok(None)
        } else {
            Err(GitError::Failed {
                command: "rev-parse".to_owned(),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// Commits `files` (path, content; mode 100644) onto `branch`, creating the branch (as a
    /// root commit) if it does not exist, and returns the new commit's sha.
    ///
    /// Files not named stay as they were on the branch; the message gets a final newline if it
    /// lacks one, and paths are checked first (see `check_path`). This works on the bare repository with
    /// plumbing only (a private index, `write-tree`, `commit-tree`), and moves the branch with a
    /// compare-and-swap, so a concurrent change to the branch makes it fail instead of being
    /// overwritten. Used to seed repositories in tests and by `postern admin`.
    pub fn commit_files(
        &self,
        branch: &str,
        files: &[(&str, &[u8])],
        message: &str,
        author: &Identity,
    ) -> Result<String, GitError> {
        validate_branch_name(branch)?;
        for (path, _) in files {
            check_path(path)?;
        }
        let parent = self.head_of(branch)?;
        let scratch = tempfile::tempdir()
            .map_err(|e| GitError::io("creating a temporary directory for an index", e))?;
        let index = scratch.path().join("index");
        let at = Location::GitDir(&self.path);
        if let Some(parent) = &parent {
            self.git
                .call(at, "read-tree")
                .env("GIT_INDEX_FILE", &index)
                .arg(parent)
                .run_ok()?;
        }
        let mut records = Vec::new();
        for (path, content) in files {
            let blob = self
                .git
                .call(Location::GitDir(&self.path), "hash-object")
                .args(["-w", "--stdin"])
                .stdin(content.to_vec())
                .run_ok()?;
            let blob = parse_sha("hash-object", &blob)?;
            records.extend_from_slice(format!("100644 {blob}\t{path}\0").as_bytes());
        }
        self.git
            .call(Location::GitDir(&self.path), "update-index")
            .env("GIT_INDEX_FILE", &index)
            .args(["-z", "--index-info"])
            .stdin(records)
            .run_ok()?;
        let tree = self
            .git
            .call(Location::GitDir(&self.path), "write-tree")
            .env("GIT_INDEX_FILE", &index)
            .run_ok()?;
        let tree = parse_sha("write-tree", &tree)?;
        let mut commit = self
            .git
            .call(Location::GitDir(&self.path), "commit-tree")
            .env("GIT_AUTHOR_NAME", &author.name)
            .env("GIT_AUTHOR_EMAIL", &author.email)
            .arg(&tree)
            .stdin(message_bytes(message));
        if let Some(parent) = &parent {
            commit = commit.arg("-p").arg(parent);
        }
        let sha = parse_sha("commit-tree", &commit.run_ok()?)?;
        self.update_branch(branch, &sha, parent.as_deref())?;
        Ok(sha)
    }

    /// Moves (or creates, when `old` is `None`) `branch` to `new`, only if it is still at `old`.
    pub(crate) fn update_branch(
        &self,
        branch: &str,
        new: &str,
        old: Option<&str>,
    ) -> Result<(), GitError> {
        // An all-zero old value means "must not exist yet".
        let zero = "0".repeat(new.len());
        self.git
            .call(Location::GitDir(&self.path), "update-ref")
            .arg(format!("refs/heads/{branch}"))
            .arg(new)
            .arg(old.unwrap_or(&zero))
            .run_ok()?;
        Ok(())
    }

    /// Puts `branch` back where it was before an operation: at `previous`, or deleted when it
    /// did not exist. Used when the database refuses to record what a patch application did, so
    /// a retry of the same mail starts from the same repository.
    pub fn reset_branch(&self, branch: &str, previous: Option<&str>) -> Result<(), GitError> {
        validate_branch_name(branch)?;
        let call = self.git.call(Location::GitDir(&self.path), "update-ref");
        let call = match previous {
            Some(sha) => call.arg(format!("refs/heads/{branch}")).arg(sha),
            None => call.arg("-d").arg(format!("refs/heads/{branch}")),
        };
        call.run_ok()?;
        Ok(())
    }

    /// The commits reachable from `tip` but not from `base` (`git log base..tip`), oldest first.
    pub fn commits_between(&self, base: &str, tip: &str) -> Result<Vec<CommitInfo>, GitError> {
        check_revision(base)?;
        check_revision(tip)?;
        let out = self
            .git
            .call(Location::GitDir(&self.path), "log")
            .args(["--reverse", "-z", "--format=%H%x00%an%x00%ae%x00%at%x00%B"])
            .arg("--end-of-options")
            .arg(format!("{base}..{tip}"))
            .arg("--")
            .run_ok()?;
        parse_log(&out)
    }

    /// The changes the commits of `tip` make since it diverged from `base` (`git diff
    /// base...tip`, what a merge request shows), as a unified diff. Bytes that are not UTF-8
    /// are replaced with U+FFFD. The whole diff, however large: pages use
    /// [`Repository::diff_capped`].
    pub fn diff(&self, base: &str, tip: &str) -> Result<String, GitError> {
        let diff = self.diff_call(base, tip, None)?;
        Ok(diff.text)
    }

    /// [`Repository::diff`], reading at most `max_bytes` of it from git: git is stopped once it
    /// has written more, and the text is cut after the last whole line within the limit, so
    /// neither postern's memory nor the time spent grows with the size of the changes. Files
    /// larger than [`DIFF_TEXT_FILE_BYTES`] show as binary (git's `core.bigFileThreshold`), and
    /// git runs with the heap limit of [`PatchLimits::max_memory_bytes`] and may write no file.
    pub fn diff_capped(&self, base: &str, tip: &str, max_bytes: usize) -> Result<Diff, GitError> {
        self.diff_call(base, tip, Some(max_bytes))
    }

    fn diff_call(&self, base: &str, tip: &str, max_bytes: Option<usize>) -> Result<Diff, GitError> {
        check_revision(base)?;
        check_revision(tip)?;
        let mut call = self
            .git
            .call(Location::GitDir(&self.path), "diff")
            .args([
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--end-of-options",
            ])
            .arg(format!("{base}...{tip}"))
            .arg("--");
        if let Some(max) = max_bytes {
            // A file over DIFF_TEXT_FILE_BYTES is diffed as binary ("Binary files … differ").
            // The heap limit bounds what is left.
            call = call
                .stdout_limit(max)
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "core.bigFileThreshold")
                .env("GIT_CONFIG_VALUE_0", DIFF_TEXT_FILE_BYTES.to_string())
                .limits(ResourceLimits {
                    file_bytes: 0,
                    memory_bytes: self.git.patch_limits.max_memory_bytes,
                });
        }
        let output = call.run()?;
        if output.stdout_truncated {
            let mut bytes = output.stdout;
            // Whole lines only; a single line longer than the limit is shown cut.
            if let Some(end) = bytes.iter().rposition(|&b| b == b'\n') {
                bytes.truncate(end + 1);
            }
            return Ok(Diff {
                text: String::from_utf8_lossy(&bytes).into_owned(),
                truncated: true,
            });
        }
        if !output.status.success() {
            return Err(GitError::Failed {
                command: "diff".to_owned(),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(Diff {
            text: String::from_utf8_lossy(&output.stdout).into_owned(),
            truncated: false,
        })
    }
}

/// A merge request's diff as [`Repository::diff_capped`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// The unified diff, or its first whole lines when `truncated`.
    pub text: String,
    /// Whether git had more to say than the limit allowed.
    pub truncated: bool,
}

/// Checks a path for `commit_files`: relative, `/`-separated, no empty, `.` or `..` component,
/// no `.git` component (in any case), no NUL. `git update-index --index-info` would store
/// `../x` without complaint, so postern checks before git sees it.
fn check_path(path: &str) -> Result<(), GitError> {
    let bad_component =
        |c: &str| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git");
    if path.contains('\0') || path.split('/').any(bad_component) {
        return Err(GitError::InvalidPath {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// A commit message as `commit-tree` should store it: ending in a newline, as `git commit`
/// would leave it.
fn message_bytes(message: &str) -> Vec<u8> {
    let mut bytes = message.as_bytes().to_vec();
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    bytes
}

/// Reads one object id from a git command's output line.
pub(crate) fn parse_sha(command: &str, out: &[u8]) -> Result<String, GitError> {
    let text = String::from_utf8_lossy(out);
    let sha = text.trim();
    if (sha.len() == 40 || sha.len() == 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sha.to_owned())
    } else {
        Err(GitError::Unexpected {
            command: command.to_owned(),
            detail: format!("not an object id: {sha:?}"),
        })
    }
}

/// Parses `git log -z --format=%H%x00%an%x00%ae%x00%at%x00%B`: five NUL-separated fields per
/// commit, commits separated by NUL too.
fn parse_log(out: &[u8]) -> Result<Vec<CommitInfo>, GitError> {
    const FIELDS: usize = 5;
    let unexpected = |detail: String| GitError::Unexpected {
        command: "log".to_owned(),
        detail,
    };
    if out.is_empty() {
        return Ok(Vec::new());
    }
    let mut fields: Vec<&[u8]> = out.split(|&b| b == 0).collect();
    // A terminating NUL after the last commit leaves one empty piece.
    if fields.len() % FIELDS == 1 && fields.last().is_some_and(|f| f.is_empty()) {
        fields.pop();
    }
    if !fields.len().is_multiple_of(FIELDS) {
        return Err(unexpected(format!(
            "{} fields, not a multiple of {FIELDS}",
            fields.len()
        )));
    }
    fields
        .chunks(FIELDS)
        .map(|commit| {
            let text = |i: usize| String::from_utf8_lossy(commit[i]).into_owned();
            let sha = parse_sha("log", commit[0])?;
            let authored_at = text(3)
                .trim()
                .parse()
                .map_err(|_| unexpected(format!("bad author date {:?}", text(3))))?;
            let message = text(4);
            let title = message.lines().next().unwrap_or_default().to_owned();
            Ok(CommitInfo {
                sha,
                title,
                message,
                author_name: text(1),
                author_email: text(2),
                authored_at,
            })
        })
        .collect()
}
