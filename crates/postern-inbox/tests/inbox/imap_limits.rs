//! The IMAP watcher's size limits: a message over `max_message_size` is not downloaded but
//! handed on as its header block with its declared size (real Dovecot, in a catch-up batch and
//! as a single message during IDLE), and a broken or hostile server whose response would not
//! end (an endless line, a huge literal) is cut with "response too large" and reconnected to
//! with back-off (a scripted server on loopback).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_inbox::imap::{Auth, ImapConfig, Security};
use postern_testkit::mailserver::MailServer;
use postern_vocab::Secret;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

use crate::imap_common::*;

const WAIT: Duration = Duration::from_secs(60);
const LIMIT: u64 = 64 * 1024;
/// The header block of the message the lying server sends.
const LIED_HEAD: &[u8] = b"Subject: lie\r\nMessage-ID: <lie@x.test>\r\n\r\n";

/// The header block of `raw`: up to and including the first empty line.
fn head_of(raw: &[u8]) -> Vec<u8> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    raw[..end].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_handed_on_as_their_header_block_with_their_size() {
    let Some(server) = MailServer::start_dovecot_only() else {
        return;
    };
    let mut client = folder(&server, "inbox").await;
    let big = message("big-in-batch", 300 * 1024);
    for raw in [
        message("small-a", 500),
        big.clone(),
        message("small-b", 500),
    ] {
        client.append("INBOX", "", &raw).await.unwrap();
    }
    let intake = MemoryIntake::new();
    let mut settings = config(&server, "inbox");
    settings.max_message_size = LIMIT;
    let running = start(settings, &intake);
    wait_until(WAIT, "the catch-up batch", || intake.count() == 3).await;
    wait_idle(&running).await;

    // One more, alone, while the watcher waits in IDLE: fetched without a size round trip.
    let alone = message("big-alone", 200 * 1024);
    client.append("INBOX", "", &alone).await.unwrap();
    wait_until(WAIT, "the message during IDLE", || intake.count() == 4).await;
    wait_idle(&running).await;
    running.shutdown().await;

    {
        let state = intake.state.lock().unwrap();
        assert_eq!(state.oversized.len(), 2, "{:?}", state.oversized);
        for (raw, tag) in [(&big, "big-in-batch"), (&alone, "big-alone")] {
            let (identity, stored) = state
                .stored
                .iter()
                .find(|(_, stored)| stored.windows(tag.len()).any(|w| w == tag.as_bytes()))
                .unwrap();
            assert_eq!(state.oversized.get(identity), Some(&(raw.len() as u64)));
            assert_eq!(stored, &head_of(raw), "only the header block of {tag}");
        }
    }
    // The small ones arrived whole and unmarked.
    assert_eq!(intake.containing("body of small-a"), 1);
    assert_eq!(intake.containing("body of small-b"), 1);
    intake.assert_no_duplicates();
    // Everything was acknowledged like any message taken in.
    assert!(uids(&mut client, "UNSEEN").await.is_empty());
    server.stop().unwrap();
}

/// What the scripted server does when the watcher looks at the folder.
#[derive(Clone, Copy)]
enum Hostile {
    /// Answers `UID SEARCH` with a line that never ends.
    EndlessLine,
    /// Finds one message and answers its `FETCH` with a literal of almost 1 GB.
    HugeLiteral,
    /// Declares a small `RFC822.SIZE` but sends a message over the limit (as much as the
    /// partial fetch allows).
    LyingSize,
}

/// An IMAP server on loopback that logs anyone in, has a folder, and then misbehaves.
/// Returns its port, how many connections it has seen and every command line it received.
async fn hostile_server(how: Hostile) -> (u16, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let commands = Arc::new(Mutex::new(Vec::new()));
    let log = commands.clone();
    tokio::spawn(async move {
        // Bounded: the test waits for two or three connections.
        for _ in 0..20 {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let log = log.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                if write.write_all(b"* OK scripted IMAP\r\n").await.is_err() {
                    return;
                }
                for _ in 0..50 {
                    let mut line = String::new();
                    match read.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => log.lock().unwrap().push(line.trim_end().to_owned()),
                    }
                    let words: Vec<String> = line
                        .split_whitespace()
                        .map(str::to_ascii_uppercase)
                        .collect();
                    let tag = words.first().cloned().unwrap_or_default();
                    let command = match words.get(1).map(String::as_str) {
                        Some("UID") => format!("UID {}", words.get(2).cloned().unwrap_or_default()),
                        Some(other) => other.to_owned(),
                        None => String::new(),
                    };
                    let answer = match (command.as_str(), how) {
                        ("CAPABILITY", _) => {
                            format!("* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n{tag} OK done\r\n")
                        }
                        ("SELECT", _) => format!(
                            "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n\
                             {tag} OK [READ-WRITE] selected\r\n"
                        ),
                        ("UID SEARCH", Hostile::EndlessLine) => {
                            let _ = write.write_all(b"* SEARCH").await;
                            let chunk = b" 1234567".repeat(8192);
                            // 16 MiB at most: far past any cap, bounded for the test.
                            for _ in 0..256 {
                                if write.write_all(&chunk).await.is_err() {
                                    return;
                                }
                            }
                            return;
                        }
                        ("UID SEARCH", Hostile::HugeLiteral | Hostile::LyingSize) => {
                            format!("* SEARCH 1\r\n{tag} OK done\r\n")
                        }
                        ("UID FETCH", Hostile::LyingSize) => {
                            let mut body = LIED_HEAD.to_vec();
                            body.resize(LIMIT as usize + 1, b'x');
                            let mut answer = format!(
                                "* 1 FETCH (UID 1 RFC822.SIZE 100 BODY[]<0> {{{}}}\r\n",
                                body.len()
                            )
                            .into_bytes();
                            answer.extend_from_slice(&body);
                            answer.extend_from_slice(format!(")\r\n{tag} OK done\r\n").as_bytes());
                            if write.write_all(&answer).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        ("UID FETCH", Hostile::HugeLiteral) => {
                            let _ = write
                                .write_all(
                                    b"* 1 FETCH (UID 1 RFC822.SIZE 100 BODY[]<0> {999999999}\r\n",
                                )
                                .await;
                            let chunk = vec![b'x'; 64 * 1024];
                            for _ in 0..256 {
                                if write.write_all(&chunk).await.is_err() {
                                    return;
                                }
                            }
                            return;
                        }
                        ("LOGOUT", _) => format!("* BYE bye\r\n{tag} OK done\r\n"),
                        _ => format!("{tag} OK done\r\n"),
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, connections, commands)
}

fn scripted_config(port: u16) -> ImapConfig {
    let mut config = ImapConfig::new(
        "incoming_email",
        "127.0.0.1",
        port,
        "someone",
        Auth::Login {
            password: Secret::new("pw"),
        },
    );
    config.security = Security::Plain;
    config.allow_plaintext = true;
    config.max_message_size = LIMIT;
    config.command_timeout = Duration::from_secs(20);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_line_or_a_huge_literal_is_cut_and_the_watcher_reconnects() {
    for how in [Hostile::EndlessLine, Hostile::HugeLiteral] {
        let (port, connections, _) = hostile_server(how).await;
        let intake = MemoryIntake::new();
        let running = start(scripted_config(port), &intake);
        wait_until(WAIT, "a reported response too large", || {
            running
                .snapshot()
                .last_error
                .is_some_and(|error| error.contains("response too large"))
        })
        .await;
        // The back-off starts at about 1 s: the next attempt follows.
        wait_until(WAIT, "a reconnect", || {
            connections.load(Ordering::SeqCst) >= 2
        })
        .await;
        assert!(!running.task.is_finished(), "the watcher keeps going");
        running.shutdown().await;
        assert_eq!(intake.count(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_larger_than_its_declared_size_is_handed_on_as_oversized() {
    let (port, _, commands) = hostile_server(Hostile::LyingSize).await;
    let intake = MemoryIntake::new();
    let running = start(scripted_config(port), &intake);
    wait_until(WAIT, "the message taken in", || intake.count() == 1).await;
    running.shutdown().await;
    let state = intake.state.lock().unwrap();
    let (identity, stored) = state.stored.iter().next().unwrap();
    assert_eq!(stored.as_slice(), LIED_HEAD, "only the header block");
    // Declared 100 bytes, sent more than the limit: at least what arrived.
    assert_eq!(state.oversized.get(identity), Some(&(LIMIT + 1)));
    // The server was never asked for more than the limit and one byte.
    let fetch = format!("BODY.PEEK[]<0.{}>", LIMIT + 1);
    let commands = commands.lock().unwrap();
    assert!(
        commands
            .iter()
            .any(|c| c.contains("UID FETCH") && c.contains(&fetch)),
        "{commands:?}"
    );
}
