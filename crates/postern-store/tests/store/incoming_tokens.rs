//! Incoming-email tokens at rest (migration 0012): the database keeps the token's hash and a
//! sealed copy, never the token; its owner still sees it; a store without the right key can
//! neither show it nor start; tokens stored in plain before 0012 are sealed once, and only by a
//! store that has the key.

use std::sync::Arc;

use postern_store::{Backend, Store, StoreError, StoreOptions, TokenKey};

use crate::support::{TestDb, both, user};

fn keyed(key: &Arc<TokenKey>) -> StoreOptions {
    StoreOptions {
        token_key: Some(key.clone()),
        ..StoreOptions::default()
    }
}

/// Every column of the user's row as text, whatever its type.
async fn row_text(db: &TestDb, user_id: i64) -> Result<String, sqlx::Error> {
    match db.store.backend() {
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await?;
            let text: String =
                sqlx::query_scalar("SELECT row_to_json(u)::text FROM users u WHERE id = $1")
                    .bind(user_id)
                    .fetch_one(&pool)
                    .await?;
            pool.close().await;
            Ok(text)
        }
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await?;
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info('users')")
                    .fetch_all(&pool)
                    .await?;
            let mut text = String::new();
            for column in columns {
                let value: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    // `column` comes from SQLite's own table description.
                    "SELECT CAST(\"{column}\" AS TEXT) FROM users WHERE id = $1"
                )))
                .bind(user_id)
                .fetch_one(&pool)
                .await?;
                text.push_str(&format!("{column}={value:?}\n"));
            }
            pool.close().await;
            Ok(text)
        }
    }
}

both!(token_round_trips_and_is_not_in_the_row, |db| {
    let mut tx = db.tx().await;
    let alice = user(&mut tx, "alice").await?;
    let first = alice.incoming_email_token.clone();
    let second = tx.reset_incoming_email_token(alice.id).await?;
    let bob = user(&mut tx, "bob").await?;
    tx.commit().await?;

    let mut tx = db.tx().await;
    let shown = tx
        .user_by_id(alice.id)
        .await?
        .map(|u| u.incoming_email_token);
    assert_eq!(shown.as_deref(), Some(second.as_str()));
    let found = tx.user_by_incoming_token(&second).await?.map(|u| u.id);
    assert_eq!(found, Some(alice.id));
    assert_eq!(tx.user_by_incoming_token(&first).await?, None, "reset");
    let listed = tx.list_users().await?;
    assert_eq!(listed[1].incoming_email_token, bob.incoming_email_token);
    tx.commit().await?;

    let row = row_text(&db, alice.id)
        .await
        .map_err(StoreError::Database)?;
    let token_text = second.trim_start_matches("glimt-");
    assert!(!row.contains(token_text), "token in the row: {row}");
    assert!(row.contains("incoming_email_token_sealed"));
    // Nothing read from the row works as a token: not the hash, not the sealed text.
    let mut tx = db.tx().await;
    for word in row.split(|c: char| !c.is_ascii_alphanumeric()) {
        if word.len() >= 16 {
            assert_eq!(tx.user_by_incoming_token(word).await?, None, "{word}");
        }
    }
    tx.commit().await
});

both!(a_store_without_the_right_key_shows_no_token, |db| {
    let mut tx = db.tx().await;
    let alice = user(&mut tx, "alice").await?;
    tx.commit().await?;

    let keyless = Store::connect(&db.url).await?;
    let mut tx = keyless.begin().await?;
    let error = tx.user_by_id(alice.id).await.err().map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("without their key")));
    tx.rollback().await?;
    keyless.close().await;

    let other = Arc::new(TokenKey::random("/elsewhere/secrets/token.key")?);
    let error = Store::connect_with(&db.url, &keyed(&other)).await.err();
    let error = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("/elsewhere/secrets/token.key"), "{error}");
    assert!(error.contains("not sealed with the key"), "{error}");
    Ok(())
});

/// What an instance wrote before 0012: a user whose token is stored in plain.
const BEFORE: &str = "INSERT INTO users (username, username_lower, name, incoming_email_token,
                                         created_at, updated_at)
                      VALUES ('u', 'u', 'u', 'glimt-plaintokenfromolddays', 1, 1)";
const PLAIN: &str = "glimt-plaintokenfromolddays";

/// Opens the old database without the key (nothing sealed, nothing lost), then with it
/// (sealed, same token shown and found), then again (nothing left to seal).
async fn check(url: &str, backend: Backend) -> Result<(), Box<dyn std::error::Error>> {
    let keyless = Store::connect(url).await?;
    let mut tx = keyless.begin().await?;
    let found = tx.user_by_incoming_token(PLAIN).await?;
    assert_eq!(
        found.map(|u| u.incoming_email_token).as_deref(),
        Some(PLAIN)
    );
    tx.commit().await?;
    keyless.close().await;

    let key = postern_testkit::test_token_key();
    for _ in 0..2 {
        let store = Store::connect_with(url, &keyed(&key)).await?;
        let mut tx = store.begin().await?;
        let found = tx.user_by_incoming_token(PLAIN).await?;
        assert_eq!(
            found.map(|u| u.incoming_email_token).as_deref(),
            Some(PLAIN)
        );
        assert_eq!(tx.seal_stored_incoming_tokens(0, 10).await?, None);
        tx.commit().await?;
        store.close().await;
    }
    let stored: (String, Option<String>) = match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await?;
            sqlx::query_as(
                "SELECT incoming_email_token_hash, incoming_email_token_sealed FROM users",
            )
            .fetch_one(&pool)
            .await?
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await?;
            sqlx::query_as(
                "SELECT incoming_email_token_hash, incoming_email_token_sealed FROM users",
            )
            .fetch_one(&pool)
            .await?
        }
    };
    assert_eq!(stored.0.len(), 64);
    assert!(!stored.0.contains("plaintoken"));
    assert!(
        stored
            .1
            .is_some_and(|sealed| !sealed.contains("plaintoken"))
    );
    Ok(())
}

#[tokio::test]
async fn sqlite_tokens_from_before_0012_are_sealed() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&url).await?;
    sqlx::migrate!("migrations/sqlite")
        .run_to(11, &pool)
        .await?;
    sqlx::query(BEFORE).execute(&pool).await?;
    pool.close().await;
    check(&url, Backend::Sqlite).await
}

#[tokio::test]
async fn postgres_tokens_from_before_0012_are_sealed() -> Result<(), Box<dyn std::error::Error>> {
    let admin = match postern_testkit::pg::shared_admin_url() {
        postern_testkit::pg::PgChoice::Skip => return Ok(()),
        postern_testkit::pg::PgChoice::Url(url) => url,
    };
    let url = postern_testkit::create_database(&admin).await;
    let pool = sqlx::PgPool::connect(&url).await?;
    sqlx::migrate!("migrations/postgres")
        .run_to(11, &pool)
        .await?;
    sqlx::query(BEFORE).execute(&pool).await?;
    pool.close().await;
    check(&url, Backend::Postgres).await
}
