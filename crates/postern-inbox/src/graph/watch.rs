//! The polling loop: one pass now, then one every `poll_interval`, until shutdown.
//!
//! A pass: token → list every unread id (all pages) → ask the intake which are already stored
//! (those are only acknowledged) → fetch the rest in small batches → `Intake::take` → only
//! after `Ok`, mark each read and, if configured, delete it. A failure ends the pass, is
//! recorded in the status and waits `Retry-After` or the back-off; nothing is acknowledged that
//! was not taken in. On shutdown, fetching stops at once (nothing fetched is acknowledged yet,
//! so nothing is lost) and a batch already taken in is acknowledged within a short grace.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch::Receiver;

use super::client::GraphClient;
use super::{GraphError, GraphSettings};
use crate::backoff::Backoff;
use crate::intake::{Fetched, Intake};
use crate::status::SourceStatus;

/// At most this many messages per call to `Intake::take`.
const BATCH_MESSAGES: usize = 20;
/// At most about this many bytes per call to `Intake::take`.
const BATCH_BYTES: usize = 16 << 20;
/// At most this many ids listed per pass; the next pass starts at once if there were more.
const IDS_PER_PASS: usize = 5000;
/// The longest `Retry-After` honoured as given; longer ones are shortened to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// How long acknowledging a batch already taken in may go on after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How a pass ended.
enum PassEnd {
    /// Every unread message was taken in: wait `poll_interval`.
    CaughtUp,
    /// There are more than one pass takes: go on at once.
    More,
    /// Shutdown was asked for.
    Stopping,
}

/// Watches the folder of `settings` until `shutdown` becomes `true` (or its sender is dropped),
/// handing messages to `intake` and keeping `status` current. Never returns early on errors:
/// it backs off and tries again. Invalid settings are reported in `status` and the watcher then
/// only waits for shutdown.
pub async fn watch<I: Intake>(
    settings: GraphSettings,
    intake: Arc<I>,
    status: Arc<SourceStatus>,
    mut shutdown: Receiver<bool>,
) {
    let client = match GraphClient::new(&settings) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(source = %settings.name, %error, "Microsoft Graph watcher not started");
            status.failed(&error.to_string());
            stopped(&mut shutdown).await;
            status.stopped();
            return;
        }
    };
    tracing::info!(source = %settings.name, location = %settings.location(), "Microsoft Graph watcher started");
    let mut backoff = Backoff::default();
    loop {
        let pause = match pass(&client, &settings, &*intake, &status, &shutdown).await {
            Ok(PassEnd::CaughtUp) => {
                backoff.reset();
                settings.poll_interval
            }
            Ok(PassEnd::More) => {
                backoff.reset();
                Duration::ZERO
            }
            Ok(PassEnd::Stopping) => break,
            Err(error) => {
                let pause = match error.retry_after() {
                    Some(asked) => asked.min(MAX_RETRY_AFTER),
                    None => backoff.next_delay(),
                };
                status.failed(&error.to_string());
                tracing::warn!(source = %settings.name, %error, retry_in_ms = pause.as_millis() as u64, "Microsoft Graph pass failed");
                pause
            }
        };
        if let Some(at) = client.token_expiry() {
            status.set_token_expiry(at);
        }
        let mut waiter = shutdown.clone();
        let stopping = tokio::select! {
            () = tokio::time::sleep(pause) => false,
            () = stopped(&mut waiter) => true,
        };
        if stopping {
            break;
        }
    }
    tracing::info!(source = %settings.name, "Microsoft Graph watcher stopped");
    status.stopped();
}

async fn pass<I: Intake>(
    client: &GraphClient,
    settings: &GraphSettings,
    intake: &I,
    status: &SourceStatus,
    shutdown: &Receiver<bool>,
) -> Result<PassEnd, GraphError> {
    let Some(token) = until_shutdown(client.token(), shutdown).await else {
        return Ok(PassEnd::Stopping);
    };
    status.set_token_expiry(token?.expires_at());

    let mut ids = Vec::new();
    let mut url = client.first_page();
    let mut more = false;
    loop {
        let Some(page) = until_shutdown(client.list(&url), shutdown).await else {
            return Ok(PassEnd::Stopping);
        };
        let page = page?;
        status.connected();
        ids.extend(
            page.messages
                .into_iter()
                .filter(|m| !m.is_read)
                .map(|m| m.id),
        );
        match page.next {
            Some(next) if ids.len() < IDS_PER_PASS => url = next,
            Some(_) => {
                more = true;
                break;
            }
            None => break,
        }
    }
    // A message can appear on two pages when the folder changed between them.
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    let mut backlog = ids.len() as u64;
    status.set_backlog(backlog);
    tracing::debug!(source = %settings.name, unread = backlog, "listed unread messages");
    if ids.is_empty() {
        return Ok(PassEnd::CaughtUp);
    }

    let identities: Vec<String> = ids.iter().map(|id| settings.identity(id)).collect();
    let known = intake.known(&identities).await?;
    let mut batch = Batch::default();
    for (id, identity) in ids.into_iter().zip(identities) {
        if stopping(shutdown) {
            break;
        }
        if known.contains(&identity) {
            // Stored by an earlier pass whose acknowledgement did not reach Graph.
            acknowledge(client, settings, std::slice::from_ref(&id), shutdown).await?;
            backlog = backlog.saturating_sub(1);
            status.set_backlog(backlog);
            continue;
        }
        let Some(fetched) = until_shutdown(client.fetch_raw(&id), shutdown).await else {
            break;
        };
        let downloaded = match fetched {
            Ok(downloaded) => downloaded,
            Err(GraphError::NotFound(_)) => {
                tracing::debug!(source = %settings.name, "message vanished before it was fetched");
                continue;
            }
            Err(error) => {
                // Keep what was fetched: take it in before reporting the failure.
                flush(client, settings, intake, status, &mut batch, shutdown).await?;
                return Err(error);
            }
        };
        if let Some(size) = downloaded.oversized {
            tracing::warn!(
                source = %settings.name,
                size,
                max = settings.max_message_size,
                "message over the size limit: handed on as its header block"
            );
        }
        batch.push(id, identity, downloaded.raw, downloaded.oversized);
        if batch.full() {
            backlog = backlog.saturating_sub(batch.len() as u64);
            flush(client, settings, intake, status, &mut batch, shutdown).await?;
            status.set_backlog(backlog);
        }
    }
    backlog = backlog.saturating_sub(batch.len() as u64);
    flush(client, settings, intake, status, &mut batch, shutdown).await?;
    status.set_backlog(backlog);
    Ok(if stopping(shutdown) {
        PassEnd::Stopping
    } else if more {
        PassEnd::More
    } else {
        PassEnd::CaughtUp
    })
}

/// Fetched messages not yet taken in.
#[derive(Default)]
struct Batch {
    ids: Vec<String>,
    messages: Vec<Fetched>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, id: String, identity: String, raw: Vec<u8>, oversized: Option<u64>) {
        self.bytes += raw.len();
        self.ids.push(id);
        self.messages.push(Fetched {
            raw: raw.into(),
            identity,
            cursor: None,
            oversized,
        });
    }

    fn full(&self) -> bool {
        self.messages.len() >= BATCH_MESSAGES || self.bytes >= BATCH_BYTES
    }

    fn len(&self) -> usize {
        self.messages.len()
    }
}

/// Takes the batch in and, only if that succeeded, acknowledges it.
async fn flush<I: Intake>(
    client: &GraphClient,
    settings: &GraphSettings,
    intake: &I,
    status: &SourceStatus,
    batch: &mut Batch,
    shutdown: &Receiver<bool>,
) -> Result<(), GraphError> {
    if batch.messages.is_empty() {
        return Ok(());
    }
    let batch = std::mem::take(batch);
    let count = batch.messages.len();
    intake.take(batch.messages).await?;
    status.taken(count as u64);
    tracing::info!(source = %settings.name, count, bytes = batch.bytes, "messages taken in");
    acknowledge(client, settings, &batch.ids, shutdown).await
}

/// Marks each message read and, if configured, deletes it. Once shutdown is asked for, this
/// goes on for at most [`SHUTDOWN_GRACE`]; what is left stays unread and is only acknowledged
/// (not taken in again) by the next run, as the intake knows it.
async fn acknowledge(
    client: &GraphClient,
    settings: &GraphSettings,
    ids: &[String],
    shutdown: &Receiver<bool>,
) -> Result<(), GraphError> {
    let all = async {
        for id in ids {
            let result = async {
                client.mark_read(id).await?;
                if settings.delete_after_delivery {
                    client.delete(id).await?;
                }
                Ok(())
            }
            .await;
            match result {
                Ok(()) | Err(GraphError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    };
    tokio::pin!(all);
    let mut waiter = shutdown.clone();
    tokio::select! {
        result = &mut all => result,
        () = stopped(&mut waiter) => match tokio::time::timeout(SHUTDOWN_GRACE, all).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(source = %settings.name, "shutdown: some messages taken in stay unread until the next start");
                Ok(())
            }
        },
    }
}

/// `future`'s output, or `None` if shutdown is asked for first (the future is dropped).
async fn until_shutdown<T>(
    future: impl Future<Output = T>,
    shutdown: &Receiver<bool>,
) -> Option<T> {
    let mut waiter = shutdown.clone();
    tokio::select! {
        biased;
        () = stopped(&mut waiter) => None,
        output = future => Some(output),
    }
}

fn stopping(shutdown: &Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Returns once shutdown is asked for, or once nobody can ask any more (sender dropped).
async fn stopped(shutdown: &mut Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}
