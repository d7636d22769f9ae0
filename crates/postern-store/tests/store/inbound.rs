//! Inbound messages: durable copy, dedupe identities, claims and outcomes.

use postern_store::{
    DuplicateOf, ErrorKind, HandlerKind, InboundFilter, InboundFinish, InboundSource, InboundState,
    InsertOutcome, Mailbox, NewInbound, Timestamp, content_identity,
};

use crate::support::{TestDb, both, sqlite_file};

fn message(n: u32, source_identity: Option<&str>) -> NewInbound<'static> {
    // Binary-safe: NUL and high bytes must survive BLOB/BYTEA.
    let raw = format!("Message-ID: <m{n}@example.org>\r\n\r\nbody {n}\0\u{ff}").into_bytes();
    let mut raw = raw;
    raw.push(0xff);
    NewInbound {
        mailbox: Mailbox::Incoming,
        source: InboundSource::Imap,
        message_id: Some(format!("<m{n}@example.org>")),
        content_identity: content_identity(Some(&format!("<m{n}@example.org>")), &raw),
        raw: raw.into(),
        source_identity: source_identity.map(str::to_owned),
        declared_size: None,
    }
}

both!(insert_detects_duplicates, |db| {
    let mut tx = db.tx().await;
    let first = message(1, Some("INBOX:1:10"));
    let InsertOutcome::New(id) = tx.insert_inbound(&first).await? else {
        panic!("first insert must be new");
    };

    // Same source identity (IMAP redelivery), even with other bytes.
    let mut redelivered = message(2, Some("INBOX:1:10"));
    redelivered.raw.to_mut().push(b'!');
    assert_eq!(
        tx.insert_inbound(&redelivered).await?,
        InsertOutcome::Duplicate {
            first_id: id,
            state: InboundState::Received,
            matched: DuplicateOf::SourceIdentity
        }
    );

    // Same content through another path (LMTP has no source identity).
    let mut via_lmtp = first.clone();
    via_lmtp.source = InboundSource::Lmtp;
    via_lmtp.source_identity = None;
    assert_eq!(
        tx.insert_inbound(&via_lmtp).await?,
        InsertOutcome::Duplicate {
            first_id: id,
            state: InboundState::Received,
            matched: DuplicateOf::ContentIdentity
        }
    );

    // Messages without source identity do not collide with each other.
    let a = tx.insert_inbound(&message(3, None)).await?;
    let b = tx.insert_inbound(&message(4, None)).await?;
    assert!(matches!(
        (a, b),
        (InsertOutcome::New(_), InsertOutcome::New(_))
    ));

    let stored = tx.inbound(id).await?.expect("stored");
    assert_eq!(stored.raw, first.raw.as_ref());
    assert_eq!(
        stored.meta.size,
        i64::try_from(first.raw.len()).expect("small")
    );
    assert_eq!(stored.meta.message_id.as_deref(), Some("<m1@example.org>"));
    assert_eq!(stored.meta.state, InboundState::Received);
    assert_eq!(stored.meta.attempts, 0);
    tx.commit().await
});

both!(concurrent_duplicate_insert_yields_one_new, |db| {
    let msg = message(1, Some("graph:AAMk"));
    let mut first = db.tx().await;
    let InsertOutcome::New(id) = first.insert_inbound(&msg).await? else {
        panic!("first insert must be new");
    };
    // The second writer waits (PostgreSQL: on the unique index; SQLite: on BEGIN IMMEDIATE)
    // until the first commits, then sees its row.
    let store = db.store.clone();
    let msg2 = msg.clone();
    let second = tokio::spawn(async move {
        let mut tx = store.begin().await?;
        let outcome = tx.insert_inbound(&msg2).await?;
        tx.commit().await?;
        Ok::<_, postern_store::StoreError>(outcome)
    });
    tokio::task::yield_now().await;
    first.commit().await?;
    let outcome = second.await.expect("task")?;
    assert!(
        matches!(outcome, InsertOutcome::Duplicate { first_id, .. } if first_id == id),
        "{outcome:?}"
    );
    Ok(())
});

both!(claim_finish_and_list, |db| {
    let mut tx = db.tx().await;
    let InsertOutcome::New(a) = tx.insert_inbound(&message(1, None)).await? else {
        panic!("new");
    };
    let mut sd = message(2, None);
    sd.mailbox = Mailbox::ServiceDesk;
    let InsertOutcome::New(b) = tx.insert_inbound(&sd).await? else {
        panic!("new");
    };

    let long_ago = Timestamp(0);
    assert!(tx.claim_inbound(a, None, long_ago).await?);
    assert!(
        !tx.claim_inbound(a, None, long_ago).await?,
        "already claimed, claim is fresh"
    );
    let far_future = Timestamp::now().plus_seconds(3600);
    assert!(
        tx.claim_inbound(a, None, far_future).await?,
        "a stale claim is taken over"
    );

    tx.finish_inbound(
        a,
        &InboundFinish {
            state: InboundState::Rejected,
            handler: Some(HandlerKind::CreateNote),
            error_kind: Some(ErrorKind::UserNotFound),
            reason: Some("sender is not a verified address".to_owned()),
            outcome: Some(r#"{"status":"rejected"}"#.to_owned()),
        },
    )
    .await?;
    assert!(
        !tx.claim_inbound(a, None, far_future).await?,
        "finished messages are not claimed"
    );
    let meta = tx.inbound(a).await?.expect("exists").meta;
    assert_eq!(meta.state, InboundState::Rejected);
    assert_eq!(meta.attempts, 2);
    assert_eq!(meta.error_kind, Some(ErrorKind::UserNotFound));
    assert!(meta.processed_at.is_some());

    let all = tx.list_inbound(&InboundFilter::default()).await?;
    assert_eq!(
        all.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![b, a],
        "newest first"
    );
    let queue = InboundFilter {
        state: Some(InboundState::Received),
        oldest_first: true,
        ..InboundFilter::default()
    };
    assert_eq!(
        tx.list_inbound(&queue)
            .await?
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        vec![b]
    );
    let desk = InboundFilter {
        mailbox: Some(Mailbox::ServiceDesk),
        ..InboundFilter::default()
    };
    assert_eq!(tx.list_inbound(&desk).await?.len(), 1);
    let paged = InboundFilter {
        before_id: Some(b),
        limit: 1,
        ..InboundFilter::default()
    };
    assert_eq!(
        tx.list_inbound(&paged)
            .await?
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        vec![a]
    );

    let missing = tx
        .finish_inbound(
            9999,
            &InboundFinish {
                state: InboundState::Processed,
                handler: None,
                error_kind: None,
                reason: None,
                outcome: None,
            },
        )
        .await;
    assert!(matches!(
        missing,
        Err(postern_store::StoreError::NotFound(_))
    ));
    tx.commit().await
});

/// A message of `size` bytes that uses every byte value (a file or BLOB must keep them all).
fn large_message(n: u32, size: usize) -> NewInbound<'static> {
    let mut raw = format!("Message-ID: <large{n}@example.org>\r\n\r\n").into_bytes();
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(n);
    while raw.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        raw.push(state.to_le_bytes()[0]);
    }
    NewInbound {
        mailbox: Mailbox::Incoming,
        source: InboundSource::Imap,
        message_id: Some(format!("<large{n}@example.org>")),
        content_identity: content_identity(Some(&format!("<large{n}@example.org>")), &raw),
        raw: raw.into(),
        source_identity: None,
        declared_size: None,
    }
}

/// The files beside a SQLite test database (`<database>-raw`), as (name, size).
fn raw_files_of(db: &TestDb) -> Vec<(String, u64)> {
    let database = sqlite_file(db);
    let mut files: Vec<(String, u64)> = std::fs::read_dir(format!("{database}-raw"))
        .expect("raw directory beside the database")
        .map(|entry| {
            let entry = entry.expect("directory entry");
            let size = entry.metadata().expect("metadata").len();
            (entry.file_name().to_string_lossy().into_owned(), size)
        })
        .collect();
    files.sort();
    files
}

both!(large_and_small_messages_read_back_byte_for_byte, |db| {
    let threshold = postern_store::EXTERNAL_FROM_BYTES;
    let messages = [
        large_message(1, threshold - 1),
        large_message(2, threshold),
        large_message(3, 3 * 1024 * 1024),
    ];
    let mut ids = Vec::new();
    let mut tx = db.tx().await;
    for message in &messages {
        let InsertOutcome::New(id) = tx.insert_inbound(message).await? else {
            panic!("new message");
        };
        ids.push(id);
    }
    tx.commit().await?;
    let mut tx = db.tx().await;
    for (id, message) in ids.iter().zip(&messages) {
        let stored = tx.inbound(*id).await?.expect("stored");
        assert_eq!(stored.raw, message.raw.as_ref(), "message {id}");
        assert_eq!(stored.meta.size as usize, message.raw.len());
        assert_eq!(tx.inbound_meta(*id).await?, Some(stored.meta.clone()));
        // The head of a message, inline or a file, is its first bytes and no more.
        for wanted in [0, 100, 64 * 1024, 8 * 1024 * 1024] {
            let head = tx.inbound_head(*id, wanted).await?.expect("stored");
            let expected = &message.raw[..wanted.min(message.raw.len())];
            assert!(head == expected, "message {id}: a head of {wanted}");
        }
    }
    assert_eq!(tx.inbound_head(i64::MAX, 10).await?, None);
    assert_eq!(tx.inbound_meta(i64::MAX).await?, None);
    tx.commit().await?;
    if db.store.backend() == postern_store::Backend::Sqlite {
        // The two from the threshold up are files of their own; the smaller one is inline.
        let mut sizes: Vec<u64> = raw_files_of(&db).iter().map(|f| f.1).collect();
        sizes.sort();
        assert_eq!(sizes, [threshold as u64, 3 * 1024 * 1024]);
    }
    Ok(())
});

/// A transaction that wrote a message file and then rolled back leaves no file behind.
#[tokio::test]
async fn sqlite_rolled_back_intake_removes_its_file() {
    let db = TestDb::sqlite().await;
    let mut tx = db.tx().await;
    tx.insert_inbound(&large_message(1, 512 * 1024))
        .await
        .expect("insert");
    assert_eq!(raw_files_of(&db).len(), 1, "written before the commit");
    drop(tx);
    assert_eq!(raw_files_of(&db), Vec::new());
}

/// A message file that disappeared is a clear, permanent error naming the file, not a panic
/// and not an empty message.
#[tokio::test]
async fn sqlite_missing_message_file_is_a_permanent_error() {
    let db = TestDb::sqlite().await;
    let mut tx = db.tx().await;
    let InsertOutcome::New(id) = tx
        .insert_inbound(&large_message(1, 512 * 1024))
        .await
        .expect("insert")
    else {
        panic!("new message");
    };
    tx.commit().await.expect("commit");
    let (name, _) = raw_files_of(&db).remove(0);
    let database = sqlite_file(&db);
    std::fs::remove_file(format!("{database}-raw/{name}")).expect("remove the file");
    let mut tx = db.tx().await;
    let error = tx.inbound(id).await.expect_err("the bytes are gone");
    assert!(!error.is_temporary(), "{error}");
    assert!(error.to_string().contains(&name), "{error}");
    // The message's metadata is still listed.
    let listed = tx
        .list_inbound(&InboundFilter::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
}

/// Runs `sql` (with `id` as `$1`, and `$2` if given) on a connection of its own, and returns
/// the first column of the first row it yields, if any.
async fn raw_sql(
    db: &TestDb,
    sql: &'static str,
    id: i64,
    text: Option<&str>,
) -> Result<Option<String>, sqlx::Error> {
    macro_rules! run {
        ($pool:expr) => {{
            let pool = $pool;
            let mut query = sqlx::query_scalar::<_, Option<String>>(sql).bind(id);
            if let Some(text) = text {
                query = query.bind(text.to_owned());
            }
            let value = query.fetch_optional(&pool).await?.flatten();
            pool.close().await;
            value
        }};
    }
    Ok(match db.store.backend() {
        postern_store::Backend::Postgres => run!(sqlx::PgPool::connect(&db.url).await?),
        postern_store::Backend::Sqlite => run!(sqlx::SqlitePool::connect(&db.url).await?),
    })
}

both!(
    outcome_names_are_stored_as_text_and_an_unknown_one_is_refused,
    |db| {
        let mut tx = db.tx().await;
        let InsertOutcome::New(id) = tx.insert_inbound(&message(1, None)).await? else {
            panic!("first insert must be new");
        };
        tx.finish_inbound(
            id,
            &InboundFinish {
                state: InboundState::Rejected,
                handler: Some(HandlerKind::CreateNoteOnIssuable),
                error_kind: Some(ErrorKind::Internal),
                reason: None,
                outcome: None,
            },
        )
        .await?;
        tx.commit().await?;
        // The columns hold the snake_case names, as before the enums: stored rows stay readable.
        let handler = "SELECT handler FROM inbound_messages WHERE id = $1";
        let kind = "SELECT error_kind FROM inbound_messages WHERE id = $1";
        assert_eq!(
            raw_sql(&db, handler, id, None).await?.as_deref(),
            Some("create_note_on_issuable")
        );
        assert_eq!(
            raw_sql(&db, kind, id, None).await?.as_deref(),
            Some("internal_error")
        );

        // A name no version of postern wrote is an error naming it, never another kind.
        let update =
            "UPDATE inbound_messages SET error_kind = $2 WHERE id = $1 RETURNING error_kind";
        raw_sql(&db, update, id, Some("no_such_kind")).await?;
        let mut tx = db.tx().await;
        let error = tx
            .inbound(id)
            .await
            .expect_err("an unknown error kind is not read");
        assert!(error.to_string().contains("no_such_kind"), "{error}");
        Ok(())
    }
);
