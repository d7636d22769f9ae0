//! Mail sources: the ways a message enters postern before anything else looks at it.
//!
//! The built-in [`listener`] is an LMTP and SMTP server that an MTA (Postfix, Exim, a test)
//! hands mail to; the watchers ([`imap`], [`graph`]) fetch from a mailbox. This crate owns the
//! wire protocols and their limits, reconnection after [`RECONNECT_BACKOFF`], and graceful
//! shutdown, and reports each source's state in a [`status::SourceStatus`]. It does not own
//! storage: messages go to the caller through a callback (listener) or the [`intake::Intake`]
//! trait (watchers), so this crate depends on no other postern crate but the pure leaves
//! `postern-mail` (the Message-ID its log lines name) and `postern-vocab` (secrets, back-off).
//! [`oauth`] is the access token source
//! shared by Graph and IMAP XOAUTH2 / OAUTHBEARER (Azure AD client credentials, a refresh token,
//! or a Google service account), [`http`] the HTTP client under it (rustls with
//! ring), and [`postern_vocab::Secret`] the redacting wrapper every password, client secret
//! and token travels in.
//!
//! The one rule it keeps for the rest of the system (nothing is acknowledged to a source before
//! it is durable, because an acknowledged message is the source's to forget): a watcher flags
//! or deletes a message only after
//! [`intake::Intake::take`] returned `Ok` for it, and the listener **never acknowledges before
//! the callback returns Ok**. A `250` after DATA is sent only once the callback has returned
//! `Ok(())`; a temporary failure answers `451` so the sending MTA keeps the message and retries, a permanent one `550`
//! so it bounces, and a disconnect, timeout or panic before that point answers nothing, which the
//! MTA also treats as "not delivered".
#![deny(missing_docs)]

use std::time::Duration;

use postern_vocab::Backoff;

pub mod graph;
pub mod headers;
pub mod http;
pub mod imap;
pub mod intake;
pub mod listener;
pub mod oauth;
pub mod status;

/// How a watcher waits before reconnecting, and before offering a batch its intake refused
/// again: 1 s doubling to 60 s, ±20 %, so several instances that lost the same server do not
/// come back in lockstep.
pub const RECONNECT_BACKOFF: Backoff =
    Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
