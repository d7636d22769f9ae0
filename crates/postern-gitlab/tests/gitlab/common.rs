//! Helpers shared by the delivery tests: storing messages as the intake does, fast deliverer
//! options, bounded waits.

use std::time::Duration;

use postern_gitlab::{DelivererOptions, JwtSigner, Webhook, WebhookOptions};
use postern_store::{InboundFilter, InboundMeta, InboundSource, Mailbox, NewInbound, Store};
use postern_testkit::gitlab::{GitlabConfig, GitlabStandIn, MailboxAuth, write_secret_file};

/// The incoming mailbox's secret in these tests.
pub const INCOMING_SECRET: [u8; 32] = [7; 32];
/// The Service Desk mailbox's secret in these tests.
pub const SERVICE_DESK_SECRET: [u8; 32] = [9; 32];

/// A message with a unique Message-ID, CRLF line ends and a few non-UTF-8 bytes, so that
/// byte-for-byte delivery is tested, not just text.
pub fn message(n: usize) -> Vec<u8> {
    let mut raw = format!(
        "Message-ID: <m{n}@example.com>\r\nFrom: a@example.com\r\nTo: incoming+key@example.com\r\nSubject: message {n}\r\n\r\nbody {n}\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(b"caf\xe9 \x00\xff\r\n");
    raw
}

/// Stores `raws` in `mailbox` as the intake does (state `received`); returns the ids.
pub async fn store_messages(store: &Store, mailbox: Mailbox, raws: &[Vec<u8>]) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut tx = store.begin().await.expect("begin");
    for raw in raws {
        let message_id = format!("{}", ids.len());
        let new = NewInbound {
            mailbox,
            source: InboundSource::Imap,
            message_id: None,
            raw: raw.as_slice().into(),
            source_identity: None,
            content_identity: postern_store::content_identity(Some(&message_id), raw),
            declared_size: None,
        };
        match tx.insert_inbound(&new).await.expect("insert") {
            postern_store::InsertOutcome::New(id) => ids.push(id),
            other => panic!("not stored: {other:?}"),
        }
    }
    tx.commit().await.expect("commit");
    ids
}

/// Every inbound message of `mailbox`, oldest first.
pub async fn all_messages(store: &Store, mailbox: Mailbox) -> Vec<InboundMeta> {
    let mut tx = store.begin().await.expect("begin");
    let list = tx
        .list_inbound(&InboundFilter {
            mailbox: Some(mailbox),
            limit: 100_000,
            oldest_first: true,
            ..InboundFilter::default()
        })
        .await
        .expect("list");
    tx.commit().await.expect("commit");
    list
}

/// Options that make the tests quick: short polls, back-off, stale claims and leases.
pub fn fast_options() -> DelivererOptions {
    DelivererOptions {
        batch: 20,
        poll_interval: Duration::from_millis(100),
        claim_timeout: Duration::from_secs(2),
        lease: postern_store::LeaseTimes {
            ttl: Duration::from_secs(3),
            renew_every: Duration::from_millis(500),
        },
        retry: postern_vocab::Backoff::new(Duration::from_millis(100), Duration::from_millis(500)),
        concurrency: 4,
        quarantine_after: 3,
    }
}

/// A stand-in with both mailboxes enabled, each with its own secret.
pub async fn stand_in() -> GitlabStandIn {
    GitlabStandIn::start(GitlabConfig {
        incoming: MailboxAuth {
            secret: Some(INCOMING_SECRET.to_vec()),
            es256: None,
        },
        service_desk: MailboxAuth {
            secret: Some(SERVICE_DESK_SECRET.to_vec()),
            es256: None,
        },
        max_size: None,
    })
    .await
}

/// A signer reading `secret` from a file written as GitLab writes it.
pub fn signer(dir: &std::path::Path, secret: &[u8]) -> JwtSigner {
    let path = dir.join(format!("secret-{}", secret[0]));
    write_secret_file(&path, secret);
    JwtSigner::hs256_from_file(&path).expect("read the secret file")
}

/// The webhook of `mailbox` on the stand-in.
pub fn webhook(gitlab: &GitlabStandIn, mailbox: Mailbox, signer: JwtSigner) -> Webhook {
    let client = postern_gitlab::webhook::http_client(&WebhookOptions {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        pool_idle_timeout: Duration::from_secs(30),
    })
    .expect("client");
    Webhook::new(client, &gitlab.url(), mailbox, signer).expect("webhook")
}

/// The one route most deliverer tests use: the incoming mailbox to the stand-in's webhook,
/// signed with `INCOMING_SECRET` kept in `dir`.
pub fn incoming_webhook_route(
    gitlab: &GitlabStandIn,
    dir: &std::path::Path,
) -> Vec<(Mailbox, postern_gitlab::Destination)> {
    vec![(
        Mailbox::Incoming,
        postern_gitlab::Destination::Webhook(webhook(
            gitlab,
            Mailbox::Incoming,
            signer(dir, &INCOMING_SECRET),
        )),
    )]
}

/// Waits (at most `limit`) until `done` holds, checking every 50 ms.
pub async fn wait_until(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done().await
}
