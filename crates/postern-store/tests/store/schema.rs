//! The two migration folders must describe the same tables and columns, but for the search
//! index (migration 0016), which is an FTS5 table and its shadow tables on SQLite and a
//! `tsvector` table on PostgreSQL: `search.rs` compares what it answers instead.

use std::collections::BTreeSet;

use sqlx::Connection as _;

use crate::support::TestDb;

#[tokio::test]
async fn sqlite_and_postgres_schemas_have_the_same_columns() {
    let Some(pg) = TestDb::postgres().await else {
        return;
    };
    let lite = TestDb::sqlite().await;

    let mut conn = sqlx::SqliteConnection::connect(&lite.url)
        .await
        .expect("sqlite");
    let sqlite: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'
           AND m.name NOT LIKE 'issue_search%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("sqlite catalog")
    .into_iter()
    .collect();

    let mut conn = sqlx::PgConnection::connect(&pg.url)
        .await
        .expect("postgres");
    let postgres: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'
           AND table_name NOT LIKE 'issue_search%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("postgres catalog")
    .into_iter()
    .collect();

    assert!(
        sqlite.len() > 100,
        "catalog query found the tables: {}",
        sqlite.len()
    );
    assert_eq!(
        sqlite.symmetric_difference(&postgres).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "columns present in only one schema"
    );
}
