//! The built-in listener's callback: each message is stored and processed in one transaction,
//! and only then acknowledged. The listener runs it inside the message's `message` span.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use postern_core::{ProcessError, Processor, ReceiveOutcome};
use postern_inbox::listener::{DeliverError, Delivery};
use postern_inbox::status::SourceStatus;
use postern_store::{InboundSource, Mailbox};

/// The callback handed to `Listener::run`.
pub fn deliverer(
    processor: Arc<Processor>,
    status: Arc<SourceStatus>,
) -> impl Fn(Delivery) -> std::pin::Pin<Box<dyn Future<Output = Result<(), DeliverError>> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |delivery: Delivery| {
        let processor = processor.clone();
        let status = status.clone();
        Box::pin(async move {
            let started = Instant::now();
            let result = deliver(&processor, delivery).await;
            if let Ok(outcome) = &result {
                status.taken(1);
                crate::logging::message_finished(outcome, "lmtp", "incoming", started.elapsed());
            }
            result.map(drop)
        })
    }
}

/// A temporary failure makes the MTA keep the message and retry.
async fn deliver(
    processor: &Processor,
    delivery: Delivery,
) -> Result<ReceiveOutcome, DeliverError> {
    match processor
        .receive(&delivery.raw, Mailbox::Incoming, InboundSource::Lmtp, None)
        .await
    {
        Ok(outcome) => Ok(outcome),
        Err(ProcessError::Temporary(reason)) => {
            tracing::warn!(%reason, "LMTP delivery failed temporarily (451)");
            Err(DeliverError::Temporary(reason))
        }
        // A bug must not make the MTA bounce the mail: keep it queued there and say why.
        Err(other) => {
            tracing::error!(error = %other, "LMTP delivery failed (451)");
            Err(DeliverError::Temporary(other.to_string()))
        }
    }
}
