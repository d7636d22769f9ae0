//! Large raw messages as files beside a SQLite database, instead of BLOBs inside it.
//!
//! In the database, a 1 MB message was written three times (into the write-ahead log, then by
//! the checkpoint into the database file, which also reads the log back) and checksummed page
//! by page; that was most of the work of taking in large mail. As a file it is written once.
//! SQLite's own measurements (<https://www.sqlite.org/intern-v-extern-blob.html>) put the
//! point where separate files win at about 100 KB with 4 KiB pages; [`EXTERNAL_FROM_BYTES`]
//! is just above it, so ordinary mail still costs one commit and no extra file.
//!
//! Durability is the database's: the file is written with the transaction that stores the
//! message and synced before its `COMMIT` (see [`crate::files`]).
//!
//! PostgreSQL keeps every message in the database: several instances on several hosts share it.

use std::path::{Path, PathBuf};

use crate::StoreError;
use crate::files::{PendingFiles, failed};

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
        &self,
        raw: &[u8],
        pending: &mut PendingFiles,
    ) -> Result<String, StoreError> {
        let name = format!("{}.eml", crate::ids::random_file_stem()?);
        pending.create(&self.path(&name)?, raw).await?;
        Ok(name)
    }

    /// The bytes of the file `name`.
    pub(crate) async fn read(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(name)?;
        tokio::fs::read(&path).await.map_err(failed(&path))
    }

    /// The first `max_bytes` of the file `name` (all of it when shorter).
    pub(crate) async fn read_head(
        &self,
        name: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, StoreError> {
        use tokio::io::AsyncReadExt as _;
        let path = self.path(name)?;
        let file = tokio::fs::File::open(&path).await.map_err(failed(&path))?;
        let mut head = Vec::with_capacity(max_bytes.min(64 * 1024));
        file.take(max_bytes as u64)
            .read_to_end(&mut head)
            .await
            .map_err(failed(&path))?;
        Ok(head)
    }
}
