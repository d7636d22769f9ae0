//! Sent notifications: the reply keys in outgoing mail, and finding them again.
//!
//! A key is stored as its hex SHA-256 only (as API tokens are): finding a reply needs the key
//! checked, never read back, so a copy of the database holds no key that acts by mail. The key
//! itself exists once, in the value [`Tx::create_sent_notification`] returns, for the mail.

use sha2::{Digest, Sha256};

use crate::ids::{REPLY_KEY_LEN, base36, hex, new_reply_key};
use crate::notes::Noteable;
use crate::tx::{execute, fetch_all, fetch_one, fetch_optional};
use crate::{StoreError, Timestamp, Tx};

/// Largest partition that fits the address form's 1–4 base-36 digits.
const MAX_PARTITION: i64 = 36 * 36 * 36 * 36 - 1;

/// A reply key as it appears in an address, parsed (the whole string must match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKey<'a> {
    /// `<partition>-<reply_key>[-<namespace_id>]`: 1–4 base-36 digits, exactly 25 base-36
    /// characters, then optionally 1–13 base-36 digits.
    Partitioned {
        /// The partition, decoded.
        partition: i64,
        /// The 25-character key.
        reply_key: &'a str,
        /// The namespace id, decoded; `None` when absent (or too large for `i64`). Not used
        /// for lookup.
        namespace_id: Option<i64>,
    },
    /// A 32-character lowercase hex key from before partitioning.
    Legacy(&'a str),
}

fn is_base36(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

fn parse_base36(s: &str) -> Option<u128> {
    s.chars().try_fold(0u128, |acc, c| {
        let d = c.to_digit(36)?;
        acc.checked_mul(36)?.checked_add(u128::from(d))
    })
}

impl<'a> ReplyKey<'a> {
    /// Parses a whole key; `None` if it has neither shape.
    pub fn parse(key: &'a str) -> Option<ReplyKey<'a>> {
        if key.len() == 32
            && key
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Some(ReplyKey::Legacy(key));
        }
        let mut parts = key.split('-');
        let (p, k, ns) = (parts.next()?, parts.next()?, parts.next());
        if parts.next().is_some() {
            return None;
        }
        if !(1..=4).contains(&p.len()) || !is_base36(p) || k.len() != REPLY_KEY_LEN || !is_base36(k)
        {
            return None;
        }
        let namespace_id = match ns {
            Some(ns) if (1..=13).contains(&ns.len()) && is_base36(ns) => {
                parse_base36(ns).and_then(|n| i64::try_from(n).ok())
            }
            Some(_) => return None,
            None => None,
        };
        Some(ReplyKey::Partitioned {
            partition: parse_base36(p).and_then(|n| i64::try_from(n).ok())?,
            reply_key: k,
            namespace_id,
        })
    }
}

/// A notification that was sent, with the key that lets its reply find the noteable again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct SentNotification {
    /// Row id.
    pub id: i64,
    /// Partition number (GitLab partitions this table; postern keeps the number so addresses
    /// have the same shape).
    #[sqlx(rename = "partition_id")]
    pub partition: i64,
    /// The hex SHA-256 of the key (25 base-36 characters, or 32 hex for legacy rows). A row
    /// written before the key was hashed, and not yet rewritten at start-up, holds the key.
    pub reply_key_hash: String,
    /// The namespace id written into the address. Opaque to the store.
    pub namespace_id: i64,
    /// Who received it; a reply is written as this user.
    pub recipient_id: i64,
    /// The noteable's project.
    pub project_id: i64,
    /// What the notification was about.
    #[sqlx(flatten)]
    pub noteable: Noteable,
    /// The discussion the reply joins.
    pub in_reply_to_discussion_id: Option<String>,
    /// The outside address a Service Desk mail (whose recipient is the Support Bot) went to:
    /// the participant its unsubscribe removes. `None` for mail to members, and for Service
    /// Desk mail sent before it was recorded.
    pub participant_email: Option<String>,
    /// When it was sent.
    pub created_at: Timestamp,
}

/// A notification just recorded, with its key: the only time the key is known. Reads as the
/// [`SentNotification`] it is.
#[derive(Debug, Clone)]
pub struct CreatedNotification {
    notification: SentNotification,
    reply_key: String,
}

impl std::ops::Deref for CreatedNotification {
    type Target = SentNotification;

    fn deref(&self) -> &SentNotification {
        &self.notification
    }
}

impl CreatedNotification {
    /// The key as it goes into a reply address: `<partition>-<reply_key>-<namespace_id>` in
    /// base 36, or the bare key for a legacy 32-hex key.
    pub fn address_key(&self) -> String {
        if self.reply_key.len() != REPLY_KEY_LEN {
            return self.reply_key.clone();
        }
        let part = u128::try_from(self.notification.partition).unwrap_or(0);
        let ns = u128::try_from(self.notification.namespace_id).unwrap_or(0);
        format!("{}-{}-{}", base36(part), self.reply_key, base36(ns))
    }

    /// The stored notification.
    pub fn into_inner(self) -> SentNotification {
        self.notification
    }
}

/// How a reply key is stored: its hex SHA-256.
pub fn reply_key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Length of a stored hash; a plain key is never this long.
const HASH_LEN: usize = 64;

/// What [`Tx::create_sent_notification`] needs.
#[derive(Debug, Clone)]
pub struct NewSentNotification {
    /// Partition, `0..=1679615` (four base-36 digits). Use `1` unless you have a reason.
    pub partition: i64,
    /// Namespace id to write into the address.
    pub namespace_id: i64,
    /// Recipient.
    pub recipient_id: i64,
    /// What it is about; must exist.
    pub noteable: Noteable,
    /// Discussion a reply should join.
    pub in_reply_to_discussion_id: Option<String>,
    /// Use this key instead of generating one (imports, tests). Must be 25 base-36 or 32
    /// lowercase hex characters.
    pub reply_key: Option<String>,
    /// The outside address a Service Desk mail goes to (see
    /// [`SentNotification::participant_email`]); `None` for mail to members.
    pub participant_email: Option<String>,
}

impl Tx {
    /// Records a sent notification with a fresh random reply key (or the given one).
    pub async fn create_sent_notification(
        &mut self,
        new: NewSentNotification,
    ) -> Result<CreatedNotification, StoreError> {
        if !(0..=MAX_PARTITION).contains(&new.partition) {
            return Err(StoreError::Invalid(format!("partition {}", new.partition)));
        }
        let reply_key = match new.reply_key {
            Some(k) => {
                let ok = match ReplyKey::parse(&k) {
                    Some(ReplyKey::Legacy(_)) => true,
                    _ => k.len() == REPLY_KEY_LEN && is_base36(&k),
                };
                if !ok {
                    return Err(StoreError::Invalid(format!("reply key {k:?}")));
                }
                k
            }
            None => new_reply_key()?,
        };
        let project_id = self.noteable_project(new.noteable).await?;
        let notification = fetch_one!(
            self,
            SentNotification,
            "INSERT INTO sent_notifications (partition_id, reply_key_hash, namespace_id, recipient_id,
                 project_id, noteable_type, noteable_id, in_reply_to_discussion_id,
                 participant_email, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
            new.partition,
            reply_key_hash(&reply_key),
            new.namespace_id,
            new.recipient_id,
            project_id,
            new.noteable.type_str(),
            new.noteable.id(),
            &new.in_reply_to_discussion_id,
            new.participant_email
                .as_deref()
                .map(|email| crate::without_nul(email).into_owned()),
            Timestamp::now().0,
        )?;
        Ok(CreatedNotification {
            notification,
            reply_key,
        })
    }

    /// Finds the notification a reply key belongs to, exactly as GitLab's
    /// `SentNotification.for` (`app/models/sent_notification.rb`):
    ///
    /// - partitioned key: the row with that partition and reply key; if there is none, the
    ///   row with that reply key in any partition;
    /// - legacy 32-hex key: the row with that reply key;
    /// - exactly one row must match, otherwise (none, or several) the answer is `None`;
    /// - a string of neither shape is `None`.
    pub async fn sent_notification_by_key(
        &mut self,
        key: &str,
    ) -> Result<Option<SentNotification>, StoreError> {
        let rows = match ReplyKey::parse(key) {
            None => return Ok(None),
            Some(ReplyKey::Legacy(k)) => self.sent_notifications_with_key(k).await?,
            Some(ReplyKey::Partitioned {
                partition,
                reply_key,
                ..
            }) => {
                let in_partition = fetch_all!(
                    self,
                    SentNotification,
                    "SELECT * FROM sent_notifications
                     WHERE partition_id = $1 AND reply_key_hash IN ($2, $3) ORDER BY id LIMIT 2",
                    partition,
                    reply_key_hash(reply_key),
                    reply_key
                )?;
                if in_partition.is_empty() {
                    self.sent_notifications_with_key(reply_key).await?
                } else {
                    in_partition
                }
            }
        };
        Ok(exactly_one(rows))
    }

    /// Gives sent notification `id` a fresh one-click unsubscribe token (RFC 8058) and returns
    /// it; only its hex SHA-256 is stored, so this is the one time it is known. 32 lowercase
    /// hex characters (128 random bits).
    pub async fn create_unsubscribe_token(&mut self, id: i64) -> Result<String, StoreError> {
        let token = hex(&crate::ids::random_bytes::<16>()?);
        execute!(
            self,
            "UPDATE sent_notifications SET unsubscribe_token_hash = $1 WHERE id = $2",
            reply_key_hash(&token),
            id
        )?;
        Ok(token)
    }

    /// The sent notification a one-click unsubscribe token belongs to.
    pub async fn sent_notification_by_unsubscribe_token(
        &mut self,
        token: &str,
    ) -> Result<Option<SentNotification>, StoreError> {
        // Only tokens of the shape minted above are looked up.
        if token.len() != 32
            || !token
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Ok(None);
        }
        Ok(fetch_optional!(
            self,
            SentNotification,
            "SELECT * FROM sent_notifications WHERE unsubscribe_token_hash = $1",
            reply_key_hash(token)
        )?)
    }

    /// Up to two rows with this reply key: two are enough to know it is ambiguous. A row not
    /// yet hashed (see [`Tx::hash_stored_reply_keys`]) is found by the key itself.
    async fn sent_notifications_with_key(
        &mut self,
        reply_key: &str,
    ) -> Result<Vec<SentNotification>, StoreError> {
        Ok(fetch_all!(
            self,
            SentNotification,
            "SELECT * FROM sent_notifications WHERE reply_key_hash IN ($1, $2)
             ORDER BY id LIMIT 2",
            reply_key_hash(reply_key),
            reply_key
        )?)
    }

    /// Replaces the reply keys stored in plain (rows from before migration 0010) by their hash,
    /// for up to `batch` such rows after row `after`; returns the last row it replaced, `None`
    /// when there were none left. Idempotent: a hash is never rehashed.
    pub async fn hash_stored_reply_keys(
        &mut self,
        after: i64,
        batch: i64,
    ) -> Result<Option<i64>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Plain {
            id: i64,
            reply_key_hash: String,
        }
        let rows = fetch_all!(
            self,
            Plain,
            "SELECT id, reply_key_hash FROM sent_notifications
             WHERE id > $1 AND length(reply_key_hash) <> $2 ORDER BY id LIMIT $3",
            after,
            i64::try_from(HASH_LEN).unwrap_or(64),
            batch
        )?;
        let mut last = None;
        for row in rows {
            execute!(
                self,
                "UPDATE sent_notifications SET reply_key_hash = $2
                 WHERE id = $1 AND reply_key_hash = $3",
                row.id,
                reply_key_hash(&row.reply_key_hash),
                &row.reply_key_hash
            )?;
            last = Some(row.id);
        }
        Ok(last)
    }
}

fn exactly_one<T>(mut rows: Vec<T>) -> Option<T> {
    if rows.len() == 1 { rows.pop() } else { None }
}

#[cfg(test)]
mod tests {
    use super::ReplyKey;

    /// A row written before migration 0010 holds its key in plain; the start-up pass replaces
    /// it by its hash, the lookup finds it before and after, and a second pass changes nothing.
    #[tokio::test]
    async fn plain_keys_are_hashed_once() -> Result<(), crate::StoreError> {
        use crate::{NewIssue, NewProject, NewSentNotification, NewUser, Noteable, Visibility};
        let store = crate::Store::connect("sqlite::memory:").await?;
        let mut tx = store.begin().await?;
        let user = tx
            .create_user(NewUser::new("u", "u", "u@example.com"))
            .await?;
        let project = tx
            .create_project(NewProject {
                namespace_path: "g".to_owned(),
                path: "p".to_owned(),
                name: "p".to_owned(),
                visibility: Visibility::Private,
                default_branch: "main".to_owned(),
            })
            .await?;
        let issue = tx
            .create_issue(NewIssue::new(project.id, user.id, "t", ""))
            .await?;
        let key = "0000000000000000000000abc";
        let sent = tx
            .create_sent_notification(NewSentNotification {
                partition: 1,
                namespace_id: 1,
                recipient_id: user.id,
                noteable: Noteable::Issue(issue.id),
                in_reply_to_discussion_id: None,
                reply_key: Some(key.to_owned()),
                participant_email: None,
            })
            .await?;
        crate::tx::execute!(
            tx,
            "UPDATE sent_notifications SET reply_key_hash = $1 WHERE id = $2",
            key,
            sent.id
        )?;
        let found = |row: Option<super::SentNotification>| row.map(|row| row.id);
        assert_eq!(
            found(tx.sent_notification_by_key(&format!("1-{key}")).await?),
            Some(sent.id)
        );
        assert_eq!(tx.hash_stored_reply_keys(0, 10).await?, Some(sent.id));
        assert_eq!(tx.hash_stored_reply_keys(0, 10).await?, None);
        let stored = tx.sent_notification_by_key(&format!("1-{key}")).await?;
        assert_eq!(
            stored.map(|row| row.reply_key_hash),
            Some(super::reply_key_hash(key))
        );
        tx.commit().await
    }

    #[test]
    fn parses_both_shapes() {
        let k = "0000000000000000000000abc";
        assert_eq!(
            ReplyKey::parse(&format!("rs-{k}-rs")),
            Some(ReplyKey::Partitioned {
                partition: 27 * 36 + 28,
                reply_key: k,
                namespace_id: Some(27 * 36 + 28)
            })
        );
        assert_eq!(
            ReplyKey::parse(&format!("1-{k}")),
            Some(ReplyKey::Partitioned {
                partition: 1,
                reply_key: k,
                namespace_id: None
            })
        );
        let legacy = "59d8df8370b7e95c5a49fbf86aeb2c93";
        assert_eq!(ReplyKey::parse(legacy), Some(ReplyKey::Legacy(legacy)));
    }

    #[test]
    fn rejects_other_shapes() {
        let k = "0000000000000000000000abc";
        for bad in [
            "",
            "59D8DF8370B7E95C5A49FBF86AEB2C93",
            "59d8df8370b7e95c5a49fbf86aeb2c9",
            &format!("12345-{k}"),
            &format!("1-{k}x"),
            &format!("1-{k}-"),
            &format!("1-{k}-12345678901234"),
            &format!("1-{k}-1-2"),
            &format!("A-{k}"),
        ] {
            assert_eq!(ReplyKey::parse(bad), None, "{bad:?}");
        }
    }
}
