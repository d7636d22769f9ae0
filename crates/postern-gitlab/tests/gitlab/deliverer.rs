//! Several deliverers and crashes, on one PostgreSQL store (the private test server): two
//! deliverers share 200 messages and deliver each exactly once; a deliverer killed mid-run
//! leaves nothing behind — after a restart everything arrives, with at most the messages that
//! were in flight delivered twice (the documented window), never a loss.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postern_gitlab::{Deliverer, DelivererOptions, Destination};
use postern_store::{InboundState, Mailbox, Store, StoreOptions};
use postern_testkit::TestDb;

use crate::common::*;

async fn second_store(db: &TestDb) -> Store {
    Store::connect_with(
        &db.url,
        &StoreOptions {
            max_connections: 4,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("a second connection pool, as a second process would have")
}

fn counts(received: &[postern_testkit::gitlab::Received]) -> HashMap<Vec<u8>, usize> {
    let mut map = HashMap::new();
    for r in received {
        *map.entry(r.body.clone()).or_insert(0) += 1;
    }
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliverers_on_one_postgres_deliver_each_message_exactly_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gitlab = stand_in().await;
    let raws: Vec<Vec<u8>> = (0..200).map(message).collect();
    store_messages(&db.store, Mailbox::Incoming, &raws).await;
    let mut deliverers = Vec::new();
    for store in [db.store.clone(), second_store(&db).await] {
        deliverers.push(Arc::new(Deliverer::new(
            store,
            vec![(
                Mailbox::Incoming,
                Destination::Webhook(webhook(
                    &gitlab,
                    Mailbox::Incoming,
                    signer(dir.path(), &INCOMING_SECRET),
                )),
            )],
            fast_options(),
        )));
    }
    let (stop, shutdown) = postern_vocab::Shutdown::new();
    let mut tasks = Vec::new();
    for d in &deliverers {
        let d = d.clone();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move { d.run(shutdown).await }));
    }
    let done = wait_until(Duration::from_secs(120), async || {
        gitlab.received().len() >= raws.len()
    })
    .await;
    // Every message recorded as delivered: no deliverer has one left to claim, so stopping
    // them now (each finishes what it holds) lets a late duplicate, if there were one, show.
    let settled = wait_until(Duration::from_secs(30), async || {
        all_messages(&db.store, Mailbox::Incoming)
            .await
            .iter()
            .all(|m| m.state == InboundState::Processed)
    })
    .await;
    stop.stop();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(done, "all 200 delivered");
    assert!(settled, "every message recorded as delivered");
    let received = gitlab.received();
    assert_eq!(received.len(), raws.len(), "no duplicates");
    let counts = counts(&received);
    assert!(
        raws.iter().all(|r| counts.get(r) == Some(&1)),
        "each exactly once"
    );
    let by_each: Vec<u64> = deliverers
        .iter()
        .map(|d| {
            d.stats()
                .delivered
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .collect();
    assert_eq!(by_each.iter().sum::<u64>(), 200);
    let metas = all_messages(&db.store, Mailbox::Incoming).await;
    assert!(
        metas
            .iter()
            .all(|m| m.state == InboundState::Processed && m.attempts == 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliverer_killed_mid_run_loses_nothing() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gitlab = stand_in().await;
    gitlab.set_delay(Duration::from_millis(10));
    let raws: Vec<Vec<u8>> = (0..100).map(message).collect();
    store_messages(&db.store, Mailbox::Incoming, &raws).await;
    let first = Arc::new(Deliverer::new(
        second_store(&db).await,
        incoming_webhook_route(&gitlab, dir.path()),
        fast_options(),
    ));
    let running = tokio::spawn({
        let d = first.clone();
        async move { d.run(postern_vocab::Shutdown::never()).await }
    });
    let started = wait_until(Duration::from_secs(60), async || {
        gitlab.received().len() >= 30
    })
    .await;
    assert!(started);
    // The crash: the task is dropped wherever it is, perhaps between GitLab's 200 and the commit.
    running.abort();
    let _ = running.await;
    drop(first);
    let before_restart = gitlab.received().len();
    assert!(before_restart < raws.len(), "killed before the end");

    let second = Arc::new(Deliverer::new(
        db.store.clone(),
        incoming_webhook_route(&gitlab, dir.path()),
        fast_options(),
    ));
    let (stop, stopped) = postern_vocab::Shutdown::new();
    let running = tokio::spawn({
        let d = second.clone();
        async move { d.run(stopped).await }
    });
    let all_there = wait_until(Duration::from_secs(120), async || {
        let counts = counts(&gitlab.received());
        raws.iter().all(|r| counts.contains_key(r))
    })
    .await;
    let settled = wait_until(Duration::from_secs(30), async || {
        all_messages(&db.store, Mailbox::Incoming)
            .await
            .iter()
            .all(|m| m.state == InboundState::Processed)
    })
    .await;
    stop.stop();
    running.await.unwrap();
    assert!(all_there, "every message reached GitLab after the restart");
    assert!(
        settled,
        "every message recorded as processed (the stale claim was taken over)"
    );
    let received = gitlab.received();
    let in_flight = fast_options().concurrency;
    assert!(
        received.len() <= raws.len() + in_flight,
        "at most the messages in flight at the crash twice, got {} for {}",
        received.len(),
        raws.len()
    );
    assert!(
        counts(&received).values().all(|n| *n <= 2),
        "none more than twice"
    );
}

/// What a killed instance leaves on PostgreSQL: messages claimed (`processing`) under its lease,
/// which nobody renews any more. Another deliverer leaves them alone while the lease lives and
/// delivers them as soon as it has expired, long before a claim without a lease would go stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claims_of_a_dead_instance_are_delivered_once_its_lease_expires() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gitlab = stand_in().await;
    let raws: Vec<Vec<u8>> = (0..6).map(message).collect();
    let ids = store_messages(&db.store, Mailbox::Incoming, &raws).await;
    let now = postern_store::Timestamp::now();
    let times = postern_store::LeaseTimes {
        ttl: Duration::from_secs(3600),
        renew_every: Duration::from_secs(1200),
    };
    let mut tx = db.store.begin().await.unwrap();
    let dead = tx
        .insert_lease("killed instance", now, &times)
        .await
        .unwrap();
    for id in &ids {
        assert!(tx.claim_inbound(*id, Some(dead), now).await.unwrap());
    }
    tx.commit().await.unwrap();

    let options = DelivererOptions {
        // A claim without a lease would wait this long: only the lease can free them sooner.
        claim_timeout: Duration::from_secs(3600),
        ..fast_options()
    };
    let deliverer = Deliverer::new(
        db.store.clone(),
        incoming_webhook_route(&gitlab, dir.path()),
        options,
    );
    let report = deliverer.deliver_due().await.unwrap();
    assert_eq!(
        report.delivered, 0,
        "held while the lease lives: {report:?}"
    );
    assert!(gitlab.received().is_empty());

    let mut tx = db.store.begin().await.unwrap();
    tx.end_lease(dead, postern_store::Timestamp::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let report = deliverer.deliver_due().await.unwrap();
    assert_eq!(report.delivered, raws.len() as u64, "{report:?}");
    let received = counts(&gitlab.received());
    assert!(raws.iter().all(|raw| received.get(raw) == Some(&1)));
    assert!(
        all_messages(&db.store, Mailbox::Incoming)
            .await
            .iter()
            .all(|m| m.state == InboundState::Processed && m.attempts == 2)
    );
}
