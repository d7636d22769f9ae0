//! Personal access tokens for the JSON API.
//!
//! A token is found by its hex SHA-256, which the caller computes: the store never sees the
//! token itself, so a copy of the database lets nobody call the API.

use crate::tx::{execute, fetch_all, fetch_one, fetch_optional};
use crate::{StoreError, Timestamp, Tx};

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

impl Tx {
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
}
