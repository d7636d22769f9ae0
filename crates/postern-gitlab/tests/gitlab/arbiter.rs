//! Arbitration between companion instances through a real Redis (Debian's redis-server,
//! private): claims are recognised by their instance after a restart; the incoming and Service
//! Desk mailboxes never share a claim; a holder that never comes back is taken over when its
//! hold ends; two deliverers with stores of their own deliver each message once; GitLab's
//! refusal is final for every instance; instances on a mailbox see one another.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postern_gitlab::{Arbiter, Claim, Deliverer, RedisSettings};
use postern_store::{InboundSource, InboundState, Mailbox, NewInbound, Store};
use postern_testkit::TestDb;
use postern_testkit::redis::RedisServer;

use crate::common::*;

const INCOMING: &str = "imap:gitlab@mail.example.org/inbox:1700000000:42";
const SERVICE_DESK: &str = "imap:gitlab@mail.example.org/desk:1700000000:42";

fn arbiter(server: &RedisServer, instance: &str) -> Arbiter {
    Arbiter::new(&RedisSettings::new(server.url()), instance).unwrap()
}

/// Shortens the life of `key` to one second, as if its holder had stopped renewing it long ago.
async fn expire_soon(server: &RedisServer, key: &str) {
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let set: i64 = redis::cmd("EXPIRE")
        .arg(key)
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(set, 1, "{key} exists");
}

/// Stores `raws` as an IMAP watcher does: each with its source identity (`<source>:1:<n>`).
async fn store_fetched(store: &Store, source: &str, raws: &[Vec<u8>]) {
    let mut tx = store.begin().await.unwrap();
    for (n, raw) in raws.iter().enumerate() {
        let new = NewInbound {
            mailbox: Mailbox::Incoming,
            source: InboundSource::Imap,
            message_id: None,
            raw: raw.as_slice().into(),
            source_identity: Some(format!("{source}:1:{n}")),
            content_identity: postern_store::content_identity(Some(&n.to_string()), raw),
            declared_size: None,
        };
        tx.insert_inbound(&new).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn states(messages: &[postern_store::InboundMeta]) -> HashMap<InboundState, usize> {
    let mut map = HashMap::new();
    for m in messages {
        *map.entry(m.state).or_insert(0) += 1;
    }
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_recognises_its_own_claims_after_a_restart() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let a = arbiter(&server, "aaaa");
    let b = arbiter(&server, "bbbb");
    assert_eq!(a.claim(INCOMING).await.unwrap(), Claim::Deliver);
    // A restart: a new arbiter with the id kept in the data directory.
    drop(a);
    let a = arbiter(&server, "aaaa");
    assert_eq!(a.claim(INCOMING).await.unwrap(), Claim::Deliver);
    match b.claim(INCOMING).await.unwrap() {
        Claim::HeldElsewhere {
            instance,
            seconds_left,
        } => {
            assert_eq!(instance, "aaaa");
            assert!(seconds_left > 60, "{seconds_left}");
        }
        other => panic!("{other:?}"),
    }
    assert!(a.delivered(INCOMING).await.unwrap());
    drop(a);
    let a = arbiter(&server, "aaaa");
    // Delivered before the restart: recorded as delivered, not delivered again.
    assert_eq!(a.claim(INCOMING).await.unwrap(), Claim::DeliveredHere);
    assert_eq!(
        b.claim(INCOMING).await.unwrap(),
        Claim::DeliveredElsewhere {
            instance: "aaaa".to_owned()
        }
    );
    // A failed delivery releases the claim: the other instance may try.
    assert_eq!(a.claim(SERVICE_DESK).await.unwrap(), Claim::Deliver);
    a.release(SERVICE_DESK).await.unwrap();
    assert_eq!(b.claim(SERVICE_DESK).await.unwrap(), Claim::Deliver);
    // Another instance's claim is neither released nor marked done by this one.
    a.release(SERVICE_DESK).await.unwrap();
    assert!(!a.delivered(SERVICE_DESK).await.unwrap());
    assert_eq!(b.claim(SERVICE_DESK).await.unwrap(), Claim::Deliver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_and_service_desk_messages_with_one_uid_are_claimed_apart() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let a = arbiter(&server, "aaaa");
    let b = arbiter(&server, "bbbb");
    assert_eq!(a.claim(INCOMING).await.unwrap(), Claim::Deliver);
    assert!(a.delivered(INCOMING).await.unwrap());
    // mail_room's `delivered:42` would say the Service Desk message was delivered too.
    assert_eq!(b.claim(SERVICE_DESK).await.unwrap(), Claim::Deliver);
    assert_ne!(a.key(INCOMING), a.key(SERVICE_DESK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_never_comes_back_is_taken_over_when_its_hold_ends() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let gitlab = stand_in().await;
    let source = "imap:gitlab@mail.example.org/inbox";
    store_fetched(&db.store, source, &[message(0)]).await;
    // Instance A claimed the message and died with its data directory.
    let dead = arbiter(&server, "dead");
    let identity = format!("{source}:1:0");
    assert_eq!(dead.claim(&identity).await.unwrap(), Claim::Deliver);
    let deliverer = Arc::new(
        Deliverer::new(
            db.store.clone(),
            incoming_webhook_route(&gitlab, dir.path()),
            fast_options(),
        )
        .with_arbiter(Arc::new(arbiter(&server, "live"))),
    );
    let report = deliverer.deliver_due().await.unwrap();
    assert_eq!(report.skipped, 1, "{report:?}");
    let waiting = all_messages(&db.store, Mailbox::Incoming).await;
    assert_eq!(waiting[0].state, InboundState::FailedTemporary);
    assert_eq!(
        waiting[0].error_kind,
        Some(postern_store::ErrorKind::ClaimedByAnotherInstance)
    );
    assert!(gitlab.received().is_empty(), "nothing delivered while held");
    expire_soon(&server, &dead.key(&identity)).await;
    let (stop, shutdown) = postern_vocab::Shutdown::new();
    let running = tokio::spawn({
        let d = deliverer.clone();
        async move { d.run(shutdown).await }
    });
    let delivered = wait_until(Duration::from_secs(30), async || {
        all_messages(&db.store, Mailbox::Incoming).await[0].state == InboundState::Processed
    })
    .await;
    stop.stop();
    running.await.unwrap();
    assert!(delivered, "taken over once the hold ended");
    assert_eq!(gitlab.received().len(), 1);
    assert_eq!(
        dead.claim(&identity).await.unwrap(),
        Claim::DeliveredElsewhere {
            instance: "live".to_owned()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliverers_with_their_own_stores_deliver_each_message_once() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gitlab = stand_in().await;
    let raws: Vec<Vec<u8>> = (0..100).map(message).collect();
    let source = "imap:gitlab@mail.example.org/inbox";
    let mut dbs = Vec::new();
    let mut deliverers = Vec::new();
    for instance in ["aaaa", "bbbb"] {
        let db = TestDb::sqlite().await;
        // Both fetched every message before either acknowledged it.
        store_fetched(&db.store, source, &raws).await;
        deliverers.push(
            Deliverer::new(
                db.store.clone(),
                incoming_webhook_route(&gitlab, dir.path()),
                fast_options(),
            )
            .with_arbiter(Arc::new(arbiter(&server, instance))),
        );
        dbs.push(db);
    }
    let settled = wait_until(Duration::from_secs(60), async || {
        let (a, b) = tokio::join!(deliverers[0].deliver_due(), deliverers[1].deliver_due());
        a.unwrap();
        b.unwrap();
        let mut done = true;
        for db in &dbs {
            let states = states(&all_messages(&db.store, Mailbox::Incoming).await);
            done &= states
                .keys()
                .all(|s| matches!(s, InboundState::Processed | InboundState::Ignored));
        }
        done
    })
    .await;
    assert!(
        settled,
        "every message delivered or recorded as delivered elsewhere"
    );
    let mut bodies: HashMap<Vec<u8>, usize> = HashMap::new();
    for r in gitlab.received() {
        *bodies.entry(r.body.clone()).or_insert(0) += 1;
    }
    assert_eq!(bodies.len(), raws.len(), "every message reached GitLab");
    assert!(bodies.values().all(|n| *n == 1), "none twice");
    let mut processed = 0;
    for db in &dbs {
        let messages = all_messages(&db.store, Mailbox::Incoming).await;
        for m in &messages {
            if m.state == InboundState::Ignored {
                assert!(
                    m.reason
                        .as_deref()
                        .is_some_and(|r| r.contains("another postern instance")),
                    "{m:?}"
                );
                assert_eq!(m.error_kind, None);
            }
        }
        processed += states(&messages)
            .get(&InboundState::Processed)
            .copied()
            .unwrap_or(0);
    }
    assert_eq!(processed, raws.len(), "each delivered by one of the two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_a_mailbox_see_one_another_until_they_go_quiet() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let a = arbiter(&server, "aaaa");
    let b = arbiter(&server, "bbbb");
    let mailbox = "imap:gitlab@mail.example.org/inbox";
    assert!(a.announce(mailbox).await.unwrap().is_empty());
    assert_eq!(b.announce(mailbox).await.unwrap(), ["aaaa"]);
    assert_eq!(a.announce(mailbox).await.unwrap(), ["bbbb"]);
    // Another mailbox of the same server and user is another mailbox.
    assert!(
        a.announce("imap:gitlab@mail.example.org/desk")
            .await
            .unwrap()
            .is_empty()
    );
    // `check` looks without announcing itself.
    let checker = arbiter(&server, "cccc");
    assert_eq!(
        checker.others_present(mailbox).await.unwrap(),
        ["aaaa", "bbbb"]
    );
    assert_eq!(a.others_present(mailbox).await.unwrap(), ["bbbb"]);
    // An instance that stopped announcing long ago is forgotten.
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(format!("postern:instances:{mailbox}"))
        .arg("bbbb")
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(a.announce(mailbox).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlabs_refusal_is_final_for_every_instance() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // GitLab refuses anything over 10 bytes as too large, and answers the sender once.
    let gitlab =
        postern_testkit::gitlab::GitlabStandIn::start(postern_testkit::gitlab::GitlabConfig {
            incoming: postern_testkit::gitlab::MailboxAuth {
                secret: Some(INCOMING_SECRET.to_vec()),
                es256: None,
            },
            max_size: Some(10),
            ..postern_testkit::gitlab::GitlabConfig::default()
        })
        .await;
    let source = "imap:gitlab@mail.example.org/inbox";
    let mut dbs = Vec::new();
    let mut deliverers = Vec::new();
    for instance in ["aaaa", "bbbb"] {
        let db = TestDb::sqlite().await;
        store_fetched(&db.store, source, &[message(0)]).await;
        deliverers.push(
            Deliverer::new(
                db.store.clone(),
                incoming_webhook_route(&gitlab, dir.path()),
                fast_options(),
            )
            .with_arbiter(Arc::new(arbiter(&server, instance))),
        );
        dbs.push(db);
    }
    let first = deliverers[0].deliver_due().await.unwrap();
    assert_eq!(first.rejected, 1, "{first:?}");
    let second = deliverers[1].deliver_due().await.unwrap();
    assert_eq!(second.skipped, 1, "{second:?}");
    assert_eq!(gitlab.requests(), 1, "GitLab was asked once");
    let other = all_messages(&dbs[1].store, Mailbox::Incoming).await;
    assert_eq!(other[0].state, InboundState::Ignored);
}
