//! `postern admin backup FILE` and `postern admin restore FILE`.
//!
//! SQLite: the backup is `VACUUM INTO`, a consistent copy taken through SQLite while a server
//! keeps writing (WAL readers never block the writer). The restore replaces the database file
//! only while no other process has it open, and drops the old write-ahead log with it: a log
//! replayed into another database would corrupt it. PostgreSQL has its own tools; postern names
//! the `pg_dump` / `pg_restore` command instead of wrapping them.
//!
//! The key that seals incoming-email tokens is kept in the data directory, not in the database
//! (a copy of the database alone must reveal no token), so a backup is two files: FILE and
//! FILE.token-key, both 0600. The restore puts the key back when it finds it next to FILE.

use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteLockingMode};

use super::usage_error;
use crate::exit::{self, Failure, TEMPORARY};
use crate::setup::Setup;

/// Appended to a backup's file name for the copy of the token key.
const TOKEN_KEY_SUFFIX: &str = ".token-key";

/// The first bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// `admin backup`
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write (mode 0600: it holds every message).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

/// `admin restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup written by `postern admin backup`.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Replace the existing database (stop `postern serve` first: a running server is refused).
    #[arg(long)]
    force: bool,
}

/// Where the store is: a SQLite file, or a PostgreSQL URL with its password removed.
enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

fn location(setup: &Setup) -> Result<Location, Failure> {
    let url = setup
        .config
        .store
        .as_ref()
        .and_then(|store| store.url.as_ref())
        .map(|url| url.expose().to_owned());
    let Some(url) = url else {
        return Ok(Location::Sqlite(setup.data_dir.join("postern.sqlite3")));
    };
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or(rest);
        if path.is_empty() || path == ":memory:" {
            return Err(usage_error("the store is in memory: nothing to back up"));
        }
        return Ok(Location::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Location::Postgres(without_password(&url)));
    }
    Err(usage_error(
        "unsupported store URL scheme (expected sqlite:… or postgres://…)",
    ))
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`: commands postern prints never
/// carry the password (pg_dump reads it from ~/.pgpass or PGPASSWORD).
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split(':').next().unwrap_or(userinfo);
    format!("{scheme}://{user}@{host}{tail}")
}

/// A path quoted for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Runs `admin backup`.
pub fn backup(setup: &Setup, args: BackupArgs) -> Result<ExitCode, Failure> {
    let database = match location(setup)? {
        Location::Sqlite(path) => path,
        Location::Postgres(url) => {
            return Err(usage_error(format!(
                "the store is PostgreSQL: back it up with `pg_dump --format=custom --file={} {}`, \
                 and keep a copy of {} with it (the key of the incoming-email tokens)",
                shell_quote(&args.file.display().to_string()),
                shell_quote(&url),
                setup.token_key_file().display()
            )));
        }
    };
    if !database.is_file() {
        return Err(usage_error(format!(
            "no database at {}",
            database.display()
        )));
    }
    if args.file.exists() {
        if !args.force {
            return Err(usage_error(format!(
                "{} exists (--force replaces it)",
                args.file.display()
            )));
        }
        std::fs::remove_file(&args.file)
            .map_err(|e| usage_error(format!("cannot replace {}: {e}", args.file.display())))?;
    }
    // An empty file of mode 0600 first: VACUUM INTO accepts an empty file, and the copy of every
    // message is never readable by others, whatever the umask.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.file)
        .map_err(|e| usage_error(format!("cannot create {}: {e}", args.file.display())))?;
    let target = args.file.display().to_string();
    let result = crate::setup::runtime()?.block_on(async {
        let mut connection = SqliteConnectOptions::new()
            .filename(&database)
            .read_only(true)
            .connect()
            .await?;
        sqlx::query("VACUUM INTO ?")
            .bind(&target)
            .execute(&mut connection)
            .await?;
        connection.close().await
    });
    if let Err(e) = result {
        // A half-written backup must not pass for one.
        let _ = std::fs::remove_file(&args.file);
        return Err(Failure::new(
            TEMPORARY,
            anyhow::anyhow!("backup of {} failed: {e}", database.display()),
        ));
    }
    let size = std::fs::metadata(&args.file).map_or(0, |m| m.len());
    let key_note = backup_token_key(setup, &args.file)?;
    exit::print_bytes(
        format!(
            "backed up {} to {} ({size} bytes){key_note}\n",
            database.display(),
            args.file.display()
        )
        .as_bytes(),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `admin restore`.
pub fn restore(setup: &Setup, args: RestoreArgs) -> Result<ExitCode, Failure> {
    let database = match location(setup)? {
        Location::Sqlite(path) => path,
        Location::Postgres(url) => {
            return Err(usage_error(format!(
                "the store is PostgreSQL: restore it with `pg_restore --clean --if-exists --dbname={} {}`",
                shell_quote(&url),
                shell_quote(&args.file.display().to_string())
            )));
        }
    };
    let mut magic = Vec::with_capacity(SQLITE_MAGIC.len());
    std::fs::File::open(&args.file)
        .and_then(|file| file.take(SQLITE_MAGIC.len() as u64).read_to_end(&mut magic))
        .map_err(|e| usage_error(format!("cannot read {}: {e}", args.file.display())))?;
    if magic != SQLITE_MAGIC {
        return Err(usage_error(format!(
            "{} is not a SQLite database",
            args.file.display()
        )));
    }
    if database.exists() && !args.force {
        return Err(usage_error(format!(
            "{} exists (--force replaces it; stop postern serve first)",
            database.display()
        )));
    }
    if let Some(parent) = database.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| usage_error(format!("cannot create {}: {e}", parent.display())))?;
    }
    // The copy goes next to the database, then a rename puts it in place in one step.
    let staged = sibling(&database, ".restore");
    let _ = std::fs::remove_file(&staged);
    copy_private(&args.file, &staged)?;
    let runtime = crate::setup::runtime()?;
    let checked = runtime.block_on(async {
        let mut connection = SqliteConnectOptions::new()
            .filename(&staged)
            .read_only(true)
            .connect()
            .await?;
        let verdict: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&mut connection)
            .await?;
        connection.close().await?;
        Ok::<String, sqlx::Error>(verdict)
    });
    match checked {
        Ok(verdict) if verdict == "ok" => {}
        Ok(verdict) => {
            let _ = std::fs::remove_file(&staged);
            return Err(usage_error(format!(
                "{} is damaged: {verdict}",
                args.file.display()
            )));
        }
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(usage_error(format!(
                "{} cannot be opened: {e}",
                args.file.display()
            )));
        }
    }
    let swapped = if database.exists() {
        runtime.block_on(swap_exclusively(&database, &staged))
    } else {
        std::fs::rename(&staged, &database)
            .map_err(|e| usage_error(format!("cannot move the backup into place: {e}")))
    };
    if swapped.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    swapped?;
    let key_note = restore_token_key(setup, &args.file)?;
    exit::print_bytes(
        format!(
            "restored {} from {}{key_note}\n",
            database.display(),
            args.file.display()
        )
        .as_bytes(),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Replaces `database` by `staged` while holding SQLite's exclusive lock on it, so a running
/// server (which keeps connections open) makes this fail instead of losing its writes.
async fn swap_exclusively(database: &Path, staged: &Path) -> Result<(), Failure> {
    let busy = |e: sqlx::Error| {
        usage_error(format!(
            "{} is in use (stop postern serve first): {e}",
            database.display()
        ))
    };
    let mut connection: SqliteConnection = SqliteConnectOptions::new()
        .filename(database)
        .journal_mode(SqliteJournalMode::Wal)
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(std::time::Duration::ZERO)
        .connect()
        .await
        .map_err(busy)?;
    // The write lock, then everything in the log written back and the log emptied.
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut connection)
        .await
        .map_err(busy)?;
    sqlx::query("COMMIT")
        .execute(&mut connection)
        .await
        .map_err(busy)?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut connection)
        .await
        .map_err(busy)?;
    let renamed = std::fs::rename(staged, database);
    let _ = connection.close().await;
    renamed.map_err(|e| usage_error(format!("cannot move the backup into place: {e}")))?;
    // The old database's log and shared memory must not be read as the new one's.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(sibling(database, suffix));
    }
    Ok(())
}

/// Copies the data directory's token key to FILE.token-key (replacing an older one); returns
/// what to add to the report.
fn backup_token_key(setup: &Setup, file: &Path) -> Result<String, Failure> {
    let key = setup.token_key_file();
    let copy = sibling(file, TOKEN_KEY_SUFFIX);
    if !key.is_file() {
        return Ok(format!(
            "; no token key at {} (no incoming-email token sealed yet)",
            key.display()
        ));
    }
    let _ = std::fs::remove_file(&copy);
    copy_private(&key, &copy)?;
    Ok(format!(
        " and the token key to {} (keep both: without it, users' incoming-email addresses \
         cannot be shown or used)",
        copy.display()
    ))
}

/// Puts FILE.token-key back as the data directory's token key, if the backup has one; returns
/// what to add to the report.
fn restore_token_key(setup: &Setup, file: &Path) -> Result<String, Failure> {
    let copy = sibling(file, TOKEN_KEY_SUFFIX);
    let key = setup.token_key_file();
    if !copy.is_file() {
        return Ok(format!(
            "; no {} next to it: the data directory's key {} must be the one that sealed its \
             incoming-email tokens",
            copy.display(),
            key.display()
        ));
    }
    if let Some(parent) = key.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| usage_error(format!("cannot create {}: {e}", parent.display())))?;
    }
    // Staged and renamed: a crash leaves the old key or the new one, never half of one.
    let staged = sibling(&key, ".restore");
    let _ = std::fs::remove_file(&staged);
    copy_private(&copy, &staged)?;
    std::fs::rename(&staged, &key).map_err(|e| {
        let _ = std::fs::remove_file(&staged);
        usage_error(format!("cannot put the token key in place: {e}"))
    })?;
    Ok(format!(" and the token key to {}", key.display()))
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Copies `from` to a new file `to` of mode 0600.
fn copy_private(from: &Path, to: &Path) -> Result<(), Failure> {
    let failed = |e: std::io::Error| usage_error(format!("cannot copy {}: {e}", from.display()));
    let mut source = std::fs::File::open(from).map_err(failed)?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(failed)?;
    std::io::copy(&mut source, &mut target).map_err(failed)?;
    target.sync_all().map_err(failed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_urls_lose_the_password() {
        assert_eq!(
            without_password("postgres://postern:s3cr:et@db.example:5432/postern?sslmode=require"),
            "postgres://postern@db.example:5432/postern?sslmode=require"
        );
        assert_eq!(without_password("postgres://host/db"), "postgres://host/db");
    }
}
