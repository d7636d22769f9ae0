//! Three `postern serve` instances on one PostgreSQL, one IMAP mailbox and LMTP deliveries,
//! while instances are killed with SIGKILL and restarted, stopped with SIGSTOP for longer than
//! a lease lives and resumed, and PostgreSQL itself is restarted (its connections cut): at the
//! end every message was processed exactly once (one issue each, one Service Desk thank-you in
//! the outbox each), nothing is left unprocessed and the mailbox is empty.
//!
//! The LMTP client behaves as an MTA does: a delivery that fails or times out is tried again,
//! on another instance; postern's duplicate detection (by Message-ID and body) must then
//! keep the message from being processed twice.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_testkit::mailserver::MailServer;
use postern_testkit::pg::PgServer;

use crate::sources::{
    BOUND, config_listening, folder_state, free_port, new_issue, preload_messages, project,
    runtime, serve_log, serve_with,
};
use crate::support::{Sandbox, str_field};

/// Messages waiting in the IMAP folder when the instances start.
const IMAP_MESSAGES: usize = 2000;
/// Service Desk messages delivered over LMTP during the chaos.
const LMTP_MESSAGES: usize = 1000;
/// Instances.
const NODES: usize = 3;
const FOLDER: &str = "chaos";

/// One instance: its sandbox, how it is started, LMTP port and process (none while killed).
struct Node {
    sandbox: Sandbox,
    args: Vec<String>,
    lmtp_port: u16,
    child: Mutex<Option<Child>>,
    /// Neither killed nor stopped: the LMTP client sends it mail.
    up: Arc<AtomicBool>,
}

/// Where the LMTP client may deliver: an instance's port, and whether it is up.
type Target = (u16, Arc<AtomicBool>);

impl Node {
    fn start(&self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        *self.child.lock().expect("the node lock") = Some(serve_with(&self.sandbox, &args));
        self.up.store(true, Ordering::SeqCst);
    }

    fn pid(&self) -> u32 {
        self.child
            .lock()
            .expect("the node lock")
            .as_ref()
            .expect("running")
            .id()
    }

    fn kill(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Some(mut child) = self.child.lock().expect("the node lock").take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().map(|mut c| c.take()).ok().flatten() {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the chaos does, at seconds after the instances started.
#[derive(Debug, Clone, Copy)]
enum Action {
    Kill(usize),
    Start(usize),
    Stop(usize),
    Resume(usize),
    RestartDatabase,
}

/// Kills, stops beyond the 15 s lease, and one restart of PostgreSQL, spread over 50 s.
const SCHEDULE: &[(u64, Action)] = &[
    (2, Action::Kill(0)),
    (3, Action::Start(0)),
    (5, Action::Stop(1)),
    (8, Action::Kill(2)),
    (9, Action::Start(2)),
    (12, Action::RestartDatabase),
    (16, Action::Kill(0)),
    (17, Action::Start(0)),
    (26, Action::Resume(1)),
    (28, Action::Stop(2)),
    (32, Action::Kill(1)),
    (33, Action::Start(1)),
    (48, Action::Resume(2)),
];

/// A PostgreSQL server of the test's own, which it may restart, and the URL of a database on
/// it; `None` when the tests are pointed at an external server (which must not be restarted).
fn private_database(rt: &tokio::runtime::Runtime) -> Option<(PgServer, String)> {
    if postern_testkit::pg::using_external_server() {
        return None;
    }
    let database = PgServer::start().expect("a private PostgreSQL");
    let url = rt.block_on(postern_testkit::create_database(&database.admin_url()));
    Some((database, url))
}

/// Carries out [`SCHEDULE`], timed from `started`.
fn run_schedule(nodes: &[Node], database: &PgServer, started: Instant) {
    for (at, action) in SCHEDULE {
        let due = started + Duration::from_secs(*at);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        eprintln!("chaos at {:?}: {action:?}", started.elapsed());
        match *action {
            Action::Kill(i) => nodes[i].kill(),
            Action::Start(i) => nodes[i].start(),
            Action::Stop(i) => {
                nodes[i].up.store(false, Ordering::SeqCst);
                nodes[i].signal("-STOP");
            }
            Action::Resume(i) => {
                nodes[i].signal("-CONT");
                nodes[i].up.store(true, Ordering::SeqCst);
            }
            Action::RestartDatabase => {
                // Every connection is cut; what the server acknowledged is kept (a crash of
                // this test server, which runs without synchronous commit, could lose it).
                database.stop_fast().expect("PostgreSQL stops");
                std::thread::sleep(Duration::from_secs(1));
                database.start_again().expect("PostgreSQL starts again");
            }
        }
    }
}

/// Waits (bounded) until `folder` is empty and no stored message is unfinished; the logs of
/// `nodes` on failure. A message that failed while the database was down waits out its
/// back-off first.
fn wait_settled(
    rt: &tokio::runtime::Runtime,
    server: &MailServer,
    pool: &sqlx::PgPool,
    nodes: &[Node],
) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = rt.block_on(folder_state(server, FOLDER)).0;
        let unfinished: i64 = rt
            .block_on(
                sqlx::query_scalar(
                    "SELECT count(*) FROM inbound_messages
                     WHERE state IN ('received', 'processing', 'failed_temporary')",
                )
                .fetch_one(pool),
            )
            .expect("count");
        if left == 0 && unfinished == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {left} in the folder, {unfinished} unfinished; logs end:\n{}",
            nodes
                .iter()
                .map(|node| serve_log(&node.sandbox))
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every stored message finished as processed.
fn assert_all_processed(rt: &tokio::runtime::Runtime, pool: &sqlx::PgPool) {
    let other: i64 = rt
        .block_on(
            sqlx::query_scalar("SELECT count(*) FROM inbound_messages WHERE state <> 'processed'")
                .fetch_one(pool),
        )
        .expect("count");
    assert_eq!(other, 0, "every stored message processed");
}

fn service_desk_mail(to: &str, title: &str, n: usize) -> String {
    format!(
        "From: customer{n}@example.org\r\nTo: {to}\r\nSubject: {title}\r\n\
         Message-ID: <{title}@test>\r\n\r\nPlease help with {title}.\r\n"
    )
}

/// One LMTP delivery, as an MTA would make it: `Err` for anything but a 250 after the data
/// (refused connection, timeout, 4xx), so the caller tries again elsewhere.
fn deliver(port: u16, sender: &str, recipient: &str, message: &str) -> Result<(), String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    // A stopped instance accepts the connection (the kernel does) but never answers.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let mut reply = |expect: &str| -> Result<(), String> {
        loop {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            if !line.starts_with(expect) {
                return Err(format!("expected {expect}, got {line:?}"));
            }
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                return Ok(());
            }
        }
    };
    let mut send = |text: &str| writer.write_all(text.as_bytes()).map_err(|e| e.to_string());
    reply("220")?;
    send("LHLO chaos.test\r\n")?;
    reply("250")?;
    send(&format!("MAIL FROM:<{sender}>\r\n"))?;
    reply("250")?;
    send(&format!("RCPT TO:<{recipient}>\r\n"))?;
    reply("250")?;
    send("DATA\r\n")?;
    reply("354")?;
    send(message)?;
    send(".\r\n")?;
    reply("250")?;
    let _ = send("QUIT\r\n");
    Ok(())
}

/// Sends message `n` to the instances that are up, round robin from `n`, until one takes it.
fn deliver_somewhere(targets: &[Target], n: usize, recipient: &str, message: &str) {
    let sender = format!("customer{n}@example.org");
    let deadline = Instant::now() + BOUND;
    let mut attempt = n;
    loop {
        let (port, up) = &targets[attempt % targets.len()];
        attempt += 1;
        if up.load(Ordering::SeqCst) && deliver(*port, &sender, recipient, message).is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "LMTP message {n} found no instance"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_instances_on_one_postgres_survive_kills_stops_and_a_database_restart() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let rt = runtime();
    let Some((database, url)) = private_database(&rt) else {
        return;
    };
    let store = format!("store:\n  url: \"{url}\"\n");
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
    // Every customer is thanked: the instance's budget of automatic mail (500 an hour by
    // default) must not decide the count.
    let config = |extra: &str, port: u16| {
        config_listening(&server, FOLDER, extra, port).replace(
            "instance:\n  host: example.test\n",
            "instance:\n  host: example.test\n  auto_mail_per_hour: 1000000\n",
        )
    };
    let first = Sandbox::with_config(&config(&store, ports[0]));
    let to = project(&first);
    let enabled = first.admin_json(&["project", "service-desk", "enable", "land/ooo"]);
    let service_desk = str_field(&enabled["addresses"], "service_desk").to_owned();
    // Instances of one database share the key that seals its incoming-email tokens.
    let key = first.path().join("postern-data/secrets/token.key");
    let shared = format!("{store}  token_key_file: \"{}\"\n", key.display());
    let mut sandboxes = vec![first];
    for port in &ports[1..] {
        sandboxes.push(Sandbox::with_config(&config(&shared, *port)));
    }
    let nodes: Vec<Node> = sandboxes
        .into_iter()
        .zip(&ports)
        .map(|(sandbox, port)| Node {
            sandbox,
            args: vec!["serve".to_owned()],
            lmtp_port: *port,
            child: Mutex::new(None),
            up: Arc::new(AtomicBool::new(false)),
        })
        .collect();
    let targets: Arc<Vec<Target>> = Arc::new(
        nodes
            .iter()
            .map(|node| (node.lmtp_port, node.up.clone()))
            .collect(),
    );
    let mut titles = rt.block_on(preload_messages(&server, FOLDER, IMAP_MESSAGES, |title| {
        new_issue(&to, title)
    }));

    for node in nodes.iter() {
        node.start();
    }
    let started = Instant::now();
    // Two MTA connections at a time, as a relay with two delivery agents would.
    let next = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let (targets, next, service_desk) =
                (targets.clone(), next.clone(), service_desk.clone());
            std::thread::spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= LMTP_MESSAGES {
                        return;
                    }
                    let title = format!("desk-{n}");
                    let message = service_desk_mail(&service_desk, &title, n);
                    deliver_somewhere(&targets, n, &service_desk, &message);
                }
            })
        })
        .collect();
    run_schedule(&nodes, &database, started);
    for sender in senders {
        sender.join().expect("LMTP sender");
    }
    titles.extend((0..LMTP_MESSAGES).map(|n| format!("desk-{n}")));

    let pool = rt
        .block_on(sqlx::PgPool::connect(&url))
        .expect("the test's own connection");
    wait_settled(&rt, &server, &pool, &nodes);
    eprintln!("settled {:?} after the start", started.elapsed());

    let issues: Vec<(String, i64)> = rt
        .block_on(
            sqlx::query_as("SELECT title, count(*) FROM issues GROUP BY title").fetch_all(&pool),
        )
        .expect("issues");
    let counted: std::collections::HashMap<String, usize> = issues
        .into_iter()
        .map(|(title, n)| (title, n as usize))
        .collect();
    crate::sources::assert_exactly_once(&counted, &titles);
    let thanks: Vec<(String, i64)> = rt
        .block_on(
            sqlx::query_as(
                "SELECT recipients, count(*) FROM outbox WHERE kind = 'service_desk_thank_you'
                 GROUP BY recipients",
            )
            .fetch_all(&pool),
        )
        .expect("outbox");
    assert_eq!(thanks.len(), LMTP_MESSAGES, "one thank-you per customer");
    assert!(
        thanks.iter().all(|(_, n)| *n == 1),
        "no thank-you twice: {:?}",
        thanks.iter().find(|(_, n)| *n > 1)
    );
    assert_all_processed(&rt, &pool);
    rt.block_on(pool.close());
    for node in nodes.iter() {
        node.kill();
    }
    database.stop().expect("PostgreSQL stops");
}

/// Messages GitLab companion instances deliver during the chaos.
const COMPANION_MESSAGES: usize = 1000;

/// GitLab's default topology with three `serve --gitlab-config` instances on one PostgreSQL
/// store, delivering through Sidekiq (GitLab's Redis) under the same chaos: every message is
/// pushed to GitLab's queue exactly once, and the claims of killed and stopped instances are
/// taken over once their leases expire.
#[test]
fn three_companion_instances_on_one_postgres_deliver_each_message_once_through_the_chaos() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let Some(redis) = postern_testkit::redis::RedisServer::start_or_skip() else {
        return;
    };
    let rt = runtime();
    let Some((database, url)) = private_database(&rt) else {
        return;
    };
    let store = format!("store:\n  url: \"{url}\"\n");
    let unused = "http://127.0.0.1:1";
    let (first, first_gitlab) =
        crate::companion::sandbox_with(&server, FOLDER, "sidekiq", unused, &store);
    // Creates the store and its token key, which the others share.
    first.admin_json(&["user", "list"]);
    let key = first.path().join("postern-data/secrets/token.key");
    let shared = format!("{store}  token_key_file: \"{}\"\n", key.display());
    let mut instances = vec![(first, first_gitlab)];
    for _ in 1..NODES {
        instances.push(crate::companion::sandbox_with(
            &server, FOLDER, "sidekiq", unused, &shared,
        ));
    }
    let nodes: Vec<Node> = instances
        .into_iter()
        .map(|(sandbox, gitlab_yml)| {
            sandbox.write(
                "resque.yml",
                format!("production:\n  url: {}\n", redis.url()).as_bytes(),
            );
            Node {
                sandbox,
                args: vec![
                    "serve".to_owned(),
                    "--gitlab-config".to_owned(),
                    gitlab_yml.display().to_string(),
                ],
                lmtp_port: 0,
                child: Mutex::new(None),
                up: Arc::new(AtomicBool::new(false)),
            }
        })
        .collect();
    let sent = rt.block_on(crate::companion::append(
        &server,
        FOLDER,
        "gitlab",
        0..COMPANION_MESSAGES,
    ));
    for node in &nodes {
        node.start();
    }
    run_schedule(&nodes, &database, Instant::now());

    let pool = rt
        .block_on(sqlx::PgPool::connect(&url))
        .expect("the test's own connection");
    wait_settled(&rt, &server, &pool, &nodes);
    let jobs = crate::companion::sidekiq_jobs(&redis);
    crate::sources::assert_exactly_once(&jobs, &sent);
    assert_all_processed(&rt, &pool);
    rt.block_on(pool.close());
    for node in &nodes {
        node.kill();
    }
    database.stop().expect("PostgreSQL stops");
}
