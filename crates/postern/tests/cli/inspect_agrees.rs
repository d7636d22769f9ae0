//! `postern inspect` and `postern receive` take the same receiver decision: for varied
//! messages, the refusal `inspect` reports (blank, automatic, no key or route) is the one
//! `receive` records, and where `inspect` finds a handler, that handler is the one that ran.

use serde_json::Value;

use crate::support::{
    Sandbox, WALKTHROUGH_CONFIG, Walkthrough, fixture_with, read_testdata, str_field,
};

/// The refusals the receiver decides before any handler, the ones `inspect` can report.
const RECEIVER_REFUSALS: &[&str] = &[
    "empty_email",
    "auto_generated_email",
    "unknown_incoming_email",
];

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
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let project_id = world.project_id.to_string();
    let issue_to = |key: &str| -> Vec<u8> {
        format!(
            "From: jake@adventuretime.ooo\r\nTo: incoming+{key}@appmail.adventuretime.ooo\r\n\
             Subject: a bug\r\nMessage-ID: <{key}@example.test>\r\n\r\nIt breaks.\r\n"
        )
        .into_bytes()
    };
    let valid_issue_key = format!("gitlabhq-gitlabhq-{project_id}-{}-issue", world.token);
    let mut automatic_with_key = issue_to(&valid_issue_key);
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
            issue_to("not!a!key"),
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
            issue_to(&valid_issue_key),
            "service-desk",
            "unknown_incoming_email",
            "unknown_incoming_email".into(),
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
            "create_note",
            "user_not_found".into(),
        ),
        (
            "an unknown project",
            fixture_with(
                "valid_new_issue.eml",
                &[("project_id", "999999"), ("auth_token", &world.token)],
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
            Value::Null,
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
