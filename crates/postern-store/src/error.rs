//! The store's one error type, and the temporary/permanent split the callers act on.

use std::borrow::Cow;

/// Everything a store operation can fail with.
///
/// The caller needs two answers from it: may I try again later ([`StoreError::is_temporary`]:
/// the database is down, busy or out of resources), and did I try to create something that already
/// exists ([`StoreError::is_unique_violation`]). Everything else is a permanent failure that
/// retrying will not fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint refused the write (a taken username, email, full path, token …).
    #[error("unique constraint violated ({constraint}): {source}")]
    UniqueViolation {
        /// The constraint's name (PostgreSQL) or the `table.column` list from SQLite's
        /// message. Informational: the two backends name constraints differently.
        constraint: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// A foreign key refused the write (e.g. an issue for a project that does not exist).
    #[error("foreign key violated: {0}")]
    ForeignKeyViolation(#[source] sqlx::Error),

    /// Any other error from the database or its driver. Whether it is temporary depends on the
    /// cause; see [`StoreError::is_temporary`].
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),

    /// Bringing the schema up to date failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// The database URL names no backend this crate supports.
    #[error("unsupported database URL (expected sqlite:… or postgres://…): {0:?}")]
    UnsupportedUrl(String),

    /// An operation needed a row that does not exist, e.g. updating an unknown issue.
    #[error("{0} not found")]
    NotFound(&'static str),

    /// The caller passed a value the store cannot hold (e.g. a malformed Service Desk key).
    #[error("invalid value: {0}")]
    Invalid(String),

    /// A stored value could not be understood, e.g. an unknown state name in a text column.
    /// Means the database was edited by hand or by a newer postern.
    #[error("unexpected value {value:?} in column {column}")]
    Corrupt {
        /// The column the value came from.
        column: &'static str,
        /// The value as stored.
        value: String,
    },

    /// A file kept with the database (a large raw message, an attachment) could not be
    /// created, synced or read. Temporary (a full or failing disk may recover), except a file
    /// that is missing.
    #[error("file {file}: {source}")]
    File {
        /// The file's path.
        file: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The key that seals incoming-email tokens is unusable or does not open them (a database
    /// restored without its key file). The message names the key file, never the key.
    #[error("{0}")]
    TokenKey(String),

    /// The operating system's random number generator failed (tokens and keys need it).
    #[error("random number generator failed: {0}")]
    Random(String),
}

/// SQLite primary result codes that go away by themselves (busy, locked, out of memory, I/O,
/// disk full, cannot open, file-lock protocol). Extended codes carry the primary code in the
/// low byte.
const SQLITE_TEMPORARY: [i64; 7] = [5, 6, 7, 10, 13, 14, 15];

impl StoreError {
    /// Whether the same operation may succeed later without anyone changing the request:
    /// the server is unreachable or shutting down, the pool is exhausted, the database is busy,
    /// locked or out of resources, or a serialization failure/deadlock asks for a retry.
    ///
    /// Constraint violations, bad input, corrupt rows and migration mismatches are permanent.
    pub fn is_temporary(&self) -> bool {
        match self {
            StoreError::Database(e) => sqlx_is_temporary(e),
            StoreError::Migrate(e) => match e {
                sqlx::migrate::MigrateError::Execute(inner)
                | sqlx::migrate::MigrateError::ExecuteMigration(inner, _) => {
                    sqlx_is_temporary(inner)
                }
                _ => false,
            },
            StoreError::Random(_) => true,
            StoreError::File { source, .. } => io_is_temporary(source),
            StoreError::UniqueViolation { .. }
            | StoreError::ForeignKeyViolation(_)
            | StoreError::UnsupportedUrl(_)
            | StoreError::NotFound(_)
            | StoreError::Invalid(_)
            | StoreError::TokenKey(_)
            | StoreError::Corrupt { .. } => false,
        }
    }

    /// Whether a unique constraint refused the write.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::UniqueViolation { .. })
    }
}

/// Whether a file operation may succeed later. A full disk, a quota, too many open files or an
/// interrupted call clear by themselves; a name the file system refuses (too long, invalid), a
/// missing file or unsupported operation never will for the same request.
fn io_is_temporary(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    !matches!(
        error.kind(),
        ErrorKind::NotFound
            | ErrorKind::InvalidFilename
            | ErrorKind::InvalidInput
            | ErrorKind::InvalidData
            | ErrorKind::FileTooLarge
            | ErrorKind::Unsupported
            | ErrorKind::IsADirectory
            | ErrorKind::NotADirectory
    )
}

fn sqlx_is_temporary(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // A protocol error means the connection died mid-message (e.g. the server went away).
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or(Cow::Borrowed(""));
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                pg_code_is_temporary(&code)
            } else {
                code.parse::<i64>()
                    .is_ok_and(|c| SQLITE_TEMPORARY.contains(&(c & 0xff)))
            }
        }
        sqlx::Error::Migrate(m) => matches!(
            m.as_ref(),
            sqlx::migrate::MigrateError::Execute(inner) if sqlx_is_temporary(inner)
        ),
        _ => false,
    }
}

/// SQLSTATE classes and codes that mean "the server cannot do this now", not "this is wrong".
fn pg_code_is_temporary(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || code.starts_with("58") // system error (I/O)
        || matches!(
            code,
            "40001" // serialization_failure
                | "40P01" // deadlock_detected
                | "55P03" // lock_not_available
                | "57014" // query_canceled (statement timeout)
                | "57P01" // admin_shutdown
                | "57P02" // crash_shutdown
                | "57P03" // cannot_connect_now (starting up / shutting down)
                | "57P05" // idle_session_timeout
        )
}

/// A name none of a stored enum's variants carries (`"...".parse::<InboundState>()`), as the
/// store reports any invalid value.
impl From<postern_vocab::named::UnknownName> for StoreError {
    fn from(e: postern_vocab::named::UnknownName) -> Self {
        StoreError::Invalid(e.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    let constraint = db
                        .constraint()
                        .map(str::to_owned)
                        .unwrap_or_else(|| sqlite_constraint(db.message()));
                    return StoreError::UniqueViolation {
                        constraint,
                        source: e,
                    };
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => {
                    return StoreError::ForeignKeyViolation(e);
                }
                _ => {}
            }
        }
        StoreError::Database(e)
    }
}

/// SQLite reports no constraint name, only "UNIQUE constraint failed: users.username_lower".
fn sqlite_constraint(message: &str) -> String {
    message
        .split_once(": ")
        .map_or(message, |(_, cols)| cols)
        .to_owned()
}
