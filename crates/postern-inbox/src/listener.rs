//! The built-in LMTP/SMTP listener: accepts mail from an MTA and hands each message to a callback.
//!
//! [`Listener::bind`] opens the socket (so a port in use is reported by the caller before any
//! work starts); [`Listener::run`] serves until the shutdown future completes. Each connection
//! runs one session task (see `session`), holding a permit of a semaphore so at most
//! [`Settings::max_connections`] sessions run at once; further clients wait in the kernel's
//! accept backlog rather than being refused.
//!
//! Shutdown follows mini-redis: stop accepting, broadcast the signal to the sessions (a watch
//! channel), let each one finish the message it is in the middle of (DATA and the callback are
//! not interrupted), and wait for every session task before `run` returns.

mod session;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Which protocol the listener speaks. Both share the session code; they differ in the greeting
/// command (LHLO against HELO/EHLO) and in the replies after DATA (one per recipient in LMTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// LMTP (RFC 2033), what an MTA uses to hand mail to a local delivery agent.
    Lmtp,
    /// SMTP (RFC 5321) without AUTH or STARTTLS, for an MTA relaying to a port on loopback.
    Smtp,
}

/// Limits and identity of a listener. [`Settings::default`] is the production default.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The protocol spoken on every connection of this listener.
    pub protocol: Protocol,
    /// The name put in the greeting and the LHLO/EHLO reply.
    pub hostname: String,
    /// Largest message accepted, in bytes after dot-unstuffing. Enforced while DATA is read, so
    /// an oversized message is discarded as it arrives instead of being held in memory.
    pub max_message_size: usize,
    /// Longest command line, in bytes including the line ending.
    pub max_line_length: usize,
    /// Most recipients accepted in one transaction; further RCPTs get `452`.
    pub max_recipients: usize,
    /// How long one read may wait for the client before the session is closed with `421`.
    pub idle_timeout: Duration,
    /// Most connections served at once (the semaphore's size).
    pub max_connections: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            protocol: Protocol::Lmtp,
            hostname: "localhost".to_owned(),
            max_message_size: 50 * 1024 * 1024,
            max_line_length: 4096,
            max_recipients: 100,
            idle_timeout: Duration::from_secs(5 * 60),
            max_connections: 64,
        }
    }
}

/// One message handed in, as given to the delivery callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The envelope recipients (RCPT TO addresses, without angle brackets), in order. A hint for
    /// routing only: the caller decides what they mean.
    pub mailbox_hint: Vec<String>,
    /// The message exactly as received after DATA, dot-unstuffed, with the client's line endings
    /// (CRLF or bare LF) kept as sent, and without the terminating `.` line.
    pub raw: Vec<u8>,
    /// The envelope sender (MAIL FROM), empty for the null sender `<>` used by bounces.
    pub from: String,
}

/// Why the callback did not take a message; decides what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    /// Try again later (database down): answered `451 4.3.0`, so the MTA keeps the message.
    #[error("temporary delivery failure: {0}")]
    Temporary(String),
    /// Never going to work: answered `550`, so the MTA bounces the message.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// A bound, not yet serving, LMTP/SMTP listener.
#[derive(Debug)]
pub struct Listener {
    /// The accepting socket; dropped when `run` stops accepting.
    listener: TcpListener,
    /// Shared read-only by every session for the listener's whole life.
    settings: Arc<Settings>,
}

impl Listener {
    /// Binds `addr`. Fails with the socket's error (port in use, permission) so the caller can
    /// report it with the address, or with `InvalidInput` if a limit in `settings` is zero.
    pub async fn bind(addr: SocketAddr, settings: Settings) -> io::Result<Self> {
        // A zero limit would make every session or every message fail (or, for connections,
        // hang forever), so refuse it at start-up rather than at the first mail.
        if settings.max_connections == 0
            || settings.max_message_size == 0
            || settings.max_recipients == 0
            || settings.max_line_length < 16
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "listener limits must be non-zero (and lines at least 16 bytes)",
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            settings: Arc::new(settings),
        })
    }

    /// The address actually bound (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets open sessions finish the
    /// message in flight (idle ones are told `421` and closed), and returns once all are done.
    ///
    /// `deliver` is called once per message with the whole message; the client gets `250` only
    /// after it returns `Ok(())`.
    pub async fn run<S, F, Fut>(self, shutdown: S, deliver: F)
    where
        S: Future<Output = ()>,
        F: Fn(Delivery) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<(), DeliverError>> + Send + 'static,
    {
        let Self { listener, settings } = self;
        let limit = Arc::new(Semaphore::new(settings.max_connections));
        // `true` once shutdown starts; sessions watch it between commands.
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);

        loop {
            // Reap finished sessions so the set does not grow with every connection ever served.
            while sessions.try_join_next().is_some() {}

            // Take the permit before accepting: over the cap, clients wait in the backlog.
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = limit.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    // Only possible if the semaphore is closed, which this function never does.
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let settings = settings.clone();
                    let stop = stop_rx.clone();
                    let deliver = deliver.clone();
                    sessions.spawn(async move {
                        session::serve(stream, peer, &settings, stop, deliver).await;
                        // Released only when the session is over, whatever way it ended.
                        drop(permit);
                    });
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning on accept.
                    tracing::warn!(%error, "listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }

        drop(listener);
        // Receivers may all be gone already (no sessions); that is fine.
        let _ = stop_tx.send(true);
        while let Some(result) = sessions.join_next().await {
            if let Err(error) = result {
                // A panicking callback ends its session without a reply: the MTA retries.
                tracing::error!(%error, "listener: session task failed");
            }
        }
        tracing::info!("listener: stopped");
    }
}
