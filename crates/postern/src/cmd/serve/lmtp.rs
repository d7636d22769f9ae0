//! The built-in listener's callback: each message is stored and processed in one transaction,
//! and only then acknowledged.

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
                postern_web::record_receive(outcome, "incoming", started.elapsed());
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
        Ok(outcome) => {
            tracing::info!(
                inbound_id = outcome.inbound_id,
                outcome = %outcome.outcome,
                handler = outcome.handler.as_deref().unwrap_or("-"),
                error = outcome.error.as_deref().unwrap_or("-"),
                size = delivery.raw.len(),
                "message delivered by LMTP"
            );
            Ok(outcome)
        }
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
