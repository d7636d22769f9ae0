//! The IMAP watcher: takes every message of one folder into the [`Intake`], then flags it.
//!
//! [`watch()`] runs until shutdown and never gives up on its own. Each round it connects
//! ([`Security`]: implicit TLS, STARTTLS, or plaintext to loopback only), authenticates
//! ([`Auth`]: LOGIN, AUTHENTICATE PLAIN or XOAUTH2), selects the folder and reads UIDVALIDITY,
//! then:
//!
//! 1. **catch-up scan** — every UID above the intake's cursor for this UIDVALIDITY (all of
//!    them when there is none), `\Seen` or not, so mail that another client opened is not
//!    skipped (mail_room's default `UNSEEN` search skips it forever); plus the
//!    not-yet-acknowledged messages below the cursor: those already stored are only flagged,
//!    the others fetched;
//! 2. fetch with `BODY.PEEK[]` in batches bounded by count and bytes (sizes planned from a
//!    cheap `RFC822.SIZE` fetch), hand each batch to [`Intake::take`], and **only after `Ok`**
//!    `UID STORE +FLAGS.SILENT (\Seen)` — or `(\Seen \Deleted)` and `UID EXPUNGE` of exactly
//!    those UIDs with `delete_after_delivery`. A failed `take` flags nothing; the same batch is
//!    offered again with back-off while the connection is kept;
//! 3. wait with IDLE (re-issued every `idle_timeout`) or, without IDLE, `NOOP` every few
//!    seconds; on any notification or timeout, scan the UIDs above the last one handled.
//!
//! Any failure — refused connection, TLS, login, `BYE`, a cut connection, a timeout (every
//! network step has one) — is reported in the [`SourceStatus`] without secrets, logged, and
//! followed by a reconnect after [`crate::RECONNECT_BACKOFF`] and a new catch-up scan. Because acknowledging
//! happens only after storing, an interruption at any point leads to a re-fetch (deduplicated
//! by the identity `imap:<user>@<host>/<folder>:<uidvalidity>:<uid>`), never to a loss.
//!
//! Shutdown (`postern_vocab::Shutdown` stopped): the batch in hand is finished (taken and
//! flagged), IDLE is ended with `DONE`, the session logged out, and [`watch()`] returns — within
//! 10 s in every case; past that the connection is simply dropped, which loses nothing.

mod connect;
mod limit;
mod settings;
mod uids;
mod wait;
mod watcher;

use std::sync::Arc;
use std::time::Duration;

use self::connect::{command_error, open, within};
use self::wait::Woke;
use self::watcher::{Stop, Watcher};
use crate::intake::Intake;
use crate::status::SourceStatus;
use postern_vocab::Shutdown;
use postern_vocab::backoff::Streak;

pub use self::settings::{
    Auth, ImapConfig, ImapSettings, MAX_IDLE_TIMEOUT, Security, TokenFuture, TokenSource,
};

/// The longest a shutdown may take before the connection is dropped without `LOGOUT`.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// How long `LOGOUT` is waited for.
const LOGOUT_LIMIT: Duration = Duration::from_secs(3);

/// Says `LOGOUT`, waiting at most [`LOGOUT_LIMIT`]: a courtesy to the server, so a failure
/// changes nothing.
async fn logout(settings: &ImapSettings, session: &mut connect::Session) {
    within(LOGOUT_LIMIT, "LOGOUT", async {
        session
            .logout()
            .await
            .map_err(|e| command_error(settings, "LOGOUT", e))
    })
    .await
    .ok();
}

/// Why connecting or a command failed. The texts never contain passwords or tokens, and
/// never message contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImapError {
    /// The settings are wrong; fix the configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// TCP connect failed or the connection was lost.
    #[error("connection: {0}")]
    Connection(String),
    /// TLS setup or handshake failed (certificate, STARTTLS refused).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server refused the credentials.
    #[error("authentication: {0}")]
    Auth(String),
    /// The folder cannot be selected.
    #[error("mailbox: {0}")]
    Mailbox(String),
    /// The server answered something unexpected (`NO`, `BAD`, unparsable).
    #[error("protocol: {0}")]
    Protocol(String),
    /// A network step took longer than allowed.
    #[error("timeout: {0}")]
    Timeout(String),
}

/// What `postern check` reports about a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    /// Where: `<user>@<host>:<port>/<folder>`.
    pub location: String,
    /// Messages in the folder.
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// The folder's UIDVALIDITY.
    pub uid_validity: u32,
    /// Whether the server offers IDLE (otherwise the watcher polls).
    pub idle: bool,
    /// Whether the server offers UIDPLUS (`UID EXPUNGE`).
    pub uidplus: bool,
    /// Every capability announced after login.
    pub capabilities: Vec<String>,
}

/// Connects, logs in, selects the folder, counts its messages and unseen messages, then logs
/// out: what `postern check` shows for an IMAP mailbox.
pub async fn check(settings: &ImapSettings) -> Result<CheckReport, ImapError> {
    let mut opened = open(settings).await?;
    let session = &mut opened.session;
    let unseen = connect::timed(settings, "UID SEARCH UNSEEN", async {
        session
            .uid_search("UNSEEN")
            .await
            .map_err(|e| command_error(settings, "UID SEARCH", e))
    })
    .await?;
    logout(settings, session).await;
    Ok(CheckReport {
        location: settings.location(),
        messages: opened.exists,
        unseen: u32::try_from(unseen.len()).unwrap_or(u32::MAX),
        uid_validity: opened.validity,
        idle: opened.features.idle,
        uidplus: opened.features.uidplus,
        capabilities: opened.capabilities,
    })
}

/// Watches the folder of `settings` until `shutdown` stops it,
/// taking every message into `intake` and acknowledging it only afterwards. Errors never end
/// it: they are reported in `status` and followed by a reconnect with back-off. Returns
/// within [`SHUTDOWN_LIMIT`] of the shutdown signal.
pub async fn watch<I: Intake>(
    settings: ImapSettings,
    intake: Arc<I>,
    status: Arc<SourceStatus>,
    shutdown: Shutdown,
) {
    let deadline = shutdown.clone();
    tokio::select! {
        () = run(&settings, &*intake, &status, shutdown) => {}
        () = async {
            deadline.stopped().await;
            tokio::time::sleep(SHUTDOWN_LIMIT - Duration::from_millis(500)).await;
        } => {
            tracing::warn!(
                mailbox = %settings.config().name,
                "shutdown took too long; dropping the IMAP connection (nothing unstored was \
                 acknowledged)"
            );
        }
    }
    status.stopped();
    tracing::info!(mailbox = %settings.config().name, "IMAP watcher stopped");
}

async fn run<I: Intake>(
    settings: &ImapSettings,
    intake: &I,
    status: &SourceStatus,
    shutdown: Shutdown,
) {
    let mut backoff = crate::RECONNECT_BACKOFF.streak();
    let name = &settings.config().name;
    loop {
        if shutdown.is_stopping() {
            return;
        }
        match session(settings, intake, status, shutdown.clone(), &mut backoff).await {
            Ok(()) => return,
            Err(error) => {
                let delay = backoff.next_delay();
                status.failed(&error.to_string());
                tracing::warn!(
                    mailbox = %name,
                    %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "IMAP watcher failed; reconnecting"
                );
                if shutdown.sleep(delay).await {
                    return;
                }
            }
        }
    }
}

/// One connection's life: open, catch up, then wait and scan until an error (returned) or
/// shutdown (`Ok`, after `LOGOUT`).
async fn session<I: Intake>(
    settings: &ImapSettings,
    intake: &I,
    status: &SourceStatus,
    shutdown: Shutdown,
    backoff: &mut Streak,
) -> Result<(), ImapError> {
    let opened = open(settings).await?;
    status.connected();
    tracing::info!(
        mailbox = %settings.config().name,
        location = %settings.location(),
        uidvalidity = opened.validity,
        idle = opened.features.idle,
        uidplus = opened.features.uidplus,
        "IMAP watcher connected"
    );
    let mut watcher = Watcher {
        settings,
        intake,
        status,
        shutdown,
        session: Some(opened.session),
        validity: opened.validity,
        features: opened.features,
        last_uid: 0,
        source: settings.source(),
        intake_backoff: crate::RECONNECT_BACKOFF.streak(),
    };
    let outcome: Result<std::convert::Infallible, Stop> = async {
        watcher.catch_up().await?;
        // Only a session that got through a whole scan counts as a success: a server that
        // accepts logins but fails every scan still backs off.
        backoff.reset();
        loop {
            let woke = watcher.wait().await?;
            if woke == Woke::Changed {
                tracing::debug!(mailbox = %settings.config().name, "change notified");
            }
            watcher.incremental().await?;
        }
    }
    .await;
    let Err(stop) = outcome;
    match stop {
        Stop::Shutdown => {
            if let Some(mut session) = watcher.session.take() {
                logout(settings, &mut session).await;
            }
            Ok(())
        }
        Stop::Imap(error) => Err(error),
    }
}
