//! The processing queue: stored messages that are not finished yet, worked off by a few tasks.
//!
//! Messages arrive in the queue from [`crate::intake::Intake::take`] (a watcher's batch, or a
//! message whose processing failed for now) and stay there after a crash or a temporary
//! failure, so the queue is the store itself (`state` of `inbound_messages`), never memory. Each message is claimed **inside** the transaction that
//! processes it: on PostgreSQL a second instance's claim waits for that transaction and then
//! finds the message finished; on SQLite writers are serialised anyway. A process killed
//! mid-message rolls back and leaves the message `received`.
//!
//! A message whose processing fails is scheduled again by the processor
//! ([`crate::RetryPolicy`]: back-off, then quarantine). When the store itself fails — the queue
//! cannot be read, or every message of a page fails before its failure could even be recorded —
//! the queue backs off as a whole ([`STORE_BACKOFF`]) instead of asking again at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use postern_store::{StoreError, Timestamp};
use postern_vocab::{Backoff, Shutdown};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::processor::{Processor, ReceiveOutcome};

/// A `processing` claim older than this belongs to a dead processor (claims taken by this crate
/// live only inside a transaction; other claimers may commit them).
pub const STALE_CLAIM_SECONDS: i64 = 600;
/// How often the queue is looked at without a wake-up (other instances' intake, retries).
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// The pause after a round that made no progress because the store failed: from the poll
/// interval doubling to a minute, ±20 %, so a database that is down is not asked in a tight loop.
pub const STORE_BACKOFF: Backoff = Backoff::new(POLL_INTERVAL, Duration::from_secs(60));
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

    /// Runs until `shutdown` stops it; the messages in hand are finished first. `report`
    /// hears about every message.
    pub async fn run(
        self: Arc<Self>,
        shutdown: Shutdown,
        report: impl Fn(QueueEvent) + Send + Sync + 'static,
    ) {
        let report = Arc::new(report);
        let mut store_failures = STORE_BACKOFF.streak();
        loop {
            if shutdown.is_stopping() {
                return;
            }
            let pause = match self.work_page(report.clone()).await {
                Ok(page) if page.looked_at == 0 => {
                    store_failures.reset();
                    POLL_INTERVAL
                }
                Ok(page) if page.failed < page.looked_at => {
                    store_failures.reset();
                    continue;
                }
                Ok(page) => {
                    let pause = store_failures.next_delay();
                    tracing::warn!(
                        failed = page.failed,
                        retry_in = ?pause,
                        "every message of the processing queue's page failed; pausing"
                    );
                    pause
                }
                Err(error) => {
                    let pause = store_failures.next_delay();
                    tracing::warn!(%error, retry_in = ?pause, "cannot read the processing queue");
                    pause
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                () = shutdown.stopped() => {}
            }
        }
    }

    /// Processes one page of the queue; returns how many messages were looked at.
    pub async fn work_once(
        &self,
        report: Arc<impl Fn(QueueEvent) + Send + Sync + 'static>,
    ) -> Result<usize, StoreError> {
        self.work_page(report).await.map(|page| page.looked_at)
    }

    async fn work_page(
        &self,
        report: Arc<impl Fn(QueueEvent) + Send + Sync + 'static>,
    ) -> Result<Page, StoreError> {
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
        let looked_at = ids.len();
        let failed = Arc::new(AtomicUsize::new(0));
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
            let failed = failed.clone();
            // Every line about this message, the report's included, names it.
            let span = tracing::info_span!(
                "message",
                inbound_id = id,
                message_id = message_id.as_deref()
            );
            tasks.spawn(
                async move {
                    let event = process_one(&processor, id).await;
                    if matches!(event, QueueEvent::Retry { .. }) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    report(event);
                    drop(permit);
                }
                .instrument(span),
            );
        }
        while tasks.join_next().await.is_some() {}
        Ok(Page {
            looked_at,
            failed: failed.load(Ordering::Relaxed),
        })
    }
}

/// What one page of the queue came to.
struct Page {
    /// Messages read from the queue.
    looked_at: usize,
    /// Of those, messages that failed before their failure could be recorded (the store).
    failed: usize,
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
