//! What a hostile message can put in the store, and where a message goes that cannot be
//! processed: identities bounded whatever the sender wrote, the failure streak, quarantine and
//! release, and files staged before the transaction that names them.

use postern_store::{
    ErrorKind, InboundFilter, InboundSource, InboundState, InsertOutcome, Mailbox, NewInbound,
    StagedFiles, Timestamp, content_identity,
};

use crate::support::both;

fn message_with_id(message_id: &str, body: &str) -> NewInbound<'static> {
    let raw = format!("Message-ID: <{message_id}>\r\n\r\n{body}").into_bytes();
    NewInbound {
        mailbox: Mailbox::Incoming,
        source: InboundSource::Imap,
        message_id: Some(message_id.to_owned()),
        content_identity: content_identity(Some(message_id), body.as_bytes()),
        raw: raw.into(),
        source_identity: None,
        declared_size: None,
    }
}

fn new_id(outcome: InsertOutcome) -> i64 {
    match outcome {
        InsertOutcome::New(id) => id,
        other => panic!("expected a new message, got {other:?}"),
    }
}

// A Message-ID longer than an index entry may be (about 2.7 KB on PostgreSQL), or holding NUL
// and other control characters, is stored like any other: the identity and the column hold
// bounded, printable values, and the same message again is still a duplicate.
both!(hostile_message_ids_are_stored_bounded, |db| {
    let long = format!("{}@example.org", "x".repeat(10_000));
    let with_nul = "evil\0id\r\n\tfolded@example.org";
    let mut tx = db.tx().await;
    let first = new_id(tx.insert_inbound(&message_with_id(&long, "one")).await?);
    let second = new_id(tx.insert_inbound(&message_with_id(with_nul, "two")).await?);
    assert!(matches!(
        tx.insert_inbound(&message_with_id(&long, "one")).await?,
        InsertOutcome::Duplicate { first_id, .. } if first_id == first
    ));
    tx.commit().await?;

    let mut tx = db.tx().await;
    for id in [first, second] {
        let meta = tx.inbound(id).await?.expect("stored").meta;
        assert!(
            meta.content_identity.len() < 200,
            "{}",
            meta.content_identity
        );
        let message_id = meta.message_id.expect("kept, bounded");
        assert!(message_id.len() <= postern_store::MAX_STORED_IDENTIFIER_BYTES);
        assert!(!message_id.chars().any(char::is_control), "{message_id:?}");
    }
    tx.commit().await?;
    Ok(())
});

// An ordinary Message-ID keeps the identity format every stored message already has, so a
// message stored before this rule is still recognised after it.
#[test]
fn plain_message_ids_keep_their_identity_format() {
    let identity = content_identity(Some("abc@example.org"), b"body");
    assert!(identity.starts_with("abc@example.org|"), "{identity}");
    let hashed = content_identity(Some(&"y".repeat(300)), b"body");
    assert!(hashed.starts_with("sha256:"), "{hashed}");
}

both!(failure_streak_counts_the_same_reason_in_a_row, |db| {
    let mut tx = db.tx().await;
    let id = new_id(tx.insert_inbound(&message_with_id("s@x", "s")).await?);
    let at = Timestamp::now();
    let mut streaks = Vec::new();
    for reason in [
        "disk full",
        "disk full",
        "disk full",
        "database busy",
        "database busy",
    ] {
        streaks.push(
            tx.fail_inbound_temporarily(id, ErrorKind::TemporaryFailure, reason, |streak| {
                at.plus_seconds(streak)
            })
            .await?,
        );
    }
    assert_eq!(streaks, vec![1, 2, 3, 1, 2]);
    let meta = tx.inbound(id).await?.expect("stored").meta;
    assert_eq!(meta.state, InboundState::FailedTemporary);
    assert_eq!(meta.failure_streak, 2);
    tx.commit().await?;
    Ok(())
});

both!(quarantined_messages_wait_for_a_person, |db| {
    let mut tx = db.tx().await;
    let id = new_id(tx.insert_inbound(&message_with_id("q@x", "q")).await?);
    tx.quarantine_inbound(id, ErrorKind::RepeatedFailure, "failed 8 times: disk full")
        .await?;
    let now = Timestamp::now();
    let due = tx.due_inbound(None, now, now, 10).await?;
    assert!(
        due.iter().all(|m| m.id != id),
        "a quarantined message is never due"
    );
    let listed = tx
        .list_inbound(&InboundFilter {
            state: Some(InboundState::Quarantined),
            ..InboundFilter::default()
        })
        .await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].reason.as_deref(),
        Some("failed 8 times: disk full")
    );

    assert!(tx.release_quarantined(id).await?);
    assert!(!tx.release_quarantined(id).await?, "released once");
    let due = tx.due_inbound(None, now, now, 10).await?;
    assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id]);
    tx.commit().await?;
    Ok(())
});

// A message whose own insert the store refused is kept without the sender's header values,
// already quarantined; the same bytes again are a duplicate of it.
both!(
    a_refused_message_is_kept_quarantined_without_its_headers,
    |db| {
        let mut tx = db.tx().await;
        let message = message_with_id("refused@x", "bytes");
        let id = new_id(
            tx.insert_quarantined(&message, ErrorKind::StoreRefused, "value too long")
                .await?,
        );
        let stored = tx.inbound(id).await?.expect("stored");
        assert_eq!(stored.raw, message.raw.as_ref());
        assert_eq!(stored.meta.state, InboundState::Quarantined);
        assert_eq!(stored.meta.message_id, None);
        assert_eq!(stored.meta.error_kind, Some(ErrorKind::StoreRefused));
        assert!(matches!(
            tx.insert_quarantined(&message, ErrorKind::StoreRefused, "again").await?,
            InsertOutcome::Duplicate { first_id, .. } if first_id == id
        ));
        tx.commit().await?;
        Ok(())
    }
);

// Files written before a transaction: those it adopts live or die with it, the others are
// removed when the staging set is dropped.
both!(
    staged_files_belong_to_the_transaction_that_adopts_them,
    |db| {
        let directory = tempfile::tempdir().expect("temporary directory");
        let (kept, unused, rolled_back) = (
            directory.path().join("a/kept.txt"),
            directory.path().join("b/unused.txt"),
            directory.path().join("c/rolled-back.txt"),
        );
        let mut staged = StagedFiles::new();
        staged
            .write_all(&[
                (kept.clone(), b"kept".as_slice()),
                (unused.clone(), b"unused".as_slice()),
                (rolled_back.clone(), b"gone".as_slice()),
            ])
            .await?;
        assert_eq!(staged.len(), 3);
        let mut tx = db.tx().await;
        assert!(tx.adopt_staged_file(&mut staged, &kept));
        assert!(!tx.adopt_staged_file(&mut staged, &directory.path().join("none")));
        tx.commit().await?;
        let mut tx = db.tx().await;
        assert!(tx.adopt_staged_file(&mut staged, &rolled_back));
        tx.rollback().await?;
        drop(staged);
        assert_eq!(std::fs::read(&kept).expect("kept"), b"kept");
        assert!(!unused.exists() && !unused.parent().expect("dir").exists());
        assert!(!rolled_back.exists() && !rolled_back.parent().expect("dir").exists());
        Ok(())
    }
);

// The SQLite migration that adds the `quarantined` state rebuilds `inbound_messages`; rows that
// other tables point at (raw bytes, outbox mail) must come through it whole.
#[tokio::test]
async fn sqlite_quarantine_migration_keeps_every_row_and_reference() {
    use sqlx::Connection as _;
    let directory = tempfile::tempdir().expect("temporary directory");
    let before = directory.path().join("before");
    std::fs::create_dir(&before).expect("migrations folder");
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&all).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.as_str() < "0009" {
            std::fs::copy(&path, before.join(&name)).expect("copy");
        }
    }
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("db.sqlite3").display()
    );
    {
        let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("open");
        sqlx::migrate::Migrator::new(before.as_path())
            .await
            .expect("older migrations")
            .run(&mut connection)
            .await
            .expect("run older migrations");
        sqlx::raw_sql(
            "INSERT INTO inbound_messages (id, received_at, mailbox, source, message_id, size,
                                           content_identity, state, next_attempt_at)
             VALUES (7, 1, 'incoming', 'lmtp', 'm@x', 3, 'm@x|h', 'failed_temporary', 5);
             INSERT INTO inbound_raw (inbound_id, raw) VALUES (7, x'616263');
             INSERT INTO outbox (created_at, kind, recipients, raw, inbound_id, next_attempt_at)
             VALUES (1, 'reject', 'a@x', x'00', 7, 1);",
        )
        .execute(&mut connection)
        .await
        .expect("old rows");
        connection.close().await.expect("close");
    }
    let store = postern_store::Store::connect(&url)
        .await
        .expect("migrate to now");
    let mut tx = store.begin().await.expect("begin");
    let message = tx.inbound(7).await.expect("read").expect("still there");
    assert_eq!(message.raw, b"abc");
    assert_eq!(message.meta.state, InboundState::FailedTemporary);
    assert_eq!(message.meta.failure_streak, 0);
    tx.quarantine_inbound(7, ErrorKind::Internal, "the new state is allowed")
        .await
        .expect("quarantine");
    tx.commit().await.expect("commit");
    let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("open");
    let linked: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE inbound_id = 7")
        .fetch_one(&mut connection)
        .await
        .expect("outbox");
    assert_eq!(linked, 1);
    let violations: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(&mut connection)
        .await
        .expect("check");
    assert!(violations.is_empty(), "{violations:?}");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut connection)
        .await
        .expect("pragma");
    assert_eq!(
        foreign_keys, 1,
        "foreign keys are on again for new connections"
    );
}
