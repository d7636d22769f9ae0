//! Who may be told, who may answer, and how much postern answers, through the binary: the
//! regressions of "private content to people who may not read it" and "backscatter".
//!
//! - `/assign @mallory` by mail on a private project's issue, mallory not a member: not
//!   assigned, and no mail of the issue ever goes to mallory.
//! - A member removed from the project: their old reply key is refused (`user_not_authorized`)
//!   and no more mail reaches them.
//! - Fifty forged mails to a Service Desk address naming one sender get at most
//!   `auto_mail_per_recipient` thank-yous; `auto_mail_per_hour` holds across senders.

use postern_mail::Email;
use serde_json::Value;

use crate::support::{Sandbox, WALKTHROUGH_CONFIG, Walkthrough, str_field};

/// Every outbox entry: (id, kind, recipients).
fn outbox(sandbox: &Sandbox) -> Vec<(i64, String, Vec<String>)> {
    let listed = sandbox.admin_json(&["outbox", "list", "--limit", "1000"]);
    listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|mail| {
            let recipients = mail["recipients"]
                .as_array()
                .expect("recipients")
                .iter()
                .map(|to| to.as_str().expect("an address").to_owned())
                .collect();
            (
                mail["id"].as_i64().expect("id"),
                str_field(mail, "kind").to_owned(),
                recipients,
            )
        })
        .collect()
}

/// The mail queued for `address` of `kind`, newest first.
fn mail_to(sandbox: &Sandbox, kind: &str, address: &str) -> Vec<i64> {
    outbox(sandbox)
        .into_iter()
        .filter(|(_, k, to)| k == kind && to.iter().any(|t| t == address))
        .map(|(id, ..)| id)
        .collect()
}

/// A mail from `from` to `to` with `body`.
fn mail(from: &str, to: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}@client.example>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn add_user(sandbox: &Sandbox, name: &str, email: &str) -> Value {
    sandbox.admin_json(&["user", "add", name, "--email", email])
}

/// The walkthrough's project (private), jake a developer, plus finn (developer) and mallory
/// (no member). Returns jake's new-issue address.
fn private_project_world(sandbox: &Sandbox) -> String {
    Walkthrough::set_up(sandbox);
    add_user(sandbox, "finn", "finn@adventuretime.ooo");
    add_user(sandbox, "mallory", "mallory@evil.example");
    sandbox.admin_json(&[
        "project",
        "member",
        "add",
        "gitlabhq/gitlabhq",
        "finn",
        "developer",
    ]);
    let shown = sandbox.admin_json(&["project", "show", "gitlabhq/gitlabhq", "--user", "jake"]);
    str_field(&shown["addresses"], "new_issue").to_owned()
}

/// Jake's address for comments on issue `iid` (his token, the project, the issue).
fn comment_address(new_issue: &str, iid: i64) -> String {
    new_issue.replacen("-issue@", &format!("-issue-{iid}@"), 1)
}

#[test]
fn assign_of_a_non_member_by_mail_is_not_applied_and_they_never_hear_of_the_issue() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let new_issue = private_project_world(&sandbox);
    let opened = sandbox.receive(&mail(
        "jake@adventuretime.ooo",
        &new_issue,
        "Secret roadmap",
        "a1",
        "Plans.\r\n\r\n/assign @mallory @finn",
    ));
    assert_eq!(str_field(&opened, "outcome"), "processed", "{opened:#}");
    let issue = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", "1"]);
    let assignees = issue["assignee_ids"].as_array().expect("assignees").len();
    assert_eq!(assignees, 1, "finn only: {issue:#}");

    // Again in a comment, then two more comments: mallory is never assigned, never mailed.
    let commented = sandbox.receive(&mail(
        "jake@adventuretime.ooo",
        &comment_address(&new_issue, 1),
        "Re: Secret roadmap",
        "a2",
        "Mallory, have a look.\r\n\r\n/assign @mallory",
    ));
    assert_eq!(
        str_field(&commented, "outcome"),
        "processed",
        "{commented:#}"
    );
    sandbox.receive(&mail(
        "jake@adventuretime.ooo",
        &comment_address(&new_issue, 1),
        "Re: Secret roadmap",
        "a3",
        "The password is hunter2.",
    ));
    let issue = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", "1"]);
    assert_eq!(issue["assignee_ids"].as_array().map(Vec::len), Some(1));
    assert!(
        outbox(&sandbox)
            .iter()
            .all(|(_, _, to)| !to.contains(&"mallory@evil.example".to_owned())),
        "{:?}",
        outbox(&sandbox)
    );
    assert_eq!(
        mail_to(&sandbox, "notification", "finn@adventuretime.ooo").len(),
        3,
        "finn, assigned, hears of all three"
    );
}

#[test]
fn a_removed_members_old_reply_key_is_refused_and_they_get_no_more_mail() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let new_issue = private_project_world(&sandbox);
    sandbox.receive(&mail(
        "jake@adventuretime.ooo",
        &new_issue,
        "Release plan",
        "r1",
        "Dates.\r\n\r\n/assign @finn",
    ));
    let to_finn = mail_to(&sandbox, "notification", "finn@adventuretime.ooo");
    assert_eq!(to_finn.len(), 1);
    let raw = sandbox
        .run(&["admin", "outbox", "show", &to_finn[0].to_string(), "--raw"])
        .stdout_bytes;
    let notification = Email::parse(&raw);
    let reply_to = notification
        .reply_to()
        .into_iter()
        .next()
        .expect("Reply-To");

    // While a member, finn's answer is a comment.
    let answered = sandbox.receive(&mail(
        "finn@adventuretime.ooo",
        &reply_to,
        "Re: Release plan",
        "f1",
        "Works for me.",
    ));
    assert_eq!(str_field(&answered, "outcome"), "processed", "{answered:#}");

    let removed = sandbox.admin_json(&["project", "member", "remove", "gitlabhq/gitlabhq", "finn"]);
    assert_eq!(removed["removed"], true);
    let refused = sandbox.receive(&mail(
        "finn@adventuretime.ooo",
        &reply_to,
        "Re: Release plan",
        "f2",
        "One more thing.",
    ));
    assert_eq!(str_field(&refused, "outcome"), "rejected", "{refused:#}");
    assert_eq!(str_field(&refused, "error"), "user_not_authorized");
    assert_eq!(
        str_field(&refused, "reason"),
        "You are not allowed to perform this action. If you believe this is in error, contact a staff member."
    );
    let issue = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", "1"]);
    assert_eq!(
        issue["notes"].as_array().map(Vec::len),
        Some(1),
        "{issue:#}"
    );

    // Jake writes on: finn, still the assignee and a participant, gets nothing more.
    sandbox.receive(&mail(
        "jake@adventuretime.ooo",
        &comment_address(&new_issue, 1),
        "Re: Release plan",
        "r2",
        "Moved to Friday.",
    ));
    assert_eq!(
        mail_to(&sandbox, "notification", "finn@adventuretime.ooo"),
        to_finn,
        "no notification after the removal"
    );
    // Removing someone who is not a member says so.
    let again = sandbox.run(&[
        "admin",
        "project",
        "member",
        "remove",
        "gitlabhq/gitlabhq",
        "finn",
    ]);
    assert!(
        again.one_line_error(1).contains("not a member"),
        "{}",
        again.stderr
    );
}

/// The hour the limits count in, as postern counts it.
fn hour() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 3600)
        .unwrap_or(0)
}

#[test]
fn forged_service_desk_mail_gets_at_most_the_configured_thank_yous() {
    let sandbox = Sandbox::with_config(&format!(
        "{WALKTHROUGH_CONFIG}  auto_mail_per_recipient: 5\n  auto_mail_per_hour: 8\n"
    ));
    Walkthrough::set_up(&sandbox);
    sandbox.admin_json(&["project", "service-desk", "enable", "gitlabhq/gitlabhq"]);
    let shown = sandbox.admin_json(&["project", "show", "gitlabhq/gitlabhq"]);
    let desk = str_field(&shown["addresses"], "service_desk").to_owned();
    let started = hour();

    // Fifty forged mails naming one victim: fifty tickets, five thank-yous.
    for n in 0..50 {
        let outcome = sandbox.receive(&mail(
            "victim@innocent.example",
            &desk,
            "You won! Claim at http://evil.example/",
            &format!("forged-{n}"),
            "Click.",
        ));
        assert_eq!(str_field(&outcome, "outcome"), "processed", "{outcome:#}");
    }
    let thanks = |address: &str| mail_to(&sandbox, "service_desk_thank_you", address).len();
    let same_hour = hour() == started;
    let victim = thanks("victim@innocent.example");
    assert!(
        victim == 5 || (!same_hour && victim <= 10),
        "{victim} thank-yous to one address"
    );

    // Ten more senders: the hour's cap of 8 holds across them.
    for n in 0..10 {
        sandbox.receive(&mail(
            &format!("sender{n}@forged.example"),
            &desk,
            "Hello",
            &format!("spread-{n}"),
            "Hi.",
        ));
    }
    let all = outbox(&sandbox)
        .iter()
        .filter(|(_, kind, _)| kind == "service_desk_thank_you")
        .count();
    if hour() == started {
        assert_eq!(all, 8, "the hourly cap");
    } else {
        assert!(all <= 16, "{all}");
    }
    let tickets = sandbox.admin_json(&["issue", "list", "gitlabhq/gitlabhq"]);
    assert_eq!(
        tickets.as_array().map(Vec::len),
        Some(60),
        "every ticket is kept"
    );
}
