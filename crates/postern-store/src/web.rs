//! What the web UI and the JSON API keep: password hashes, sign-in sessions, personal access
//! tokens, and the counts behind `/metrics`.
//!
//! The store never sees a secret as given. The caller hashes passwords (argon2, a PHC string)
//! and hashes session ids and tokens (hex SHA-256) before they reach these methods; lookups are
//! by that hash, so a copy of the database signs nobody in.

use crate::tx::{execute, fetch_all, fetch_one, fetch_optional, scalar_one, scalar_optional};
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

/// A personal access token for the JSON API (its hash only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ApiToken {
    /// Row id.
    pub id: i64,
    /// The owner; the API acts as this user.
    pub user_id: i64,
    /// The owner's label for it.
    pub name: String,
    /// Hex SHA-256 of the token.
    #[serde(skip)]
    pub token_hash: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was last accepted.
    pub last_used_at: Option<Timestamp>,
    /// When it stops being accepted; `None`: never.
    pub expires_at: Option<Timestamp>,
}

/// How many rows are in each state (`/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StateCount {
    /// The state as stored (`processed`, `queued`, …).
    pub state: String,
    /// Rows in it.
    pub count: i64,
}

impl Tx {
    /// Sets (or replaces) a user's password hash.
    pub async fn set_password_hash(&mut self, user_id: i64, hash: &str) -> Result<(), StoreError> {
        execute!(
            self,
            "INSERT INTO user_passwords (user_id, password_hash, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE
             SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
            user_id,
            hash,
            Timestamp::now().0,
        )?;
        Ok(())
    }

    /// A user's password hash, if they have a password.
    pub async fn password_hash(&mut self, user_id: i64) -> Result<Option<String>, StoreError> {
        Ok(scalar_optional!(
            self,
            String,
            "SELECT password_hash FROM user_passwords WHERE user_id = $1",
            user_id
        )?)
    }

    /// Whether an active administrator can sign in with a password (else the first run offers
    /// a setup link).
    pub async fn admin_password_exists(&mut self) -> Result<bool, StoreError> {
        let n = scalar_one!(
            self,
            i64,
            "SELECT COUNT(*) FROM user_passwords p JOIN users u ON u.id = p.user_id
             WHERE u.admin AND u.state = 'active'"
        )?;
        Ok(n > 0)
    }

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

    /// Records a personal access token by its hash.
    pub async fn create_api_token(
        &mut self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<ApiToken, StoreError> {
        Ok(fetch_one!(
            self,
            ApiToken,
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING *",
            user_id,
            name,
            token_hash,
            Timestamp::now().0,
            expires_at.map(|t| t.0),
        )?)
    }

    /// The token with this hash if it is valid at `now`; records the use.
    pub async fn use_api_token(
        &mut self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<ApiToken>, StoreError> {
        let token = fetch_optional!(
            self,
            ApiToken,
            "SELECT * FROM api_tokens
             WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2)",
            token_hash,
            now.0
        )?;
        if let Some(token) = &token {
            execute!(
                self,
                "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1",
                token.id,
                now.0
            )?;
        }
        Ok(token)
    }

    /// A user's tokens, newest first.
    pub async fn list_api_tokens(&mut self, user_id: i64) -> Result<Vec<ApiToken>, StoreError> {
        Ok(fetch_all!(
            self,
            ApiToken,
            "SELECT * FROM api_tokens WHERE user_id = $1 ORDER BY id DESC",
            user_id
        )?)
    }

    /// Revokes one of a user's tokens. Returns whether it existed.
    pub async fn revoke_api_token(&mut self, user_id: i64, id: i64) -> Result<bool, StoreError> {
        Ok(execute!(
            self,
            "DELETE FROM api_tokens WHERE user_id = $1 AND id = $2",
            user_id,
            id
        )? > 0)
    }

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
