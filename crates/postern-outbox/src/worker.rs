//! [`Sender`]: takes due mail from the outbox table, claims it, hands it to a [`Transport`] and
//! records the outcome.

use std::time::Duration;

use postern_store::{OutboxMail, Store, StoreError, Timestamp};
use tracing::Instrument as _;

use postern_vocab::backoff::ceil_seconds;
use postern_vocab::{Backoff, Shutdown};

use crate::retry::RetryPolicy;
use crate::{AnyTransport, DeliveryError, OutboxError, Outgoing, Transport};

/// How often recording an outcome is tried when the store fails temporarily. Not recording a
/// sent mail means sending it again once its claim is stale, so this is worth a short wait.
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
    /// How old a claim must be before another worker may take the mail over. It must exceed the
    /// longest delivery (the SMTP transport stops one after eight times its step timeout, 4 min
    /// by default), or a slow delivery could be taken over and sent twice; a mail whose worker
    /// died waits this long before it is sent by another.
    pub claim_timeout: Duration,
    /// How many mails [`Sender::run`] takes per round.
    pub batch: i64,
    /// How long [`Sender::run`] sleeps when the outbox had nothing more to send.
    pub interval: Duration,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            retry: RetryPolicy::default(),
            claim_timeout: Duration::from_secs(15 * 60),
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
    /// Where mail goes.
    transport: T,
    /// Retry, claim and loop tuning.
    options: SenderOptions,
}

impl<T: Transport> Sender<T> {
    /// A sender with [`SenderOptions::default`].
    pub fn new(store: Store, transport: T) -> Sender<T> {
        Sender {
            store,
            transport,
            options: SenderOptions::default(),
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
        self.deliver(now, limit, &Shutdown::never())
            .await
            .map(|(report, _)| report)
    }

    /// Delivers due mail until `shutdown` stops it: a round of up to
    /// [`SenderOptions::batch`], then a pause of [`SenderOptions::interval`] unless the round
    /// was full. Shutdown is looked at between mails, never during one, so a mail the relay has
    /// accepted is always recorded. Store failures are logged and retried after a growing pause
    /// (up to a minute); they never end the loop.
    pub async fn run(&self, shutdown: Shutdown) {
        let mut failures =
            Backoff::new(self.options.interval.saturating_mul(2), MAX_ERROR_PAUSE).streak();
        loop {
            let round = self.deliver(Timestamp::now(), self.options.batch, &shutdown);
            let pause = match round.await {
                Ok((_, true)) => return,
                Ok((report, false)) => {
                    failures.reset();
                    let full = i64::try_from(report.total()).is_ok_and(|n| n >= self.options.batch);
                    if full {
                        Duration::ZERO
                    } else {
                        self.options.interval
                    }
                }
                Err(e) => {
                    let pause = failures.next_delay();
                    tracing::warn!(error = %e, retry_in = ?pause, "outbox round failed");
                    pause
                }
            };
            tokio::select! {
                biased;
                () = shutdown.stopped() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round; the flag says whether `stop` stopped it.
    async fn deliver(
        &self,
        now: Timestamp,
        limit: i64,
        stop: &Shutdown,
    ) -> Result<(Report, bool), OutboxError> {
        let due = {
            let mut tx = self.store.begin().await?;
            let due = tx.due_outbox(now, limit).await?;
            tx.commit().await?;
            due
        };
        let mut report = Report::default();
        for mail in due {
            if stop.is_stopping() {
                return Ok((report, true));
            }
            // Every line about this mail names it (and the message it answers, once read).
            let span = tracing::info_span!(
                "outbox",
                outbox_id = mail.id,
                inbound_id = tracing::field::Empty
            );
            self.deliver_one(mail.id, &mut report)
                .instrument(span)
                .await?;
        }
        Ok((report, false))
    }

    /// Claims, sends and records one mail.
    async fn deliver_one(&self, id: i64, report: &mut Report) -> Result<(), OutboxError> {
        let Some((mail, raw)) = self.claim(id).await? else {
            report.skipped += 1;
            return Ok(());
        };
        if let Some(inbound_id) = mail.inbound_id {
            tracing::Span::current().record("inbound_id", inbound_id);
        }
        let attempt = mail.attempts.saturating_add(1);
        let result = if mail.recipients.is_empty() {
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
                let delay = self.options.retry.backoff.delay(attempt);
                let at = Timestamp::now().plus_seconds(ceil_seconds(delay));
                tracing::info!(outbox_id = id, kind = %mail.kind, attempt, %error, retry_at = %at,
                    "mail deferred");
                report.retried += 1;
                Outcome::Retry { error, at }
            }
        };
        self.record(id, &outcome).await
    }

    /// Claims `id` and reads it afresh (another worker may have tried it since it was listed).
    /// `None` when the claim is refused.
    async fn claim(&self, id: i64) -> Result<Option<(OutboxMail, Vec<u8>)>, OutboxError> {
        let stale_before = Timestamp::now().plus_seconds(-ceil_seconds(self.options.claim_timeout));
        let mut tx = self.store.begin().await?;
        if !tx.claim_outbox(id, stale_before).await? {
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

    /// Writes `outcome` to the row, trying again briefly if the store fails temporarily.
    async fn record(&self, id: i64, outcome: &Outcome) -> Result<(), OutboxError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.try_record(id, outcome).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_temporary() && tries < RECORD_ATTEMPTS => {
                    tracing::warn!(outbox_id = id, error = %e, "recording the outcome failed");
                    tokio::time::sleep(RECORD_PAUSE).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn try_record(&self, id: i64, outcome: &Outcome) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        match outcome {
            Outcome::Sent => tx.mark_outbox_sent(id).await?,
            Outcome::Retry { error, at } => tx.mark_outbox_failed(id, error, Some(*at)).await?,
            Outcome::Failed { error } => tx.mark_outbox_failed(id, error, None).await?,
        };
        tx.commit().await
    }
}
