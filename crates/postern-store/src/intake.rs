//! Queries of the durable intake that the mailbox watchers and the processing worker use:
//! cursors of ordered sources, which source identities are stored, and the queue of messages
//! still to process.

use crate::tx::{execute, fetch_all, scalar_optional};
use crate::{InboundState, StoreError, Timestamp, Tx};

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

    /// Ids of messages waiting for processing, oldest first: `received`, `failed_temporary`
    /// last tried before `retry_before`, and `processing` claimed before `stale_before` (a
    /// processor that died holding the claim).
    pub async fn pending_inbound(
        &mut self,
        retry_before: Timestamp,
        stale_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = fetch_all!(
            self,
            (i64,),
            "SELECT id FROM inbound_messages
             WHERE state = 'received'
                OR (state = 'failed_temporary' AND (processed_at IS NULL OR processed_at < $1))
                OR (state = 'processing' AND claimed_at < $2)
             ORDER BY id LIMIT $3",
            retry_before.0,
            stale_before.0,
            limit.max(0)
        )?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Records a temporary failure of processing: the message stays queued, is tried again
    /// after the caller's retry delay, and the reason is visible meanwhile.
    pub async fn fail_inbound_temporarily(
        &mut self,
        id: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        execute!(
            self,
            "UPDATE inbound_messages
             SET state = $2, reason = $3, processed_at = $4, attempts = attempts + 1
             WHERE id = $1 AND state IN ('received', 'processing', 'failed_temporary')",
            id,
            InboundState::FailedTemporary.as_str(),
            reason,
            Timestamp::now().0
        )?;
        Ok(())
    }
}
