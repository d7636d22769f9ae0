//! `postern receive`: outcomes, duplicates and the exit codes an MTA acts on.

use serde_json::{Value, json};

use crate::support::{
    Sandbox, WALKTHROUGH_CONFIG, Walkthrough, assert_keys, fixture_with, int_field, read_testdata,
    str_field,
};

/// The fields of a first delivery.
const FIELDS: &[&str] = &[
    "inbound_id",
    "outcome",
    "handler",
    "error",
    "reason",
    "created",
    "reject_notice_queued",
];

fn receive(sandbox: &Sandbox, raw: &[u8]) -> Value {
    let value = sandbox.receive(raw);
    assert_keys(&value, FIELDS);
    value
}

#[test]
fn processed_rejected_and_ignored_all_exit_zero() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);

    let issue = receive(&sandbox, &world.fixture("valid_new_issue.eml"));
    assert_eq!(issue["outcome"], "processed", "{issue:#}");
    assert_eq!(issue["handler"], "create_issue");
    assert_eq!(issue["error"], Value::Null);
    assert_eq!(issue["reason"], Value::Null);
    assert_eq!(issue["reject_notice_queued"], false);
    assert_eq!(
        issue["created"],
        json!({"type": "issue", "project": "gitlabhq/gitlabhq", "iid": 1})
    );

    let wrong_token = receive(&sandbox, &world.fixture("wrong_authentication_token.eml"));
    assert_eq!(wrong_token["outcome"], "rejected", "{wrong_token:#}");
    assert_eq!(wrong_token["error"], "user_not_found");
    assert_eq!(
        wrong_token["reason"],
        "We couldn't figure out what user corresponds to the email. Please create your comment through the web interface."
    );
    assert_eq!(wrong_token["created"], Value::Null);
    assert_eq!(wrong_token["reject_notice_queued"], true);

    let automatic = receive(&sandbox, &read_testdata("gitlab-emails/auto_reply.eml"));
    assert_eq!(automatic["outcome"], "ignored", "{automatic:#}");
    assert_eq!(automatic["error"], "auto_generated_email");
    assert_eq!(automatic["reject_notice_queued"], false);

    let empty = receive(&sandbox, b"");
    assert_eq!(empty["outcome"], "rejected", "{empty:#}");
    assert_eq!(empty["error"], "empty_email");

    let garbage = receive(&sandbox, b"\xff\xfe\x00 not a mail \x00\r\n\r\n\xc3\x28");
    assert_eq!(garbage["outcome"], "rejected", "{garbage:#}");

    // Every message was kept, each with its own id.
    let ids: Vec<i64> = [&issue, &wrong_token, &automatic, &empty, &garbage]
        .iter()
        .map(|v| int_field(v, "inbound_id"))
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    let listed = sandbox.admin_json(&["message", "list"]);
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(ids.len()),
        "{listed:#}"
    );
}

#[test]
fn the_same_message_twice_is_a_duplicate() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let raw = world.fixture("valid_new_issue.eml");
    let first = receive(&sandbox, &raw);
    assert_eq!(first["outcome"], "processed", "{first:#}");
    let second = sandbox.receive(&raw);
    assert_keys(&second, &[FIELDS, &["first_outcome"]].concat());
    assert_eq!(second["outcome"], "duplicate", "{second:#}");
    assert_eq!(second["first_outcome"], "processed");
    assert_eq!(second["inbound_id"], first["inbound_id"]);
    assert_eq!(second["created"], first["created"]);
    let issues = sandbox.admin_json(&["issue", "list", "gitlabhq/gitlabhq"]);
    assert_eq!(issues.as_array().map(Vec::len), Some(1), "{issues:#}");

    // The same bytes from a file count as the same message.
    let path = sandbox.write("again.eml", &raw);
    let third = sandbox
        .run(&["receive", &path.display().to_string()])
        .json();
    assert_eq!(third["outcome"], "duplicate", "{third:#}");

    // A refused message twice: one notice, not two.
    let refused = world.fixture("wrong_authentication_token.eml");
    let once = receive(&sandbox, &refused);
    assert_eq!(once["reject_notice_queued"], true);
    let twice = sandbox.receive(&refused);
    assert_eq!(twice["outcome"], "duplicate", "{twice:#}");
    assert_eq!(twice["first_outcome"], "rejected");
    assert_eq!(twice["error"], "user_not_found");
    assert_eq!(twice["reject_notice_queued"], false);
}

#[test]
fn without_configuration_the_store_is_sqlite_in_the_working_directory() {
    let sandbox = Sandbox::new();
    // The default host `localhost` finds the reply key in References; no notification has it.
    let value = receive(&sandbox, &read_testdata("gitlab-emails/valid_reply.eml"));
    assert_eq!(value["outcome"], "rejected", "{value:#}");
    assert_eq!(value["handler"], "create_note");
    assert_eq!(value["error"], "sent_notification_not_found");
    assert!(
        sandbox
            .path()
            .join("postern-data/postern.sqlite3")
            .is_file()
    );
    // A fixture addressed elsewhere has no key for the default address.
    let elsewhere = receive(
        &sandbox,
        &read_testdata("gitlab-emails/valid_new_issue.eml"),
    );
    assert_eq!(
        elsewhere["error"], "unknown_incoming_email",
        "{elsewhere:#}"
    );
}

#[test]
fn a_configured_data_directory_is_used() {
    let sandbox = Sandbox::with_config(&format!(
        "{WALKTHROUGH_CONFIG}store:\n  data_dir: elsewhere/data\n"
    ));
    let world = Walkthrough::set_up(&sandbox);
    receive(&sandbox, &world.fixture("valid_new_issue.eml"));
    assert!(
        sandbox
            .path()
            .join("elsewhere/data/postern.sqlite3")
            .is_file()
    );
    assert!(sandbox.path().join("elsewhere/data/repositories").is_dir());
    assert!(!sandbox.path().join("postern-data").exists());
}

/// `store.repositories_dir` (a shared file system, for several instances) holds the projects'
/// repositories instead of the data directory.
#[test]
fn a_configured_repositories_directory_is_used() {
    let sandbox = Sandbox::with_config(&format!(
        "{WALKTHROUGH_CONFIG}store:\n  repositories_dir: shared/repositories\n"
    ));
    let world = Walkthrough::set_up(&sandbox);
    receive(&sandbox, &world.fixture("valid_new_issue.eml"));
    let repositories = std::fs::read_dir(sandbox.path().join("shared/repositories"))
        .expect("the configured directory")
        .count();
    assert!(repositories > 0, "the project's repository is there");
    assert!(!sandbox.path().join("postern-data/repositories").exists());
}

#[test]
fn service_desk_mailbox_uses_the_alias_address() {
    let sandbox = Sandbox::with_config(&format!(
        "{WALKTHROUGH_CONFIG}service_desk_email:\n  enabled: true\n  address: \"support+%{{key}}@example.com\"\n"
    ));
    let world = Walkthrough::set_up(&sandbox);
    sandbox.admin_json(&["project", "service-desk", "enable", "gitlabhq/gitlabhq"]);
    let show = sandbox.admin_json(&["project", "show", "gitlabhq/gitlabhq"]);
    let alias = str_field(&show["addresses"], "service_desk_alias").to_owned();
    assert_eq!(
        alias,
        format!(
            "support+gitlabhq-gitlabhq-{}-issue-@example.com",
            world.project_id
        )
    );
    let raw = String::from_utf8(world.fixture("service_desk.eml"))
        .expect("fixture is UTF-8")
        .replace(
            &format!(
                "incoming+email-test-{}-issue-@appmail.adventuretime.ooo",
                world.project_id
            ),
            &alias,
        );
    let run = sandbox.run_with_stdin(
        &["receive", "--mailbox", "service_desk", "-"],
        raw.as_bytes(),
    );
    let value = run.json();
    assert_eq!(value["outcome"], "processed", "{value:#}");
    assert_eq!(value["handler"], "service_desk");
    assert_eq!(value["created"]["type"], "ticket");
    let ticket = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", "1"]);
    assert_eq!(ticket["issue_type"], "ticket", "{ticket:#}");
    assert_eq!(ticket["external_author"], "jake@adventuretime.ooo");
}

#[test]
fn missing_input_exits_66() {
    let sandbox = Sandbox::new();
    let line = sandbox
        .run(&["receive", "nothing-here.eml"])
        .one_line_error(66)
        .to_owned();
    assert!(line.contains("nothing-here.eml"), "{line}");
}

#[test]
fn unavailable_store_exits_75_and_hides_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let sandbox = Sandbox::with_config(&format!(
        "{WALKTHROUGH_CONFIG}store:\n  url: \"postgres://postern:secret@127.0.0.1:1/x\"\n"
    ));
    let raw = read_testdata("gitlab-emails/valid_new_issue.eml");
    let run = sandbox.run_with_stdin(&["receive", "-"], &raw);
    run.one_line_error(75);
    assert!(!run.all_output().contains("secret"), "{}", run.all_output());
    // admin says the same.
    let admin = sandbox.run(&["admin", "user", "list"]);
    admin.one_line_error(75);
    assert!(
        !admin.all_output().contains("secret"),
        "{}",
        admin.all_output()
    );
}

#[test]
fn unusable_configuration_exits_78() {
    let raw = read_testdata("gitlab-emails/valid_new_issue.eml");
    let cases: &[(&str, &str)] = &[
        // An unknown key is named.
        (
            "incoming_email:\n  enabled: true\n  adress: \"x+%{key}@y\"\n",
            "adress",
        ),
        ("stor:\n  url: \"sqlite://x.db\"\n", "stor"),
        // A store URL postern cannot use is not worth retrying.
        (
            "store:\n  url: \"mysql://postern:secret@127.0.0.1/x\"\n",
            "mysql",
        ),
        (
            "store:\n  url: \"postgres://postern:secret@127.0.0.1:99999/x\"\n",
            "port",
        ),
        (
            "store:\n  url: \"postgres://postern:secret@127.0.0.1:1/x?sslmode=sometimes\"\n",
            "sometimes",
        ),
    ];
    // (The list of known keys in the first message names `secret_file`.)
    for (yaml, named) in cases {
        let sandbox = Sandbox::with_config(yaml);
        let run = sandbox.run_with_stdin(&["receive", "-"], &raw);
        let line = run.one_line_error(78).to_owned();
        assert!(line.contains(named), "{yaml}: {line}");
        let output = run.all_output().replace("secret_file", "");
        assert!(!output.contains("secret"), "{yaml}: {line}");
        // Nothing was stored.
        assert!(
            !sandbox.path().join("postern-data/postern.sqlite3").exists(),
            "{yaml}"
        );
    }
}

#[test]
fn a_message_refused_for_a_missing_project_is_processed_after_it_exists() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let jake = sandbox.admin_json(&["user", "add", "jake", "--email", "jake@adventuretime.ooo"]);
    let token = str_field(&jake, "incoming_email_token").to_owned();
    // The first project gets id 1.
    let raw = fixture_with(
        "valid_new_issue.eml",
        &[("project_id", "1"), ("auth_token", &token)],
    );
    let path = sandbox.write("early.eml", &raw);
    let early = sandbox
        .run(&["receive", &path.display().to_string()])
        .json();
    assert_eq!(early["handler"], "create_issue", "{early:#}");
    assert_eq!(early["error"], "project_not_found");
    let id = int_field(&early, "inbound_id").to_string();

    let project = sandbox.admin_json(&["project", "add", "gitlabhq/gitlabhq"]);
    assert_eq!(project["id"], 1);
    sandbox.admin_json(&[
        "project",
        "member",
        "add",
        "gitlabhq/gitlabhq",
        "jake",
        "reporter",
    ]);
    let again = sandbox.admin_json(&["message", "reprocess", &id]);
    assert_eq!(again["outcome"], "processed", "{again:#}");
    assert_eq!(again["inbound_id"], early["inbound_id"]);
    assert_eq!(again["created"]["iid"], 1);
    // Delivered again by the MTA: the stored outcome is now the processed one.
    let redelivered = sandbox.receive(&raw);
    assert_eq!(redelivered["outcome"], "duplicate", "{redelivered:#}");
    assert_eq!(redelivered["first_outcome"], "processed");
}
