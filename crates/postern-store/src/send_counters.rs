//! Counters per window of time: how much of a budget a bucket (a recipient, the instance) has
//! used in the current window. The caller names the buckets and chooses the limits; the store
//! only makes taking a unit atomic.
//!
//! Taking is one `INSERT … ON CONFLICT DO UPDATE … WHERE used < limit RETURNING`: the check and
//! the increment are one statement, so two transactions can never both take the last unit (on
//! PostgreSQL the second waits for the row and re-checks; SQLite has one writer).

use crate::tx::{execute, scalar_optional};
use crate::{StoreError, Tx};

impl Tx {
    /// Takes one unit of `bucket`'s budget of `limit` for the window starting at
    /// `window_start`. A bucket last used in another window starts again. Returns how many units
    /// the window has used now, this one included, or `None` when the budget is spent (nothing
    /// changes then). A `limit` of 0 or less is always spent.
    pub async fn take_send_unit(
        &mut self,
        bucket: &str,
        window_start: i64,
        limit: i64,
    ) -> Result<Option<i64>, StoreError> {
        if limit <= 0 {
            return Ok(None);
        }
        Ok(scalar_optional!(
            self,
            i64,
            "INSERT INTO send_counters (bucket, window_start, used) VALUES ($1, $2, 1)
             ON CONFLICT (bucket) DO UPDATE SET
                 used = CASE WHEN send_counters.window_start = excluded.window_start
                             THEN send_counters.used + 1 ELSE 1 END,
                 window_start = excluded.window_start
             WHERE send_counters.window_start <> excluded.window_start
                OR send_counters.used < $3
             RETURNING used",
            bucket,
            window_start,
            limit,
        )?)
    }

    /// Gives back a unit taken by [`Tx::take_send_unit`] in the same window (the mail it was
    /// for was not queued after all). Returns whether there was one to give back.
    pub async fn give_back_send_unit(
        &mut self,
        bucket: &str,
        window_start: i64,
    ) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE send_counters SET used = used - 1
             WHERE bucket = $1 AND window_start = $2 AND used > 0",
            bucket,
            window_start,
        )?;
        Ok(n > 0)
    }

    /// Units used by `bucket` in the window starting at `window_start` (0 for another window).
    pub async fn send_units_used(
        &mut self,
        bucket: &str,
        window_start: i64,
    ) -> Result<i64, StoreError> {
        Ok(scalar_optional!(
            self,
            i64,
            "SELECT used FROM send_counters WHERE bucket = $1 AND window_start = $2",
            bucket,
            window_start,
        )?
        .unwrap_or(0))
    }

    /// Deletes the counters of windows that started before `window_start`: they would start
    /// again anyway. Returns how many were deleted.
    pub async fn prune_send_counters(&mut self, window_start: i64) -> Result<u64, StoreError> {
        Ok(execute!(
            self,
            "DELETE FROM send_counters WHERE window_start < $1",
            window_start,
        )?)
    }
}
