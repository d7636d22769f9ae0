//! Signed-in browsers of the web UI.
//!
//! A session is found by the hex SHA-256 of the id in its cookie, which the caller computes:
//! the store never sees the id itself, so a copy of the database signs nobody in.

use crate::tx::{execute, fetch_optional};
use crate::{StoreError, Timestamp, Tx};

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebSession {
    /// Hex SHA-256 of the id in the cookie.
    pub id_hash: String,
    /// Who is signed in.
    pub user_id: i64,
    /// The token every form of this session must send back.
    pub csrf_token: String,
    /// When the session began.
    pub created_at: Timestamp,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
}

impl Tx {
    /// Records a new session.
    pub async fn create_session(&mut self, session: &WebSession) -> Result<(), StoreError> {
        execute!(
            self,
            "INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &session.id_hash,
            session.user_id,
            &session.csrf_token,
            session.created_at.0,
            session.expires_at.0,
        )?;
        Ok(())
    }

    /// The session with this id hash, if it has not expired at `now`.
    pub async fn session(
        &mut self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<WebSession>, StoreError> {
        Ok(fetch_optional!(
            self,
            WebSession,
            "SELECT * FROM web_sessions WHERE id_hash = $1 AND expires_at > $2",
            id_hash,
            now.0
        )?)
    }

    /// Ends a session (logout). Returns whether it existed.
    pub async fn delete_session(&mut self, id_hash: &str) -> Result<bool, StoreError> {
        Ok(execute!(self, "DELETE FROM web_sessions WHERE id_hash = $1", id_hash)? > 0)
    }

    /// Ends every session of a user (password change, block). Returns how many ended.
    pub async fn delete_user_sessions(&mut self, user_id: i64) -> Result<u64, StoreError> {
        Ok(execute!(
            self,
            "DELETE FROM web_sessions WHERE user_id = $1",
            user_id
        )?)
    }

    /// Forgets sessions that expired before `now`. Returns how many.
    pub async fn delete_expired_sessions(&mut self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(execute!(
            self,
            "DELETE FROM web_sessions WHERE expires_at <= $1",
            now.0
        )?)
    }
}
