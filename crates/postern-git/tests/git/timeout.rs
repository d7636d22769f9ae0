//! A git that hangs is killed after the configured timeout, together with its children.

use std::path::Path;
use std::time::{Duration, Instant};

use postern_git::{GitError, Repositories};

use crate::common::write_script;

#[test]
fn hung_git_is_killed_by_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sleep.pid");
    let script = dir.path().join("fake-git");
    // Stands in for a git that never finishes: a child that sleeps, and a parent waiting on it.
    write_script(
        &script,
        &format!(
            "#!/bin/sh\nsleep 30 &\necho $! > '{}'\nwait\n",
            pid_file.display()
        ),
    );
    let repositories = Repositories::new(dir.path().join("repositories"))
        .with_git_binary(&script)
        .with_timeout(Duration::from_millis(300));

    let started = Instant::now();
    let error = repositories.repository(1).unwrap_err();

    assert!(
        matches!(error, GitError::Timeout { ref command, .. } if command == "init"),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(gone(pid.trim()), "the sleeping child {pid} survived");
    // The half-made repository was not moved into place.
    assert!(!dir.path().join("repositories/1.git").exists());
}

/// Whether process `pid` has ended (it may linger briefly as a zombie until init reaps it).
fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match std::fs::read_to_string(Path::new("/proc").join(pid).join("stat")) {
            Err(_) => return true,
            Ok(stat) if stat.contains(") Z ") => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}
