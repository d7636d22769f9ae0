//! The command line applies the tracker's rules exactly as the web UI and the API do (they are
//! postern-core's, and only core writes them): a project keeps an owner, the Support Bot is no
//! member, a new custom address starts unverified and is no other project's, and a project is
//! created with a validated path, its git repository and its owner. Accounts follow the
//! administration page's rules too.

use serde_json::Value;

use crate::support::{Sandbox, WALKTHROUGH_CONFIG, Walkthrough, str_field};

const PROJECT: &str = "gitlabhq/gitlabhq";

/// `postern admin args…` expected to be refused: exit 1 and its one line, prefix removed.
#[track_caller]
fn refusal(sandbox: &Sandbox, args: &[&str]) -> String {
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    let run = sandbox.run(&all);
    let line = run.one_line_error(1);
    line.strip_prefix("postern: ").unwrap_or(line).to_owned()
}

/// `(username, role)` of every member of `path`.
fn members(sandbox: &Sandbox, path: &str) -> Vec<(String, String)> {
    let shown = sandbox.admin_json(&["project", "show", path]);
    shown["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            (
                str_field(m, "username").to_owned(),
                str_field(m, "role").to_owned(),
            )
        })
        .collect()
}

fn pair(user: &str, role: &str) -> (String, String) {
    (user.to_owned(), role.to_owned())
}

/// Creates the Support Bot as Service Desk does: a customer's first mail to the project.
fn support_bot_exists(sandbox: &Sandbox, world: &Walkthrough) {
    sandbox.admin_json(&["project", "service-desk", "enable", PROJECT]);
    let desk = format!(
        "incoming+gitlabhq-gitlabhq-{}-issue-@appmail.adventuretime.ooo",
        world.project_id
    );
    let customer = format!(
        "From: Carol <carol@customer.test>\r\nTo: {desk}\r\nSubject: Help\r\n\
         Message-ID: <help@customer.test>\r\n\r\nHello\r\n"
    );
    let ticket = sandbox.receive(customer.as_bytes());
    assert_eq!(ticket["created"]["type"], "ticket", "{ticket:#}");
}

#[test]
fn members_at_the_command_line_keep_an_owner_and_never_the_support_bot() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    sandbox.admin_json(&["user", "add", "finn", "--email", "finn@adventuretime.ooo"]);
    sandbox.admin_json(&["project", "member", "add", PROJECT, "jake", "owner"]);

    // The last owner can be neither demoted nor removed.
    let demoted = refusal(
        &sandbox,
        &["project", "member", "add", PROJECT, "jake", "developer"],
    );
    assert_eq!(demoted, "A project needs at least one owner.");
    let removed = refusal(&sandbox, &["project", "member", "remove", PROJECT, "jake"]);
    assert_eq!(removed, "A project needs at least one owner.");
    assert_eq!(members(&sandbox, PROJECT), [pair("jake", "owner")]);

    // With a second owner, the first may go.
    sandbox.admin_json(&["project", "member", "add", PROJECT, "finn", "owner"]);
    sandbox.admin_json(&["project", "member", "remove", PROJECT, "jake"]);
    assert_eq!(members(&sandbox, PROJECT), [pair("finn", "owner")]);
    let not_member = refusal(&sandbox, &["project", "member", "remove", PROJECT, "jake"]);
    assert_eq!(not_member, format!("jake is not a member of {PROJECT}"));

    // The Support Bot answers tickets; it is given no role.
    support_bot_exists(&sandbox, &world);
    for role in ["reporter", "owner"] {
        let bot = refusal(
            &sandbox,
            &["project", "member", "add", PROJECT, "support-bot", role],
        );
        assert_eq!(bot, "The Support Bot is not a member.");
    }
    let bot_owner = refusal(
        &sandbox,
        &["project", "add", "bots/desk", "--owner", "support-bot"],
    );
    assert_eq!(bot_owner, "The Support Bot cannot own a project.");
    assert_eq!(members(&sandbox, PROJECT), [pair("finn", "owner")]);
}

/// Sets `path`'s Service Desk options at the command line (JSON output).
fn set(sandbox: &Sandbox, path: &str, options: &[&str]) -> crate::support::Run {
    let mut all = vec!["admin", "project", "service-desk", "set", path, "--json"];
    all.extend_from_slice(options);
    sandbox.run(&all)
}

#[test]
fn a_new_custom_email_at_the_command_line_starts_unverified_and_must_be_free() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    Walkthrough::set_up(&sandbox);
    sandbox.admin_json(&["project", "service-desk", "enable", PROJECT]);
    set(&sandbox, PROJECT, &["--custom-email", "support@acme.com"]).expect_code(0);

    // Verified the way the README says: the mail to +verify comes back through postern.
    sandbox.admin_json(&["project", "service-desk", "verify", PROJECT, "--by", "jake"]);
    let outbox = sandbox.admin_json(&["outbox", "list"]);
    let verification = outbox
        .as_array()
        .and_then(|mails| {
            mails
                .iter()
                .find(|m| m["kind"] == "custom_email_verification")
        })
        .unwrap_or_else(|| panic!("no verification mail: {outbox:#}"));
    let id = verification["id"].to_string();
    let raw = sandbox.run(&["admin", "outbox", "show", &id, "--raw"]);
    raw.expect_code(0);
    let verified = sandbox.receive(&raw.stdout_bytes);
    assert_eq!(verified["outcome"], "processed", "{verified:#}");
    let enabled = set(&sandbox, PROJECT, &["--custom-email-enabled", "true"]);
    let enabled = enabled.json();
    let desk = &enabled["service_desk"];
    assert_eq!(
        desk["custom_email_verification_state"], "finished",
        "{desk:#}"
    );
    assert_eq!(desk["custom_email_enabled"], true);

    // A new address inherits nothing of the old one's verification.
    let changed = set(&sandbox, PROJECT, &["--custom-email", "help@acme.com"]).json();
    let desk = &changed["service_desk"];
    assert_eq!(desk["custom_email"], "help@acme.com", "{desk:#}");
    assert_eq!(desk["custom_email_enabled"], false, "{desk:#}");
    assert_eq!(desk["custom_email_verification_state"], Value::Null);
    assert_eq!(desk["custom_email_verification_error"], Value::Null);
    let early = set(&sandbox, PROJECT, &["--custom-email-enabled", "true"]);
    assert_eq!(
        early.one_line_error(1),
        "postern: The custom email address must be verified first."
    );
    // The old address is free again; the new one is the project's only.
    sandbox.admin_json(&["project", "add", "zzz/other"]);
    let taken = set(&sandbox, "zzz/other", &["--custom-email", "HELP@acme.com"]);
    assert_eq!(
        taken.one_line_error(1),
        "postern: HELP@acme.com is already the custom email address of another project."
    );
    set(
        &sandbox,
        "zzz/other",
        &["--custom-email", "support@acme.com"],
    )
    .expect_code(0);
    let other = sandbox.admin_json(&["project", "show", "zzz/other"]);
    assert_eq!(other["service_desk"]["custom_email"], "support@acme.com");
    assert_eq!(other["service_desk"]["custom_email_enabled"], false);
}

#[test]
fn a_project_added_at_the_command_line_has_its_repository_and_owner() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    sandbox.admin_json(&["user", "add", "jake", "--email", "jake@adventuretime.ooo"]);
    let created = sandbox.admin_json(&["project", "add", "team/desk", "--owner", "jake"]);
    assert_eq!(created["full_path"], "team/desk", "{created:#}");
    assert_eq!(created["name"], "desk");
    assert_eq!(created["default_branch"], "main");
    let repository = std::path::PathBuf::from(str_field(&created, "repository"));
    assert!(repository.is_absolute(), "{created:#}");
    let head = std::fs::read_to_string(repository.join("HEAD"))
        .unwrap_or_else(|e| panic!("{} is no git repository: {e}", repository.display()));
    assert!(head.starts_with("ref: refs/heads/"), "{head}");
    assert_eq!(members(&sandbox, "team/desk"), [pair("jake", "owner")]);
    let branches = sandbox.admin_json(&["project", "branch", "list", "team/desk"]);
    assert_eq!(branches["protected_branches"], serde_json::json!(["main"]));

    // Without --owner: no member yet.
    sandbox.admin_json(&["project", "add", "team/ownerless"]);
    assert_eq!(members(&sandbox, "team/ownerless"), []);

    // The path rule of the web UI and the API; nothing is created on a refusal.
    for bad in [
        "desk",
        "team/.hidden",
        "team/-dash",
        "team/desk.git",
        "te am/desk",
    ] {
        let refused = refusal(&sandbox, &["project", "add", bad, "--owner", "jake"]);
        assert!(refused.contains("namespace/project"), "{bad}: {refused}");
    }
    let taken = refusal(&sandbox, &["project", "add", "Team/Desk"]);
    assert_eq!(taken, "A project with the path Team/Desk exists.");
    let bad_branch = refusal(
        &sandbox,
        &["project", "add", "team/other", "--default-branch", "a..b"],
    );
    assert_eq!(bad_branch, "\"a..b\" is not a valid branch name");
    let listed = sandbox.admin_json(&["project", "list"]);
    let paths: Vec<&str> = listed
        .as_array()
        .map(|all| all.iter().map(|p| str_field(p, "full_path")).collect())
        .unwrap_or_default();
    assert_eq!(paths, ["team/desk", "team/ownerless"]);
}

#[test]
fn accounts_at_the_command_line_follow_the_rules_of_the_administration_page() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    sandbox.admin_json(&["user", "add", "jake", "--email", "jake@adventuretime.ooo"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["user", "add", "Support-Bot", "--email", "bot@example.com"],
            "That username is reserved.",
        ),
        (
            &["user", "add", "finn", "--email", "not-an-address"],
            "That is not an email address.",
        ),
        (
            &["user", "add", " ", "--email", "finn@example.com"],
            "Username and email are required.",
        ),
        (
            &["user", "add", "JAKE", "--email", "other@example.com"],
            "That username or email is taken.",
        ),
        (
            &["user", "email", "add", "jake", "@example.com"],
            "That is not an email address.",
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(refusal(&sandbox, args), *expected, "{args:?}");
    }
    sandbox.admin_json(&["user", "add", "finn", "--email", "finn@example.com"]);
    let taken = refusal(
        &sandbox,
        &["user", "email", "add", "jake", "FINN@example.com"],
    );
    assert_eq!(taken, "That address belongs to someone.");
    let listed = sandbox.admin_json(&["user", "list"]);
    let names: Vec<&str> = listed
        .as_array()
        .map(|all| all.iter().map(|u| str_field(u, "username")).collect())
        .unwrap_or_default();
    assert_eq!(names, ["jake", "finn"]);
}
