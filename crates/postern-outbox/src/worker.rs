//! [`Sender`]: takes due mail from the outbox table, claims it, hands it to a [`Transport`] and
//! records the outcome. The loop around it is `postern-work`'s, as for every queue of postern:
//! one mail at a time, each claimed in a committed transaction before it is sent, under this
//! process's lease (see `postern_store::leases`): sent only while the lease is fresh, and its
//! outcome recorded only while the mail is still claimed under it.

use std::sync::Arc;
use std::time::Duration;

use postern_store::{Lease, LeaseId, LeaseTimes, OutboxMail, Store, StoreError, Timestamp};
use postern_work::{Again, Pace, Queue, Ran, RetryPolicy, StoreFailure, Tally, Worker};
use tracing::Instrument as _;

use postern_vocab::backoff::ceil_seconds;
use postern_vocab::{Backoff, Shutdown};

use crate::{AnyTransport, DeliveryError, OutboxError, Outgoing, Transport};

/// How often recording an outcome is tried when the store fails temporarily. Not recording a
/// sent mail means sending it again once its claim has lapsed, so this is worth a short wait.
const RECORD_ATTEMPTS: u32 = 3;
/// The wait between those tries.
const RECORD_PAUSE: Duration = Duration::from_millis(500);
/// The longest pause of [`Sender::run`] after consecutive store failures.
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(60);

/// Tuning of a [`Sender`]. The defaults suit `postern serve`.
#[derive(Debug, Clone)]
pub struct SenderOptions {
    /// When to retry after a temporary failure, and when to give up.
    pub retry: RetryPolicy,
    /// How old a claim taken without a lease (by a postern before leases) must be before
    /// another worker may take the mail over. It must exceed the longest delivery (the SMTP
    /// transport stops one after eight times its step timeout, 4 min by default), or a slow
    /// delivery could be taken over and sent twice.
    pub claim_timeout: Duration,
    /// The lease claims are taken under: a mail whose worker died or stalled is sent by
    /// another once the lease has expired.
    pub lease: LeaseTimes,
    /// How many mails [`Sender::run`] takes per round.
    pub batch: i64,
    /// How long [`Sender::run`] sleeps when the outbox had nothing more to send.
    pub interval: Duration,
}

impl SenderOptions {
    /// The outbox's retry schedule: 30 s doubling to 1 h, each ±20 % so that mail which failed
    /// together (a relay restart) does not come back together; the tenth failure is final,
    /// about four and a half hours after the first.
    pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy::new(
        Backoff::new(Duration::from_secs(30), Duration::from_secs(3600)),
        10,
    );
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            retry: SenderOptions::DEFAULT_RETRY,
            claim_timeout: Duration::from_secs(15 * 60),
            lease: LeaseTimes::default(),
            batch: 20,
            interval: Duration::from_secs(2),
        }
    }
}

/// What one [`Sender::deliver_due`] round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Handed over for good (relay said 250, or the file is written).
    pub sent: u64,
    /// Failed temporarily; queued again for later.
    pub retried: u64,
    /// Failed for good (permanent failure, or the last attempt allowed).
    pub failed: u64,
    /// Not attempted: another worker holds its claim, or it was sent meanwhile.
    pub skipped: u64,
}

impl Report {
    /// How many due mails this round looked at.
    pub fn total(&self) -> u64 {
        self.sent + self.retried + self.failed + self.skipped
    }
}

impl Tally for Report {
    fn add(&mut self, job: Report) {
        self.sent += job.sent;
        self.retried += job.retried;
        self.failed += job.failed;
        self.skipped += job.skipped;
    }
}

/// How an attempt ended, as it is written to the row.
enum Outcome {
    Sent,
    Retry { error: String, at: Timestamp },
    Failed { error: String },
}

/// Delivers queued mail. Cheap to share: hold it in an `Arc`, or clone the store into several
/// senders (they coordinate through claims in the database, not in memory).
#[derive(Debug)]
pub struct Sender<T = AnyTransport> {
    /// The database holding the outbox; cloned from the binary's pool.
    store: Store,
    /// Where mail goes (shared with the loop's tasks).
    transport: Arc<T>,
    /// Retry, claim and loop tuning.
    options: SenderOptions,
    /// The lease claims are taken under, taken at the first claim and shared by every round.
    lease: Arc<tokio::sync::OnceCell<Lease>>,
}

impl<T: Transport + 'static> Sender<T> {
    /// A sender with [`SenderOptions::default`].
    pub fn new(store: Store, transport: T) -> Sender<T> {
        Sender {
            store,
            transport: Arc::new(transport),
            options: SenderOptions::default(),
            lease: Arc::default(),
        }
    }

    /// The same sender with other options.
    pub fn with_options(mut self, options: SenderOptions) -> Sender<T> {
        self.options = options;
        self
    }

    /// The transport mail goes through.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Sends up to `limit` due mails, oldest first, one after the other, and records each
    /// outcome. A mail that fails is recorded and the round goes on; only a store failure ends
    /// it early, with the error.
    pub async fn deliver_due(&self, limit: i64) -> Result<Report, OutboxError> {
        self.deliver_due_at(Timestamp::now(), limit).await
    }

    /// [`Sender::deliver_due`] for the mail that is due at `now`, which may lie in the future:
    /// "retry now" for an administrator, and a way for tests to skip a back-off without
    /// waiting. Claims still age by the real clock.
    pub async fn deliver_due_at(&self, now: Timestamp, limit: i64) -> Result<Report, OutboxError> {
        self.worker(Some(now), limit)
            .round(&Shutdown::never())
            .await
            .map(|round| round.tally)
    }

    /// Delivers due mail until `shutdown` stops it: a round of up to
    /// [`SenderOptions::batch`], then a pause of [`SenderOptions::interval`] unless the round
    /// was full. Shutdown is looked at between mails, never during one, so a mail the relay has
    /// accepted is always recorded. Store failures are logged and retried after a growing pause
    /// (up to a minute); they never end the loop.
    pub async fn run(&self, shutdown: Shutdown) {
        self.worker(None, self.options.batch)
            .run(shutdown, None)
            .await;
    }

    /// The loop over this sender's outbox, listing `page` mails a round due at `now` (the
    /// clock when `None`).
    fn worker(&self, now: Option<Timestamp>, page: i64) -> Worker<Outbox<T>> {
        let outbox = Outbox {
            store: self.store.clone(),
            transport: self.transport.clone(),
            options: self.options.clone(),
            lease: self.lease.clone(),
            now,
        };
        let pace = Pace {
            page,
            chunk: 1,
            jobs: 1,
            budget: None,
            poll: self.options.interval,
            store_backoff: Backoff::new(self.options.interval.saturating_mul(2), MAX_ERROR_PAUSE),
            again: Again::WhenFull,
        };
        Worker::new(Arc::new(outbox), pace)
    }
}

/// The outbox as a queue of `postern-work`: one key, one mail per job.
struct Outbox<T> {
    store: Store,
    transport: Arc<T>,
    options: SenderOptions,
    lease: Arc<tokio::sync::OnceCell<Lease>>,
    /// When listed mail is due; the clock when `None`.
    now: Option<Timestamp>,
}

impl<T: Transport + 'static> Queue for Outbox<T> {
    type Key = ();
    type Item = i64;
    type Tally = Report;
    type Error = OutboxError;

    fn keys(&self) -> &[()] {
        &[()]
    }

    async fn due(&self, (): (), limit: i64) -> Result<Vec<i64>, OutboxError> {
        let now = self.now.unwrap_or_else(Timestamp::now);
        let mut tx = self.store.begin().await?;
        let due = tx.due_outbox(now, limit).await?;
        tx.commit().await?;
        Ok(due.into_iter().map(|mail| mail.id).collect())
    }

    async fn run(&self, (): (), job: Vec<i64>) -> Result<Ran<Report>, OutboxError> {
        let mut report = Report::default();
        for id in job {
            // Every line about this mail names it (and the message it answers, once read).
            let span =
                tracing::info_span!("outbox", outbox_id = id, inbound_id = tracing::field::Empty);
            self.deliver_one(id, &mut report).instrument(span).await?;
        }
        Ok(Ran::Done(report))
    }

    fn store_failed(&self, failure: StoreFailure<'_, OutboxError>, retry_in: Duration) {
        match failure {
            StoreFailure::Round(e) => {
                tracing::warn!(error = %e, retry_in = ?retry_in, "outbox round failed");
            }
            // A mail's job records or fails the round; it never ends unrecorded.
            StoreFailure::EveryJob { unrecorded } => {
                tracing::warn!(unrecorded, retry_in = ?retry_in, "outbox round failed");
            }
        }
    }
}

impl<T: Transport> Outbox<T> {
    /// Claims, sends and records one mail.
    async fn deliver_one(&self, id: i64, report: &mut Report) -> Result<(), OutboxError> {
        let lease = self
            .lease
            .get_or_try_init(|| async {
                let holder = format!("outbox sender, pid {}", std::process::id());
                Lease::acquire(&self.store, &holder, self.options.lease).await
            })
            .await?;
        // No lease this process is sure of (the database could not be reached to renew it):
        // claim nothing until there is one.
        let Some(lease_id) = lease.current() else {
            report.skipped += 1;
            return Ok(());
        };
        let Some((mail, raw)) = self.claim(id, lease_id).await? else {
            report.skipped += 1;
            return Ok(());
        };
        if let Some(inbound_id) = mail.inbound_id {
            tracing::Span::current().record("inbound_id", inbound_id);
        }
        let attempt = mail.attempts.saturating_add(1);
        let result = if !lease.holds(lease_id) {
            // Stalled since the claim for longer than the lease is sure to live: another
            // instance may be sending it now.
            tracing::warn!(
                outbox_id = id,
                "lease lapsed before sending; leaving the mail to others"
            );
            report.skipped += 1;
            return Ok(());
        } else if mail.recipients.is_empty() {
            Err(DeliveryError::Permanent("no recipients".to_owned()))
        } else {
            self.transport
                .send(Outgoing {
                    id,
                    recipients: &mail.recipients,
                    raw: &raw,
                })
                .await
        };
        let outcome = match result {
            Ok(()) => {
                tracing::info!(outbox_id = id, kind = %mail.kind, attempt, "mail sent");
                report.sent += 1;
                Outcome::Sent
            }
            Err(DeliveryError::Permanent(error)) => {
                tracing::warn!(outbox_id = id, kind = %mail.kind, attempt, %error, "mail failed");
                report.failed += 1;
                Outcome::Failed { error }
            }
            Err(DeliveryError::Temporary(error)) if self.options.retry.gives_up(attempt) => {
                let error = format!("gave up after {attempt} attempts: {error}");
                tracing::warn!(outbox_id = id, kind = %mail.kind, attempt, %error, "mail failed");
                report.failed += 1;
                Outcome::Failed { error }
            }
            Err(DeliveryError::Temporary(error)) => {
                let at = Timestamp::now().plus_seconds(self.options.retry.delay_seconds(attempt));
                tracing::info!(outbox_id = id, kind = %mail.kind, attempt, %error, retry_at = %at,
                    "mail deferred");
                report.retried += 1;
                Outcome::Retry { error, at }
            }
        };
        let recorded = self.record(id, lease_id, &outcome).await;
        if recorded.is_err() {
            // The claim stays with this lease; giving it up frees it for another instance (or
            // this one, under its next lease) instead of for ever.
            lease.give_up(lease_id);
        }
        recorded
    }

    /// Claims `id` and reads it afresh (another worker may have tried it since it was listed).
    /// `None` when the claim is refused.
    async fn claim(
        &self,
        id: i64,
        lease: LeaseId,
    ) -> Result<Option<(OutboxMail, Vec<u8>)>, OutboxError> {
        let stale_before = Timestamp::now().plus_seconds(-ceil_seconds(self.options.claim_timeout));
        let mut tx = self.store.begin().await?;
        if !tx.claim_outbox(id, Some(lease), stale_before).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let mail = tx.outbox_mail(id).await?;
        let raw = tx.outbox_raw(id).await?;
        // Committed before sending: the claim must be visible to other workers during the
        // attempt, and no transaction (on SQLite, the one writer) may stay open over the network.
        tx.commit().await?;
        Ok(mail.zip(raw))
    }

    /// Writes `outcome` to the row if it is still claimed under `lease` (fencing), trying
    /// again briefly if the store fails temporarily.
    async fn record(&self, id: i64, lease: LeaseId, outcome: &Outcome) -> Result<(), OutboxError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.try_record(id, lease, outcome).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_temporary() && tries < RECORD_ATTEMPTS => {
                    tracing::warn!(outbox_id = id, error = %e, "recording the outcome failed");
                    tokio::time::sleep(RECORD_PAUSE).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn try_record(
        &self,
        id: i64,
        lease: LeaseId,
        outcome: &Outcome,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        if !tx.fence_outbox(id, lease).await? {
            tracing::warn!(
                outbox_id = id,
                "claim taken over by another instance meanwhile; outcome not recorded"
            );
            return tx.rollback().await;
        }
        match outcome {
            Outcome::Sent => tx.mark_outbox_sent(id).await?,
            Outcome::Retry { error, at } => tx.mark_outbox_failed(id, error, Some(*at)).await?,
            Outcome::Failed { error } => tx.mark_outbox_failed(id, error, None).await?,
        };
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The figures the crate documents; the arithmetic itself is postern_vocab's, tested there.
    #[test]
    fn the_default_waits_30_s_doubling_to_an_hour_and_gives_up_at_the_tenth_failure() {
        let p = SenderOptions::default().retry;
        let middle = |attempt| p.backoff.delay_at(attempt, 0.5).as_secs();
        let waits: Vec<u64> = (1..=9).map(middle).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let band = (p.backoff.delay_at(1, 0.0), p.backoff.delay_at(1, 1.0));
        assert_eq!(band, (Duration::from_secs(24), Duration::from_secs(36)));
        assert!(!p.gives_up(9) && p.gives_up(10));
    }
}
