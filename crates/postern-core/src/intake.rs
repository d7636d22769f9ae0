//! Durable intake of fetched messages, separate from processing.
//!
//! A mailbox watcher acknowledges a message on its server as soon as [`take_in`] returned: the
//! raw bytes are committed, processing can come later (and is retried until it finishes). One
//! transaction per batch keeps the cost of a large backlog to one commit per batch instead of
//! one per message. The processing side is [`crate::queue`].

use postern_mail::message_id_of;
use postern_store::{InboundSource, InsertOutcome, Mailbox, NewInbound, Store, content_identity};

use crate::error::ProcessError;
use crate::processor::body_of;

/// One message to store, as a watcher fetched it.
#[derive(Debug, Clone)]
pub struct IntakeMessage {
    /// The message exactly as the server returned it (shared, so a retried batch is not copied).
    pub raw: bytes::Bytes,
    /// The transport identity (mailbox + UIDVALIDITY + UID, Graph id).
    pub source_identity: String,
    /// For ordered sources: `(folder, validity, position)` to remember.
    pub cursor: Option<(String, i64, i64)>,
}

/// What [`take_in`] did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntakeSummary {
    /// Ids of the messages stored by this call, in batch order; they wait for processing.
    pub stored: Vec<i64>,
    /// How many were stored before (same source or content identity).
    pub already_stored: usize,
}

/// Stores `batch` in one transaction with the highest cursor of each folder in it.
/// `Err` (always [`ProcessError::Temporary`] in practice) means nothing was stored.
pub async fn take_in(
    store: &Store,
    mailbox: Mailbox,
    source: InboundSource,
    batch: &[IntakeMessage],
) -> Result<IntakeSummary, ProcessError> {
    let mut summary = IntakeSummary::default();
    // Header parsing and hashing happen before the transaction: on SQLite it holds the one
    // write lock that processing also waits for.
    let identified: Vec<(Option<String>, String)> = batch
        .iter()
        .map(|message| {
            let message_id = message_id_of(&message.raw);
            let identity = content_identity(message_id.as_deref(), body_of(&message.raw));
            (message_id, identity)
        })
        .collect();
    let mut tx = store.begin().await?;
    for (message, (message_id, identity)) in batch.iter().zip(identified) {
        let inserted = tx
            .insert_inbound(&NewInbound {
                mailbox,
                source,
                message_id,
                raw: message.raw.as_ref().into(),
                source_identity: Some(message.source_identity.clone()),
                content_identity: identity,
            })
            .await?;
        match inserted {
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
