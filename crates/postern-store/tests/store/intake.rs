//! Intake cursors, stored source identities and the processing queue.

use postern_store::{
    InboundFinish, InboundSource, InboundState, InsertOutcome, Mailbox, NewInbound, Timestamp,
    content_identity,
};

use crate::support::both;

fn message(n: u32) -> NewInbound {
    let raw = format!("Message-ID: <q{n}@example.org>\r\n\r\nbody {n}\r\n").into_bytes();
    NewInbound {
        mailbox: Mailbox::Incoming,
        source: InboundSource::Imap,
        message_id: Some(format!("<q{n}@example.org>")),
        content_identity: content_identity(Some(&format!("<q{n}@example.org>")), &raw),
        raw,
        source_identity: Some(format!("imap:u@h/inbox:7:{n}")),
    }
}

both!(cursors_only_move_forward_per_validity, |db| {
    let mut tx = db.tx().await;
    assert_eq!(tx.intake_cursor("u@h/inbox", 7).await?, None);
    tx.advance_intake_cursor("u@h/inbox", 7, 10).await?;
    tx.advance_intake_cursor("u@h/inbox", 7, 4).await?;
    assert_eq!(tx.intake_cursor("u@h/inbox", 7).await?, Some(10));
    tx.advance_intake_cursor("u@h/inbox", 7, 12).await?;
    assert_eq!(tx.intake_cursor("u@h/inbox", 7).await?, Some(12));
    // Another UIDVALIDITY and another folder have their own positions.
    assert_eq!(tx.intake_cursor("u@h/inbox", 8).await?, None);
    assert_eq!(tx.intake_cursor("u@h/other", 7).await?, None);
    tx.commit().await
});

both!(stored_source_identities_are_known, |db| {
    let mut tx = db.tx().await;
    tx.insert_inbound(&message(1)).await?;
    assert!(tx.source_identity_stored("imap:u@h/inbox:7:1").await?);
    assert!(!tx.source_identity_stored("imap:u@h/inbox:7:2").await?);
    tx.commit().await
});

both!(pending_queue_holds_unfinished_messages_oldest_first, |db| {
    let mut tx = db.tx().await;
    let mut ids = Vec::new();
    for n in 1..=4 {
        let InsertOutcome::New(id) = tx.insert_inbound(&message(n)).await? else {
            panic!("new message expected");
        };
        ids.push(id);
    }
    let now = Timestamp::now();
    let later = now.plus_seconds(60);
    // Finished messages leave the queue.
    tx.finish_inbound(
        ids[0],
        &InboundFinish {
            state: InboundState::Processed,
            handler: None,
            error_kind: None,
            reason: None,
            outcome: None,
        },
    )
    .await?;
    // A temporary failure waits for its retry time.
    tx.fail_inbound_temporarily(ids[1], "database busy").await?;
    // A claim held by a live processor is not offered; a stale one is.
    assert!(tx.claim_inbound(ids[2], now.plus_seconds(-600)).await?);
    let long_ago = now.plus_seconds(-600);
    assert_eq!(
        tx.pending_inbound(long_ago, long_ago, 10).await?,
        vec![ids[3]]
    );
    assert_eq!(
        tx.pending_inbound(later, later, 10).await?,
        vec![ids[1], ids[2], ids[3]]
    );
    assert_eq!(tx.pending_inbound(later, later, 1).await?, vec![ids[1]]);
    let failed = tx.inbound(ids[1]).await?.expect("stored");
    assert_eq!(failed.meta.state, InboundState::FailedTemporary);
    assert_eq!(failed.meta.reason.as_deref(), Some("database busy"));
    assert_eq!(failed.meta.attempts, 1);
    tx.commit().await
});
