//! Large raw messages as files beside a SQLite database, instead of BLOBs inside it.
//!
//! In the database, a 1 MB message was written three times (into the write-ahead log, then by
//! the checkpoint into the database file, which also reads the log back) and checksummed page
//! by page; that was most of the work of taking in large mail. As a file it is written once.
//! SQLite's own measurements (<https://www.sqlite.org/intern-v-extern-blob.html>) put the
//! point where separate files win at about 100 KB with 4 KiB pages; [`EXTERNAL_FROM_BYTES`]
//! is just above it, so ordinary mail still costs one commit and no extra file.
//!
//! Durability is the database's: a transaction that wrote a file syncs it, and the directory,
//! before its `COMMIT` ([`PendingFiles::sync`]), so a committed row never names a file that a
//! crash could lose. A transaction that ends without committing removes its files. A crash
//! between the file and the commit leaves a file no row names; it is never read and is
//! harmless.
//!
//! PostgreSQL keeps every message in the database: several instances on several hosts share it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::StoreError;

/// Raw messages from this size up are kept as files (SQLite on a file only).
pub const EXTERNAL_FROM_BYTES: usize = 128 * 1024;

/// The directory of raw message files of one SQLite database: `<database file>-raw`, beside
/// the `-wal` and `-shm` files SQLite keeps there, so that it is found from the database alone.
#[derive(Debug)]
pub(crate) struct RawFiles {
    directory: PathBuf,
}

impl RawFiles {
    /// The directory beside `database`, created if missing.
    pub(crate) fn beside(database: &Path) -> Result<RawFiles, StoreError> {
        let mut name = database.file_name().unwrap_or_default().to_owned();
        name.push("-raw");
        let directory = database.with_file_name(name);
        std::fs::create_dir_all(&directory).map_err(failed(&directory))?;
        Ok(RawFiles { directory })
    }

    /// The path of the file `name`. Names come from the database, so only the shape this
    /// module writes is accepted: a value edited in by hand cannot point outside the directory.
    fn path(&self, name: &str) -> Result<PathBuf, StoreError> {
        let well_formed = name.strip_suffix(".eml").is_some_and(|stem| {
            stem.len() == 32 && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if !well_formed {
            return Err(StoreError::Corrupt {
                column: "inbound_raw.file",
                value: name.to_owned(),
            });
        }
        Ok(self.directory.join(name))
    }

    /// Writes `raw` to a new file, registered in `pending`; returns the file's name.
    pub(crate) async fn write(
        self: &Arc<Self>,
        raw: &[u8],
        pending: &mut PendingFiles,
    ) -> Result<String, StoreError> {
        let name = format!("{}.eml", crate::ids::random_file_stem()?);
        let path = self.path(&name)?;
        // The copy lets a blocking thread write while the runtime goes on; it costs a small
        // fraction of the write itself.
        let bytes = raw.to_vec();
        let written = path.clone();
        let file = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut file = std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&written)?;
            file.write_all(&bytes)?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|join| std::io::Error::other(join.to_string()))
        .and_then(|result| result)
        .map_err(failed(&path))?;
        pending.directory = Some(self.clone());
        pending.files.push((path, Arc::new(file)));
        Ok(name)
    }

    /// The bytes of the file `name`.
    pub(crate) async fn read(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(name)?;
        tokio::fs::read(&path).await.map_err(failed(&path))
    }
}

/// The error for an operation on `path` that the operating system refused.
fn failed(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::RawFile {
        file: path.display().to_string(),
        source,
    }
}

/// The files one transaction wrote: synced before it commits, removed if it never does.
#[derive(Debug, Default)]
pub(crate) struct PendingFiles {
    directory: Option<Arc<RawFiles>>,
    files: Vec<(PathBuf, Arc<std::fs::File>)>,
}

impl PendingFiles {
    /// Makes the files and their names durable. The files are synced concurrently, so the
    /// file system can put them in one journal commit.
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        let Some(raw_files) = &self.directory else {
            return Ok(());
        };
        let syncs: Vec<_> = self
            .files
            .iter()
            .map(|(path, file)| {
                let file = file.clone();
                (path, tokio::task::spawn_blocking(move || file.sync_all()))
            })
            .collect();
        for (path, sync) in syncs {
            sync.await
                .map_err(|join| std::io::Error::other(join.to_string()))
                .and_then(|result| result)
                .map_err(failed(path))?;
        }
        let directory = raw_files.directory.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&directory)?.sync_all())
            .await
            .map_err(|join| std::io::Error::other(join.to_string()))
            .and_then(|result| result)
            .map_err(failed(&raw_files.directory))
    }

    /// The transaction committed (or may have): the files belong to its rows now.
    pub(crate) fn keep(mut self) {
        self.files.clear();
    }
}

impl Drop for PendingFiles {
    fn drop(&mut self) {
        for (path, _) in self.files.drain(..) {
            // Best effort: a file left behind is never read (no row names it).
            let _ = std::fs::remove_file(path);
        }
    }
}
