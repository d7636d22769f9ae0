//! The outbox: mail composed inside a processing transaction and sent after it commits.
//!
//! Queuing in the same transaction as the tracker change means a notification exists exactly
//! when its comment does; the sender works from this table with retries. A `dedupe_key`
//! (e.g. `reject:<inbound id>`) keeps a retried message from queuing the same notice twice.
//!
//! A sender [claims](Tx::claim_outbox) an entry before it hands it to a relay: the claim is a
//! timestamp that only one transaction can set, so two workers that both saw the entry as due
//! never both send it. Marking the entry sent or failed clears the claim; a claim left behind by
//! a worker that died mid-send counts as abandoned once it is older than the caller's limit.

use crate::leases::claim_lapsed;
use crate::tx::{execute, fetch_all, fetch_optional, scalar_optional};
use crate::{LeaseId, StoreError, Timestamp, Tx};
use postern_vocab::named_enum;

named_enum! {
    /// Delivery state of an outbox entry.
    pub enum OutboxState {
        /// Waiting for `next_attempt_at`.
        Queued = "queued",
        /// Handed to the relay (or written to the folder).
        Sent = "sent",
        /// Given up on.
        Failed = "failed",
    }
}

/// An outbox entry, without its bytes (see [`Tx::outbox_raw`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxMail {
    /// Row id.
    pub id: i64,
    /// When it was queued.
    pub created_at: Timestamp,
    /// What it is: `notification`, `reject`, `thank_you` … (free text for the store).
    pub kind: String,
    /// Envelope recipients.
    pub recipients: Vec<String>,
    /// The inbound message that caused it, if any.
    pub inbound_id: Option<i64>,
    /// Delivery state.
    pub state: OutboxState,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Not to be tried before this time.
    pub next_attempt_at: Timestamp,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When it was sent.
    pub sent_at: Option<Timestamp>,
    /// Dedupe key, unique when present.
    pub dedupe_key: Option<String>,
    /// When a sender claimed it for the attempt in progress (see [`Tx::claim_outbox`]).
    pub claimed_at: Option<Timestamp>,
}

/// The stored row; recipients are a JSON array in a text column.
#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    created_at: Timestamp,
    kind: String,
    recipients: String,
    inbound_id: Option<i64>,
    state: OutboxState,
    attempts: i64,
    next_attempt_at: Timestamp,
    last_error: Option<String>,
    sent_at: Option<Timestamp>,
    dedupe_key: Option<String>,
    claimed_at: Option<Timestamp>,
}

impl TryFrom<OutboxRow> for OutboxMail {
    type Error = StoreError;

    fn try_from(r: OutboxRow) -> Result<OutboxMail, StoreError> {
        let recipients = serde_json::from_str(&r.recipients).map_err(|_| StoreError::Corrupt {
            column: "outbox.recipients",
            value: r.recipients.clone(),
        })?;
        Ok(OutboxMail {
            id: r.id,
            created_at: r.created_at,
            kind: r.kind,
            recipients,
            inbound_id: r.inbound_id,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            sent_at: r.sent_at,
            dedupe_key: r.dedupe_key,
            claimed_at: r.claimed_at,
        })
    }
}

/// The columns of an [`OutboxRow`] (never the message bytes, which only sending reads), for
/// every query that lists or finds entries.
macro_rules! select_outbox_row {
    () => {
        "SELECT id, created_at, kind, recipients, inbound_id, state, attempts, next_attempt_at,
                last_error, sent_at, dedupe_key, claimed_at
         FROM outbox"
    };
}

fn convert(rows: Vec<OutboxRow>) -> Result<Vec<OutboxMail>, StoreError> {
    rows.into_iter().map(OutboxMail::try_from).collect()
}

/// What [`Tx::enqueue_outbox`] stores.
#[derive(Debug, Clone)]
pub struct NewOutboxMail {
    /// Kind (`notification`, `reject`, `thank_you` …).
    pub kind: String,
    /// Envelope recipients.
    pub recipients: Vec<String>,
    /// The complete message.
    pub raw: Vec<u8>,
    /// The inbound message that caused it.
    pub inbound_id: Option<i64>,
    /// When present, a second entry with the same key is not queued.
    pub dedupe_key: Option<String>,
    /// Earliest send time; `None` is now.
    pub not_before: Option<Timestamp>,
}

/// Result of [`Tx::enqueue_outbox`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "id")]
pub enum EnqueueOutcome {
    /// Queued with this id.
    Queued(i64),
    /// An entry with the same dedupe key exists (this id); nothing was queued.
    Duplicate(i64),
}

/// Which entries [`Tx::list_outbox`] returns, newest first.
#[derive(Debug, Clone)]
pub struct OutboxFilter {
    /// Only this state.
    pub state: Option<OutboxState>,
    /// Only this kind.
    pub kind: Option<String>,
    /// At most this many.
    pub limit: i64,
}

impl Default for OutboxFilter {
    fn default() -> Self {
        OutboxFilter {
            state: None,
            kind: None,
            limit: 100,
        }
    }
}

impl Tx {
    /// Queues a message, unless its dedupe key is already used.
    pub async fn enqueue_outbox(
        &mut self,
        new: &NewOutboxMail,
    ) -> Result<EnqueueOutcome, StoreError> {
        let recipients = serde_json::to_string(&new.recipients)
            .map_err(|e| StoreError::Invalid(format!("recipients: {e}")))?;
        let now = Timestamp::now();
        let id = scalar_optional!(
            self,
            i64,
            "INSERT INTO outbox (created_at, kind, recipients, raw, inbound_id, next_attempt_at,
                                 dedupe_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id",
            now.0,
            &new.kind,
            &recipients,
            &new.raw,
            new.inbound_id,
            new.not_before.unwrap_or(now).0,
            &new.dedupe_key,
        )?;
        if let Some(id) = id {
            return Ok(EnqueueOutcome::Queued(id));
        }
        // Only the dedupe key is unique besides the id, so it is what conflicted.
        let existing = scalar_optional!(
            self,
            i64,
            "SELECT id FROM outbox WHERE dedupe_key = $1",
            &new.dedupe_key
        )?;
        existing
            .map(EnqueueOutcome::Duplicate)
            .ok_or(StoreError::NotFound(
                "outbox entry that conflicted on insert",
            ))
    }

    /// One entry, without bytes.
    pub async fn outbox_mail(&mut self, id: i64) -> Result<Option<OutboxMail>, StoreError> {
        let row = fetch_optional!(
            self,
            OutboxRow,
            concat!(select_outbox_row!(), " WHERE id = $1"),
            id
        )?;
        row.map(OutboxMail::try_from).transpose()
    }

    /// The bytes of one entry.
    pub async fn outbox_raw(&mut self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(scalar_optional!(
            self,
            Vec<u8>,
            "SELECT raw FROM outbox WHERE id = $1",
            id
        )?)
    }

    /// The first `max_bytes` of one entry's bytes (see [`Tx::inbound_head`]).
    pub async fn outbox_head(
        &mut self,
        id: i64,
        max_bytes: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // PostgreSQL's `substr(bytea, int, int)` takes 32-bit lengths.
        let length = i32::try_from(max_bytes).unwrap_or(i32::MAX);
        Ok(scalar_optional!(
            self,
            Vec<u8>,
            "SELECT substr(raw, 1, $2) FROM outbox WHERE id = $1",
            id,
            length
        )?)
    }

    /// Entries matching `filter`, newest first.
    pub async fn list_outbox(
        &mut self,
        filter: &OutboxFilter,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let rows = fetch_all!(
            self,
            OutboxRow,
            concat!(
                select_outbox_row!(),
                " WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR kind = $2)
                 ORDER BY id DESC LIMIT $3"
            ),
            filter.state.map(OutboxState::as_str),
            &filter.kind,
            filter.limit.max(0),
        )?;
        convert(rows)
    }

    /// Queued entries whose time has come, oldest first.
    pub async fn due_outbox(
        &mut self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let rows = fetch_all!(
            self,
            OutboxRow,
            concat!(
                select_outbox_row!(),
                " WHERE state = 'queued' AND next_attempt_at <= $1
                 ORDER BY next_attempt_at, id LIMIT $2"
            ),
            now.0,
            limit.max(0),
        )?;
        convert(rows)
    }

    /// Claims a queued entry for one delivery attempt under `lease`. Returns `true` when this
    /// caller now holds it: the entry is queued and either unclaimed or its claim has lapsed
    /// (see [`crate::leases`]: the lease it was taken under expired, or a claim without a
    /// lease is older than `stale_before`). Returns `false` when another claim holds it or it
    /// is no longer queued.
    ///
    /// The check and the write are one `UPDATE`, so of two concurrent callers exactly one wins:
    /// PostgreSQL re-evaluates the `WHERE` of the second after the first commits, and SQLite
    /// runs one writer at a time. The caller must commit before sending, so the claim is visible
    /// to the others while the attempt is in progress.
    pub async fn claim_outbox(
        &mut self,
        id: i64,
        lease: Option<LeaseId>,
        stale_before: Timestamp,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::now();
        let n = execute!(
            self,
            concat!(
                "UPDATE outbox SET claimed_at = $2, claimed_by = $3
                 WHERE id = $1 AND state = 'queued' AND (claimed_at IS NULL OR ",
                claim_lapsed!("outbox", "$4", "$2"),
                ")"
            ),
            id,
            now.0,
            lease.map(|lease| lease.0),
            stale_before.0,
        )?;
        Ok(n > 0)
    }

    /// Whether entry `id` is still queued and claimed under `lease`; if so, the row is locked
    /// until the transaction ends. Call it first in the transaction that records an attempt's
    /// outcome (fencing; see [`crate::leases`]).
    pub async fn fence_outbox(&mut self, id: i64, lease: LeaseId) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE outbox SET claimed_by = claimed_by
             WHERE id = $1 AND state = 'queued' AND claimed_by = $2",
            id,
            lease.0,
        )?;
        Ok(n > 0)
    }

    /// Marks an entry sent and releases its claim. Returns whether it exists.
    pub async fn mark_outbox_sent(&mut self, id: i64) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = $2,
                 last_error = NULL, claimed_at = NULL, claimed_by = NULL
             WHERE id = $1",
            id,
            Timestamp::now().0,
        )?;
        Ok(n > 0)
    }

    /// Records a failed attempt and releases its claim: with `retry_at` it stays queued until
    /// then, without it the entry is marked failed for good. Returns whether it exists.
    pub async fn mark_outbox_failed(
        &mut self,
        id: i64,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                 state = CASE WHEN $3 IS NULL THEN 'failed' ELSE 'queued' END,
                 next_attempt_at = COALESCE($3, next_attempt_at), claimed_at = NULL,
                 claimed_by = NULL
             WHERE id = $1",
            id,
            error,
            retry_at.map(|t| t.0),
        )?;
        Ok(n > 0)
    }
}
