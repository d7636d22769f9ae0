//! Durable intake of fetched messages, separate from processing.
//!
//! A mailbox watcher acknowledges a message on its server as soon as [`take_in`] returned: the
//! raw bytes are committed, processing can come later (and is retried until it finishes). One
//! transaction per batch keeps the cost of a large backlog to one commit per batch instead of
//! one per message. The processing side is [`crate::queue`].
//!
//! A message the store refuses for good (a header it cannot index, a value it cannot hold) must
//! not hold up the messages behind it: when a batch fails, each message is stored alone, and
//! one that still fails permanently is stored [quarantined](postern_store::InboundState) with
//! only the parts the store makes itself ([`Tx::insert_quarantined`]), or, should even that be
//! refused, written as a file in the quarantine directory. Either way it is durable, so the
//! source may acknowledge it. Only a store that is unavailable stops intake.
//!
//! [`Tx::insert_quarantined`]: postern_store::Tx::insert_quarantined

use std::path::{Path, PathBuf};

use postern_mail::message_id_of;
use postern_store::{
    InboundSource, InsertOutcome, Mailbox, NewInbound, Store, StoreError, content_identity,
};

use crate::error::{ErrorKind, ProcessError};
use crate::processor::body_of;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
