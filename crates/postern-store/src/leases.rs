//! Leases: how a claim committed before acting outside the store is tied to a live instance.
//!
//! GitLab companion mode's deliverer and the outbox's sender commit their claim on a row before
//! they act (an HTTP request to GitLab, a mail handed to the relay), because no transaction
//! may stay open over the network. Such a claim is taken under a [`Lease`]: a row of `leases`
//! that the claiming process renews every [`LeaseTimes::renew_every`] and that expires
//! [`LeaseTimes::ttl`] after the last renewal. Three rules make it safe with several instances
//! on one database:
//!
//! - **Takeover.** A claim whose lease has expired (its process was killed, stopped, or cut off
//!   from the database) may be claimed by anyone at once: a dead instance's work moves within
//!   seconds, not after a fixed stale time.
//! - **Fencing.** The lease id is the fencing token. An outcome is recorded only in a
//!   transaction that first finds the row still claimed under the same id
//!   ([`Tx::fence_inbound`], [`Tx::fence_outbox`]), and that check locks the row, so a
//!   process that resumes after its claim was taken over records nothing. Ids are never
//!   reused (AUTOINCREMENT, a sequence), so an old id never matches a new claim.
//! - **Acting only while fresh.** Before each side effect the process asks [`Lease::holds`]:
//!   the lease must be the current one and renewed recently enough, by this process's
//!   monotonic clock, that it cannot have expired in the database yet. A lease that could not
//!   be renewed in time, or was found expired, is replaced by a new one; claims under the old
//!   one are then left to whoever takes them over.
//!
//! Expiry times are whole seconds of the instances' clocks (as every timestamp of the store),
//! so the instances' clocks must agree to well within [`LeaseTimes::ttl`] (NTP does).
//!
//! Claims taken inside the transaction that does the work (processing into the tracker) need
//! no lease: a killed process's transaction rolls back, and on PostgreSQL a stalled one is
//! ended by the server (`idle_in_transaction_session_timeout`, see `store.rs`).

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::tx::{execute, scalar_one, scalar_optional};
use crate::{Store, StoreError, Timestamp, Tx};

/// How long a lease lives without renewal and how often it is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// A lease not renewed for this long has expired: its claims are free. Whole seconds.
    pub ttl: Duration,
    /// How often a live process renews it: a third of the lifetime survives two lost renewals.
    pub renew_every: Duration,
}

impl Default for LeaseTimes {
    fn default() -> Self {
        LeaseTimes {
            ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

impl LeaseTimes {
    fn ttl_seconds(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX).max(1)
    }

    /// How long after a renewal began this process may act on the lease: the lifetime less
    /// two seconds, for the whole-second timestamps of the database and a little clock skew.
    fn fresh_for(&self) -> Duration {
        self.ttl.saturating_sub(Duration::from_secs(2))
    }
}

/// The id of a lease: the fencing token stored with every claim taken under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseId(pub i64);

/// A lease this process holds, renewed in the background while any clone of it is alive.
///
/// Dropping the last clone ends the lease, so its claims are free at once.
#[derive(Debug, Clone)]
pub struct Lease {
    inner: Arc<Held>,
}

#[derive(Debug)]
struct Held {
    /// Who holds it, as shown in `leases.holder` (a component and the process id).
    holder: String,
    times: LeaseTimes,
    state: Mutex<Current>,
    /// Dropped with the last [`Lease`]: wakes the keeper, which ends the lease.
    _alive: tokio::sync::watch::Sender<()>,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    id: LeaseId,
    /// Until when this process may act on it (monotonic clock).
    fresh_until: Instant,
    /// Given up (its outcome could not be recorded, or it was found expired): replaced at the
    /// next renewal.
    given_up: bool,
}

impl Lease {
    /// Takes a new lease for `holder` and starts renewing it in the background (on the current
    /// tokio runtime) until the last clone is dropped.
    pub async fn acquire(
        store: &Store,
        holder: &str,
        times: LeaseTimes,
    ) -> Result<Lease, StoreError> {
        let started = Instant::now();
        let id = new_lease(store, holder, &times).await?;
        let (alive, mut ended) = tokio::sync::watch::channel(());
        let inner = Arc::new(Held {
            holder: holder.to_owned(),
            times,
            state: Mutex::new(Current {
                id,
                fresh_until: started + times.fresh_for(),
                given_up: false,
            }),
            _alive: alive,
        });
        let weak = Arc::downgrade(&inner);
        let store = store.clone();
        tokio::spawn(async move {
            let mut last = id;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(times.renew_every) => {}
                    _ = ended.changed() => break,
                }
                match keep(&store, &weak).await {
                    Some(id) => last = id,
                    None => break,
                }
            }
            // The process no longer needs it: free its claims now rather than at expiry.
            if let Err(error) = end_lease(&store, last).await {
                tracing::debug!(%error, lease = last.0, "could not end the lease; it expires by itself");
            }
        });
        Ok(Lease { inner })
    }

    /// The lease to claim under now: `None` while this process cannot be sure it holds one
    /// (the database could not be reached to renew it in time).
    pub fn current(&self) -> Option<LeaseId> {
        let current = self.lock();
        (!current.given_up && Instant::now() < current.fresh_until).then_some(current.id)
    }

    /// Whether claims taken under `id` may still be acted upon: `id` is the current lease and
    /// it cannot have expired yet.
    pub fn holds(&self, id: LeaseId) -> bool {
        self.current() == Some(id)
    }

    /// Gives up `id`: claims under it whose outcome could not be recorded become free for
    /// any instance (this one included) once it has ended, instead of staying claimed while
    /// this process lives. A new lease is taken at the next renewal.
    pub fn give_up(&self, id: LeaseId) {
        let mut current = self.lock();
        if current.id == id {
            current.given_up = true;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        lock(&self.inner)
    }
}

fn lock(held: &Held) -> std::sync::MutexGuard<'_, Current> {
    // A panic while holding this lock cannot leave `Current` half-written (plain copies).
    held.state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One renewal: renews the current lease, or replaces it when it was lost or given up.
/// Returns the lease now held, or `None` when every [`Lease`] is gone.
async fn keep(store: &Store, weak: &Weak<Held>) -> Option<LeaseId> {
    let held = weak.upgrade()?;
    let started = Instant::now();
    let before = *lock(&held);
    let renewed = if before.given_up {
        Ok(false)
    } else {
        renew_lease(store, before.id, &held.times).await
    };
    match renewed {
        Ok(true) => {
            let mut current = lock(&held);
            if current.id == before.id && !current.given_up {
                current.fresh_until = started + held.times.fresh_for();
            }
            Some(current.id)
        }
        Ok(false) => {
            if before.given_up {
                tracing::info!(lease = before.id.0, "lease given up; taking a new one");
            } else {
                tracing::warn!(
                    lease = before.id.0,
                    "lease expired before it could be renewed (the process was stalled or cut \
                     off from the database); its claims are left to other instances"
                );
            }
            let _ = end_lease(store, before.id).await;
            match new_lease(store, &held.holder, &held.times).await {
                Ok(id) => {
                    *lock(&held) = Current {
                        id,
                        fresh_until: started + held.times.fresh_for(),
                        given_up: false,
                    };
                    Some(id)
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot take a new lease; claiming nothing until it can");
                    lock(&held).given_up = true;
                    Some(before.id)
                }
            }
        }
        Err(error) => {
            // The lease stays ours until it expires; `current()` stops answering in time.
            tracing::warn!(%error, lease = before.id.0, "cannot renew the lease; trying again");
            Some(before.id)
        }
    }
}

async fn new_lease(store: &Store, holder: &str, times: &LeaseTimes) -> Result<LeaseId, StoreError> {
    let mut tx = store.begin().await?;
    let now = Timestamp::now();
    // Long-expired leases are only history: the claims that named them are free either way.
    tx.forget_leases_before(now.plus_seconds(-86_400)).await?;
    let id = tx.insert_lease(holder, now, times).await?;
    tx.commit().await?;
    Ok(id)
}

async fn renew_lease(store: &Store, id: LeaseId, times: &LeaseTimes) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let renewed = tx.renew_lease(id, Timestamp::now(), times).await?;
    tx.commit().await?;
    Ok(renewed)
}

async fn end_lease(store: &Store, id: LeaseId) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.end_lease(id, Timestamp::now()).await?;
    tx.commit().await
}

impl Tx {
    /// Records a new lease of `holder` from `now`.
    pub async fn insert_lease(
        &mut self,
        holder: &str,
        now: Timestamp,
        times: &LeaseTimes,
    ) -> Result<LeaseId, StoreError> {
        let id = scalar_one!(
            self,
            i64,
            "INSERT INTO leases (holder, acquired_at, expires_at) VALUES ($1, $2, $3) RETURNING id",
            holder,
            now.0,
            now.plus_seconds(times.ttl_seconds()).0,
        )?;
        Ok(LeaseId(id))
    }

    /// Extends lease `id` to `times.ttl` from `now`, unless it has expired already (then its
    /// claims may have been taken over, and it must not come back to life): `false`.
    pub async fn renew_lease(
        &mut self,
        id: LeaseId,
        now: Timestamp,
        times: &LeaseTimes,
    ) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE leases SET expires_at = $3 WHERE id = $1 AND expires_at > $2",
            id.0,
            now.0,
            now.plus_seconds(times.ttl_seconds()).0,
        )?;
        Ok(n > 0)
    }

    /// Ends lease `id` at `now`: its claims are free. The row stays a day, for the record.
    pub async fn end_lease(&mut self, id: LeaseId, now: Timestamp) -> Result<(), StoreError> {
        execute!(
            self,
            "UPDATE leases SET expires_at = $2 WHERE id = $1 AND expires_at > $2",
            id.0,
            now.0
        )?;
        Ok(())
    }

    /// Ends every lease: for a process that knows it is the only one using this database
    /// (`serve` on a SQLite file), so that what an earlier, killed run had claimed is taken
    /// over at once rather than after the lease's lifetime. Returns how many were live.
    pub async fn end_every_lease(&mut self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(execute!(
            self,
            "UPDATE leases SET expires_at = $1 WHERE expires_at > $1",
            now.0
        )?)
    }

    /// When lease `id` expires (or expired, or was ended), or `None` for an unknown or
    /// forgotten one.
    pub async fn lease_expiry(&mut self, id: LeaseId) -> Result<Option<Timestamp>, StoreError> {
        Ok(scalar_optional!(
            self,
            i64,
            "SELECT expires_at FROM leases WHERE id = $1",
            id.0
        )?
        .map(Timestamp))
    }

    /// Deletes leases that expired before `before`.
    pub async fn forget_leases_before(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        Ok(execute!(
            self,
            "DELETE FROM leases WHERE expires_at < $1",
            before.0
        )?)
    }
}

/// The SQL condition "the claim on this row of `$table` has lapsed": taken under a lease that
/// has expired (or is gone) at `$now`, or, for a claim taken without a lease (by a version of
/// postern before leases), older than `$stale_before`. One text for every claim query, so the
/// listing of due work and the claim itself never disagree.
macro_rules! claim_lapsed {
    ($table:literal, $stale_before:literal, $now:literal) => {
        concat!(
            "(CASE WHEN ",
            $table,
            ".claimed_by IS NULL THEN ",
            $table,
            ".claimed_at < ",
            $stale_before,
            " ELSE NOT EXISTS (SELECT 1 FROM leases WHERE leases.id = ",
            $table,
            ".claimed_by AND leases.expires_at > ",
            $now,
            ") END)"
        )
    };
}
pub(crate) use claim_lapsed;
