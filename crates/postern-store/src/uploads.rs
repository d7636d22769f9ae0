//! Uploads: what is needed to find and serve one, and its bytes, which the store keeps where
//! its backend says (`upload_bytes`: files of the instance on SQLite, rows on PostgreSQL).

use std::path::Path;

use crate::tx::{fetch_all, fetch_one, fetch_optional, scalar_optional};
use crate::upload_bytes::read_upload_file;
use crate::{StagedUploads, StoreError, Timestamp, Tx};

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
/// the relative path (the store does not build paths from untrusted file names), stages the
/// bytes with [`Store::stage_uploads`](crate::Store::stage_uploads), and records them here in
/// the same transaction as the note or issue that links to them.
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
    /// `<secret>/<file name>`: where the bytes are, relative to the upload directory, when they
    /// are a file (SQLite, or an upload recorded on PostgreSQL before migration 0014); the key
    /// they were staged under otherwise.
    pub relative_path: String,
}

impl Tx {
    /// Records an upload with its bytes, which must have been staged in `staged` under
    /// `new.relative_path` ([`Store::stage_uploads`](crate::Store::stage_uploads)): from now on
    /// they belong to this transaction, committed or discarded with the row. Fails with
    /// [`StoreError::NotFound`] if they were not staged.
    pub async fn create_upload(
        &mut self,
        new: NewUpload,
        staged: &mut StagedUploads,
    ) -> Result<Upload, StoreError> {
        let upload = fetch_one!(
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
        )?;
        self.take_staged_upload(staged, &upload.file.relative_path, upload.id)
            .await?;
        Ok(upload)
    }

    /// The bytes of `upload`: its `upload_contents` row, else (SQLite, or an upload recorded
    /// on PostgreSQL before migration 0014) the file at its relative path under `directory`,
    /// this instance's upload directory. `None` if neither is there.
    ///
    /// The whole upload is read into memory: its size is capped by the attachment limits it
    /// was accepted under (`max_attachment_size`), and the database driver returns a `BYTEA`
    /// value whole anyway.
    pub async fn upload_content(
        &mut self,
        upload: &Upload,
        directory: &Path,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = scalar_optional!(
            self,
            Vec<u8>,
            "SELECT content FROM upload_contents WHERE upload_id = $1",
            upload.id
        )?;
        match stored {
            Some(content) => Ok(Some(content)),
            None => read_upload_file(directory, &upload.file.relative_path).await,
        }
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
