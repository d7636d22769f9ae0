//! The one way in for a message, from every source: [`Intake`] stores the raw message with its
//! identities and decides, in one place, whether it is processed at once or left to the
//! processing queue ([`crate::queue`]), or, in GitLab companion mode, to the delivery to GitLab.
//! The LMTP listener, `postern receive` and the mailbox watchers' batches all go through
//! [`Intake::take`]: a single message with a processor behind the intake is stored and processed
//! in one transaction (one commit on the latency path); anything else is stored by [`take_in`],
//! one transaction per batch, and whoever works off the stored messages is woken.
//!
//! A mailbox watcher acknowledges a message on its server as soon as [`Intake::take`] returned:
//! the raw bytes are committed, processing can come later (and is retried until it finishes).
//! One transaction per batch keeps the cost of a large backlog to one commit per batch instead
//! of one per message.
//!
//! A message the store refuses for good (a header it cannot index, a value it cannot hold) must
//! not hold up the messages behind it: when a batch fails, each message is stored alone, and
//! one that still fails permanently is stored [quarantined](postern_store::InboundState) with
//! only the parts the store makes itself ([`Tx::insert_quarantined`]), or, should even that be
//! refused, written as a file in the quarantine directory. Either way it is durable, so the
//! source may acknowledge it. Only a store that is unavailable stops intake.
//!
//! [`Tx::insert_quarantined`]: postern_store::Tx::insert_quarantined

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postern_mail::message_id_of;
use postern_store::{
    InboundSource, InsertOutcome, Mailbox, NewInbound, Store, StoreError, content_identity,
};

use crate::error::{ErrorKind, ProcessError};
use crate::processor::{Outcome, Processor, ReceiveOutcome};

/// Called when stored messages wait for whoever works them off (the processing queue, or the
/// GitLab deliverer), so it looks now instead of at its next poll.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Where messages come from: the mailbox they were sent to and the kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The mailbox (incoming or Service Desk).
    pub mailbox: Mailbox,
    /// The kind of source (LMTP, pipe, IMAP, Graph).
    pub source: InboundSource,
}

/// What [`Intake::take`] did with a batch. Either way every message of it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The one message was stored and processed at once: processed, refused, a duplicate,
    /// `queued` for a retry, or quarantined (boxed: the outcome is large).
    Processed(Box<ReceiveOutcome>),
    /// The messages were stored; they wait for the processing queue (or the GitLab deliverer).
    Stored(IntakeSummary),
}

/// The one way in for messages: stores them with their identities, then processes inline or
/// leaves them to the queue ([`Intake::take`]).
pub struct Intake {
    store: Store,
    quarantine_directory: PathBuf,
    /// `None` in GitLab companion mode: messages are stored, never processed here.
    processor: Option<Arc<Processor>>,
    wake: Option<Wake>,
}

impl Intake {
    /// Standalone mode: messages are processed into the tracker by `processor`, over its store
    /// and with its quarantine directory.
    pub fn processing(processor: Arc<Processor>) -> Intake {
        Intake {
            store: processor.store().clone(),
            quarantine_directory: processor.config().quarantine_directory.clone(),
            processor: Some(processor),
            wake: None,
        }
    }

    /// GitLab companion mode: messages are stored in `store` and left to whoever delivers them;
    /// one the store refuses even quarantined is kept in `quarantine_directory`.
    pub fn storing(store: Store, quarantine_directory: PathBuf) -> Intake {
        Intake {
            store,
            quarantine_directory,
            processor: None,
            wake: None,
        }
    }

    /// Calls `wake` whenever messages were left waiting (stored for the queue, or queued for a
    /// retry after processing failed for now).
    pub fn waking(mut self, wake: Wake) -> Intake {
        self.wake = Some(wake);
        self
    }

    /// The store messages are kept in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The decision, in one place: a batch of one message, with a processor behind the
    /// intake, is stored and processed in one transaction, saving a commit on the latency path
    /// (an LMTP delivery, a pipe, a new message announced during IDLE). A larger batch (a
    /// backlog) is stored in one transaction and processed by the queue, so a drain costs one
    /// commit per batch; without a processor (companion mode) messages are only stored.
    fn processes_inline<'a>(
        &'a self,
        batch: &'a [IntakeMessage],
    ) -> Option<(&'a Processor, &'a IntakeMessage)> {
        match (self.processor.as_deref(), batch) {
            (Some(processor), [message]) => Some((processor, message)),
            _ => None,
        }
    }

    /// Takes in `batch` from `origin`. `Ok` means every message of it is durable, so the
    /// source may acknowledge it (LMTP `250`, `\Seen`, exit 0 …); `Err`
    /// ([`ProcessError::Temporary`]) means the store is unavailable and nothing may be
    /// acknowledged.
    pub async fn take(
        &self,
        origin: Origin,
        batch: &[IntakeMessage],
    ) -> Result<Taken, ProcessError> {
        if let Some((processor, message)) = self.processes_inline(batch) {
            let outcome = processor
                .receive_message(message, origin.mailbox, origin.source)
                .await?;
            if outcome.outcome == Outcome::Queued {
                self.wake();
            }
            return Ok(Taken::Processed(Box::new(outcome)));
        }
        let summary = take_in(
            &self.store,
            origin.mailbox,
            origin.source,
            batch,
            &self.quarantine_directory,
        )
        .await?;
        if !summary.stored.is_empty() {
            self.wake();
        }
        Ok(Taken::Stored(summary))
    }

    fn wake(&self) {
        if let Some(wake) = &self.wake {
            wake();
        }
    }

    /// The highest position taken in for `folder` under `validity`, if any (a watcher's
    /// catch-up scan starts above it).
    pub async fn cursor(&self, folder: &str, validity: i64) -> Result<Option<i64>, StoreError> {
        let mut tx = self.store.begin_read_only().await?;
        let position = tx.intake_cursor(folder, validity).await?;
        tx.commit().await?;
        Ok(position)
    }

    /// Which of `identities` (source identities) are stored already.
    pub async fn known(&self, identities: &[String]) -> Result<HashSet<String>, StoreError> {
        let mut known = HashSet::new();
        let mut tx = self.store.begin_read_only().await?;
        for identity in identities {
            if tx.source_identity_stored(identity).await? {
                known.insert(identity.clone());
            }
        }
        tx.commit().await?;
        Ok(known)
    }
}

/// One message to store, as a source handed it over.
#[derive(Debug, Clone)]
pub struct IntakeMessage {
    /// The message exactly as the source gave it (shared, so a retried batch is not copied).
    /// For a message over the source's size limit, only its header block.
    pub raw: bytes::Bytes,
    /// The transport identity (mailbox + UIDVALIDITY + UID, Graph id), if the source has one.
    pub source_identity: Option<String>,
    /// For ordered sources: `(folder, validity, position)` to remember.
    pub cursor: Option<(String, i64, i64)>,
    /// Set when the source did not fetch the message because of its size: the size it
    /// declared. Processing refuses such a message as `email_too_large`.
    pub declared_size: Option<i64>,
}

/// What [`take_in`] did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IntakeSummary {
    /// Ids of the messages stored by this call, in batch order; they wait for processing.
    pub stored: Vec<i64>,
    /// How many were stored before (same source or content identity).
    pub already_stored: usize,
    /// How many the store refused and that were quarantined instead.
    pub quarantined: usize,
}

/// What became of one message stored alone ([`store_one`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Stored now with this id; it waits for processing.
    New(i64),
    /// Stored before, with this id.
    Duplicate(i64),
    /// The store refused it for good: kept aside, as a quarantined row (`id`) or, when even
    /// that was refused, as a file (`id` is `None`); `reason` says why.
    Quarantined {
        /// The quarantined row, if the store took one.
        id: Option<i64>,
        /// Why it was refused.
        reason: String,
    },
}

/// Where a message goes when the store refuses even its quarantined row: a directory of its
/// own beside the uploads, one file per message named after the hash of its bytes.
pub fn quarantine_directory(data_directory: &Path) -> PathBuf {
    data_directory.join("quarantine")
}

/// Stores `batch` in one transaction with the highest cursor of each folder in it; if that
/// fails for any reason but an unavailable store, stores the messages one at a time, each
/// quarantined if the store refuses it. `Err` ([`ProcessError::Temporary`]) means the store is
/// unavailable: nothing is acknowledged, the source tries again later.
pub async fn take_in(
    store: &Store,
    mailbox: Mailbox,
    source: InboundSource,
    batch: &[IntakeMessage],
    quarantine_directory: &Path,
) -> Result<IntakeSummary, ProcessError> {
    match take_in_together(store, mailbox, source, batch).await {
        Ok(summary) => return Ok(summary),
        Err(error) if error.is_temporary() && batch.len() == 1 => return Err(error.into()),
        Err(error) => {
            tracing::warn!(%error, messages = batch.len(), "storing a batch failed; storing its messages one by one");
        }
    }
    let mut summary = IntakeSummary::default();
    for message in batch {
        match store_one(store, mailbox, source, message, quarantine_directory).await? {
            Stored::New(id) => summary.stored.push(id),
            Stored::Duplicate(_) => summary.already_stored += 1,
            Stored::Quarantined { .. } => summary.quarantined += 1,
        }
    }
    Ok(summary)
}

async fn take_in_together(
    store: &Store,
    mailbox: Mailbox,
    source: InboundSource,
    batch: &[IntakeMessage],
) -> Result<IntakeSummary, StoreError> {
    let mut summary = IntakeSummary::default();
    // Header parsing and hashing happen before the transaction: on SQLite it holds the one
    // write lock that processing also waits for.
    let identified: Vec<NewInbound<'_>> = batch
        .iter()
        .map(|message| new_inbound(mailbox, source, message))
        .collect();
    let mut tx = store.begin().await?;
    for (message, new) in batch.iter().zip(&identified) {
        match tx.insert_inbound(new).await? {
            InsertOutcome::New(id) => summary.stored.push(id),
            InsertOutcome::Duplicate { .. } => summary.already_stored += 1,
        }
        if let Some((folder, validity, position)) = &message.cursor {
            tx.advance_intake_cursor(folder, *validity, *position)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(summary)
}

fn new_inbound<'a>(
    mailbox: Mailbox,
    source: InboundSource,
    message: &'a IntakeMessage,
) -> NewInbound<'a> {
    let message_id = message_id_of(&message.raw);
    let identity = content_identity(message_id.as_deref(), body_of(&message.raw));
    NewInbound {
        mailbox,
        source,
        message_id,
        raw: message.raw.as_ref().into(),
        source_identity: message.source_identity.clone(),
        content_identity: identity,
        declared_size: message.declared_size,
    }
}

/// Stores one message alone (with its cursor); if the store refuses it for good, quarantines
/// it. `Err` only when the store is unavailable.
pub async fn store_one(
    store: &Store,
    mailbox: Mailbox,
    source: InboundSource,
    message: &IntakeMessage,
    quarantine_directory: &Path,
) -> Result<Stored, ProcessError> {
    let new = new_inbound(mailbox, source, message);
    let refusal = match store_with_cursor(store, message, &new, None).await {
        Ok(InsertOutcome::New(id)) => return Ok(Stored::New(id)),
        Ok(InsertOutcome::Duplicate { first_id, .. }) => return Ok(Stored::Duplicate(first_id)),
        Err(error) if error.is_temporary() => return Err(error.into()),
        Err(error) => error,
    };
    let reason = format!("the store refused the message: {refusal}");
    tracing::warn!(error = %refusal, "the store refused a message; quarantining it");
    let quarantined = store_with_cursor(store, message, &new, Some(&reason)).await;
    match quarantined {
        Ok(InsertOutcome::New(id)) => Ok(Stored::Quarantined {
            id: Some(id),
            reason,
        }),
        Ok(InsertOutcome::Duplicate { first_id, .. }) => Ok(Stored::Duplicate(first_id)),
        Err(error) if error.is_temporary() => Err(error.into()),
        Err(error) => {
            let file = write_quarantine_file(quarantine_directory, &message.raw)
                .await
                .map_err(|io| {
                    ProcessError::Temporary(format!("cannot keep a refused message: {io}"))
                })?;
            tracing::error!(
                error = %error,
                file = %file.display(),
                "the store refused even a quarantined row; the message is kept as a file"
            );
            Ok(Stored::Quarantined {
                id: None,
                reason: format!("{reason}; kept as {}", file.display()),
            })
        }
    }
}

/// Stores `new` in a transaction of its own that also moves the message's folder cursor;
/// quarantined at once, with `quarantine_reason`, when that is given.
async fn store_with_cursor(
    store: &Store,
    message: &IntakeMessage,
    new: &NewInbound<'_>,
    quarantine_reason: Option<&str>,
) -> Result<InsertOutcome, StoreError> {
    let mut tx = store.begin().await?;
    let outcome = match quarantine_reason {
        None => tx.insert_inbound(new).await?,
        Some(reason) => {
            tx.insert_quarantined(new, ErrorKind::StoreRefused, reason)
                .await?
        }
    };
    if let Some((folder, validity, position)) = &message.cursor {
        tx.advance_intake_cursor(folder, *validity, *position)
            .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Writes `raw` durably to `<directory>/<sha256>.eml` (the same bytes twice are one file).
async fn write_quarantine_file(directory: &Path, raw: &bytes::Bytes) -> std::io::Result<PathBuf> {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(raw);
    let name = postern_vocab::random::to_hex(&digest);
    let path = directory.join(format!("{name}.eml"));
    let (directory, target, raw) = (directory.to_owned(), path.clone(), raw.clone());
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        std::fs::create_dir_all(&directory)?;
        let mut file = std::fs::File::create(&target)?;
        file.write_all(&raw)?;
        file.sync_all()?;
        std::fs::File::open(&directory)?.sync_all()
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(path)
}

/// The bytes after the header block: the part of a message that transports do not change.
pub fn body_of(raw: &[u8]) -> &[u8] {
    // One pass to the first blank line, `\r\n\r\n` or `\n\n`, whichever ends first. (Two
    // searches, one per kind, each read all of a large message that used only the other.)
    // The result feeds stored content identities, so it must never change for any input.
    let mut from = 0;
    while let Some(offset) = raw[from..].iter().position(|&byte| byte == b'\n') {
        let at = from + offset;
        match raw.get(at + 1) {
            Some(b'\n') => return &raw[at + 2..],
            Some(b'\r') if at > 0 && raw[at - 1] == b'\r' && raw.get(at + 2) == Some(&b'\n') => {
                return &raw[at + 3..];
            }
            _ => from = at + 1,
        }
    }
    raw
}
