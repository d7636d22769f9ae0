//! The counts behind `/metrics`: rows per state of the inbound messages and the outbox.

use crate::tx::fetch_all;
use crate::{StoreError, Tx};

/// How many rows are in each state (`/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StateCount {
    /// The state as stored (`processed`, `queued`, …).
    pub state: String,
    /// Rows in it.
    pub count: i64,
}

impl Tx {
    /// Inbound messages per state.
    pub async fn count_inbound_by_state(&mut self) -> Result<Vec<StateCount>, StoreError> {
        Ok(fetch_all!(
            self,
            StateCount,
            "SELECT state, COUNT(*) AS count FROM inbound_messages GROUP BY state ORDER BY state"
        )?)
    }

    /// Outbox entries per state.
    pub async fn count_outbox_by_state(&mut self) -> Result<Vec<StateCount>, StoreError> {
        Ok(fetch_all!(
            self,
            StateCount,
            "SELECT state, COUNT(*) AS count FROM outbox GROUP BY state ORDER BY state"
        )?)
    }
}
