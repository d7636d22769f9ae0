//! The IMAP watcher against a server that offers neither IDLE nor UIDPLUS (a private Dovecot
//! whose announced capabilities are cut down): new mail is found by NOOP polling, and
//! `delete_after_delivery` expunges with a folder-wide `EXPUNGE` only when `expunge_deleted`
//! says so, otherwise leaves the messages flagged `\Deleted`.

use std::time::Duration;

use postern_inbox::imap;
use postern_testkit::mailserver::MailServer;

use crate::imap_common::*;

const WAIT: Duration = Duration::from_secs(30);

/// Dovecot announcing no IDLE and no UIDPLUS after login.
const NO_IDLE_NO_UIDPLUS: &str =
    "imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UNSELECT NAMESPACE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idle_and_uidplus_the_watcher_polls_and_expunges_as_configured() {
    let Some(server) = MailServer::start_dovecot_with(NO_IDLE_NO_UIDPLUS) else {
        return;
    };
    let report = imap::check(&config(&server, "inbox").validate().unwrap())
        .await
        .unwrap();
    assert!(!report.idle && !report.uidplus, "{report:?}");

    // Polling: mail appended while the watcher waits is found without IDLE.
    let mut expunging = folder(&server, "t-expunge").await;
    let intake = MemoryIntake::new();
    let mut settings = config(&server, "t-expunge");
    settings.delete_after_delivery = true;
    settings.expunge_deleted = true;
    let running = start(settings, &intake);
    wait_idle(&running).await;
    for i in 0..2 {
        let raw = message(&format!("polled-{i}"), 200);
        expunging.append("t-expunge", "", &raw).await.unwrap();
    }
    wait_until(WAIT, "polled messages taken", || intake.count() == 2).await;
    let mut left = Vec::new();
    for _ in 0..100 {
        left = uids(&mut expunging, "ALL").await;
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown().await;
    assert!(left.is_empty(), "EXPUNGE removed them: {left:?}");

    // expunge_deleted = false: flagged \Deleted, left for the server or an admin to expunge.
    let mut keeping = folder(&server, "t-keep").await;
    for i in 0..2 {
        let raw = message(&format!("kept-{i}"), 200);
        keeping.append("t-keep", "", &raw).await.unwrap();
    }
    let intake = MemoryIntake::new();
    let mut settings = config(&server, "t-keep");
    settings.delete_after_delivery = true;
    let running = start(settings, &intake);
    wait_until(WAIT, "both taken", || intake.count() == 2).await;
    let mut deleted = Vec::new();
    for _ in 0..100 {
        deleted = uids(&mut keeping, "DELETED").await;
        if deleted.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown().await;
    assert_eq!(deleted.len(), 2, "both flagged \\Deleted");
    assert_eq!(uids(&mut keeping, "ALL").await.len(), 2, "not expunged");
    intake.assert_no_duplicates();
    server.stop().unwrap();
}
