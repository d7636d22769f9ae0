//! Inbound messages as a work queue for a delivery worker that retries: which messages are due,
//! and a temporary failure recorded together with the time of the next attempt.
//!
//! Used by the processing queue (all mailboxes) and by GitLab companion mode's deliverer (one
//! mailbox), whose destination can be down for a while; a message that keeps failing waits its
//! own back-off, so it never blocks the ones behind it.

use postern_vocab::ErrorKind;

use crate::leases::claim_lapsed;
use crate::tx::{execute, fetch_all, fetch_optional};
use crate::{InboundMeta, Mailbox, StoreError, Timestamp, Tx};

impl Tx {
    /// Messages of `mailbox` (or of every mailbox) that a worker may claim at `now`, oldest first: `received` ones,
    /// `failed_temporary` ones whose next attempt is due, and `processing` ones whose claim has
    /// lapsed (their worker died or stalled; see [`crate::leases`]). Claim each with
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
            concat!(
                "SELECT id, received_at, mailbox, source, message_id, size, source_identity,
                        content_identity, state, handler, error_kind, reason, outcome,
                        processed_at, attempts, claimed_at, failure_streak, declared_size
                 FROM inbound_messages
                 WHERE ($1 IS NULL OR mailbox = $1)
                   AND (state = 'received'
                        OR (state = 'failed_temporary'
                            AND (next_attempt_at IS NULL OR next_attempt_at <= $2))
                        OR (state = 'processing' AND ",
                claim_lapsed!("inbound_messages", "$3", "$2"),
                "))
                 ORDER BY id ASC LIMIT $4"
            ),
            mailbox.map(Mailbox::as_str),
            now.0,
            stale_before.0,
            limit.max(0),
        )?)
    }

    /// Records a temporary failure of a claimed message: state `failed_temporary`, the error
    /// kind and reason, and no new attempt before `next_attempt_at`. Returns the failure streak
    /// (see [`Tx::fail_inbound_temporarily`]). [`StoreError::NotFound`] for an unknown id.
    pub async fn retry_inbound_at(
        &mut self,
        id: i64,
        error_kind: ErrorKind,
        reason: &str,
        next_attempt_at: Timestamp,
    ) -> Result<i64, StoreError> {
        self.fail_inbound_temporarily(id, error_kind, reason, |_| next_attempt_at)
            .await
    }

    /// Records a temporary failure of a claimed message, with the next attempt chosen from the
    /// failure streak: how many attempts in a row have now failed with this same reason (a
    /// different reason starts again at 1). Returns the streak, which the caller compares with
    /// its quarantine limit. [`StoreError::NotFound`] for an unknown id.
    pub async fn fail_inbound_temporarily(
        &mut self,
        id: i64,
        error_kind: ErrorKind,
        reason: &str,
        next_attempt_at: impl FnOnce(i64) -> Timestamp,
    ) -> Result<i64, StoreError> {
        let reason = crate::without_nul(reason);
        let (previous_reason, previous_streak) = fetch_optional!(
            self,
            (Option<String>, i64),
            "SELECT reason, failure_streak FROM inbound_messages WHERE id = $1",
            id,
        )?
        .ok_or(StoreError::NotFound("inbound message"))?;
        let streak = if previous_reason.as_deref() == Some(&*reason) {
            previous_streak.saturating_add(1)
        } else {
            1
        };
        execute!(
            self,
            "UPDATE inbound_messages
             SET state = 'failed_temporary', error_kind = $2, reason = $3, processed_at = $4,
                 next_attempt_at = $5, failure_streak = $6
             WHERE id = $1",
            id,
            error_kind.as_str(),
            &*reason,
            Timestamp::now().0,
            next_attempt_at(streak).0,
            streak,
        )?;
        Ok(streak)
    }

    /// Sets a stored message aside: state `quarantined` with `error_kind` and `reason`. Workers
    /// never pick it up again; [`Tx::release_quarantined`] puts it back in the queue.
    /// [`StoreError::NotFound`] for an unknown id.
    pub async fn quarantine_inbound(
        &mut self,
        id: i64,
        error_kind: ErrorKind,
        reason: &str,
    ) -> Result<(), StoreError> {
        let reason = crate::without_nul(reason);
        let n = execute!(
            self,
            "UPDATE inbound_messages
             SET state = 'quarantined', error_kind = $2, reason = $3, processed_at = $4,
                 next_attempt_at = NULL
             WHERE id = $1",
            id,
            error_kind.as_str(),
            &*reason,
            Timestamp::now().0,
        )?;
        if n == 0 {
            return Err(StoreError::NotFound("inbound message"));
        }
        Ok(())
    }

    /// Puts a quarantined message back in the queue (`received`, streak 0), for a person who
    /// asked to process it again. `false` if it is not quarantined.
    pub async fn release_quarantined(&mut self, id: i64) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE inbound_messages
             SET state = 'received', failure_streak = 0, next_attempt_at = NULL
             WHERE id = $1 AND state = 'quarantined'",
            id,
        )?;
        Ok(n > 0)
    }
}
