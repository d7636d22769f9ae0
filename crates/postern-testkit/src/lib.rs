//! Test support for postern's crates: real servers started privately for the tests, and a fresh
//! database per test.
//!
//! - [`pg`] starts one private PostgreSQL server per test binary (Debian's binaries, loopback
//!   only, a temporary directory, stopped when the test process ends).
//! - [`mailserver`] starts one private Dovecot (IMAP, LMTP) and Postfix (SMTP) per test binary
//!   the same way (Debian's packages driven by `scripts/mailserver.sh`), and [`imap`] is the
//!   small IMAP client tests read delivered mail back with.
//! - [`graph`] is a stand-in for Microsoft Graph and its Azure AD token endpoint (the one
//!   service besides GitLab's internal API that cannot run here), checking what they check;
//!   [`oauth`] stands in for Google's and Microsoft's OAuth token, device and (for Dovecot)
//!   introspection endpoints the same way.
//! - [`gitlab`] is a local stand-in for GitLab's internal mail_room API that verifies the JWT
//!   as GitLab does, and [`redis`] starts a private Redis server (stoppable, restartable).
//! - [`nginx`] starts a private nginx as an HTTPS reverse proxy, with a certificate from
//!   [`certs`] (a private CA made with `openssl`).
//! - [`dns`] starts a private authoritative DNS server (Knot) serving a zone written by the
//!   test: DKIM keys, SPF and DMARC records for the sender-authentication tests; [`dkim`]
//!   makes the keys and signs messages with them.
//! - [`fixtures`] reads `testdata/` and fills in GitLab's fixture placeholders.
//! - [`TestDb`] gives each test its own migrated database: a SQLite file in a temporary
//!   directory, or a new database on the shared PostgreSQL server.
//!
//! Only test code depends on this crate; it is never part of the `postern` binary.
#![deny(missing_docs)]

pub mod certs;
pub mod chromium;
pub mod dkim;
pub mod dns;
pub mod fixtures;
pub mod gitlab;
pub mod graph;
pub mod imap;
pub mod mailserver;
pub mod nginx;
pub mod oauth;
pub mod pg;
mod reaper;
pub mod redis;

/// The error type of test bodies run by [`both!`]: anything, so bodies can use `?`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs one async test body on SQLite and on PostgreSQL, as two `#[test]`s named
/// `<name>::sqlite` and `<name>::postgres`. The body gets a fresh [`TestDb`] and returns
/// `Result<(), BoxError>` (or the error type given after `->`) so it can use `?`. The calling crate needs `tokio` (with
/// `rt-multi-thread` and `macros`) as a dev-dependency.
#[macro_export]
macro_rules! both {
    ($name:ident, |$db:ident| $body:block) => {
        $crate::both!($name, |$db| -> $crate::BoxError $body);
    };
    ($name:ident, |$db:ident| -> $error:ty $body:block) => {
        mod $name {
            #[allow(unused_imports, reason = "each test body uses a different subset")]
            use super::*;

            async fn body($db: $crate::TestDb) -> Result<(), $error> {
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body($crate::TestDb::sqlite().await)
                    .await
                    .expect("test body on SQLite");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::TestDb::postgres().await {
                    body(db).await.expect("test body on PostgreSQL");
                }
            }
        }
    };
}

use postern_store::{Store, StoreOptions, TokenKey, Tx};

/// A random in-memory key for incoming-email tokens, as the binary loads from its data
/// directory: test stores seal tokens the way production does.
pub fn test_token_key() -> std::sync::Arc<TokenKey> {
    std::sync::Arc::new(TokenKey::random("test token key").expect("random token key"))
}

/// A fresh, migrated database for one test.
pub struct TestDb {
    /// The store under test.
    pub store: Store,
    /// Its URL, to connect a second time.
    pub url: String,
    /// The key its incoming-email tokens are sealed with (pass it when connecting again).
    pub token_key: std::sync::Arc<TokenKey>,
    /// For SQLite: the directory holding the file, removed when the test ends.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A SQLite file in a new temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory for SQLite");
        let url = format!("sqlite://{}/store.db?mode=rwc", dir.path().display());
        let token_key = test_token_key();
        let options = StoreOptions {
            token_key: Some(token_key.clone()),
            ..StoreOptions::default()
        };
        let store = Store::connect_with(&url, &options)
            .await
            .expect("connect to SQLite");
        TestDb {
            store,
            url,
            token_key,
            _dir: Some(dir),
        }
    }

    /// A new database on the shared PostgreSQL server, or `None` with `POSTERN_SKIP_PG=1`.
    pub async fn postgres() -> Option<TestDb> {
        let admin = match pg::shared_admin_url() {
            pg::PgChoice::Skip => {
                eprintln!("POSTERN_SKIP_PG=1: skipping the PostgreSQL half of this test");
                return None;
            }
            pg::PgChoice::Url(url) => url,
        };
        let url = create_database(&admin).await;
        let token_key = test_token_key();
        let options = StoreOptions {
            max_connections: 4,
            token_key: Some(token_key.clone()),
            ..StoreOptions::default()
        };
        let store = Store::connect_with(&url, &options)
            .await
            .expect("connect to the test database");
        Some(TestDb {
            store,
            url,
            token_key,
            _dir: None,
        })
    }

    /// Begins a transaction, panicking on failure (tests only).
    pub async fn tx(&self) -> Tx {
        self.store.begin().await.expect("begin")
    }
}

/// `CREATE DATABASE t_<random>` on the server behind `admin_url`; returns the new database's URL.
pub async fn create_database(admin_url: &str) -> String {
    use sqlx::Connection as _;
    let name = format!(
        "t_{}",
        postern_store::new_upload_secret().expect("random name")
    );
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to the PostgreSQL admin database");
    // The name is 32 random hex digits after a fixed prefix: nothing to inject.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    conn.close().await.ok();
    with_database(admin_url, &name)
}

/// `url` with its database name replaced by `name` (query string kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_the_path() {
        assert_eq!(
            with_database("postgres://u@h:1/postgres", "t_x"),
            "postgres://u@h:1/t_x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t_x"),
            "postgres://u:p@h/t_x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t_x"), "postgres://h/t_x");
    }
}
