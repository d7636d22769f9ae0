//! [`Store`]: choosing the backend from a URL, pooling connections, migrating, beginning
//! transactions.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use tokio::sync::Semaphore;

use crate::checkpoint::{Checkpoints, FALLBACK_AUTOCHECKPOINT_PAGES};
use crate::raw_files::RawFiles;
use crate::tx::{Tx, TxInner};
use crate::{StoreError, TokenKey};

/// The migrations, embedded at compile time. Two folders because the DDL differs (identity
/// columns, BLOB vs BYTEA); they must describe equivalent schemas, and every new migration is
/// added to both with the same version number.
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Embedded SQLite: one file (or memory).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Tuning for [`Store::connect_with`]. The defaults suit `postern serve`.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections the pool opens. Ignored for in-memory SQLite, which must use exactly
    /// one connection (every new connection would be a new, empty database).
    pub max_connections: u32,
    /// How long `begin` waits for a free connection (or for the server to accept one) before
    /// failing with a temporary error.
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a lock held by another connection or process before failing
    /// with a temporary "database is locked" error.
    pub sqlite_busy_timeout: Duration,
    /// The key that seals incoming-email tokens (see [`TokenKey`]). With it, new tokens are
    /// stored hashed and sealed, and tokens still stored in plain are sealed at start-up;
    /// without it, new tokens are stored in plain and nothing is sealed (tests of other crates;
    /// the binary always passes its key file). A store without the key cannot show a sealed
    /// token.
    pub token_key: Option<Arc<TokenKey>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(30),
            sqlite_busy_timeout: Duration::from_secs(10),
            token_key: None,
        }
    }
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The connection pool, for either backend.
///
/// Created once by the binary, cloned into every task (clones share the pool). Dropping the last
/// clone closes the connections; [`Store::close`] does it explicitly and waits.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// SQLite only: one writer at a time, queued in this process. SQLite allows a single writer
    /// anyway; without this queue, waiting writers poll SQLite's busy handler with sleeps, which
    /// gave second-long tail latencies under concurrency. Its permit lives in the [`Tx`].
    writers: Option<WriterQueue>,
    /// SQLite on a file: the task that checkpoints the WAL off the commit path.
    checkpoints: Option<Arc<Checkpoints>>,
    /// SQLite on a file: where large raw messages are kept (see `raw_files`).
    raw_files: Option<Arc<RawFiles>>,
    /// Seals and opens incoming-email tokens, when the store was given the key.
    token_key: Option<Arc<TokenKey>>,
}

/// The in-process queue of SQLite writers and how long one may wait in it.
#[derive(Debug, Clone)]
struct WriterQueue {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Store {
    /// Connects with [`StoreOptions::default`] and brings the schema up to date.
    ///
    /// `url` is `sqlite://PATH?mode=rwc` (file, created if missing), `sqlite::memory:`, or
    /// `postgres://…` / `postgresql://…`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    /// Connects with explicit options and brings the schema up to date.
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let store = if url.starts_with("sqlite:") {
            Store::connect_sqlite(url, options).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Store::connect_postgres(url, options).await?
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn connect_sqlite(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit that returned survives a power loss. Intake acknowledges a message
            // to its source right after commit, so NORMAL (which may lose the last commits in
            // WAL mode) could lose mail that the mailbox has already let go.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // 1 MiB of page cache per connection instead of SQLite's 2 MB: reading a large
            // message fills the cache of whichever pooled connection read it, and the operating
            // system caches the file anyway.
            .pragma("cache_size", "-1024")
            // Checkpoints run in the background (see `checkpoint`); this is only the fallback.
            .pragma("wal_autocheckpoint", FALLBACK_AUTOCHECKPOINT_PAGES)
            .busy_timeout(options.sqlite_busy_timeout);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let raw_files = if in_memory {
            None
        } else {
            Some(Arc::new(RawFiles::beside(connect.get_filename())?))
        };
        let mut pool = SqlitePoolOptions::new().acquire_timeout(options.acquire_timeout);
        pool = if in_memory {
            // One connection that is never closed: closing it would delete the database.
            pool.max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool.max_connections(options.max_connections.max(1))
        };
        let pool = pool.connect_with(connect).await?;
        // An in-memory database has no WAL to checkpoint.
        let checkpoints = (!in_memory).then(|| Arc::new(Checkpoints::start(pool.clone())));
        Ok(Store {
            pool: Pool::Sqlite(pool),
            writers: Some(WriterQueue {
                permits: Arc::new(Semaphore::new(1)),
                wait: options.sqlite_busy_timeout,
            }),
            checkpoints,
            raw_files,
            token_key: options.token_key.clone(),
        })
    }

    async fn connect_postgres(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        // A transaction left idle for longer than a lease lives belongs to a stalled process
        // (stopped, or cut off from the server): the server ends its session, so the rows it
        // holds locked, a message being processed among them, go to another instance within
        // the time a lease would (see `leases`). No transaction of postern waits on anything
        // but the database itself while open.
        let idle_limit = format!("{}s", crate::LeaseTimes::default().ttl.as_secs());
        let connect = PgConnectOptions::from_str(url)?
            .options([("idle_in_transaction_session_timeout", idle_limit.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Store {
            pool: Pool::Postgres(pool),
            writers: None,
            checkpoints: None,
            raw_files: None,
            token_key: options.token_key.clone(),
        })
    }

    /// Applies the migrations that have not run yet. Idempotent; [`Store::connect`] calls it.
    /// On PostgreSQL an advisory lock serialises concurrent callers (several instances
    /// starting at once).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => SQLITE_MIGRATOR.run(p).await?,
            Pool::Postgres(p) => POSTGRES_MIGRATOR.run(p).await?,
        }
        self.finish_migration_0010().await?;
        self.finish_migration_0012().await
    }

    /// What migration 0012 leaves to Rust: sealing the incoming-email tokens still stored in
    /// plain, in batches of their own transactions (an interrupted run is finished by the next
    /// start), and only with the key. Then checks that the key opens a sealed token, so a
    /// database restored without its key file fails at start, naming the file, rather than on
    /// the first address shown.
    async fn finish_migration_0012(&self) -> Result<(), StoreError> {
        const BATCH: i64 = 1000;
        if self.token_key.is_none() {
            return Ok(());
        }
        let mut after = 0;
        loop {
            let mut tx = self.begin().await?;
            let last = tx.seal_stored_incoming_tokens(after, BATCH).await?;
            tx.commit().await?;
            match last {
                Some(last) => after = last,
                None => break,
            }
        }
        if after > 0 {
            tracing::info!(up_to_row = after, "stored incoming-email tokens sealed");
        }
        let mut tx = self.begin_read_only().await?;
        tx.check_token_key().await?;
        tx.rollback().await
    }

    /// What migration 0010 leaves to Rust: hashing the reply keys still stored in plain (SQLite
    /// has no SHA-256 in SQL; one code path serves both backends), in batches of their own
    /// transactions, and logging the custom emails it took from duplicate projects. Finds
    /// nothing to do once done, so every start runs it.
    async fn finish_migration_0010(&self) -> Result<(), StoreError> {
        const BATCH: i64 = 1000;
        let mut after = 0;
        loop {
            let mut tx = self.begin().await?;
            let last = tx.hash_stored_reply_keys(after, BATCH).await?;
            tx.commit().await?;
            match last {
                Some(last) => after = last,
                None => break,
            }
        }
        if after > 0 {
            tracing::info!(
                up_to_row = after,
                "stored reply keys replaced by their hash"
            );
        }
        let mut tx = self.begin().await?;
        for (project_id, address) in tx.take_cleared_custom_emails().await? {
            tracing::warn!(
                project_id,
                custom_email = %address,
                "custom email removed from this project: another project has the same address \
                 (kept by the verified, else the oldest project); set a new one and verify it"
            );
        }
        tx.commit().await
    }

    /// Gives back the memory that idle SQLite connections keep: each pooled connection holds
    /// the pages it last read (up to its `cache_size`) for as long as it lives, although the
    /// operating system caches the file anyway. `serve` calls it once it has gone quiet after
    /// work; a connection in use is left alone. PostgreSQL keeps its caches in its own server.
    pub async fn release_idle_memory(&self) {
        let Pool::Sqlite(pool) = &self.pool else {
            return;
        };
        // Holding each idle connection until all are taken makes the next one a different one.
        let mut idle = Vec::new();
        for _ in 0..pool.size() {
            match pool.try_acquire() {
                Some(connection) => idle.push(connection),
                None => break,
            }
        }
        for connection in &mut idle {
            // Best effort: memory that stays is no error.
            let _ = sqlx::query("PRAGMA shrink_memory")
                .execute(&mut **connection)
                .await;
        }
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        match &self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Begins a read-write transaction.
    ///
    /// On SQLite this is `BEGIN IMMEDIATE`: the write lock is taken up front, so two writers
    /// queue on `busy_timeout` instead of one failing at its first write with an unretryable
    /// `SQLITE_BUSY` (a deferred transaction cannot upgrade past a newer commit in WAL mode).
    /// On PostgreSQL it is a plain `BEGIN` (READ COMMITTED); the queries that must serialise
    /// (iid allocation, dedupe inserts) do so through row locks and unique constraints.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let permit = match &self.writers {
            Some(queue) => Some(
                tokio::time::timeout(queue.wait, queue.permits.clone().acquire_owned())
                    .await
                    // Waited as long as SQLite itself would have: busy, try again later.
                    .map_err(|_| StoreError::from(sqlx::Error::PoolTimedOut))?
                    .map_err(|_| StoreError::from(sqlx::Error::PoolClosed))?,
            ),
            None => None,
        };
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
        };
        let committed = self.checkpoints.as_ref().map(|c| c.waker());
        Ok(Tx::new(inner, self.raw_files.clone())
            .with_token_key(self.token_key.clone())
            .holding(permit)
            .announcing_commit(committed))
    }

    /// Begins a transaction for reading only (admin listings, the web UI). It never waits for
    /// writers on SQLite (a deferred transaction reads a WAL snapshot); on PostgreSQL it is
    /// `BEGIN READ ONLY`, so writes through it fail.
    pub async fn begin_read_only(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin().await?),
            Pool::Postgres(p) => TxInner::Postgres(p.begin_with("BEGIN READ ONLY").await?),
        };
        Ok(Tx::new(inner, self.raw_files.clone()).with_token_key(self.token_key.clone()))
    }

    /// Checks that the database answers (`SELECT 1`), for health endpoints and `postern check`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query("SELECT 1").execute(p).await?;
            }
            Pool::Postgres(p) => {
                sqlx::query("SELECT 1").execute(p).await?;
            }
        }
        Ok(())
    }

    /// Closes every connection and waits for them to finish. Later `begin` calls fail with a
    /// temporary error.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}
