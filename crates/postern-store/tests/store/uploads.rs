//! Where the bytes of uploads and raw messages live: in a PostgreSQL database, readable by
//! every instance that shares it (a second pool stands for a second instance, with a data
//! directory of its own); files of the one machine on SQLite.

use std::path::Path;

use postern_store::{
    Backend, InboundSource, InsertOutcome, Mailbox, NewInbound, NewUpload, Store, StoreError,
    StoreOptions, Upload, content_identity, new_upload_secret,
};

use crate::support::{TestDb, both, project, sqlite_file, user};

/// `size` bytes using every byte value (a BLOB, a BYTEA or a file must keep them all).
fn bytes(seed: u64, size: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A second store on the same database: another instance's pool.
async fn second_instance(db: &TestDb) -> Store {
    let options = StoreOptions {
        max_connections: 2,
        token_key: Some(db.token_key.clone()),
        ..StoreOptions::default()
    };
    Store::connect_with(&db.url, &options)
        .await
        .expect("second store on the same database")
}

/// Every file below `directory` (recursively), relative to it, sorted; none if it is missing.
fn files_below(directory: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![directory.to_owned()];
    // Bounded: the test writes a handful of entries.
    for _ in 0..1000 {
        let Some(next) = pending.pop() else {
            break;
        };
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(directory).expect("below the directory");
                found.push(relative.display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Runs `sql` (a query of one integer) on a connection of its own.
async fn count(db: &TestDb, sql: &'static str) -> i64 {
    macro_rules! run {
        ($pool:expr) => {{
            let pool = $pool.expect("connect");
            let value = sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .expect("count");
            pool.close().await;
            value
        }};
    }
    match db.store.backend() {
        Backend::Postgres => run!(sqlx::PgPool::connect(&db.url).await),
        Backend::Sqlite => run!(sqlx::SqlitePool::connect(&db.url).await),
    }
}

/// Records `(relative path, bytes)` as uploads of a new project, staged under `directory`.
async fn record(
    db: &TestDb,
    directory: &Path,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<Upload>, StoreError> {
    let staging: Vec<(String, &[u8])> = files.iter().map(|(r, b)| (r.clone(), &b[..])).collect();
    let mut staged = db.store.stage_uploads(directory, &staging).await?;
    let mut tx = db.tx().await;
    let owner = user(&mut tx, "owner").await?;
    let project = project(&mut tx, "p").await?;
    let mut uploads = Vec::new();
    for (relative, content) in files {
        let (secret, filename) = relative.split_once('/').expect("<secret>/<name>");
        let new = NewUpload {
            project_id: project.id,
            secret: secret.to_owned(),
            filename: filename.to_owned(),
            content_type: "application/octet-stream".to_owned(),
            size: content.len() as i64,
            uploaded_by: Some(owner.id),
            relative_path: relative.clone(),
        };
        uploads.push(tx.create_upload(new, &mut staged).await?);
    }
    assert!(staged.is_empty(), "every staged upload recorded");
    tx.commit().await?;
    Ok(uploads)
}

both!(upload_bytes_live_where_the_backend_keeps_them, |db| {
    let instance_a = tempfile::tempdir().expect("data directory of instance A");
    let instance_b = tempfile::tempdir().expect("data directory of instance B");
    let (uploads_a, uploads_b) = (
        instance_a.path().join("uploads"),
        instance_b.path().join("uploads"),
    );
    let files = vec![
        (format!("{}/shot.png", new_upload_secret()?), bytes(1, 1000)),
        (
            format!("{}/big.bin", new_upload_secret()?),
            bytes(2, 3 * 1024 * 1024),
        ),
    ];
    let uploads = record(&db, &uploads_a, &files).await?;

    // The instance that recorded them reads them back byte for byte.
    let mut tx = db.store.begin_read_only().await?;
    for (upload, (_, content)) in uploads.iter().zip(&files) {
        assert_eq!(
            tx.upload_content(upload, &uploads_a).await?.as_ref(),
            Some(content)
        );
    }
    tx.rollback().await?;

    let other = second_instance(&db).await;
    let mut tx = other.begin_read_only().await?;
    let served: Vec<_> = {
        let mut served = Vec::new();
        for upload in &uploads {
            served.push(tx.upload_content(upload, &uploads_b).await?);
        }
        served
    };
    tx.rollback().await?;
    other.close().await;
    match db.store.backend() {
        Backend::Postgres => {
            // In the database: another instance, with its own (empty) directory, serves them,
            // and no instance wrote a file.
            for (served, (_, content)) in served.iter().zip(&files) {
                assert_eq!(served.as_ref(), Some(content));
            }
            assert_eq!(files_below(instance_a.path()), Vec::<String>::new());
            assert_eq!(files_below(instance_b.path()), Vec::<String>::new());
            assert_eq!(count(&db, "SELECT COUNT(*) FROM upload_contents").await, 2);
        }
        Backend::Sqlite => {
            // Files of the one machine's upload directory, as before; none in the database.
            let mut expected: Vec<String> = files.iter().map(|(r, _)| r.clone()).collect();
            expected.sort();
            assert_eq!(files_below(&uploads_a), expected);
            for (relative, content) in &files {
                assert_eq!(
                    &std::fs::read(uploads_a.join(relative)).expect("file"),
                    content
                );
            }
            assert_eq!(served, [None, None], "not in another directory");
            assert_eq!(count(&db, "SELECT COUNT(*) FROM upload_contents").await, 0);
        }
    }
    Ok(())
});

both!(
    upload_bytes_are_kept_only_by_the_transaction_that_records_them,
    |db| {
        let directory = tempfile::tempdir().expect("upload directory");
        let (recorded, unused) = (
            format!("{}/a.txt", new_upload_secret()?),
            format!("{}/b.txt", new_upload_secret()?),
        );
        let mut staged = db
            .store
            .stage_uploads(
                directory.path(),
                &[
                    (recorded.clone(), b"rolled back".as_slice()),
                    (unused.clone(), b"never recorded".as_slice()),
                ],
            )
            .await?;
        let mut tx = db.tx().await;
        let owner = user(&mut tx, "owner").await?;
        let project = project(&mut tx, "p").await?;
        let new = |relative: &str| NewUpload {
            project_id: project.id,
            secret: relative.split('/').next().unwrap_or_default().to_owned(),
            filename: "a.txt".to_owned(),
            content_type: "text/plain".to_owned(),
            size: 11,
            uploaded_by: Some(owner.id),
            relative_path: relative.to_owned(),
        };
        tx.create_upload(new(&recorded), &mut staged).await?;
        // Bytes that were not staged (or were taken already) are an error, not an empty file.
        let not_staged = format!("{}/c.txt", new_upload_secret()?);
        let again = tx.create_upload(new(&not_staged), &mut staged).await;
        assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
        drop(tx);
        drop(staged);
        assert_eq!(files_below(directory.path()), Vec::<String>::new());
        assert_eq!(count(&db, "SELECT COUNT(*) FROM uploads").await, 0);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM upload_contents").await, 0);

        // A path that would leave the upload directory is refused before anything is written.
        let refused = db
            .store
            .stage_uploads(directory.path(), &[("../x".to_owned(), b"x".as_slice())])
            .await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{refused:?}"
        );
        Ok(())
    }
);

// An upload recorded before migration 0014 has no bytes in the database: on PostgreSQL it
// stays the file it was, served by the instance whose directory holds it.
both!(
    an_upload_without_stored_bytes_is_read_from_the_directory,
    |db| {
        let directory = tempfile::tempdir().expect("upload directory");
        let relative = format!("{}/old.txt", new_upload_secret()?);
        let uploads = record(
            &db,
            directory.path(),
            &[(relative.clone(), b"new".to_vec())],
        )
        .await?;
        let upload = &uploads[0];
        // As before 0014: no row, and the file in the directory.
        if db.store.backend() == Backend::Postgres {
            let pool = sqlx::PgPool::connect(&db.url).await?;
            sqlx::query("DELETE FROM upload_contents")
                .execute(&pool)
                .await?;
            pool.close().await;
        }
        let file = directory.path().join(&relative);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("directory");
        std::fs::write(&file, b"old").expect("file");
        let mut tx = db.store.begin_read_only().await?;
        assert_eq!(
            tx.upload_content(upload, directory.path())
                .await?
                .as_deref(),
            Some(b"old".as_slice())
        );
        std::fs::remove_file(&file).expect("remove");
        assert_eq!(tx.upload_content(upload, directory.path()).await?, None);
        tx.rollback().await?;
        Ok(())
    }
);

// Raw messages are in the database on PostgreSQL, large ones too, however they came in
// (intake, or quarantined when the store refused their headers): another instance reads them,
// and no row names a file.
both!(
    raw_messages_of_any_size_are_read_by_another_instance,
    |db| {
        let message = |n: u64, size: usize| {
            let mut raw = format!("Message-ID: <large{n}@example.org>\r\n\r\n").into_bytes();
            raw.extend(bytes(n, size));
            NewInbound {
                mailbox: Mailbox::Incoming,
                source: InboundSource::Lmtp,
                message_id: Some(format!("<large{n}@example.org>")),
                content_identity: content_identity(Some(&format!("<large{n}@example.org>")), &raw),
                raw: raw.into(),
                source_identity: None,
                declared_size: None,
            }
        };
        let large = postern_store::EXTERNAL_FROM_BYTES * 4;
        let (taken, quarantined, small) = (message(1, large), message(2, large), message(3, 100));
        let mut ids = Vec::new();
        let mut tx = db.tx().await;
        for new in [&taken, &small] {
            let InsertOutcome::New(id) = tx.insert_inbound(new).await? else {
                panic!("new message");
            };
            ids.push(id);
        }
        let InsertOutcome::New(id) = tx
            .insert_quarantined(&quarantined, postern_store::ErrorKind::StoreRefused, "test")
            .await?
        else {
            panic!("new message");
        };
        ids.push(id);
        tx.commit().await?;

        let other = second_instance(&db).await;
        let mut tx = other.begin_read_only().await?;
        for (id, new) in ids.iter().zip([&taken, &small, &quarantined]) {
            let stored = tx.inbound(*id).await?.expect("stored");
            assert_eq!(stored.raw, new.raw.as_ref(), "message {id}");
        }
        tx.rollback().await?;
        other.close().await;
        let named_files = count(
            &db,
            "SELECT COUNT(*) FROM inbound_raw WHERE file IS NOT NULL",
        )
        .await;
        match db.store.backend() {
            Backend::Postgres => assert_eq!(named_files, 0),
            // The two large ones are files beside the database (one machine's).
            Backend::Sqlite => {
                assert_eq!(named_files, 2);
                let database = sqlite_file(&db);
                let files = std::fs::read_dir(format!("{database}-raw"))
                    .expect("raw directory")
                    .count();
                assert_eq!(files, 2);
            }
        }
        Ok(())
    }
);
