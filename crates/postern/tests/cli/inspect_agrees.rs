//! `postern inspect` and `postern receive` take the same receiver decision: for varied
//! messages, the refusal `inspect` reports (blank, automatic, over an attachment limit, no key or
//! route) is the one `receive` records, and where `inspect` finds a handler, that handler ran.

use serde_json::Value;

use crate::support::{Sandbox, Walkthrough, read_testdata, str_field};

/// The refusals the receiver decides before any handler, the ones `inspect` can report.
const RECEIVER_REFUSALS: &[&str] = &[
    "empty_email",
    "auto_generated_email",
    "limit_exceeded",
    "unknown_incoming_email",
];

/// The walkthrough's configuration with a low attachment limit.
const CONFIG: &str = "incoming_email:\n  enabled: true\n  address: \"incoming+%{key}@appmail.adventuretime.ooo\"\ninstance:\n  host: localhost\nlimits:\n  max_attachments: 2\n";

/// A mail to `to` with three small attachments, one over the limit of [`CONFIG`].
fn three_attachments(to: &str, id: &str) -> Vec<u8> {
    let mut raw = format!(
        "From: jake@adventuretime.ooo\r\nTo: {to}\r\nSubject: logs\r\n\
         Message-ID: <{id}@example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe logs.\r\n"
    );
    for n in 1..=3 {
        raw.push_str(&format!(
            "--b\r\nContent-Type: text/plain\r\n\
             Content-Disposition: attachment; filename=\"log{n}.txt\"\r\n\r\nline {n}\r\n"
        ));
    }
    raw.push_str("--b--\r\n");
    raw.into_bytes()
}

/// Runs both commands on `raw` (in `mailbox`) and checks that they agree; returns inspect's
/// `error` (or `handler` when there is none) and receive's `error`, for the caller to check
/// that the case is the one it means.
#[track_caller]
fn agree(sandbox: &Sandbox, name: &str, raw: &[u8], mailbox: &str) -> (String, Value) {
    let inspected = sandbox
        .run_with_stdin(&["inspect", "--mailbox", mailbox, "-"], raw)
        .json();
    let received = sandbox
        .run_with_stdin(&["receive", "--mailbox", mailbox, "-"], raw)
        .json();
    let context = format!("{name}:\ninspect: {inspected:#}\nreceive: {received:#}");
    assert_ne!(received["outcome"], "duplicate", "{context}");
    match &inspected["error"] {
        Value::String(kind) => {
            assert!(RECEIVER_REFUSALS.contains(&kind.as_str()), "{context}");
            assert_eq!(received["error"], inspected["error"], "{context}");
            let outcome = if kind == "auto_generated_email" {
                "ignored"
            } else {
                "rejected"
            };
            assert_eq!(received["outcome"], outcome, "{context}");
            assert_eq!(received["handler"], Value::Null, "{context}");
            (kind.clone(), received["error"].clone())
        }
        Value::Null => {
            let handler = str_field(&inspected, "handler");
            assert_eq!(received["handler"], handler, "{context}");
            if let Value::String(kind) = &received["error"] {
                assert!(!RECEIVER_REFUSALS.contains(&kind.as_str()), "{context}");
            }
            (handler.to_owned(), received["error"].clone())
        }
        other => panic!("inspect's error is {other}\n{context}"),
    }
}

#[test]
fn inspect_reports_the_receiver_decision_receive_records() {
    let sandbox = Sandbox::with_config(CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let project_id = world.project_id.to_string();
    // Each with a Message-ID of its own: the same one twice would be a duplicate.
    let issue_to = |key: &str, id: &str| -> Vec<u8> {
        format!(
            "From: jake@adventuretime.ooo\r\nTo: incoming+{key}@appmail.adventuretime.ooo\r\n\
             Subject: a bug\r\nMessage-ID: <{id}@example.test>\r\n\r\nIt breaks.\r\n"
        )
        .into_bytes()
    };
    let valid_issue_key = format!("gitlabhq-gitlabhq-{project_id}-{}-issue", world.token);
    let mut automatic_with_key = issue_to(&valid_issue_key, "automatic");
    automatic_with_key.splice(0..0, b"Auto-Submitted: auto-replied\r\n".iter().copied());

    // (name, bytes, mailbox, what inspect decides, what receive records as the error)
    let cases: Vec<(&str, Vec<u8>, &str, &str, Value)> = vec![
        (
            "empty",
            Vec::new(),
            "incoming",
            "empty_email",
            "empty_email".into(),
        ),
        (
            "white space",
            b" \r\n\t\r\n".to_vec(),
            "incoming",
            "empty_email",
            "empty_email".into(),
        ),
        (
            "auto-reply",
            read_testdata("gitlab-emails/auto_reply.eml"),
            "incoming",
            "auto_generated_email",
            "auto_generated_email".into(),
        ),
        (
            "automatic, with a valid key",
            automatic_with_key,
            "incoming",
            "auto_generated_email",
            "auto_generated_email".into(),
        ),
        (
            "no key",
            b"From: jake@adventuretime.ooo\r\nTo: someone@example.test\r\n\r\nHello\r\n".to_vec(),
            "incoming",
            "unknown_incoming_email",
            "unknown_incoming_email".into(),
        ),
        (
            "a key no handler takes",
            issue_to("not!a!key", "no-handler"),
            "incoming",
            "unknown_incoming_email",
            "unknown_incoming_email".into(),
        ),
        (
            "garbage",
            b"\xff\xfe\x00 not a mail \x00\r\n\r\n\xc3\x28".to_vec(),
            "incoming",
            "unknown_incoming_email",
            "unknown_incoming_email".into(),
        ),
        (
            "the Service Desk mailbox, not configured",
            issue_to(&valid_issue_key, "service-desk"),
            "service_desk",
            "unknown_incoming_email",
            "unknown_incoming_email".into(),
        ),
        // `inspect` used to know no limit: it called this unknown_incoming_email.
        (
            "over the attachment limit, without a key",
            three_attachments("someone@example.test", "over-limit-no-key"),
            "incoming",
            "limit_exceeded",
            "limit_exceeded".into(),
        ),
        (
            "over the attachment limit, with a valid key",
            three_attachments(
                &format!("incoming+{valid_issue_key}@appmail.adventuretime.ooo"),
                "over-limit-with-key",
            ),
            "incoming",
            "limit_exceeded",
            "limit_exceeded".into(),
        ),
        (
            "a valid new issue",
            world.fixture("valid_new_issue.eml"),
            "incoming",
            "create_issue",
            Value::Null,
        ),
        (
            "a bad token",
            world.fixture("wrong_authentication_token.eml"),
            "incoming",
            "create_issue",
            "user_not_found".into(),
        ),
        (
            "an unknown project",
            issue_to(
                &format!("nobody-nothing-999999-{}-issue", world.token),
                "unknown-project",
            ),
            "incoming",
            "create_issue",
            "project_not_found".into(),
        ),
        (
            "a reply whose key is only in References",
            read_testdata("gitlab-emails/valid_reply.eml"),
            "incoming",
            "create_note",
            "sent_notification_not_found".into(),
        ),
        (
            "a new merge request",
            world.fixture("valid_new_merge_request.eml"),
            "incoming",
            "create_merge_request",
            // The handler's own refusal, after the receiver's decision.
            "invalid_merge_request".into(),
        ),
    ];
    for (name, raw, mailbox, decided, recorded) in cases {
        let (inspected, received) = agree(&sandbox, name, &raw, mailbox);
        assert_eq!(
            (inspected.as_str(), &received),
            (decided, &recorded),
            "{name}"
        );
    }
}
