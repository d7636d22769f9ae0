//! Files written as part of a transaction: large raw messages ([`crate::raw_files`]) and, on
//! SQLite, attachments ([`crate::upload_bytes`], [`Tx::write_file`]).
//!
//! A row that names a file must never outlive the file. So a transaction that wrote files
//! syncs them, and every directory whose entries changed, before its `COMMIT`
//! ([`PendingFiles::sync`]); a crash after the commit finds them on disk. A transaction that
//! ends without committing removes its files (and the directories it created, when empty). A
//! crash between the files and the commit leaves files no row names; nothing reads them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{StoreError, Tx};

/// The error for an operation on `path` that the operating system refused.
pub(crate) fn failed(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::File {
        file: path.display().to_string(),
        source,
    }
}

/// Starts blocking file work off the runtime's threads; [`finished`] waits for it.
fn start<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> tokio::task::JoinHandle<std::io::Result<T>> {
    tokio::task::spawn_blocking(work)
}

/// The result of work begun with [`start`]; a panic in it is an I/O error.
async fn finished<T>(work: tokio::task::JoinHandle<std::io::Result<T>>) -> std::io::Result<T> {
    work.await
        .map_err(|join| std::io::Error::other(join.to_string()))
        .and_then(|result| result)
}

/// One file written for a transaction.
#[derive(Debug)]
struct PendingFile {
    path: PathBuf,
    file: Arc<std::fs::File>,
    /// Directories created for it, outermost first; removed with it when empty.
    created_directories: Vec<PathBuf>,
    /// Already durable, with its directory entries (a staged file).
    synced: bool,
}

/// The files one transaction wrote: synced before it commits, removed if it never does.
#[derive(Debug, Default)]
pub(crate) struct PendingFiles {
    files: Vec<PendingFile>,
    /// Directories whose entries changed (a file or directory was created in them) and that
    /// are not synced yet.
    changed_directories: Vec<PathBuf>,
}

impl PendingFiles {
    /// Creates `path` (it must not exist) with `content`, and any missing directories above it.
    pub(crate) async fn create(&mut self, path: &Path, content: &[u8]) -> Result<(), StoreError> {
        // The copy lets a blocking thread write while the runtime goes on; it costs a small
        // fraction of the write itself.
        let bytes = content.to_vec();
        let target = path.to_owned();
        let (file, created) = finished(start(move || {
            use std::io::Write as _;
            let mut created = Vec::new();
            if let Some(parent) = target.parent() {
                let mut missing = parent;
                while !missing.as_os_str().is_empty() && !missing.exists() {
                    created.push(missing.to_owned());
                    missing = missing.parent().unwrap_or(Path::new(""));
                }
                std::fs::create_dir_all(parent)?;
            }
            created.reverse();
            let mut file = std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&target)?;
            file.write_all(&bytes)?;
            Ok((file, created))
        }))
        .await
        .map_err(failed(path))?;
        let parent = path.parent().unwrap_or(Path::new(".")).to_owned();
        for directory in created.iter().filter_map(|d| d.parent()).chain([&*parent]) {
            let directory = if directory.as_os_str().is_empty() {
                Path::new(".")
            } else {
                directory
            };
            if !self.changed_directories.iter().any(|d| d == directory) {
                self.changed_directories.push(directory.to_owned());
            }
        }
        self.files.push(PendingFile {
            path: path.to_owned(),
            file: Arc::new(file),
            created_directories: created,
            synced: false,
        });
        Ok(())
    }

    /// Makes the files and their names durable. Everything is synced concurrently, so the file
    /// system can put it in one journal commit.
    pub(crate) async fn sync(&mut self) -> Result<(), StoreError> {
        let files = self.files.iter().filter(|f| !f.synced).map(|pending| {
            let file = pending.file.clone();
            (&pending.path, start(move || file.sync_all()))
        });
        let directories = self.changed_directories.iter().map(|directory| {
            let open = directory.clone();
            (
                directory,
                start(move || std::fs::File::open(open)?.sync_all()),
            )
        });
        // All started before the first is awaited.
        let syncs: Vec<_> = files.chain(directories).collect();
        for (path, sync) in syncs {
            finished(sync).await.map_err(failed(path))?;
        }
        for pending in &mut self.files {
            pending.synced = true;
        }
        self.changed_directories.clear();
        Ok(())
    }

    /// The transaction committed (or may have): the files belong to its rows now.
    pub(crate) fn keep(mut self) {
        self.files.clear();
    }

    /// Takes the file at `path` out of this set, if it is there.
    fn take(&mut self, path: &Path) -> Option<PendingFile> {
        let index = self.files.iter().position(|f| f.path == path)?;
        Some(self.files.swap_remove(index))
    }

    /// How many files the set holds.
    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    /// Moves the file at `path` from this set into `into` (a transaction's set: kept if it
    /// commits, removed if not). `false` if it is not here.
    pub(crate) fn hand_over(&mut self, path: &Path, into: &mut PendingFiles) -> bool {
        match self.take(path) {
            Some(file) => {
                into.files.push(file);
                true
            }
            None => false,
        }
    }
}

impl Drop for PendingFiles {
    fn drop(&mut self) {
        // Best effort: a file left behind is never read (no row names it).
        for pending in self.files.drain(..) {
            let _ = std::fs::remove_file(&pending.path);
            for directory in pending.created_directories.iter().rev() {
                let _ = std::fs::remove_dir(directory);
            }
        }
    }
}

/// Files made durable before the transaction that will name them: the slow part of storing
/// attachments (writing and syncing them) done without holding the store's write slot. A file
/// the transaction takes with [`Tx::adopt_staged_file`] is its own from then on (kept if it
/// commits, removed if not); every file still here is removed when this is dropped, so the
/// files of a message that was refused, or whose transaction failed, do not stay behind.
#[derive(Debug, Default)]
pub struct StagedFiles {
    files: PendingFiles,
}

impl StagedFiles {
    /// An empty set.
    pub fn new() -> StagedFiles {
        StagedFiles::default()
    }

    /// Writes each `(path, content)` (no path may exist yet), with missing directories, and
    /// makes all of them durable together.
    pub async fn write_all(&mut self, files: &[(PathBuf, &[u8])]) -> Result<(), StoreError> {
        for (path, content) in files {
            self.files.create(path, content).await?;
        }
        self.files.sync().await
    }

    /// How many files are staged and not yet adopted.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether every staged file has been adopted (or none was staged).
    pub fn is_empty(&self) -> bool {
        self.files.files.is_empty()
    }
}

impl Tx {
    /// Creates the file `path` with `content` as part of this transaction, with any missing
    /// directories. It is durable, together with its directory entries, before the transaction
    /// commits, and removed if the transaction does not commit. Fails if `path` exists.
    ///
    /// The caller builds `path` (the store does not know what the files are); an attachment is
    /// written here in the transaction that records the upload naming it.
    pub async fn write_file(&mut self, path: &Path, content: &[u8]) -> Result<(), StoreError> {
        self.pending_files.create(path, content).await
    }

    /// Makes the staged file at `path` part of this transaction: kept if it commits, removed
    /// if it does not. `false` if `path` is not in `staged`.
    pub fn adopt_staged_file(&mut self, staged: &mut StagedFiles, path: &Path) -> bool {
        staged.files.hand_over(path, &mut self.pending_files)
    }
}
