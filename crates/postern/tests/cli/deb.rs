//! The Debian package, as an administrator meets it: built with
//! `scripts/package-deb.sh`, installed with dpkg, `man` and Tab completion working, the
//! packaged configuration checked as the service user, the unit's command line run with the
//! unit's user and umask, mail delivered over LMTP and drained from a real Dovecot, an upgrade to
//! a higher version in the middle of that drain, every message processed exactly once, then
//! purged without a process left behind.
//!
//! It needs root (dpkg -i) and skips with a message without it or without dpkg. systemd does
//! not run here: what postinst's `systemctl try-restart` would do (SIGTERM, then the new
//! binary) is done by the test, with the unit's own `ExecStart`, `User` and `UMask`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use postern_testkit::mailserver::{MailServer, USER};

use crate::sources::{BOUND, folder_state, runtime};

/// Messages in the mailbox when the service starts: the drain the upgrade lands in.
const DRAINED: usize = 1500;
/// The upgrade starts once this many of them are issues (the drain is under way).
const UPGRADE_AFTER: usize = 10;
/// Messages sent over LMTP while the package is upgraded.
const UPGRADE_MESSAGES: usize = 20;
/// LMTP attempts per message: a restart takes well under a second; this allows a minute.
const DELIVERY_ATTEMPTS: usize = 300;
/// The packaged configuration (a conffile).
const CONFIG: &str = "/etc/postern/postern.yml";

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

/// `postern admin -c CONFIG --json ARGS` as the service user.
#[track_caller]
fn admin(args: &[&str]) -> serde_json::Value {
    let mut all = vec![
        "-u",
        "postern",
        "--",
        "/usr/bin/postern",
        "admin",
        "-c",
        CONFIG,
        "--json",
    ];
    all.extend_from_slice(args);
    serde_json::from_str(&system("runuser", &all)).expect("admin prints JSON")
}

/// Issues of land/ooo by title, counted.
fn issue_titles() -> HashMap<String, usize> {
    let mut titles = HashMap::new();
    for issue in admin(&["issue", "list", "land/ooo"])
        .as_array()
        .expect("a list")
    {
        let title = issue["title"].as_str().expect("a title").to_owned();
        *titles.entry(title).or_default() += 1;
    }
    titles
}

/// How many of `titles` start with `prefix`.
fn count_prefixed(titles: &HashMap<String, usize>, prefix: &str) -> usize {
    titles
        .iter()
        .filter(|(title, _)| title.starts_with(prefix))
        .map(|(_, n)| n)
        .sum()
}

/// The value of `Key=` in a unit file.
fn unit_value(unit: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map(str::to_owned)
}

/// Builds the package of the test binary (not a release build: the package is the same,
/// minutes faster) with `POSTERN_DEB_VERSION`; returns the .deb's path.
fn build_package(out: &Path, version: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("sh")
        .arg(root.join("scripts/package-deb.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_postern")])
        .args(["--compression", "none", "--out"])
        .arg(out)
        .env("POSTERN_DEB_VERSION", version)
        .output()
        .expect("package-deb.sh runs");
    assert!(
        output.status.success(),
        "package-deb.sh: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let deb = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        deb.ends_with(&format!("postern_{version}_{}.deb", arch())),
        "{deb}"
    );
    deb
}

fn arch() -> String {
    system("dpkg", &["--print-architecture"]).trim().to_owned()
}

/// What a unit file says about starting postern.
struct Unit {
    exec: String,
    user: String,
    umask: String,
    directory: String,
}

impl Unit {
    fn read(path: &str) -> Unit {
        let unit = std::fs::read_to_string(path).expect("unit");
        let exec = unit_value(&unit, "ExecStart").expect("ExecStart");
        Unit {
            exec,
            user: unit_value(&unit, "User").expect("User"),
            umask: unit_value(&unit, "UMask").expect("UMask"),
            directory: unit_value(&unit, "WorkingDirectory").expect("WorkingDirectory"),
        }
    }

    /// Runs `ExecStart` the way systemd would: the unit's user, umask and directory. setpriv
    /// execs (runuser would stay as a parent): the child is postern itself and SIGTERM reaches it.
    fn start(&self) -> Child {
        Command::new("setpriv")
            .args([
                "--reuid",
                &self.user,
                "--regid",
                &self.user,
                "--init-groups",
            ])
            .args(["--", "sh", "-c"])
            .arg(format!(
                "umask {} && cd {} && exec {}",
                self.umask, self.directory, self.exec
            ))
            // As an `Environment=` line of a drop-in would: sender authentication would ask
            // this machine's DNS about the test's domains, and tests send nothing off loopback.
            .env("POSTERN_SENDER_AUTHENTICATION", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the unit's command starts")
    }
}

/// What postinst made: the user, the private data directory, the conffile; man finds the pages
/// and bash completes `postern se` to `serve` and `postern admin ba` to `backup`.
fn assert_installed_like_a_package() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    let data = std::fs::metadata("/var/lib/postern").expect("/var/lib/postern");
    assert_eq!(data.permissions().mode() & 0o777, 0o700);
    let uid: u32 = system("id", &["-u", "postern"])
        .trim()
        .parse()
        .expect("uid");
    assert_eq!(data.uid(), uid);
    let config = std::fs::metadata(CONFIG).expect("the configuration");
    assert_eq!(config.permissions().mode() & 0o777, 0o640);
    let conffiles = system(
        "dpkg-query",
        &["--showformat=${Conffiles}", "--show", "postern"],
    );
    assert!(conffiles.contains(CONFIG), "{conffiles}");
    for page in ["postern", "postern.yml", "postern-admin-backup"] {
        system("man", &["-w", page]);
    }
    // The pages render: the configuration's from the example, the command's from clap.
    let rendered = |page: &str| {
        let output = Command::new("man")
            .arg(page)
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .expect("man runs");
        assert!(output.status.success(), "man {page}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(rendered("postern.yml").contains("max_message_bytes"));
    assert!(rendered("postern").contains("completions"));
    for (line, word) in [("postern se", "serve"), ("postern admin ba", "backup")] {
        let words: Vec<&str> = line.split(' ').collect();
        let script = format!(
            ". /usr/share/bash-completion/completions/postern; COMP_WORDS=({line}); \
             COMP_CWORD={}; _postern postern {} {}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let completed = system("bash", &["-c", &script]);
        assert!(
            completed.lines().any(|w| w == word),
            "{line}<Tab>: {completed}"
        );
    }
}

/// The administrator's edit of the conffile: free ports (the defaults may be taken here) and the
/// mailbox `server` serves, folder `folder`.
fn configure(server: &MailServer, folder: &str) -> u16 {
    let port = crate::serve::free_port();
    let web = crate::serve::free_port();
    let yaml = std::fs::read_to_string(CONFIG).expect("config");
    let mut yaml = yaml
        .replace(
            "listen: \"127.0.0.1:2525\"",
            &format!("listen: \"127.0.0.1:{port}\""),
        )
        .replace(
            "listen: \"127.0.0.1:8080\"",
            &format!("listen: \"127.0.0.1:{web}\""),
        );
    yaml.push_str(&format!(
        "incoming_email:\n  enabled: true\n  address: \"incoming+%{{key}}@example.test\"\n  \
         user: {USER}\n  password: \"{}\"\n  host: 127.0.0.1\n  port: {}\n  ssl: false\n  \
         start_tls: false\n  allow_plaintext: true\n  mailbox: \"{folder}\"\n  \
         delete_after_delivery: true\n",
        server.password(),
        server.imap_port(),
    ));
    std::fs::write(CONFIG, yaml).expect("config written");
    port
}

/// Delivers `count` new-issue messages titled `drain-<n>` into the INBOX of `server` the way a
/// local delivery agent does (a file in `tmp/`, renamed into `new/`): a thousand APPENDs would
/// take most of a minute. Returns the titles.
fn deliver_to_maildir(server: &MailServer, to: &str, count: usize) -> Vec<String> {
    let maildir = server.maildir();
    (0..count)
        .map(|n| {
            let title = format!("drain-{n}");
            let message = format!(
                "From: jake@example.com\r\nTo: {to}\r\nSubject: {title}\r\nMessage-ID: <{title}@test>\r\n\r\nBody of {title}.\r\n"
            );
            let name = format!("{}.M{n}P{}.postern-test", 1_700_000_000 + n, std::process::id());
            let tmp = maildir.join("tmp").join(&name);
            std::fs::write(&tmp, message).expect("tmp/ written");
            std::fs::rename(&tmp, maildir.join("new").join(&name)).expect("moved into new/");
            title
        })
        .collect()
}

/// Sends `UPGRADE_MESSAGES` over LMTP from another thread, each retried until a 250 as an MTA
/// would (the listener is down for a moment during the restart).
fn send_during_upgrade(port: u16, address: String) -> std::thread::JoinHandle<()> {
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
}

/// Waits (at most [`BOUND`]) until `wanted` says yes to the issues; returns them.
fn wait_for_issues(wanted: impl Fn(&HashMap<String, usize>) -> bool) -> HashMap<String, usize> {
    let deadline = Instant::now() + BOUND;
    loop {
        let titles = issue_titles();
        if wanted(&titles) || Instant::now() > deadline {
            return titles;
        }
        // Each look is a process of its own: spaced out, not competing with the drain.
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn debian_package_installs_upgrades_mid_drain_and_purges() {
    let tools = [
        "dpkg-deb", "dpkg", "runuser", "setpriv", "objcopy", "strip", "man",
    ];
    if let Some(missing) = tools.iter().find(|tool| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
    }) {
        eprintln!(
            "SKIPPED debian_package_installs_upgrades_mid_drain_and_purges: {missing} is missing"
        );
        return;
    }
    if !system("id", &["-u"]).trim().eq("0") {
        eprintln!(
            "SKIPPED debian_package_installs_upgrades_mid_drain_and_purges: dpkg -i needs root"
        );
        return;
    }
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let rt = runtime();
    let out = tempfile::tempdir().expect("temporary directory");
    // Both packages first: the upgrade must land in the drain, not after a package build.
    let first = build_package(out.path(), "0.1.0");
    let upgrade = build_package(out.path(), "0.1.1");
    // A clean machine: an earlier run's package (its data, its edited conffile) goes first.
    let _ = Command::new("dpkg").args(["--purge", "postern"]).output();
    let installed = Installed;
    system("dpkg", &["-i", &first]);
    assert_installed_like_a_package();
    system(
        "runuser",
        &[
            "-u",
            "postern",
            "--",
            "/usr/bin/postern",
            "check",
            "-c",
            CONFIG,
        ],
    );

    // Companion mode's unit and file: the packaged binary, a configuration postern accepts (run
    // as root here: the unit's user, git, belongs to GitLab and is not on this machine).
    let companion = Unit::read("/lib/systemd/system/postern-gitlab.service");
    assert!(
        companion.exec.starts_with(
            "/usr/bin/postern serve -c /etc/postern/postern-gitlab.yml --gitlab-config "
        ),
        "{}",
        companion.exec
    );
    system(
        "/usr/bin/postern",
        &["check", "-c", "/etc/postern/postern-gitlab.yml"],
    );

    let port = configure(&server, "INBOX");
    admin(&["user", "add", "jake", "--email", "jake@example.com"]);
    admin(&["project", "add", "land/ooo"]);
    admin(&["project", "member", "add", "land/ooo", "jake", "developer"]);
    let shown = admin(&["project", "show", "land/ooo", "--user", "jake"]);
    let address = shown["addresses"]["new_issue"]
        .as_str()
        .expect("address")
        .to_owned();
    // A first look at the INBOX makes Dovecot create its Maildir.
    assert_eq!(rt.block_on(folder_state(&server, "INBOX")).0, 0);
    let drained = deliver_to_maildir(&server, &address, DRAINED);

    let unit = Unit::read("/lib/systemd/system/postern.service");
    assert_eq!(unit.user, "postern");
    assert_eq!(unit.umask, "0077");
    assert!(
        unit.exec
            .starts_with("/usr/bin/postern serve -c /etc/postern/postern.yml"),
        "{}",
        unit.exec
    );
    let mut child = unit.start();
    let message = format!(
        "From: jake@example.com\r\nTo: {address}\r\nSubject: Packaged\r\nMessage-ID: <pkg-1@x>\r\n\r\nHello.\r\n"
    );
    let replies = crate::serve::lmtp(port, &address, &message);
    assert!(
        replies.last().is_some_and(|r| r.starts_with("250")),
        "{replies:?}"
    );

    // The upgrade, while the mailbox drains and an MTA keeps delivering.
    let titles = wait_for_issues(|t| count_prefixed(t, "drain-") >= UPGRADE_AFTER);
    assert!(
        count_prefixed(&titles, "drain-") >= UPGRADE_AFTER,
        "the drain never started"
    );
    let sender = send_during_upgrade(port, address.clone());
    system("dpkg", &["-i", &upgrade]);
    // postinst's `systemctl try-restart` under systemd: SIGTERM (the message in hand is
    // finished, the rest stays in the mailbox or the queue), then the new binary.
    let status = crate::serve::stop(child);
    assert!(status.success(), "{status:?}");
    let at_stop = count_prefixed(&issue_titles(), "drain-");
    eprintln!("{at_stop} of {DRAINED} drained when the old version stopped");
    assert!(
        at_stop < DRAINED,
        "the upgrade came after the drain, proving nothing"
    );
    child = unit.start();
    assert!(sender.join().is_ok(), "the sender failed");
    let version = system(
        "dpkg-query",
        &["--showformat=${Version}", "--show", "postern"],
    );
    assert_eq!(version, "0.1.1");

    // Every message exactly once: none lost across the restart, none twice after a retry.
    let mut expected: Vec<String> = (0..UPGRADE_MESSAGES)
        .map(|n| format!("During upgrade {n}"))
        .chain(["Packaged".to_owned()])
        .chain(drained)
        .collect();
    expected.sort();
    let titles = wait_for_issues(|t| t.values().sum::<usize>() >= expected.len());
    let duplicated: Vec<_> = titles.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "processed twice: {duplicated:?}");
    let mut got: Vec<String> = titles.into_keys().collect();
    got.sort();
    assert_eq!(got, expected);
    let deadline = Instant::now() + BOUND;
    while rt.block_on(folder_state(&server, "INBOX")).0 != 0 {
        assert!(
            Instant::now() < deadline,
            "messages were left in the mailbox"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

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
    assert!(!Path::new("/var/lib/postern-gitlab").exists());
}
