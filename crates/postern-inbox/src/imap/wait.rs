//! Waiting for new mail between scans: IDLE where the server has it, NOOP polling where not.
//!
//! Either way the wait ends after `idle_timeout` at the latest (the caller then scans anyway,
//! which also re-issues IDLE well inside the 29 minutes servers allow), at the first sign of a
//! change, or at shutdown.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;

use super::connect::{command_error, timed, within};
use super::watcher::{Stop, Watcher};
use crate::intake::Intake;

/// How often a server without IDLE is asked (with `NOOP`) whether anything arrived.
const POLL_EVERY: Duration = Duration::from_secs(5);

/// How long `DONE` may take when shutting down: the whole shutdown must fit in 10 s.
const DONE_AT_SHUTDOWN: Duration = Duration::from_secs(3);

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woke {
    /// The server reported a change (new message, flags, recent count).
    Changed,
    /// `idle_timeout` passed.
    Timeout,
}

/// Whether an unsolicited response can mean new mail.
fn may_be_new_mail(response: &UnsolicitedResponse) -> bool {
    !matches!(response, UnsolicitedResponse::Expunge(_))
}

impl<I: Intake> Watcher<'_, I> {
    /// Waits for the next reason to scan; `Err(Stop::Shutdown)` when asked to stop (after
    /// ending IDLE cleanly).
    pub(crate) async fn wait(&mut self) -> Result<Woke, Stop> {
        if self.stopping() {
            return Err(Stop::Shutdown);
        }
        // Responses that arrived with earlier commands (an EXISTS during a STORE) are not
        // repeated in IDLE: look at them first.
        if self.drain_notifications()? {
            return Ok(Woke::Changed);
        }
        if self.features.idle {
            self.idle().await
        } else {
            self.poll().await
        }
    }

    /// `true` if any queued unsolicited response may mean new mail.
    fn drain_notifications(&mut self) -> Result<bool, Stop> {
        let session = self.session()?;
        let mut changed = false;
        while let Ok(response) = session.unsolicited_responses.try_recv() {
            changed |= may_be_new_mail(&response);
        }
        Ok(changed)
    }

    async fn poll(&mut self) -> Result<Woke, Stop> {
        let idle_timeout = self.settings.config().idle_timeout;
        let started = tokio::time::Instant::now();
        loop {
            let left = idle_timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(Woke::Timeout);
            }
            if self.shutdown.sleep(left.min(POLL_EVERY)).await {
                return Err(Stop::Shutdown);
            }
            let settings = self.settings;
            let session = self.session()?;
            timed(settings, "NOOP", async {
                session
                    .noop()
                    .await
                    .map_err(|e| command_error(settings, "NOOP", e))
            })
            .await?;
            if self.drain_notifications()? {
                return Ok(Woke::Changed);
            }
        }
    }

    async fn idle(&mut self) -> Result<Woke, Stop> {
        let settings = self.settings;
        let idle_timeout = settings.config().idle_timeout;
        let session = self
            .session
            .take()
            .ok_or_else(|| Stop::Imap(super::ImapError::Connection("connection lost".into())))?;
        let notifications = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        timed(settings, "IDLE", async {
            handle
                .init()
                .await
                .map_err(|e| command_error(settings, "IDLE", e))
        })
        .await?;
        // An EXISTS sent just before the server's "+ idling" went to the queue, not to the
        // wait below.
        let mut woke = None;
        while let Ok(response) = notifications.try_recv() {
            if may_be_new_mail(&response) {
                woke = Some(Woke::Changed);
            }
        }
        let mut shutdown = false;
        if woke.is_none() {
            // From here on mail that arrives wakes the watcher: tests and operators can tell.
            self.status.idle();
            tracing::debug!(mailbox = %settings.config().name, "waiting in IDLE");
            let (wait, _interrupt) = handle.wait_with_timeout(idle_timeout);
            // async-imap restarts its timer on every keep-alive ("* OK Still here"); this
            // outer bound makes sure IDLE is re-issued and the folder rescanned regardless.
            tokio::select! {
                result = tokio::time::timeout(idle_timeout, wait) => {
                    woke = Some(match result {
                        Ok(Ok(IdleResponse::NewData(_))) => Woke::Changed,
                        // The stream ended: the connection is gone; DONE below will say so.
                        Ok(Ok(IdleResponse::ManualInterrupt)) => Woke::Changed,
                        Ok(Ok(IdleResponse::Timeout)) | Err(_) => Woke::Timeout,
                        Ok(Err(e)) => return Err(Stop::Imap(command_error(settings, "IDLE", e))),
                    });
                }
                () = self.shutdown.stopped() => shutdown = true,
            }
            self.status.connected();
            // With "waiting in IDLE", a log reader can tell whether the watcher is idle now.
            tracing::debug!(mailbox = %settings.config().name, "leaving IDLE");
        }
        let done_within = if shutdown {
            DONE_AT_SHUTDOWN.min(settings.config().command_timeout)
        } else {
            settings.config().command_timeout
        };
        let session = within(done_within, "DONE", async {
            handle
                .done()
                .await
                .map_err(|e| command_error(settings, "DONE", e))
        })
        .await?;
        self.session = Some(session);
        if shutdown {
            return Err(Stop::Shutdown);
        }
        Ok(woke.unwrap_or(Woke::Changed))
    }
}
