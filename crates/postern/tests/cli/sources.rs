//! `postern serve` watching a real Dovecot over IMAP: mail arrives during IDLE, a drain killed
//! with SIGKILL and restarted loses and duplicates nothing (small mail, and large mail whose
//! bytes and attachments are files), two instances on one mailbox and one
//! PostgreSQL store never process a message twice, and a store that is unavailable gets nothing
//! acknowledged until it is back. Counted by issues against messages sent.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use postern_testkit::imap::ImapClient;
use postern_testkit::mailserver::{MailServer, USER};

use crate::support::{Sandbox, str_field};

/// Every wait in these tests ends by this bound.
pub(crate) const BOUND: Duration = Duration::from_secs(180);

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A configuration watching `folder` on `server`, plus `extra` YAML sections.
pub(crate) fn config(server: &MailServer, folder: &str, extra: &str) -> String {
    config_listening(server, folder, extra, free_port())
}

/// [`config`] with the LMTP listener on `lmtp_port`.
pub(crate) fn config_listening(
    server: &MailServer,
    folder: &str,
    extra: &str,
    lmtp_port: u16,
) -> String {
    format!(
        "incoming_email:\n  enabled: true\n  address: \"incoming+%{{key}}@example.test\"\n  \
         user: {USER}\n  password: \"{}\"\n  host: 127.0.0.1\n  port: {}\n  ssl: false\n  \
         start_tls: false\n  allow_plaintext: true\n  mailbox: \"{folder}\"\n  idle_timeout: 60\n  \
         delete_after_delivery: true\n\
         instance:\n  host: example.test\n\
         listener:\n  listen: \"127.0.0.1:{}\"\n\
         web:\n  listen: \"127.0.0.1:{}\"\n{extra}",
        server.password(),
        server.imap_port(),
        lmtp_port,
        free_port(),
    )
}

/// User jake, project land/ooo; returns the new-issue address.
pub(crate) fn project(sandbox: &Sandbox) -> String {
    sandbox.admin_json(&["user", "add", "jake", "--email", "jake@example.com"]);
    sandbox.admin_json(&["project", "add", "land/ooo"]);
    sandbox.admin_json(&["project", "member", "add", "land/ooo", "jake", "developer"]);
    let shown = sandbox.admin_json(&["project", "show", "land/ooo", "--user", "jake"]);
    str_field(&shown["addresses"], "new_issue").to_owned()
}

pub(crate) fn new_issue(to: &str, title: &str) -> Vec<u8> {
    format!(
        "From: jake@example.com\r\nTo: {to}\r\nSubject: {title}\r\nMessage-ID: <{title}@test>\r\n\r\nBody of {title}.\r\n"
    )
    .into_bytes()
}

pub(crate) async fn imap(server: &MailServer) -> ImapClient {
    let mut client = ImapClient::connect(server.imap_port())
        .await
        .expect("connect");
    client.login(USER, server.password()).await.expect("login");
    client
}

/// Creates `folder` and appends `count` new-issue messages titled `<folder>-<n>`.
pub(crate) async fn preload(
    server: &MailServer,
    folder: &str,
    to: &str,
    count: usize,
) -> Vec<String> {
    preload_messages(server, folder, count, |title| new_issue(to, title)).await
}

/// Appends `count` messages made by `message` from their titles (`<folder>-<n>`).
pub(crate) async fn preload_messages(
    server: &MailServer,
    folder: &str,
    count: usize,
    message: impl Fn(&str) -> Vec<u8>,
) -> Vec<String> {
    let mut client = imap(server).await;
    if let Err(e) = client.command(&format!("CREATE \"{folder}\"")).await {
        assert!(e.to_string().contains("ALREADYEXISTS"), "CREATE: {e}");
    }
    let mut titles = Vec::new();
    for n in 0..count {
        let title = format!("{folder}-{n}");
        client
            .append(folder, "", &message(&title))
            .await
            .expect("APPEND");
        titles.push(title);
    }
    client.logout().await.ok();
    titles
}

/// Bytes of the attachment of [`new_issue_with_attachment`].
const ATTACHMENT_BYTES: usize = 150 * 1024;

/// A new-issue mail of about 205 KB: large enough to be kept as a file beside the database,
/// with an attachment of [`ATTACHMENT_BYTES`] that processing writes as an upload.
fn new_issue_with_attachment(to: &str, title: &str) -> Vec<u8> {
    use base64::Engine as _;
    let content: Vec<u8> = (0..ATTACHMENT_BYTES)
        .map(|i| (i.wrapping_mul(31) ^ title.len()) as u8)
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&content);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    format!(
        "From: jake@example.com\r\nTo: {to}\r\nSubject: {title}\r\nMessage-ID: <{title}@test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nLog of {title} attached.\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"{title}.log\"\r\n\
         Content-Disposition: attachment; filename=\"{title}.log\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

/// Messages not flagged `\Deleted` in `folder`, and how many of them are `\Seen`.
pub(crate) async fn folder_state(server: &MailServer, folder: &str) -> (usize, usize) {
    let mut client = imap(server).await;
    client.select(folder).await.expect("SELECT");
    let left = client.uid_search("UNDELETED").await.expect("search").len();
    let seen = client
        .uid_search("UNDELETED SEEN")
        .await
        .expect("search")
        .len();
    client.logout().await.ok();
    (left, seen)
}

/// Starts `postern serve` in `sandbox`, its log appended to `serve.log` there (see
/// [`serve_log`]).
pub(crate) fn serve(sandbox: &Sandbox) -> Child {
    serve_with(sandbox, &["serve"])
}

/// Starts postern with `args` (`serve …`) in `sandbox`, stderr appended to `serve.log`.
pub(crate) fn serve_with(sandbox: &Sandbox, args: &[&str]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(sandbox.path().join("serve.log"))
        .expect("log file");
    sandbox
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("postern serve starts")
}

/// Waits (at most [`BOUND`]) until serve has logged a line containing `needle`.
pub(crate) fn wait_for_log(sandbox: &Sandbox, needle: &str) {
    wait_for_log_lines(sandbox, needle, 1);
}

/// Waits (at most [`BOUND`]) until serve has logged `count` lines containing `needle`.
pub(crate) fn wait_for_log_lines(sandbox: &Sandbox, needle: &str, count: usize) {
    let deadline = Instant::now() + BOUND;
    let path = sandbox.path().join("serve.log");
    while !std::fs::read_to_string(&path).is_ok_and(|log| log.matches(needle).count() >= count) {
        assert!(
            Instant::now() < deadline,
            "serve never logged {needle:?} {count} times within {BOUND:?}; serve.log ends:\n{}",
            serve_log(sandbox)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `log:` settings under which serve's IMAP watcher logs when it starts and stops waiting in
/// IDLE (see [`waits_in_idle`]).
const IDLE_LOGGED: &str = "log:\n  level: \"info,postern_inbox=debug\"\n";

/// Whether serve's IMAP watcher waits in IDLE now, holding no message: its last line about
/// its connection is "waiting in IDLE" (needs [`IDLE_LOGGED`]).
fn waits_in_idle(sandbox: &Sandbox) -> bool {
    let log = std::fs::read_to_string(sandbox.path().join("serve.log")).unwrap_or_default();
    log.lines()
        .rev()
        .find_map(|line| {
            if line.contains("waiting in IDLE") {
                Some(true)
            } else if [
                "leaving IDLE",
                "IMAP watcher failed",
                "IMAP watcher connected",
            ]
            .iter()
            .any(|active| line.contains(active))
            {
                Some(false)
            } else {
                None
            }
        })
        .unwrap_or(false)
}

/// The messages `sandbox`'s store holds that are not processed to their end (received,
/// claimed or waiting for a retry), as `id state`.
fn left_to_process(sandbox: &Sandbox) -> Vec<String> {
    let listed = sandbox.admin_json(&["message", "list", "--limit", "10000"]);
    listed
        .as_array()
        .expect("a list")
        .iter()
        .filter(|message| {
            ["received", "processing", "failed_temporary"].contains(&str_field(message, "state"))
        })
        .map(|message| format!("{} {}", message["id"], str_field(message, "state")))
        .collect()
}

/// The last lines serve logged, for a failure message.
pub(crate) fn serve_log(sandbox: &Sandbox) -> String {
    let log = std::fs::read_to_string(sandbox.path().join("serve.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

pub(crate) fn stop(mut child: Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "serve did not stop within 15 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue titles, counted: via `postern admin issue list`.
pub(crate) fn issue_titles(sandbox: &Sandbox) -> HashMap<String, usize> {
    let listed = sandbox.admin_json(&["issue", "list", "land/ooo"]);
    let mut titles = HashMap::new();
    for issue in listed.as_array().expect("a list") {
        *titles
            .entry(str_field(issue, "title").to_owned())
            .or_default() += 1;
    }
    titles
}

/// Waits until `count` issues exist (or the bound passes); returns the counted titles.
pub(crate) fn wait_for_issues(sandbox: &Sandbox, count: usize) -> HashMap<String, usize> {
    let deadline = Instant::now() + BOUND;
    loop {
        let titles = issue_titles(sandbox);
        if titles.values().sum::<usize>() >= count || Instant::now() > deadline {
            return titles;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn assert_exactly_once(titles: &HashMap<String, usize>, sent: &[String]) {
    let lost: Vec<&String> = sent.iter().filter(|t| !titles.contains_key(*t)).collect();
    let duplicated: Vec<(&String, &usize)> = titles.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        lost.is_empty(),
        "{} lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
    assert_eq!(titles.len(), sent.len());
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn mail_appended_during_idle_becomes_an_issue_and_leaves_the_folder() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let rt = runtime();
    // The watcher says at debug level when the server has taken its IDLE.
    let sandbox = Sandbox::with_config(&config(
        &server,
        "idle",
        "log:\n  level: \"info,postern_inbox=debug\"\n",
    ));
    let to = project(&sandbox);
    rt.block_on(preload(&server, "idle", &to, 0));
    let child = serve(&sandbox);
    // Once the watcher waits in IDLE on the empty folder, new mail must wake it.
    wait_for_log(&sandbox, "waiting in IDLE");
    let sent = rt.block_on(async {
        let mut client = imap(&server).await;
        client
            .append("idle", "", &new_issue(&to, "during-idle"))
            .await
            .expect("APPEND");
        vec!["during-idle".to_owned()]
    });
    let titles = wait_for_issues(&sandbox, 1);
    assert_exactly_once(&titles, &sent);
    let deadline = Instant::now() + BOUND;
    while rt.block_on(folder_state(&server, "idle")).0 != 0 {
        assert!(Instant::now() < deadline, "the message was never deleted");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);
}

/// Kills `child` with SIGKILL once at least `at_least` of the `total` messages are issues, and
/// checks that the drain was still under way.
fn kill_mid_drain(sandbox: &Sandbox, mut child: Child, at_least: usize, total: usize) {
    // Each look runs `postern admin`, a process of its own, so looks are spaced out rather than
    // competing with the drain.
    let deadline = Instant::now() + BOUND;
    loop {
        let done: usize = issue_titles(sandbox).values().sum();
        if done >= at_least {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the drain never started ({done} issues after {BOUND:?}); serve.log ends:\n{}",
            serve_log(sandbox)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let at_kill: usize = issue_titles(sandbox).values().sum();
    eprintln!("{at_kill} of {total} issues when serve was killed");
    assert!(
        at_kill < total,
        "killed too late to prove anything ({at_kill})"
    );
}

#[test]
fn sigkill_mid_drain_and_restart_lose_and_duplicate_nothing() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let rt = runtime();
    let sandbox = Sandbox::with_config(&config(&server, "drain", ""));
    let to = project(&sandbox);
    let sent = rt.block_on(preload(&server, "drain", &to, 2000));
    kill_mid_drain(&sandbox, serve(&sandbox), 200, 2000);

    let child = serve(&sandbox);
    let titles = wait_for_issues(&sandbox, 2000);
    assert_exactly_once(&titles, &sent);
    let deadline = Instant::now() + BOUND;
    while rt.block_on(folder_state(&server, "drain")).0 != 0 {
        assert!(
            Instant::now() < deadline,
            "messages were left in the folder"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);
}

/// Large mail takes the other storage path: its raw bytes and its attachment are files written
/// with the transaction that names them. A `kill -9` mid-drain loses and duplicates no message,
/// and every issue's attachment is on disk, whole.
#[test]
fn sigkill_mid_drain_of_large_mail_loses_no_message_and_no_attachment() {
    // Enough that the drain lasts seconds, so the kill after the tenth issue comes mid-drain
    // even on a fast machine (120 were drained between two looks once).
    const COUNT: usize = 400;
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let rt = runtime();
    let sandbox = Sandbox::with_config(&config(&server, "large", ""));
    let to = project(&sandbox);
    let sent = rt.block_on(preload_messages(&server, "large", COUNT, |title| {
        new_issue_with_attachment(&to, title)
    }));
    kill_mid_drain(&sandbox, serve(&sandbox), 10, COUNT);

    let child = serve(&sandbox);
    let titles = wait_for_issues(&sandbox, COUNT);
    assert_exactly_once(&titles, &sent);
    let raw_files = std::fs::read_dir(sandbox.path().join("postern-data/postern.sqlite3-raw"))
        .expect("large messages are files beside the database")
        .count();
    assert!(
        raw_files >= COUNT,
        "{raw_files} raw message files for {COUNT} messages"
    );
    let issues = sandbox.admin_json(&["issue", "list", "land/ooo"]);
    for issue in issues.as_array().expect("a list") {
        let description = str_field(issue, "description");
        let link = description
            .split("(/uploads/")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("no upload link in {description:?}"));
        let file = sandbox.path().join("postern-data/uploads").join(link);
        let size = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .len();
        assert_eq!(size, ATTACHMENT_BYTES as u64, "{}", file.display());
    }
    stop(child);
}

#[test]
fn two_instances_on_one_mailbox_and_one_postgres_store_duplicate_nothing() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let rt = runtime();
    let Some(db) = rt.block_on(postern_testkit::TestDb::postgres()) else {
        return;
    };
    let store = format!("{IDLE_LOGGED}store:\n  url: \"{}\"\n", db.url);
    let first = Sandbox::with_config(&config(&server, "shared", &store));
    // Instances of one database share the key that seals its incoming-email tokens.
    let key = first.path().join("postern-data/secrets/token.key");
    let shared = format!("{store}  token_key_file: \"{}\"\n", key.display());
    let second = Sandbox::with_config(&config(&server, "shared", &shared));
    let to = project(&first);
    let sent = rt.block_on(preload(&server, "shared", &to, 300));
    let a = serve(&first);
    let b = serve(&second);
    let titles = wait_for_issues(&first, 300);
    // Settled, then counted again: with the folder empty, both watchers waiting in IDLE (so
    // neither holds a message it fetched) and every stored message processed, a late duplicate
    // has nowhere left to come from.
    let deadline = Instant::now() + BOUND;
    loop {
        let left = rt.block_on(folder_state(&server, "shared")).0;
        let idle = (waits_in_idle(&first), waits_in_idle(&second));
        let unprocessed = left_to_process(&first);
        if left == 0 && idle == (true, true) && unprocessed.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {left} in the folder, waiting in IDLE {idle:?}, unprocessed \
             {unprocessed:?}; serve.log ends:\n{}\n---\n{}",
            serve_log(&first),
            serve_log(&second)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let titles_after = issue_titles(&second);
    assert_exactly_once(&titles, &sent);
    assert_eq!(titles, titles_after);
    stop(a);
    stop(b);
}

#[test]
fn a_locked_store_gets_nothing_acknowledged_until_it_is_back() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let rt = runtime();
    let sandbox = Sandbox::with_config(&config(&server, "locked", IDLE_LOGGED));
    let to = project(&sandbox);
    rt.block_on(preload(&server, "locked", &to, 0));
    let child = serve(&sandbox);
    wait_for_log(&sandbox, "waiting in IDLE");
    // While serve runs, another program takes the database's write lock (as a long migration
    // or a backup tool would), and mail arrives.
    let database = sandbox.path().join("postern-data/postern.sqlite3");
    let lock = rt.block_on(hold_write_lock(&database));
    let sent = rt.block_on(preload(&server, "locked", &to, 5));
    // The watcher fetched the mail and offered it to the store twice, refused both times.
    wait_for_log_lines(&sandbox, "the store did not take the messages", 2);
    let (left, seen) = rt.block_on(folder_state(&server, "locked"));
    assert_eq!(
        (left, seen),
        (5, 0),
        "acknowledged while the store was unavailable"
    );
    rt.block_on(lock.release());
    let titles = wait_for_issues(&sandbox, 5);
    assert_exactly_once(&titles, &sent);
    stop(child);
}

struct WriteLock(sqlx::SqliteConnection);

async fn hold_write_lock(database: &Path) -> WriteLock {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display()))
        .await
        .expect("open the database");
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut conn)
        .await
        .expect("lock");
    WriteLock(conn)
}

impl WriteLock {
    async fn release(mut self) {
        use sqlx::Connection as _;
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut self.0)
            .await
            .expect("unlock");
        self.0.close().await.ok();
    }
}

/// The Gmail example of GitLab's documentation (`ssl: true` on port 993, `start_tls: false`,
/// IDLE every 60 s, deleted after delivery), pointed at a private Dovecot with a self-signed
/// certificate: implicit TLS verified against the given CA, no plaintext allowed.
#[test]
fn a_gmail_style_imaps_configuration_takes_mail_in_over_implicit_tls() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let rt = runtime();
    let ca = tempfile::NamedTempFile::new().expect("a CA file");
    std::fs::write(ca.path(), server.ca_pem()).expect("CA written");
    let config = format!(
        "incoming_email:\n  enabled: true\n  address: \"gitlab-incoming+%{{key}}@gmail.com\"\n  \
         user: {USER}\n  password: \"{}\"\n  host: localhost\n  port: {}\n  ssl: true\n  \
         start_tls: false\n  mailbox: \"gmail\"\n  idle_timeout: 60\n  tls_ca_file: \"{}\"\n\
         instance:\n  host: example.test\n\
         listener:\n  listen: \"127.0.0.1:{}\"\n\
         web:\n  listen: \"127.0.0.1:{}\"\n",
        server.password(),
        server.imaps_port(),
        ca.path().display(),
        free_port(),
        free_port(),
    );
    let sandbox = Sandbox::with_config(&config);
    let to = project(&sandbox);
    assert!(to.ends_with("@gmail.com"), "{to}");
    let sent = rt.block_on(preload(&server, "gmail", &to, 3));
    let child = serve(&sandbox);
    let titles = wait_for_issues(&sandbox, 3);
    assert_exactly_once(&titles, &sent);
    let deadline = Instant::now() + BOUND;
    while rt.block_on(folder_state(&server, "gmail")).0 != 0 {
        assert!(Instant::now() < deadline, "the messages were never deleted");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);
}
