//! The polling loop: one pass now, then one every `poll_interval`, until shutdown.
//!
//! A pass: token → list the first page of unread messages → ask the intake which of them are
//! already stored (those are only acknowledged) → for each of the others, at most
//! [`MAX_CONCURRENCY`] at a time: fetch, `Intake::take`, and only after `Ok` mark it read and,
//! if configured, delete it → list the first page again, until it holds nothing new. Each
//! message is acknowledged as soon as it is durable, so a failure loses only the work on the
//! messages in flight, never what was taken in before it; the client retries throttled requests
//! itself, so a failure here is one that lasted. It ends the pass, is recorded in the status and
//! waits `Retry-After` or the back-off; nothing is acknowledged that was not taken in. On
//! shutdown, fetching stops at once (nothing fetched is acknowledged yet, so nothing is lost)
//! and messages already taken in are acknowledged within a short grace.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use postern_vocab::Shutdown;

use super::client::{GraphClient, MAX_RETRY_AFTER};
use super::{GraphError, GraphSettings, MAX_CONCURRENCY};
use crate::intake::{Fetched, Intake};
use crate::status::SourceStatus;

/// At most this many messages per pass; the next pass starts at once if there were more, so a
/// large backlog still lets the status and the token be looked at now and then.
const MESSAGES_PER_PASS: usize = 5000;
/// How long acknowledging messages already taken in may go on after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How a pass (or a page of it) ended.
#[derive(Debug, PartialEq, Eq)]
enum PassEnd {
    /// Every unread message was taken in: wait `poll_interval`.
    CaughtUp,
    /// There are more than one pass takes: go on at once.
    More,
    /// Shutdown was asked for.
    Stopping,
}

/// Watches the folder of `settings` until `shutdown` stops it,
/// handing messages to `intake` and keeping `status` current. Never returns early on errors:
/// it backs off and tries again. Invalid settings are reported in `status` and the watcher then
/// only waits for shutdown.
pub async fn watch<I: Intake>(
    settings: GraphSettings,
    intake: Arc<I>,
    status: Arc<SourceStatus>,
    shutdown: Shutdown,
) {
    let client = match GraphClient::new(&settings) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(source = %settings.name, %error, "Microsoft Graph watcher not started");
            status.failed(&error.to_string());
            shutdown.stopped().await;
            status.stopped();
            return;
        }
    };
    tracing::info!(source = %settings.name, location = %settings.location(), "Microsoft Graph watcher started");
    let mut backoff = crate::RECONNECT_BACKOFF.streak();
    loop {
        let watcher = Watcher {
            client: &client,
            settings: &settings,
            intake: &*intake,
            status: &status,
            shutdown: &shutdown,
        };
        let pause = match watcher.pass().await {
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
        if shutdown.sleep(pause).await {
            break;
        }
    }
    tracing::info!(source = %settings.name, "Microsoft Graph watcher stopped");
    status.stopped();
}

/// What one pass works with.
struct Watcher<'a, I> {
    client: &'a GraphClient,
    settings: &'a GraphSettings,
    intake: &'a I,
    status: &'a SourceStatus,
    shutdown: &'a Shutdown,
}

impl<I: Intake> Watcher<'_, I> {
    async fn pass(&self) -> Result<PassEnd, GraphError> {
        let Some(token) = self.shutdown.until(self.client.token()).await else {
            return Ok(PassEnd::Stopping);
        };
        self.status.set_token_expiry(token?.expires_at());

        let first_page = self.client.first_page();
        let mut url = first_page.clone();
        // Every message this pass has worked on: acknowledged, vanished, or already stored.
        let mut handled: HashSet<String> = HashSet::new();
        loop {
            if self.shutdown.is_stopping() {
                return Ok(PassEnd::Stopping);
            }
            if handled.len() >= MESSAGES_PER_PASS {
                return Ok(PassEnd::More);
            }
            let Some(page) = self.shutdown.until(self.client.list(&url)).await else {
                return Ok(PassEnd::Stopping);
            };
            let page = page?;
            self.status.connected();
            let mut fresh = Vec::new();
            for message in page.messages {
                // Also drops an id listed twice on one page while the folder changed.
                if !message.is_read && handled.insert(message.id.clone()) {
                    fresh.push(message.id);
                }
            }
            if fresh.is_empty() {
                // Nothing new where a first page should show the next unread messages: what we
                // acknowledged has not left the listing yet, so look further along it.
                match page.next {
                    Some(next) => {
                        url = next;
                        continue;
                    }
                    None => {
                        self.status.set_backlog(0);
                        return Ok(PassEnd::CaughtUp);
                    }
                }
            }
            tracing::debug!(source = %self.settings.name, unread = fresh.len(), more = page.next.is_some(), "listed a page of unread messages");
            if self.take_page(fresh).await? == PassEnd::Stopping {
                return Ok(PassEnd::Stopping);
            }
            url = first_page.clone();
        }
    }

    /// Takes in and acknowledges the messages `ids` of one page, at most [`MAX_CONCURRENCY`] at
    /// a time. On the first failure no further message is started; the ones in flight finish
    /// (so their work is kept) and the failure is returned.
    async fn take_page(&self, ids: Vec<String>) -> Result<PassEnd, GraphError> {
        let identities: Vec<String> = ids.iter().map(|id| self.settings.identity(id)).collect();
        let known = self.intake.known(&identities).await?;
        let mut backlog = ids.len() as u64;
        self.status.set_backlog(backlog);
        let mut waiting = ids.into_iter().zip(identities);
        let mut running = FuturesUnordered::new();
        let mut failure = None;
        let mut taken = 0u64;
        loop {
            while running.len() < MAX_CONCURRENCY
                && failure.is_none()
                && !self.shutdown.is_stopping()
            {
                let Some((id, identity)) = waiting.next() else {
                    break;
                };
                let stored = known.contains(&identity);
                running.push(self.take_one(id, identity, stored));
            }
            let Some(outcome) = running.next().await else {
                break;
            };
            backlog = backlog.saturating_sub(1);
            self.status.set_backlog(backlog);
            match outcome {
                Ok(Outcome::TakenIn) => taken += 1,
                Ok(Outcome::Done) => {}
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        if taken > 0 {
            tracing::info!(source = %self.settings.name, count = taken, "messages taken in");
        }
        match failure {
            Some(error) => Err(error),
            None if self.shutdown.is_stopping() => Ok(PassEnd::Stopping),
            None => Ok(PassEnd::More),
        }
    }

    /// One message: fetch it (unless `stored` already), take it in, acknowledge it.
    async fn take_one(
        &self,
        id: String,
        identity: String,
        stored: bool,
    ) -> Result<Outcome, GraphError> {
        if stored {
            // Stored by an earlier pass whose acknowledgement did not reach Graph.
            self.acknowledge(&id).await?;
            return Ok(Outcome::Done);
        }
        let Some(fetched) = self.shutdown.until(self.client.fetch_raw(&id)).await else {
            return Ok(Outcome::Done);
        };
        let downloaded = match fetched {
            Ok(downloaded) => downloaded,
            Err(GraphError::NotFound(_)) => {
                tracing::debug!(source = %self.settings.name, "message vanished before it was fetched");
                return Ok(Outcome::Done);
            }
            Err(error) => return Err(error),
        };
        if let Some(size) = downloaded.oversized {
            tracing::warn!(
                source = %self.settings.name,
                size,
                max = self.settings.max_message_size,
                "message over the size limit: handed on as its header block"
            );
        }
        let bytes = downloaded.raw.len();
        let message = Fetched {
            raw: downloaded.raw.into(),
            identity,
            cursor: None,
            oversized: downloaded.oversized,
        };
        self.intake.take(vec![message]).await?;
        self.status.taken(1);
        tracing::debug!(source = %self.settings.name, bytes, "message taken in");
        self.acknowledge(&id).await?;
        Ok(Outcome::TakenIn)
    }

    /// Marks message `id` read and, if configured, deletes it. Once shutdown is asked for, this
    /// goes on for at most [`SHUTDOWN_GRACE`]; a message left unread then is only acknowledged
    /// (not taken in again) by the next run, as the intake knows it.
    async fn acknowledge(&self, id: &str) -> Result<(), GraphError> {
        let both = async {
            self.client.mark_read(id).await?;
            if self.settings.delete_after_delivery {
                self.client.delete(id).await?;
            }
            Ok(())
        };
        let result = async {
            tokio::pin!(both);
            tokio::select! {
                result = &mut both => result,
                () = self.shutdown.stopped() => match tokio::time::timeout(SHUTDOWN_GRACE, both).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!(source = %self.settings.name, "shutdown: a message taken in stays unread until the next start");
                        Ok(())
                    }
                },
            }
        }
        .await;
        match result {
            // Someone moved or deleted it meanwhile: nothing left to acknowledge.
            Ok(()) | Err(GraphError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// What became of one message of a page.
enum Outcome {
    /// Fetched, taken in and acknowledged.
    TakenIn,
    /// Nothing to take in: already stored (now acknowledged), vanished, or shutdown.
    Done,
}
