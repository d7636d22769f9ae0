//! The whole round trip through real mail servers: a change queues a notification, `postern
//! admin outbox send` hands it to a private Postfix, Dovecot stores it, the test reads it over
//! IMAP and answers it as a mail client would, `postern receive` turns the answer into a comment
//! in the same discussion with the quote trimmed, and the others are notified in turn.

use std::time::Duration;

use postern_mail::{Email, ReplyOptions, parse_reply};
use postern_testkit::mailserver::{self, MailServer};
use serde_json::Value;

use crate::support::{Sandbox, str_field};

const WAIT: Duration = Duration::from_secs(60);

fn sandbox(server: &MailServer) -> Sandbox {
    Sandbox::with_config(&format!(
        "incoming_email:\n  enabled: true\n  address: \"servicedesk+%{{key}}@example.test\"\n\
         instance:\n  host: localhost\n  name: Postern Test\n\
         smtp:\n  host: 127.0.0.1\n  port: {}\n  tls: none\n  from: postern@example.test\n",
        server.smtp_port()
    ))
}

/// How a person answers a notification: to its Reply-To, threaded, the text they saw quoted.
fn answer(notification: &[u8], from: &str, text: &str, id: &str) -> Vec<u8> {
    let email = Email::parse(notification);
    let to = email.reply_to().into_iter().next().expect("Reply-To");
    let original = email.message_id().expect("Message-ID").to_owned();
    let mut references: Vec<String> = email
        .references()
        .iter()
        .map(|r| format!("<{r}>"))
        .collect();
    references.push(format!("<{original}>"));
    let shown = parse_reply(
        &email,
        ReplyOptions {
            trim_reply: false,
            append_reply: false,
            allow_only_quotes: false,
            ..ReplyOptions::default()
        },
    )
    .expect("valid options");
    let quoted: String = shown.body.lines().map(|l| format!("> {l}\r\n")).collect();
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Re: {}\r\nMessage-ID: <{id}@client.example.test>\r\n\
         In-Reply-To: <{original}>\r\nReferences: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {text}\r\n\r\nOn Sat, 28 Nov 2026 at 10:00, Postern Test <postern@example.test> wrote:\r\n{quoted}",
        email.subject().unwrap_or(""),
        references.join(" ")
    )
    .into_bytes()
}

fn outbox_send(sandbox: &Sandbox) -> Value {
    sandbox.admin_json(&["outbox", "send"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_reply_comment_notification() {
    let Some(server) = mailserver::shared() else {
        eprintln!("POSTERN_SKIP_MAILSERVER=1: skipping the mail round trip");
        return;
    };
    let sandbox = sandbox(server);
    let jake_address = server.address("jake");
    let finn_address = server.address("finn");
    sandbox.admin_json(&[
        "user",
        "add",
        "jake",
        "--email",
        &jake_address,
        "--name",
        "Jake",
    ]);
    sandbox.admin_json(&[
        "user",
        "add",
        "finn",
        "--email",
        &finn_address,
        "--name",
        "Finn",
    ]);
    let project = sandbox.admin_json(&["project", "add", "land/ooo"]);
    for user in ["jake", "finn"] {
        sandbox.admin_json(&["project", "member", "add", "land/ooo", user, "developer"]);
    }
    let shown = sandbox.admin_json(&["project", "show", "land/ooo", "--user", "jake"]);
    let new_issue = str_field(&shown["addresses"], "new_issue").to_owned();
    let _ = project;

    // Jake opens an issue by mail and assigns Finn: Finn is notified.
    let raw = format!(
        "From: Jake <{jake_address}>\r\nTo: {new_issue}\r\nSubject: The build is broken\r\n\
         Message-ID: <open-1@client.example.test>\r\n\r\nIt fails on main.\r\n\r\n/assign @finn\r\n"
    );
    let opened = sandbox.receive(raw.as_bytes());
    assert_eq!(str_field(&opened, "outcome"), "processed", "{opened}");
    let report = outbox_send(&sandbox);
    assert_eq!(report["sent"], 1, "{report}\n{}", sandbox.transcript());
    let delivered = server
        .wait_for_delivery(&finn_address, "To", &finn_address, 1, WAIT)
        .await
        .expect("Finn's notification arrives");
    assert_eq!(delivered.len(), 1, "exactly one copy");
    let notification = &delivered[0];
    let mail = Email::parse(notification);
    let key = mail
        .header_value("X-Postern-Reply-Key")
        .expect("reply key header");
    assert_eq!(mail.reply_to(), [format!("servicedesk+{key}@example.test")]);
    assert_eq!(mail.references()[0], format!("reply-{key}@localhost"));
    assert_eq!(
        mail.header_value("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        mail.header_value("X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    assert_eq!(
        mail.header_value("X-Postern-Loop").as_deref(),
        Some("localhost")
    );
    assert_eq!(
        mail.header_value("List-Unsubscribe"),
        Some(format!(
            "<mailto:servicedesk+{key}-unsubscribe@example.test>"
        ))
    );

    // Finn answers from his mail client; his words become a comment, the quote is trimmed.
    let reply = answer(
        notification,
        &format!("Finn <{finn_address}>"),
        "I will fix it today.",
        "finn-1",
    );
    let commented = sandbox.receive(&reply);
    assert_eq!(str_field(&commented, "outcome"), "processed", "{commented}");
    assert_eq!(str_field(&commented, "handler"), "create_note");
    let issue = sandbox.admin_json(&["issue", "show", "land/ooo", "1"]);
    let notes = issue["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{issue}");
    let body = str_field(&notes[0], "body");
    assert!(
        body.starts_with("I will fix it today.\n\n<details>"),
        "{body}"
    );

    // Jake hears about Finn's comment.
    let report = outbox_send(&sandbox);
    assert_eq!(report["sent"], 1, "{report}");
    let to_jake = server
        .wait_for_delivery(&jake_address, "To", &jake_address, 1, WAIT)
        .await
        .expect("Jake's notification arrives");
    assert_eq!(to_jake.len(), 1);
    let text = parse_reply(&Email::parse(&to_jake[0]), ReplyOptions::default()).expect("options");
    // The comment as stored: Finn's words, his quote collapsed below them.
    assert!(
        text.body.starts_with("I will fix it today.\n\n<details>"),
        "{}",
        text.body
    );

    // Jake's out-of-office answer to it is dropped: no comment, no mail.
    let away = String::from_utf8(answer(
        &to_jake[0],
        &format!("Jake <{jake_address}>"),
        "I am away.",
        "away-1",
    ))
    .expect("UTF-8")
    .replacen("\r\n", "\r\nAuto-Submitted: auto-replied\r\n", 1);
    let ignored = sandbox.receive(away.as_bytes());
    assert_eq!(str_field(&ignored, "outcome"), "ignored", "{ignored}");
    let report = outbox_send(&sandbox);
    assert_eq!(report["sent"], 0, "{report}");
    let issue = sandbox.admin_json(&["issue", "show", "land/ooo", "1"]);
    assert_eq!(issue["notes"].as_array().map(Vec::len), Some(1));

    // Sending again sends nothing twice.
    let report = outbox_send(&sandbox);
    assert_eq!(report["sent"], 0);
    let to_finn = server
        .wait_for_delivery(&finn_address, "To", &finn_address, 1, WAIT)
        .await
        .expect("still there");
    assert_eq!(to_finn.len(), 1, "one notification to Finn, never two");
}

#[test]
fn without_smtp_mail_is_written_to_the_data_directory() {
    let sandbox = Sandbox::new();
    sandbox.admin_json(&["user", "add", "jake", "--email", "jake@example.com"]);
    sandbox.admin_json(&["user", "add", "finn", "--email", "finn@example.com"]);
    sandbox.admin_json(&["project", "add", "land/ooo"]);
    for user in ["jake", "finn"] {
        sandbox.admin_json(&["project", "member", "add", "land/ooo", user, "developer"]);
    }
    let shown = sandbox.admin_json(&["project", "show", "land/ooo", "--user", "jake"]);
    let new_issue = str_field(&shown["addresses"], "new_issue").to_owned();
    let raw = format!(
        "From: jake@example.com\r\nTo: {new_issue}\r\nSubject: Hello\r\nMessage-ID: <f-1@x>\r\n\r\n\
         Text.\r\n\r\n/assign @finn\r\n"
    );
    sandbox.receive(raw.as_bytes());
    let report = outbox_send(&sandbox);
    assert_eq!(report["sent"], 1, "{report}");
    let folder = sandbox.path().join("postern-data/outbox");
    let files: Vec<_> = std::fs::read_dir(&folder)
        .expect("outbox folder")
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let written = std::fs::read(&files[0]).expect("readable");
    assert!(
        Email::parse(&written)
            .header_value("X-Postern-Reply-Key")
            .is_some()
    );
}

#[test]
fn changes_made_from_the_cli_notify_like_mail() {
    let sandbox = Sandbox::new();
    sandbox.admin_json(&["user", "add", "jake", "--email", "jake@example.com"]);
    sandbox.admin_json(&["user", "add", "finn", "--email", "finn@example.com"]);
    sandbox.admin_json(&["project", "add", "land/ooo"]);
    for user in ["jake", "finn"] {
        sandbox.admin_json(&["project", "member", "add", "land/ooo", user, "developer"]);
    }
    sandbox.admin_json(&[
        "issue",
        "create",
        "land/ooo",
        "Broken",
        "--as",
        "jake",
        "--description",
        "Help\n/assign @finn",
    ]);
    sandbox.admin_json(&[
        "issue", "comment", "land/ooo", "1", "--as", "finn", "On it.",
    ]);
    let queued = sandbox.admin_json(&["outbox", "list"]);
    let mails = queued.as_array().expect("a list");
    let recipients: Vec<String> = mails
        .iter()
        .rev()
        .map(|mail| {
            mail["recipients"][0]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        recipients,
        ["finn@example.com", "jake@example.com"],
        "{queued}"
    );
    let refused = sandbox.run(&[
        "admin", "issue", "comment", "land/ooo", "1", "--as", "finn", " ",
    ]);
    refused.expect_code(1);
}
