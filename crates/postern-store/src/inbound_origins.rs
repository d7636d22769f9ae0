//! Which processed message created which issue, merge request or comment (migration 0017), so
//! a page can show the original mail beside the Markdown stored from it.

use crate::notes::Noteable;
use crate::tx::{execute, fetch_all};
use crate::{StoreError, Tx};

/// A message that created an item (`note_id` `None`: the issue or merge request itself) or a
/// comment on it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboundOrigin {
    /// The inbound message.
    pub inbound_id: i64,
    /// The issue or merge request.
    #[sqlx(flatten)]
    pub noteable: Noteable,
    /// The comment it became, if it became one.
    pub note_id: Option<i64>,
}

impl Tx {
    /// Records that message `inbound_id` created `noteable` (or comment `note_id` on it).
    /// Processing a message again records nothing new (the first origin stays).
    pub async fn record_inbound_origin(
        &mut self,
        origin: &InboundOrigin,
    ) -> Result<(), StoreError> {
        execute!(
            self,
            "INSERT INTO inbound_origins (inbound_id, noteable_type, noteable_id, note_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            origin.inbound_id,
            origin.noteable.type_str(),
            origin.noteable.id(),
            origin.note_id
        )?;
        Ok(())
    }

    /// The messages that created `noteable` and its comments, oldest first.
    pub async fn inbound_origins_of(
        &mut self,
        noteable: Noteable,
    ) -> Result<Vec<InboundOrigin>, StoreError> {
        Ok(fetch_all!(
            self,
            InboundOrigin,
            "SELECT inbound_id, noteable_type, noteable_id, note_id FROM inbound_origins
             WHERE noteable_type = $1 AND noteable_id = $2 ORDER BY inbound_id",
            noteable.type_str(),
            noteable.id()
        )?)
    }

    /// What message `inbound_id` created, if it created anything.
    pub async fn inbound_origin(
        &mut self,
        inbound_id: i64,
    ) -> Result<Option<InboundOrigin>, StoreError> {
        Ok(fetch_all!(
            self,
            InboundOrigin,
            "SELECT inbound_id, noteable_type, noteable_id, note_id FROM inbound_origins
             WHERE inbound_id = $1",
            inbound_id
        )?
        .into_iter()
        .next())
    }
}
