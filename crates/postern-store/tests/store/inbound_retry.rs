//! Inbound messages as a retrying work queue: which are due, and a temporary failure recorded
//! with the time of its next attempt.

use postern_store::{
    ErrorKind, InboundSource, InboundState, InsertOutcome, Mailbox, NewInbound, Timestamp,
    content_identity,
};

use crate::support::both;

fn message(n: u32, mailbox: Mailbox) -> NewInbound<'static> {
    let raw = format!("Message-ID: <r{n}@example.org>\r\n\r\nbody {n}").into_bytes();
    NewInbound {
        mailbox,
        source: InboundSource::Imap,
        message_id: None,
        content_identity: content_identity(None, &raw),
        raw: raw.into(),
        source_identity: None,
        declared_size: None,
    }
}

both!(due_inbound_is_the_work_queue_of_one_mailbox, |db| {
    let mut tx = db.tx().await;
    let mut ids = Vec::new();
    for (n, mailbox) in [
        (1, Mailbox::Incoming),
        (2, Mailbox::ServiceDesk),
        (3, Mailbox::Incoming),
        (4, Mailbox::Incoming),
    ] {
        match tx.insert_inbound(&message(n, mailbox)).await? {
            InsertOutcome::New(id) => ids.push(id),
            other => panic!("{other:?}"),
        }
    }
    let (a, sd, b, c) = (ids[0], ids[1], ids[2], ids[3]);
    let now = Timestamp::now();
    let stale_before = now.plus_seconds(-300);
    let due = |list: Vec<postern_store::InboundMeta>| list.iter().map(|m| m.id).collect::<Vec<_>>();

    assert_eq!(
        due(tx
            .due_inbound(Some(Mailbox::Incoming), now, stale_before, 10)
            .await?),
        vec![a, b, c]
    );
    assert_eq!(
        due(tx
            .due_inbound(Some(Mailbox::Incoming), now, stale_before, 2)
            .await?),
        vec![a, b]
    );
    // Without a mailbox: the processing queue of every mailbox.
    assert_eq!(
        due(tx.due_inbound(None, now, stale_before, 10).await?),
        vec![a, sd, b, c]
    );

    // a: claimed (fresh claim, not due); b: failed, next attempt in an hour.
    assert!(tx.claim_inbound(a, None, stale_before).await?);
    assert!(tx.claim_inbound(b, None, stale_before).await?);
    let later = now.plus_seconds(3600);
    tx.retry_inbound_at(b, ErrorKind::WebhookStatus, "GitLab answered 502", later)
        .await?;
    assert_eq!(
        due(tx
            .due_inbound(Some(Mailbox::Incoming), now, stale_before, 10)
            .await?),
        vec![c]
    );

    // In an hour b is due again; a claim older than `stale_before` is due as well.
    let hour_on = later.plus_seconds(1);
    assert_eq!(
        due(tx
            .due_inbound(Some(Mailbox::Incoming), hour_on, stale_before, 10)
            .await?),
        vec![b, c]
    );
    assert_eq!(
        due(tx
            .due_inbound(Some(Mailbox::Incoming), now, now.plus_seconds(10), 10)
            .await?),
        vec![a, c],
        "a's claim counts as stale when stale_before is after it"
    );

    let meta = tx.inbound(b).await?.expect("exists").meta;
    assert_eq!(meta.state, InboundState::FailedTemporary);
    assert_eq!(meta.error_kind, Some(ErrorKind::WebhookStatus));
    assert_eq!(meta.reason.as_deref(), Some("GitLab answered 502"));
    assert!(
        tx.retry_inbound_at(999_999, ErrorKind::WebhookStatus, "y", now)
            .await
            .is_err()
    );
    tx.commit().await?;
    Ok(())
});
