//! `postern admin` beyond the walkthrough: refusals, blocking, tokens, Service Desk settings.

use serde_json::Value;

use crate::support::{Sandbox, WALKTHROUGH_CONFIG, Walkthrough, renamed, str_field};

#[test]
fn refusals_exit_1_with_one_line() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    Walkthrough::set_up(&sandbox);
    let cases: &[(&[&str], &str)] = &[
        (
            &["admin", "project", "show", "nobody/nothing"],
            "nobody/nothing",
        ),
        (
            &[
                "admin",
                "project",
                "show",
                "gitlabhq/gitlabhq",
                "--user",
                "finn",
            ],
            "finn",
        ),
        (
            &[
                "admin",
                "project",
                "member",
                "add",
                "gitlabhq/gitlabhq",
                "jake",
                "wizard",
            ],
            "wizard",
        ),
        (
            &["admin", "project", "add", "no-namespace"],
            "namespace/project",
        ),
        (
            &[
                "admin",
                "project",
                "add",
                "a/b",
                "--visibility",
                "secretive",
            ],
            "secretive",
        ),
        (
            &["admin", "issue", "show", "gitlabhq/gitlabhq", "42"],
            "#42",
        ),
        (&["admin", "mr", "show", "gitlabhq/gitlabhq", "42"], "!42"),
        (
            &[
                "admin",
                "notification",
                "add",
                "gitlabhq/gitlabhq",
                "42",
                "jake",
            ],
            "#42",
        ),
        (&["admin", "message", "show", "99"], "99"),
        (&["admin", "message", "reprocess", "99"], "99"),
        (&["admin", "message", "list", "--state", "lost"], "lost"),
    ];
    for (args, named) in cases {
        let run = sandbox.run(args);
        let line = run.one_line_error(1);
        assert!(line.contains(named), "{args:?}: {line}");
    }
    // Taken names are refused, and the first ones stay.
    sandbox
        .run(&[
            "admin",
            "user",
            "add",
            "jake",
            "--email",
            "other@example.com",
        ])
        .one_line_error(1);
    sandbox
        .run(&["admin", "project", "add", "gitlabhq/gitlabhq"])
        .one_line_error(1);
    let users = sandbox.admin_json(&["user", "list"]);
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users:#}");
}

#[test]
fn blocked_users_and_reset_tokens_are_refused() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let mail = world.fixture("valid_new_issue.eml");

    let blocked = sandbox.admin_json(&["user", "block", "jake"]);
    assert_eq!(blocked["state"], "blocked", "{blocked:#}");
    let refused = sandbox.receive(&mail);
    assert_eq!(refused["error"], "user_blocked", "{refused:#}");
    assert_eq!(
        refused["reason"],
        "Your account has been blocked. If you believe this is in error, contact a staff member."
    );
    let human = sandbox.admin_text(&["user", "unblock", "jake"]);
    assert_eq!(human, "unblocked jake\n");

    let reset = sandbox.admin_json(&["user", "token", "jake", "--reset"]);
    let new_token = str_field(&reset, "token").to_owned();
    assert_ne!(new_token, world.token);
    let old_address = sandbox.receive(&renamed(&mail, "old-token"));
    assert_eq!(old_address["error"], "user_not_found", "{old_address:#}");
    let new_mail = String::from_utf8_lossy(&mail).replace(&world.token, &new_token);
    let accepted = sandbox.receive(&renamed(new_mail.as_bytes(), "new-token"));
    assert_eq!(accepted["outcome"], "processed", "{accepted:#}");
}

#[test]
fn service_desk_settings_and_alias() {
    let sandbox = Sandbox::with_config(&format!(
        "{WALKTHROUGH_CONFIG}service_desk_email:\n  enabled: true\n  address: \"contact+%{{key}}@example.com\"\n"
    ));
    let world = Walkthrough::set_up(&sandbox);
    let disabled = sandbox.admin_json(&["project", "show", "gitlabhq/gitlabhq"]);
    assert_eq!(disabled["addresses"]["service_desk"], Value::Null);
    assert_eq!(disabled["addresses"]["service_desk_alias"], Value::Null);
    // Without a user the new-issue address shows where the token goes.
    assert_eq!(
        disabled["addresses"]["new_issue"],
        format!(
            "incoming+gitlabhq-gitlabhq-{}-<token>-issue@appmail.adventuretime.ooo",
            world.project_id
        )
    );

    sandbox.admin_json(&["project", "service-desk", "enable", "gitlabhq/gitlabhq"]);
    let set = sandbox.admin_json(&[
        "project",
        "service-desk",
        "set",
        "gitlabhq/gitlabhq",
        "--project-key",
        "support",
        "--tickets-confidential",
        "no",
    ]);
    assert_eq!(set["service_desk"]["project_key"], "support", "{set:#}");
    assert_eq!(
        set["service_desk"]["tickets_confidential_by_default"],
        false
    );
    assert_eq!(
        set["addresses"]["service_desk_alias"],
        "contact+gitlabhq-gitlabhq-support@example.com"
    );
    let shown = sandbox.admin_json(&["project", "show", "gitlabhq/gitlabhq"]);
    assert_eq!(shown["repository"], set["repository"]);
    assert!(
        std::path::Path::new(str_field(&shown, "repository")).is_absolute(),
        "{shown:#}"
    );

    sandbox
        .run(&[
            "admin",
            "project",
            "service-desk",
            "set",
            "gitlabhq/gitlabhq",
            "--tickets-confidential",
            "perhaps",
        ])
        .expect_code(2);

    let off = sandbox.admin_json(&["project", "service-desk", "disable", "gitlabhq/gitlabhq"]);
    assert_eq!(off["service_desk"]["enabled"], false);
    assert_eq!(off["addresses"]["service_desk_alias"], Value::Null);
    let human = sandbox.admin_text(&["project", "show", "gitlabhq/gitlabhq"]);
    assert!(human.contains("service desk: disabled"), "{human}");
}

#[test]
fn an_unknown_state_filter_is_a_usage_error_naming_it() {
    let sandbox = Sandbox::new();
    for list in [["message", "list"], ["outbox", "list"]] {
        let run = sandbox.run(&["admin", list[0], list[1], "--state", "bogus"]);
        let error = run.one_line_error(1);
        assert!(error.contains("unknown state \"bogus\""), "{error}");
    }
}
