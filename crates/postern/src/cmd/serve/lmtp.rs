//! The built-in listener's callback: each message goes through core's intake (stored and
//! processed in one transaction), and only then is acknowledged. The listener runs it inside
//! the message's `message` span.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use postern_core::intake::{Intake, IntakeMessage, Origin, Taken};
use postern_inbox::listener::{DeliverError, Delivery};
use postern_inbox::status::SourceStatus;
use postern_store::{InboundSource, Mailbox};

/// Spooled (large) messages processed at the same time; the rest wait for a turn.
const SPOOLED_IN_PROCESSING: usize = 2;

/// The callback handed to `Listener::run`.
pub fn deliverer(
    intake: Arc<Intake>,
    status: Arc<SourceStatus>,
) -> impl Fn(Delivery) -> std::pin::Pin<Box<dyn Future<Output = Result<(), DeliverError>> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    // Spooled messages are the large ones; reading them back into memory one or two at a time
    // keeps the memory of processing bounded however many sessions end together.
    let spooled_in_memory = Arc::new(tokio::sync::Semaphore::new(SPOOLED_IN_PROCESSING));
    move |delivery: Delivery| {
        let intake = intake.clone();
        let status = status.clone();
        let spooled_in_memory = spooled_in_memory.clone();
        Box::pin(async move {
            let started = Instant::now();
            let _permit = if delivery.raw.is_spooled() {
                spooled_in_memory.acquire_owned().await.ok()
            } else {
                None
            };
            let result = deliver(&intake, delivery).await;
            crate::memory::message_finished();
            if let Ok(taken) = &result {
                status.taken(1);
                if let Taken::Processed(outcome) = taken {
                    let elapsed = started.elapsed();
                    crate::logging::message_finished(outcome, "lmtp", "incoming", elapsed);
                }
            }
            result.map(drop)
        })
    }
}

/// Once the message is durable (processed, refused, queued for a retry or quarantined) the
/// answer is 250; only a store that cannot take it at all makes the MTA keep it (451). The
/// reply text never carries the internal reason: it reaches the sender in a bounce.
async fn deliver(intake: &Intake, delivery: Delivery) -> Result<Taken, DeliverError> {
    let raw = delivery.raw.bytes().await.map_err(|error| {
        tracing::warn!(%error, "the spooled message could not be read back (451)");
        DeliverError::Temporary("the message could not be stored; try again later".to_owned())
    })?;
    let message = IntakeMessage {
        raw,
        source_identity: None,
        cursor: None,
        declared_size: None,
    };
    let origin = Origin {
        mailbox: Mailbox::Incoming,
        source: InboundSource::Lmtp,
    };
    match intake.take(origin, std::slice::from_ref(&message)).await {
        Ok(taken) => Ok(taken),
        Err(error) => {
            tracing::warn!(%error, "LMTP delivery could not be stored (451)");
            Err(DeliverError::Temporary(
                "the message could not be stored; try again later".to_owned(),
            ))
        }
    }
}
