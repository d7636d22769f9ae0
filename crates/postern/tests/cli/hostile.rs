//! Hostile mail through the binary: a message built to stall or sink postern ends in bounded
//! work with a clear outcome, is refused permanently (exit 0, never 75) when it would fail the
//! same way again, and never holds up the ordinary messages behind it.

use std::time::{Duration, Instant};

use postern_testkit::mailserver::MailServer;
use serde_json::Value;

use crate::sources::{
    BOUND, assert_exactly_once, config, issue_titles, preload_messages, project, runtime, serve,
    serve_log, stop,
};
use crate::support::{Sandbox, WALKTHROUGH_CONFIG, Walkthrough, str_field};

/// A new-issue mail whose Message-ID is `message_id`.
fn new_issue_with_id(to: &str, title: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: jake@example.com\r\nTo: {to}\r\nSubject: {title}\r\nMessage-ID: <{message_id}>\r\n\r\nBody of {title}.\r\n"
    )
    .into_bytes()
}

/// Message-IDs no index entry can hold, with control characters, and ordinary ones, mixed in
/// one folder: every message becomes exactly one issue within one watcher round, and the folder
/// is emptied.
fn poison_message_ids_do_not_hold_up_the_folder(store: &str) {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let rt = runtime();
    let sandbox = Sandbox::with_config(&config(&server, "poison", store));
    let to = project(&sandbox);
    let sent = rt.block_on(preload_messages(&server, "poison", 12, |title| {
        let n: usize = title
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let message_id = match n % 3 {
            // Longer than PostgreSQL's largest index entry (about 2.7 KB).
            1 => format!("{}{title}@example.test", "x".repeat(6000)),
            // Control characters (tab, escape, DEL) inside.
            2 => format!("{title}\t\x1b[31m\x7f@example.test"),
            _ => format!("{title}@example.test"),
        };
        new_issue_with_id(&to, title, &message_id)
    }));
    let child = serve(&sandbox);
    let deadline = Instant::now() + BOUND;
    let titles = loop {
        let titles = issue_titles(&sandbox);
        if titles.values().sum::<usize>() >= sent.len() {
            break titles;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} issues; serve.log ends:\n{}",
            titles.values().sum::<usize>(),
            sent.len(),
            serve_log(&sandbox)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_exactly_once(&titles, &sent);
    let listed = sandbox.admin_json(&["message", "list", "--state", "quarantined"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed:#}");
    while rt
        .block_on(crate::sources::folder_state(&server, "poison"))
        .0
        != 0
    {
        assert!(
            Instant::now() < deadline,
            "messages were left in the folder"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);
}

#[test]
fn poison_message_ids_over_imap_on_sqlite() {
    poison_message_ids_do_not_hold_up_the_folder("");
}

#[test]
fn poison_message_ids_over_imap_on_postgresql() {
    let rt = runtime();
    let Some(db) = rt.block_on(postern_testkit::TestDb::postgres()) else {
        return;
    };
    poison_message_ids_do_not_hold_up_the_folder(&format!("store:\n  url: \"{}\"\n", db.url));
}

/// `postern receive` with `raw`: exits 0 (a retry would fail the same way) and prints JSON.
fn receive_final(sandbox: &Sandbox, raw: &[u8]) -> Value {
    sandbox.run_with_stdin(&["receive", "-"], raw).json()
}

#[test]
fn oversized_mail_from_a_pipe_is_refused_as_too_large_with_a_notice() {
    let sandbox = Sandbox::with_config(&format!(
        "{WALKTHROUGH_CONFIG}limits:\n  max_message_bytes: 4096\n"
    ));
    let world = Walkthrough::set_up(&sandbox);
    let mut mail = world.fixture("valid_new_issue.eml");
    mail.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let outcome = receive_final(&sandbox, &mail);
    assert_eq!(outcome["outcome"], "rejected", "{outcome:#}");
    assert_eq!(outcome["error"], "email_too_large");
    assert_eq!(outcome["reject_notice_queued"], true);
    let id = outcome["inbound_id"].to_string();
    let shown = sandbox.admin_json(&["message", "show", &id]);
    assert_eq!(
        shown["declared_size"].as_u64(),
        Some(mail.len() as u64),
        "{shown:#}"
    );
    // Only the header block was kept.
    let raw = sandbox.run(&["admin", "message", "show", &id, "--raw"]);
    assert!(raw.stdout_bytes.len() < 4096, "{}", raw.stdout_bytes.len());
}

#[test]
fn attachment_floods_are_refused_with_a_notice_naming_the_limit() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let base = String::from_utf8(world.fixture("valid_new_issue.eml")).expect("UTF-8 fixture");
    let (headers, _) = base.split_once("\n\n").expect("a header block");
    let headers: String = headers
        .lines()
        .filter(|line| {
            !line.starts_with("Content-Type")
                && !line.starts_with(' ')
                && !line.starts_with("Content-Transfer")
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    let mut mail = format!(
        "{headers}\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\r\nSee attached.\r\n"
    );
    for n in 0..5000 {
        mail.push_str(&format!(
            "--b\r\nContent-Disposition: attachment; filename=\"f{n}.txt\"\r\n\r\nx\r\n"
        ));
    }
    mail.push_str("--b--\r\n");
    let outcome = receive_final(&sandbox, mail.as_bytes());
    assert_eq!(outcome["outcome"], "rejected", "{outcome:#}");
    assert_eq!(outcome["error"], "limit_exceeded");
    assert!(
        str_field(&outcome, "reason").contains("5000 attachments"),
        "{outcome:#}"
    );
    assert_eq!(outcome["reject_notice_queued"], true);
    assert!(
        !sandbox.path().join("postern-data/uploads").exists()
            || std::fs::read_dir(sandbox.path().join("postern-data/uploads"))
                .map(|entries| entries.count())
                .unwrap_or(0)
                == 0,
        "nothing was written"
    );
}

#[test]
fn an_overlong_attachment_name_is_processed_not_retried() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let base = String::from_utf8(world.fixture("valid_new_issue.eml")).expect("UTF-8 fixture");
    let (headers, _) = base.split_once("\n\n").expect("a header block");
    let headers: String = headers
        .lines()
        .filter(|line| {
            !line.starts_with("Content-Type")
                && !line.starts_with(' ')
                && !line.starts_with("Content-Transfer")
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    let name = format!("{}.pdf", "n".repeat(300));
    let mail = format!(
        "{headers}\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\r\nSee attached.\r\n\
         --b\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n%PDF\r\n--b--\r\n"
    );
    let outcome = receive_final(&sandbox, mail.as_bytes());
    assert_eq!(outcome["outcome"], "processed", "{outcome:#}");
}

/// A new-issue mail from jake (a developer, so quick actions are looked for) whose body is
/// `lines` lines of `/label ~a`: every line a command.
fn quick_action_flood(world: &Walkthrough, bytes: usize) -> Vec<u8> {
    let base = String::from_utf8(world.fixture("valid_new_issue.eml")).expect("UTF-8 fixture");
    let (headers, _) = base.split_once("\n\n").expect("a header block");
    let line = "/label ~a\r\n";
    let mut mail = format!("{}\r\n\r\nFlooded.\r\n", headers.replace('\n', "\r\n"));
    mail.push_str(&line.repeat(bytes / line.len()));
    mail.into_bytes()
}

/// 5 MB of quick actions (the linear scanner's worst case: every line a command) ends in
/// bounded time with a notice naming the limit, exit 0 (never retried).
#[test]
fn a_quick_action_flood_of_5_mb_is_refused_at_once() {
    let sandbox = Sandbox::with_config(WALKTHROUGH_CONFIG);
    let world = Walkthrough::set_up(&sandbox);
    let mail = quick_action_flood(&world, 5 * 1024 * 1024);
    let started = Instant::now();
    let outcome = receive_final(&sandbox, &mail);
    let took = started.elapsed();
    eprintln!("5 MB quick-action flood: {took:?}");
    assert_eq!(outcome["outcome"], "rejected", "{outcome:#}");
    assert_eq!(outcome["error"], "limit_exceeded");
    assert!(
        str_field(&outcome, "reason").contains("quick actions"),
        "{outcome:#}"
    );
    assert_eq!(outcome["reject_notice_queued"], true);
    // The target is 1 s; the bound is generous because this is a shared test machine.
    assert!(took < Duration::from_secs(30), "{took:?}");
}

/// While a hostile message (5 MB of quick actions) is being processed, an ordinary message
/// delivered over a second LMTP connection is answered without waiting for it: slow work runs
/// outside the store's write transaction.
#[test]
fn an_ordinary_delivery_is_answered_while_a_hostile_one_is_processed() {
    let port = crate::serve::free_port();
    let sandbox = Sandbox::with_config(&format!(
        "{WALKTHROUGH_CONFIG}listener:\n  listen: \"127.0.0.1:{port}\"\nweb:\n  listen: \"127.0.0.1:0\"\n"
    ));
    let world = Walkthrough::set_up(&sandbox);
    let mut serving = KilledOnDrop(Some(crate::serve::start(&sandbox)));
    let to = format!(
        "incoming+gitlabhq-gitlabhq-{}-{}-issue@appmail.adventuretime.ooo",
        world.project_id, world.token
    );
    let hostile = String::from_utf8(quick_action_flood(&world, 5 * 1024 * 1024)).expect("ASCII");
    let (sent, hostile_sent) = std::sync::mpsc::channel();
    let hostile_to = to.clone();
    let hostile_delivery = std::thread::spawn(move || {
        let replies = crate::serve::lmtp_signalling(port, &hostile_to, &hostile, move || {
            let _ = sent.send(Instant::now());
        });
        (replies, Instant::now())
    });
    let hostile_data_end = hostile_sent
        .recv_timeout(BOUND)
        .expect("the hostile message was sent");
    let ordinary = format!(
        "From: jake@adventuretime.ooo\r\nTo: {to}\r\nSubject: Ordinary\r\nMessage-ID: <ordinary@x>\r\n\r\nHello.\r\n"
    );
    let started = Instant::now();
    let replies = crate::serve::lmtp(port, &to, &ordinary);
    let ordinary_took = started.elapsed();
    eprintln!("ordinary answered in {ordinary_took:?}: {replies:?}");
    let (hostile_replies, hostile_answered) = hostile_delivery.join().expect("hostile delivery");
    eprintln!(
        "ordinary answered in {ordinary_took:?}; hostile answered {:?} after its data",
        hostile_answered - hostile_data_end
    );
    assert!(
        replies.last().is_some_and(|reply| reply.starts_with("250")),
        "{replies:?}"
    );
    // A refusal that will not clear: 5xx, never 4xx.
    assert!(
        hostile_replies
            .last()
            .is_some_and(|reply| reply.starts_with('5') || reply.starts_with("250")),
        "{hostile_replies:?}"
    );
    // The target is 1 s; the bound is generous because this is a shared test machine.
    assert!(ordinary_took < Duration::from_secs(10), "{ordinary_took:?}");
    if let Some(child) = serving.0.take() {
        let status = crate::serve::stop(child);
        assert!(status.success(), "{status:?}");
    }
}

/// A `postern serve` that is killed if the test fails before stopping it, so a failed run does
/// not leave a server busy with a hostile message.
struct KilledOnDrop(Option<std::process::Child>);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Message-IDs with a NUL byte, or longer than any index entry, through `receive` into
/// PostgreSQL (where both used to make the insert fail for ever): each is processed once, exit 0,
/// and the same bytes again are a duplicate.
#[test]
fn poison_message_ids_through_receive_on_postgresql() {
    let rt = runtime();
    let Some(db) = rt.block_on(postern_testkit::TestDb::postgres()) else {
        return;
    };
    let sandbox = Sandbox::with_config(&format!(
        "{WALKTHROUGH_CONFIG}store:\n  url: \"{}\"\n",
        db.url
    ));
    let world = Walkthrough::set_up(&sandbox);
    let to = format!(
        "incoming+gitlabhq-gitlabhq-{}-{}-issue@appmail.adventuretime.ooo",
        world.project_id, world.token
    );
    let ids = [
        "nul\0inside@example.test".to_owned(),
        format!("{}@example.test", "y".repeat(10_000)),
    ];
    for (n, message_id) in ids.iter().enumerate() {
        let mut mail = new_issue_with_id(&to, &format!("Poison {n}"), message_id);
        mail = String::from_utf8(mail)
            .expect("ASCII")
            .replace("jake@example.com", "jake@adventuretime.ooo")
            .into_bytes();
        let first = receive_final(&sandbox, &mail);
        assert_eq!(first["outcome"], "processed", "{first:#}");
        let again = receive_final(&sandbox, &mail);
        assert_eq!(again["outcome"], "duplicate", "{again:#}");
    }
}

/// 5 MB of quick actions from an outsider to a Service Desk address: the whole text is redacted
/// (made harmless, not run) and becomes a ticket, in bounded time. Redaction runs on anyone's
/// mail, so it was the cheapest way to hold the writer.
#[test]
fn a_quick_action_flood_to_service_desk_becomes_a_redacted_ticket_at_once() {
    let sandbox = Sandbox::with_config(&format!(
        "{WALKTHROUGH_CONFIG}service_desk_email:\n  enabled: true\n  address: \"support+%{{key}}@example.com\"\n"
    ));
    Walkthrough::set_up(&sandbox);
    sandbox.admin_json(&["project", "service-desk", "enable", "gitlabhq/gitlabhq"]);
    let show = sandbox.admin_json(&["project", "show", "gitlabhq/gitlabhq"]);
    let alias = str_field(&show["addresses"], "service_desk_alias").to_owned();
    let line = "/label ~a\r\n";
    let mut mail = format!(
        "From: stranger@outside.test\r\nTo: {alias}\r\nSubject: Flood\r\nMessage-ID: <flood@outside.test>\r\n\r\n"
    );
    mail.push_str(&line.repeat(5 * 1024 * 1024 / line.len()));
    let started = Instant::now();
    let outcome = sandbox
        .run_with_stdin(
            &["receive", "--mailbox", "service_desk", "-"],
            mail.as_bytes(),
        )
        .json();
    let took = started.elapsed();
    eprintln!("5 MB quick-action flood to Service Desk: {took:?}");
    assert_eq!(outcome["outcome"], "processed", "{outcome:#}");
    assert_eq!(outcome["created"]["type"], "ticket", "{outcome:#}");
    let ticket = sandbox.admin_json(&["issue", "show", "gitlabhq/gitlabhq", "1"]);
    assert!(
        ticket["labels"].as_array().is_none_or(Vec::is_empty),
        "{:#}",
        ticket["labels"]
    );
    // The target is 1 s; the bound is generous because this is a shared test machine.
    assert!(took < Duration::from_secs(30), "{took:?}");
}
