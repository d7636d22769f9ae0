//! The outbox: dedupe keys, due entries, delivery results.

use postern_store::{EnqueueOutcome, NewOutboxMail, OutboxFilter, OutboxState, Timestamp};

use crate::support::both;

fn mail(kind: &str, dedupe_key: Option<&str>) -> NewOutboxMail {
    NewOutboxMail {
        kind: kind.to_owned(),
        recipients: vec!["a@example.org".to_owned(), "b@example.org".to_owned()],
        raw: b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
        inbound_id: None,
        dedupe_key: dedupe_key.map(str::to_owned),
        not_before: None,
    }
}

both!(dedupe_key_queues_once, |db| {
    let mut tx = db.tx().await;
    let EnqueueOutcome::Queued(id) = tx.enqueue_outbox(&mail("reject", Some("reject:1"))).await?
    else {
        panic!("first is queued");
    };
    assert_eq!(
        tx.enqueue_outbox(&mail("reject", Some("reject:1"))).await?,
        EnqueueOutcome::Duplicate(id)
    );
    // Without a key nothing is deduplicated.
    let a = tx.enqueue_outbox(&mail("notification", None)).await?;
    let b = tx.enqueue_outbox(&mail("notification", None)).await?;
    assert!(matches!((a, b), (EnqueueOutcome::Queued(x), EnqueueOutcome::Queued(y)) if x != y));

    let entry = tx.outbox_mail(id).await?.expect("exists");
    assert_eq!(entry.recipients, ["a@example.org", "b@example.org"]);
    assert_eq!(entry.state, OutboxState::Queued);
    assert_eq!(entry.dedupe_key.as_deref(), Some("reject:1"));
    assert_eq!(
        tx.outbox_raw(id).await?,
        Some(b"Subject: hi\r\n\r\nhello\r\n".to_vec())
    );
    assert_eq!(tx.outbox_head(id, 11).await?, Some(b"Subject: hi".to_vec()));
    assert_eq!(tx.outbox_head(id, 1000).await?.map(|h| h.len()), Some(22));
    tx.commit().await
});

both!(due_sent_and_failed, |db| {
    let mut tx = db.tx().await;
    let now = Timestamp::now();
    let EnqueueOutcome::Queued(due) = tx.enqueue_outbox(&mail("notification", None)).await? else {
        panic!("queued");
    };
    let mut later = mail("thank_you", None);
    later.not_before = Some(now.plus_seconds(3600));
    let EnqueueOutcome::Queued(later) = tx.enqueue_outbox(&later).await? else {
        panic!("queued");
    };

    let ids = |v: Vec<postern_store::OutboxMail>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(tx.due_outbox(now.plus_seconds(1), 10).await?),
        vec![due]
    );
    assert_eq!(
        ids(tx.due_outbox(now.plus_seconds(7200), 10).await?),
        vec![due, later]
    );

    // A temporary failure reschedules, a permanent one gives up, success is final.
    assert!(
        tx.mark_outbox_failed(due, "421 try later", Some(now.plus_seconds(60)))
            .await?
    );
    let entry = tx.outbox_mail(due).await?.expect("exists");
    assert_eq!((entry.state, entry.attempts), (OutboxState::Queued, 1));
    assert_eq!(entry.last_error.as_deref(), Some("421 try later"));
    assert!(tx.due_outbox(now.plus_seconds(1), 10).await?.is_empty());

    assert!(tx.mark_outbox_sent(due).await?);
    assert!(
        tx.mark_outbox_failed(later, "550 no such user", None)
            .await?
    );
    let sent = tx.outbox_mail(due).await?.expect("exists");
    assert_eq!(
        (sent.state, sent.attempts, sent.last_error),
        (OutboxState::Sent, 2, None)
    );
    assert!(sent.sent_at.is_some());
    let failed = tx.outbox_mail(later).await?.expect("exists");
    assert_eq!(failed.state, OutboxState::Failed);
    assert!(tx.due_outbox(now.plus_seconds(7200), 10).await?.is_empty());

    let only_failed = OutboxFilter {
        state: Some(OutboxState::Failed),
        ..OutboxFilter::default()
    };
    assert_eq!(ids(tx.list_outbox(&only_failed).await?), vec![later]);
    let thank_you = OutboxFilter {
        kind: Some("thank_you".to_owned()),
        ..OutboxFilter::default()
    };
    assert_eq!(ids(tx.list_outbox(&thank_you).await?), vec![later]);
    assert_eq!(
        ids(tx.list_outbox(&OutboxFilter::default()).await?),
        vec![later, due]
    );
    assert!(!tx.mark_outbox_sent(9999).await?);
    tx.commit().await
});

both!(claims_are_exclusive_until_stale_or_released, |db| {
    let now = Timestamp::now();
    let mut tx = db.tx().await;
    let EnqueueOutcome::Queued(id) = tx.enqueue_outbox(&mail("notification", None)).await? else {
        panic!("queued");
    };
    assert_eq!(tx.outbox_mail(id).await?.expect("exists").claimed_at, None);
    tx.commit().await?;

    // Two "workers" in separate transactions: the first claim wins, the second is refused
    // while the claim is fresh (claimed at or after `stale_before`).
    let fresh = now.plus_seconds(-600);
    let mut first = db.tx().await;
    assert!(first.claim_outbox(id, None, fresh).await?);
    first.commit().await?;
    let mut second = db.tx().await;
    assert!(!second.claim_outbox(id, None, fresh).await?);
    let held = second.outbox_mail(id).await?.expect("exists");
    assert!(held.claimed_at.is_some_and(|t| t >= now));
    // The claim does not hide the entry from `due_outbox`; the claim is what arbitrates.
    assert_eq!(second.due_outbox(now.plus_seconds(1), 10).await?.len(), 1);

    // A claim older than `stale_before` is abandoned (its worker died mid-send): taken over.
    assert!(
        second
            .claim_outbox(id, None, now.plus_seconds(3600))
            .await?
    );

    // A temporary failure releases the claim, so the retry can be claimed again.
    assert!(
        second
            .mark_outbox_failed(id, "421 later", Some(now))
            .await?
    );
    assert_eq!(
        second.outbox_mail(id).await?.expect("exists").claimed_at,
        None
    );
    assert!(second.claim_outbox(id, None, fresh).await?);

    // Once sent, nobody can claim it again, however old the claim would be.
    assert!(second.mark_outbox_sent(id).await?);
    let sent = second.outbox_mail(id).await?.expect("exists");
    assert_eq!((sent.state, sent.claimed_at), (OutboxState::Sent, None));
    assert!(
        !second
            .claim_outbox(id, None, now.plus_seconds(3600))
            .await?
    );
    assert!(!second.claim_outbox(9999, None, now).await?);
    second.commit().await
});

/// Two connections claim the same rows at the same time; every row is won exactly once.
/// On PostgreSQL this runs truly concurrently (row locks decide); on SQLite the writer queue
/// serialises the transactions, which must give the same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_have_one_winner_per_row() {
    async fn race(db: crate::support::TestDb) {
        let mut tx = db.tx().await;
        let mut ids = Vec::new();
        for _ in 0..20 {
            match tx.enqueue_outbox(&mail("notification", None)).await {
                Ok(EnqueueOutcome::Queued(id)) => ids.push(id),
                other => panic!("queued: {other:?}"),
            }
        }
        tx.commit().await.expect("commit");
        let stale_before = Timestamp::now().plus_seconds(-600);
        let worker = |store: postern_store::Store, ids: Vec<i64>| async move {
            let mut won = Vec::new();
            for id in ids {
                let mut tx = store.begin().await.expect("begin");
                if tx
                    .claim_outbox(id, None, stale_before)
                    .await
                    .expect("claim")
                {
                    won.push(id);
                }
                tx.commit().await.expect("commit");
            }
            won
        };
        let a = tokio::spawn(worker(db.store.clone(), ids.clone()));
        let b = tokio::spawn(worker(db.store.clone(), ids.clone()));
        let (a, b) = (a.await.expect("worker a"), b.await.expect("worker b"));
        let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        assert_eq!(all, ids, "each row claimed once: a={a:?} b={b:?}");
    }
    race(crate::support::TestDb::sqlite().await).await;
    if let Some(pg) = crate::support::TestDb::postgres().await {
        race(pg).await;
    }
}
