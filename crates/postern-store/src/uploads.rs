//! Upload metadata. The bytes are a file under the data directory that the caller writes;
//! the store keeps only what is needed to find and serve it.

use crate::tx::{fetch_all, fetch_one, fetch_optional};
use crate::{StoreError, Timestamp, Tx};

/// An uploaded file (e.g. a mail attachment): the file as it was recorded, with its row id and
/// time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Upload {
    /// Row id.
    pub id: i64,
    /// The file: its project, secret, name, type, size, uploader and place.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub file: NewUpload,
    /// When it was uploaded.
    pub created_at: Timestamp,
}

/// Links of one upload looked at, at most: enough for any real thread, and a bound on the
/// work one request for a file can cause.
pub const MAX_UPLOAD_REFERENCES: i64 = 100;

/// Where an upload is linked: an issue's or merge request's description, or a note.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UploadReference {
    /// `issue` or `merge_request`: what the description or note belongs to.
    pub kind: String,
    /// The or merge request's row id.
    pub target_id: i64,
    /// Whether the link is in an internal note.
    pub internal: bool,
}

/// What [`Tx::create_upload`] needs, and what an [`Upload`] row holds besides its id and time.
///
/// The caller mints the secret with [`new_upload_secret`](crate::new_upload_secret), chooses
/// the relative path (the store does not build paths from untrusted file names), writes the
/// file, and records it here in the same transaction as the note or issue that links to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct NewUpload {
    /// The project it belongs to.
    pub project_id: i64,
    /// 32 hex characters from [`new_upload_secret`](crate::new_upload_secret), unique: the
    /// unguessable part of `/uploads/<secret>/<filename>`.
    pub secret: String,
    /// File name as shown and linked.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Who uploaded it (the mail's author), if known.
    pub uploaded_by: Option<i64>,
    /// Where the bytes are, relative to the data directory.
    pub relative_path: String,
}

impl Tx {
    /// Records an upload.
    pub async fn create_upload(&mut self, new: NewUpload) -> Result<Upload, StoreError> {
        Ok(fetch_one!(
            self,
            Upload,
            "INSERT INTO uploads (project_id, secret, filename, content_type, size, uploaded_by,
                                  relative_path, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
            new.project_id,
            &new.secret,
            &new.filename,
            &new.content_type,
            new.size,
            new.uploaded_by,
            &new.relative_path,
            Timestamp::now().0,
        )?)
    }

    /// The upload with this secret.
    pub async fn upload_by_secret(&mut self, secret: &str) -> Result<Option<Upload>, StoreError> {
        Ok(fetch_optional!(
            self,
            Upload,
            "SELECT * FROM uploads WHERE secret = $1",
            secret
        )?)
    }

    /// Every description and note of `upload`'s project that links it (`/uploads/<secret>/`):
    /// what decides who may load it. The secret is the stored one, 32 hex digits, so it holds
    /// no `LIKE` wildcard.
    pub async fn upload_references(
        &mut self,
        upload: &Upload,
    ) -> Result<Vec<UploadReference>, StoreError> {
        if !upload
            .file
            .secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
        {
            return Ok(Vec::new());
        }
        let pattern = format!("%/uploads/{}/%", upload.file.secret);
        Ok(fetch_all!(
            self,
            UploadReference,
            "SELECT 'issue' AS kind, id AS target_id, FALSE AS internal
               FROM issues WHERE project_id = $1 AND description LIKE $2
             UNION ALL
             SELECT 'merge_request' AS kind, id AS target_id, FALSE AS internal
               FROM merge_requests WHERE project_id = $1 AND description LIKE $2
             UNION ALL
             SELECT noteable_type AS kind, noteable_id AS target_id, internal
               FROM notes WHERE project_id = $1 AND body LIKE $2
             LIMIT $3",
            upload.file.project_id,
            &pattern,
            MAX_UPLOAD_REFERENCES,
        )?)
    }

    /// A project's uploads, oldest first.
    pub async fn uploads_for_project(
        &mut self,
        project_id: i64,
    ) -> Result<Vec<Upload>, StoreError> {
        Ok(fetch_all!(
            self,
            Upload,
            "SELECT * FROM uploads WHERE project_id = $1 ORDER BY id",
            project_id
        )?)
    }
}
