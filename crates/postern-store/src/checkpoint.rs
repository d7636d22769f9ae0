//! SQLite WAL checkpoints in the background, off the commit path.
//!
//! By default SQLite checkpoints inside the `COMMIT` that takes the WAL past 1 000 pages: that
//! one transaction copies up to 4 MB into the database file and syncs it before it returns.
//! postern holds its single in-process writer slot until commit returns, so every other writer
//! (intake, processing, the web UI) waited for that copy too: the tail of the IMAP IDLE latency
//! and stalls in a drain of large messages. Here commits only append to the WAL; a task copies
//! it into the database shortly after a burst of commits, with `PASSIVE` checkpoints that never
//! block readers or writers.
//!
//! SQLite's own automatic checkpoint stays as a fallback at a much larger WAL
//! ([`FALLBACK_AUTOCHECKPOINT_PAGES`]), for processes that write without this task running
//! long enough (`postern receive` exits right after its commit) and in case the task falls
//! behind.

use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// SQLite's own checkpoint threshold, in pages (4 KiB each: 64 MiB of WAL). Only reached when
/// the background task is not keeping up.
pub(crate) const FALLBACK_AUTOCHECKPOINT_PAGES: &str = "16384";

/// How long the task waits after a commit before checkpointing, so that a burst of commits
/// (a drain) is copied in a few large checkpoints rather than one per commit.
const GATHER: Duration = Duration::from_millis(100);

/// The background checkpoint task of one SQLite pool. Commits wake it through the handle of
/// [`Checkpoints::waker`]; dropping the last clone of the [`Store`](crate::Store) that owns it
/// stops the task.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Checkpoints {
    /// Starts the task on the current tokio runtime.
    pub(crate) fn start(pool: SqlitePool) -> Checkpoints {
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(pool, wake.clone()));
        Checkpoints { wake, task }
    }

    /// A handle that transactions use to say they committed.
    pub(crate) fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(pool: SqlitePool, wake: Arc<Notify>) {
    loop {
        // A commit during the wait or the checkpoint leaves a permit, so it is never missed.
        wake.notified().await;
        tokio::time::sleep(GATHER).await;
        if pool.is_closed() {
            return;
        }
        let result: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await;
        match result {
            // (busy, frames in the WAL, frames copied): frames left over are copied next time.
            Ok((_, wal_frames, copied)) => {
                tracing::trace!(wal_frames, copied, "WAL checkpoint");
            }
            Err(error) => {
                // The next commit tries again; SQLite's fallback bounds the WAL meanwhile.
                tracing::debug!(%error, "WAL checkpoint failed");
            }
        }
    }
}
