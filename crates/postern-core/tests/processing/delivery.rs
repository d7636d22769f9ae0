//! Exactly-once effect, automatic mail, reject notices, and failures that must write nothing.

use std::time::Duration;

use postern_core::ProcessError;
use postern_store::{InboundFilter, InboundSource, Mailbox, OutboxFilter, Store, StoreOptions};
use postern_testkit::{BoxError, TestDb, both};

use crate::support::{INCOMING, REPLY, World};

async fn inbound_count(store: &Store) -> Result<usize, BoxError> {
    let mut tx = store.begin().await?;
    let all = tx
        .list_inbound(&InboundFilter {
            limit: 1000,
            ..InboundFilter::default()
        })
        .await?;
    tx.commit().await?;
    Ok(all.len())
}

async fn outbox_count(store: &Store) -> Result<usize, BoxError> {
    let mut tx = store.begin().await?;
    let all = tx
        .list_outbox(&OutboxFilter {
            limit: 1000,
            ..OutboxFilter::default()
        })
        .await?;
    tx.commit().await?;
    Ok(all.len())
}

both!(same_message_twice_changes_nothing, |db| {
    let world = World::new(db).await?;
    let raw = world.fixture("valid_new_issue.eml", 0);
    let first = world.receive(INCOMING, &raw).await?;
    assert_eq!(first.outcome, "processed");
    let second = world.receive(INCOMING, &raw).await?;
    assert_eq!(second.outcome, "duplicate");
    assert_eq!(second.inbound_id, first.inbound_id);
    assert_eq!(second.first_outcome.as_deref(), Some("processed"));
    assert_eq!(second.created, first.created);
    let mut tx = world.store().begin().await?;
    let issues = tx.list_issues(&Default::default()).await?;
    tx.commit().await?;
    assert_eq!(issues.len(), 1);
    assert_eq!(inbound_count(world.store()).await?, 1);
    Ok(())
});

both!(duplicate_rejection_queues_no_second_notice, |db| {
    let world = World::new(db).await?;
    let raw = world.fixture("wrong_issue_incoming_email_token.eml", 0);
    let first = world.receive(INCOMING, &raw).await?;
    assert!(first.reject_notice_queued);
    let second = world.receive(INCOMING, &raw).await?;
    assert_eq!(second.outcome, "duplicate");
    assert_eq!(second.first_outcome.as_deref(), Some("rejected"));
    assert!(!second.reject_notice_queued);
    assert_eq!(outbox_count(world.store()).await?, 1);
    Ok(())
});

both!(
    reject_notices_are_rate_limited_per_sender_and_reason,
    |db| {
        let world = World::new(db).await?;
        let raw = String::from_utf8(world.fixture("wrong_issue_incoming_email_token.eml", 0))?;
        let other = raw.replace("Message-ID: <", "Message-ID: <again-");
        assert!(
            world
                .receive(INCOMING, raw.as_bytes())
                .await?
                .reject_notice_queued
        );
        let again = world.receive(INCOMING, other.as_bytes()).await?;
        assert_eq!(again.outcome, "rejected");
        assert!(!again.reject_notice_queued);
        assert_eq!(outbox_count(world.store()).await?, 1);
        Ok(())
    }
);

both!(reject_notice_follows_gitlab, |db| {
    let world = World::new(db).await?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("wrong_issue_incoming_email_token.eml", 0),
        )
        .await?;
    let mut tx = world.store().begin().await?;
    let mails = tx
        .list_outbox(&OutboxFilter {
            limit: 10,
            ..OutboxFilter::default()
        })
        .await?;
    let raw = tx.outbox_raw(mails[0].id).await?.ok_or("raw notice")?;
    tx.commit().await?;
    let text = String::from_utf8(raw)?;
    assert!(
        text.contains("Subject: [Rejected] New Issue by email"),
        "{text}"
    );
    assert!(
        text.contains("To: <jake@adventuretime.ooo>")
            || text.contains("To: jake@adventuretime.ooo"),
        "{text}"
    );
    assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    assert!(text.contains("In-Reply-To: <"), "{text}");
    assert!(
        !text.contains("\nReply-To:"),
        "user_not_found cannot be retried: {text}"
    );
    assert!(text.contains("could not be processed"), "{text}");
    assert_eq!(outcome.error.as_deref(), Some("user_not_found"));
    Ok(())
});

both!(automatic_mail_is_stored_and_ignored_without_notice, |db| {
    let world = World::new(db).await?;
    let outcome = world
        .receive(REPLY, &world.fixture("auto_reply.eml", 0))
        .await?;
    assert_eq!(outcome.outcome, "ignored");
    assert_eq!(outcome.error.as_deref(), Some("auto_generated_email"));
    assert!(!outcome.reject_notice_queued);
    assert_eq!(outbox_count(world.store()).await?, 0);
    assert_eq!(inbound_count(world.store()).await?, 1);
    Ok(())
});

both!(no_notice_to_mailer_daemon_or_own_address, |db| {
    let world = World::new(db).await?;
    for from in [
        "MAILER-DAEMON@mx.example.com",
        "incoming+anything@appmail.adventuretime.ooo",
    ] {
        let raw = format!(
            "From: {from}\r\nTo: incoming+unknown-key@appmail.adventuretime.ooo\r\nMessage-ID: <{from}>\r\nSubject: x\r\n\r\nhello\r\n"
        );
        let outcome = world.receive(INCOMING, raw.as_bytes()).await?;
        assert!(!outcome.reject_notice_queued, "{from}: {outcome:?}");
    }
    assert_eq!(outbox_count(world.store()).await?, 0);
    Ok(())
});

both!(blank_and_unknown_mail, |db| {
    let world = World::new(db).await?;
    let blank = world.receive(INCOMING, b"  \r\n").await?;
    assert_eq!(blank.error.as_deref(), Some("empty_email"));
    assert!(!blank.reject_notice_queued, "no From, no notice");
    let unknown = world
        .receive(INCOMING, &world.fixture("valid_incoming.eml", 0))
        .await?;
    assert_eq!(unknown.error.as_deref(), Some("unknown_incoming_email"));
    Ok(())
});

/// SQLite locked by another writer for longer than the busy timeout: a temporary failure that
/// writes nothing; the same message goes through once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_sqlite_is_temporary_and_writes_nothing() -> Result<(), BoxError> {
    let db = TestDb::sqlite().await;
    let url = db.url.clone();
    let token_key = db.token_key.clone();
    let world = World::new(db).await?;
    let impatient = Store::connect_with(
        &url,
        &StoreOptions {
            sqlite_busy_timeout: Duration::from_millis(200),
            acquire_timeout: Duration::from_secs(2),
            token_key: Some(token_key),
            ..StoreOptions::default()
        },
    )
    .await?;
    let processor = postern_core::Processor::new(
        impatient.clone(),
        world.repositories(),
        world.config(INCOMING),
    );
    let raw = world.fixture("valid_new_issue.eml", 0);
    let lock = world.store().begin().await?; // BEGIN IMMEDIATE: holds the write lock
    let result = processor
        .receive(&raw, Mailbox::Incoming, InboundSource::Pipe, None)
        .await;
    assert!(
        matches!(result, Err(ProcessError::Temporary(_))),
        "{result:?}"
    );
    lock.rollback().await?;
    assert_eq!(inbound_count(world.store()).await?, 0);
    let outcome = processor
        .receive(&raw, Mailbox::Incoming, InboundSource::Pipe, None)
        .await?;
    assert_eq!(outcome.outcome, "processed");
    Ok(())
}

/// PostgreSQL fails half-way through a message (a trigger raises "admin shutdown" when the
/// comment is written, after the message and the issue lookup are done): nothing of the
/// processing stays, the message itself is kept, queued for a retry with the reason, and a
/// later delivery of it completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failing_mid_way_keeps_only_the_message() -> Result<(), BoxError> {
    let Some(db) = TestDb::postgres().await else {
        return Ok(());
    };
    let url = db.url.clone();
    let world = World::new(db).await?;
    let issue = world.issue("mid-way").await?;
    world.notify(&issue, &world.jake).await?;
    {
        use sqlx::Connection as _;
        let mut admin = sqlx::PgConnection::connect(&url).await?;
        sqlx::raw_sql(
            "CREATE FUNCTION fail_note() RETURNS trigger AS $$
             BEGIN RAISE EXCEPTION 'simulated shutdown' USING ERRCODE = '57P01'; END;
             $$ LANGUAGE plpgsql;
             CREATE TRIGGER fail_note BEFORE INSERT ON notes
             FOR EACH ROW EXECUTE FUNCTION fail_note();",
        )
        .execute(&mut admin)
        .await?;
        let raw = world.fixture("valid_reply.eml", 0);
        let outcome = world
            .processor(REPLY)
            .receive(&raw, Mailbox::Incoming, InboundSource::Pipe, None)
            .await?;
        assert_eq!(outcome.outcome, "queued", "{outcome:?}");
        assert!(
            outcome
                .reason
                .as_deref()
                .is_some_and(|reason| reason.contains("simulated shutdown")),
            "{outcome:?}"
        );
        assert_eq!(inbound_count(world.store()).await?, 1);
        assert!(world.notes(&issue).await?.is_empty());
        sqlx::raw_sql("DROP TRIGGER fail_note ON notes")
            .execute(&mut admin)
            .await?;
        let outcome = world.receive(REPLY, &raw).await?;
        assert_eq!(outcome.outcome, "processed", "{outcome:?}");
        assert_eq!(world.notes(&issue).await?.len(), 1);
        admin.close().await?;
    }
    Ok(())
}
