//! Users, their email addresses and incoming-email tokens, and the Support Bot.

use sha2::{Digest as _, Sha256};

use crate::ids::{fold, hex, new_incoming_email_token};
use crate::tx::{execute, fetch_all, fetch_one, fetch_optional, scalar_optional};
use crate::{StoreError, Timestamp, Tx};
use postern_vocab::named_enum;

named_enum! {
    /// Whether a user may act. Blocked users are still found (GitLab answers "user blocked",
    /// not "user not found").
    pub enum UserState {
        /// May sign in and act.
        Active = "active",
        /// Kept, but refused everywhere.
        Blocked = "blocked",
    }
}

named_enum! {
    /// What kind of account this is.
    pub enum UserKind {
        /// A person.
        Human = "human",
        /// The Support Bot: author of Service Desk tickets and of customers' replies.
        SupportBot = "support_bot",
    }
}

/// One email address of a user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct UserEmail {
    /// Row id.
    pub id: i64,
    /// The owner.
    pub user_id: i64,
    /// The address as entered.
    pub email: String,
    /// The primary address (exactly one per user, unless none was ever given).
    #[sqlx(rename = "is_primary")]
    pub primary: bool,
    /// Whether the user proved they receive mail there. Only verified addresses identify a
    /// sender: anyone can write any address into `From`, and GitLab likewise accepts a reply only
    /// from one of the recipient's verified addresses.
    pub verified: bool,
    /// When it was added.
    pub created_at: Timestamp,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Unique (case-insensitively) login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Active or blocked.
    pub state: UserState,
    /// Instance administrator.
    pub admin: bool,
    /// Human or Support Bot.
    pub kind: UserKind,
    /// The secret in the user's new-issue / new-MR addresses (`glimt-…`). Matched exactly.
    /// Not a column: opened from `incoming_email_token_sealed` when the user is loaded.
    #[sqlx(skip)]
    pub incoming_email_token: String,
    /// The column `incoming_email_token_hash`: the token's hex SHA-256, or the token itself in a
    /// row not sealed yet (see migration 0012).
    #[sqlx(rename = "incoming_email_token_hash")]
    #[serde(skip)]
    stored_token: String,
    /// The token sealed with the store's [`TokenKey`](crate::TokenKey); `None` while the row
    /// still holds it in plain.
    #[serde(skip)]
    incoming_email_token_sealed: Option<String>,
    /// When the account was created.
    pub created_at: Timestamp,
    /// Last change to the account row.
    pub updated_at: Timestamp,
    /// All addresses, primary first.
    #[sqlx(skip)]
    pub emails: Vec<UserEmail>,
}

impl User {
    /// Whether this is the Support Bot.
    pub fn is_support_bot(&self) -> bool {
        self.kind == UserKind::SupportBot
    }

    /// Whether the account is blocked.
    pub fn is_blocked(&self) -> bool {
        self.state == UserState::Blocked
    }

    /// The primary address, if any.
    pub fn primary_email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.primary)
            .map(|e| e.email.as_str())
    }

    /// Whether `email` (compared case-insensitively) is one of this user's verified addresses.
    pub fn has_verified_email(&self, email: &str) -> bool {
        let wanted = fold(email);
        self.emails
            .iter()
            .any(|e| e.verified && fold(&e.email) == wanted)
    }
}

/// What [`Tx::create_user`] needs. Build with [`NewUser::new`] and adjust the public fields.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Primary address; `None` creates a user without addresses (e.g. a bot).
    pub email: Option<String>,
    /// Whether the primary address counts as verified. Default `true` (an administrator
    /// creating a user vouches for the address).
    pub email_verified: bool,
    /// Administrator flag. Default `false`.
    pub admin: bool,
    /// Default [`UserKind::Human`].
    pub kind: UserKind,
    /// Default [`UserState::Active`].
    pub state: UserState,
}

impl NewUser {
    /// An active, non-admin human with a verified primary address.
    pub fn new(username: &str, name: &str, email: &str) -> NewUser {
        NewUser {
            username: username.to_owned(),
            name: name.to_owned(),
            email: Some(email.to_owned()),
            email_verified: true,
            admin: false,
            kind: UserKind::Human,
            state: UserState::Active,
        }
    }
}

/// The Support Bot's username, reserved for it (it is created by the first Service Desk mail).
pub const SUPPORT_BOT_USERNAME: &str = "support-bot";

impl Tx {
    /// Creates a user with a fresh incoming-email token and, if given, a primary address.
    /// A taken username, address or (astronomically unlikely) token is a unique violation.
    pub async fn create_user(&mut self, new: NewUser) -> Result<User, StoreError> {
        let now = Timestamp::now().0;
        let (token_hash, sealed) = self.token_at_rest(&new_incoming_email_token()?)?;
        let mut user = fetch_one!(
            self,
            User,
            "INSERT INTO users (username, username_lower, name, state, admin, kind,
                                incoming_email_token_hash, incoming_email_token_sealed,
                                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $8, $8) RETURNING *",
            &new.username,
            fold(&new.username),
            &new.name,
            new.state.as_str(),
            new.admin,
            new.kind.as_str(),
            &token_hash,
            now,
            &sealed,
        )?;
        self.open_token(&mut user)?;
        if let Some(email) = &new.email {
            let row = self
                .insert_email(user.id, email, true, new.email_verified)
                .await?;
            user.emails.push(row);
        }
        Ok(user)
    }

    async fn insert_email(
        &mut self,
        user_id: i64,
        email: &str,
        primary: bool,
        verified: bool,
    ) -> Result<UserEmail, StoreError> {
        Ok(fetch_one!(
            self,
            UserEmail,
            "INSERT INTO user_emails (user_id, email, email_lower, is_primary, verified, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            user_id,
            email,
            fold(email),
            primary,
            verified,
            Timestamp::now().0,
        )?)
    }

    /// Adds a secondary address. The first address of a user without any becomes primary.
    pub async fn add_user_email(
        &mut self,
        user_id: i64,
        email: &str,
        verified: bool,
    ) -> Result<UserEmail, StoreError> {
        let has_primary = scalar_optional!(
            self,
            i64,
            "SELECT id FROM user_emails WHERE user_id = $1 AND is_primary",
            user_id
        )?
        .is_some();
        self.insert_email(user_id, email, !has_primary, verified)
            .await
    }

    /// Marks one of a user's addresses verified or not. Returns whether the address exists.
    pub async fn set_email_verified(
        &mut self,
        user_id: i64,
        email: &str,
        verified: bool,
    ) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE user_emails SET verified = $3 WHERE user_id = $1 AND email_lower = $2",
            user_id,
            fold(email),
            verified,
        )?;
        Ok(n > 0)
    }

    /// Removes a secondary address. The primary address cannot be removed this way (returns
    /// `false`, as for an unknown address).
    pub async fn remove_user_email(
        &mut self,
        user_id: i64,
        email: &str,
    ) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "DELETE FROM user_emails WHERE user_id = $1 AND email_lower = $2 AND NOT is_primary",
            user_id,
            fold(email),
        )?;
        Ok(n > 0)
    }

    /// What the `users` row keeps of `token`: with the key, its hash and its sealed form;
    /// without, the token itself (sealed at the next start with the key).
    fn token_at_rest(&self, token: &str) -> Result<(String, Option<String>), StoreError> {
        Ok(match &self.token_key {
            Some(key) => (incoming_token_hash(token), Some(key.seal(token)?)),
            None => (token.to_owned(), None),
        })
    }

    /// Fills `user.incoming_email_token` from the row. A sealed token needs the key that
    /// sealed it; anything else is an error naming the key file.
    fn open_token(&self, user: &mut User) -> Result<(), StoreError> {
        user.incoming_email_token = match (&user.incoming_email_token_sealed, &self.token_key) {
            (None, _) => user.stored_token.clone(),
            (Some(sealed), Some(key)) => key.open(sealed)?,
            (Some(_), None) => {
                return Err(StoreError::TokenKey(
                    "the incoming-email tokens are sealed and the store was opened without \
                     their key"
                        .to_owned(),
                ));
            }
        };
        Ok(())
    }

    async fn with_emails(&mut self, user: Option<User>) -> Result<Option<User>, StoreError> {
        let Some(mut user) = user else {
            return Ok(None);
        };
        self.open_token(&mut user)?;
        user.emails = fetch_all!(
            self,
            UserEmail,
            "SELECT * FROM user_emails WHERE user_id = $1 ORDER BY is_primary DESC, id",
            user.id
        )?;
        Ok(Some(user))
    }

    /// The user with this id.
    pub async fn user_by_id(&mut self, id: i64) -> Result<Option<User>, StoreError> {
        let user = fetch_optional!(self, User, "SELECT * FROM users WHERE id = $1", id)?;
        self.with_emails(user).await
    }

    /// The user with this username, compared case-insensitively.
    pub async fn user_by_username(&mut self, username: &str) -> Result<Option<User>, StoreError> {
        let user = fetch_optional!(
            self,
            User,
            "SELECT * FROM users WHERE username_lower = $1",
            fold(username)
        )?;
        self.with_emails(user).await
    }

    /// The user whose incoming-email token is exactly `token` (GitLab compares it whole, never
    /// by prefix or case-insensitively). Found by the token's hash; a row not sealed yet is
    /// matched on its plain token, and only such a row (so a hash read from a copy of the
    /// database is no token).
    pub async fn user_by_incoming_token(
        &mut self,
        token: &str,
    ) -> Result<Option<User>, StoreError> {
        let user = fetch_optional!(
            self,
            User,
            "SELECT * FROM users
             WHERE (incoming_email_token_sealed IS NOT NULL AND incoming_email_token_hash = $1)
                OR (incoming_email_token_sealed IS NULL AND incoming_email_token_hash = $2)",
            incoming_token_hash(token),
            token
        )?;
        self.with_emails(user).await
    }

    /// The user owning `email` (case-insensitively) as a **verified** address, primary or
    /// secondary. Unverified addresses identify nobody.
    pub async fn user_by_verified_email(
        &mut self,
        email: &str,
    ) -> Result<Option<User>, StoreError> {
        let user = fetch_optional!(
            self,
            User,
            "SELECT u.* FROM users u JOIN user_emails e ON e.user_id = u.id
             WHERE e.email_lower = $1 AND e.verified",
            fold(email)
        )?;
        self.with_emails(user).await
    }

    /// Every user, by id, with their addresses.
    pub async fn list_users(&mut self) -> Result<Vec<User>, StoreError> {
        let mut users = fetch_all!(self, User, "SELECT * FROM users ORDER BY id")?;
        let emails = fetch_all!(
            self,
            UserEmail,
            "SELECT * FROM user_emails ORDER BY user_id, is_primary DESC, id"
        )?;
        for user in &mut users {
            self.open_token(user)?;
        }
        // Both lists are sorted by user id: one merge pass distributes the addresses.
        let mut emails = emails.into_iter().peekable();
        for user in &mut users {
            while let Some(e) = emails.next_if(|e| e.user_id <= user.id) {
                if e.user_id == user.id {
                    user.emails.push(e);
                }
            }
        }
        Ok(users)
    }

    /// Blocks or unblocks a user. Returns whether the user exists.
    pub async fn set_user_state(
        &mut self,
        user_id: i64,
        state: UserState,
    ) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE users SET state = $2, updated_at = $3 WHERE id = $1",
            user_id,
            state.as_str(),
            Timestamp::now().0,
        )?;
        Ok(n > 0)
    }

    /// Grants or revokes administrator rights. Returns whether the user exists.
    pub async fn set_user_admin(&mut self, user_id: i64, admin: bool) -> Result<bool, StoreError> {
        let n = execute!(
            self,
            "UPDATE users SET admin = $2, updated_at = $3 WHERE id = $1",
            user_id,
            admin,
            Timestamp::now().0,
        )?;
        Ok(n > 0)
    }

    /// Replaces the user's incoming-email token (their old addresses stop working) and returns
    /// the new one.
    pub async fn reset_incoming_email_token(&mut self, user_id: i64) -> Result<String, StoreError> {
        let token = new_incoming_email_token()?;
        let (token_hash, sealed) = self.token_at_rest(&token)?;
        let n = execute!(
            self,
            "UPDATE users SET incoming_email_token_hash = $2, incoming_email_token_sealed = $4,
                              updated_at = $3
             WHERE id = $1",
            user_id,
            &token_hash,
            Timestamp::now().0,
            &sealed,
        )?;
        if n == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(token)
    }

    /// The Support Bot, if it exists.
    pub async fn support_bot(&mut self) -> Result<Option<User>, StoreError> {
        let user = fetch_optional!(self, User, "SELECT * FROM users WHERE kind = 'support_bot'")?;
        self.with_emails(user).await
    }

    /// The Support Bot, created (username `support-bot`, no address) if missing. Safe to call
    /// from concurrent transactions: a partial unique index allows only one.
    pub async fn ensure_support_bot(&mut self) -> Result<User, StoreError> {
        if let Some(bot) = self.support_bot().await? {
            return Ok(bot);
        }
        let now = Timestamp::now().0;
        let (token_hash, sealed) = self.token_at_rest(&new_incoming_email_token()?)?;
        execute!(
            self,
            "INSERT INTO users (username, username_lower, name, state, admin, kind,
                                incoming_email_token_hash, incoming_email_token_sealed,
                                created_at, updated_at)
             VALUES ($1, $1, 'Support Bot', 'active', FALSE, 'support_bot', $2, $4, $3, $3)
             ON CONFLICT DO NOTHING",
            SUPPORT_BOT_USERNAME,
            &token_hash,
            now,
            &sealed,
        )?;
        self.support_bot().await?.ok_or(StoreError::NotFound(
            "support bot (username support-bot taken?)",
        ))
    }

    /// Seals up to `batch` tokens still stored in plain, in rows after id `after` (migration
    /// 0012's second half; needs the key, else does nothing). Returns the last row id it
    /// looked at, or `None` when no plain token is left.
    pub async fn seal_stored_incoming_tokens(
        &mut self,
        after: i64,
        batch: i64,
    ) -> Result<Option<i64>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Plain {
            id: i64,
            incoming_email_token_hash: String,
        }
        let Some(key) = self.token_key.clone() else {
            return Ok(None);
        };
        let rows = fetch_all!(
            self,
            Plain,
            "SELECT id, incoming_email_token_hash FROM users
             WHERE id > $1 AND incoming_email_token_sealed IS NULL ORDER BY id LIMIT $2",
            after,
            batch
        )?;
        let mut last = None;
        for row in rows {
            let token = &row.incoming_email_token_hash;
            // Guarded by the plain value: a concurrent reset in between keeps its new token.
            execute!(
                self,
                "UPDATE users SET incoming_email_token_hash = $2, incoming_email_token_sealed = $3
                 WHERE id = $1 AND incoming_email_token_hash = $4
                   AND incoming_email_token_sealed IS NULL",
                row.id,
                incoming_token_hash(token),
                key.seal(token)?,
                token
            )?;
            last = Some(row.id);
        }
        Ok(last)
    }

    /// Checks that the store's key opens one sealed token (none sealed: nothing to check).
    pub(crate) async fn check_token_key(&mut self) -> Result<(), StoreError> {
        let sealed = scalar_optional!(
            self,
            String,
            "SELECT incoming_email_token_sealed FROM users
             WHERE incoming_email_token_sealed IS NOT NULL ORDER BY id LIMIT 1"
        )?;
        if let (Some(sealed), Some(key)) = (sealed, &self.token_key) {
            key.open(&sealed)?;
        }
        Ok(())
    }
}

/// Hex SHA-256 of an incoming-email token: what the `users` row keeps for lookup.
fn incoming_token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}
