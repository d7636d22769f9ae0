//! Shared by the IMAP watcher tests: an [`Intake`] over a `Mutex<HashMap>` (our own boundary,
//! standing in for the store), watcher settings for the private Dovecot, a running watcher
//! with its shutdown switch, folders per test, and bounded waiting.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_inbox::imap::{self, Auth, ImapConfig, Security};
use postern_inbox::intake::{Fetched, Intake, IntakeError};
use postern_inbox::status::{SourceStatus, StatusSnapshot};
use postern_testkit::imap::{ImapClient, quote};
use postern_testkit::mailserver::{MailServer, USER};
use postern_vocab::Secret;
use postern_vocab::{Shutdown, Stopper};
use tokio::task::JoinHandle;

/// What the test store holds.
#[derive(Default)]
pub struct State {
    /// Stored messages by identity.
    pub stored: HashMap<String, Vec<u8>>,
    /// How often each identity was stored as new: must never exceed 1.
    pub stored_as_new: HashMap<String, usize>,
    /// Highest position per (source, validity).
    pub cursors: HashMap<(String, u64), u64>,
    /// Whether `take` fails (store "down").
    pub failing: bool,
    /// `take` calls refused while failing.
    pub refused: usize,
    /// Identities of every batch handed to `take`, in order.
    pub offered: Vec<Vec<String>>,
    /// How long each `take` takes (a slow store), before it stores anything.
    pub take_delay: Duration,
    /// Declared sizes of the messages handed on as oversized (header block only), by identity.
    pub oversized: HashMap<String, u64>,
}

/// The test store.
#[derive(Default)]
pub struct MemoryIntake {
    pub state: Mutex<State>,
}

impl MemoryIntake {
    pub fn new() -> Arc<MemoryIntake> {
        Arc::new(MemoryIntake::default())
    }

    pub fn set_failing(&self, failing: bool) {
        self.state.lock().unwrap().failing = failing;
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().stored.len()
    }

    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    /// Stored messages whose bytes contain `needle`.
    pub fn containing(&self, needle: &str) -> usize {
        let state = self.state.lock().unwrap();
        state
            .stored
            .values()
            .filter(|raw| contains(raw, needle.as_bytes()))
            .count()
    }

    /// Panics if any identity was stored as new more than once.
    pub fn assert_no_duplicates(&self) {
        let state = self.state.lock().unwrap();
        for (identity, times) in &state.stored_as_new {
            assert_eq!(*times, 1, "{identity} stored as new {times} times");
        }
    }

    /// Records `identity` as stored (as if an earlier run stored it) and moves the cursor.
    pub fn preload(&self, identity: &str, source: &str, validity: u64, position: u64) {
        let mut state = self.state.lock().unwrap();
        state.stored.insert(identity.to_owned(), Vec::new());
        let cursor = state
            .cursors
            .entry((source.to_owned(), validity))
            .or_insert(0);
        *cursor = (*cursor).max(position);
    }

    pub fn set_take_delay(&self, delay: Duration) {
        self.state.lock().unwrap().take_delay = delay;
    }

    pub fn offered(&self) -> Vec<Vec<String>> {
        self.state.lock().unwrap().offered.clone()
    }
}

impl Intake for MemoryIntake {
    async fn take(&self, batch: Vec<Fetched>) -> Result<(), IntakeError> {
        let delay = {
            let mut state = self.state.lock().unwrap();
            state
                .offered
                .push(batch.iter().map(|m| m.identity.clone()).collect());
            state.take_delay
        };
        tokio::time::sleep(delay).await;
        let mut state = self.state.lock().unwrap();
        if state.failing {
            state.refused += 1;
            return Err(IntakeError::Unavailable("test store is down".to_owned()));
        }
        for message in batch {
            if !state.stored.contains_key(&message.identity) {
                *state
                    .stored_as_new
                    .entry(message.identity.clone())
                    .or_insert(0) += 1;
                state
                    .stored
                    .insert(message.identity.clone(), message.raw.to_vec());
                if let Some(size) = message.oversized {
                    state.oversized.insert(message.identity.clone(), size);
                }
            }
            if let Some(cursor) = message.cursor {
                let entry = state
                    .cursors
                    .entry((cursor.source, cursor.validity))
                    .or_insert(0);
                *entry = (*entry).max(cursor.position);
            }
        }
        Ok(())
    }

    async fn cursor(&self, source: &str, validity: u64) -> Result<Option<u64>, IntakeError> {
        let state = self.state.lock().unwrap();
        Ok(state.cursors.get(&(source.to_owned(), validity)).copied())
    }

    async fn known(&self, identities: &[String]) -> Result<HashSet<String>, IntakeError> {
        let state = self.state.lock().unwrap();
        Ok(identities
            .iter()
            .filter(|i| state.stored.contains_key(*i))
            .cloned()
            .collect())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Plain IMAP to the server's loopback port, LOGIN as [`USER`], watching `folder`.
pub fn config(server: &MailServer, folder: &str) -> ImapConfig {
    let mut config = ImapConfig::new(
        "incoming_email",
        "127.0.0.1",
        server.imap_port(),
        USER,
        Auth::Login {
            password: Secret::new(server.password()),
        },
    );
    config.security = Security::Plain;
    config.allow_plaintext = true;
    config.mailbox = folder.to_owned();
    config.idle_timeout = Duration::from_secs(20);
    config.command_timeout = Duration::from_secs(20);
    config
}

/// A logged-in test client with `folder` created (if needed) and selected.
pub async fn folder(server: &MailServer, folder: &str) -> ImapClient {
    let mut client = ImapClient::connect(server.imap_port()).await.unwrap();
    client.login(USER, server.password()).await.unwrap();
    if !folder.eq_ignore_ascii_case("inbox") {
        // Already there when a test creates it twice: that is fine.
        client
            .command(&format!("CREATE {}", quote(folder)))
            .await
            .ok();
    }
    client.select(folder).await.unwrap();
    client
}

/// A small message whose Subject and body carry `tag`, padded to about `size` bytes.
pub fn message(tag: &str, size: usize) -> Vec<u8> {
    let mut raw = format!(
        "From: sender@example.org\r\nTo: incoming@example.test\r\nSubject: {tag}\r\n\
         Message-ID: <{tag}@example.org>\r\n\r\nbody of {tag}\r\n"
    )
    .into_bytes();
    while raw.len() < size {
        raw.extend_from_slice(
            b"0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
        );
    }
    raw
}

/// A watcher running in its own task.
pub struct Running {
    pub status: Arc<SourceStatus>,
    pub stop: Stopper,
    pub task: JoinHandle<()>,
}

/// Validates `config` and starts [`imap::watch`] with `intake`.
pub fn start(config: ImapConfig, intake: &Arc<MemoryIntake>) -> Running {
    let settings = config.validate().expect("valid test settings");
    let status = Arc::new(SourceStatus::new(
        &settings.config().name,
        "imap",
        &settings.location(),
    ));
    let (stop, receiver) = Shutdown::new();
    let task = tokio::spawn(imap::watch(
        settings,
        intake.clone(),
        status.clone(),
        receiver,
    ));
    Running { status, stop, task }
}

impl Running {
    /// Asks the watcher to stop and waits for it (bounded: the watcher promises 10 s).
    pub async fn shutdown(self) {
        self.stop.stop();
        tokio::time::timeout(Duration::from_secs(12), self.task)
            .await
            .expect("the watcher stops within its shutdown limit")
            .unwrap();
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        self.status.snapshot()
    }
}

/// Polls `condition` every 100 ms until it holds; panics with `what` after `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the watcher is connected and has finished its catch-up scan (backlog 0).
pub async fn wait_idle(running: &Running) {
    wait_until(
        Duration::from_secs(30),
        "the watcher to connect and catch up",
        || {
            let snapshot = running.snapshot();
            snapshot.state.is_connected() && snapshot.backlog == Some(0)
        },
    )
    .await;
}

/// Waits until the watcher reports that it is waiting in IDLE: the server has taken the IDLE
/// command, so mail appended from now on is announced to it.
pub async fn wait_in_idle(running: &Running) {
    wait_until(
        Duration::from_secs(30),
        "the watcher to wait in IDLE",
        || running.snapshot().state == postern_inbox::status::SourceState::Idle,
    )
    .await;
}

/// UIDs in the selected folder matching `criteria`.
pub async fn uids(client: &mut ImapClient, criteria: &str) -> Vec<u32> {
    // NOOP first so the session sees changes made by the watcher's connection.
    client.command("NOOP").await.unwrap();
    client.uid_search(criteria).await.unwrap()
}
