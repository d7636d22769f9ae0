//! Passing as someone else by mail, tried through the binary as an attacker would: a forged
//! `Reply-To`, another project's Service Desk address, a ticket's Message-ID, a merge request
//! that names an existing branch. Each must now fail safe.

use serde_json::Value;

use crate::support::{
    Sandbox, WALKTHROUGH_CONFIG, Walkthrough, fixture_with, int_field, str_field,
};

const PROJECT: &str = "gitlabhq/gitlabhq";

/// Everything queued in the outbox, as `admin outbox list` shows it.
fn outbox(sandbox: &Sandbox) -> Vec<Value> {
    sandbox
        .admin_json(&["outbox", "list", "--limit", "1000"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every recipient of every queued mail.
fn outbox_recipients(sandbox: &Sandbox) -> Vec<String> {
    outbox(sandbox)
        .iter()
        .flat_map(|mail| {
            mail["recipients"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
        })
        .collect()
}

fn add_user(sandbox: &Sandbox, name: &str, email: &str) {
    sandbox.admin_json(&["user", "add", name, "--email", email, "--name", name]);
}

#[test]
fn reply_to_does_not_make_mallory_bob() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    Walkthrough::set_up(&sandbox);
    add_user(&sandbox, "bob", "bob@acme.com");
    sandbox.admin_json(&["project", "member", "add", PROJECT, "bob", "maintainer"]);
    sandbox.admin_json(&["issue", "create", PROJECT, "Login fails", "--as", "jake"]);
    let notification = sandbox.admin_json(&["notification", "add", PROJECT, "1", "bob"]);
    let reply_address = str_field(&notification, "reply_address").to_owned();

    let forged = format!(
        "From: Mallory <mallory@evil.test>\r\nReply-To: Bob <bob@acme.com>\r\nTo: {reply_address}\r\n\
         Subject: Re: Login fails\r\nMessage-ID: <forged-1@evil.test>\r\n\r\n\
         Bob here, taking this.\r\n\r\n/label ~wontfix\r\n/assign @jake\r\n/close\r\n"
    );
    let refused = sandbox.receive(forged.as_bytes());
    assert_eq!(refused["outcome"], "rejected", "{refused:#}");
    assert_eq!(refused["error"], "user_not_found");
    assert_eq!(
        refused["reason"],
        "We couldn't figure out what user corresponds to the email. Please create your comment through the web interface."
    );
    let issue = sandbox.admin_json(&["issue", "show", PROJECT, "1"]);
    assert_eq!(issue["state"], "opened", "no quick action ran: {issue:#}");
    assert_eq!(issue["labels"], serde_json::json!([]), "{issue:#}");
    assert_eq!(issue["assignee_ids"], serde_json::json!([]), "{issue:#}");
    assert_eq!(issue["notes"], serde_json::json!([]), "{issue:#}");

    // Bob's own mail, with a Reply-To elsewhere, is still Bob's.
    let genuine = format!(
        "From: Bob <bob@acme.com>\r\nReply-To: team@acme.com\r\nTo: {reply_address}\r\n\
         Subject: Re: Login fails\r\nMessage-ID: <genuine-1@acme.com>\r\n\r\nOn it.\r\n"
    );
    let accepted = sandbox.receive(genuine.as_bytes());
    assert_eq!(accepted["outcome"], "processed", "{accepted:#}");
}

#[test]
fn a_token_in_an_address_acts_only_for_its_owner() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    // Jake's new-issue address, copied from a Cc line by someone else.
    let raw = String::from_utf8(world.fixture("valid_new_issue.eml"))
        .expect("UTF-8 fixture")
        .replace(
            "From: Jake the Dog <jake@adventuretime.ooo>",
            "From: Mallory <mallory@evil.test>",
        );
    assert!(raw.contains("From: Mallory"), "fixture's From line changed");
    let refused = sandbox.receive(raw.as_bytes());
    assert_eq!(refused["error"], "user_not_found", "{refused:#}");
    let issues = sandbox.admin_json(&["issue", "list", PROJECT]);
    assert_eq!(issues, serde_json::json!([]), "{issues:#}");
}

#[test]
fn attacker_naming_a_tickets_message_id_gets_a_ticket_of_their_own() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let enabled = sandbox.admin_json(&["project", "service-desk", "enable", PROJECT]);
    let desk = str_field(&enabled["addresses"], "service_desk").to_owned();

    let customer = format!(
        "From: Carol <carol@customer.test>\r\nTo: {desk}\r\nSubject: Cannot sign in\r\n\
         Message-ID: <first@customer.test>\r\n\r\nPlease reset my password.\r\n"
    );
    let opened = sandbox.receive(customer.as_bytes());
    assert_eq!(opened["created"]["type"], "ticket", "{opened:#}");
    assert_eq!(opened["created"]["iid"], 1);

    let attacker = format!(
        "From: Mallory <mallory@evil.test>\r\nTo: {desk}\r\nSubject: Re: Cannot sign in\r\n\
         Message-ID: <reply@evil.test>\r\nIn-Reply-To: <first@customer.test>\r\n\
         References: <first@customer.test>\r\n\r\nPlease send it to me instead.\r\n"
    );
    let split = sandbox.receive(attacker.as_bytes());
    assert_eq!(split["outcome"], "processed", "{split:#}");
    assert_eq!(
        split["created"]["type"], "ticket",
        "a new ticket: {split:#}"
    );
    assert_eq!(split["created"]["iid"], 2);
    let first = sandbox.admin_json(&["issue", "show", PROJECT, "1"]);
    assert_eq!(
        first["email_participants"],
        serde_json::json!(["carol@customer.test"]),
        "{first:#}"
    );

    // The answer on the first ticket goes to Carol only.
    sandbox.admin_json(&[
        "issue",
        "comment",
        PROJECT,
        "1",
        "--as",
        "jake",
        "Your temporary password is hunter2.",
    ]);
    let recipients = outbox_recipients(&sandbox);
    assert!(
        recipients.iter().any(|r| r == "carol@customer.test"),
        "{recipients:?}"
    );
    let to_mallory: Vec<Value> = outbox(&sandbox)
        .into_iter()
        .filter(|mail| mail["recipients"].to_string().contains("mallory@evil.test"))
        .collect();
    assert!(
        to_mallory
            .iter()
            .all(|mail| mail["kind"] == "service_desk_thank_you"),
        "only her own ticket's thank-you: {to_mallory:#?}"
    );

    // Carol's own answer, threaded on her first mail, still joins her ticket.
    let carol_again = format!(
        "From: Carol <carol@customer.test>\r\nTo: {desk}\r\nSubject: Re: Cannot sign in\r\n\
         Message-ID: <second@customer.test>\r\nIn-Reply-To: <first@customer.test>\r\n\r\nThanks!\r\n"
    );
    let joined = sandbox.receive(carol_again.as_bytes());
    assert_eq!(joined["created"]["type"], "note", "{joined:#}");
    let _ = world;
}

#[test]
fn one_projects_service_desk_address_cannot_be_taken_by_another() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    Walkthrough::set_up(&sandbox);
    for path in ["acme/web", "zzz/evil"] {
        sandbox.admin_json(&["project", "add", path]);
        sandbox.admin_json(&["project", "service-desk", "enable", path]);
    }
    let set = |path: &str, address: &str| {
        sandbox.run(&[
            "admin",
            "project",
            "service-desk",
            "set",
            path,
            "--custom-email",
            address,
        ])
    };
    set("acme/web", "support@acme.com").expect_code(0);
    let refused = set("zzz/evil", "Support@ACME.com");
    assert_eq!(
        refused.one_line_error(1),
        "postern: Support@ACME.com is already the custom email address of another project."
    );
    let evil = sandbox.admin_json(&["project", "show", "zzz/evil"]);
    assert_eq!(
        evil["service_desk"]["custom_email"],
        Value::Null,
        "{evil:#}"
    );

    // Unverified, the address routes nothing, not even to the project that entered it.
    let customer = "From: Carol <carol@customer.test>\r\nTo: support@acme.com\r\n\
                    Subject: Help\r\nMessage-ID: <help@customer.test>\r\n\r\nHello\r\n";
    let refused = sandbox.receive(customer.as_bytes());
    assert_eq!(refused["outcome"], "rejected", "{refused:#}");
    assert_eq!(refused["created"], Value::Null);
    for path in ["acme/web", "zzz/evil"] {
        let issues = sandbox.admin_json(&["issue", "list", path]);
        assert_eq!(issues, serde_json::json!([]), "{path}: {issues:#}");
    }
    // And it cannot be switched on before its verification finished.
    let early = sandbox.run(&[
        "admin",
        "project",
        "service-desk",
        "set",
        "acme/web",
        "--custom-email-enabled",
        "true",
    ]);
    assert_eq!(
        early.one_line_error(1),
        "postern: The custom email address must be verified first."
    );
}

#[test]
fn merge_request_by_mail_never_moves_an_existing_or_protected_branch() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let shown = sandbox.admin_json(&["project", "show", PROJECT]);
    let repository = str_field(&shown, "repository").to_owned();
    let work = sandbox.path().join("work");
    std::fs::create_dir(&work).expect("work directory");
    sandbox.git(&work, &["init", "--quiet", "--initial-branch", "master"]);
    // The content the fixture's patch applies to.
    std::fs::write(
        work.join("README"),
        "Sample repo for testing gitlab features\n",
    )
    .expect("README");
    sandbox.git(&work, &["add", "README"]);
    sandbox.git(&work, &["commit", "--quiet", "-m", "Initial commit"]);
    sandbox.git(
        &work,
        &[
            "push",
            "--quiet",
            &repository,
            "HEAD:master",
            "HEAD:feature",
        ],
    );
    let heads = |sandbox: &Sandbox| sandbox.git(&work, &["ls-remote", "--heads", &repository]);
    let before = heads(&sandbox);

    let branches = sandbox.admin_json(&["project", "branch", "list", PROJECT]);
    assert_eq!(
        branches["protected_branches"],
        serde_json::json!(["master"])
    );

    let id = world.project_id.to_string();
    // Each mail its own Message-ID: the same one twice is a duplicate, whatever the subject.
    let sent = std::cell::Cell::new(0);
    let patch_mail = |subject: &str, target: Option<&str>| {
        sent.set(sent.get() + 1);
        // GitLab's fixture with `/target_branch with-codeowners`, or the one without.
        let fixture = match target {
            Some(_) => "merge_request_with_patch_and_target_branch.eml",
            None => "valid_merge_request_with_patch.eml",
        };
        let raw = fixture_with(
            fixture,
            &[("project_id", &id), ("auth_token", &world.token)],
        );
        let mut text = String::from_utf8(raw)
            .expect("UTF-8 fixture")
            .replace(
                "Subject: new-branch-with-a-patch",
                &format!("Subject: {subject}"),
            )
            .replace(
                "Message-ID: <F1F36291-728D-4E8F-AFEB-C398B8D9BB4E@gitlab.com>",
                &format!("Message-ID: <patch-{}@client.test>", sent.get()),
            );
        if let Some(target) = target {
            text = text.replace(
                "/target_branch with-codeowners",
                &format!("/target_branch {target}"),
            );
            assert!(text.contains(&format!("/target_branch {target}")));
        }
        text.into_bytes()
    };

    // The default branch, with another target: protected, refused before git runs.
    let onto_master = sandbox.receive(&patch_mail("master", Some("feature")));
    assert_eq!(onto_master["outcome"], "rejected", "{onto_master:#}");
    assert_eq!(onto_master["error"], "invalid_merge_request");
    assert!(
        str_field(&onto_master, "reason").contains("\"master\" is protected"),
        "{onto_master:#}"
    );
    // An existing branch that is not protected: still never moved.
    let onto_feature = sandbox.receive(&patch_mail("feature", None));
    assert_eq!(
        onto_feature["error"], "invalid_merge_request",
        "{onto_feature:#}"
    );
    assert!(
        str_field(&onto_feature, "reason").contains("\"feature\" already exists"),
        "{onto_feature:#}"
    );
    assert_eq!(heads(&sandbox), before, "no branch moved");

    // Unprotected, master is still an existing branch; protecting another works too.
    sandbox.admin_json(&["project", "branch", "unprotect", PROJECT, "master"]);
    let unprotected = sandbox.receive(&patch_mail("master", Some("feature")));
    assert!(
        str_field(&unprotected, "reason").contains("\"master\" already exists"),
        "{unprotected:#}"
    );
    let protected = sandbox.admin_json(&["project", "branch", "protect", PROJECT, "release"]);
    assert_eq!(
        protected["protected_branches"],
        serde_json::json!(["release"])
    );
    let bad = sandbox.run(&["admin", "project", "branch", "protect", PROJECT, "a..b"]);
    assert_eq!(
        bad.one_line_error(1),
        "postern: \"a..b\" is not a valid branch name"
    );
    assert_eq!(heads(&sandbox), before, "no branch moved");

    // A new branch is what a merge request by email is for.
    let fresh = sandbox.receive(&patch_mail("a-new-branch", None));
    assert_eq!(fresh["outcome"], "processed", "{fresh:#}");
    assert_eq!(int_field(&fresh["created"], "iid"), 1);
}
