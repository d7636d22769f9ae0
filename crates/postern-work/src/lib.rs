//! The one loop that claims, runs, records, retries and pauses postern's queued work.
//!
//! Three kinds of work wait in the store: stored messages to process into the tracker
//! (`postern-core`'s processing queue), stored messages to deliver to GitLab
//! (`postern-gitlab`'s deliverer), and composed mail to send (`postern-outbox`'s sender). Each
//! is a [`Queue`]: it lists the items due for a key, and runs a job (one item, or a chunk
//! claimed together) that claims, does the work and records its outcome. The [`Worker`] drives
//! every queue the same way:
//!
//! - a round reads a page of due items per key and runs them as jobs, up to [`Pace::jobs`] at
//!   once and, when [`Pace::budget`] is set, under a budget of the items' weights;
//! - between rounds it waits for a wake-up or the poll interval, unless the round says there
//!   is more to do at once ([`Again`]);
//! - when the store fails (the page cannot be read, a job cannot record, or every job of a
//!   round failed before it could record) the whole queue backs off
//!   ([`Pace::store_backoff`]), so a database that is down is not asked in a tight loop;
//! - a key whose destination failed is paused ([`Pauses`]) while the others go on;
//! - [`Shutdown`] stops it between jobs: the jobs in hand are finished, none is started.
//!
//! When an item that failed is tried again, and when it is given up, is one [`RetryPolicy`],
//! with figures of each queue's own; the item records its next attempt in the store, so a
//! retry survives a restart.
//!
//! How an item is claimed stays the queue's: inside the transaction that does the work
//! (processing), or committed before a side effect outside the store (GitLab, the relay). This
//! crate knows no store: it depends on `postern-vocab` and tokio only.

#![deny(missing_docs)]

use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

pub mod pause;
pub mod retry;
mod worker;

pub use pause::Pauses;
pub use postern_vocab::{Backoff, Shutdown};
pub use retry::RetryPolicy;
pub use worker::{Again, Pace, Round, Worker};

/// A kind of queued work, as the [`Worker`] sees it.
pub trait Queue: Send + Sync + 'static {
    /// What work is listed and paused by (a mailbox); `()` for a queue with one key.
    type Key: Copy + Eq + Hash + Send + Sync + 'static;
    /// One due item, as listed.
    type Item: Send + 'static;
    /// What a job adds to its round's report.
    type Tally: Tally;
    /// A failure of the store.
    type Error: Send + 'static;

    /// The keys, in the order each round serves them.
    fn keys(&self) -> &[Self::Key];

    /// Up to `limit` items of `key` due now, in the order to run them.
    fn due(
        &self,
        key: Self::Key,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Self::Item>, Self::Error>> + Send;

    /// An item's share of [`Pace::budget`] (clamped to at least 1 and at most the budget).
    fn weight(&self, item: &Self::Item) -> u32 {
        let _ = item;
        1
    }

    /// Claims, runs and records one job: [`Pace::chunk`] items of `key` at most. An `Err` is a
    /// failure of the store that ends the round (the jobs in flight are finished first).
    fn run(
        &self,
        key: Self::Key,
        job: Vec<Self::Item>,
    ) -> impl Future<Output = Result<Ran<Self::Tally>, Self::Error>> + Send;

    /// The per-key pauses this queue's jobs set, if any.
    fn pauses(&self) -> Option<&Pauses<Self::Key>> {
        None
    }

    /// The whole queue backs off for `retry_in` because the store failed (to log it).
    fn store_failed(&self, failure: StoreFailure<'_, Self::Error>, retry_in: Duration);
}

/// How a job ended, as far as the loop cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran<T> {
    /// Its outcome is recorded (done, refused, or scheduled again): progress.
    Done(T),
    /// The store failed before the outcome could be recorded; the items stay due and the round
    /// goes on. A round whose every job ends so backs the queue off.
    Unrecorded,
}

/// Why the whole queue backs off.
#[derive(Debug)]
pub enum StoreFailure<'a, E> {
    /// Listing due work, or a job, failed with `E`.
    Round(&'a E),
    /// Every job of the round ended [`Ran::Unrecorded`].
    EveryJob {
        /// How many items.
        unrecorded: usize,
    },
}

/// What jobs add up to in a round (a queue's report: sent, retried, failed …).
pub trait Tally: Default + Send + 'static {
    /// Adds one job's tally.
    fn add(&mut self, job: Self);
}

impl Tally for () {
    fn add(&mut self, (): ()) {}
}

#[cfg(test)]
mod tests;
