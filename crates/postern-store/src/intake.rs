//! Queries of the durable intake that the mailbox watchers and the processing worker use:
//! cursors of ordered sources and which source identities are stored (the queue of messages
//! still to process is `inbound_retry`).

use crate::tx::{execute, scalar_optional};
use crate::{StoreError, Tx};

impl Tx {
    /// The highest position taken in for `source` under `validity`.
    pub async fn intake_cursor(
        &mut self,
        source: &str,
        validity: i64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(scalar_optional!(
            self,
            i64,
            "SELECT position FROM intake_cursors WHERE source = $1 AND validity = $2",
            source,
            validity
        )?)
    }

    /// Moves the cursor of `source` under `validity` forward to `position` (never back).
    pub async fn advance_intake_cursor(
        &mut self,
        source: &str,
        validity: i64,
        position: i64,
    ) -> Result<(), StoreError> {
        execute!(
            self,
            "INSERT INTO intake_cursors (source, validity, position) VALUES ($1, $2, $3)
             ON CONFLICT (source, validity) DO UPDATE SET position =
                 CASE WHEN excluded.position > intake_cursors.position
                      THEN excluded.position ELSE intake_cursors.position END",
            source,
            validity,
            position
        )?;
        Ok(())
    }

    /// Whether a message with this source identity is stored.
    pub async fn source_identity_stored(&mut self, identity: &str) -> Result<bool, StoreError> {
        let id = scalar_optional!(
            self,
            i64,
            "SELECT id FROM inbound_messages WHERE source_identity = $1",
            identity
        )?;
        Ok(id.is_some())
    }
}
