//! Sender authentication through the binary: a private DNS server (Knot) publishes DKIM keys
//! and DMARC policies, the tests sign mail with them, and `postern receive` and the LMTP
//! listener act on mail only as the `sender_authentication` policy allows.

use postern_testkit::dkim::{Key, domain_records, ed25519_key};
use postern_testkit::dns::DnsServer;
use serde_json::Value;

use crate::serve::{free_port, lmtp, start, stop};
use crate::support::{Sandbox, str_field};

const SELECTOR: &str = "mail";

/// `acme.test` publishes `p=reject` and signs its mail; `loose.test` publishes `p=none`.
struct World {
    dns: DnsServer,
    acme_key: Key,
}

fn world() -> Option<World> {
    let (acme_key, acme_record) = ed25519_key();
    let (_, loose_record) = ed25519_key();
    let mut records = domain_records("acme.test", SELECTOR, &acme_record, "v=DMARC1; p=reject");
    records.extend(domain_records(
        "loose.test",
        SELECTOR,
        &loose_record,
        "v=DMARC1; p=none",
    ));
    let dns = DnsServer::start_or_skip("test.", &records)?;
    Some(World { dns, acme_key })
}

/// A sandbox verifying senders under `policy` against the world's DNS, with Jake
/// (jake@acme.test) and Lou (lou@loose.test) developers of land/ooo; returns it with Jake's and
/// Lou's new-issue addresses.
fn verifying_sandbox(world: &World, policy: &str, extra: &str) -> (Sandbox, String, String) {
    let yaml = format!(
        "incoming_email:\n  address: \"incoming+%{{key}}@postern.test\"\n\
         sender_authentication:\n  policy: {policy}\n  dns:\n    nameservers: [\"{}\"]\n    \
         timeout_ms: 500\n    attempts: 1\n{extra}",
        world.dns.addr()
    );
    let sandbox = Sandbox::with_config(&yaml).verifying_senders();
    sandbox.admin_json(&["project", "add", "land/ooo"]);
    let mut addresses = Vec::new();
    for (user, email) in [("jake", "jake@acme.test"), ("lou", "lou@loose.test")] {
        sandbox.admin_json(&["user", "add", user, "--email", email]);
        sandbox.admin_json(&["project", "member", "add", "land/ooo", user, "developer"]);
        let shown = sandbox.admin_json(&["project", "show", "land/ooo", "--user", user]);
        addresses.push(str_field(&shown["addresses"], "new_issue").to_owned());
    }
    let lou = addresses.pop().unwrap_or_default();
    let jake = addresses.pop().unwrap_or_default();
    (sandbox, jake, lou)
}

fn mail(from: &str, to: &str, subject: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Sun, 6 Dec 2026 10:00:00 +0000\r\n\
         Message-ID: <{}@client.test>\r\n\r\nHello.\r\n/label ~bug\r\n",
        subject.replace(' ', "-")
    )
}

fn issue_titles(sandbox: &Sandbox) -> Vec<String> {
    let listed = sandbox.admin_json(&["issue", "list", "land/ooo"]);
    listed
        .as_array()
        .map(|issues| {
            issues
                .iter()
                .filter_map(|issue| issue["title"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn under_dmarc_a_signed_mail_acts_and_a_forged_one_from_a_p_reject_domain_does_not() {
    let Some(world) = world() else { return };
    let (sandbox, jake, _) = verifying_sandbox(&world, "dmarc", "");

    let signed = world.acme_key.sign(
        &mail("jake@acme.test", &jake, "Signed"),
        "acme.test",
        SELECTOR,
    );
    let outcome = sandbox.receive(signed.as_bytes());
    assert_eq!(outcome["outcome"], "processed", "{outcome:#}");
    assert_eq!(outcome["authentication"]["dmarc"], "pass", "{outcome:#}");
    assert_eq!(outcome["authentication"]["act_as_user"], "allowed");

    // Anyone can write Jake's address in From; acme.test's DMARC says such mail is false.
    let forged = mail("jake@acme.test", &jake, "Forged");
    let outcome = sandbox.receive(forged.as_bytes());
    assert_eq!(outcome["outcome"], "rejected", "{outcome:#}");
    assert_eq!(outcome["error"], "sender_not_authenticated");
    assert_eq!(outcome["authentication"]["dmarc"], "fail");
    assert_eq!(
        outcome["reject_notice_queued"], false,
        "no notice to a forged sender"
    );
    assert_eq!(issue_titles(&sandbox), vec!["Signed".to_owned()]);
}

#[test]
fn under_dmarc_a_p_none_domain_is_believed_and_under_require_it_is_not() {
    let Some(world) = world() else { return };
    let (sandbox, _, lou) = verifying_sandbox(&world, "dmarc", "");
    let outcome = sandbox.receive(mail("lou@loose.test", &lou, "Unsigned").as_bytes());
    assert_eq!(outcome["outcome"], "processed", "{outcome:#}");
    assert_eq!(outcome["authentication"]["dmarc"], "fail");

    let (strict, _, lou) = verifying_sandbox(&world, "require", "");
    let outcome = strict.receive(mail("lou@loose.test", &lou, "Unsigned").as_bytes());
    assert_eq!(outcome["outcome"], "rejected", "{outcome:#}");
    assert_eq!(outcome["error"], "sender_not_authenticated");
    assert!(issue_titles(&strict).is_empty());
}

#[test]
fn a_trusted_mtas_authentication_results_count_and_anyone_elses_do_not() {
    let Some(world) = world() else { return };
    let extra = "  trusted_authserv_ids: [\"mx.postern.test\"]\n";
    let (sandbox, jake, _) = verifying_sandbox(&world, "dmarc", extra);
    // The MTA verified the mail before forwarding it (and its DKIM signature, say, was then
    // broken by a footer): its verdict above its own Received line is what counts.
    let stamped = |authserv_id: &str, subject: &str| {
        format!(
            "Authentication-Results: {authserv_id}; dkim=pass header.d=acme.test; \
             dmarc=pass header.from=acme.test\r\n\
             Received: from client.acme.test (client.acme.test [192.0.2.7]) by mx.postern.test \
             with ESMTPS id 1; Sun, 6 Dec 2026 10:00:01 +0000\r\n{}",
            mail("jake@acme.test", &jake, subject)
        )
    };
    let outcome = sandbox.receive(stamped("mx.postern.test", "Trusted").as_bytes());
    assert_eq!(outcome["outcome"], "processed", "{outcome:#}");
    assert_eq!(
        outcome["authentication"]["verdict"]["source"]["authserv_id"],
        "mx.postern.test"
    );

    let outcome = sandbox.receive(stamped("mx.evil.test", "Untrusted").as_bytes());
    assert_eq!(outcome["outcome"], "rejected", "{outcome:#}");
    assert_eq!(outcome["error"], "sender_not_authenticated");
}

#[test]
fn dns_down_is_a_temporary_failure_that_is_retried_not_a_pass() {
    let Some(mut world) = world() else { return };
    let (sandbox, jake, _) = verifying_sandbox(&world, "dmarc", "");
    world.dns.stop();
    let forged = mail("jake@acme.test", &jake, "While DNS is down");
    // Stored, and exit 75: an MTA piping the mail tries again later, as the queue does.
    let run = sandbox.run_with_stdin(&["receive", "-"], forged.as_bytes());
    run.expect_code(75);
    let outcome: Value = serde_json::from_str(&run.stdout).expect("the outcome as JSON");
    assert_eq!(outcome["outcome"], "queued", "{outcome:#}");
    assert!(str_field(&outcome, "reason").contains("DNS"), "{outcome:#}");
    assert_eq!(outcome["error"], "temporary_failure");
    assert!(issue_titles(&sandbox).is_empty());
}

#[test]
fn over_lmtp_a_forged_mail_is_accepted_stored_and_refused_and_a_signed_one_acts() {
    let Some(world) = world() else { return };
    let port = free_port();
    let extra =
        format!("listener:\n  listen: \"127.0.0.1:{port}\"\nweb:\n  listen: \"127.0.0.1:0\"\n");
    let (sandbox, jake, _) = verifying_sandbox(&world, "dmarc", &extra);
    let child = start(&sandbox);
    let signed = world.acme_key.sign(
        &mail("jake@acme.test", &jake, "By LMTP"),
        "acme.test",
        SELECTOR,
    );
    for message in [signed, mail("jake@acme.test", &jake, "Forged by LMTP")] {
        let replies = lmtp(port, &jake, &message);
        assert!(
            replies.last().is_some_and(|r| r.starts_with("250")),
            "{replies:?}"
        );
    }
    assert!(stop(child).success());
    assert_eq!(issue_titles(&sandbox), vec!["By LMTP".to_owned()]);
    let listed: Value = sandbox.admin_json(&["message", "list", "--state", "rejected"]);
    let text = listed.to_string();
    assert!(text.contains("sender_not_authenticated"), "{listed:#}");
}

#[test]
fn inspect_prints_the_verdict_processing_would_act_on() {
    let Some(world) = world() else { return };
    let (sandbox, jake, _) = verifying_sandbox(&world, "dmarc", "");
    let forged = mail("jake@acme.test", &jake, "Inspected");
    let value = sandbox
        .run_with_stdin(&["inspect", "-"], forged.as_bytes())
        .json();
    assert_eq!(value["authentication"]["policy"], "dmarc", "{value:#}");
    assert_eq!(value["authentication"]["dmarc"], "fail");
    assert_eq!(value["authentication"]["act_as_user"], "refused");
    assert_eq!(value["authentication"]["auto_reply"], false);
    let reasons = value["authentication"]["verdict"]["reasons"].to_string();
    assert!(reasons.contains("acme.test"), "{reasons}");
}

#[test]
fn a_project_requiring_authentication_refuses_what_another_project_takes_until_it_relents() {
    let Some(world) = world() else { return };
    let (sandbox, _, lou_ooo) = verifying_sandbox(&world, "dmarc", "");
    sandbox.admin_json(&["project", "add", "land/vault"]);
    sandbox.admin_json(&["project", "member", "add", "land/vault", "lou", "developer"]);
    let shown = sandbox.admin_json(&["project", "show", "land/vault", "--user", "lou"]);
    let lou_vault = str_field(&shown["addresses"], "new_issue").to_owned();
    let set = sandbox.admin_json(&[
        "project",
        "sender-auth",
        "land/vault",
        "--policy",
        "require",
    ]);
    assert_eq!(
        set["sender_authentication"]["effective"], "require",
        "{set:#}"
    );
    assert_eq!(set["sender_authentication"]["warning"], Value::Null);

    // loose.test publishes p=none: unsigned mail from it passes `dmarc`, not `require`.
    let outcome = sandbox.receive(mail("lou@loose.test", &lou_ooo, "Loose to ooo").as_bytes());
    assert_eq!(outcome["outcome"], "processed", "{outcome:#}");
    assert_eq!(outcome["authentication"]["policy"], "dmarc");
    let outcome = sandbox.receive(mail("lou@loose.test", &lou_vault, "Loose to vault").as_bytes());
    assert_eq!(outcome["outcome"], "rejected", "{outcome:#}");
    assert_eq!(outcome["error"], "sender_not_authenticated");
    assert_eq!(outcome["authentication"]["policy"], "require");
    assert_eq!(outcome["authentication"]["auto_reply"], false);
    assert_eq!(outcome["reject_notice_queued"], false);
    let vault = sandbox.admin_json(&["issue", "list", "land/vault"]);
    assert_eq!(vault.as_array().map(Vec::len), Some(0), "{vault:#}");

    // The policy is read when the mail is processed: the next mail follows the change.
    sandbox.admin_json(&[
        "project",
        "sender-auth",
        "land/vault",
        "--policy",
        "default",
    ]);
    let outcome = sandbox.receive(mail("lou@loose.test", &lou_vault, "Loose again").as_bytes());
    assert_eq!(outcome["outcome"], "processed", "{outcome:#}");
    assert_eq!(outcome["authentication"]["policy"], "dmarc");
    let vault = sandbox.admin_json(&["issue", "list", "land/vault"]);
    assert_eq!(vault[0]["title"], "Loose again", "{vault:#}");
}

#[test]
fn a_project_policy_under_an_instance_that_verifies_nothing_is_reported_not_applied() {
    // Without `verifying_senders` the sandbox's instance policy is `off`.
    let sandbox = Sandbox::new();
    sandbox.admin_json(&["project", "add", "land/vault"]);
    let set = sandbox.admin_json(&[
        "project",
        "sender-auth",
        "land/vault",
        "--policy",
        "require",
    ]);
    let view = &set["sender_authentication"];
    assert_eq!(view["project"], "require", "{set:#}");
    assert_eq!(view["effective"], "off", "{set:#}");
    assert!(
        str_field(view, "warning").contains("verifies no senders"),
        "{set:#}"
    );
    let run = sandbox.run(&["check"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("WARN sender_authentication (land/vault): the project asks for"),
        "{}",
        run.all_output()
    );
}

/// How many Service Desk thank-yous are in the outbox.
fn thank_yous(sandbox: &Sandbox) -> usize {
    let listed = sandbox.admin_json(&["outbox", "list"]);
    listed.as_array().map_or(0, |mails| {
        mails
            .iter()
            .filter(|mail| mail["kind"] == "service_desk_thank_you")
            .count()
    })
}

#[test]
fn a_project_requiring_authentication_sends_no_thank_you_to_an_unauthenticated_customer() {
    let Some(world) = world() else { return };
    let (sandbox, _, _) = verifying_sandbox(&world, "dmarc", "");
    sandbox.admin_json(&["project", "service-desk", "enable", "land/ooo"]);
    let shown = sandbox.admin_json(&["project", "show", "land/ooo"]);
    let desk = str_field(&shown["addresses"], "service_desk").to_owned();
    sandbox.admin_json(&["project", "sender-auth", "land/ooo", "--policy", "require"]);

    // A ticket all the same (Service Desk mail acts as no user), but no answer to a From
    // the project's policy does not vouch for.
    let outcome = sandbox.receive(mail("cat@loose.test", &desk, "Ticket one").as_bytes());
    assert_eq!(outcome["outcome"], "processed", "{outcome:#}");
    assert_eq!(outcome["authentication"]["policy"], "require");
    assert_eq!(outcome["authentication"]["auto_reply"], false);
    assert_eq!(thank_yous(&sandbox), 0);

    sandbox.admin_json(&["project", "sender-auth", "land/ooo", "--policy", "default"]);
    let outcome = sandbox.receive(mail("cat@loose.test", &desk, "Ticket two").as_bytes());
    assert_eq!(outcome["outcome"], "processed", "{outcome:#}");
    assert_eq!(outcome["authentication"]["auto_reply"], true);
    assert_eq!(thank_yous(&sandbox), 1);
}
