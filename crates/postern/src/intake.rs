//! Wiring between the mailbox watchers and core's intake: `postern_inbox::intake::Intake`
//! implemented by handing each batch to `postern_core::intake::Intake`, which stores it and
//! decides whether it is processed at once or left to the queue. Here only the conversion, the
//! log context and the one outcome line.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use postern_core::intake::{Intake, IntakeMessage, Origin, Taken};
use postern_inbox::intake::{Fetched, IntakeError};
use tracing::Instrument as _;

/// Core's intake as seen by the watchers of one mailbox.
pub struct WatcherIntake {
    intake: Arc<Intake>,
    origin: Origin,
}

impl WatcherIntake {
    /// Messages a watcher fetches are taken in by `intake`, as coming from `origin`.
    pub fn new(intake: Arc<Intake>, origin: Origin) -> WatcherIntake {
        WatcherIntake { intake, origin }
    }
}

fn unavailable(error: impl ToString) -> IntakeError {
    IntakeError::Unavailable(error.to_string())
}

fn intake_message(fetched: Fetched) -> IntakeMessage {
    IntakeMessage {
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
    }
}

impl postern_inbox::intake::Intake for WatcherIntake {
    async fn take(&self, batch: Vec<Fetched>) -> Result<(), IntakeError> {
        let messages: Vec<IntakeMessage> = batch.into_iter().map(intake_message).collect();
        // Every line about a message taken in alone names it.
        let span = match messages.as_slice() {
            [message] => tracing::info_span!(
                "message",
                message_id = postern_mail::message_id_for_log(&message.raw).as_deref(),
                source_identity = message.source_identity.as_deref()
            ),
            _ => tracing::Span::none(),
        };
        let started = Instant::now();
        let taken = self
            .intake
            .take(self.origin, &messages)
            .instrument(span.clone())
            .await
            .map_err(unavailable)?;
        if let Taken::Processed(outcome) = taken {
            span.in_scope(|| {
                crate::logging::message_finished(
                    &outcome,
                    "intake",
                    self.origin.mailbox.as_str(),
                    started.elapsed(),
                )
            });
        }
        Ok(())
    }

    async fn cursor(&self, source: &str, validity: u64) -> Result<Option<u64>, IntakeError> {
        let validity = i64::try_from(validity).map_err(unavailable)?;
        let position = self
            .intake
            .cursor(source, validity)
            .await
            .map_err(unavailable)?;
        Ok(position.and_then(|p| u64::try_from(p).ok()))
    }

    async fn known(&self, identities: &[String]) -> Result<HashSet<String>, IntakeError> {
        self.intake.known(identities).await.map_err(unavailable)
    }
}
