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
//!
//! The loop is `postern-work`'s, as for every queue of postern: pages of due messages, each
//! message a job of its own, up to the queue's concurrency at once under a budget of their
//! sizes, the page read again as long as it brings progress.

use std::sync::Arc;
use std::time::Duration;

use postern_store::{StoreError, Timestamp};
use postern_vocab::{Backoff, Shutdown};
use postern_work::{Again, Pace, Queue, Ran, StoreFailure, Worker};
use tokio::sync::Notify;
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

    /// Runs until `shutdown` stops it; the messages in hand are finished first, and no other
    /// is started. `report` hears about every message.
    pub async fn run(
        self: Arc<Self>,
        shutdown: Shutdown,
        report: impl Fn(QueueEvent) + Send + Sync + 'static,
    ) {
        self.worker(Arc::new(report))
            .run(shutdown, Some(&self.wake))
            .await;
    }

    /// Processes one page of the queue; returns how many messages were looked at.
    pub async fn work_once(
        &self,
        report: Arc<impl Fn(QueueEvent) + Send + Sync + 'static>,
    ) -> Result<usize, StoreError> {
        self.worker(report)
            .round(&Shutdown::never())
            .await
            .map(|round| round.looked_at)
    }

    fn worker<R>(&self, report: Arc<R>) -> Worker<Processing<R>>
    where
        R: Fn(QueueEvent) + Send + Sync + 'static,
    {
        let processing = Processing {
            processor: self.processor.clone(),
            report,
        };
        let pace = Pace {
            page: PAGE,
            chunk: 1,
            jobs: self.concurrency,
            budget: Some(IN_FLIGHT_KIB),
            poll: POLL_INTERVAL,
            store_backoff: STORE_BACKOFF,
            again: Again::AfterProgress,
        };
        Worker::new(Arc::new(processing), pace)
    }
}

/// The processing queue as a queue of `postern-work`: one key, one message per job, each
/// claimed inside the transaction that processes it.
struct Processing<R> {
    processor: Arc<Processor>,
    report: Arc<R>,
}

/// A due message: its id, its Message-ID (for the log span) and its size in bytes.
type Due = (i64, Option<String>, i64);

impl<R: Fn(QueueEvent) + Send + Sync + 'static> Queue for Processing<R> {
    type Key = ();
    type Item = Due;
    type Tally = ();
    type Error = StoreError;

    fn keys(&self) -> &[()] {
        &[()]
    }

    async fn due(&self, (): (), limit: i64) -> Result<Vec<Due>, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.processor.store().begin_read_only().await?;
        let due = tx
            .due_inbound(None, now, now.plus_seconds(-STALE_CLAIM_SECONDS), limit)
            .await?;
        tx.commit().await?;
        Ok(due
            .into_iter()
            .map(|message| (message.id, message.message_id, message.size))
            .collect())
    }

    fn weight(&self, &(_, _, size): &Due) -> u32 {
        u32::try_from(size / 1024).unwrap_or(u32::MAX)
    }

    async fn run(&self, (): (), job: Vec<Due>) -> Result<Ran<()>, StoreError> {
        let mut ran = Ran::Done(());
        for (id, message_id) in job.into_iter().map(|(id, message_id, _)| (id, message_id)) {
            // Every line about this message, the report's included, names it.
            let span = tracing::info_span!(
                "message",
                inbound_id = id,
                message_id = message_id.as_deref()
            );
            let event = async {
                let event = process_one(&self.processor, id).await;
                let unrecorded = matches!(event, QueueEvent::Retry { .. });
                (self.report)(event);
                unrecorded
            };
            if event.instrument(span).await {
                ran = Ran::Unrecorded;
            }
        }
        Ok(ran)
    }

    fn store_failed(&self, failure: StoreFailure<'_, StoreError>, retry_in: Duration) {
        match failure {
            StoreFailure::Round(error) => {
                tracing::warn!(%error, retry_in = ?retry_in, "cannot read the processing queue");
            }
            StoreFailure::EveryJob { unrecorded } => tracing::warn!(
                failed = unrecorded,
                retry_in = ?retry_in,
                "every message of the processing queue's page failed; pausing"
            ),
        }
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
