//! Where a message received over DATA lives: in memory while it is small and the listener's
//! memory budget allows, otherwise in an unnamed temporary file in the spool directory.
//!
//! The budget counts the capacity of every in-memory body of every session, from the first
//! byte of DATA until the last [`MessageBody`] clone is dropped (so a body held by the
//! delivery callback still counts). A session that cannot reserve more spools instead of
//! waiting, so a crowd of slow senders can neither exhaust memory nor block each other.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::io::AsyncWriteExt as _;

/// The memory budget shared by every session of one listener, with what it has seen.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    spooled: AtomicU64,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            spooled: AtomicU64::new(0),
        })
    }

    /// Takes `amount` more bytes of the budget, or nothing if that would exceed it.
    fn try_take(&self, amount: usize) -> bool {
        let mut current = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = current.checked_add(amount).filter(|n| *n <= self.limit) else {
                return false;
            };
            match self.used.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::Relaxed);
                    return true;
                }
                Err(seen) => current = seen,
            }
        }
    }

    fn give_back(&self, amount: usize) {
        self.used.fetch_sub(amount, Ordering::AcqRel);
    }
}

/// What the listener's memory budget has seen; from [`super::Listener::buffer_stats`].
#[derive(Debug, Clone)]
pub struct BufferStats {
    pub(crate) budget: Arc<Budget>,
}

impl BufferStats {
    /// Bytes of message bodies held in memory right now, across all sessions.
    pub fn in_memory(&self) -> usize {
        self.budget.used.load(Ordering::Acquire)
    }

    /// The most bytes ever held in memory at once; never more than the budget.
    pub fn peak(&self) -> usize {
        self.budget.peak.load(Ordering::Acquire)
    }

    /// How many messages were spooled to a file so far.
    pub fn spooled_messages(&self) -> u64 {
        self.budget.spooled.load(Ordering::Acquire)
    }
}

/// A share of the budget, returned when dropped.
#[derive(Debug)]
struct Reservation {
    budget: Arc<Budget>,
    amount: usize,
}

impl Reservation {
    fn new(budget: Arc<Budget>) -> Reservation {
        Reservation { budget, amount: 0 }
    }

    /// Grows the share to `total` bytes; `false` (share unchanged) if the budget is used up.
    fn grow_to(&mut self, total: usize) -> bool {
        if total <= self.amount {
            return true;
        }
        if self.budget.try_take(total - self.amount) {
            self.amount = total;
            true
        } else {
            false
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.amount);
    }
}

/// One received message, dot-unstuffed, exactly as the client sent it after DATA (line
/// endings kept, without the terminating `.` line): either bytes in memory or a spooled file.
///
/// Cheap to clone; a spooled file lives (unnamed, so nothing is left behind even after a
/// crash) until the last clone is dropped.
#[derive(Clone)]
pub struct MessageBody {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Memory {
        bytes: Bytes,
        /// Keeps the bytes counted in the listener's budget while anyone holds them.
        _held: Option<Arc<Reservation>>,
    },
    Spooled {
        file: Arc<std::fs::File>,
        len: u64,
    },
}

impl fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Memory { bytes, .. } => write!(f, "MessageBody::Memory({} bytes)", bytes.len()),
            Repr::Spooled { len, .. } => write!(f, "MessageBody::Spooled({len} bytes)"),
        }
    }
}

impl From<Vec<u8>> for MessageBody {
    fn from(bytes: Vec<u8>) -> MessageBody {
        MessageBody::from_bytes(bytes)
    }
}

impl MessageBody {
    /// A body held in memory outside any listener budget (for tests and other callers).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> MessageBody {
        MessageBody {
            repr: Repr::Memory {
                bytes: bytes.into(),
                _held: None,
            },
        }
    }

    /// The size in bytes.
    pub fn len(&self) -> u64 {
        match &self.repr {
            Repr::Memory { bytes, .. } => bytes.len() as u64,
            Repr::Spooled { len, .. } => *len,
        }
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the body is in a spool file rather than in memory.
    pub fn is_spooled(&self) -> bool {
        matches!(self.repr, Repr::Spooled { .. })
    }

    /// The bytes, if the body is in memory.
    pub fn in_memory(&self) -> Option<&Bytes> {
        match &self.repr {
            Repr::Memory { bytes, .. } => Some(bytes),
            Repr::Spooled { .. } => None,
        }
    }

    /// The whole message as bytes: free for a body in memory, a read of the spool file
    /// (on the blocking pool) otherwise. The result is not counted in the listener's budget.
    pub async fn bytes(&self) -> io::Result<Bytes> {
        match &self.repr {
            Repr::Memory { bytes, .. } => Ok(bytes.clone()),
            Repr::Spooled { .. } => {
                let body = self.clone();
                tokio::task::spawn_blocking(move || body.read_all_blocking())
                    .await
                    .map_err(io::Error::other)?
            }
        }
    }

    /// At most the first `max` bytes (enough for the header block, for logs).
    pub async fn head(&self, max: usize) -> io::Result<Bytes> {
        match &self.repr {
            Repr::Memory { bytes, .. } => Ok(bytes.slice(..bytes.len().min(max))),
            Repr::Spooled { .. } => {
                let body = self.clone();
                tokio::task::spawn_blocking(move || {
                    let mut head = Vec::new();
                    body.reader().take(max as u64).read_to_end(&mut head)?;
                    Ok(Bytes::from(head))
                })
                .await
                .map_err(io::Error::other)?
            }
        }
    }

    /// A blocking reader over the whole body from its start (for use on a blocking thread).
    pub fn reader(&self) -> BodyReader {
        BodyReader {
            body: self.clone(),
            position: 0,
        }
    }

    fn read_all_blocking(&self) -> io::Result<Bytes> {
        let capacity = usize::try_from(self.len()).unwrap_or(usize::MAX);
        let mut all = Vec::with_capacity(capacity);
        self.reader().read_to_end(&mut all)?;
        Ok(Bytes::from(all))
    }
}

/// Reads a [`MessageBody`] from the start; see [`MessageBody::reader`].
#[derive(Debug)]
pub struct BodyReader {
    body: MessageBody,
    position: u64,
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let len = self.body.len();
        if self.position >= len || out.is_empty() {
            return Ok(0);
        }
        let left = usize::try_from(len - self.position).unwrap_or(usize::MAX);
        let want = out.len().min(left);
        let read = match &self.body.repr {
            Repr::Memory { bytes, .. } => {
                let start = usize::try_from(self.position).unwrap_or(usize::MAX);
                out[..want].copy_from_slice(&bytes[start..start + want]);
                want
            }
            // Positioned reads: clones share the file, so no shared cursor may be used.
            Repr::Spooled { file, .. } => file.read_at(&mut out[..want], self.position)?,
        };
        self.position += read as u64;
        Ok(read)
    }
}

/// Why the bytes of a message were thrown away while it was being received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discarded {
    /// Over the listener's message size limit.
    TooLarge,
    /// The spool file could not be created or written (disk full, directory gone).
    SpoolFailed,
}

/// Collects one message's bytes as they are decoded.
pub(crate) struct BodySink<'a> {
    budget: &'a Arc<Budget>,
    spool: &'a Path,
    /// Per-message in-memory threshold.
    threshold: usize,
    max_size: u64,
    received: u64,
    state: SinkState,
}

enum SinkState {
    Memory {
        buf: Vec<u8>,
        reservation: Reservation,
    },
    File(tokio::fs::File),
    Discard(Discarded),
}

impl<'a> BodySink<'a> {
    pub(crate) fn new(
        budget: &'a Arc<Budget>,
        spool: &'a Path,
        threshold: usize,
        max_size: u64,
    ) -> BodySink<'a> {
        BodySink {
            budget,
            spool,
            threshold,
            max_size,
            received: 0,
            state: SinkState::Memory {
                buf: Vec::new(),
                reservation: Reservation::new(budget.clone()),
            },
        }
    }

    /// Whether bytes are still kept (the message is neither too large nor lost).
    pub(crate) fn discarded(&self) -> Option<Discarded> {
        match self.state {
            SinkState::Discard(why) => Some(why),
            _ => None,
        }
    }

    /// Appends decoded bytes. Never fails: a problem turns the sink into a discarding one,
    /// reported at the end, so the session keeps reading up to the end of DATA.
    pub(crate) async fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.discarded().is_some() {
            return;
        }
        self.received = self.received.saturating_add(bytes.len() as u64);
        if self.received > self.max_size {
            // Dropping the buffer or file frees it now, not after the client is done sending.
            self.state = SinkState::Discard(Discarded::TooLarge);
            return;
        }
        if let SinkState::Memory { buf, reservation } = &mut self.state {
            let needed = buf.len() + bytes.len();
            if needed <= buf.capacity() {
                buf.extend_from_slice(bytes);
                return;
            }
            if needed <= self.threshold {
                let capacity = needed
                    .max(buf.capacity().saturating_mul(2))
                    .min(self.threshold);
                if reservation.grow_to(capacity) {
                    buf.reserve_exact(capacity - buf.len());
                    buf.extend_from_slice(bytes);
                    return;
                }
            }
            // Over the per-message threshold, or the budget is used up: spool.
            let held = std::mem::take(buf);
            self.state = match self.spill(&held).await {
                Ok(file) => {
                    self.budget.spooled.fetch_add(1, Ordering::Relaxed);
                    SinkState::File(file)
                }
                Err(error) => {
                    tracing::warn!(%error, "listener: cannot spool a message to disk");
                    SinkState::Discard(Discarded::SpoolFailed)
                }
            };
            // `held` and the old reservation are gone here: the budget is given back.
        }
        if let SinkState::File(file) = &mut self.state
            && let Err(error) = file.write_all(bytes).await
        {
            tracing::warn!(%error, "listener: cannot write a spooled message");
            self.state = SinkState::Discard(Discarded::SpoolFailed);
        }
    }

    async fn spill(&self, held: &[u8]) -> io::Result<tokio::fs::File> {
        let dir = self.spool.to_path_buf();
        let file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(dir))
            .await
            .map_err(io::Error::other)??;
        let mut file = tokio::fs::File::from_std(file);
        file.write_all(held).await?;
        Ok(file)
    }

    /// The message, or why it was thrown away.
    pub(crate) async fn finish(self) -> Result<MessageBody, Discarded> {
        match self.state {
            SinkState::Discard(why) => Err(why),
            SinkState::Memory { buf, reservation } => Ok(MessageBody {
                repr: Repr::Memory {
                    bytes: Bytes::from(buf),
                    _held: Some(Arc::new(reservation)),
                },
            }),
            SinkState::File(mut file) => {
                let synced = async {
                    file.flush().await?;
                    Ok::<_, io::Error>(file.into_std().await)
                }
                .await;
                match synced {
                    Ok(file) => Ok(MessageBody {
                        repr: Repr::Spooled {
                            file: Arc::new(file),
                            len: self.received,
                        },
                    }),
                    Err(error) => {
                        tracing::warn!(%error, "listener: cannot finish a spooled message");
                        Err(Discarded::SpoolFailed)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_stays_in_memory_large_is_spooled_and_budget_is_returned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let budget = Budget::new(1000);
        let mut sink = BodySink::new(&budget, dir.path(), 100, 10_000);
        sink.write(&[b'a'; 60]).await;
        sink.write(&[b'b'; 30]).await;
        let body = sink.finish().await.expect("kept");
        assert!(!body.is_spooled());
        assert!(budget.used.load(Ordering::Acquire) >= 90);
        drop(body);
        assert_eq!(budget.used.load(Ordering::Acquire), 0);

        let mut sink = BodySink::new(&budget, dir.path(), 100, 10_000);
        for _ in 0..50 {
            sink.write(&[b'c'; 50]).await;
        }
        let body = sink.finish().await.expect("kept");
        assert!(body.is_spooled());
        assert_eq!(body.len(), 2500);
        assert_eq!(body.bytes().await.expect("read"), vec![b'c'; 2500]);
        assert_eq!(&body.head(10).await.expect("head")[..], &[b'c'; 10]);
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
        assert!(budget.peak.load(Ordering::Acquire) <= 100);
    }

    #[tokio::test]
    async fn over_the_size_limit_is_discarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let budget = Budget::new(1000);
        let mut sink = BodySink::new(&budget, dir.path(), 100, 150);
        sink.write(&[b'a'; 100]).await;
        sink.write(&[b'a'; 100]).await;
        assert_eq!(sink.discarded(), Some(Discarded::TooLarge));
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
        assert!(matches!(sink.finish().await, Err(Discarded::TooLarge)));
    }

    #[tokio::test]
    async fn a_missing_spool_directory_is_a_spool_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("gone");
        let budget = Budget::new(1000);
        let mut sink = BodySink::new(&budget, &gone, 10, 10_000);
        sink.write(&[b'a'; 50]).await;
        assert!(matches!(sink.finish().await, Err(Discarded::SpoolFailed)));
    }
}
