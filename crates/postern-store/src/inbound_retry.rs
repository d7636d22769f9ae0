//! Inbound messages as a work queue for a delivery worker that retries: which messages are due,
//! and a temporary failure recorded together with the time of the next attempt.
//!
//! Used by the processing queue (all mailboxes) and by GitLab companion mode's deliverer (one
//! mailbox), whose destination can be down for a while; a message that keeps failing waits its
//! own back-off, so it never blocks the ones behind it.

use crate::tx::{execute, fetch_all};
use crate::{InboundMeta, Mailbox, StoreError, Timestamp, Tx};

impl Tx {
    /// Messages of `mailbox` (or of every mailbox) that a worker may claim at `now`, oldest first: `received` ones,
    /// `failed_temporary` ones whose next attempt is due, and `processing` ones whose claim is
    /// older than `stale_before` (their worker died). Claim each with
    /// [`Tx::claim_inbound`] before working on it.
    pub async fn due_inbound(
        &mut self,
        mailbox: Option<Mailbox>,
        now: Timestamp,
        stale_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<InboundMeta>, StoreError> {
        Ok(fetch_all!(
            self,
            InboundMeta,
            "SELECT id, received_at, mailbox, source, message_id, size, source_identity,
                    content_identity, state, handler, error_kind, reason, outcome,
                    processed_at, attempts, claimed_at
             FROM inbound_messages
             WHERE ($1 IS NULL OR mailbox = $1)
               AND (state = 'received'
                    OR (state = 'failed_temporary'
                        AND (next_attempt_at IS NULL OR next_attempt_at <= $2))
                    OR (state = 'processing' AND claimed_at < $3))
             ORDER BY id ASC LIMIT $4",
            mailbox.map(Mailbox::as_str),
            now.0,
            stale_before.0,
            limit.max(0),
        )?)
    }

    /// Records a temporary failure of a claimed message: state `failed_temporary`, the error
    /// kind and reason, and no new attempt before `next_attempt_at`.
    /// [`StoreError::NotFound`] for an unknown id.
    pub async fn retry_inbound_at(
        &mut self,
        id: i64,
        error_kind: &str,
        reason: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        let n = execute!(
            self,
            "UPDATE inbound_messages
             SET state = 'failed_temporary', error_kind = $2, reason = $3, processed_at = $4,
                 next_attempt_at = $5
             WHERE id = $1",
            id,
            error_kind,
            reason,
            Timestamp::now().0,
            next_attempt_at.0,
        )?;
        if n == 0 {
            return Err(StoreError::NotFound("inbound message"));
        }
        Ok(())
    }
}
