//! `log.format: json`: every line `postern serve` writes is one JSON object, each line written
//! while a message is handled names the message (its store id or its `Message-ID`, or the
//! outbox id of the mail it caused), and a configured password appears in no line.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::serve::{free_port, lmtp, stop};
use crate::support::{Sandbox, StderrLines, str_field};

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

    let mut child = sandbox
        .command(&["serve"])
        .env("POSTERN_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("postern serve starts");
    let stderr = StderrLines::collect(child.stderr.take().expect("stderr is piped"));
    stderr.wait_for("start line", BOUND, |line| line.contains("postern started"));

    // A new issue (processed) and a stranger's mail to a key that means nothing (rejected,
    // with a reject notice).
    for (from, to, message_id) in [
        ("jake@example.com", address.as_str(), "log-issue@example.com"),
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

    let everything = lines.join("\n");
    assert!(
        !everything.contains(SMTP_PASSWORD),
        "the SMTP password was printed:\n{everything}"
    );
    // The one line that is not a log line: the first administrator's one-time setup link,
    // printed for a person and never logged.
    let parsed: Vec<Value> = lines
        .iter()
        .filter(|line| !line.starts_with("postern: no administrator has a password yet"))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
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
