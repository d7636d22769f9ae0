//! The built-in LMTP/SMTP listener: accepts mail from an MTA and hands each message to a callback.
//!
//! [`Listener::bind`] opens the socket (so a port in use is reported by the caller before any
//! work starts); [`Listener::run`] serves until its `Shutdown` stops it. Each connection
//! runs one session task (see `session`), holding a permit of a semaphore so at most
//! [`ListenerLimits::max_sessions`] sessions run at once; a connection over that is answered
//! `421 4.7.0` and closed at once rather than queued.
//!
//! Nothing a client sends can make the listener hold unbounded memory or time: every session
//! has a whole-session deadline besides the per-read idle timeout, DATA must keep a minimum
//! rate, and message bodies live in memory only up to a per-message threshold and a budget
//! shared by all sessions — beyond either they are spooled to an unnamed file in the caller's
//! spool directory ([`MessageBody`]). An oversized message is read to its end and thrown away
//! (`552 5.3.4`), and the session goes on. Every limit is in [`ListenerLimits`].
//!
//! Replies follow one rule: `5xx` when the same message would fail the same way again, `4xx`
//! only for what can clear (load, time, a store that is down). No reply contains a path or an
//! internal error text: they reach the sender in bounces.
//!
//! Shutdown follows mini-redis: stop accepting, broadcast the signal to the sessions (a
//! `Shutdown` of the listener's own), let each one finish the message it is in the middle of (DATA and the callback are
//! not interrupted), and wait for every session task before `run` returns.

mod body;
mod data;
mod session;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postern_vocab::Shutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use self::body::Budget;
pub use self::body::{BodyReader, BufferStats, MessageBody};

/// Which protocol the listener speaks. Both share the session code; they differ in the greeting
/// command (LHLO against HELO/EHLO) and in the replies after DATA (one per recipient in LMTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// LMTP (RFC 2033), what an MTA uses to hand mail to a local delivery agent.
    Lmtp,
    /// SMTP (RFC 5321) without AUTH or STARTTLS, for an MTA relaying to a port on loopback.
    Smtp,
}

/// The default largest message, in bytes after dot-unstuffing.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 50 * 1024 * 1024;
/// The default longest command line, in bytes including the line ending.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 4096;
/// The default most recipients per transaction.
pub const DEFAULT_MAX_RECIPIENTS: usize = 100;
/// The default longest wait for one read or write of the client.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The default longest a whole session may last (Postfix reuses an LMTP connection for at
/// most 300 s by default, so a real MTA never comes near it).
pub const DEFAULT_SESSION_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// The default slowest DATA accepted, in bytes per second over each [`DEFAULT_DATA_RATE_WINDOW`].
pub const DEFAULT_MIN_DATA_RATE: u64 = 1024;
/// The default period over which the DATA rate is measured.
pub const DEFAULT_DATA_RATE_WINDOW: Duration = Duration::from_secs(30);
/// The default most sessions at once; further connections are told `421` and closed.
pub const DEFAULT_MAX_SESSIONS: usize = 64;
/// The default largest message kept in memory; larger ones are spooled to a file.
pub const DEFAULT_MEMORY_THRESHOLD: usize = 1024 * 1024;
/// The default most bytes of message bodies held in memory across all sessions.
pub const DEFAULT_MEMORY_BUDGET: usize = 64 * 1024 * 1024;
/// The shortest command line limit accepted (RFC 5321 needs 512; below this nothing parses).
const MIN_LINE_LENGTH: usize = 16;

/// Every limit of a listener. [`ListenerLimits::default`] holds the production defaults (the
/// `DEFAULT_*` constants). Each has its own answer to the client:
///
/// | limit | answer |
/// |---|---|
/// | `max_message_size` | `552 5.3.4` after DATA (or at `MAIL FROM … SIZE=`); the session goes on |
/// | `max_line_length` | `500 5.5.2` for that command |
/// | `max_recipients` | `452 4.5.3` for the extra `RCPT` |
/// | `idle_timeout` | `421 4.4.2`, connection closed |
/// | `session_deadline` | `421 4.4.2`, connection closed (never during the delivery callback) |
/// | `min_data_rate` | `421 4.4.2` during DATA, connection closed, message discarded |
/// | `max_sessions` | `421 4.7.0` at once to the extra connection, closed (not queued) |
/// | `memory_threshold`, `memory_budget` | none: the message is spooled to a file instead |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Largest message accepted, in bytes after dot-unstuffing. Enforced while DATA is read:
    /// the rest of an oversized message is read and thrown away, never buffered.
    pub max_message_size: usize,
    /// Longest command line, in bytes including the line ending.
    pub max_line_length: usize,
    /// Most recipients accepted in one transaction.
    pub max_recipients: usize,
    /// How long one read of (or write to) the client may wait.
    pub idle_timeout: Duration,
    /// How long one session may last in all, from the greeting.
    pub session_deadline: Duration,
    /// The slowest DATA accepted, in bytes per second, measured over each `data_rate_window`
    /// from the `354` on. `0` turns the check off.
    pub min_data_rate: u64,
    /// The period over which `min_data_rate` is measured.
    pub data_rate_window: Duration,
    /// Most sessions served at once.
    pub max_sessions: usize,
    /// A message whose body grows beyond this many bytes is moved to a spool file.
    pub memory_threshold: usize,
    /// Most bytes of message bodies held in memory by all sessions together (capacity
    /// counted, from DATA until the delivery callback drops the body); a message that would
    /// go over it is spooled.
    pub memory_budget: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            max_recipients: DEFAULT_MAX_RECIPIENTS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            session_deadline: DEFAULT_SESSION_DEADLINE,
            min_data_rate: DEFAULT_MIN_DATA_RATE,
            data_rate_window: DEFAULT_DATA_RATE_WINDOW,
            max_sessions: DEFAULT_MAX_SESSIONS,
            memory_threshold: DEFAULT_MEMORY_THRESHOLD,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

impl ListenerLimits {
    /// Refuses limits that would make every session or message fail (or hang).
    fn check(&self) -> io::Result<()> {
        let problem = if self.max_sessions == 0 {
            Some("max_sessions must be more than 0")
        } else if self.max_message_size == 0 {
            Some("max_message_size must be more than 0")
        } else if self.max_recipients == 0 {
            Some("max_recipients must be more than 0")
        } else if self.max_line_length < MIN_LINE_LENGTH {
            Some("max_line_length must be at least 16 bytes")
        } else if self.idle_timeout.is_zero() || self.session_deadline.is_zero() {
            Some("idle_timeout and session_deadline must be more than 0")
        } else if self.data_rate_window.is_zero() {
            Some("data_rate_window must be more than 0")
        } else if self.memory_threshold > self.memory_budget {
            Some("memory_threshold must not be more than memory_budget")
        } else {
            None
        };
        match problem {
            Some(text) => Err(io::Error::new(io::ErrorKind::InvalidInput, text)),
            None => Ok(()),
        }
    }
}

/// Identity, limits and spool directory of a listener. [`Settings::default`] is the
/// production default except for `spool_directory`, which the caller should point at a
/// directory of its own (the default is the system's temporary directory).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The protocol spoken on every connection of this listener.
    pub protocol: Protocol,
    /// The name put in the greeting and the LHLO/EHLO reply.
    pub hostname: String,
    /// Every limit.
    pub limits: ListenerLimits,
    /// Where messages too large for memory are spooled, as unnamed temporary files (nothing
    /// is left there after a crash). Must exist.
    pub spool_directory: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            protocol: Protocol::Lmtp,
            hostname: "localhost".to_owned(),
            limits: ListenerLimits::default(),
            spool_directory: std::env::temp_dir(),
        }
    }
}

impl Settings {
    fn check(&self) -> io::Result<()> {
        self.limits.check()?;
        if !self.spool_directory.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "spool directory {} is not a directory",
                    self.spool_directory.display()
                ),
            ));
        }
        Ok(())
    }
}

/// One message handed in, as given to the delivery callback.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The envelope recipients (RCPT TO addresses, without angle brackets), in order. A hint for
    /// routing only: the caller decides what they mean.
    pub mailbox_hint: Vec<String>,
    /// The message exactly as received after DATA, dot-unstuffed, with the client's line endings
    /// (CRLF or bare LF) kept as sent, and without the terminating `.` line: in memory or
    /// spooled to a file ([`MessageBody::bytes`] reads it either way).
    pub raw: MessageBody,
    /// The envelope sender (MAIL FROM), empty for the null sender `<>` used by bounces.
    pub from: String,
}

/// Why the callback did not take a message; decides what the client is told. The text is
/// logged, never sent: a reply reaches the sender in a bounce, so it carries no internal
/// detail (paths, error texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    /// A condition that can clear (database down): answered `451 4.3.0`, so the MTA keeps the
    /// message and tries again.
    #[error("temporary delivery failure: {0}")]
    Temporary(String),
    /// Will fail the same way every time: answered `550 5.6.0`, so the MTA bounces the message.
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
    /// The memory budget of all sessions.
    budget: Arc<Budget>,
}

impl Listener {
    /// Binds `addr`. Fails with the socket's error (port in use, permission) so the caller can
    /// report it with the address, or with `InvalidInput` if a limit in `settings` is unusable
    /// or the spool directory does not exist.
    pub async fn bind(addr: SocketAddr, settings: Settings) -> io::Result<Self> {
        // A zero limit would make every session or every message fail (or, for sessions,
        // refuse everyone), so refuse it at start-up rather than at the first mail.
        settings.check()?;
        let listener = TcpListener::bind(addr).await?;
        let budget = Budget::new(settings.limits.memory_budget);
        Ok(Self {
            listener,
            settings: Arc::new(settings),
            budget,
        })
    }

    /// The address actually bound (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What the memory budget holds and has held, for metrics and tests; stays valid after
    /// `run` returns.
    pub fn buffer_stats(&self) -> BufferStats {
        BufferStats {
            budget: self.budget.clone(),
        }
    }

    /// Serves until `shutdown` stops it, then stops accepting, lets open sessions finish the
    /// message in flight (idle ones are told `421` and closed), and returns once all are done.
    ///
    /// `deliver` is called once per message with the whole message; the client gets `250` only
    /// after it returns `Ok(())`.
    pub async fn run<F, Fut>(self, shutdown: Shutdown, deliver: F)
    where
        F: Fn(Delivery) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<(), DeliverError>> + Send + 'static,
    {
        let Self {
            listener,
            settings,
            budget,
        } = self;
        let limit = Arc::new(Semaphore::new(settings.limits.max_sessions));
        // Stopped once the listener no longer accepts; sessions watch it between commands.
        let (sessions_stopper, sessions_shutdown) = Shutdown::new();
        let mut sessions = JoinSet::new();

        loop {
            // Reap finished sessions so the set does not grow with every connection ever served.
            while sessions.try_join_next().is_some() {}

            let accepted = tokio::select! {
                () = shutdown.stopped() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning on accept.
                    tracing::warn!(%error, "listener: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                // Over the cap: say so at once rather than leave the client waiting in the
                // backlog. A fresh socket's empty send buffer takes the line as soon as the
                // runtime has seen it writable, so a client that never reads cannot hold up
                // accepting for more than the short limit.
                let refuse = async {
                    stream.writable().await?;
                    stream.try_write(TOO_MANY_SESSIONS.as_bytes())
                };
                let _ = tokio::time::timeout(REFUSAL_LIMIT, refuse).await;
                tracing::debug!(%peer, "listener: too many sessions; connection refused with 421");
                continue;
            };
            let settings = settings.clone();
            let budget = budget.clone();
            let stop = sessions_shutdown.clone();
            let deliver = deliver.clone();
            sessions.spawn(async move {
                session::serve(stream, Some(peer), &settings, &budget, stop, deliver).await;
                // Released only when the session is over, whatever way it ended.
                drop(permit);
            });
        }

        drop(listener);
        sessions_stopper.stop();
        while let Some(result) = sessions.join_next().await {
            if let Err(error) = result {
                // A panicking callback ends its session without a reply: the MTA retries.
                tracing::error!(%error, "listener: session task failed");
            }
        }
        tracing::info!("listener: stopped");
    }
}

/// The answer to a connection over [`ListenerLimits::max_sessions`].
const TOO_MANY_SESSIONS: &str = "421 4.7.0 Too many connections, try again later\r\n";

/// The longest the accept loop spends telling an extra connection `421`.
const REFUSAL_LIMIT: Duration = Duration::from_millis(200);

/// The pause after a failed `accept` (usually: out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Runs one LMTP/SMTP session over any byte stream until the client quits or goes away, or a
/// limit ends it: the same state machine the listener runs per connection, with a memory
/// budget of its own. For fuzzing and tests; fails only if `settings` are unusable.
pub async fn serve_stream<S, F, Fut>(stream: S, settings: &Settings, deliver: F) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = Result<(), DeliverError>>,
{
    settings.check()?;
    let budget = Budget::new(settings.limits.memory_budget);
    // Never stopped: the session ends with the stream.
    session::serve(stream, None, settings, &budget, Shutdown::never(), deliver).await;
    Ok(())
}
