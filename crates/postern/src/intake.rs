//! The store behind the mailbox watchers: `postern_inbox::Intake` implemented with
//! `postern_core::intake::take_in`, waking whoever works off the stored messages (the
//! processing queue, or the GitLab deliverer in companion mode).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use postern_core::Processor;
use postern_core::intake::{IntakeMessage, take_in};
use postern_inbox::intake::{Fetched, Intake, IntakeError};
use postern_store::{InboundSource, Mailbox, Store, StoreError};
use tracing::Instrument as _;

/// Called after a batch with new messages was committed.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Durable intake for one mailbox.
pub struct StoreIntake {
    store: Store,
    mailbox: Mailbox,
    source: InboundSource,
    wake: Wake,
    /// Standalone mode: a batch of one (a new message during IDLE) is stored and processed in
    /// one transaction, saving a commit on the latency path.
    processor: Option<Arc<Processor>>,
}

impl StoreIntake {
    /// Messages taken in are stored for `mailbox`, recorded as coming from `source`.
    pub fn new(store: Store, mailbox: Mailbox, source: InboundSource, wake: Wake) -> StoreIntake {
        StoreIntake {
            store,
            mailbox,
            source,
            wake,
            processor: None,
        }
    }

    /// Processes single-message batches right away with `processor`.
    pub fn processing_single_messages(mut self, processor: Arc<Processor>) -> StoreIntake {
        self.processor = Some(processor);
        self
    }
}

fn unavailable(error: impl ToString) -> IntakeError {
    IntakeError::Unavailable(error.to_string())
}

impl Intake for StoreIntake {
    async fn take(&self, batch: Vec<Fetched>) -> Result<(), IntakeError> {
        let messages: Vec<IntakeMessage> = batch
            .into_iter()
            .map(|fetched| IntakeMessage {
                raw: fetched.raw,
                source_identity: fetched.identity,
                cursor: fetched.cursor.map(|cursor| {
                    (
                        cursor.source,
                        i64::try_from(cursor.validity).unwrap_or(i64::MAX),
                        i64::try_from(cursor.position).unwrap_or(i64::MAX),
                    )
                }),
            })
            .collect();
        if let (Some(processor), [message]) = (&self.processor, messages.as_slice()) {
            // Every line about this message names it.
            let span = tracing::info_span!(
                "message",
                message_id = postern_inbox::headers::message_id(&message.raw).as_deref(),
                source_identity = %message.source_identity
            );
            let started = Instant::now();
            let processed = async {
                match processor
                    .receive_fetched(message, self.mailbox, self.source)
                    .await
                {
                    Ok(outcome) => {
                        let mailbox = self.mailbox.as_str();
                        crate::logging::message_finished(
                            &outcome,
                            "intake",
                            mailbox,
                            started.elapsed(),
                        );
                        true
                    }
                    // Processing could not finish now: store it alone, and let the queue retry.
                    Err(error) => {
                        tracing::debug!(%error, "processing at intake failed; queueing the message");
                        false
                    }
                }
            }
            .instrument(span)
            .await;
            if processed {
                return Ok(());
            }
        }
        let summary = take_in(&self.store, self.mailbox, self.source, &messages)
            .await
            .map_err(unavailable)?;
        if !summary.stored.is_empty() {
            (self.wake)();
        }
        Ok(())
    }

    async fn cursor(&self, source: &str, validity: u64) -> Result<Option<u64>, IntakeError> {
        let validity = i64::try_from(validity).map_err(unavailable)?;
        let position = async {
            let mut tx = self.store.begin_read_only().await?;
            let position = tx.intake_cursor(source, validity).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(position)
        }
        .await
        .map_err(unavailable)?;
        Ok(position.and_then(|p| u64::try_from(p).ok()))
    }

    async fn known(&self, identities: &[String]) -> Result<HashSet<String>, IntakeError> {
        async {
            let mut known = HashSet::new();
            let mut tx = self.store.begin_read_only().await?;
            for identity in identities {
                if tx.source_identity_stored(identity).await? {
                    known.insert(identity.clone());
                }
            }
            tx.commit().await?;
            Ok::<_, StoreError>(known)
        }
        .await
        .map_err(unavailable)
    }
}
