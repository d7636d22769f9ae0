//! Intake cursors and stored source identities.

use postern_store::{InboundSource, Mailbox, NewInbound, content_identity};

use crate::support::both;

fn message(n: u32) -> NewInbound<'static> {
    let raw = format!("Message-ID: <q{n}@example.org>\r\n\r\nbody {n}\r\n").into_bytes();
    NewInbound {
        mailbox: Mailbox::Incoming,
        source: InboundSource::Imap,
        message_id: Some(format!("<q{n}@example.org>")),
        content_identity: content_identity(Some(&format!("<q{n}@example.org>")), &raw),
        raw: raw.into(),
        source_identity: Some(format!("imap:u@h/inbox:7:{n}")),
        declared_size: None,
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
