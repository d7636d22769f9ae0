//! Password hashes for signing in to the web UI.
//!
//! The store never sees a password: the caller hashes it (argon2, a PHC string) and the store
//! keeps that string, one per user.

use crate::tx::{execute, scalar_one, scalar_optional};
use crate::{StoreError, Timestamp, Tx};

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
}
