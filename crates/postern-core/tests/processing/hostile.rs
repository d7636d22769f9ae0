//! Messages built to stall or sink processing: they end in bounded work with a clear outcome,
//! and never block the messages behind them. A failure that repeats ends in quarantine, where a
//! person can look at it and process it again.

use std::time::Duration;

use postern_core::intake::{IntakeMessage, take_in};
use postern_core::{ErrorKind, Outcome};
use postern_core::{ProcessorConfig, RetryPolicy};
use postern_store::{InboundSource, InboundState, Mailbox, Timestamp};
use postern_testkit::{BoxError, TestDb, both};

use crate::support::{INCOMING, REPLY, World};

/// A mail from jake to his new-issue address with `body` and `attachments` (name, content).
fn new_issue_with(
    world: &World,
    subject: &str,
    body: &str,
    attachments: &[(String, &[u8])],
) -> Vec<u8> {
    let to = format!(
        "incoming+gitlabhq-gitlabhq-{}-{}-issue@appmail.adventuretime.ooo",
        world.project.id, world.jake.incoming_email_token
    );
    crate::support::mail_from_jake_with_attachments(
        &to,
        subject,
        &format!("{subject}@test"),
        body,
        "application/octet-stream",
        attachments,
    )
}

/// The uploads recorded with their bytes, wherever the store keeps them.
async fn uploads_with_bytes(world: &World) -> Result<usize, BoxError> {
    let directory = world.data.path().join("uploads");
    let mut tx = world.store().begin_read_only().await?;
    let mut count = 0;
    for upload in tx.uploads_for_project(world.project.id).await? {
        if tx.upload_content(&upload, &directory).await?.is_some() {
            count += 1;
        }
    }
    tx.rollback().await?;
    Ok(count)
}

/// The files under the upload directory (a PostgreSQL store writes none).
fn uploaded_files(world: &World) -> usize {
    let uploads = world.data.path().join("uploads");
    let Ok(secrets) = std::fs::read_dir(uploads) else {
        return 0;
    };
    secrets
        .filter_map(Result::ok)
        .map(|secret| std::fs::read_dir(secret.path()).map_or(0, Iterator::count))
        .sum()
}

async fn outbox_count(world: &World) -> Result<usize, BoxError> {
    let mut tx = world.store().begin().await?;
    let mail = tx.list_outbox(&Default::default()).await?;
    tx.commit().await?;
    Ok(mail.len())
}

both!(
    an_attachment_flood_is_refused_before_anything_is_written,
    |db| {
        let world = World::new(db).await?;
        let limits = postern_core::MessageLimits::default();
        let attachments: Vec<(String, &[u8])> = (0..=limits.max_attachments)
            .map(|n| (format!("a{n}.txt"), b"x".as_slice()))
            .collect();
        let outcome = world
            .receive(
                INCOMING,
                &new_issue_with(&world, "flood", "Hi", &attachments),
            )
            .await?;
        assert_eq!(outcome.outcome, Outcome::Rejected, "{outcome:?}");
        assert_eq!(outcome.error, Some(ErrorKind::LimitExceeded));
        let reason = outcome.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("101 attachments") && reason.contains("at most 100"),
            "{reason}"
        );
        assert!(
            outcome.reject_notice_queued,
            "the sender is told which limit"
        );
        assert_eq!(uploaded_files(&world), 0);
        assert_eq!(uploads_with_bytes(&world).await?, 0);

        // At the limit, every attachment is uploaded.
        let outcome = world
            .receive(
                INCOMING,
                &new_issue_with(
                    &world,
                    "enough",
                    "Hi",
                    &attachments[..limits.max_attachments],
                ),
            )
            .await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        assert_eq!(uploads_with_bytes(&world).await?, limits.max_attachments);
        let files = match world.store().backend() {
            postern_store::Backend::Sqlite => limits.max_attachments,
            postern_store::Backend::Postgres => 0,
        };
        assert_eq!(uploaded_files(&world), files);
        Ok(())
    }
);

both!(attachment_bytes_over_the_limit_are_refused, |db| {
    let world = World::new(db).await?;
    let mut config = world.config(INCOMING);
    config.limits.max_attachment_bytes = 1000;
    let big = vec![b'z'; 600];
    let attachments = vec![
        ("one.bin".to_owned(), big.as_slice()),
        ("two.bin".to_owned(), big.as_slice()),
    ];
    let outcome = processor_with(&world, config)
        .receive(
            &new_issue_with(&world, "heavy", "Hi", &attachments),
            Mailbox::Incoming,
            InboundSource::Pipe,
            None,
        )
        .await?;
    assert_eq!(outcome.error, Some(ErrorKind::LimitExceeded), "{outcome:?}");
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("1200 bytes")
    );
    Ok(())
});

// A file name the file system would refuse (over 255 bytes) is cut, keeping its extension;
// the message is processed, never retried for ever.
both!(an_overlong_attachment_name_is_cut, |db| {
    let world = World::new(db).await?;
    let name = format!("{}.png", "n".repeat(400));
    let outcome = world
        .receive(
            INCOMING,
            &new_issue_with(&world, "longname", "Hi", &[(name, b"png".as_slice())]),
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let issue = world
        .issue_by_iid(outcome.created.and_then(|c| c.iid).expect("issue"))
        .await?;
    let link = issue
        .description
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches(')');
    assert_eq!(
        link.len(),
        postern_core::limits::MAX_ATTACHMENT_NAME_BYTES,
        "{link}"
    );
    assert!(link.ends_with(".png"));
    Ok(())
});

both!(more_quick_actions_than_the_limit_are_refused, |db| {
    let world = World::new(db).await?;
    let issue = world.issue("target").await?;
    world.notify(&issue, &world.jake).await?;
    let commands = "/label ~a\n".repeat(101);
    let raw = String::from_utf8(world.fixture("valid_reply.eml", 0))?.replacen(
        "I could not disagree more.",
        &commands,
        1,
    );
    let outcome = world.receive(REPLY, raw.as_bytes()).await?;
    assert_eq!(outcome.error, Some(ErrorKind::LimitExceeded), "{outcome:?}");
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("101 quick actions")
    );
    assert!(world.notes(&issue).await?.is_empty());
    assert!(world.issue_by_iid(issue.iid).await?.labels.is_empty());
    Ok(())
});

// Labels are bounded in length and number: a 3 000-character label (larger than an index
// entry may be on PostgreSQL) is no label, and a line of thousands of labels adds the first
// hundred.
both!(hostile_labels_are_bounded, |db| {
    let world = World::new(db).await?;
    let issue = world.issue("labels").await?;
    world.notify(&issue, &world.jake).await?;
    let many: String = (0..5000).map(|n| format!("~l{n} ")).collect();
    let commands = format!("/label ~{}\n/label {many}\nThanks", "x".repeat(3000));
    let raw = String::from_utf8(world.fixture("valid_reply.eml", 0))?.replacen(
        "I could not disagree more.",
        &commands,
        1,
    );
    let outcome = world.receive(REPLY, raw.as_bytes()).await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let labels = world.issue_by_iid(issue.iid).await?.labels;
    assert_eq!(labels.len(), postern_core::quick::MAX_LABELS_PER_ISSUE);
    assert!(labels.iter().all(|label| label.len() < 10), "{labels:?}");
    Ok(())
});

fn processor_with(world: &World, config: ProcessorConfig) -> postern_core::Processor {
    postern_core::Processor::new(world.store().clone(), world.repositories(), config)
}

/// PostgreSQL with a trigger that makes every comment fail with SQLSTATE `code`.
async fn failing_notes(url: &str, code: &str) -> Result<sqlx::PgConnection, BoxError> {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION fail_note() RETURNS trigger AS $$
         BEGIN RAISE EXCEPTION 'notes refused' USING ERRCODE = '{code}'; END;
         $$ LANGUAGE plpgsql;
         CREATE TRIGGER fail_note BEFORE INSERT ON notes
         FOR EACH ROW EXECUTE FUNCTION fail_note();"
    )))
    .execute(&mut admin)
    .await?;
    Ok(admin)
}

// The same temporary failure again and again: the message is retried with a growing back-off
// and, at the policy's limit, quarantined with the reason; processing it again once the cause
// is gone completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_repeats_ends_in_quarantine() -> Result<(), BoxError> {
    let Some(db) = TestDb::postgres().await else {
        return Ok(());
    };
    let url = db.url.clone();
    let world = World::new(db).await?;
    let issue = world.issue("flaky").await?;
    world.notify(&issue, &world.jake).await?;
    let mut admin = failing_notes(&url, "57P01").await?;
    let mut config = world.config(REPLY);
    config.retry = RetryPolicy {
        backoff: postern_vocab::Backoff::new(Duration::ZERO, Duration::ZERO),
        max_attempts: 3,
    };
    let processor = processor_with(&world, config);
    let raw = world.fixture("valid_reply.eml", 0);
    let first = processor
        .receive(&raw, Mailbox::Incoming, InboundSource::Pipe, None)
        .await?;
    assert_eq!(first.outcome, Outcome::Queued, "{first:?}");
    let id = first.inbound_id;
    let stale = Timestamp::now().plus_seconds(-600);
    let second = processor.process_queued(id, stale).await?.expect("claimed");
    assert_eq!(second.outcome, Outcome::Queued, "{second:?}");
    let third = processor.process_queued(id, stale).await?.expect("claimed");
    assert_eq!(third.outcome, Outcome::Quarantined, "{third:?}");
    assert!(
        third
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("3 times")
    );
    let mut tx = world.store().begin().await?;
    let meta = tx.inbound(id).await?.expect("kept").meta;
    tx.commit().await?;
    assert_eq!(meta.state, InboundState::Quarantined);
    assert!(
        processor.process_queued(id, stale).await?.is_none(),
        "workers leave a quarantined message alone"
    );

    sqlx::raw_sql("DROP TRIGGER fail_note ON notes")
        .execute(&mut admin)
        .await?;
    let again = processor.reprocess(id).await?.expect("found");
    assert_eq!(again.outcome, Outcome::Processed, "{again:?}");
    assert_eq!(world.notes(&issue).await?.len(), 1);
    Ok(())
}

// A failure that no retry fixes (a data error) quarantines at once; no reject notice goes to
// the sender, since the fault is not theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_store_error_quarantines_at_once() -> Result<(), BoxError> {
    let Some(db) = TestDb::postgres().await else {
        return Ok(());
    };
    let url = db.url.clone();
    let world = World::new(db).await?;
    let issue = world.issue("broken").await?;
    world.notify(&issue, &world.jake).await?;
    let _admin = failing_notes(&url, "22023").await?;
    let outcome = world
        .receive(REPLY, &world.fixture("valid_reply.eml", 0))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Quarantined, "{outcome:?}");
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("notes refused")
    );
    assert!(!outcome.reject_notice_queued);
    assert_eq!(outbox_count(&world).await?, 0);
    Ok(())
}

fn imap_message(n: usize, message_id: &str) -> IntakeMessage {
    IntakeMessage {
        raw: format!("Message-ID: <{message_id}>\r\nSubject: {n}\r\n\r\nbody {n}\r\n")
            .into_bytes()
            .into(),
        source_identity: Some(format!("imap:u@h/inbox:1:{n}")),
        cursor: Some(("u@h/inbox".to_owned(), 1, i64::try_from(n).unwrap_or(0))),
        declared_size: None,
    }
}

// A message the store refuses (here: a trigger stands in for any data error a header could
// cause) is quarantined without its header values; the messages around it in the same batch
// are stored as usual, and the folder cursor passes all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_does_not_block_its_batch() -> Result<(), BoxError> {
    use sqlx::Connection as _;
    let Some(db) = TestDb::postgres().await else {
        return Ok(());
    };
    let url = db.url.clone();
    let world = World::new(db).await?;
    let mut admin = sqlx::PgConnection::connect(&url).await?;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
         BEGIN
           IF NEW.message_id LIKE '%poison%' THEN
             RAISE EXCEPTION 'value refused' USING ERRCODE = '22023';
           END IF;
           RETURN NEW;
         END; $$ LANGUAGE plpgsql;
         CREATE TRIGGER refuse_poison BEFORE INSERT ON inbound_messages
         FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
    )
    .execute(&mut admin)
    .await?;
    let batch = vec![
        imap_message(1, "one@x"),
        imap_message(2, "poison@x"),
        imap_message(3, "three@x"),
    ];
    let summary = world.take_in_imap(&batch).await?;
    assert_eq!(summary.stored.len(), 2, "{summary:?}");
    assert_eq!(summary.quarantined, 1, "{summary:?}");
    let mut tx = world.store().begin().await?;
    let quarantined = tx
        .list_inbound(&postern_store::InboundFilter {
            state: Some(InboundState::Quarantined),
            ..Default::default()
        })
        .await?;
    assert_eq!(quarantined.len(), 1);
    assert!(
        quarantined[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("value refused")
    );
    assert_eq!(tx.intake_cursor("u@h/inbox", 1).await?, Some(3));
    tx.commit().await?;

    // Fetched again after a crash: all three are known, nothing is stored twice.
    let again = world.take_in_imap(&batch).await?;
    assert_eq!(again.already_stored, 3, "{again:?}");
    Ok(())
}

// When the store refuses even the quarantined row, the message is kept as a file, so the source
// may still let it go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_store_refuses_entirely_is_kept_as_a_file() -> Result<(), BoxError> {
    use sqlx::Connection as _;
    let Some(db) = TestDb::postgres().await else {
        return Ok(());
    };
    let url = db.url.clone();
    let world = World::new(db).await?;
    let mut admin = sqlx::PgConnection::connect(&url).await?;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_all() RETURNS trigger AS $$
         BEGIN RAISE EXCEPTION 'nothing fits' USING ERRCODE = '54000'; END;
         $$ LANGUAGE plpgsql;
         CREATE TRIGGER refuse_all BEFORE INSERT ON inbound_messages
         FOR EACH ROW EXECUTE FUNCTION refuse_all();",
    )
    .execute(&mut admin)
    .await?;
    let summary = take_in(
        world.store(),
        Mailbox::Incoming,
        InboundSource::Imap,
        &[imap_message(1, "refused@x")],
        &world.quarantine_directory(),
    )
    .await?;
    assert_eq!(summary.quarantined, 1, "{summary:?}");
    let files: Vec<_> = std::fs::read_dir(world.quarantine_directory())?
        .filter_map(Result::ok)
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(
        std::fs::read(files[0].path())?,
        imap_message(1, "refused@x").raw.to_vec()
    );
    Ok(())
}
