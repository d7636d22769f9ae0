//! Webhook delivery against the stand-in of GitLab's internal mail_room API, which verifies the
//! JWT as GitLab does: tokens GitLab would refuse are refused, stored messages arrive byte for
//! byte exactly once, outages and 500s are retried without loss or duplicates, and "too large"
//! is recorded as a rejection with GitLab's reason.

use std::sync::Arc;
use std::time::Duration;

use postern_gitlab::{Deliverer, Destination, JwtSigner};
use postern_store::{ErrorKind, HandlerKind, InboundState, Mailbox};
use postern_testkit::both;
use postern_testkit::gitlab::{GitlabConfig, GitlabStandIn, MailboxAuth, TOO_LARGE};

use crate::common::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test]
async fn the_stand_in_verifies_the_jwt_as_gitlab_does() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = stand_in().await;
    let incoming = webhook(
        &gitlab,
        Mailbox::Incoming,
        signer(dir.path(), &INCOMING_SECRET),
    );
    let good = incoming.signer().clone();
    let body = || b"Subject: x\r\n\r\ny\r\n".to_vec();

    let ok = incoming.post(body(), &good.token().unwrap()).await.unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);

    let wrong = signer(dir.path(), &[1; 32]);
    let cases = [
        ("wrong secret", wrong.token().unwrap()),
        (
            "the other mailbox's secret",
            signer(dir.path(), &SERVICE_DESK_SECRET).token().unwrap(),
        ),
        (
            "iat older than 5 minutes",
            good.token_issued_at(now() - 301).unwrap(),
        ),
        (
            "iat in the future",
            good.token_issued_at(now() + 120).unwrap(),
        ),
        ("wrong issuer", good.token_with("mailroom", now()).unwrap()),
        ("not a token", "garbage".to_owned()),
    ];
    for (what, token) in cases {
        let answer = incoming.post(body(), &token).await.unwrap();
        assert_eq!(answer.status, 401, "{what}");
    }
    // A token 4 minutes old is still good.
    let answer = incoming
        .post(body(), &good.token_issued_at(now() - 240).unwrap())
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    // The Service Desk endpoint takes its own secret only.
    let sd = webhook(
        &gitlab,
        Mailbox::ServiceDesk,
        signer(dir.path(), &SERVICE_DESK_SECRET),
    );
    assert_eq!(
        sd.post(body(), &sd.signer().token().unwrap())
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        sd.post(body(), &good.token().unwrap())
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(gitlab.received().len(), 3);
    let nonces: Vec<_> = gitlab
        .received()
        .iter()
        .map(|r| r.nonce.clone().unwrap_or_default())
        .collect();
    assert!(nonces.iter().all(|n| n.len() == 24), "{nonces:?}");
    assert_ne!(nonces[0], nonces[1], "a fresh nonce per token");
}

#[tokio::test]
async fn es256_tokens_are_accepted_where_gitlab_has_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("mailroom.key");
    let public = dir.path().join("mailroom.pub");
    let status = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&key)
        .status()
        .expect("openssl");
    assert!(status.success());
    let status = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("openssl");
    assert!(status.success());
    let signer = JwtSigner::es256_from_pem_file(&key).expect("ES256 signer");
    let token = signer.token().unwrap();
    let kid = jsonwebtoken::decode_header(&token)
        .unwrap()
        .kid
        .expect("kid");
    assert_eq!(kid.len(), 43, "base64url SHA-256 thumbprint");
    let gitlab = GitlabStandIn::start(GitlabConfig {
        incoming: MailboxAuth {
            secret: Some(INCOMING_SECRET.to_vec()),
            es256: Some((std::fs::read(&public).unwrap(), kid)),
        },
        ..GitlabConfig::default()
    })
    .await;
    let hook = webhook(&gitlab, Mailbox::Incoming, signer);
    assert_eq!(hook.post(b"x".to_vec(), &token).await.unwrap().status, 200);
    hook.deliver(b"y").await.expect("delivered with ES256");
}

both!(stored_messages_arrive_byte_for_byte_once, |db| {
    let dir = tempfile::tempdir()?;
    let gitlab = stand_in().await;
    let raws: Vec<Vec<u8>> = (0..30).map(message).collect();
    let sd_raws: Vec<Vec<u8>> = (100..105).map(message).collect();
    store_messages(&db.store, Mailbox::Incoming, &raws).await;
    store_messages(&db.store, Mailbox::ServiceDesk, &sd_raws).await;
    let deliverer = Deliverer::new(
        db.store.clone(),
        vec![
            (
                Mailbox::Incoming,
                Destination::Webhook(webhook(
                    &gitlab,
                    Mailbox::Incoming,
                    signer(dir.path(), &INCOMING_SECRET),
                )),
            ),
            (
                Mailbox::ServiceDesk,
                Destination::Webhook(webhook(
                    &gitlab,
                    Mailbox::ServiceDesk,
                    signer(dir.path(), &SERVICE_DESK_SECRET),
                )),
            ),
        ],
        postern_gitlab::DelivererOptions {
            concurrency: 1,
            ..fast_options()
        },
    );
    for _ in 0..10 {
        deliverer.deliver_due().await?;
    }
    let received = gitlab.received();
    let incoming: Vec<_> = received
        .iter()
        .filter(|r| r.mailbox == "incoming_email")
        .map(|r| r.body.clone())
        .collect();
    let sd: Vec<_> = received
        .iter()
        .filter(|r| r.mailbox == "service_desk_email")
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(incoming, raws, "oldest first, byte for byte, once each");
    assert_eq!(sd, sd_raws);
    for meta in all_messages(&db.store, Mailbox::Incoming).await {
        assert_eq!(meta.state, InboundState::Processed);
        assert_eq!(meta.handler, Some(HandlerKind::Webhook));
        assert_eq!(meta.attempts, 1);
    }
    Ok(())
});

both!(
    a_500_for_a_while_is_retried_and_delivered_exactly_once,
    |db| {
        let dir = tempfile::tempdir()?;
        let gitlab = stand_in().await;
        let raws: Vec<Vec<u8>> = (0..10).map(message).collect();
        store_messages(&db.store, Mailbox::Incoming, &raws).await;
        gitlab.fail_next(4);
        let deliverer = Arc::new(Deliverer::new(
            db.store.clone(),
            vec![(
                Mailbox::Incoming,
                Destination::Webhook(webhook(
                    &gitlab,
                    Mailbox::Incoming,
                    signer(dir.path(), &INCOMING_SECRET),
                )),
            )],
            fast_options(),
        ));
        let (stop, stopped) = postern_vocab::Shutdown::new();
        let running = tokio::spawn({
            let d = deliverer.clone();
            async move { d.run(stopped).await }
        });
        let done = wait_until(Duration::from_secs(60), async || {
            gitlab.received().len() >= raws.len()
        })
        .await;
        stop.stop();
        running.await?;
        assert!(done, "all delivered after the 500s");
        let mut bodies: Vec<_> = gitlab.received().into_iter().map(|r| r.body).collect();
        bodies.sort();
        let mut expected = raws.clone();
        expected.sort();
        assert_eq!(bodies, expected, "each exactly once");
        let metas = all_messages(&db.store, Mailbox::Incoming).await;
        assert!(metas.iter().all(|m| m.state == InboundState::Processed));
        assert!(metas.iter().any(|m| m.attempts > 1), "some were retried");
        assert!(
            deliverer
                .stats()
                .retried
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 4
        );
        Ok(())
    }
);

both!(an_endpoint_that_is_down_then_up_gets_everything, |db| {
    let dir = tempfile::tempdir()?;
    let mut gitlab = stand_in().await;
    let hook = webhook(
        &gitlab,
        Mailbox::Incoming,
        signer(dir.path(), &INCOMING_SECRET),
    );
    gitlab.go_down().await;
    let raws: Vec<Vec<u8>> = (0..5).map(message).collect();
    store_messages(&db.store, Mailbox::Incoming, &raws).await;
    let deliverer = Arc::new(Deliverer::new(
        db.store.clone(),
        vec![(Mailbox::Incoming, Destination::Webhook(hook))],
        fast_options(),
    ));
    let (stop, stopped) = postern_vocab::Shutdown::new();
    let running = tokio::spawn({
        let d = deliverer.clone();
        async move { d.run(stopped).await }
    });
    let failed = wait_until(Duration::from_secs(20), async || {
        deliverer
            .stats()
            .retried
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    })
    .await;
    assert!(failed, "attempts while down fail and are retried");
    let metas = all_messages(&db.store, Mailbox::Incoming).await;
    assert!(
        metas.iter().all(|m| m.state != InboundState::Processed),
        "nothing acknowledged while down"
    );
    gitlab.come_back().await;
    let more: Vec<Vec<u8>> = (5..8).map(message).collect();
    store_messages(&db.store, Mailbox::Incoming, &more).await;
    deliverer.notify();
    let done = wait_until(Duration::from_secs(60), async || {
        gitlab.received().len() >= 8
    })
    .await;
    stop.stop();
    running.await?;
    assert!(done, "everything delivered once the endpoint is back");
    assert_eq!(gitlab.received().len(), 8, "no duplicates");
    Ok(())
});

both!(
    too_large_is_recorded_as_rejected_with_gitlabs_reason,
    |db| {
        let dir = tempfile::tempdir()?;
        let gitlab = GitlabStandIn::start(GitlabConfig {
            incoming: MailboxAuth {
                secret: Some(INCOMING_SECRET.to_vec()),
                es256: None,
            },
            max_size: Some(1000),
            ..GitlabConfig::default()
        })
        .await;
        let mut big = message(1);
        big.extend(std::iter::repeat_n(b'x', 2000));
        let ids = store_messages(&db.store, Mailbox::Incoming, &[big, message(2)]).await;
        let deliverer = Deliverer::new(
            db.store.clone(),
            vec![(
                Mailbox::Incoming,
                Destination::Webhook(webhook(
                    &gitlab,
                    Mailbox::Incoming,
                    signer(dir.path(), &INCOMING_SECRET),
                )),
            )],
            fast_options(),
        );
        let report = deliverer.deliver_due().await?;
        assert_eq!((report.delivered, report.rejected), (1, 1));
        let metas = all_messages(&db.store, Mailbox::Incoming).await;
        let big = metas.iter().find(|m| m.id == ids[0]).unwrap();
        assert_eq!(big.state, InboundState::Rejected);
        assert_eq!(big.error_kind, Some(ErrorKind::EmailTooLarge));
        assert_eq!(big.reason.as_deref(), Some(TOO_LARGE));
        assert_eq!(gitlab.received().len(), 1);
        Ok(())
    }
);

#[tokio::test]
async fn a_wrong_secret_keeps_the_message_for_later() {
    let dir = tempfile::tempdir().unwrap();
    let db = postern_testkit::TestDb::sqlite().await;
    let gitlab = stand_in().await;
    store_messages(&db.store, Mailbox::Incoming, &[message(1)]).await;
    let deliverer = Deliverer::new(
        db.store.clone(),
        vec![(
            Mailbox::Incoming,
            Destination::Webhook(webhook(
                &gitlab,
                Mailbox::Incoming,
                signer(dir.path(), &[3; 32]),
            )),
        )],
        fast_options(),
    );
    let report = deliverer.deliver_due().await.unwrap();
    assert_eq!(report.retried, 1);
    let meta = &all_messages(&db.store, Mailbox::Incoming).await[0];
    assert_eq!(meta.state, InboundState::FailedTemporary);
    assert_eq!(meta.error_kind, Some(ErrorKind::WebhookUnauthorized));
    assert_eq!(gitlab.unauthorized(), 1);
}

#[tokio::test]
async fn an_imported_gitlab_yml_drives_delivery_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = stand_in().await;
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    postern_testkit::gitlab::write_secret_file(
        &dir.path().join(".gitlab_mailroom_secret"),
        &INCOMING_SECRET,
    );
    postern_testkit::gitlab::write_secret_file(
        &dir.path().join(".sd_secret"),
        &SERVICE_DESK_SECRET,
    );
    let yml = format!(
        "production:\n  incoming_email:\n    enabled: true\n    address: \"incoming+%{{key}}@example.com\"\n    delivery_method: webhook\n    gitlab_url: \"{url}/\"\n  service_desk_email:\n    enabled: true\n    address: \"sd+%{{key}}@example.com\"\n    delivery_method: webhook\n    gitlab_url: \"{url}\"\n    secret_file: .sd_secret\n",
        url = gitlab.url()
    );
    std::fs::write(config_dir.join("gitlab.yml"), yml).unwrap();
    let config = postern_gitlab::load(&config_dir.join("gitlab.yml")).unwrap();
    let routes =
        postern_gitlab::destinations(&config, &postern_gitlab::WebhookOptions::default()).unwrap();
    assert_eq!(routes.len(), 2);
    let db = postern_testkit::TestDb::sqlite().await;
    store_messages(&db.store, Mailbox::Incoming, &[message(1)]).await;
    store_messages(&db.store, Mailbox::ServiceDesk, &[message(2)]).await;
    let deliverer = Deliverer::new(db.store.clone(), routes, fast_options());
    let report = deliverer.deliver_due().await.unwrap();
    assert_eq!(report.delivered, 2);
    let received = gitlab.received();
    assert_eq!(received[0].mailbox, "incoming_email");
    assert_eq!(received[0].body, message(1));
    assert_eq!(received[1].mailbox, "service_desk_email");
    assert_eq!(received[1].body, message(2));
}

// GitLab (or the proxy before it) refuses one message again and again: after the configured
// number of the same refusal it is quarantined, and the messages behind it are delivered.
// GitLab being down never quarantines anything (see the 500 test above).
both!(a_message_gitlab_keeps_refusing_is_quarantined, |db| {
    let dir = tempfile::tempdir()?;
    let gitlab = stand_in().await;
    let mut raws: Vec<Vec<u8>> = (0..3).map(message).collect();
    raws[1].extend_from_slice(b"REFUSE-ME\r\n");
    store_messages(&db.store, Mailbox::Incoming, &raws).await;
    gitlab.refuse_containing(b"REFUSE-ME");
    let deliverer = Deliverer::new(
        db.store.clone(),
        vec![(
            Mailbox::Incoming,
            Destination::Webhook(webhook(
                &gitlab,
                Mailbox::Incoming,
                signer(dir.path(), &INCOMING_SECRET),
            )),
        )],
        postern_gitlab::DelivererOptions {
            retry: postern_vocab::Backoff::new(Duration::ZERO, Duration::ZERO),
            ..fast_options()
        },
    );
    let mut states = Vec::new();
    for _ in 0..20 {
        deliverer.deliver_due().await?;
        states = all_messages(&db.store, Mailbox::Incoming)
            .await
            .iter()
            .map(|m| m.state)
            .collect();
        if states[1] == InboundState::Quarantined {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        states,
        vec![
            InboundState::Processed,
            InboundState::Quarantined,
            InboundState::Processed
        ]
    );
    let refused = &all_messages(&db.store, Mailbox::Incoming).await[1];
    assert_eq!(refused.error_kind, Some(ErrorKind::WebhookRefused));
    assert_eq!(refused.failure_streak, 3);
    assert!(
        refused
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("422"),
        "{refused:?}"
    );
    Ok(())
});
