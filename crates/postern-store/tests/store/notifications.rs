//! Sent notifications and reply-key lookup.

use postern_store::{
    CreatedNotification, NewIssue, NewSentNotification, Noteable, ReplyKey, StoreError, Tx,
    reply_key_hash,
};

use crate::support::{both, project, user};

const KEY: &str = "0000000000000000000000abc";
const LEGACY: &str = "59d8df8370b7e95c5a49fbf86aeb2c93";

/// A user, a project and an issue to notify about.
async fn setup(tx: &mut Tx) -> Result<(i64, Noteable), StoreError> {
    let u = user(tx, "recipient").await?;
    let p = project(tx, "p").await?;
    let issue = tx.create_issue(NewIssue::new(p.id, u.id, "t", "")).await?;
    Ok((u.id, Noteable::Issue(issue.id)))
}

async fn notify(
    tx: &mut Tx,
    recipient_id: i64,
    noteable: Noteable,
    partition: i64,
    key: Option<&str>,
) -> Result<CreatedNotification, StoreError> {
    tx.create_sent_notification(NewSentNotification {
        partition,
        namespace_id: 42,
        recipient_id,
        noteable,
        in_reply_to_discussion_id: Some("d".repeat(40)),
        reply_key: key.map(str::to_owned),
        participant_email: None,
    })
    .await
}

both!(generated_keys_round_trip, |db| {
    let mut tx = db.tx().await;
    let (u, on) = setup(&mut tx).await?;
    let sent = notify(&mut tx, u, on, 1, None).await?;
    assert_eq!(sent.partition, 1);
    assert_eq!(sent.noteable, on);
    let address_key = sent.address_key();
    let key = address_key.split('-').nth(1).unwrap_or_default().to_owned();
    assert_eq!(key.len(), 25, "{address_key}");
    assert_eq!(address_key, format!("1-{key}-16"), "42 is 16 in base 36");
    // Only the hash is stored.
    assert_eq!(sent.reply_key_hash, reply_key_hash(&key));
    assert_eq!(sent.reply_key_hash.len(), 64);
    assert!(matches!(
        ReplyKey::parse(&address_key),
        Some(ReplyKey::Partitioned { .. })
    ));

    let found = tx.sent_notification_by_key(&address_key).await?;
    assert_eq!(found.as_ref(), Some(&*sent));
    // The namespace part is optional and not used for the lookup.
    let short = format!("1-{key}");
    assert_eq!(
        tx.sent_notification_by_key(&short).await?.as_ref(),
        Some(&*sent)
    );
    // The stored hash is not a key.
    let by_hash = format!("1-{}", sent.reply_key_hash);
    assert_eq!(tx.sent_notification_by_key(&by_hash).await?, None);
    tx.commit().await
});

both!(partitioned_lookup_falls_back_across_partitions, |db| {
    let mut tx = db.tx().await;
    let (u, on) = setup(&mut tx).await?;
    let sent = notify(&mut tx, u, on, 1, Some(KEY)).await?;
    // Wrong partition: found through the any-partition fallback.
    let found = tx.sent_notification_by_key(&format!("2-{KEY}")).await?;
    assert_eq!(found.map(|s| s.id), Some(sent.id));
    tx.commit().await
});

both!(ambiguous_keys_find_nothing, |db| {
    let mut tx = db.tx().await;
    let (u, on) = setup(&mut tx).await?;
    let one = notify(&mut tx, u, on, 1, Some(KEY)).await?;
    let two = notify(&mut tx, u, on, 2, Some(KEY)).await?;
    // Exact partition: exactly one row, found.
    assert_eq!(
        tx.sent_notification_by_key(&format!("1-{KEY}"))
            .await?
            .map(|s| s.id),
        Some(one.id)
    );
    assert_eq!(
        tx.sent_notification_by_key(&format!("2-{KEY}-x"))
            .await?
            .map(|s| s.id),
        Some(two.id)
    );
    // Unknown partition: the fallback sees two rows, which is "not found".
    assert_eq!(
        tx.sent_notification_by_key(&format!("3-{KEY}")).await?,
        None
    );

    // The same key twice in one partition is refused outright.
    let err = notify(&mut tx, u, on, 1, Some(KEY))
        .await
        .expect_err("duplicate key");
    assert!(err.is_unique_violation(), "{err:?}");
    Ok(())
});

both!(legacy_keys, |db| {
    let mut tx = db.tx().await;
    let (u, on) = setup(&mut tx).await?;
    let legacy = notify(&mut tx, u, on, 1, Some(LEGACY)).await?;
    assert_eq!(legacy.address_key(), LEGACY);
    assert_eq!(
        tx.sent_notification_by_key(LEGACY).await?.map(|s| s.id),
        Some(legacy.id)
    );
    // Legacy keys are lowercase hex only.
    assert_eq!(
        tx.sent_notification_by_key(&LEGACY.to_uppercase()).await?,
        None
    );

    // The same legacy key in two partitions is ambiguous.
    notify(&mut tx, u, on, 7, Some(LEGACY)).await?;
    assert_eq!(tx.sent_notification_by_key(LEGACY).await?, None);
    tx.commit().await
});

both!(malformed_and_unknown_keys, |db| {
    let mut tx = db.tx().await;
    let (u, on) = setup(&mut tx).await?;
    notify(&mut tx, u, on, 1, Some(KEY)).await?;
    for key in [
        "",
        KEY,
        "1-0000000000000000000000ab",
        "1-0000000000000000000000abd",
        "12345-0000000000000000000000abc",
        "00000000000000000000000000000000",
    ] {
        assert_eq!(tx.sent_notification_by_key(key).await?, None, "{key:?}");
    }
    for bad in ["short", "0000000000000000000000ABC"] {
        let err = notify(&mut tx, u, on, 1, Some(bad))
            .await
            .expect_err("bad key");
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
    let err = notify(&mut tx, u, on, -1, None)
        .await
        .expect_err("bad partition");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = notify(&mut tx, u, Noteable::Issue(9999), 1, None)
        .await
        .expect_err("no issue");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    tx.commit().await
});

both!(the_outside_address_is_kept_with_the_notification, |db| {
    let mut tx = db.tx().await;
    let (u, on) = setup(&mut tx).await?;
    let member = notify(&mut tx, u, on, 0, None).await?;
    assert_eq!(member.participant_email, None);
    let outside = tx
        .create_sent_notification(NewSentNotification {
            partition: 0,
            namespace_id: 42,
            recipient_id: u,
            noteable: on,
            in_reply_to_discussion_id: None,
            reply_key: None,
            participant_email: Some("Customer@Example.org".into()),
        })
        .await?;
    let found = tx.sent_notification_by_key(&outside.address_key()).await?;
    assert_eq!(
        found.and_then(|sent| sent.participant_email).as_deref(),
        Some("Customer@Example.org")
    );
    let token = tx.create_unsubscribe_token(outside.id).await?;
    let by_token = tx.sent_notification_by_unsubscribe_token(&token).await?;
    assert_eq!(
        by_token.and_then(|sent| sent.participant_email).as_deref(),
        Some("Customer@Example.org")
    );
    tx.commit().await
});
