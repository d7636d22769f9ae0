//! The boundary between a mailbox watcher and the store: what a source hands over, and the one
//! promise it gets back.
//!
//! A watcher (IMAP, Microsoft Graph) fetches messages without changing them on the server
//! (`BODY.PEEK[]`, a plain GET), hands a batch to [`Intake::take`], and only when that returns
//! `Ok` acknowledges them there (`\Seen` / `\Deleted`, mark read / delete). `Ok` means every
//! message of the batch is durable — newly stored or already stored before — so acknowledging
//! can never lose one. The caller of this crate implements [`Intake`] over its store; this crate
//! knows no database.

use std::collections::HashSet;
use std::future::Future;

/// The default largest message a mailbox watcher downloads (`max_message_size` of the IMAP
/// and Graph settings); larger ones are handed on as their header block, marked oversized.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 << 20;

/// The most bytes of an oversized message's header block handed on (the same cap as for a
/// piped message): enough for the reject notice, whatever the server holds.
pub const MAX_HEADER_BLOCK: usize = 256 << 10;

/// One message fetched from a source and not yet acknowledged there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The message exactly as the server returned it — or, when [`Fetched::oversized`] is set,
    /// only its header block (up to and including the blank line that ends it, at most
    /// [`MAX_HEADER_BLOCK`] bytes). Shared: a batch offered again after a failed intake is not
    /// copied.
    pub raw: bytes::Bytes,
    /// Set when the message is larger than the source's `max_message_size`: its size as the
    /// server declares it (IMAP `RFC822.SIZE`, Graph's `Content-Length`, or at least the bytes
    /// seen when the server declares none). The message was not downloaded; it is to be refused
    /// as too large, and is acknowledged on the server like any other once taken in.
    pub oversized: Option<u64>,
    /// The source's identity of this message, unique across every source and mailbox of one
    /// store: `imap:<user>@<host>/<folder>:<uidvalidity>:<uid>` or `graph:<user>/<folder>:<id>`.
    /// Storing the same identity twice is a no-op, which is what makes re-fetching after a crash
    /// safe.
    pub identity: String,
    /// For sources with ordered positions (IMAP UIDs): the position this message has, so the
    /// store can remember how far this source has been taken in.
    pub cursor: Option<Cursor>,
}

/// How far a source with ordered positions has been taken in: the highest UID seen under one
/// UIDVALIDITY of one folder. A catch-up scan fetches everything above it, `\Seen` or not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// The folder: `<user>@<host>/<folder>`.
    pub source: String,
    /// UIDVALIDITY: positions under another value mean nothing.
    pub validity: u64,
    /// The UID.
    pub position: u64,
}

/// Why a batch was not taken in. The source must not acknowledge anything of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// The store is unavailable or busy: keep the messages on the server and try again later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Durable storage of fetched messages, implemented by the caller over its store.
pub trait Intake: Send + Sync + 'static {
    /// Stores every message of `batch`, all in one transaction, together with the highest
    /// cursor of each source in it. `Ok` only once all of them are durable; messages whose
    /// identity is already stored count as durable and are not stored again.
    fn take(&self, batch: Vec<Fetched>) -> impl Future<Output = Result<(), IntakeError>> + Send;

    /// The highest position taken in for `source` under `validity`, if any.
    fn cursor(
        &self,
        source: &str,
        validity: u64,
    ) -> impl Future<Output = Result<Option<u64>, IntakeError>> + Send;

    /// Which of `identities` are already stored (so a scan can acknowledge them without
    /// fetching their bodies again).
    fn known(
        &self,
        identities: &[String],
    ) -> impl Future<Output = Result<HashSet<String>, IntakeError>> + Send;
}
