//! SMTP delivery through the private Postfix into Dovecot, and what happens when it fails.

use postern_outbox::{
    DeliveryError, Report, RetryPolicy, Secret, Sender, SenderOptions, SmtpTransport,
    Transport as _,
};
use postern_store::{OutboxState, Timestamp};
use postern_testkit::both;
use postern_testkit::mailserver::closed_port;

use crate::support::{
    DELIVERY_WAIT, assert_same_mail, enqueue, mail_server, message, plain, row, tag,
};

both!(delivered_through_postfix_byte_for_byte, |db| {
    let Some(server) = mail_server() else {
        return Ok(());
    };
    let tag = tag();
    let to = server.address(&tag);
    let raw = message(&tag, &to);
    let id = enqueue(&db.store, &[&to], &raw).await?;

    let sender = Sender::new(
        db.store.clone(),
        SmtpTransport::new(plain(server.smtp_port()))?,
    );
    let report = sender.deliver_due(10).await?;
    assert_eq!(
        report,
        Report {
            sent: 1,
            ..Report::default()
        }
    );
    let sent = row(&db.store, id).await?;
    assert_eq!((sent.state, sent.attempts), (OutboxState::Sent, 1));
    assert!(sent.sent_at.is_some() && sent.last_error.is_none() && sent.claimed_at.is_none());

    let delivered = server
        .wait_for_delivery(&to, "X-Postern-Test", &tag, 1, DELIVERY_WAIT)
        .await?;
    assert_eq!(delivered.len(), 1, "one copy");
    assert_same_mail(&raw, &delivered[0]);
    // Nothing is due any more, now or later.
    let later = Timestamp::now().plus_seconds(86_400);
    assert_eq!(sender.deliver_due_at(later, 10).await?, Report::default());
    Ok(())
});

both!(relay_down_then_back_delivers_exactly_once, |db| {
    let Some(server) = mail_server() else {
        return Ok(());
    };
    let tag = tag();
    let to = server.address(&tag);
    let raw = message(&tag, &to);
    let id = enqueue(&db.store, &[&to], &raw).await?;
    let before = Timestamp::now();

    // Nothing listens on this port: connection refused, which is temporary.
    let mut down = plain(closed_port());
    down.user = Some("postern".to_owned());
    down.password = Some(Secret::new("s3cret-never-shown"));
    let sender = Sender::new(db.store.clone(), SmtpTransport::new(down)?);
    assert!(!format!("{sender:?}").contains("s3cret-never-shown"));
    let report = sender.deliver_due(10).await?;
    assert_eq!(
        report,
        Report {
            retried: 1,
            ..Report::default()
        }
    );
    let queued = row(&db.store, id).await?;
    assert_eq!((queued.state, queued.attempts), (OutboxState::Queued, 1));
    // 30 s ± 20 % after the attempt: in the future, and not before 24 s.
    assert!(
        queued.next_attempt_at >= before.plus_seconds(24),
        "{queued:?}"
    );
    let error = queued.last_error.expect("the reason is recorded");
    assert!(error.contains("127.0.0.1"), "{error}");
    assert!(!error.contains("s3cret-never-shown"), "{error}");
    assert_eq!(queued.claimed_at, None, "the claim is released");
    // Backing off: a round now finds nothing due.
    assert_eq!(sender.deliver_due(10).await?, Report::default());

    // The relay is back (the right port); once the back-off has passed it is delivered.
    let back = Sender::new(
        db.store.clone(),
        SmtpTransport::new(plain(server.smtp_port()))?,
    );
    let due = queued.next_attempt_at;
    assert_eq!(
        back.deliver_due_at(due, 10).await?,
        Report {
            sent: 1,
            ..Report::default()
        }
    );
    let sent = row(&db.store, id).await?;
    assert_eq!((sent.state, sent.attempts), (OutboxState::Sent, 2));
    assert_eq!(sent.last_error, None);
    // Further rounds, however late, send nothing more.
    assert_eq!(
        back.deliver_due_at(due.plus_seconds(86_400), 10).await?,
        Report::default()
    );
    let delivered = server
        .wait_for_delivery(&to, "X-Postern-Test", &tag, 1, DELIVERY_WAIT)
        .await?;
    assert_eq!(delivered.len(), 1, "exactly one copy in the mailbox");
    assert_same_mail(&raw, &delivered[0]);
    Ok(())
});

both!(refused_recipient_fails_for_good_with_the_reason, |db| {
    let Some(server) = mail_server() else {
        return Ok(());
    };
    let tag = tag();
    let rejected = server.rejected_recipient();
    let id = enqueue(&db.store, &[&rejected], &message(&tag, &rejected)).await?;
    let not_an_address = enqueue(&db.store, &["no address here"], &message(&tag, "x")).await?;

    let sender = Sender::new(
        db.store.clone(),
        SmtpTransport::new(plain(server.smtp_port()))?,
    );
    assert_eq!(
        sender.deliver_due(10).await?,
        Report {
            failed: 2,
            ..Report::default()
        }
    );
    let failed = row(&db.store, id).await?;
    assert_eq!((failed.state, failed.attempts), (OutboxState::Failed, 1));
    let reason = failed.last_error.expect("reason");
    assert!(
        reason.contains("550") && reason.contains("mailbox unavailable"),
        "{reason}"
    );
    let invalid = row(&db.store, not_an_address).await?;
    assert_eq!(invalid.state, OutboxState::Failed);
    assert!(
        invalid
            .last_error
            .expect("reason")
            .contains("invalid recipient")
    );
    // Failed for good: never due again.
    let later = Timestamp::now().plus_seconds(30 * 86_400);
    assert_eq!(sender.deliver_due_at(later, 10).await?, Report::default());
    Ok(())
});

both!(temporary_failures_give_up_after_the_last_attempt, |db| {
    let tag = tag();
    let id = enqueue(
        &db.store,
        &["a@example.test"],
        &message(&tag, "a@example.test"),
    )
    .await?;
    let options = SenderOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        },
        ..SenderOptions::default()
    };
    let sender = Sender::new(db.store.clone(), SmtpTransport::new(plain(closed_port()))?)
        .with_options(options);
    assert_eq!(sender.deliver_due(10).await?.retried, 1);
    let due = row(&db.store, id).await?.next_attempt_at;
    assert_eq!(sender.deliver_due_at(due, 10).await?.failed, 1);
    let failed = row(&db.store, id).await?;
    assert_eq!((failed.state, failed.attempts), (OutboxState::Failed, 2));
    let reason = failed.last_error.expect("reason");
    assert!(reason.starts_with("gave up after 2 attempts: "), "{reason}");
    Ok(())
});

/// STARTTLS and implicit TLS against Postfix's self-signed certificate, with a login; the store
/// plays no part, so this runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_and_login() {
    let Some(server) = mail_server() else {
        return;
    };
    let ca = String::from_utf8(server.ca_pem()).expect("PEM is text");
    for (mode, port) in [
        (postern_outbox::TlsMode::StartTls, server.smtp_port()),
        (postern_outbox::TlsMode::Tls, server.smtps_port()),
    ] {
        let tag = tag();
        let to = server.address(&tag);
        let raw = message(&tag, &to);
        let mut settings = plain(port);
        settings.tls = mode;
        settings.ca_pem = Some(ca.clone());
        settings.user = Some(postern_testkit::mailserver::USER.to_owned());
        settings.password = Some(Secret::new(server.password()));
        let transport = SmtpTransport::new(settings).expect("valid settings");
        transport.check().await.expect("relay reachable");
        let recipients = [to.clone()];
        let mail = postern_outbox::Outgoing {
            id: 1,
            recipients: &recipients,
            raw: &raw,
        };
        transport
            .send(mail)
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let delivered = server
            .wait_for_delivery(
                &to,
                "X-Postern-Test",
                &tag,
                1,
                crate::support::DELIVERY_WAIT,
            )
            .await
            .expect("delivered");
        assert_eq!(delivered.len(), 1);
        assert_same_mail(&raw, &delivered[0]);
    }
}

/// A refused login and an untrusted certificate are the relay refusing us, not the mail: both
/// temporary, and neither error text shows the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_login_and_untrusted_certificate_are_temporary_and_secret() {
    let Some(server) = mail_server() else {
        return;
    };
    let secret = "wrong-and-secret-pw";
    let recipients = [server.address("never")];
    let raw = message(&tag(), &recipients[0]);
    let mail = postern_outbox::Outgoing {
        id: 1,
        recipients: &recipients,
        raw: &raw,
    };

    let mut wrong_login = plain(server.smtp_port());
    wrong_login.tls = postern_outbox::TlsMode::StartTls;
    wrong_login.ca_pem = Some(String::from_utf8(server.ca_pem()).expect("PEM"));
    wrong_login.user = Some(postern_testkit::mailserver::USER.to_owned());
    wrong_login.password = Some(Secret::new(secret));
    let transport = SmtpTransport::new(wrong_login.clone()).expect("valid settings");
    let error = transport.send(mail).await.expect_err("login refused");
    assert!(matches!(error, DeliveryError::Temporary(_)), "{error:?}");
    assert!(error.message().contains("535"), "{error}");
    for text in [
        error.to_string(),
        format!("{error:?}"),
        format!("{transport:?}"),
    ] {
        assert!(!text.contains(secret), "{text}");
    }

    let mut untrusted = wrong_login;
    untrusted.ca_pem = None;
    let transport = SmtpTransport::new(untrusted).expect("valid settings");
    let error = transport
        .send(mail)
        .await
        .expect_err("certificate not trusted");
    assert!(matches!(error, DeliveryError::Temporary(_)), "{error:?}");
    assert!(!error.to_string().contains(secret), "{error}");
}
