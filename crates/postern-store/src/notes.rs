//! Notes (comments) with their discussions, and subscriptions to noteables.

use crate::ids::new_discussion_id;
use crate::tx::{execute, fetch_all, fetch_one, fetch_optional, scalar_optional};
use crate::{StoreError, Timestamp, Tx};

/// What a note, notification or subscription is about. Stored as `noteable_type` text plus
/// `noteable_id` (the row id, not the iid). JSON: `{"type": "issue", "id": 7}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Noteable {
    /// An issue or ticket, by row id.
    Issue(i64),
    /// A merge request, by row id.
    MergeRequest(i64),
}

impl Noteable {
    /// The stored type name.
    pub fn type_str(self) -> &'static str {
        match self {
            Noteable::Issue(_) => "issue",
            Noteable::MergeRequest(_) => "merge_request",
        }
    }

    /// The row id.
    pub fn id(self) -> i64 {
        match self {
            Noteable::Issue(id) | Noteable::MergeRequest(id) => id,
        }
    }
}

/// Reads `noteable_type` and `noteable_id` columns; lets structs `#[sqlx(flatten)]` it.
impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for Noteable
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let kind: String = row.try_get("noteable_type")?;
        let id: i64 = row.try_get("noteable_id")?;
        match kind.as_str() {
            "issue" => Ok(Noteable::Issue(id)),
            "merge_request" => Ok(Noteable::MergeRequest(id)),
            _ => Err(sqlx::Error::ColumnDecode {
                index: "noteable_type".to_owned(),
                source: format!("unknown noteable type {kind:?}").into(),
            }),
        }
    }
}

/// A comment (or system note) on an issue or merge request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Note {
    /// Row id.
    pub id: i64,
    /// The noteable's project.
    pub project_id: i64,
    /// What it is on.
    #[sqlx(flatten)]
    pub noteable: Noteable,
    /// Author (the Support Bot for customers' replies).
    pub author_id: i64,
    /// Markdown body.
    pub body: String,
    /// The customer's address when the Support Bot wrote it for them.
    pub external_author: Option<String>,
    /// The thread this note belongs to (40 hex characters).
    pub discussion_id: String,
    /// Internal (confidential) note: visible to reporters and up only.
    pub internal: bool,
    /// Written by the system (state changes), not by a person.
    pub system: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// What [`Tx::create_note`] needs.
#[derive(Debug, Clone)]
pub struct NewNote {
    /// What the note is on; must exist.
    pub noteable: Noteable,
    /// Author.
    pub author_id: i64,
    /// Body.
    pub body: String,
    /// Customer address, for notes the Support Bot writes on a customer's behalf.
    pub external_author: Option<String>,
    /// Join this discussion (from the sent notification). Ignored when no note of this
    /// noteable is in that discussion (e.g. it was deleted): the note starts a new one.
    pub in_reply_to_discussion_id: Option<String>,
    /// Internal note.
    pub internal: bool,
    /// System note.
    pub system: bool,
}

impl NewNote {
    /// A visible, non-system note starting a new discussion.
    pub fn new(noteable: Noteable, author_id: i64, body: &str) -> NewNote {
        NewNote {
            noteable,
            author_id,
            body: body.to_owned(),
            external_author: None,
            in_reply_to_discussion_id: None,
            internal: false,
            system: false,
        }
    }
}

/// A user's explicit subscription choice for a noteable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Subscription {
    /// The user.
    pub user_id: i64,
    /// The noteable's project.
    pub project_id: i64,
    /// The noteable.
    #[sqlx(flatten)]
    pub noteable: Noteable,
    /// Subscribed (`true`) or explicitly unsubscribed (`false`).
    pub subscribed: bool,
    /// When the choice was made.
    pub updated_at: Timestamp,
}

impl Tx {
    /// The project of an existing noteable; [`StoreError::NotFound`] if it does not exist.
    pub(crate) async fn noteable_project(&mut self, noteable: Noteable) -> Result<i64, StoreError> {
        let project = match noteable {
            Noteable::Issue(id) => {
                scalar_optional!(self, i64, "SELECT project_id FROM issues WHERE id = $1", id)?
            }
            Noteable::MergeRequest(id) => scalar_optional!(
                self,
                i64,
                "SELECT project_id FROM merge_requests WHERE id = $1",
                id
            )?,
        };
        project.ok_or(StoreError::NotFound("noteable"))
    }

    /// Creates a note. It joins `in_reply_to_discussion_id` when that discussion exists on the
    /// same noteable, and otherwise starts a new discussion with a fresh id.
    pub async fn create_note(&mut self, new: NewNote) -> Result<Note, StoreError> {
        let project_id = self.noteable_project(new.noteable).await?;
        let existing = match &new.in_reply_to_discussion_id {
            Some(d) => scalar_optional!(
                self,
                String,
                "SELECT discussion_id FROM notes
                 WHERE discussion_id = $1 AND noteable_type = $2 AND noteable_id = $3 LIMIT 1",
                d,
                new.noteable.type_str(),
                new.noteable.id(),
            )?,
            None => None,
        };
        let discussion_id = match existing {
            Some(d) => d,
            None => new_discussion_id()?,
        };
        Ok(fetch_one!(
            self,
            Note,
            "INSERT INTO notes (project_id, noteable_type, noteable_id, author_id, body,
                                external_author, discussion_id, internal, system,
                                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING *",
            project_id,
            new.noteable.type_str(),
            new.noteable.id(),
            new.author_id,
            &*crate::without_nul(&new.body),
            new.external_author.as_deref().map(crate::without_nul),
            &discussion_id,
            new.internal,
            new.system,
            Timestamp::now().0,
        )?)
    }

    /// The note with this id.
    pub async fn note_by_id(&mut self, id: i64) -> Result<Option<Note>, StoreError> {
        Ok(fetch_optional!(
            self,
            Note,
            "SELECT * FROM notes WHERE id = $1",
            id
        )?)
    }

    /// All notes of a noteable, oldest first.
    pub async fn notes_for(&mut self, noteable: Noteable) -> Result<Vec<Note>, StoreError> {
        Ok(fetch_all!(
            self,
            Note,
            "SELECT * FROM notes WHERE noteable_type = $1 AND noteable_id = $2 ORDER BY id",
            noteable.type_str(),
            noteable.id()
        )?)
    }

    /// Whether `noteable` has a public comment (neither a system note nor an internal one) by
    /// anyone but `except_author`, without reading the notes.
    pub async fn has_public_comment(
        &mut self,
        noteable: Noteable,
        except_author: Option<i64>,
    ) -> Result<bool, StoreError> {
        let found = scalar_optional!(
            self,
            i64,
            "SELECT id FROM notes
             WHERE noteable_type = $1 AND noteable_id = $2 AND NOT system AND NOT internal
               AND ($3 IS NULL OR author_id <> $3)
             LIMIT 1",
            noteable.type_str(),
            noteable.id(),
            except_author
        )?;
        Ok(found.is_some())
    }

    /// Records that `user_id` is (or is not) subscribed to `noteable`, replacing any earlier
    /// choice. The noteable must exist.
    pub async fn set_subscription(
        &mut self,
        user_id: i64,
        noteable: Noteable,
        subscribed: bool,
    ) -> Result<(), StoreError> {
        let project_id = self.noteable_project(noteable).await?;
        execute!(
            self,
            "INSERT INTO subscriptions (user_id, project_id, noteable_type, noteable_id,
                                        subscribed, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id, noteable_type, noteable_id)
             DO UPDATE SET subscribed = excluded.subscribed, updated_at = excluded.updated_at",
            user_id,
            project_id,
            noteable.type_str(),
            noteable.id(),
            subscribed,
            Timestamp::now().0,
        )?;
        Ok(())
    }

    /// The user's explicit choice for `noteable`, or `None` if they never made one.
    pub async fn subscription(
        &mut self,
        user_id: i64,
        noteable: Noteable,
    ) -> Result<Option<bool>, StoreError> {
        Ok(scalar_optional!(
            self,
            bool,
            "SELECT subscribed FROM subscriptions
             WHERE user_id = $1 AND noteable_type = $2 AND noteable_id = $3",
            user_id,
            noteable.type_str(),
            noteable.id()
        )?)
    }

    /// Every explicit choice for `noteable`, by user id.
    pub async fn subscriptions_for(
        &mut self,
        noteable: Noteable,
    ) -> Result<Vec<Subscription>, StoreError> {
        Ok(fetch_all!(
            self,
            Subscription,
            "SELECT user_id, project_id, noteable_type, noteable_id, subscribed, updated_at
             FROM subscriptions WHERE noteable_type = $1 AND noteable_id = $2 ORDER BY user_id",
            noteable.type_str(),
            noteable.id()
        )?)
    }
}
