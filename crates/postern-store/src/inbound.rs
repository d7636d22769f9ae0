//! Inbound messages: the durable raw copy taken before a source is acknowledged, its dedupe
//! identities, and what processing made of it.

use postern_vocab::{ErrorKind, HandlerKind};

use crate::leases::claim_lapsed;
use crate::raw_files::EXTERNAL_FROM_BYTES;
use crate::tx::{execute, fetch_all, fetch_optional, scalar_optional};
use crate::{LeaseId, StoreError, Timestamp, Tx};
use postern_vocab::named_enum;

/// Which configured mailbox a message came through, stored by its name (`incoming`,
/// `service_desk`).
pub use postern_vocab::Mailbox;

named_enum! {
    /// How a message reached postern.
    pub enum InboundSource {
        /// Piped in by an MTA (`postern receive`).
        Pipe = "pipe",
        /// Handed over by the built-in LMTP/SMTP listener.
        Lmtp = "lmtp",
        /// Fetched over IMAP.
        Imap = "imap",
        /// Fetched through Microsoft Graph.
        Graph = "graph",
    }
}

named_enum! {
    /// Where a message is in its life.
    pub enum InboundState {
        /// Stored, not yet processed.
        Received = "received",
        /// Claimed by a processor.
        Processing = "processing",
        /// Done: the tracker changed.
        Processed = "processed",
        /// Refused permanently with an error kind (and maybe a reject notice).
        Rejected = "rejected",
        /// Dropped on purpose (auto-reply, duplicate effect …).
        Ignored = "ignored",
        /// Failed in a way that may pass later; will be retried.
        FailedTemporary = "failed_temporary",
        /// Set aside: it failed permanently in a way no handler decided (the store refused it),
        /// or temporarily with the same reason too many times in a row. Kept with its bytes and
        /// the reason, skipped by every worker, processed again only on request.
        Quarantined = "quarantined",
    }
}

/// Everything about an inbound message except its bytes (listings stay small).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct InboundMeta {
    /// Row id.
    pub id: i64,
    /// When it was stored.
    pub received_at: Timestamp,
    /// Which mailbox.
    #[sqlx(try_from = "String")]
    pub mailbox: Mailbox,
    /// Which source.
    pub source: InboundSource,
    /// The Message-ID header, as the caller read it.
    pub message_id: Option<String>,
    /// Size of the raw message in bytes.
    pub size: i64,
    /// Transport identity (mailbox + UIDVALIDITY + UID, Graph id …); unique when present.
    pub source_identity: Option<String>,
    /// Content identity ([`content_identity`](crate::content_identity)); unique.
    pub content_identity: String,
    /// Processing state.
    pub state: InboundState,
    /// The handler that took it (`create_note`, `service_desk` …).
    pub handler: Option<HandlerKind>,
    /// Named error kind for rejections and failures.
    pub error_kind: Option<ErrorKind>,
    /// Human-readable reason.
    pub reason: Option<String>,
    /// The outcome as JSON text (what `postern receive` printed).
    pub outcome: Option<String>,
    /// When processing last finished.
    pub processed_at: Option<Timestamp>,
    /// How many times processing was started.
    pub attempts: i64,
    /// When the current or last claim was taken.
    pub claimed_at: Option<Timestamp>,
    /// How many attempts in a row failed temporarily with the same reason.
    pub failure_streak: i64,
    /// For a message a source did not fetch because it was over the size limit: the size the
    /// source declared (the stored bytes are then only its header block).
    pub declared_size: Option<i64>,
}

/// An inbound message with its raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InboundMessage {
    /// Metadata.
    #[serde(flatten)]
    pub meta: InboundMeta,
    /// The message exactly as received.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

/// An `inbound_raw` row as stored: the bytes, or the name of the file that holds them.
#[derive(sqlx::FromRow)]
struct StoredInbound {
    #[sqlx(flatten)]
    meta: InboundMeta,
    raw: Vec<u8>,
    file: Option<String>,
}

/// What [`Tx::insert_inbound`] stores.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    /// Which mailbox.
    pub mailbox: Mailbox,
    /// Which source.
    pub source: InboundSource,
    /// Message-ID header, if any.
    pub message_id: Option<String>,
    /// The raw message; borrowed where the caller keeps it (a watcher retrying a batch).
    pub raw: std::borrow::Cow<'a, [u8]>,
    /// Transport identity, if the source has one.
    pub source_identity: Option<String>,
    /// Content identity; see [`content_identity`](crate::content_identity).
    pub content_identity: String,
    /// Set when the source refused to fetch the message because of its size: the size it
    /// declared. `raw` is then the header block only.
    pub declared_size: Option<i64>,
}

/// Which identity showed that a message was already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateOf {
    /// Same `source_identity` (the source delivered it again).
    SourceIdentity,
    /// Same `content_identity` (the same message through another path).
    ContentIdentity,
}

/// Result of [`Tx::insert_inbound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum InsertOutcome {
    /// Stored as a new message with this id.
    New(i64),
    /// Already stored: nothing was written.
    Duplicate {
        /// The id of the copy stored first.
        first_id: i64,
        /// That copy's state (e.g. already processed).
        state: InboundState,
        /// Which identity matched.
        matched: DuplicateOf,
    },
}

/// The result of processing, for [`Tx::finish_inbound`].
#[derive(Debug, Clone)]
pub struct InboundFinish {
    /// Final (or retry) state.
    pub state: InboundState,
    /// The handler that took it.
    pub handler: Option<HandlerKind>,
    /// Why it was refused.
    pub error_kind: Option<ErrorKind>,
    /// Reason.
    pub reason: Option<String>,
    /// Outcome JSON text.
    pub outcome: Option<String>,
}

/// Which messages [`Tx::list_inbound`] returns.
#[derive(Debug, Clone)]
pub struct InboundFilter {
    /// Only this state.
    pub state: Option<InboundState>,
    /// Only this mailbox.
    pub mailbox: Option<Mailbox>,
    /// Only ids below this (paging backwards).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: i64,
    /// Oldest first (a work queue) instead of newest first (a log).
    pub oldest_first: bool,
}

impl Default for InboundFilter {
    fn default() -> Self {
        InboundFilter {
            state: None,
            mailbox: None,
            before_id: None,
            limit: 100,
            oldest_first: false,
        }
    }
}

/// How many times [`Tx::insert_inbound`] retries when the row it conflicted with disappeared
/// before it could be read (a concurrent transaction that rolled back).
const INSERT_ATTEMPTS: usize = 3;

impl Tx {
    /// Stores a message unless one with the same source or content identity exists.
    ///
    /// `INSERT … ON CONFLICT DO NOTHING` then a look-up: on PostgreSQL a concurrent insert of
    /// the same identity waits for the other transaction, so exactly one of them gets `New`.
    pub async fn insert_inbound(
        &mut self,
        new: &NewInbound<'_>,
    ) -> Result<InsertOutcome, StoreError> {
        let size = i64::try_from(new.raw.len()).unwrap_or(i64::MAX);
        for _ in 0..INSERT_ATTEMPTS {
            let id = scalar_optional!(
                self,
                i64,
                "INSERT INTO inbound_messages (received_at, mailbox, source, message_id, size,
                                               source_identity, content_identity, declared_size)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT DO NOTHING RETURNING id",
                Timestamp::now().0,
                new.mailbox.as_str(),
                new.source.as_str(),
                // Written by the sender: bounded and printable before it reaches a column.
                new.message_id.as_deref().map(crate::bounded_identifier),
                size,
                &new.source_identity,
                &new.content_identity,
                new.declared_size,
            )?;
            if let Some(id) = id {
                // A table of its own, so that state changes never rewrite the bytes (0007);
                // a large message only names its file there (see `raw_files`).
                let file = match self.raw_files.clone() {
                    Some(raw_files) if new.raw.len() >= EXTERNAL_FROM_BYTES => {
                        Some(raw_files.write(&new.raw, &mut self.pending_files).await?)
                    }
                    _ => None,
                };
                let inline: &[u8] = if file.is_some() { &[] } else { &new.raw };
                execute!(
                    self,
                    "INSERT INTO inbound_raw (inbound_id, raw, file) VALUES ($1, $2, $3)",
                    id,
                    inline,
                    &file,
                )?;
                return Ok(InsertOutcome::New(id));
            }
            if let Some(source_identity) = &new.source_identity {
                let first = fetch_optional!(
                    self,
                    (i64, InboundState),
                    "SELECT id, state FROM inbound_messages WHERE source_identity = $1",
                    source_identity
                )?;
                if let Some((first_id, state)) = first {
                    return Ok(InsertOutcome::Duplicate {
                        first_id,
                        state,
                        matched: DuplicateOf::SourceIdentity,
                    });
                }
            }
            let first = fetch_optional!(
                self,
                (i64, InboundState),
                "SELECT id, state FROM inbound_messages WHERE content_identity = $1",
                &new.content_identity
            )?;
            if let Some((first_id, state)) = first {
                return Ok(InsertOutcome::Duplicate {
                    first_id,
                    state,
                    matched: DuplicateOf::ContentIdentity,
                });
            }
        }
        Err(StoreError::NotFound(
            "inbound message that conflicted on insert (it kept disappearing)",
        ))
    }

    /// Stores, already quarantined, a message whose [`Tx::insert_inbound`] failed permanently
    /// (in an earlier transaction: a failed statement spoils the transaction on PostgreSQL).
    /// Only the parts the store itself makes are kept besides the bytes: no Message-ID, and a
    /// content identity of `quarantined|` and the hash of the raw bytes, so whatever in the
    /// sender's headers made the insert fail is not written again. A duplicate (same source
    /// identity, or the same bytes quarantined before) is reported as such.
    pub async fn insert_quarantined(
        &mut self,
        new: &NewInbound<'_>,
        error_kind: ErrorKind,
        reason: &str,
    ) -> Result<InsertOutcome, StoreError> {
        use sha2::Digest as _;
        let bare = NewInbound {
            message_id: None,
            content_identity: format!(
                "quarantined|{}",
                crate::ids::hex(&sha2::Sha256::digest(&new.raw))
            ),
            ..new.clone()
        };
        let outcome = self.insert_inbound(&bare).await?;
        if let InsertOutcome::New(id) = outcome {
            self.quarantine_inbound(id, error_kind, reason).await?;
        }
        Ok(outcome)
    }

    /// Claims a message: moves it from `received` or `failed_temporary`, or from `processing`
    /// whose claim has lapsed (see [`crate::leases`]: its lease expired, or a claim without a
    /// lease is older than `stale_before`), to `processing` and counts the attempt. `lease`
    /// is the lease the claim is taken under, `None` for a claim that lives only inside this
    /// transaction. Returns `false` if someone else holds it or it is finished.
    pub async fn claim_inbound(
        &mut self,
        id: i64,
        lease: Option<LeaseId>,
        stale_before: Timestamp,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::now();
        let n = execute!(
            self,
            concat!(
                "UPDATE inbound_messages
                 SET state = 'processing', attempts = attempts + 1, claimed_at = $2,
                     claimed_by = $3
                 WHERE id = $1 AND (state IN ('received', 'failed_temporary')
                                    OR (state = 'processing' AND ",
                claim_lapsed!("inbound_messages", "$4", "$2"),
                "))"
            ),
            id,
            now.0,
            lease.map(|lease| lease.0),
            stale_before.0,
        )?;
        Ok(n > 0)
    }

    /// Whether message `id` exists and is not finished (`received`, `processing` or
    /// `failed_temporary`); if so, the row is locked until the transaction ends, so nobody can
    /// finish it meanwhile. Call it first in a transaction that records a failure of a claim
    /// that lived only in a transaction already rolled back: another worker may have taken and
    /// finished the message since.
    pub async fn hold_unfinished_inbound(&mut self, id: i64) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE inbound_messages SET state = state
             WHERE id = $1 AND state IN ('received', 'processing', 'failed_temporary')",
            id,
        )?;
        Ok(n > 0)
    }

    /// Whether message `id` is still claimed under `lease`; if so, the row is locked until the
    /// transaction ends, so no other instance can take it over before this one records the
    /// outcome. Call it first in the transaction that records an outcome (fencing).
    pub async fn fence_inbound(&mut self, id: i64, lease: LeaseId) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE inbound_messages SET claimed_by = claimed_by
             WHERE id = $1 AND state = 'processing' AND claimed_by = $2",
            id,
            lease.0,
        )?;
        Ok(n > 0)
    }

    /// Records the result of processing. [`StoreError::NotFound`] for an unknown id.
    pub async fn finish_inbound(
        &mut self,
        id: i64,
        finish: &InboundFinish,
    ) -> Result<(), StoreError> {
        let n = execute!(
            self,
            "UPDATE inbound_messages
             SET state = $2, handler = $3, error_kind = $4, reason = $5, outcome = $6,
                 processed_at = $7
             WHERE id = $1",
            id,
            finish.state.as_str(),
            finish.handler.map(HandlerKind::as_str),
            finish.error_kind.map(ErrorKind::as_str),
            &finish.reason,
            &finish.outcome,
            Timestamp::now().0,
        )?;
        if n == 0 {
            return Err(StoreError::NotFound("inbound message"));
        }
        Ok(())
    }

    /// One message with its bytes.
    pub async fn inbound(&mut self, id: i64) -> Result<Option<InboundMessage>, StoreError> {
        let Some(row) = fetch_optional!(
            self,
            StoredInbound,
            "SELECT m.*, r.raw, r.file
             FROM inbound_messages m JOIN inbound_raw r ON r.inbound_id = m.id
             WHERE m.id = $1",
            id
        )?
        else {
            return Ok(None);
        };
        let raw = match (&row.file, &self.raw_files) {
            (None, _) => row.raw,
            (Some(file), Some(raw_files)) => raw_files.read(file).await?,
            // A file-backed row read through a store without a directory: cannot happen with
            // one database, but is an error rather than an empty message.
            (Some(file), None) => {
                return Err(StoreError::Corrupt {
                    column: "inbound_raw.file",
                    value: file.clone(),
                });
            }
        };
        Ok(Some(InboundMessage {
            meta: row.meta,
            raw,
        }))
    }

    /// Message `id` without its bytes: its state and outcome, where reading a large message
    /// whole would only be thrown away.
    pub async fn inbound_meta(&mut self, id: i64) -> Result<Option<InboundMeta>, StoreError> {
        Ok(fetch_optional!(
            self,
            InboundMeta,
            "SELECT id, received_at, mailbox, source, message_id, size, source_identity,
                    content_identity, state, handler, error_kind, reason, outcome,
                    processed_at, attempts, claimed_at, failure_streak, declared_size
             FROM inbound_messages WHERE id = $1",
            id
        )?)
    }

    /// The first `max_bytes` of message `id`'s raw bytes (enough for its header block), without
    /// reading the rest: what a list of messages shows, at a cost that does not grow with the
    /// messages' size.
    pub async fn inbound_head(
        &mut self,
        id: i64,
        max_bytes: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // PostgreSQL's `substr(bytea, int, int)` takes 32-bit lengths.
        let length = i32::try_from(max_bytes).unwrap_or(i32::MAX);
        let Some((head, file)) = fetch_optional!(
            self,
            (Vec<u8>, Option<String>),
            "SELECT substr(raw, 1, $2), file FROM inbound_raw WHERE inbound_id = $1",
            id,
            length
        )?
        else {
            return Ok(None);
        };
        match (file, &self.raw_files) {
            (None, _) => Ok(Some(head)),
            (Some(file), Some(raw_files)) => Ok(Some(raw_files.read_head(&file, max_bytes).await?)),
            (Some(file), None) => Err(StoreError::Corrupt {
                column: "inbound_raw.file",
                value: file,
            }),
        }
    }

    /// Messages matching `filter`, without their bytes.
    pub async fn list_inbound(
        &mut self,
        filter: &InboundFilter,
    ) -> Result<Vec<InboundMeta>, StoreError> {
        // Two texts rather than a dynamic ORDER BY: every query here is a static string.
        // `id < COALESCE($3, max)` rather than `$3 IS NULL OR id < $3`: SQLite seeks the
        // primary key to a bound it can evaluate once, so a deep page of the web UI's log costs
        // the same as the first (an OR with the parameter made it scan from the newest row).
        macro_rules! list {
            ($order:literal) => {
                fetch_all!(
                    self,
                    InboundMeta,
                    concat!(
                        "SELECT id, received_at, mailbox, source, message_id, size, source_identity,
                                content_identity, state, handler, error_kind, reason, outcome,
                                processed_at, attempts, claimed_at, failure_streak, declared_size
                         FROM inbound_messages
                         WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR mailbox = $2)
                           AND id < COALESCE($3, 9223372036854775807)
                         ORDER BY id ",
                        $order,
                        " LIMIT $4"
                    ),
                    filter.state.map(InboundState::as_str),
                    filter.mailbox.map(Mailbox::as_str),
                    filter.before_id,
                    filter.limit.max(0),
                )
            };
        }
        Ok(if filter.oldest_first {
            list!("ASC")?
        } else {
            list!("DESC")?
        })
    }
}
