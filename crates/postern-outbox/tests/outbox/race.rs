//! Two workers on one outbox send every mail once.

use std::sync::Arc;
use std::time::Duration;

use postern_outbox::{Sender, SmtpTransport};
use postern_store::OutboxState;
use postern_testkit::both;

use crate::support::{DELIVERY_WAIT, Recording, enqueue, mail_server, message, plain, row, tag};

/// How many mails each race queues.
const MAILS: usize = 12;

both!(two_workers_send_each_mail_once, |db| {
    let tag = tag();
    let mut ids = Vec::new();
    for i in 0..MAILS {
        let to = format!("r{i}@example.org");
        ids.push(enqueue(&db.store, &[&to], &message(&format!("{tag}-{i}"), &to)).await?);
    }
    // Both workers list the same due rows; the slow transport keeps their rounds overlapping.
    let transport = |_| Recording {
        delay: Duration::from_millis(20),
        ..Recording::default()
    };
    let a = Arc::new(Sender::new(db.store.clone(), transport(())));
    let b = Arc::new(Sender::new(db.store.clone(), transport(())));
    let (ra, rb) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { a.deliver_due(100).await }
        }),
        tokio::spawn({
            let b = b.clone();
            async move { b.deliver_due(100).await }
        }),
    );
    let (ra, rb) = (ra??, rb??);
    assert_eq!(ra.sent + rb.sent, MAILS as u64, "{ra:?} {rb:?}");
    assert_eq!(ra.retried + rb.retried + ra.failed + rb.failed, 0);

    let mut sent: Vec<i64> = a.transport().sent.lock().expect("lock").clone();
    sent.extend(b.transport().sent.lock().expect("lock").iter());
    sent.sort_unstable();
    assert_eq!(sent, ids, "every mail handed to a transport exactly once");
    for id in ids {
        assert_eq!(row(&db.store, id).await?.attempts, 1);
    }
    Ok(())
});

both!(two_workers_through_postfix_deliver_one_copy_each, |db| {
    let Some(server) = mail_server() else {
        return Ok(());
    };
    let tag = tag();
    let mut mails = Vec::new();
    for i in 0..MAILS {
        let mail_tag = format!("{tag}x{i:02}");
        let to = server.address(&mail_tag);
        let id = enqueue(&db.store, &[&to], &message(&mail_tag, &to)).await?;
        mails.push((id, to, mail_tag));
    }
    let worker = || -> Result<Arc<Sender<SmtpTransport>>, postern_outbox::OutboxError> {
        Ok(Arc::new(Sender::new(
            db.store.clone(),
            SmtpTransport::new(plain(server.smtp_port()))?,
        )))
    };
    let (a, b) = (worker()?, worker()?);
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { a.deliver_due(100).await }),
        tokio::spawn(async move { b.deliver_due(100).await }),
    );
    let (ra, rb) = (ra??, rb??);
    assert_eq!(ra.sent + rb.sent, MAILS as u64, "{ra:?} {rb:?}");
    for (id, to, mail_tag) in mails {
        assert_eq!(row(&db.store, id).await?.state, OutboxState::Sent);
        let copies = server
            .wait_for_delivery(&to, "X-Postern-Test", &mail_tag, 1, DELIVERY_WAIT)
            .await?;
        assert_eq!(copies.len(), 1, "{mail_tag}: one copy");
    }
    Ok(())
});

both!(
    mail_claimed_by_a_dead_instance_is_sent_once_its_lease_expires,
    |db| {
        let tag = tag();
        let to = "dead@example.org";
        let id = enqueue(&db.store, &[to], &message(&tag, to)).await?;
        // A killed instance had claimed it under a lease nobody renews any more.
        let now = postern_store::Timestamp::now();
        let times = postern_store::LeaseTimes {
            ttl: Duration::from_secs(3600),
            renew_every: Duration::from_secs(1200),
        };
        let mut tx = db.store.begin().await?;
        let dead = tx.insert_lease("killed instance", now, &times).await?;
        assert!(tx.claim_outbox(id, Some(dead), now).await?);
        tx.commit().await?;

        let sender = Sender::new(db.store.clone(), Recording::default());
        let held = sender.deliver_due(10).await?;
        assert_eq!(
            (held.sent, held.skipped),
            (0, 1),
            "held while its lease lives"
        );

        let mut tx = db.store.begin().await?;
        tx.end_lease(dead, postern_store::Timestamp::now()).await?;
        tx.commit().await?;
        let taken = sender.deliver_due(10).await?;
        assert_eq!(taken.sent, 1, "{taken:?}");
        assert_eq!(*sender.transport().sent.lock().expect("lock"), vec![id]);
        assert_eq!(row(&db.store, id).await?.state, OutboxState::Sent);
        Ok(())
    }
);
