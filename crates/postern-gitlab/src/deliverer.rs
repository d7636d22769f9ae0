//! [`Deliverer`]: the worker that takes stored messages to GitLab.
//!
//! Each round, for each mailbox it serves, it lists the messages due (`received`, or
//! `failed_temporary` whose back-off has passed, or `processing` whose claim has lapsed because
//! its worker died or stalled), oldest first; claims them a chunk of
//! [`DelivererOptions::concurrency`] at a time in one transaction, under this process's lease
//! (`claim_inbound` is a conditional UPDATE, so of several workers on one PostgreSQL exactly
//! one wins each message); delivers the chunk at once, each message only while the lease is
//! fresh; and records the chunk's outcomes in one transaction, each only if the message is
//! still claimed under that lease (fencing, see `postern_store::leases`): `processed` with
//! handler `webhook`/`sidekiq`, `rejected` with the error kind and GitLab's reason, or
//! `failed_temporary` with the time of the next attempt.
//!
//! Exactly once, except one window for webhooks: if the process dies after GitLab accepted a
//! message but before the outcome is committed, its lease expires and another instance delivers
//! the message again — at most one duplicate of each message in flight, never a loss. Sidekiq
//! delivery closes that window with a marker key in Redis ([`crate::sidekiq`]). Shutdown waits
//! for the messages in flight. A temporary failure also pauses the mailbox for a growing
//! back-off (the destination is probably down): one attempt per step, not one per message.
//!
//! The loop is `postern-work`'s, as for every queue of postern: the mailboxes are its keys (each
//! paused on its own), a chunk is one job, one job runs at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use postern_store::{
    InboundFinish, InboundState, Lease, LeaseId, LeaseTimes, Mailbox, Store, StoreError, Timestamp,
};
use postern_vocab::ErrorKind;
use postern_vocab::backoff::ceil_seconds;
use postern_vocab::{Backoff, Shutdown};
use postern_work::{Again, Pace, Pauses, Queue, Ran, RetryPolicy, StoreFailure, Tally, Worker};
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::arbiter::{self, Arbiter, Decision};
use crate::deliver::{DeliveryFailure, Destination};
use crate::sidekiq::Pushed;

/// How often recording an outcome is tried when the store fails; not recording a delivered
/// message means delivering it again once its claim has lapsed.
const RECORD_ATTEMPTS: u32 = 5;
/// The pause between those tries.
const RECORD_PAUSE: Duration = Duration::from_millis(500);

/// Tuning of a [`Deliverer`]. The defaults suit `postern serve`.
#[derive(Debug, Clone)]
pub struct DelivererOptions {
    /// How many due messages one round takes per mailbox.
    pub batch: i64,
    /// How long to sleep when nothing was due and nobody called [`Deliverer::notify`].
    pub poll_interval: Duration,
    /// How old a claim taken without a lease (by a postern before leases) must be before
    /// another worker takes the message over. Must exceed the longest delivery (the webhook's
    /// 60 s timeout), or a slow delivery could be repeated.
    pub claim_timeout: Duration,
    /// The lease this deliverer's claims are taken under: a killed or stalled instance's
    /// messages go to another one once it has expired (see `postern_store::leases`).
    pub lease: LeaseTimes,
    /// The wait after each temporary failure, per message and for a mailbox whose destination
    /// went away (5 s doubling to 5 min, ±20 %). There is no last attempt: mail for GitLab is
    /// kept until it is accepted.
    pub retry: Backoff,
    /// How many messages of one mailbox are in flight at once. 1 keeps GitLab's arrival order
    /// strictly; a few more hide the round trips (they are claimed together and their outcomes
    /// recorded together, so a crash affects only those in flight).
    pub concurrency: usize,
    /// How many times in a row GitLab may refuse one message the same way
    /// ([`crate::webhook::REFUSED`]) before it is quarantined. Failures of GitLab itself
    /// (unreachable, 5xx) never quarantine: mail waits for GitLab as long as it takes.
    pub quarantine_after: i64,
}

impl DelivererOptions {
    /// One message's retries as the schedule every queue of postern shares: [`Self::retry`]
    /// between attempts, given up (quarantined) at [`Self::quarantine_after`] refusals in a
    /// row. Failures of GitLab itself are never counted towards it.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new(self.retry, self.quarantine_after)
    }
}

impl Default for DelivererOptions {
    fn default() -> Self {
        DelivererOptions {
            batch: 50,
            poll_interval: Duration::from_secs(3),
            claim_timeout: Duration::from_secs(5 * 60),
            lease: LeaseTimes::default(),
            retry: Backoff::new(Duration::from_secs(5), Duration::from_secs(5 * 60)),
            concurrency: 4,
            quarantine_after: 8,
        }
    }
}

/// Running totals since start, for metrics and health.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Accepted by GitLab.
    pub delivered: AtomicU64,
    /// Refused by GitLab for good.
    pub rejected: AtomicU64,
    /// Failed temporarily and scheduled again.
    pub retried: AtomicU64,
    /// Delivered by another instance watching the same mailbox ([`crate::arbiter`]).
    pub elsewhere: AtomicU64,
}

/// What one [`Deliverer::deliver_due`] round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Accepted by GitLab.
    pub delivered: u64,
    /// Refused by GitLab for good.
    pub rejected: u64,
    /// Failed temporarily.
    pub retried: u64,
    /// Claimed by another worker first, or delivered (or being delivered) by another
    /// instance ([`crate::arbiter`]).
    pub skipped: u64,
}

impl Tally for Report {
    fn add(&mut self, job: Report) {
        self.delivered += job.delivered;
        self.rejected += job.rejected;
        self.retried += job.retried;
        self.skipped += job.skipped;
    }
}

struct Route {
    mailbox: Mailbox,
    destination: Destination,
}

/// Delivers stored messages of the mailboxes it serves. Share it in an `Arc`; run one per
/// process (several processes on one PostgreSQL coordinate through claims).
pub struct Deliverer {
    worker: Worker<Delivery>,
    wake: Notify,
}

/// The messages for GitLab as a queue of `postern-work`: keyed by mailbox, a chunk per job.
struct Delivery {
    store: Store,
    routes: Vec<Route>,
    /// The routes' mailboxes, in order: the queue's keys.
    mailboxes: Vec<Mailbox>,
    options: DelivererOptions,
    stats: Arc<DeliveryStats>,
    /// Per mailbox: consecutive temporary failures and the end of the current pause.
    paused: Pauses<Mailbox>,
    /// Arbitration with other instances on the same mailboxes, if any: set once by
    /// [`Deliverer::with_arbiter`], before the deliverer runs.
    arbiter: std::sync::OnceLock<Arc<Arbiter>>,
    /// The lease claims are taken under, taken at the first claim.
    lease: tokio::sync::OnceCell<Lease>,
}

/// A message due for delivery, and the claim age it was listed with.
struct Due {
    meta: postern_store::InboundMeta,
    stale_before: Timestamp,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let delivery = self.worker.queue();
        f.debug_struct("Deliverer")
            .field(
                "routes",
                &delivery
                    .routes
                    .iter()
                    .map(|r| (r.mailbox, r.destination.describe()))
                    .collect::<Vec<_>>(),
            )
            .field("options", &delivery.options)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer for `routes` (from [`destinations`](crate::destinations)).
    pub fn new(
        store: Store,
        routes: Vec<(Mailbox, Destination)>,
        options: DelivererOptions,
    ) -> Deliverer {
        let pace = Pace {
            page: options.batch,
            chunk: options.concurrency.max(1),
            jobs: 1,
            budget: None,
            poll: options.poll_interval,
            store_backoff: Backoff::new(
                options.poll_interval.saturating_mul(2),
                Duration::from_secs(60),
            ),
            again: Again::WhenFull,
        };
        let delivery = Delivery {
            store,
            mailboxes: routes.iter().map(|(mailbox, _)| *mailbox).collect(),
            routes: routes
                .into_iter()
                .map(|(mailbox, destination)| Route {
                    mailbox,
                    destination,
                })
                .collect(),
            paused: Pauses::new(options.retry),
            options,
            stats: Arc::new(DeliveryStats::default()),
            arbiter: std::sync::OnceLock::new(),
            lease: tokio::sync::OnceCell::new(),
        };
        Deliverer {
            worker: Worker::new(Arc::new(delivery), pace),
            wake: Notify::new(),
        }
    }

    /// Claims every message that has a source identity through `arbiter` before delivering it
    /// (see [`crate::arbiter`]): other companion instances watching the same mailboxes with
    /// stores of their own then never deliver it too.
    pub fn with_arbiter(self, arbiter: Arc<Arbiter>) -> Deliverer {
        // Only ever set here, on a deliverer just made: the first setting is the one.
        let _ = self.worker.queue().arbiter.set(arbiter);
        self
    }

    /// Wakes [`Deliverer::run`] at once: call it after storing a message. A wake-up while a
    /// round is running is kept for after it, so none is lost.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Totals since start.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.worker.queue().stats.clone()
    }

    /// The mailboxes served.
    pub fn mailboxes(&self) -> Vec<Mailbox> {
        self.worker.queue().mailboxes.clone()
    }

    /// Delivers until `shutdown` stops it. Shutdown is looked at between messages, never
    /// during one, so a message GitLab accepted is always recorded. Store failures are logged
    /// and retried after a pause; they never end the loop.
    pub async fn run(&self, shutdown: Shutdown) {
        self.worker.run(shutdown, Some(&self.wake)).await;
    }

    /// One round over every mailbox that is not paused, without a shutdown signal.
    pub async fn deliver_due(&self) -> Result<Report, StoreError> {
        self.worker
            .round(&Shutdown::never())
            .await
            .map(|round| round.tally)
    }
}

impl Queue for Delivery {
    type Key = Mailbox;
    type Item = Due;
    type Tally = Report;
    type Error = StoreError;

    fn keys(&self) -> &[Mailbox] {
        &self.mailboxes
    }

    async fn due(&self, mailbox: Mailbox, limit: i64) -> Result<Vec<Due>, StoreError> {
        // Timestamps are whole seconds: a claim exactly `claim_timeout` old counts as stale,
        // so a zero timeout (taking over a killed process's claims at restart) also takes
        // claims made in the current second.
        let stale_before = Timestamp::now().plus_seconds(1 - seconds(self.options.claim_timeout));
        let mut tx = self.store.begin().await?;
        let due = tx
            .due_inbound(Some(mailbox), Timestamp::now(), stale_before, limit)
            .await?;
        tx.commit().await?;
        Ok(due
            .into_iter()
            .map(|meta| Due { meta, stale_before })
            .collect())
    }

    async fn run(&self, mailbox: Mailbox, chunk: Vec<Due>) -> Result<Ran<Report>, StoreError> {
        let mut report = Report::default();
        let (Some(route), Some(first)) = (
            self.routes.iter().find(|route| route.mailbox == mailbox),
            chunk.first(),
        ) else {
            return Ok(Ran::Done(report));
        };
        // One transaction claims the whole chunk: a claim is taken before delivery, so
        // batching it widens no window.
        let metas: Vec<_> = chunk.iter().map(|due| &due.meta).collect();
        let lease = self.lease().await?;
        let Some(lease_id) = lease.current() else {
            // Not sure to hold a lease (the database could not be reached to renew it): claim
            // nothing until it can be.
            report.skipped += chunk.len() as u64;
            return Ok(Ran::Done(report));
        };
        let claimed = self.claim(&metas, lease_id, first.stale_before).await?;
        report.skipped += (chunk.len() - claimed.len()) as u64;
        let outcomes = futures_util::future::join_all(claimed.into_iter().map(|message| {
            // Every line about this message names it.
            let span = tracing::info_span!(
                "message",
                inbound_id = message.meta.id,
                message_id = message.meta.message_id.as_deref()
            );
            self.deliver_one(route, message, lease, lease_id)
                .instrument(span)
        }))
        .await;
        // The chunk's outcomes in one commit: the messages in flight at a crash are the
        // same chunk either way, and one commit instead of one per message is most of
        // the store's work per delivery.
        let recorded = match self.record(&outcomes, lease_id).await {
            Ok(recorded) => recorded,
            Err(error) => {
                // The claims stay with this lease; giving it up frees them for another
                // instance (or this one, under its next lease) instead of for ever.
                lease.give_up(lease_id);
                return Err(error);
            }
        };
        for (_, record) in outcomes.iter().filter(|(id, _)| recorded.contains(id)) {
            match record {
                Record::Finish(finish) if finish.state == InboundState::Processed => {
                    report.delivered += 1;
                }
                Record::Finish(finish) if finish.state == InboundState::Ignored => {
                    report.skipped += 1;
                }
                Record::Finish(_) => report.rejected += 1,
                Record::Retry { kind, .. } if *kind == ErrorKind::ClaimedByAnotherInstance => {
                    report.skipped += 1;
                }
                Record::Retry { .. } => report.retried += 1,
                Record::Lost => {}
            }
        }
        report.skipped += (outcomes.len() - recorded.len()) as u64;
        Ok(Ran::Done(report))
    }

    fn pauses(&self) -> Option<&Pauses<Mailbox>> {
        Some(&self.paused)
    }

    fn store_failed(&self, failure: StoreFailure<'_, StoreError>, retry_in: Duration) {
        match failure {
            StoreFailure::Round(e) => {
                tracing::warn!(error = %e, retry_in = ?retry_in, "gitlab delivery round failed");
            }
            // A chunk records or fails the round; it never ends unrecorded.
            StoreFailure::EveryJob { unrecorded } => {
                tracing::warn!(unrecorded, retry_in = ?retry_in, "gitlab delivery round failed");
            }
        }
    }
}

impl Delivery {
    /// This process's lease, taken at the first call.
    async fn lease(&self) -> Result<&Lease, StoreError> {
        self.lease
            .get_or_try_init(|| async {
                let holder = format!("gitlab deliverer, pid {}", std::process::id());
                Lease::acquire(&self.store, &holder, self.options.lease).await
            })
            .await
    }

    /// Claims the messages of `chunk` that nobody else holds under `lease`, in one
    /// transaction, and reads them.
    async fn claim(
        &self,
        chunk: &[&postern_store::InboundMeta],
        lease: LeaseId,
        stale_before: Timestamp,
    ) -> Result<Vec<postern_store::InboundMessage>, StoreError> {
        let mut tx = self.store.begin().await?;
        let mut claimed = Vec::with_capacity(chunk.len());
        for meta in chunk {
            if tx.claim_inbound(meta.id, Some(lease), stale_before).await?
                && let Some(message) = tx.inbound(meta.id).await?
            {
                claimed.push(message);
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Delivers one message claimed under `lease_id`; returns what to record for it.
    async fn deliver_one(
        &self,
        route: &Route,
        message: postern_store::InboundMessage,
        lease: &Lease,
        lease_id: LeaseId,
    ) -> (i64, Record) {
        let id = message.meta.id;
        if !lease.holds(lease_id) {
            // Stalled since the claim for longer than the lease is sure to live: another
            // instance may be delivering it now.
            tracing::warn!(
                id,
                "lease lapsed before delivery; leaving the message to others"
            );
            return (id, Record::Lost);
        }
        let started = Instant::now();
        let decision = arbiter::decide(
            self.arbiter.get().map(Arc::as_ref),
            route.mailbox,
            &message.meta,
            &self.options.retry,
        )
        .await;
        let result = match decision {
            Decision::Elsewhere(finish) => {
                self.stats.elsewhere.fetch_add(1, Ordering::Relaxed);
                return (id, Record::Finish(finish));
            }
            Decision::Wait { reason, at } => {
                let kind = ErrorKind::ClaimedByAnotherInstance;
                return (id, Record::Retry { kind, reason, at });
            }
            Decision::Failed(failure) => Err(failure),
            Decision::Recorded => Ok(Pushed::Already),
            Decision::Deliver(claimed) => {
                let result = route
                    .destination
                    .deliver(&message.raw, &message.meta.content_identity)
                    .await;
                if let (Some(arbiter), Some(identity)) = (self.arbiter.get(), claimed.as_deref()) {
                    // GitLab's verdict, acceptance or refusal, is final: another instance
                    // must not ask again (a refusal also answered the sender).
                    let handed = !matches!(result, Err(DeliveryFailure::Temporary { .. }));
                    arbiter::settle(arbiter, identity, handed).await;
                }
                result
            }
        };
        let mailbox = route.mailbox.as_str();
        let size = message.raw.len();
        match result {
            Ok(pushed) => {
                let mut outcome = serde_json::json!({"delivered_to": route.destination.describe()});
                if pushed == Pushed::Already {
                    // Delivered by an attempt whose outcome a crash kept from being recorded.
                    outcome["already_delivered"] = serde_json::Value::Bool(true);
                    tracing::info!(
                        mailbox,
                        id,
                        "already on GitLab's queue from an earlier attempt; not pushed again"
                    );
                }
                let finish = InboundFinish {
                    state: InboundState::Processed,
                    handler: Some(route.destination.handler()),
                    error_kind: None,
                    reason: None,
                    outcome: Some(outcome.to_string()),
                };
                self.paused.resume(route.mailbox);
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);

                tracing::info!(
                    mailbox,
                    id,
                    size,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "delivered to GitLab"
                );
                (id, Record::Finish(finish))
            }
            Err(DeliveryFailure::Rejected { kind, reason }) => {
                let finish = InboundFinish {
                    state: InboundState::Rejected,
                    handler: Some(route.destination.handler()),
                    error_kind: Some(kind),
                    reason: Some(reason.clone()),
                    outcome: None,
                };
                self.paused.resume(route.mailbox);
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);

                tracing::warn!(
                    mailbox,
                    id,
                    size,
                    kind = kind.as_str(),
                    reason,
                    "GitLab rejected the message"
                );
                (id, Record::Finish(finish))
            }
            Err(DeliveryFailure::Temporary { kind, reason }) => {
                let delay = self.options.retry_policy().delay(message.meta.attempts);
                let at = Timestamp::now().plus_seconds(ceil_seconds(delay));
                let failures = self.paused.pause(route.mailbox);
                self.stats.retried.fetch_add(1, Ordering::Relaxed);

                tracing::warn!(mailbox, id, kind = kind.as_str(), reason, attempt = message.meta.attempts, consecutive_failures = failures, retry_in = ?delay, "delivery to GitLab failed; will retry");
                (id, Record::Retry { kind, reason, at })
            }
        }
    }

    /// Writes the outcomes of a chunk in one transaction, each only if its message is still
    /// claimed under `lease` (fencing: a message taken over meanwhile is another instance's
    /// now), retrying a few times on temporary store errors. Returns the ids recorded.
    async fn record(
        &self,
        outcomes: &[(i64, Record)],
        lease: LeaseId,
    ) -> Result<Vec<i64>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                let mut tx = self.store.begin().await?;
                let mut recorded = Vec::with_capacity(outcomes.len());
                for (id, record) in outcomes {
                    if matches!(record, Record::Lost) {
                        continue;
                    }
                    if !tx.fence_inbound(*id, lease).await? {
                        tracing::warn!(
                            id,
                            "claim taken over by another instance meanwhile; outcome not recorded"
                        );
                        continue;
                    }
                    recorded.push(*id);
                    match record {
                        Record::Finish(finish) => tx.finish_inbound(*id, finish).await?,
                        Record::Retry { kind, reason, at } => {
                            let streak = tx.retry_inbound_at(*id, *kind, reason, *at).await?;
                            if *kind == crate::webhook::REFUSED
                                && self.options.retry_policy().gives_up(streak)
                            {
                                tracing::warn!(
                                    id,
                                    streak,
                                    reason,
                                    "GitLab keeps refusing the message; quarantined"
                                );
                                tx.quarantine_inbound(*id, *kind, reason).await?;
                            }
                        }
                        Record::Lost => {}
                    }
                }
                tx.commit().await?;
                Ok::<_, StoreError>(recorded)
            }
            .await;
            match result {
                Ok(recorded) => return Ok(recorded),
                Err(e) if e.is_temporary() && attempt < RECORD_ATTEMPTS => {
                    let ids: Vec<i64> = outcomes.iter().map(|(id, _)| *id).collect();
                    tracing::warn!(?ids, error = %e, "recording delivery outcomes failed; trying again");
                    tokio::time::sleep(RECORD_PAUSE).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// How one message's turn ended, as written to the store: finished (`processed` or `rejected`)
/// or to be retried; or not at all, because the lease it was claimed under lapsed first.
enum Record {
    Finish(InboundFinish),
    Retry {
        kind: ErrorKind,
        reason: String,
        at: Timestamp,
    },
    Lost,
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
