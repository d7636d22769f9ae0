//! The IMAP watcher when things go wrong, each test on its own private Dovecot so stopping or
//! disturbing it affects nobody else: a wrong password, the server stopped and started again,
//! and the connection cut in the middle of a message.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use postern_inbox::status::SourceState;
use postern_testkit::mailserver::MailServer;
use postern_vocab::Secret;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::imap_common::*;
use crate::log_capture::Capture;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_reported_without_the_password_and_retried() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let intake = MemoryIntake::new();
    let wrong = "wrong-Pa55word-for-this-test";
    let mut config = config(&server, "inbox");
    config.auth = postern_inbox::imap::Auth::Login {
        password: Secret::new(wrong),
    };
    let running = start(config, &intake);
    wait_until(WAIT, "a reported login failure", || {
        running.snapshot().state == SourceState::Reconnecting
    })
    .await;
    let error = running.snapshot().last_error.unwrap_or_default();
    assert!(error.contains("authentication"), "{error}");
    assert!(!error.contains(wrong), "the password leaked: {error}");
    // Back-off starts at about 1 s: a second attempt follows soon.
    wait_until(WAIT, "a second login attempt", || {
        server.dovecot_log().matches("auth failed").count() >= 2
    })
    .await;
    assert!(!running.task.is_finished(), "the watcher keeps going");
    running.shutdown().await;
    assert!(!server.dovecot_log().contains(wrong));
    server.stop().unwrap();
}

// current_thread: the watcher runs where `capture` is set, so its failures can be counted.
#[tokio::test(flavor = "current_thread")]
async fn the_watcher_reconnects_after_dovecot_was_down_and_takes_what_arrived() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let mut client = folder(&server, "inbox").await;
    client
        .append("INBOX", "", &message("before-down", 200))
        .await
        .unwrap();
    let intake = MemoryIntake::new();
    let running = start(config(&server, "inbox"), &intake);
    wait_until(WAIT, "the first message", || intake.count() == 1).await;
    wait_idle(&running).await;
    drop(client);

    server.stop().unwrap();
    wait_until(WAIT, "the watcher to notice", || {
        running.snapshot().state == SourceState::Reconnecting
    })
    .await;
    // Mail delivered locally while IMAP is down (as a delivery agent writes a Maildir).
    let raw = message("while-down", 200);
    std::fs::write(server.maildir().join("new/1700000000.while-down.test"), raw).unwrap();
    // Down until the connection was lost and three reconnections were refused: the back-off
    // has grown to 8 s.
    wait_until(WAIT, "three refused reconnections", || {
        capture.count("IMAP watcher failed; reconnecting") >= 4
    })
    .await;
    assert_eq!(intake.count(), 1);
    server.restart().unwrap();

    wait_until(WAIT, "the message that arrived while down", || {
        intake.containing("body of while-down") == 1
    })
    .await;
    let snapshot = running.snapshot();
    assert!(snapshot.state.is_connected(), "{snapshot:?}");
    assert!(snapshot.reconnects >= 1, "{snapshot:?}");
    running.shutdown().await;
    intake.assert_no_duplicates();
    server.stop().unwrap();
}

/// A TCP proxy to `target` that cuts its first connection after `cut_after` bytes from the
/// server and passes later connections through. Returns its port and a connection counter.
async fn cutting_proxy(target: u16, cut_after: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        // Bounded: the test opens only a few connections.
        for _ in 0..20 {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let number = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                if number > 0 {
                    tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                        .await
                        .ok();
                    return;
                }
                let (mut in_read, mut in_write) = inbound.split();
                let (mut out_read, mut out_write) = outbound.split();
                let upstream = tokio::io::copy(&mut in_read, &mut out_write);
                let downstream = async {
                    let mut forwarded = 0;
                    let mut buffer = vec![0u8; 16 * 1024];
                    while forwarded < cut_after {
                        let want = buffer.len().min(cut_after - forwarded);
                        let n = match out_read.read(&mut buffer[..want]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if in_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                        forwarded += n;
                    }
                };
                tokio::select! {
                    _ = upstream => {}
                    () = downstream => {}
                }
                // Both halves drop here: the client sees the connection end mid-response.
            });
        }
    });
    (port, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_fetch_loses_nothing_and_duplicates_nothing() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let mut client = folder(&server, "inbox").await;
    client
        .append("INBOX", "", &message("small-0", 300))
        .await
        .unwrap();
    client
        .append("INBOX", "", &message("small-1", 300))
        .await
        .unwrap();
    client
        .append("INBOX", "\\Seen", &message("large", 1 << 20))
        .await
        .unwrap();
    client
        .append("INBOX", "", &message("small-2", 300))
        .await
        .unwrap();
    drop(client);

    // The small ones fit in one 64 KiB batch; the 1 MiB message goes alone and is cut after
    // about 200 KB of the connection's traffic.
    let (port, connections) = cutting_proxy(server.imap_port(), 200_000).await;
    let intake = MemoryIntake::new();
    let mut config = config(&server, "inbox");
    config.port = port;
    config.batch_max_bytes = 64 * 1024;
    let running = start(config, &intake);
    wait_until(WAIT, "all four messages", || intake.count() == 4).await;
    wait_idle(&running).await;
    running.shutdown().await;

    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "the watcher reconnected"
    );
    assert_eq!(intake.containing("body of large"), 1);
    let large_size = {
        let state = intake.state.lock().unwrap();
        state
            .stored
            .values()
            .find(|raw| raw.windows(13).any(|w| w == b"body of large"))
            .map(Vec::len)
    };
    assert_eq!(
        large_size,
        Some(message("large", 1 << 20).len()),
        "stored whole"
    );
    intake.assert_no_duplicates();
    let mut client = folder(&server, "inbox").await;
    assert!(uids(&mut client, "UNSEEN").await.is_empty());
    server.stop().unwrap();
}
