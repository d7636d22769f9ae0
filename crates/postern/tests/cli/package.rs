//! Installed like real software (issue 21): `--version`, shell completions, man pages, backup
//! and restore, and the Debian package built, installed, used and purged.

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

/// Messages sent while the package is upgraded.
const UPGRADE_MESSAGES: usize = 20;
/// LMTP attempts per message: a restart takes well under a second; this allows a minute.
const DELIVERY_ATTEMPTS: usize = 300;

/// Purges the package when a failed assertion ends the test early (prerm stops the service).
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "postern"]).output();
    }
}

/// Runs a program, asserting exit 0; returns its standard output.
#[track_caller]
fn system(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} does not run: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of `Key=` in a unit file.
fn unit_value(unit: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map(str::to_owned)
}

/// The Debian package, as an administrator meets it: built, installed with dpkg, the packaged
/// configuration checked as the service user, the unit's command line run with the unit's user
/// and umask, a message delivered over LMTP, then purged without a process left behind.
#[test]
fn debian_package_installs_runs_and_purges() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::time::{Duration, Instant};

    let tools = ["dpkg-deb", "dpkg", "runuser", "objcopy", "strip"];
    if let Some(missing) = tools.iter().find(|tool| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
    }) {
        eprintln!("SKIPPED debian_package_installs_runs_and_purges: {missing} is missing");
        return;
    }
    if !system("id", &["-u"]).trim().eq("0") {
        eprintln!("SKIPPED debian_package_installs_runs_and_purges: dpkg -i needs root");
        return;
    }
    let out = tempfile::tempdir().expect("temporary directory");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // The test binary, not a release build: the package is the same, minutes faster.
    let build = |version: &str| {
        let deb = system(
            "sh",
            &[
                &root.join("scripts/package-deb.sh").display().to_string(),
                "--binary",
                env!("CARGO_BIN_EXE_postern"),
                "--version",
                version,
                "--compression",
                "none",
                "--out",
                &out.path().display().to_string(),
            ],
        );
        deb.trim().to_owned()
    };
    let deb = build("0.1.0");
    let deb = deb.as_str();
    // A clean machine: an earlier run's package (its data, its edited conffile) goes first.
    let _ = Command::new("dpkg").args(["--purge", "postern"]).output();
    let installed = Installed;
    system("dpkg", &["-i", deb]);

    // What postinst made: the user, the private data directory, the readable-by-postern config.
    let data = std::fs::metadata("/var/lib/postern").expect("/var/lib/postern");
    assert_eq!(data.permissions().mode() & 0o777, 0o700);
    let uid: u32 = system("id", &["-u", "postern"])
        .trim()
        .parse()
        .expect("uid");
    assert_eq!(data.uid(), uid);
    let conffiles = system(
        "dpkg-query",
        &["--showformat=${Conffiles}", "--show", "postern"],
    );
    assert!(
        conffiles.contains("/etc/postern/postern.yml"),
        "{conffiles}"
    );
    // man finds the pages; bash completes `postern se` to `serve`.
    for page in ["postern", "postern.yml", "postern-admin-backup"] {
        system("man", &["-w", page]);
    }
    let completed = system(
        "bash",
        &[
            "-c",
            ". /usr/share/bash-completion/completions/postern; COMP_WORDS=(postern se); COMP_CWORD=1; _postern postern se postern; printf '%s\\n' \"${COMPREPLY[@]}\"",
        ],
    );
    assert!(completed.lines().any(|word| word == "serve"), "{completed}");

    let config = "/etc/postern/postern.yml";
    system(
        "runuser",
        &[
            "-u",
            "postern",
            "--",
            "/usr/bin/postern",
            "check",
            "-c",
            config,
        ],
    );

    // The administrator's edit of the conffile: free ports (the defaults may be taken here).
    let port = crate::serve::free_port();
    let web = crate::serve::free_port();
    let yaml = std::fs::read_to_string(config).expect("config");
    let yaml = yaml
        .replace(
            "listen: \"127.0.0.1:2525\"",
            &format!("listen: \"127.0.0.1:{port}\""),
        )
        .replace(
            "listen: \"127.0.0.1:8080\"",
            &format!("listen: \"127.0.0.1:{web}\""),
        );
    std::fs::write(config, yaml).expect("config written");
    let admin = |args: &[&str]| {
        let mut all = vec![
            "-u",
            "postern",
            "--",
            "/usr/bin/postern",
            "admin",
            "-c",
            config,
            "--json",
        ];
        all.extend_from_slice(args);
        system("runuser", &all)
    };
    admin(&["user", "add", "jake", "--email", "jake@example.com"]);
    admin(&["project", "add", "land/ooo"]);
    admin(&["project", "member", "add", "land/ooo", "jake", "developer"]);
    let shown: serde_json::Value =
        serde_json::from_str(&admin(&["project", "show", "land/ooo", "--user", "jake"]))
            .expect("json");
    let address = shown["addresses"]["new_issue"]
        .as_str()
        .expect("address")
        .to_owned();

    // The unit's ExecStart, run the way systemd would: its user, its umask, its directory.
    let unit = std::fs::read_to_string("/lib/systemd/system/postern.service").expect("unit");
    let exec = unit_value(&unit, "ExecStart").expect("ExecStart");
    let user = unit_value(&unit, "User").expect("User");
    assert_eq!(user, "postern");
    assert!(
        exec.starts_with("/usr/bin/postern serve -c /etc/postern/postern.yml"),
        "{exec}"
    );
    // UMask= comes with the unit's sandboxing; until then, systemd's default for services.
    let umask = unit_value(&unit, "UMask").unwrap_or_else(|| "0022".to_owned());
    let directory = unit_value(&unit, "WorkingDirectory").unwrap_or_else(|| "/".to_owned());
    // setpriv execs (runuser would stay as a parent): the child is postern itself, as under
    // systemd, and SIGTERM reaches it.
    let start_unit = || {
        Command::new("setpriv")
            .args(["--reuid", &user, "--regid", &user, "--init-groups", "--"])
            .args([
                "sh",
                "-c",
                &format!("umask {umask} && cd {directory} && exec {exec}"),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the unit's command starts")
    };
    let mut child = start_unit();
    let message = format!(
        "From: jake@example.com\r\nTo: {address}\r\nSubject: Packaged\r\nMessage-ID: <pkg-1@x>\r\n\r\nHello.\r\n"
    );
    let replies = crate::serve::lmtp(port, &address, &message);
    assert!(
        replies.last().is_some_and(|r| r.starts_with("250")),
        "{replies:?}"
    );
    let issue: serde_json::Value =
        serde_json::from_str(&admin(&["issue", "show", "land/ooo", "1"])).expect("json");
    assert_eq!(issue["title"], "Packaged");

    // An upgrade while mail keeps coming: the sender is an MTA that retries until a 250.
    let deb = build("0.1.1");
    let sender = {
        let address = address.clone();
        std::thread::spawn(move || {
            for n in 0..UPGRADE_MESSAGES {
                let message = format!(
                    "From: jake@example.com\r\nTo: {address}\r\nSubject: During upgrade {n}\r\nMessage-ID: <pkg-up-{n}@x>\r\n\r\nHello.\r\n"
                );
                let delivered = (0..DELIVERY_ATTEMPTS).any(|_| {
                    let replies =
                        std::panic::catch_unwind(|| crate::serve::lmtp(port, &address, &message));
                    let ok = replies
                        .as_ref()
                        .is_ok_and(|r| r.last().is_some_and(|l| l.starts_with("250")));
                    if !ok {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    ok
                });
                assert!(delivered, "message {n} never accepted");
            }
        })
    };
    system("dpkg", &["-i", &deb]);
    // What postinst's `systemctl try-restart` does under systemd: SIGTERM (the message in hand
    // is finished), then the new binary.
    let status = crate::serve::stop(child);
    assert!(status.success(), "{status:?}");
    child = start_unit();
    assert!(sender.join().is_ok(), "the sender failed");
    let version = system(
        "dpkg-query",
        &["--showformat=${Version}", "--show", "postern"],
    );
    assert_eq!(version, "0.1.1");
    let issues: serde_json::Value =
        serde_json::from_str(&admin(&["issue", "list", "land/ooo"])).expect("json");
    let mut titles: Vec<String> = issues
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|issue| issue["title"].as_str().map(str::to_owned))
        .collect();
    titles.sort();
    let mut expected: Vec<String> = (0..UPGRADE_MESSAGES)
        .map(|n| format!("During upgrade {n}"))
        .chain(["Packaged".to_owned()])
        .collect();
    expected.sort();
    // Every message exactly once: none lost across the restart, none twice after a retry.
    assert_eq!(titles, expected);

    // Purge: prerm stops the service, postrm removes the data.
    std::mem::forget(installed);
    system("dpkg", &["--purge", "postern"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "postern still runs after dpkg --purge"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "SIGTERM from prerm ends postern cleanly: {status:?}"
    );
    let left = Command::new("pgrep")
        .args(["-u", "postern"])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert!(!Path::new("/usr/bin/postern").exists());
    assert!(!Path::new("/var/lib/postern").exists());
}
