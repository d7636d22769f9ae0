//! Shared by the Graph watcher tests: an in-memory [`Intake`], the stand-in with one mailbox,
//! settings pointing at it, and a running watcher that can be stopped.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_inbox::graph::{GraphSettings, watch};
use postern_inbox::intake::{Fetched, Intake, IntakeError};
use postern_inbox::status::SourceStatus;
use postern_testkit::graph::GraphStandIn;
use postern_vocab::{Shutdown, Stopper};
use tokio::task::JoinHandle;

pub const TENANT: &str = "contoso-tenant-0001";
pub const CLIENT: &str = "app-4a1b";
pub const SECRET: &str = "Sec~ret.Value+with/odd=chars";
pub const USER: &str = "incoming@contoso.example";

/// A store over a map: identity → raw bytes, with a log of every identity taken and a switch
/// that makes `take` fail.
#[derive(Default)]
pub struct MemIntake {
    pub stored: Mutex<HashMap<String, Vec<u8>>>,
    /// Every identity of every successful `take`, in order (duplicates included).
    pub taken: Mutex<Vec<String>>,
    pub failing: AtomicBool,
    pub failed_takes: AtomicUsize,
    /// Declared sizes of the messages handed on as oversized, by identity.
    pub oversized: Mutex<HashMap<String, u64>>,
}

impl MemIntake {
    pub fn stored_count(&self) -> usize {
        self.stored.lock().unwrap().len()
    }

    pub fn taken_log(&self) -> Vec<String> {
        self.taken.lock().unwrap().clone()
    }
}

impl Intake for MemIntake {
    async fn take(&self, batch: Vec<Fetched>) -> Result<(), IntakeError> {
        if self.failing.load(Ordering::SeqCst) {
            self.failed_takes.fetch_add(1, Ordering::SeqCst);
            return Err(IntakeError::Unavailable("test store is down".to_owned()));
        }
        let mut stored = self.stored.lock().unwrap();
        let mut taken = self.taken.lock().unwrap();
        for message in batch {
            taken.push(message.identity.clone());
            if let Some(size) = message.oversized {
                self.oversized
                    .lock()
                    .unwrap()
                    .insert(message.identity.clone(), size);
            }
            stored
                .entry(message.identity)
                .or_insert(message.raw.to_vec());
        }
        Ok(())
    }

    async fn cursor(&self, _source: &str, _validity: u64) -> Result<Option<u64>, IntakeError> {
        Ok(None)
    }

    async fn known(&self, identities: &[String]) -> Result<HashSet<String>, IntakeError> {
        let stored = self.stored.lock().unwrap();
        Ok(identities
            .iter()
            .filter(|i| stored.contains_key(*i))
            .cloned()
            .collect())
    }
}

/// A stand-in with the application registered and an empty inbox for [`USER`].
pub async fn stand_in() -> GraphStandIn {
    let stand_in = GraphStandIn::start(TENANT, CLIENT, SECRET).await;
    stand_in.add_mailbox(USER);
    stand_in
}

/// Settings for the stand-in, polling every 200 ms.
pub fn settings(stand_in: &GraphStandIn) -> GraphSettings {
    let mut settings = GraphSettings::new("incoming_email", USER, TENANT, CLIENT, SECRET);
    settings.azure_ad_endpoint = stand_in.url();
    settings.graph_endpoint = stand_in.url();
    settings.poll_interval = Duration::from_millis(200);
    settings
}

/// A test message, distinct per `n`.
pub fn raw(n: usize) -> Vec<u8> {
    format!(
        "From: sender{n}@example.com\r\nTo: {USER}\r\nSubject: message {n}\r\n\
         Message-ID: <m{n}@example.com>\r\n\r\nBody {n}\r\n"
    )
    .into_bytes()
}

/// A watcher running on the current runtime.
pub struct Running {
    pub intake: Arc<MemIntake>,
    pub status: Arc<SourceStatus>,
    shutdown: Stopper,
    task: JoinHandle<()>,
}

pub fn spawn(settings: GraphSettings, intake: Arc<MemIntake>) -> Running {
    let status = Arc::new(SourceStatus::new(
        &settings.name,
        "microsoft_graph",
        &settings.location(),
    ));
    let (shutdown, receiver) = Shutdown::new();
    let task = tokio::spawn(watch(settings, intake.clone(), status.clone(), receiver));
    Running {
        intake,
        status,
        shutdown,
        task,
    }
}

impl Running {
    /// Asks the watcher to stop and waits for it, at most 10 s (the promised bound).
    pub async fn stop(self) -> Arc<SourceStatus> {
        self.shutdown.stop();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the watcher stops within 10 s of shutdown")
            .expect("the watcher task did not panic");
        self.status
    }
}

/// Waits until `done()` holds, checking every 25 ms, at most 30 s.
pub async fn wait_for(what: &str, done: impl FnMut() -> bool) {
    wait_within(what, Duration::from_secs(30), done).await;
}

/// Waits until `done()` holds, checking every 25 ms, at most `limit`.
pub async fn wait_within(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether every message in the inbox is read.
pub fn all_read(stand_in: &GraphStandIn) -> bool {
    stand_in.messages(USER, "inbox").iter().all(|m| m.is_read)
}

/// The identity the watcher gives message `id`.
pub fn identity(id: &str) -> String {
    format!("graph:{USER}/inbox:{id}")
}
