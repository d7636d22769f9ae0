//! The store behind the mailbox watchers: `postern_inbox::Intake` implemented with
//! `postern_core::intake::take_in`, waking whoever works off the stored messages (the
//! processing queue, or the GitLab deliverer in companion mode).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use postern_core::intake::{IntakeMessage, take_in};
use postern_core::{Outcome, Processor};
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
    /// Where a message the store refuses even quarantined is kept as a file.
    quarantine_directory: std::path::PathBuf,
    /// Standalone mode: a batch of one (a new message during IDLE) is stored and processed in
    /// one transaction, saving a commit on the latency path.
    processor: Option<Arc<Processor>>,
}

impl StoreIntake {
    /// Messages taken in are stored for `mailbox`, recorded as coming from `source`.
    pub fn new(
        store: Store,
        mailbox: Mailbox,
        source: InboundSource,
        wake: Wake,
        quarantine_directory: std::path::PathBuf,
    ) -> StoreIntake {
        StoreIntake {
            store,
            mailbox,
            source,
            wake,
            quarantine_directory,
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
                source_identity: Some(fetched.identity),
                declared_size: fetched
                    .oversized
                    .map(|size| i64::try_from(size).unwrap_or(i64::MAX)),
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
                message_id = postern_mail::message_id_for_log(&message.raw).as_deref(),
                source_identity = message.source_identity.as_deref()
            );
            let started = Instant::now();
            let processed = processor
                .receive_message(message, self.mailbox, self.source)
                .instrument(span.clone())
                .await;
            return match processed {
                // Durable whatever the outcome: stored and processed, refused, queued for a
                // retry or quarantined.
                Ok(outcome) => {
                    span.in_scope(|| {
                        crate::logging::message_finished(
                            &outcome,
                            "intake",
                            self.mailbox.as_str(),
                            started.elapsed(),
                        )
                    });
                    if outcome.outcome == Outcome::Queued {
                        (self.wake)();
                    }
                    Ok(())
                }
                Err(error) => Err(unavailable(error)),
            };
        }
        let summary = take_in(
            &self.store,
            self.mailbox,
            self.source,
            &messages,
            &self.quarantine_directory,
        )
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
