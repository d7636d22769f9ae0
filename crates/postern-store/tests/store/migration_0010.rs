//! Migration 0010 on a database written before it: reply keys stored in plain are hashed at
//! start-up, and projects that shared a Service Desk custom email are settled the same way on
//! both backends (the verified project keeps it, else the oldest).

use postern_store::Store;

/// What an instance wrote before 0010: a user, three projects with one custom email in three
/// spellings (the second verified), and a notification whose key is stored in plain.
const BEFORE: &[&str] = &[
    "INSERT INTO users (username, username_lower, name, incoming_email_token, created_at, updated_at)
     VALUES ('u', 'u', 'u', 'glimt-1', 1, 1)",
    "INSERT INTO projects (namespace_path, path, full_path, full_path_lower, full_path_slug, name,
                           sd_custom_email, sd_custom_email_lower,
                           sd_custom_email_verification_state, created_at, updated_at)
     VALUES ('acme', 'old', 'acme/old', 'acme/old', 'acme-old', 'old',
             'Support@Acme.com', 'support@acme.com', 'started', 1, 1),
            ('acme', 'web', 'acme/web', 'acme/web', 'acme-web', 'web',
             'support@acme.com', 'support@acme.com', 'finished', 1, 1),
            ('zzz', 'evil', 'zzz/evil', 'zzz/evil', 'zzz-evil', 'evil',
             'SUPPORT@acme.com', 'support@acme.com', NULL, 1, 1),
            ('other', 'desk', 'other/desk', 'other/desk', 'other-desk', 'desk',
             'help@other.com', 'help@other.com', NULL, 1, 1)",
    "INSERT INTO issues (project_id, iid, title, author_id, created_at, updated_at)
     VALUES (1, 1, 't', 1, 1, 1)",
    "INSERT INTO sent_notifications (partition_id, reply_key, namespace_id, recipient_id,
                                     project_id, noteable_type, noteable_id, created_at)
     VALUES (1, '0000000000000000000000abc', 1, 1, 1, 'issue', 1, 1)",
];

async fn check(store: &Store) -> Result<(), postern_store::StoreError> {
    let mut tx = store.begin().await?;
    let found = tx
        .sent_notification_by_key("1-0000000000000000000000abc")
        .await?
        .ok_or(postern_store::StoreError::NotFound("notification"))?;
    assert_eq!(
        found.reply_key_hash,
        postern_store::reply_key_hash("0000000000000000000000abc")
    );
    let owners: Vec<String> = tx
        .projects_by_custom_email("support@acme.com")
        .await?
        .into_iter()
        .map(|p| p.full_path)
        .collect();
    assert_eq!(owners, ["acme/web"], "the verified project keeps it");
    for cleared in ["acme/old", "zzz/evil"] {
        let project = tx
            .project_by_full_path(cleared)
            .await?
            .ok_or(postern_store::StoreError::NotFound("project"))?;
        assert_eq!(project.service_desk.custom_email, None, "{cleared}");
        assert_eq!(project.service_desk.custom_email_verification_state, None);
    }
    let other = tx.projects_by_custom_email("help@other.com").await?;
    assert_eq!(other.len(), 1, "an address nobody shared stays");
    // The list of cleared addresses was logged and emptied at start-up.
    assert_eq!(tx.take_cleared_custom_emails().await?, []);
    // Every project that existed has its default branch protected.
    assert_eq!(tx.protected_branches(other[0].id).await?, ["main"]);
    tx.commit().await
}

#[tokio::test]
async fn sqlite_database_from_before_0010() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&url).await?;
    sqlx::migrate!("migrations/sqlite").run_to(9, &pool).await?;
    for statement in BEFORE {
        sqlx::query(*statement).execute(&pool).await?;
    }
    pool.close().await;
    let store = Store::connect(&url).await?;
    check(&store).await?;
    Ok(())
}

#[tokio::test]
async fn postgres_database_from_before_0010() -> Result<(), Box<dyn std::error::Error>> {
    let admin = match postern_testkit::pg::shared_admin_url() {
        postern_testkit::pg::PgChoice::Skip => return Ok(()),
        postern_testkit::pg::PgChoice::Url(url) => url,
    };
    let url = postern_testkit::create_database(&admin).await;
    let pool = sqlx::PgPool::connect(&url).await?;
    sqlx::migrate!("migrations/postgres")
        .run_to(9, &pool)
        .await?;
    for statement in BEFORE {
        sqlx::query(*statement).execute(&pool).await?;
    }
    pool.close().await;
    let store = Store::connect(&url).await?;
    check(&store).await?;
    Ok(())
}
