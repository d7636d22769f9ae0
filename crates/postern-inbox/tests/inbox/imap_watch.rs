//! The IMAP watcher against a real Dovecot (one shared server for these tests, one folder per
//! test): delivery during IDLE, catch-up of unseen and already-seen backlogs, flags set only
//! after the intake took the messages, deletion by UID, a failing store, TLS (implicit and
//! STARTTLS with the private CA), plaintext refusal, UIDVALIDITY changes, `check()` and
//! shutdown while idle.

use std::time::{Duration, Instant};

use postern_inbox::imap::{self, ImapError, Security};
use postern_testkit::mailserver::{self, MailServer};

use crate::imap_common::*;

const WAIT: Duration = Duration::from_secs(30);

fn server() -> Option<&'static MailServer> {
    mailserver::shared()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_appended_while_idle_is_taken_and_flagged_seen() {
    let Some(server) = server() else { return };
    let mut client = folder(server, "t-idle").await;
    let intake = MemoryIntake::new();
    let running = start(config(server, "t-idle"), &intake);
    wait_in_idle(&running).await;

    for i in 0..2 {
        client
            .append("t-idle", "", &message(&format!("idle-{i}"), 200))
            .await
            .unwrap();
    }
    wait_until(WAIT, "both messages taken in", || intake.count() == 2).await;
    assert_eq!(intake.containing("body of idle-0"), 1);
    assert_eq!(intake.containing("body of idle-1"), 1);
    wait_until(WAIT, "the taken count in the status", || {
        running.snapshot().messages_taken == 2
    })
    .await;
    // Woken, it scanned, and went back to waiting in IDLE.
    wait_in_idle(&running).await;
    running.shutdown().await;

    let all = uids(&mut client, "ALL").await;
    assert_eq!(
        all.len(),
        2,
        "messages stay in the folder without delete_after_delivery"
    );
    assert!(
        uids(&mut client, "UNSEEN").await.is_empty(),
        "taken messages are \\Seen"
    );
    intake.assert_no_duplicates();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_caught_up_including_messages_already_seen() {
    let Some(server) = server() else { return };
    let mut client = folder(server, "t-backlog").await;
    for i in 0..5 {
        let raw = message(&format!("unseen-{i}"), 300);
        client.append("t-backlog", "", &raw).await.unwrap();
    }
    for i in 0..3 {
        let raw = message(&format!("seen-{i}"), 300);
        client.append("t-backlog", "\\Seen", &raw).await.unwrap();
    }
    let intake = MemoryIntake::new();
    let mut config = config(server, "t-backlog");
    config.batch_max_messages = 2;
    let running = start(config, &intake);
    wait_until(WAIT, "all eight messages taken in", || intake.count() == 8).await;
    wait_idle(&running).await;
    running.shutdown().await;

    assert_eq!(
        intake.containing("body of seen-"),
        3,
        "already-seen mail is not skipped"
    );
    assert!(
        intake.offered().iter().all(|batch| batch.len() <= 2),
        "batches respect batch_max_messages: {:?}",
        intake.offered()
    );
    assert!(uids(&mut client, "UNSEEN").await.is_empty());
    intake.assert_no_duplicates();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_after_delivery_expunges_the_taken_messages() {
    let Some(server) = server() else { return };
    let mut client = folder(server, "t-delete").await;
    client
        .append("t-delete", "", &message("delete-backlog", 200))
        .await
        .unwrap();
    let intake = MemoryIntake::new();
    let mut config = config(server, "t-delete");
    config.delete_after_delivery = true;
    let running = start(config, &intake);
    wait_idle(&running).await;
    for i in 0..3 {
        let raw = message(&format!("delete-{i}"), 200);
        client.append("t-delete", "", &raw).await.unwrap();
    }
    wait_until(WAIT, "four messages taken in", || intake.count() == 4).await;
    let mut remaining = Vec::new();
    for _ in 0..100 {
        remaining = uids(&mut client, "ALL").await;
        if remaining.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown().await;
    assert!(remaining.is_empty(), "left in the folder: {remaining:?}");
    intake.assert_no_duplicates();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_gets_nothing_flagged_then_everything_exactly_once() {
    let Some(server) = server() else { return };
    let mut client = folder(server, "t-failing").await;
    let intake = MemoryIntake::new();
    intake.set_failing(true);
    for i in 0..3 {
        let raw = message(&format!("failing-{i}"), 200);
        client.append("t-failing", "", &raw).await.unwrap();
    }
    let running = start(config(server, "t-failing"), &intake);
    wait_until(WAIT, "the store to refuse twice", || intake.refused() >= 2).await;
    assert_eq!(intake.count(), 0);
    assert_eq!(
        uids(&mut client, "UNSEEN").await.len(),
        3,
        "nothing is flagged while the store refuses"
    );
    let snapshot = running.snapshot();
    assert_eq!(snapshot.messages_taken, 0);
    assert_eq!(snapshot.backlog, Some(3), "the backlog shows what waits");

    intake.set_failing(false);
    wait_until(WAIT, "all three taken once the store is back", || {
        intake.count() == 3
    })
    .await;
    wait_idle(&running).await;
    running.shutdown().await;
    assert!(uids(&mut client, "UNSEEN").await.is_empty());
    intake.assert_no_duplicates();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_stored_before_an_interruption_are_flagged_without_refetching() {
    let Some(server) = server() else { return };
    let mut client = folder(server, "t-interrupted").await;
    for i in 0..2 {
        let raw = message(&format!("interrupted-{i}"), 200);
        client.append("t-interrupted", "", &raw).await.unwrap();
    }
    let config = config(server, "t-interrupted");
    let settings = config.clone().validate().unwrap();
    let report = imap::check(&settings).await.unwrap();
    // An earlier run stored both and crashed before UID STORE.
    let intake = MemoryIntake::new();
    let all = uids(&mut client, "ALL").await;
    for &uid in &all {
        intake.preload(
            &settings.identity(report.uid_validity, uid),
            &settings.source(),
            u64::from(report.uid_validity),
            u64::from(uid),
        );
    }
    let running = start(config, &intake);
    wait_idle(&running).await;
    for _ in 0..100 {
        if uids(&mut client, "UNSEEN").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown().await;
    assert!(uids(&mut client, "UNSEEN").await.is_empty());
    assert!(
        intake.offered().is_empty(),
        "nothing fetched again: {:?}",
        intake.offered()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_uidvalidity_rescans_everything() {
    let Some(server) = server() else { return };
    let mut client = folder(server, "t-validity").await;
    for i in 0..2 {
        let raw = message(&format!("validity-old-{i}"), 200);
        client.append("t-validity", "", &raw).await.unwrap();
    }
    let config = config(server, "t-validity");
    let settings = config.clone().validate().unwrap();
    let intake = MemoryIntake::new();
    let running = start(config.clone(), &intake);
    wait_until(WAIT, "the first two taken", || intake.count() == 2).await;
    running.shutdown().await;
    let before = imap::check(&settings).await.unwrap().uid_validity;

    // The folder is recreated (a restore, a server migration): UIDs start at 1 again, below
    // the old cursor, under a new UIDVALIDITY. One taken from the clock in seconds (as RFC 3501
    // suggests servers do) repeats within a second: recreate the folder until it differs.
    let deadline = Instant::now() + WAIT;
    let mut client = loop {
        client.command("UNSELECT").await.ok();
        client.command("DELETE \"t-validity\"").await.unwrap();
        let recreated = folder(server, "t-validity").await;
        if imap::check(&settings).await.unwrap().uid_validity != before {
            break recreated;
        }
        assert!(
            Instant::now() < deadline,
            "Dovecot never gave the recreated folder a new UIDVALIDITY"
        );
        client = recreated;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for i in 0..2 {
        let raw = message(&format!("validity-new-{i}"), 200);
        client.append("t-validity", "\\Seen", &raw).await.unwrap();
    }

    let running = start(config, &intake);
    wait_until(WAIT, "the new folder's messages taken", || {
        intake.containing("body of validity-new-") == 2
    })
    .await;
    running.shutdown().await;
    assert_eq!(intake.count(), 4);
    intake.assert_no_duplicates();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_folder() {
    let Some(server) = server() else { return };
    let mut client = folder(server, "t-check").await;
    client
        .append("t-check", "", &message("check-0", 100))
        .await
        .unwrap();
    client
        .append("t-check", "", &message("check-1", 100))
        .await
        .unwrap();
    client
        .append("t-check", "\\Seen", &message("check-2", 100))
        .await
        .unwrap();
    let settings = config(server, "t-check").validate().unwrap();
    let report = imap::check(&settings).await.unwrap();
    assert_eq!(report.messages, 3);
    assert_eq!(report.unseen, 2);
    assert!(report.idle && report.uidplus, "{report:?}");
    assert!(report.uid_validity > 0);
    assert!(report.capabilities.iter().any(|c| c == "IDLE"));

    let mut missing = config(server, "t-no-such-folder");
    missing.mailbox = "t-no-such-folder".to_owned();
    let error = imap::check(&missing.validate().unwrap()).await.unwrap_err();
    assert!(matches!(error, ImapError::Mailbox(_)), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_and_starttls_work_with_the_private_ca() {
    let Some(server) = server() else { return };
    let mut client = folder(server, "t-tls").await;
    client
        .append("t-tls", "", &message("tls-0", 100))
        .await
        .unwrap();
    let ca = server.base().join("ssl/ca.pem");

    let mut implicit = config(server, "t-tls");
    implicit.security = Security::ImplicitTls;
    implicit.allow_plaintext = false;
    implicit.port = server.imaps_port();
    implicit.extra_ca_file = Some(ca.clone());
    let report = imap::check(&implicit.clone().validate().unwrap())
        .await
        .unwrap();
    assert_eq!(report.messages, 1);

    let mut starttls = config(server, "t-tls");
    starttls.security = Security::StartTls;
    starttls.allow_plaintext = false;
    starttls.extra_ca_file = Some(ca);
    let report = imap::check(&starttls.validate().unwrap()).await.unwrap();
    assert_eq!(report.messages, 1);

    // The watcher itself over TLS.
    let intake = MemoryIntake::new();
    let running = start(implicit.clone(), &intake);
    wait_until(WAIT, "the message taken over TLS", || intake.count() == 1).await;
    running.shutdown().await;

    // Without the private CA the certificate is not trusted.
    implicit.extra_ca_file = None;
    let error = imap::check(&implicit.validate().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, ImapError::Tls(_)), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_is_refused_for_a_remote_host() {
    let Some(server) = server() else { return };
    let mut remote = config(server, "inbox");
    remote.host = "imap.example.org".to_owned();
    let error = remote.clone().validate().unwrap_err();
    assert!(matches!(error, ImapError::Config(_)));
    assert!(error.to_string().contains("loopback"), "{error}");
    remote.allow_plaintext = false;
    let error = remote.validate().unwrap_err();
    assert!(error.to_string().contains("unencrypted"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_idle_returns_promptly_and_logs_out() {
    let Some(server) = server() else { return };
    let _client = folder(server, "t-shutdown").await;
    let intake = MemoryIntake::new();
    let running = start(config(server, "t-shutdown"), &intake);
    wait_in_idle(&running).await;
    let status = running.status.clone();
    running.stop.stop();
    tokio::time::timeout(imap::SHUTDOWN_LIMIT, running.task)
        .await
        .expect("the watcher returns within its 10 s shutdown limit")
        .unwrap();
    assert_eq!(
        status.snapshot().state,
        postern_inbox::status::SourceState::Stopped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_take_finishes_and_flags_that_batch_first() {
    let Some(server) = server() else { return };
    let mut client = folder(server, "t-slow-store").await;
    for i in 0..4 {
        let raw = message(&format!("slow-{i}"), 200);
        client.append("t-slow-store", "", &raw).await.unwrap();
    }
    let intake = MemoryIntake::new();
    intake.set_take_delay(Duration::from_secs(2));
    let mut config = config(server, "t-slow-store");
    config.batch_max_messages = 2;
    let running = start(config, &intake);
    wait_until(WAIT, "the first batch handed over", || {
        !intake.offered().is_empty()
    })
    .await;
    running.stop.stop();
    tokio::time::timeout(imap::SHUTDOWN_LIMIT, running.task)
        .await
        .expect("the watcher returns within its 10 s shutdown limit")
        .unwrap();

    // The batch in hand was stored and flagged; the next one was never started.
    assert_eq!(intake.count(), 2);
    assert_eq!(intake.offered().len(), 1);
    assert_eq!(uids(&mut client, "UNSEEN").await.len(), 2);
    assert_eq!(uids(&mut client, "SEEN").await.len(), 2);
}
