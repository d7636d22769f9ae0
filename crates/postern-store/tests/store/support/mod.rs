//! Test support: a fresh database per test on each backend, and the `both!` macro that runs one
//! test body against SQLite and PostgreSQL.

use postern_store::{NewProject, NewUser, Project, StoreError, Tx, User, Visibility};
pub use postern_testkit::TestDb;

/// Runs one test body on SQLite and on PostgreSQL (see `postern_testkit::both!`); bodies here
/// return `Result<(), StoreError>`.
macro_rules! both {
    ($name:ident, |$db:ident| $body:block) => {
        postern_testkit::both!($name, |$db| -> postern_store::StoreError $body);
    };
}
pub(crate) use both;

/// A user `name` with a verified primary address `name@example.com`.
pub async fn user(tx: &mut Tx, name: &str) -> Result<User, StoreError> {
    tx.create_user(NewUser::new(name, name, &format!("{name}@example.com")))
        .await
}

/// A private project `group/<path>`.
pub async fn project(tx: &mut Tx, path: &str) -> Result<Project, StoreError> {
    tx.create_project(NewProject {
        namespace_path: "group".to_owned(),
        path: path.to_owned(),
        name: path.to_owned(),
        visibility: Visibility::Private,
        default_branch: "main".to_owned(),
    })
    .await
}

/// The database file of a SQLite test database (its URL without scheme and options).
pub fn sqlite_file(db: &TestDb) -> String {
    db.url
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .to_owned()
}
