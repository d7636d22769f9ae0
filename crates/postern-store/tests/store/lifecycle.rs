//! Connecting, migrating, transactions as a unit, error classification; settings and uploads.

use std::time::Duration;

use postern_store::{
    Backend, NewIssue, NewUpload, Store, StoreError, StoreOptions, new_upload_secret,
};

use crate::support::{TestDb, both, project, sqlite_file, user};
use postern_testkit::{create_database, pg};

both!(migrations_are_idempotent, |db| {
    let mut tx = db.tx().await;
    user(&mut tx, "kept").await?;
    tx.commit().await?;
    // Running the migrations again, directly and through a second connect, changes nothing.
    db.store.migrate().await?;
    let with_key = postern_store::StoreOptions {
        token_key: Some(db.token_key.clone()),
        ..postern_store::StoreOptions::default()
    };
    let again = Store::connect_with(&db.url, &with_key).await?;
    again.migrate().await?;
    let mut tx = again.begin().await?;
    assert!(tx.user_by_username("kept").await?.is_some());
    tx.commit().await?;
    db.store.ping().await?;
    again.close().await;
    Ok(())
});

both!(rollback_leaves_nothing, |db| {
    let mut tx = db.tx().await;
    let p = project(&mut tx, "p").await?;
    let u = user(&mut tx, "u").await?;
    tx.commit().await?;

    let mut tx = db.tx().await;
    user(&mut tx, "ghost").await?;
    tx.create_issue(NewIssue::new(p.id, u.id, "ghost issue", ""))
        .await?;
    tx.set_setting("ghost", "1").await?;
    tx.rollback().await?;

    // Dropping without commit rolls back too.
    {
        let mut tx = db.tx().await;
        tx.create_issue(NewIssue::new(p.id, u.id, "dropped", ""))
            .await?;
    }

    let mut tx = db.tx().await;
    assert_eq!(tx.user_by_username("ghost").await?, None);
    assert_eq!(tx.setting("ghost").await?, None);
    assert!(tx.list_issues(&Default::default()).await?.is_empty());
    // The iid counter rolled back with the issue.
    let issue = tx
        .create_issue(NewIssue::new(p.id, u.id, "real", ""))
        .await?;
    assert_eq!(issue.iid, 1);
    tx.commit().await
});

both!(settings_and_uploads, |db| {
    let mut tx = db.tx().await;
    assert_eq!(tx.setting("max_attachment_size").await?, None);
    tx.set_setting("max_attachment_size", "100").await?;
    tx.set_setting("max_attachment_size", "25").await?;
    tx.set_setting("a", "b").await?;
    assert_eq!(
        tx.setting("max_attachment_size").await?.as_deref(),
        Some("25")
    );
    let keys: Vec<_> = tx
        .list_settings()
        .await?
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(keys, ["a", "max_attachment_size"]);
    assert!(tx.delete_setting("a").await?);
    assert!(!tx.delete_setting("a").await?);

    let p = project(&mut tx, "p").await?;
    let u = user(&mut tx, "u").await?;
    let secret = new_upload_secret()?;
    let directory = tempfile::tempdir().expect("temporary directory");
    let relative = format!("{secret}/screen shot.png");
    let mut staged = db
        .store
        .stage_uploads(
            directory.path(),
            &[
                (relative.clone(), b"png".as_slice()),
                ("x".to_owned(), b"x".as_slice()),
            ],
        )
        .await?;
    let upload = tx
        .create_upload(
            NewUpload {
                project_id: p.id,
                secret: secret.clone(),
                filename: "screen shot.png".to_owned(),
                content_type: "image/png".to_owned(),
                size: 1234,
                uploaded_by: Some(u.id),
                relative_path: relative,
            },
            &mut staged,
        )
        .await?;
    assert_eq!(tx.upload_by_secret(&secret).await?.as_ref(), Some(&upload));
    assert_eq!(tx.uploads_for_project(p.id).await?, vec![upload.clone()]);
    let mut dup = NewUpload {
        project_id: p.id,
        secret,
        filename: "x".to_owned(),
        content_type: "text/plain".to_owned(),
        size: 1,
        uploaded_by: None,
        relative_path: "x".to_owned(),
    };
    let err = tx
        .create_upload(dup.clone(), &mut staged)
        .await
        .expect_err("secret is unique");
    assert!(err.is_unique_violation());
    dup.secret = new_upload_secret()?;
    Ok(())
});

both!(read_only_transactions_read, |db| {
    let mut tx = db.tx().await;
    user(&mut tx, "reader").await?;
    tx.commit().await?;
    let mut ro = db.store.begin_read_only().await?;
    assert_eq!(ro.list_users().await?.len(), 1);
    if ro.backend() == Backend::Postgres {
        let err = user(&mut ro, "writer")
            .await
            .expect_err("read-only on PostgreSQL");
        assert!(!err.is_temporary(), "{err:?}");
    }
    Ok(())
});

#[tokio::test]
async fn in_memory_sqlite_keeps_data_across_transactions() {
    let store = Store::connect("sqlite::memory:")
        .await
        .expect("in-memory store");
    assert_eq!(store.backend(), Backend::Sqlite);
    let mut tx = store.begin().await.expect("begin");
    user(&mut tx, "mem").await.expect("create user");
    tx.commit().await.expect("commit");
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.user_by_username("mem").await.expect("query").is_some());
}

#[tokio::test]
async fn unsupported_url_is_permanent() {
    let err = Store::connect("mysql://localhost/x")
        .await
        .expect_err("unsupported");
    assert!(matches!(err, StoreError::UnsupportedUrl(_)));
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn unreachable_postgres_is_temporary() {
    // A port nobody listens on: bind one, learn its number, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let options = StoreOptions {
        acquire_timeout: Duration::from_secs(5),
        ..StoreOptions::default()
    };
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let err = Store::connect_with(&url, &options)
        .await
        .expect_err("nothing listens there");
    assert!(err.is_temporary(), "{err:?}");
}

/// Stops a dedicated private server under an open transaction and a live pool.
#[tokio::test]
async fn stopped_postgres_server_is_temporary() {
    if matches!(pg::shared_admin_url(), pg::PgChoice::Skip) {
        return;
    }
    if pg::using_external_server() {
        eprintln!(
            "POSTERN_TEST_PG_URL is set: cannot stop that server; see killed_connection_is_temporary"
        );
        return;
    }
    let server = pg::PgServer::start().expect("a dedicated PostgreSQL server");
    let url = create_database(&server.admin_url()).await;
    let options = StoreOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(5),
        ..StoreOptions::default()
    };
    let store = Store::connect_with(&url, &options).await.expect("connect");
    let mut tx = store.begin().await.expect("begin");
    user(&mut tx, "before")
        .await
        .expect("works while the server runs");

    server.stop().expect("pg_ctl stop");

    let err = user(&mut tx, "after").await.expect_err("server is gone");
    assert!(err.is_temporary(), "query on a dead connection: {err:?}");
    drop(tx);
    let err = store.begin().await.expect_err("server is gone");
    assert!(err.is_temporary(), "begin without a server: {err:?}");
    let err = store.ping().await.expect_err("server is gone");
    assert!(err.is_temporary(), "ping without a server: {err:?}");
}

/// The server ends our backend (as on a restart or failover): temporary as well.
#[tokio::test]
async fn killed_connection_is_temporary() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let mut tx = db.tx().await;
    user(&mut tx, "victim").await.expect("works");
    {
        use sqlx::Connection as _;
        let mut killer = sqlx::PgConnection::connect(&db.url)
            .await
            .expect("second connection");
        let pid = sqlx::query_scalar::<_, i32>(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND state = 'idle in transaction'",
        )
        .fetch_one(&mut killer)
        .await
        .expect("our idle-in-transaction backend");
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&mut killer)
            .await
            .expect("terminate");
        assert!(killed, "backend {pid} terminated");
    }
    let err = user(&mut tx, "after")
        .await
        .expect_err("our backend was terminated");
    assert!(err.is_temporary(), "{err:?}");
}

/// A writer that cannot get SQLite's lock within `busy_timeout` gets a temporary error.
#[tokio::test]
async fn sqlite_busy_is_temporary() {
    let db = TestDb::sqlite().await;
    let impatient = StoreOptions {
        sqlite_busy_timeout: Duration::from_millis(50),
        token_key: Some(db.token_key.clone()),
        ..StoreOptions::default()
    };
    let second = Store::connect_with(&db.url, &impatient)
        .await
        .expect("second store");
    let holder = db.tx().await;
    let err = second.begin().await.expect_err("the write lock is held");
    assert!(err.is_temporary(), "{err:?}");
    drop(holder);
    second
        .begin()
        .await
        .expect("lock released")
        .commit()
        .await
        .expect("commit");
}

/// Commits only append to SQLite's write-ahead log; a background task copies it into the
/// database file soon after (SQLite's own checkpoint inside `COMMIT` would only start at a much
/// larger log). The database file growing past what was written shows the copy happened.
#[tokio::test]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    let db = TestDb::sqlite().await;
    let file = sqlite_file(&db);
    let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    // Messages small enough to be kept inside the database (larger ones are files).
    let each = postern_store::EXTERNAL_FROM_BYTES - 1;
    let count = 24;
    let written = each * count;
    let before = size();
    let mut tx = db.tx().await;
    for n in 0..count {
        tx.insert_inbound(&postern_store::NewInbound {
            mailbox: postern_store::Mailbox::Incoming,
            source: postern_store::InboundSource::Pipe,
            message_id: None,
            raw: vec![b'x'; each].into(),
            source_identity: None,
            content_identity: format!("checkpoint|{n}"),
            declared_size: None,
        })
        .await
        .expect("insert");
    }
    tx.commit().await.expect("commit");
    assert!(
        size() < before + 1024 * 1024,
        "the commit itself copied the log into the database file ({} → {} bytes)",
        before,
        size()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size() < before + written as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the log was not checkpointed within 10 s (database file {} bytes)",
            size()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The JSON the CLI prints: RFC 3339 times, snake_case enum names, tagged noteables.
#[tokio::test]
async fn json_shapes() {
    let store = Store::connect("sqlite::memory:")
        .await
        .expect("in-memory store");
    let mut tx = store.begin().await.expect("begin");
    let u = user(&mut tx, "json").await.expect("user");
    let p = project(&mut tx, "p").await.expect("project");
    let issue = tx
        .create_issue(NewIssue::new(p.id, u.id, "t", ""))
        .await
        .expect("issue");
    let note = tx
        .create_note(postern_store::NewNote::new(
            postern_store::Noteable::Issue(issue.id),
            u.id,
            "hi",
        ))
        .await
        .expect("note");
    let user_json = serde_json::to_value(&u).expect("serialize user");
    let created = user_json["created_at"].as_str().expect("string time");
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    assert_eq!(user_json["state"], "active");
    assert_eq!(user_json["emails"][0]["primary"], true);
    let issue_json = serde_json::to_value(&issue).expect("serialize issue");
    assert_eq!(issue_json["state"], "opened");
    assert_eq!(issue_json["issue_type"], "issue");
    let note_json = serde_json::to_value(&note).expect("serialize note");
    assert_eq!(
        note_json["noteable"],
        serde_json::json!({"type": "issue", "id": issue.id})
    );
    let p_json = serde_json::to_value(&p).expect("serialize project");
    assert_eq!(
        p_json["service_desk"]["tickets_confidential_by_default"],
        true
    );
    assert_eq!(
        serde_json::to_value(postern_store::Role::Maintainer).expect("role"),
        "maintainer"
    );
}

both!(
    files_written_with_a_transaction_exist_only_if_it_commits,
    |db| {
        let root = tempfile::tempdir().expect("temporary directory");
        let kept = root.path().join("uploads/aaaa/kept.txt");
        let dropped = root.path().join("uploads/bbbb/dropped.txt");

        let mut tx = db.tx().await;
        tx.write_file(&dropped, b"never committed").await?;
        assert_eq!(
            std::fs::read(&dropped).expect("written"),
            b"never committed"
        );
        drop(tx);
        assert!(
            !dropped.exists(),
            "a rolled-back transaction's file is removed"
        );
        assert!(
            !root.path().join("uploads/bbbb").exists(),
            "and so are the directories it created"
        );

        let mut tx = db.tx().await;
        tx.write_file(&kept, b"committed").await?;
        let again = tx.write_file(&kept, b"twice").await;
        assert!(again.is_err(), "an existing file is never overwritten");
        tx.commit().await?;
        assert_eq!(std::fs::read(&kept).expect("kept"), b"committed");
        Ok(())
    }
);

/// `serve` asks idle connections to give back their page caches once it is quiet; that must
/// never wait for a connection in use, nor leave the pool unable to serve the next request.
#[tokio::test]
async fn releasing_idle_memory_leaves_busy_connections_and_the_pool_working() {
    let db = TestDb::sqlite().await;
    // Several connections in the pool, each having read something.
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut tx = db.store.begin_read_only().await.expect("begin");
        tx.list_projects().await.expect("read");
        readers.push(tx);
    }
    let busy = readers.pop().expect("a reader");
    for tx in readers {
        tx.rollback().await.expect("rollback");
    }

    tokio::time::timeout(Duration::from_secs(10), db.store.release_idle_memory())
        .await
        .expect("releasing idle memory waited for a busy connection");

    let mut busy = busy;
    busy.list_projects()
        .await
        .expect("the busy connection still reads");
    busy.rollback().await.expect("rollback");
    let mut tx = db.store.begin().await.expect("the pool still serves");
    project(&mut tx, "after-release").await.expect("write");
    tx.commit().await.expect("commit");
}
