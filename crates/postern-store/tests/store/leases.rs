//! Leases (`postern_store::leases`): a claim committed before acting outside the store is
//! held while its lease lives, is free as soon as the lease has expired, and an outcome is
//! recorded only under the lease the claim was taken with (fencing).

use std::time::Duration;

use postern_store::{
    EnqueueOutcome, InboundSource, InsertOutcome, Lease, LeaseId, LeaseTimes, Mailbox, NewInbound,
    NewOutboxMail, Timestamp, content_identity,
};

use crate::support::both;

const TIMES: LeaseTimes = LeaseTimes {
    ttl: Duration::from_secs(15),
    renew_every: Duration::from_secs(5),
};

fn message(n: u32) -> NewInbound<'static> {
    let raw = format!("Message-ID: <lease{n}@example.org>\r\n\r\nbody {n}").into_bytes();
    NewInbound {
        mailbox: Mailbox::Incoming,
        source: InboundSource::Imap,
        message_id: None,
        content_identity: content_identity(None, &raw),
        raw: raw.into(),
        source_identity: None,
        declared_size: None,
    }
}

fn mail() -> NewOutboxMail {
    NewOutboxMail {
        kind: "notification".to_owned(),
        recipients: vec!["jane@example.com".to_owned()],
        raw: b"Subject: hi\r\n\r\nhello".to_vec(),
        inbound_id: None,
        dedupe_key: None,
        not_before: None,
    }
}

both!(
    an_inbound_claim_is_held_while_its_lease_lives_and_fenced_after,
    |db| {
        let now = Timestamp::now();
        // A claim without a lease would lapse only after this: far away, so only leases decide.
        let stale_before = now.plus_seconds(-3600);
        let mut tx = db.tx().await;
        let InsertOutcome::New(id) = tx.insert_inbound(&message(1)).await? else {
            panic!("new message");
        };
        let first = tx.insert_lease("instance a", now, &TIMES).await?;
        let second = tx.insert_lease("instance b", now, &TIMES).await?;
        assert_ne!(first, second, "every lease has its own id");
        assert!(tx.claim_inbound(id, Some(first), stale_before).await?);
        tx.commit().await?;

        let listed =
            |list: Vec<postern_store::InboundMeta>| list.iter().map(|m| m.id).collect::<Vec<_>>();
        let mut tx = db.tx().await;
        // While the first lease lives, the claim is neither listed as due nor taken.
        assert!(listed(tx.due_inbound(None, now, stale_before, 10).await?).is_empty());
        assert!(!tx.claim_inbound(id, Some(second), stale_before).await?);
        assert!(tx.fence_inbound(id, first).await?, "the holder may record");

        // Its instance dies: once the lease has ended, the message is due and taken over.
        tx.end_lease(first, now).await?;
        assert_eq!(
            listed(tx.due_inbound(None, now, stale_before, 10).await?),
            vec![id]
        );
        assert!(tx.claim_inbound(id, Some(second), stale_before).await?);
        // The first instance comes back: its lease no longer matches the claim, so it records
        // nothing; the new holder does.
        assert!(!tx.fence_inbound(id, first).await?);
        assert!(tx.fence_inbound(id, second).await?);
        tx.commit().await
    }
);

both!(
    an_outbox_claim_is_held_while_its_lease_lives_and_fenced_after,
    |db| {
        let now = Timestamp::now();
        let stale_before = now.plus_seconds(-3600);
        let mut tx = db.tx().await;
        let EnqueueOutcome::Queued(id) = tx.enqueue_outbox(&mail()).await? else {
            panic!("queued");
        };
        let first = tx.insert_lease("instance a", now, &TIMES).await?;
        let second = tx.insert_lease("instance b", now, &TIMES).await?;
        assert!(tx.claim_outbox(id, Some(first), stale_before).await?);
        assert!(!tx.claim_outbox(id, Some(second), stale_before).await?);

        // A lease that was not renewed in time has expired: the same as ended.
        let long_ago = now.plus_seconds(-60);
        let expired = tx.insert_lease("instance c", long_ago, &TIMES).await?;
        assert!(
            !tx.renew_lease(expired, now, &TIMES).await?,
            "an expired lease stays expired"
        );
        assert!(
            tx.renew_lease(first, now, &TIMES).await?,
            "a live one is renewed"
        );

        tx.end_lease(first, now).await?;
        assert!(tx.claim_outbox(id, Some(second), stale_before).await?);
        assert!(!tx.fence_outbox(id, first).await?);
        assert!(tx.fence_outbox(id, second).await?);
        assert!(tx.mark_outbox_sent(id).await?);
        // Sent: no lease matches any more, and nobody claims it.
        assert!(!tx.fence_outbox(id, second).await?);
        tx.end_lease(second, now).await?;
        assert!(!tx.claim_outbox(id, Some(expired), stale_before).await?);
        tx.commit().await
    }
);

both!(a_claim_without_a_lease_lapses_by_its_age_as_before, |db| {
    // Rows claimed by a postern from before leases: `claimed_by` is empty.
    let now = Timestamp::now();
    let mut tx = db.tx().await;
    let EnqueueOutcome::Queued(id) = tx.enqueue_outbox(&mail()).await? else {
        panic!("queued");
    };
    assert!(tx.claim_outbox(id, None, now.plus_seconds(-600)).await?);
    let lease = tx.insert_lease("instance a", now, &TIMES).await?;
    assert!(
        !tx.claim_outbox(id, Some(lease), now.plus_seconds(-600))
            .await?
    );
    assert!(
        tx.claim_outbox(id, Some(lease), now.plus_seconds(1))
            .await?
    );
    tx.commit().await
});

both!(serve_on_sqlite_ends_the_leases_of_an_earlier_run, |db| {
    let now = Timestamp::now();
    let mut tx = db.tx().await;
    let EnqueueOutcome::Queued(id) = tx.enqueue_outbox(&mail()).await? else {
        panic!("queued");
    };
    let killed = tx.insert_lease("killed run", now, &TIMES).await?;
    assert!(
        tx.claim_outbox(id, Some(killed), now.plus_seconds(-3600))
            .await?
    );
    assert_eq!(tx.end_every_lease(now).await?, 1);
    let next = tx.insert_lease("next run", now, &TIMES).await?;
    assert!(
        tx.claim_outbox(id, Some(next), now.plus_seconds(-3600))
            .await?
    );
    tx.commit().await
});

both!(
    a_held_lease_is_renewed_given_up_replaced_and_ended_with_its_last_clone,
    |db| {
        let times = LeaseTimes {
            ttl: Duration::from_secs(3),
            renew_every: Duration::from_millis(200),
        };
        let lease = Lease::acquire(&db.store, "test holder", times).await?;
        let first = lease.current().expect("a fresh lease");
        assert!(lease.holds(first));

        // Renewed in the background: still held after longer than the lease would live unrenewed.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(lease.holds(first), "renewed while alive");
        assert!(expires_at(&db, first).await? > Timestamp::now().0);

        // Given up (an outcome could not be recorded): not used any more, replaced at the next
        // renewal, and ended in the database so that its claims are free.
        lease.give_up(first);
        assert!(!lease.holds(first));
        let second = wait_for(|| lease.current().filter(|id| *id != first)).await;
        assert!(expires_at(&db, first).await? <= Timestamp::now().0, "ended");

        // The last clone dropped: the lease ends at once rather than at expiry.
        drop(lease);
        for _ in 0..100 {
            if expires_at(&db, second).await? <= Timestamp::now().0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the lease did not end with its last clone");
    }
);

/// On PostgreSQL the fence locks the row: an instance taking over waits for the transaction
/// that records the outcome, then finds the mail sent and does not claim it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_waits_for_the_fenced_record_and_then_finds_it_done() {
    let Some(db) = crate::support::TestDb::postgres().await else {
        return;
    };
    let now = Timestamp::now();
    let stale_before = now.plus_seconds(-3600);
    let mut tx = db.tx().await;
    let EnqueueOutcome::Queued(id) = tx.enqueue_outbox(&mail()).await.expect("enqueue") else {
        panic!("queued");
    };
    let holder = tx.insert_lease("holder", now, &TIMES).await.expect("lease");
    let taker = tx.insert_lease("taker", now, &TIMES).await.expect("lease");
    assert!(
        tx.claim_outbox(id, Some(holder), stale_before)
            .await
            .expect("claim")
    );
    tx.commit().await.expect("commit");

    let mut record = db.tx().await;
    assert!(record.fence_outbox(id, holder).await.expect("fence"));
    // The holder's lease expires while it records (it was stalled just before).
    let mut end = db.tx().await;
    end.end_lease(holder, now).await.expect("end");
    end.commit().await.expect("commit");
    let store = db.store.clone();
    let takeover = tokio::spawn(async move {
        let mut tx = store.begin().await.expect("begin");
        let taken = tx
            .claim_outbox(id, Some(taker), stale_before)
            .await
            .expect("claim");
        tx.commit().await.expect("commit");
        taken
    });
    assert!(record.mark_outbox_sent(id).await.expect("sent"));
    record.commit().await.expect("commit");
    assert!(
        !takeover.await.expect("takeover task"),
        "a sent mail is never claimed again"
    );
}

async fn expires_at(
    db: &crate::support::TestDb,
    id: LeaseId,
) -> Result<i64, postern_store::StoreError> {
    let mut tx = db.tx().await;
    let at = tx.lease_expiry(id).await?.expect("the lease row");
    tx.commit().await?;
    Ok(at.0)
}

async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(value) = probe() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited 10 s in vain");
}
