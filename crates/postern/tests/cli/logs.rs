//! `log.format: json`: every line `postern serve` writes is one JSON object, each line written
//! while a message is handled names the message (its store id or its `Message-ID`, or the
//! outbox id of the mail it caused), and a configured password appears in no line. Mail comes
//! in by LMTP, and from a real Dovecot through the IMAP watcher (`POSTERN_SKIP_MAILSERVER=1`
//! skips that test), both at intake and through the processing queue.

use std::time::Duration;

use serde_json::Value;

use postern_testkit::mailserver::MailServer;

use crate::serve::{free_port, lmtp, stop};
use crate::support::{Sandbox, StderrLines, serve_until, str_field};

const BOUND: Duration = Duration::from_secs(30);
const SMTP_PASSWORD: &str = "Sw0rdfish-must-never-be-logged";

/// The message-naming fields of a line: its own and those of every span it was written in.
fn ids(line: &Value) -> Vec<(String, Value)> {
    let mut scopes = vec![line];
    if let Some(spans) = line["spans"].as_array() {
        scopes.extend(spans);
    }
    scopes.push(&line["span"]);
    let mut found = Vec::new();
    for scope in scopes {
        for key in ["inbound_id", "message_id", "outbox_id"] {
            if let Some(value) = scope.get(key) {
                found.push((key.to_owned(), value.clone()));
            }
        }
    }
    found
}

fn has(line: &Value, key: &str, value: &Value) -> bool {
    ids(line).iter().any(|(k, v)| k == key && v == value)
}

/// `postern serve` at level info, its standard error collected; returns once it has started.
fn serve(sandbox: &Sandbox) -> (std::process::Child, StderrLines) {
    let (child, stderr, _) = serve_until(sandbox, Some("info"), "start line", BOUND, |line| {
        line.contains("postern started")
    });
    (child, stderr)
}

/// Asserts that `secret` is in no line and parses every line as JSON.
fn parse(lines: &[String], secret: &str) -> Vec<Value> {
    let everything = lines.join("\n");
    assert!(
        !everything.contains(secret),
        "a password was printed:\n{everything}"
    );
    lines
        .iter()
        // The one line that is not a log line: the first administrator's one-time setup
        // link, printed for a person and never logged.
        .filter(|line| !line.starts_with("postern: no administrator has a password yet"))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// Whether a "message processed" line names `message_id`.
fn processed_line(line: &str, message_id: &str) -> bool {
    line.contains("\"message processed\"") && line.contains(&format!("\"{message_id}\""))
}

#[test]
fn json_logs_name_the_message_on_every_line_and_never_print_the_smtp_password() {
    let (port, relay) = (free_port(), free_port());
    // The relay port is closed: the reject notice is deferred, which logs the SMTP error.
    let sandbox = Sandbox::with_config(&format!(
        "listener:\n  listen: \"127.0.0.1:{port}\"\nweb:\n  listen: \"127.0.0.1:0\"\n\
         log:\n  format: json\n  level: info\n\
         smtp:\n  host: 127.0.0.1\n  port: {relay}\n  tls: none\n  user: postern\n  \
         password: \"{SMTP_PASSWORD}\"\n"
    ));
    sandbox.admin_json(&["user", "add", "jake", "--email", "jake@example.com"]);
    sandbox.admin_json(&["project", "add", "land/ooo"]);
    sandbox.admin_json(&["project", "member", "add", "land/ooo", "jake", "developer"]);
    let shown = sandbox.admin_json(&["project", "show", "land/ooo", "--user", "jake"]);
    let address = str_field(&shown["addresses"], "new_issue").to_owned();

    let (child, stderr) = serve(&sandbox);

    // A new issue (processed) and a stranger's mail to a key that means nothing (rejected,
    // with a reject notice).
    for (from, to, message_id) in [
        (
            "jake@example.com",
            address.as_str(),
            "log-issue@example.com",
        ),
        (
            "stranger@example.org",
            "incoming+nothing-here@localhost",
            "log-stranger@example.org",
        ),
    ] {
        let message = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: Logged\r\nMessage-ID: <{message_id}>\r\n\r\nHello.\r\n"
        );
        let replies = lmtp(port, to, &message);
        assert!(
            replies.last().is_some_and(|reply| reply.starts_with("250")),
            "{replies:?}"
        );
    }
    stderr.wait_for("outbox attempt", BOUND, |line| {
        line.contains("mail deferred") || line.contains("mail failed")
    });
    let status = stop(child);
    let lines = stderr.finish();
    assert!(status.success(), "{status:?}\n{}", lines.join("\n"));

    let parsed = parse(&lines, SMTP_PASSWORD);
    let started = parsed
        .iter()
        .position(|line| line["message"] == "postern started")
        .expect("a start line");
    let stopping = parsed
        .iter()
        .position(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("stopping"))
        })
        .expect("a stopping line");
    // Between start and stop, postern did nothing but handle these two messages and the mail
    // one of them caused: every line names one of them.
    let handling = &parsed[started + 1..stopping];
    for line in handling {
        assert!(!ids(line).is_empty(), "a line names no message: {line}");
    }

    let processed = |message_id: &str| -> Value {
        handling
            .iter()
            .find(|line| {
                line["message"] == "message processed"
                    && has(line, "message_id", &Value::from(message_id))
            })
            .unwrap_or_else(|| panic!("no processed line for {message_id}: {handling:#?}"))
            .clone()
    };
    let issue = processed("log-issue@example.com");
    assert_eq!(issue["outcome"], "processed", "{issue}");
    assert_eq!(issue["via"], "lmtp", "{issue}");
    let stranger = processed("log-stranger@example.org");
    assert_eq!(stranger["outcome"], "rejected", "{stranger}");
    let stranger_id = stranger["inbound_id"].clone();
    assert!(stranger_id.is_i64(), "{stranger}");
    assert_ne!(issue["inbound_id"], stranger_id);

    // The reject notice's delivery attempt names its mail and the message it answers.
    let attempt = handling
        .iter()
        .find(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m == "mail deferred" || m == "mail failed")
        })
        .expect("an outbox line");
    assert!(
        has(attempt, "inbound_id", &stranger_id)
            && ids(attempt).iter().any(|(k, _)| k == "outbox_id"),
        "{attempt}"
    );
}

#[test]
fn json_logs_of_the_imap_watcher_name_each_message_at_intake_and_in_the_queue() {
    let Some(server) = MailServer::start_dovecot_only() else {
        println!("skipped: POSTERN_SKIP_MAILSERVER is set");
        return;
    };
    let rt = crate::sources::runtime();
    let sandbox = Sandbox::with_config(&crate::sources::config(
        &server,
        "logged",
        "log:\n  format: json\n",
    ));
    let to = crate::sources::project(&sandbox);
    // Found at start: one batch, stored and then processed by the queue.
    let mut titles = rt.block_on(crate::sources::preload(&server, "logged", &to, 3));
    let (child, stderr) = serve(&sandbox);
    let bound = crate::sources::BOUND;
    for title in &titles {
        stderr.wait_for("a preloaded message", bound, |line| {
            processed_line(line, &format!("{title}@test"))
        });
    }
    // Arriving during IDLE: a batch of one, processed at intake.
    rt.block_on(async {
        let mut client = crate::sources::imap(&server).await;
        let raw = format!(
            "From: jake@example.com\r\nTo: {to}\r\nSubject: idle\r\n\
             Message-ID: <logged-idle@test>\r\n\r\nBody.\r\n"
        );
        client
            .append("logged", "", raw.as_bytes())
            .await
            .expect("APPEND");
    });
    titles.push("logged-idle".to_owned());
    stderr.wait_for("the message sent during IDLE", bound, |line| {
        processed_line(line, "logged-idle@test")
    });
    crate::sources::stop(child);
    let lines = stderr.finish();
    let parsed = parse(&lines, server.password());

    let mut paths = Vec::new();
    for title in &titles {
        let message_id = Value::from(format!("{title}@test"));
        let line = parsed
            .iter()
            .find(|line| {
                line["message"] == "message processed" && has(line, "message_id", &message_id)
            })
            .unwrap_or_else(|| panic!("no processed line naming {message_id}: {parsed:#?}"));
        assert_eq!(line["outcome"], "processed", "{line}");
        assert!(line["inbound_id"].is_i64(), "{line}");
        paths.push(line["via"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(paths, ["queue", "queue", "queue", "intake"], "{parsed:#?}");
    // The watcher names each message it fetched, before anything stored it.
    let fetched: Vec<&Value> = parsed
        .iter()
        .filter(|line| line["message"] == "message fetched")
        .collect();
    assert_eq!(fetched.len(), titles.len(), "{parsed:#?}");
    for (line, title) in fetched.iter().zip(&titles) {
        assert_eq!(line["message_id"], format!("{title}@test"), "{line}");
    }
    // Whatever else was written inside a message's span names that message.
    for line in &parsed {
        let in_message = line["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|span| span["name"] == "message"));
        if in_message {
            assert!(
                ids(line).iter().any(|(key, _)| key == "message_id"),
                "{line}"
            );
        }
    }
}
