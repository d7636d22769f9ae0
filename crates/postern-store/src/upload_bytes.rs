//! Where the bytes of uploads (mail attachments) live, decided here and nowhere else.
//!
//! - SQLite: a file of the instance's upload directory, `<directory>/<relative path>`. The
//!   database is one machine's, and a file is written once rather than into the WAL and again
//!   by the checkpoint. The file is written and synced before the transaction that records it
//!   ([`Store::stage_uploads`]: the slow part, done without holding SQLite's one write slot),
//!   then belongs to that transaction (kept if it commits, removed if not; see `files`).
//! - PostgreSQL: a row of `upload_contents` (migration 0014), inserted in the transaction that
//!   records the upload. Several instances may share the database, each with a data directory
//!   of its own; bytes in the database are served by any of them. Nothing is written to disk.
//!
//! Callers (the processor, the web UI) hand the bytes to [`Store::stage_uploads`], record them
//! with [`Tx::create_upload`](crate::Tx::create_upload) and read them back with
//! [`Tx::upload_content`](crate::Tx::upload_content), whatever the backend.

use std::path::{Component, Path, PathBuf};

use crate::files::PendingFiles;
use crate::{Backend, Store, StoreError, Tx};

/// The bytes of a message's uploads, ready before the transaction that records them. Those no
/// transaction takes (a refused message, a patch that became a commit) are dropped with it:
/// their files removed, their bytes freed.
#[derive(Default)]
pub struct StagedUploads {
    /// The upload directory the files were written under (SQLite).
    directory: PathBuf,
    /// SQLite: the files, written and synced.
    files: PendingFiles,
    /// PostgreSQL: `(relative path, bytes)`, inserted by the transaction that takes them.
    held: Vec<(String, Vec<u8>)>,
}

/// Names and sizes only: the bytes of a message's attachments do not belong in a log line.
impl std::fmt::Debug for StagedUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held: Vec<(&str, usize)> = self
            .held
            .iter()
            .map(|(relative, content)| (relative.as_str(), content.len()))
            .collect();
        f.debug_struct("StagedUploads")
            .field("directory", &self.directory)
            .field("files", &self.files.len())
            .field("held", &held)
            .finish()
    }
}

impl StagedUploads {
    /// How many uploads are staged and not yet recorded.
    pub fn len(&self) -> usize {
        self.files.len() + self.held.len()
    }

    /// Whether every staged upload has been recorded (or none was staged).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a store keeps the bytes of uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UploadPlace {
    /// Files under the instance's upload directory.
    Files,
    /// `upload_contents` rows.
    Database,
}

impl UploadPlace {
    /// The one decision: a database that several instances may share keeps the bytes itself.
    fn of(backend: Backend) -> UploadPlace {
        match backend {
            Backend::Sqlite => UploadPlace::Files,
            Backend::Postgres => UploadPlace::Database,
        }
    }
}

/// `relative` if it names a path strictly below the upload directory (no `..`, no root, not
/// empty): the store builds paths from it.
fn checked(relative: &str) -> Option<&Path> {
    let path = Path::new(relative);
    let mut components = path.components().peekable();
    components.peek()?;
    components
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(path)
}

impl Store {
    /// Stages the bytes of uploads about to be recorded, each under its relative path
    /// (`<secret>/<file name>`, the [`NewUpload::relative_path`](crate::NewUpload) the
    /// transaction will record). On SQLite they are written under `directory` and made durable
    /// together; on PostgreSQL they are kept in memory until [`Tx::create_upload`] inserts them
    /// (their sizes are capped by the caller's attachment limits). A path that is absolute,
    /// empty or climbs out of `directory` is refused.
    pub async fn stage_uploads(
        &self,
        directory: &Path,
        uploads: &[(String, &[u8])],
    ) -> Result<StagedUploads, StoreError> {
        let mut staged = StagedUploads {
            directory: directory.to_owned(),
            ..StagedUploads::default()
        };
        for (relative, content) in uploads {
            let Some(path) = checked(relative) else {
                return Err(StoreError::Invalid(format!("upload path {relative:?}")));
            };
            match UploadPlace::of(self.backend()) {
                UploadPlace::Files => staged.files.create(&directory.join(path), content).await?,
                UploadPlace::Database => staged.held.push((relative.clone(), content.to_vec())),
            }
        }
        staged.files.sync().await?;
        Ok(staged)
    }
}

impl Tx {
    /// Makes the staged bytes of `relative` part of this transaction for the upload `upload_id`
    /// just inserted: the file is kept if the transaction commits, or the bytes are inserted.
    /// An error if they were not staged (or were taken already).
    pub(crate) async fn take_staged_upload(
        &mut self,
        staged: &mut StagedUploads,
        relative: &str,
        upload_id: i64,
    ) -> Result<(), StoreError> {
        if let Some(index) = staged.held.iter().position(|(r, _)| r == relative) {
            let (_, content) = staged.held.swap_remove(index);
            crate::tx::execute!(
                self,
                "INSERT INTO upload_contents (upload_id, content) VALUES ($1, $2)",
                upload_id,
                &content,
            )?;
            return Ok(());
        }
        let path = checked(relative).map(|path| staged.directory.join(path));
        match path {
            Some(path) if staged.files.hand_over(&path, &mut self.pending_files) => Ok(()),
            _ => Err(StoreError::NotFound("staged upload")),
        }
    }
}

/// The file `<directory>/<relative>` of an upload that has no `upload_contents` row, if it is
/// there. `None` for a missing file, or a stored path that is not below the directory.
pub(crate) async fn read_upload_file(
    directory: &Path,
    relative: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(relative) = checked(relative) else {
        return Ok(None);
    };
    let path = directory.join(relative);
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::files::failed(&path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_below_the_directory_are_accepted() {
        assert_eq!(checked("abc/a.png"), Some(Path::new("abc/a.png")));
        for bad in ["", "/etc/passwd", "../a", "a/../../b", "./a"] {
            assert_eq!(checked(bad), None, "{bad:?}");
        }
    }
}
