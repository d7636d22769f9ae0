//! What each source is doing right now, for `/health`, `/ready`, `/metrics` and the mail desk.
//!
//! Each watcher owns one [`SourceStatus`] (behind an `Arc`) and updates it as it connects,
//! fails and takes messages in; readers take a [`StatusSnapshot`]. The last error is stored as
//! text that the watcher has already stripped of secrets.

use std::sync::Mutex;
use std::time::SystemTime;

/// The connection state of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Not yet connected (first attempt in progress).
    Starting,
    /// Connected and taking in mail, or waiting for it without IDLE (polling).
    Connected,
    /// Connected, caught up, and waiting in IMAP IDLE for the server to announce new mail:
    /// mail that arrives now wakes the watcher at once.
    Idle,
    /// The last attempt failed; waiting to try again.
    Reconnecting,
    /// Stopped on shutdown.
    Stopped,
}

impl SourceState {
    /// Whether the source has a working connection (waiting in IDLE or not).
    pub fn is_connected(self) -> bool {
        matches!(self, SourceState::Connected | SourceState::Idle)
    }
}

/// A copy of a source's status at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusSnapshot {
    /// `incoming_email` or `service_desk_email`.
    pub name: String,
    /// `imap`, `microsoft_graph` or `lmtp`.
    pub kind: String,
    /// Where it reads from, without secrets (`user@host:993/inbox`).
    pub location: String,
    /// Connection state.
    pub state: SourceState,
    /// The last error, if the source is not connected.
    pub last_error: Option<String>,
    /// When the last message was taken in.
    pub last_message_at: Option<SystemTime>,
    /// Messages taken in since start.
    pub messages_taken: u64,
    /// Messages waiting on the server that are not yet taken in, as last counted.
    pub backlog: Option<u64>,
    /// Reconnections since start.
    pub reconnects: u64,
    /// When the access token expires (Microsoft Graph, XOAUTH2).
    pub token_expires_at: Option<SystemTime>,
}

/// The live status of one source.
#[derive(Debug)]
pub struct SourceStatus {
    inner: Mutex<StatusSnapshot>,
}

impl SourceStatus {
    /// A source that has not connected yet.
    pub fn new(name: &str, kind: &str, location: &str) -> SourceStatus {
        SourceStatus {
            inner: Mutex::new(StatusSnapshot {
                name: name.to_owned(),
                kind: kind.to_owned(),
                location: location.to_owned(),
                state: SourceState::Starting,
                last_error: None,
                last_message_at: None,
                messages_taken: 0,
                backlog: None,
                reconnects: 0,
                token_expires_at: None,
            }),
        }
    }

    /// The status now.
    pub fn snapshot(&self) -> StatusSnapshot {
        self.update(|status| status.clone())
    }

    /// Connected; clears the last error.
    pub fn connected(&self) {
        self.update(|status| {
            status.state = SourceState::Connected;
            status.last_error = None;
        });
    }

    /// Waiting in IDLE; [`SourceStatus::connected`] again when it ends.
    pub fn idle(&self) {
        self.update(|status| status.state = SourceState::Idle);
    }

    /// A failure; the source will reconnect. `error` must not contain secrets.
    pub fn failed(&self, error: &str) {
        self.update(|status| {
            if status.state.is_connected() {
                status.reconnects += 1;
            }
            status.state = SourceState::Reconnecting;
            status.last_error = Some(error.to_owned());
        });
    }

    /// `count` messages were taken in.
    pub fn taken(&self, count: u64) {
        self.update(|status| {
            status.messages_taken += count;
            status.last_message_at = Some(SystemTime::now());
        });
    }

    /// The number of messages waiting on the server.
    pub fn set_backlog(&self, backlog: u64) {
        self.update(|status| status.backlog = Some(backlog));
    }

    /// When the current access token expires.
    pub fn set_token_expiry(&self, at: SystemTime) {
        self.update(|status| status.token_expires_at = Some(at));
    }

    /// Stopped on shutdown.
    pub fn stopped(&self) {
        self.update(|status| status.state = SourceState::Stopped);
    }

    fn update<T>(&self, change: impl FnOnce(&mut StatusSnapshot) -> T) -> T {
        // A panic while holding the lock leaves plain data behind; keep using it.
        let mut guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_is_connected_and_a_failure_from_idle_counts_as_a_reconnect() {
        let status = SourceStatus::new("incoming_email", "imap", "u@host:993/inbox");
        assert!(!status.snapshot().state.is_connected());
        status.connected();
        status.idle();
        assert_eq!(status.snapshot().state, SourceState::Idle);
        assert!(status.snapshot().state.is_connected());
        status.connected();
        status.idle();
        status.failed("connection reset");
        let snapshot = status.snapshot();
        assert_eq!(snapshot.state, SourceState::Reconnecting);
        assert_eq!(snapshot.reconnects, 1);
        assert!(!snapshot.state.is_connected());
    }
}
