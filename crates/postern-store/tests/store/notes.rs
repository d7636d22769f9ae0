//! Notes, discussions and subscriptions.

use postern_store::{NewIssue, NewNote, Noteable, StoreError};

use crate::support::{both, project, user};

both!(notes_and_discussions, |db| {
    let mut tx = db.tx().await;
    let author = user(&mut tx, "author").await?;
    let p = project(&mut tx, "p").await?;
    let issue = tx
        .create_issue(NewIssue::new(p.id, author.id, "t", ""))
        .await?;
    let other = tx
        .create_issue(NewIssue::new(p.id, author.id, "u", ""))
        .await?;
    let on = Noteable::Issue(issue.id);

    let first = tx.create_note(NewNote::new(on, author.id, "first")).await?;
    assert_eq!(first.discussion_id.len(), 40);
    assert_eq!(first.project_id, p.id);
    assert_eq!(first.noteable, on);

    let mut reply = NewNote::new(on, author.id, "reply");
    reply.in_reply_to_discussion_id = Some(first.discussion_id.clone());
    reply.external_author = Some("customer@example.org".to_owned());
    reply.internal = true;
    let reply = tx.create_note(reply).await?;
    assert_eq!(reply.discussion_id, first.discussion_id);
    assert!(reply.internal);
    assert_eq!(
        reply.external_author.as_deref(),
        Some("customer@example.org")
    );

    let mut stray = NewNote::new(on, author.id, "unknown discussion");
    stray.in_reply_to_discussion_id = Some("f".repeat(40));
    let stray = tx.create_note(stray).await?;
    assert_ne!(stray.discussion_id, "f".repeat(40));
    assert_ne!(stray.discussion_id, first.discussion_id);

    // A discussion of another noteable is not joined.
    let mut cross = NewNote::new(Noteable::Issue(other.id), author.id, "cross");
    cross.in_reply_to_discussion_id = Some(first.discussion_id.clone());
    let cross = tx.create_note(cross).await?;
    assert_ne!(cross.discussion_id, first.discussion_id);

    let bodies: Vec<_> = tx
        .notes_for(on)
        .await?
        .into_iter()
        .map(|n| n.body)
        .collect();
    assert_eq!(bodies, ["first", "reply", "unknown discussion"]);
    assert_eq!(tx.note_by_id(reply.id).await?.as_ref(), Some(&reply));

    let err = tx
        .create_note(NewNote::new(Noteable::MergeRequest(9999), author.id, "x"))
        .await
        .expect_err("no such merge request");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    tx.commit().await
});

both!(subscriptions, |db| {
    let mut tx = db.tx().await;
    let u = user(&mut tx, "u").await?;
    let v = user(&mut tx, "v").await?;
    let p = project(&mut tx, "p").await?;
    let issue = tx.create_issue(NewIssue::new(p.id, u.id, "t", "")).await?;
    let on = Noteable::Issue(issue.id);
    assert_eq!(tx.subscription(u.id, on).await?, None);
    tx.set_subscription(u.id, on, true).await?;
    tx.set_subscription(v.id, on, true).await?;
    tx.set_subscription(u.id, on, false).await?;
    assert_eq!(tx.subscription(u.id, on).await?, Some(false));
    assert_eq!(tx.subscription(v.id, on).await?, Some(true));
    let subs = tx.subscriptions_for(on).await?;
    assert_eq!(
        subs.iter()
            .map(|s| (s.user_id, s.subscribed))
            .collect::<Vec<_>>(),
        vec![(u.id, false), (v.id, true)]
    );
    assert!(
        tx.set_subscription(u.id, Noteable::Issue(9999), true)
            .await
            .is_err()
    );
    Ok(())
});

both!(a_public_comment_is_found_without_reading_the_notes, |db| {
    let mut tx = db.tx().await;
    let author = user(&mut tx, "author").await?;
    let bot = user(&mut tx, "bot").await?;
    let p = project(&mut tx, "p").await?;
    let issue = tx
        .create_issue(NewIssue::new(p.id, author.id, "t", ""))
        .await?;
    let on = Noteable::Issue(issue.id);
    assert!(!tx.has_public_comment(on, None).await?);
    // Neither a system note, an internal note, nor the excepted author's note counts.
    let mut system = NewNote::new(on, author.id, "closed");
    system.system = true;
    tx.create_note(system).await?;
    let mut internal = NewNote::new(on, author.id, "between us");
    internal.internal = true;
    tx.create_note(internal).await?;
    tx.create_note(NewNote::new(on, bot.id, "from the customer"))
        .await?;
    assert!(!tx.has_public_comment(on, Some(bot.id)).await?);
    assert!(tx.has_public_comment(on, None).await?);
    tx.create_note(NewNote::new(on, author.id, "an answer"))
        .await?;
    assert!(tx.has_public_comment(on, Some(bot.id)).await?);
    tx.commit().await
});
