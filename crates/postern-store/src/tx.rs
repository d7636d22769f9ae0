//! [`Tx`]: one transaction on either backend, and the macros that run one SQL text on both.
//!
//! Every query in this crate is written once, with `$1`-style placeholders (PostgreSQL's native
//! form, which SQLite also accepts as numbered parameters), and expanded by [`run!`] into a
//! `match` with one arm per backend. Each arm is compiled against its own driver, so the row
//! types are checked for both.

use sqlx::{Postgres, Sqlite, Transaction};

use crate::files::PendingFiles;
use crate::raw_files::RawFiles;
use crate::{Backend, StoreError};

pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// One open database transaction; every query method of the store lives here.
///
/// Made by [`Store::begin`](crate::Store::begin), held by whoever processes one unit of work
/// (one inbound message, one admin command), and ended by [`Tx::commit`]. Dropping it without
/// committing rolls everything back, which is what an error path wants: a message whose
/// processing failed half-way leaves no half-made issue behind.
pub struct Tx {
    pub(crate) inner: TxInner,
    /// SQLite: this transaction's place as the one writer (see `Store::begin`); released when
    /// the transaction ends.
    _writer: Option<tokio::sync::OwnedSemaphorePermit>,
    /// SQLite on a file: woken after a commit, so the WAL is checkpointed in the background.
    committed: Option<std::sync::Arc<tokio::sync::Notify>>,
    /// SQLite on a file: where large raw messages go, and the files this transaction wrote.
    pub(crate) raw_files: Option<std::sync::Arc<RawFiles>>,
    pub(crate) pending_files: PendingFiles,
    /// Seals and opens incoming-email tokens, if the store has the key.
    pub(crate) token_key: Option<std::sync::Arc<crate::TokenKey>>,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("backend", &self.backend())
            .finish()
    }
}

/// Runs `$body` with `$conn` bound to the transaction's connection, for whichever backend the
/// transaction uses. `$body` is expanded once per backend.
macro_rules! run {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::tx::TxInner::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::tx::TxInner::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

/// `query_as::<T>` → `Option<T>`.
macro_rules! fetch_optional {
    ($tx:expr, $ty:ty, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::tx::run!($tx, c => sqlx::query_as::<_, $ty>($sql)$(.bind($bind))*.fetch_optional(c).await)
    };
}

/// `query_as::<T>` → `T` (a missing row is an error).
macro_rules! fetch_one {
    ($tx:expr, $ty:ty, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::tx::run!($tx, c => sqlx::query_as::<_, $ty>($sql)$(.bind($bind))*.fetch_one(c).await)
    };
}

/// `query_as::<T>` → `Vec<T>`.
macro_rules! fetch_all {
    ($tx:expr, $ty:ty, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::tx::run!($tx, c => sqlx::query_as::<_, $ty>($sql)$(.bind($bind))*.fetch_all(c).await)
    };
}

/// `query_scalar::<T>` → `Option<T>`.
macro_rules! scalar_optional {
    ($tx:expr, $ty:ty, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::tx::run!($tx, c => sqlx::query_scalar::<_, $ty>($sql)$(.bind($bind))*.fetch_optional(c).await)
    };
}

/// `query_scalar::<T>` → `T`.
macro_rules! scalar_one {
    ($tx:expr, $ty:ty, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::tx::run!($tx, c => sqlx::query_scalar::<_, $ty>($sql)$(.bind($bind))*.fetch_one(c).await)
    };
}

/// `query(..).execute` → number of rows affected.
macro_rules! execute {
    ($tx:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        $crate::tx::run!($tx, c => sqlx::query($sql)$(.bind($bind))*.execute(c).await.map(|r| r.rows_affected()))
    };
}

pub(crate) use {execute, fetch_all, fetch_one, fetch_optional, run, scalar_one, scalar_optional};

impl Tx {
    pub(crate) fn new(inner: TxInner, raw_files: Option<std::sync::Arc<RawFiles>>) -> Tx {
        Tx {
            inner,
            _writer: None,
            committed: None,
            raw_files,
            pending_files: PendingFiles::default(),
            token_key: None,
        }
    }

    pub(crate) fn with_token_key(mut self, key: Option<std::sync::Arc<crate::TokenKey>>) -> Tx {
        self.token_key = key;
        self
    }

    pub(crate) fn announcing_commit(
        mut self,
        committed: Option<std::sync::Arc<tokio::sync::Notify>>,
    ) -> Tx {
        self.committed = committed;
        self
    }

    pub(crate) fn holding(mut self, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> Tx {
        self._writer = permit;
        self
    }

    /// Which backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        match &self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Makes every change of this transaction durable, all together.
    ///
    /// Only after this returns `Ok` may intake acknowledge a message to its source.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        // Files first: a committed row must never name a file a crash could still lose. If
        // this fails, the transaction rolls back and the files are removed.
        self.pending_files.sync().await?;
        let committed = match self.inner {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
        };
        // Even after an error it is not certain that no committed row names the files.
        self.pending_files.keep();
        committed?;
        if let Some(committed) = self.committed {
            committed.notify_one();
        }
        Ok(())
    }

    /// Discards every change of this transaction. Dropping the `Tx` does the same; this form
    /// waits for the database to confirm and reports errors.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(t) => t.rollback().await?,
            TxInner::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}
