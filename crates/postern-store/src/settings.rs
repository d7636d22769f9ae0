//! A small key/value table for instance-wide settings changed at run time (`postern admin`).

use crate::tx::{execute, fetch_all, scalar_optional};
use crate::{StoreError, Timestamp, Tx};

/// One setting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Setting {
    /// Name.
    pub key: String,
    /// Value, as text (the caller parses it).
    pub value: String,
    /// Last change.
    pub updated_at: Timestamp,
}

impl Tx {
    /// The value of a setting, if set.
    pub async fn setting(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(scalar_optional!(
            self,
            String,
            "SELECT value FROM settings WHERE key = $1",
            key
        )?)
    }

    /// Sets (or replaces) a setting.
    pub async fn set_setting(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        execute!(
            self,
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            key,
            value,
            Timestamp::now().0,
        )?;
        Ok(())
    }

    /// Removes a setting. Returns whether it was set.
    pub async fn delete_setting(&mut self, key: &str) -> Result<bool, StoreError> {
        Ok(execute!(self, "DELETE FROM settings WHERE key = $1", key)? > 0)
    }

    /// Every setting, by key.
    pub async fn list_settings(&mut self) -> Result<Vec<Setting>, StoreError> {
        Ok(fetch_all!(
            self,
            Setting,
            "SELECT * FROM settings ORDER BY key"
        )?)
    }
}
