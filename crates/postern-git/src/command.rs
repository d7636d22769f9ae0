//! Running the system `git`: the one place that fixes its environment, disables hooks and
//! enforces the timeout.
//!
//! Every git process postern starts goes through [`Git::call`], so the guarantees hold for all
//! of them: the user's and the system's configuration never apply, hooks never run, output is
//! in the C locale, and a process that runs longer than the timeout is killed together with
//! any children it started.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::{GitError, Identity, PatchLimits};

/// How long to keep waiting for a killed or exited git's pipes to close. Only a grandchild
/// that escaped the process-group kill can hold them open this long.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// The longest single sleep between two `try_wait` polls. Short calls finish within the first
/// few polls (which start at 1 ms and double); long ones cost at most this much extra latency.
const MAX_POLL: Duration = Duration::from_millis(50);

/// The most of git's standard error kept: enough for any message git writes about a failure,
/// and a bound on what a misbehaving git can make postern hold.
const MAX_STDERR_BYTES: usize = 64 * 1024;

/// Environment variables passed through from postern's own environment. Everything else is
/// cleared, because variables such as `GIT_DIR`, `GIT_INDEX_FILE` or `GIT_CONFIG_PARAMETERS`
/// (set, for example, when postern itself runs inside a git hook) would redirect git.
const PASSED_THROUGH: &[&str] = &["PATH", "TMPDIR"];

/// Settings shared by every git call: which binary, which committer, how long it may run.
///
/// Created by [`crate::Repositories`] from its builder options and cloned into each
/// [`crate::Repository`] it hands out; it owns nothing that needs cleaning up.
#[derive(Debug, Clone)]
pub(crate) struct Git {
    /// The git executable; `git` (looked up on `PATH`) unless a test points it elsewhere.
    pub(crate) binary: PathBuf,
    /// Upper bound for one git process, from start to exit.
    pub(crate) timeout: Duration,
    /// The committer of every commit postern creates (`GIT_COMMITTER_NAME`/`_EMAIL`).
    pub(crate) committer: Identity,
    /// Caps on mailed patches and on the `git am` that applies them.
    pub(crate) patch_limits: PatchLimits,
}

/// Operating-system limits for one git process (and whatever it starts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResourceLimits {
    /// `RLIMIT_FSIZE`: the largest file it may write; a write beyond it kills it with `SIGXFSZ`.
    pub(crate) file_bytes: u64,
    /// `RLIMIT_DATA`: its heap; an allocation beyond it fails (git dies "Out of memory").
    pub(crate) memory_bytes: u64,
}

/// Where a git process runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Location<'a> {
    /// Outside any repository (used for `git init`).
    Nowhere,
    /// On a repository directory, with `--git-dir` (bare repositories have no work tree).
    GitDir(&'a Path),
    /// Inside a checked-out work tree; git finds the repository from its `.git` file.
    WorkTree(&'a Path),
}

/// What a finished git process left behind.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    /// Whether stdout was cut at the call's [`Call::stdout_limit`] (git was then stopped by
    /// the closed pipe, so its status says nothing about the output).
    pub(crate) stdout_truncated: bool,
}

/// One git invocation being assembled; consumed by [`Call::run`].
pub(crate) struct Call<'g> {
    git: &'g Git,
    subcommand: String,
    command: Command,
    stdin: Option<Vec<u8>>,
    limits: Option<ResourceLimits>,
    stdout_limit: Option<usize>,
}

impl Git {
    /// Starts a call of `git <subcommand>` at `location`, with postern's fixed environment.
    pub(crate) fn call(&self, location: Location<'_>, subcommand: &str) -> Call<'_> {
        let mut command = Command::new(&self.binary);
        command.env_clear();
        for name in PASSED_THROUGH {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_COMMITTER_NAME", &self.committer.name)
            .env("GIT_COMMITTER_EMAIL", &self.committer.email);
        match location {
            Location::Nowhere => {}
            Location::GitDir(dir) => {
                command.arg("--git-dir").arg(dir);
            }
            Location::WorkTree(dir) => {
                command.current_dir(dir);
            }
        }
        // Hooks are code from the repository; postern runs none. Automatic gc would fork a
        // detached background process that outlives the call and its timeout, so
        // housekeeping is left to an explicit `git gc`.
        command
            .args(["-c", "core.hooksPath=/dev/null"])
            .args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
            .arg(subcommand);
        Call {
            git: self,
            subcommand: subcommand.to_owned(),
            command,
            stdin: None,
            limits: None,
            stdout_limit: None,
        }
    }
}

impl Call<'_> {
    /// Appends one argument.
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    /// Appends several arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Sets one more environment variable for this call only.
    pub(crate) fn env(mut self, name: &str, value: impl Into<OsString>) -> Self {
        self.command.env(name, value.into());
        self
    }

    /// Feeds `input` to git's standard input (otherwise it reads from `/dev/null`).
    pub(crate) fn stdin(mut self, input: Vec<u8>) -> Self {
        self.stdin = Some(input);
        self
    }

    /// Runs git under `limits` (see [`apply_limits`] for how and when they take effect).
    pub(crate) fn limits(mut self, limits: ResourceLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Keeps at most `max` bytes of standard output: the pipe is closed after them, which stops
    /// git (`SIGPIPE`) instead of letting it produce the rest.
    pub(crate) fn stdout_limit(mut self, max: usize) -> Self {
        self.stdout_limit = Some(max);
        self
    }

    /// Runs the call and returns its standard output, or [`GitError::Failed`] on a non-zero exit.
    pub(crate) fn run_ok(self) -> Result<Vec<u8>, GitError> {
        let subcommand = self.subcommand.clone();
        let output = self.run()?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(GitError::Failed {
                command: subcommand,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// Runs the call to completion or until the timeout, whatever its exit status.
    pub(crate) fn run(mut self) -> Result<Output, GitError> {
        let timeout = self.git.timeout;
        let deadline = Instant::now() + timeout;
        self.command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout can kill git's children too (and a
            // Ctrl-C meant for postern's terminal reaches postern, which decides).
            .process_group(0);
        let mut child = self.command.spawn().map_err(|source| GitError::Spawn {
            binary: self.git.binary.clone(),
            source,
        })?;
        if let Some(limits) = self.limits
            && let Err(source) = apply_limits(&child, limits)
        {
            // Running it unbounded is what the limits are there to prevent.
            kill(&mut child);
            return Err(GitError::io(
                format!("limiting the resources of git {}", self.subcommand),
                source,
            ));
        }

        // stdin is written and stdout/stderr are read on their own threads: git may fill one
        // pipe while postern is still writing the other, and a single thread would deadlock.
        let (sender, receiver) = mpsc::channel();
        let stdout_keep = match self.stdout_limit {
            Some(limit) => Keep::StopAfter(limit),
            None => Keep::All,
        };
        spawn_reader(
            child.stdout.take(),
            Stream::Stdout,
            stdout_keep,
            sender.clone(),
        );
        spawn_reader(
            child.stderr.take(),
            Stream::Stderr,
            Keep::Head(MAX_STDERR_BYTES),
            sender,
        );
        if let (Some(input), Some(mut pipe)) = (self.stdin.take(), child.stdin.take()) {
            // A git that exits without reading everything makes this write fail with EPIPE;
            // the exit status says what happened, so the write error itself is not interesting.
            thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }

        let timed_out = || GitError::Timeout {
            command: self.subcommand.clone(),
            timeout,
        };
        let status = match wait_until(&mut child, deadline) {
            Ok(Some(status)) => status,
            Ok(None) => {
                kill(&mut child);
                return Err(timed_out());
            }
            Err(source) => {
                kill(&mut child);
                return Err(GitError::io(
                    format!("waiting for git {}", self.subcommand),
                    source,
                ));
            }
        };

        let mut stdout: Option<(Vec<u8>, bool)> = None;
        let mut stderr: Option<(Vec<u8>, bool)> = None;
        // The pipes close when git exits, unless something it started still holds them.
        let mut pipes_deadline = Instant::now() + PIPE_GRACE;
        let mut killed_group = false;
        while stdout.is_none() || stderr.is_none() {
            let left = pipes_deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok((Stream::Stdout, bytes, truncated)) => stdout = Some((bytes, truncated)),
                Ok((Stream::Stderr, bytes, truncated)) => stderr = Some((bytes, truncated)),
                // Kill whatever still holds the pipes, give it a moment, then give up.
                Err(_) if !killed_group => {
                    killed_group = true;
                    kill_group(&child);
                    pipes_deadline = Instant::now() + PIPE_GRACE;
                }
                Err(_) => return Err(timed_out()),
            }
        }
        let (stdout, stdout_truncated) = stdout.unwrap_or_default();
        let (stderr, _) = stderr.unwrap_or_default();
        Ok(Output {
            status,
            stdout,
            stderr,
            stdout_truncated,
        })
    }
}

/// Which of git's output pipes a reader thread drained.
enum Stream {
    Stdout,
    Stderr,
}

/// How much of a pipe a reader keeps.
#[derive(Debug, Clone, Copy)]
enum Keep {
    /// Everything.
    All,
    /// The first bytes; the rest is read and dropped, so git runs to its end as usual.
    Head(usize),
    /// The first bytes; then the pipe is closed, so git stops on its next write.
    StopAfter(usize),
}

/// Drains `pipe` on a thread and sends what it keeps of it (see [`Keep`]) once it closes or is
/// closed, with whether anything was left out.
fn spawn_reader<R: Read + Send + 'static>(
    pipe: Option<R>,
    stream: Stream,
    keep: Keep,
    sender: mpsc::Sender<(Stream, Vec<u8>, bool)>,
) {
    let Some(mut pipe) = pipe else {
        let _ = sender.send((stream, Vec::new(), false));
        return;
    };
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let widen = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        // A read error ends the stream early; the exit status still tells the outcome.
        let truncated = match keep {
            Keep::All => {
                let _ = pipe.read_to_end(&mut bytes);
                false
            }
            Keep::Head(limit) => {
                let _ = (&mut pipe).take(widen(limit)).read_to_end(&mut bytes);
                let rest = std::io::copy(&mut pipe, &mut std::io::sink()).unwrap_or(0);
                rest > 0
            }
            Keep::StopAfter(limit) => {
                let _ = pipe
                    .take(widen(limit).saturating_add(1))
                    .read_to_end(&mut bytes);
                let over = bytes.len() > limit;
                bytes.truncate(limit);
                over
            }
        };
        // The receiver is gone only if the call already gave up (timeout).
        let _ = sender.send((stream, bytes, truncated));
    });
}

/// Lowers the resource limits of a just-started git (soft and hard, so it cannot raise them),
/// and disables core dumps, which `SIGXFSZ` would otherwise produce.
///
/// Done with `prlimit` from outside rather than `setrlimit` in `pre_exec`, because the latter
/// needs unsafe code, which this crate forbids. The process runs unlimited for the moment
/// between spawn and this call, which is harmless: `git am` does nothing heavy before reading
/// its input, and standard input is written only after this returns; a call without input
/// (`git diff`) is at most in its start-up (exec, reading its configuration), microseconds
/// after spawn. Processes git starts later inherit the limits.
#[cfg(target_os = "linux")]
fn apply_limits(child: &Child, limits: ResourceLimits) -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, prlimit};
    let pid = Some(rustix::process::Pid::from_child(child));
    let both = |value: u64| Rlimit {
        current: Some(value),
        maximum: Some(value),
    };
    prlimit(pid, Resource::Core, both(0))?;
    prlimit(pid, Resource::Fsize, both(limits.file_bytes))?;
    prlimit(pid, Resource::Data, both(limits.memory_bytes))?;
    Ok(())
}

/// Without `prlimit`, only the checks of the patch text and the timeout bound git.
#[cfg(not(target_os = "linux"))]
fn apply_limits(_child: &Child, _limits: ResourceLimits) -> std::io::Result<()> {
    Ok(())
}

/// Polls `child` until it exits or `deadline` passes (`Ok(None)`).
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// Kills a still-running git and everything in its process group, then reaps it.
fn kill(child: &mut Child) {
    // The group first, while the child (the group leader) is unreaped, so the group id cannot
    // have been reused by an unrelated process.
    kill_group(child);
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIGKILL to the process group git leads (see `process_group(0)` above).
fn kill_group(child: &Child) {
    let group = rustix::process::Pid::from_child(child);
    // ESRCH (nothing left in the group) is the usual, harmless outcome.
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
}
