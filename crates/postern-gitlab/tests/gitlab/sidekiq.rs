//! Sidekiq delivery into a real Redis (Debian's redis-server, private, on loopback): the job
//! JSON GitLab's workers read, field by field, read back with LRANGE; a Redis outage keeps the
//! messages and delivers each exactly once after Redis is back.

use std::sync::Arc;
use std::time::Duration;

use postern_gitlab::{Deliverer, Destination, RedisSettings, Sidekiq};
use postern_store::{HandlerKind, InboundState, Mailbox};
use postern_testkit::redis::RedisServer;

use crate::common::*;

async fn lrange(url: &str, key: &str) -> Vec<serde_json::Value> {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let items: Vec<String> = redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap();
    // LPUSH puts the newest first; Sidekiq pops from the right, oldest first.
    items
        .iter()
        .rev()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_json_is_what_gitlab_reads_field_by_field() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let db = postern_testkit::TestDb::sqlite().await;
    let latin1 =
        b"Subject: caf\xe9\r\n\r\nd\xe9j\xe0 vu, tr\xe8s \xe9l\xe9gant, cr\xe8me br\xfbl\xe9e\r\n"
            .to_vec();
    let utf8 = "Subject: Grüße\r\n\r\nÄrger\r\n".as_bytes().to_vec();
    store_messages(&db.store, Mailbox::Incoming, &[utf8.clone(), latin1]).await;
    store_messages(&db.store, Mailbox::ServiceDesk, &[message(9)]).await;
    let settings = RedisSettings::new(server.url());
    let deliverer = Deliverer::new(
        db.store.clone(),
        vec![
            (
                Mailbox::Incoming,
                Destination::Sidekiq(Sidekiq::new(&settings, Mailbox::Incoming).unwrap()),
            ),
            (
                Mailbox::ServiceDesk,
                Destination::Sidekiq(Sidekiq::new(&settings, Mailbox::ServiceDesk).unwrap()),
            ),
        ],
        // One at a time: this test reads the jobs in the order the messages were stored.
        postern_gitlab::DelivererOptions {
            concurrency: 1,
            ..fast_options()
        },
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let report = deliverer.deliver_due().await.unwrap();
    assert_eq!(report.delivered, 3);

    let jobs = lrange(&server.url(), "queue:default").await;
    assert_eq!(jobs.len(), 3);
    let fields = |job: &serde_json::Value| {
        let mut keys: Vec<_> = job.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    for job in &jobs {
        assert_eq!(
            fields(job),
            [
                "args",
                "class",
                "created_at",
                "enqueued_at",
                "jid",
                "queue",
                "retry"
            ]
        );
        assert_eq!(job["queue"], "default");
        assert_eq!(job["retry"], false);
        let jid = job["jid"].as_str().unwrap();
        assert_eq!(jid.len(), 24);
        assert!(
            jid.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let at = job["enqueued_at"].as_f64().expect("enqueued_at is a float");
        assert!(at >= before - 1.0 && at < before + 60.0);
        assert_eq!(job["created_at"].as_f64(), Some(at));
        assert_eq!(job["args"].as_array().unwrap().len(), 1);
    }
    assert_eq!(jobs[0]["class"], "EmailReceiverWorker");
    assert_eq!(jobs[0]["args"][0], String::from_utf8(utf8).unwrap());
    assert_eq!(jobs[1]["class"], "EmailReceiverWorker");
    let converted = jobs[1]["args"][0].as_str().unwrap();
    assert!(
        converted.contains("déjà vu, très élégant, crème brûlée"),
        "{converted}"
    );
    assert_eq!(jobs[2]["class"], "ServiceDeskEmailReceiverWorker");
    assert_ne!(jobs[0]["jid"], jobs[1]["jid"]);
    for meta in all_messages(&db.store, Mailbox::Incoming).await {
        assert_eq!(meta.state, InboundState::Processed);
        assert_eq!(meta.handler, Some(HandlerKind::Sidekiq));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_then_up_delivers_each_message_once() {
    let Some(mut server) = RedisServer::start_or_skip() else {
        return;
    };
    let db = postern_testkit::TestDb::sqlite().await;
    let settings = RedisSettings::new(server.url());
    let sidekiq = Sidekiq::new(&settings, Mailbox::Incoming).unwrap();
    // Connected once, then Redis dies: the kept connection breaks.
    sidekiq.ping().await.expect("Redis up");
    server.stop();
    let deliverer = Arc::new(Deliverer::new(
        db.store.clone(),
        vec![(Mailbox::Incoming, Destination::Sidekiq(sidekiq))],
        fast_options(),
    ));
    let raws: Vec<Vec<u8>> = (0..6).map(message).collect();
    store_messages(&db.store, Mailbox::Incoming, &raws).await;
    let (stop, stopped) = postern_vocab::Shutdown::new();
    let running = tokio::spawn({
        let d = deliverer.clone();
        async move { d.run(stopped).await }
    });
    let failed = wait_until(Duration::from_secs(30), async || {
        deliverer
            .stats()
            .retried
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    })
    .await;
    assert!(failed, "attempts fail while Redis is down");
    let processed = all_messages(&db.store, Mailbox::Incoming)
        .await
        .iter()
        .filter(|m| m.state == InboundState::Processed)
        .count();
    assert_eq!(processed, 0, "nothing acknowledged while Redis is down");
    server.restart().expect("Redis back");
    deliverer.notify();
    let url = server.url();
    let done = wait_until(Duration::from_secs(60), async || {
        lrange(&url, "queue:default").await.len() >= raws.len()
    })
    .await;
    stop.stop();
    running.await.unwrap();
    assert!(done, "delivered after Redis came back");
    let jobs = lrange(&url, "queue:default").await;
    let mut bodies: Vec<String> = jobs
        .iter()
        .map(|j| j["args"][0].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    let mut expected: Vec<String> = raws
        .iter()
        .map(|r| postern_gitlab::sidekiq::to_utf8(r))
        .collect();
    expected.sort();
    assert_eq!(bodies, expected, "each exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_pushed_before_a_crash_is_not_pushed_again() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let settings = RedisSettings::new(server.url());
    let incoming = Sidekiq::new(&settings, Mailbox::Incoming).unwrap();
    let service_desk = Sidekiq::new(&settings, Mailbox::ServiceDesk).unwrap();
    let raw = message(1);
    // The attempt whose outcome a crash kept from the store, then the retry after restart.
    assert_eq!(
        incoming.deliver(&raw, "<1@x>|ab").await.unwrap(),
        postern_gitlab::Pushed::New
    );
    assert_eq!(
        incoming.deliver(&raw, "<1@x>|ab").await.unwrap(),
        postern_gitlab::Pushed::Already
    );
    // Another message, and the same message through the other mailbox, are pushed: the marker
    // names the mailbox (mail_room's `delivered:<uid>` collides across mailboxes).
    assert_eq!(
        incoming.deliver(&message(2), "<2@x>|cd").await.unwrap(),
        postern_gitlab::Pushed::New
    );
    assert_eq!(
        service_desk.deliver(&raw, "<1@x>|ab").await.unwrap(),
        postern_gitlab::Pushed::New
    );
    assert_eq!(lrange(&server.url(), "queue:default").await.len(), 3);

    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(incoming.marker_key("<1@x>|ab"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= postern_gitlab::sidekiq::MARKER_TTL_SECONDS as i64,
        "the marker expires: {ttl}"
    );
    assert_eq!(
        incoming.marker_key("k"),
        "postern:delivered:incoming_email:k"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deliverer_records_a_message_found_already_pushed_as_delivered_once() {
    let Some(server) = RedisServer::start_or_skip() else {
        return;
    };
    let db = postern_testkit::TestDb::sqlite().await;
    store_messages(&db.store, Mailbox::Incoming, &[message(1), message(2)]).await;
    let settings = RedisSettings::new(server.url());
    let stored = all_messages(&db.store, Mailbox::Incoming).await;
    // As if an earlier process had pushed the first message and died before recording it.
    let earlier = Sidekiq::new(&settings, Mailbox::Incoming).unwrap();
    earlier
        .deliver(&message(1), &stored[0].content_identity)
        .await
        .unwrap();
    let deliverer = Deliverer::new(
        db.store.clone(),
        vec![(
            Mailbox::Incoming,
            Destination::Sidekiq(Sidekiq::new(&settings, Mailbox::Incoming).unwrap()),
        )],
        fast_options(),
    );
    let report = deliverer.deliver_due().await.unwrap();
    assert_eq!(report.delivered, 2);
    assert_eq!(lrange(&server.url(), "queue:default").await.len(), 2);
    for meta in all_messages(&db.store, Mailbox::Incoming).await {
        assert_eq!(meta.state, InboundState::Processed);
        let outcome: serde_json::Value =
            serde_json::from_str(meta.outcome.as_deref().unwrap()).unwrap();
        assert_eq!(
            outcome.get("already_delivered").is_some(),
            meta.id == stored[0].id,
            "{outcome}"
        );
    }
}
