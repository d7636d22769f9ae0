//! Installed like real software: `--version`, shell completions, man pages, backup
//! and restore (the Debian package: `deb`).

use std::path::Path;
use std::process::Command;

use crate::support::Sandbox;

#[test]
fn version_names_commit_and_features() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["--version"]);
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&concat!("postern ", env!("CARGO_PKG_VERSION")))
    );
    let commit = lines
        .iter()
        .find_map(|line| line.strip_prefix("commit: "))
        .unwrap_or_else(|| panic!("no commit line:\n{}", run.stdout));
    assert!(
        commit == "unknown" || commit.chars().take(12).all(|c| c.is_ascii_hexdigit()),
        "commit {commit:?}"
    );
    assert!(
        lines.iter().any(|line| line.starts_with("features: ")),
        "no features line:\n{}",
        run.stdout
    );
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let sandbox = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = sandbox.run(&["completions", shell]);
        run.expect_code(0);
        for word in ["serve", "check", "admin", "receive"] {
            assert!(run.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    // The bash script is valid bash (the shell is on every test machine).
    let script = sandbox.run(&["completions", "bash"]).stdout;
    let path = sandbox.write("postern.bash", script.as_bytes());
    let status = Command::new("bash").arg("-n").arg(&path).status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "bash -n rejected the script"
    );
    // An unknown shell is a usage error naming the ones there are.
    let run = sandbox.run(&["completions", "tcsh"]);
    run.expect_code(2);
    assert!(run.stderr.contains("bash"), "{}", run.stderr);
}

#[test]
fn man_pages_for_every_command_and_the_configuration() {
    let sandbox = Sandbox::new();
    sandbox.run(&["manpages", "man"]).expect_code(0);
    let dir = sandbox.path().join("man");
    for page in [
        "postern.1",
        "postern-serve.1",
        "postern-check.1",
        "postern-admin.1",
        "postern-admin-user-add.1",
        "postern-completions.1",
        "postern-oauth-login.1",
        "postern.yml.5",
    ] {
        assert!(dir.join(page).is_file(), "no {page}");
    }
    // The hidden generator has no page of its own.
    assert!(!dir.join("postern-manpages.1").exists());
    let config = std::fs::read_to_string(dir.join("postern.yml.5")).unwrap_or_default();
    // Written from the example configuration: its keys and defaults are in the page.
    assert!(config.contains("max_message_bytes: 52428800"), "{config}");
    assert!(config.contains(".SS limits"), "{config}");
    render_cleanly(&dir.join("postern.yml.5"), "quarantine_after_failures");
    render_cleanly(&dir.join("postern.1"), "completions");
}

/// Renders a page with man(1), when it is installed, and asserts no groff warning and the
/// `expected` text.
fn render_cleanly(page: &Path, expected: &str) {
    let Ok(output) = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
    else {
        eprintln!("man is not installed: {} not rendered", page.display());
        return;
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}: {stderr}", page.display());
    assert!(stderr.trim().is_empty(), "{}: {stderr}", page.display());
    assert!(stdout.contains(expected), "{}:\n{stdout}", page.display());
}

/// The projects' paths, from `admin project list --json`.
fn project_paths(sandbox: &Sandbox) -> Vec<String> {
    let listed = sandbox.admin_json(&["project", "list"]);
    let mut paths: Vec<String> = listed
        .as_array()
        .map(|projects| {
            projects
                .iter()
                .filter_map(|project| project["full_path"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

#[test]
fn backup_while_serving_and_restore_when_stopped() {
    use std::os::unix::fs::PermissionsExt as _;

    let port = crate::serve::free_port();
    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{port}\"\nweb:\n  listen: \"127.0.0.1:0\"\n"
    ));
    sandbox.admin_json(&["project", "add", "land/one"]);
    let child = crate::serve::start(&sandbox);
    // The server has the database open (its listener answers) while the backup is taken.
    drop(crate::serve::connect(port));
    let run = sandbox.run(&["admin", "backup", "one.sqlite3"]);
    run.expect_code(0);
    let backup = sandbox.path().join("one.sqlite3");
    let mode = std::fs::metadata(&backup).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "the backup holds mail: private");
    // No silent overwrite of a backup.
    let refused = sandbox.run(&["admin", "backup", "one.sqlite3"]);
    assert!(
        refused.one_line_error(1).contains("--force"),
        "{}",
        refused.stderr
    );
    // Nor of the database under a running server.
    let refused = sandbox.run(&["admin", "restore", "one.sqlite3", "--force"]);
    assert!(
        refused.one_line_error(1).contains("in use"),
        "{}",
        refused.stderr
    );
    sandbox.admin_json(&["project", "add", "land/two"]);
    let status = crate::serve::stop(child);
    assert!(status.success(), "{status:?}");
    assert_eq!(project_paths(&sandbox), ["land/one", "land/two"]);

    let refused = sandbox.run(&["admin", "restore", "one.sqlite3"]);
    assert!(
        refused.one_line_error(1).contains("--force"),
        "{}",
        refused.stderr
    );
    sandbox
        .run(&["admin", "restore", "one.sqlite3", "--force"])
        .expect_code(0);
    // Back to the backup's state, and the store works on (migrations, writes).
    assert_eq!(project_paths(&sandbox), ["land/one"]);
    sandbox.admin_json(&["project", "add", "land/three"]);
    assert_eq!(project_paths(&sandbox), ["land/one", "land/three"]);

    sandbox.write("not-a-db", b"hello");
    let refused = sandbox.run(&["admin", "restore", "not-a-db", "--force"]);
    assert!(
        refused.one_line_error(1).contains("not a SQLite database"),
        "{}",
        refused.stderr
    );
}

#[test]
fn postgres_backup_names_pg_dump_without_the_password() {
    let sandbox =
        Sandbox::with_config("store:\n  url: \"postgres://postern:hunter2@db.example/postern\"\n");
    let run = sandbox.run(&["admin", "backup", "x.dump"]);
    let line = run.one_line_error(1);
    assert!(
        line.contains(
            "pg_dump --format=custom --file='x.dump' 'postgres://postern@db.example/postern'"
        ),
        "{line}"
    );
    assert!(!run.all_output().contains("hunter2"));
    let run = sandbox.run(&["admin", "restore", "x.dump"]);
    assert!(
        run.one_line_error(1).contains("pg_restore"),
        "{}",
        run.stderr
    );
}
