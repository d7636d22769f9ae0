//! The reaper: how a server started for a test binary is stopped when the test process ends,
//! however it ends (normal exit, panic, Ctrl-C, SIGKILL).
//!
//! A tiny `sh` process in its own process group reads a pipe from the test process. The write
//! end lives as long as the test process; when the process ends, the kernel closes it, `cat`
//! sees end-of-file, and the reaper runs its stop command. No polling, no `atexit`, no unsafe
//! code. std creates pipes close-on-exec, so no other child (not the servers either) inherits
//! the write end and keeps the reaper waiting.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::process::{ChildStdin, Command, Stdio};

/// Starts a reaper that runs the shell command `stop` (with `env` set) once this process has
/// ended. Keep the returned pipe alive for as long as the server should run.
pub(crate) fn spawn(stop: &str, env: &[(&str, &std::ffi::OsStr)]) -> Result<ChildStdin, String> {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("cat >/dev/null; {stop}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group: a Ctrl-C aimed at `cargo test` must not kill the reaper first.
        .process_group(0);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("spawning the reaper: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("reaper has no stdin")?;
    // Nothing is ever written; flush only proves the pipe is open.
    stdin.flush().map_err(|e| format!("reaper pipe: {e}"))?;
    Ok(stdin)
}

/// A stop command for a server that wrote its pid to `$<dir_var>/<pid_file>`: ask it to end,
/// wait (at most 5 s) until it has, then remove its directory.
pub(crate) fn kill_then_remove(dir_var: &str, pid_file: &str) -> String {
    format!(
        "pid=$(cat \"${dir_var}/{pid_file}\" 2>/dev/null); \
         if [ -n \"$pid\" ]; then kill \"$pid\" 2>/dev/null; i=0; \
         while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; fi; \
         rm -rf \"${dir_var}\""
    )
}
