//! The processing queue: stored messages that are not finished yet, worked off by a few tasks.
//!
//! Messages arrive in the queue from [`crate::intake::take_in`] (watchers) and stay there after a
//! crash or a temporary failure, so the queue is the store itself (`state` of
//! `inbound_messages`), never memory. Each message is claimed **inside** the transaction that
//! processes it: on PostgreSQL a second instance's claim waits for that transaction and then
//! finds the message finished; on SQLite writers are serialised anyway. A process killed
//! mid-message rolls back and leaves the message `received`.

use std::sync::Arc;
use std::time::Duration;

use postern_store::{StoreError, Timestamp};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::processor::{Processor, ReceiveOutcome};

/// A `processing` claim older than this belongs to a dead processor (claims taken by this crate
/// live only inside a transaction; other claimers may commit them).
pub const STALE_CLAIM_SECONDS: i64 = 600;
/// How often the queue is looked at without a wake-up (other instances' intake, retries).
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Ids read from the queue at a time.
const PAGE: i64 = 256;
/// Raw bytes (KiB) of the messages processed at once. A message in hand costs about three
/// times its size (the bytes, the decoded parts, the text built from them), so a drain of
/// large messages runs two at a time while small ones still use every task. A message larger
/// than the budget runs alone.
const IN_FLIGHT_KIB: u32 = 2048;

/// Works off the processing queue with a bounded number of concurrent tasks.
pub struct ProcessingQueue {
    processor: Arc<Processor>,
    wake: Notify,
    concurrency: usize,
}

/// What happened to one queued message, for logs and metrics.
#[derive(Debug)]
pub enum QueueEvent {
    /// Processed (or refused) and committed, in `elapsed`.
    Finished {
        /// What happened (boxed: the other events are a few words).
        outcome: Box<ReceiveOutcome>,
        /// How long processing took.
        elapsed: Duration,
    },
    /// Another worker had it, or it was finished meanwhile.
    Skipped(i64),
    /// A temporary failure; it stays queued.
    Retry {
        /// The message.
        id: i64,
        /// Why.
        reason: String,
    },
}

impl ProcessingQueue {
    /// A queue over `processor`'s store, working `concurrency` messages at a time (at least 1).
    pub fn new(processor: Arc<Processor>, concurrency: usize) -> ProcessingQueue {
        ProcessingQueue {
            processor,
            wake: Notify::new(),
            concurrency: concurrency.max(1),
        }
    }

    /// New messages were stored: look at the queue now instead of at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `shutdown` turns true; the messages in hand are finished first. `report`
    /// hears about every message.
    pub async fn run(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
        report: impl Fn(QueueEvent) + Send + Sync + 'static,
    ) {
        let report = Arc::new(report);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let worked = match self.work_once(report.clone()).await {
                Ok(count) => count,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the processing queue; trying again");
                    0
                }
            };
            if worked > 0 {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Processes one page of the queue; returns how many messages were looked at.
    pub async fn work_once(
        &self,
        report: Arc<impl Fn(QueueEvent) + Send + Sync + 'static>,
    ) -> Result<usize, StoreError> {
        let now = Timestamp::now();
        let ids = {
            let mut tx = self.processor.store().begin_read_only().await?;
            let due = tx
                .due_inbound(None, now, now.plus_seconds(-STALE_CLAIM_SECONDS), PAGE)
                .await?;
            tx.commit().await?;
            due.into_iter()
                .map(|message| (message.id, message.message_id, message.size))
                .collect::<Vec<_>>()
        };
        let count = ids.len();
        let mut tasks = JoinSet::new();
        let budget = Arc::new(Semaphore::new(IN_FLIGHT_KIB as usize));
        for (id, message_id, size) in ids {
            while tasks.len() >= self.concurrency {
                tasks.join_next().await;
            }
            let kib = u32::try_from(size / 1024)
                .unwrap_or(u32::MAX)
                .clamp(1, IN_FLIGHT_KIB);
            let Ok(permit) = budget.clone().acquire_many_owned(kib).await else {
                break; // never closed
            };
            let processor = self.processor.clone();
            let report = report.clone();
            // Every line about this message, the report's included, names it.
            let span = tracing::info_span!(
                "message",
                inbound_id = id,
                message_id = message_id.as_deref()
            );
            tasks.spawn(
                async move {
                    report(process_one(&processor, id).await);
                    drop(permit);
                }
                .instrument(span),
            );
        }
        while tasks.join_next().await.is_some() {}
        Ok(count)
    }
}

async fn process_one(processor: &Processor, id: i64) -> QueueEvent {
    let stale_before = Timestamp::now().plus_seconds(-STALE_CLAIM_SECONDS);
    let started = std::time::Instant::now();
    // A failure of processing itself is recorded by `process_queued` (retry with back-off, or
    // quarantine); an error here means the store could not even be read or claimed from, and
    // the message simply stays where it is until the next look at the queue.
    match processor.process_queued(id, stale_before).await {
        Ok(Some(outcome)) => QueueEvent::Finished {
            outcome: Box::new(outcome),
            elapsed: started.elapsed(),
        },
        Ok(None) => QueueEvent::Skipped(id),
        Err(error) => QueueEvent::Retry {
            id,
            reason: error.to_string(),
        },
    }
}
