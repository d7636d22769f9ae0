//! Users, addresses, tokens and the Support Bot.

use postern_store::{NewUser, UserKind, UserState};

use crate::support::{both, user};

both!(create_and_find_user, |db| {
    let mut tx = db.tx().await;
    let alice = user(&mut tx, "Alice").await?;
    assert!(alice.incoming_email_token.starts_with("glimt-"));
    assert_eq!(alice.primary_email(), Some("Alice@example.com"));
    assert_eq!(alice.state, UserState::Active);
    assert_eq!(alice.kind, UserKind::Human);

    let by_token = tx
        .user_by_incoming_token(&alice.incoming_email_token)
        .await?;
    assert_eq!(by_token.as_ref(), Some(&alice));
    // Token match is exact: case or prefix changes find nobody.
    let upper = alice.incoming_email_token.to_uppercase();
    assert_eq!(tx.user_by_incoming_token(&upper).await?, None);
    assert_eq!(tx.user_by_incoming_token("glimt-").await?, None);

    assert_eq!(
        tx.user_by_username("alice").await?.map(|u| u.id),
        Some(alice.id)
    );
    assert_eq!(
        tx.user_by_id(alice.id).await?.map(|u| u.username),
        Some("Alice".to_owned())
    );
    tx.commit().await
});

both!(verified_email_lookup_ignores_unverified, |db| {
    let mut tx = db.tx().await;
    let mut new = NewUser::new("bob", "Bob", "bob@example.com");
    new.email_verified = false;
    let bob = tx.create_user(new).await?;
    assert_eq!(tx.user_by_verified_email("bob@example.com").await?, None);

    tx.add_user_email(bob.id, "Bob.Second@Example.com", true)
        .await?;
    tx.add_user_email(bob.id, "bob.third@example.com", false)
        .await?;
    let found = tx.user_by_verified_email("bob.second@example.COM").await?;
    assert_eq!(found.as_ref().map(|u| u.id), Some(bob.id));
    let found = found.expect("found above");
    assert_eq!(found.emails.len(), 3);
    assert!(found.emails[0].primary, "primary address first");
    assert!(found.has_verified_email("BOB.SECOND@example.com"));
    assert!(!found.has_verified_email("bob@example.com"));
    assert_eq!(
        tx.user_by_verified_email("bob.third@example.com").await?,
        None
    );

    assert!(
        tx.set_email_verified(bob.id, "BOB@example.com", true)
            .await?
    );
    assert_eq!(
        tx.user_by_verified_email("bob@example.com")
            .await?
            .map(|u| u.id),
        Some(bob.id)
    );
    assert!(
        tx.remove_user_email(bob.id, "bob.third@example.com")
            .await?
    );
    assert!(
        !tx.remove_user_email(bob.id, "bob@example.com").await?,
        "primary stays"
    );
    tx.commit().await
});

both!(duplicates_are_unique_violations, |db| {
    let mut tx = db.tx().await;
    user(&mut tx, "carol").await?;
    tx.commit().await?;

    let mut tx = db.tx().await;
    let err = tx
        .create_user(NewUser::new("CAROL", "Other", "other@example.com"))
        .await
        .expect_err("username taken, case-insensitively");
    assert!(err.is_unique_violation(), "{err:?}");
    assert!(!err.is_temporary());
    drop(tx);

    let mut tx = db.tx().await;
    let err = tx
        .create_user(NewUser::new("dave", "Dave", "Carol@Example.com"))
        .await
        .expect_err("address taken");
    assert!(err.is_unique_violation(), "{err:?}");
    Ok(())
});

both!(state_admin_token_reset_and_listing, |db| {
    let mut tx = db.tx().await;
    let erin = user(&mut tx, "erin").await?;
    let frank = user(&mut tx, "frank").await?;
    assert!(tx.set_user_state(erin.id, UserState::Blocked).await?);
    assert!(tx.set_user_admin(frank.id, true).await?);
    assert!(!tx.set_user_state(9999, UserState::Blocked).await?);

    let token = tx.reset_incoming_email_token(frank.id).await?;
    assert_ne!(token, frank.incoming_email_token);
    assert_eq!(
        tx.user_by_incoming_token(&frank.incoming_email_token)
            .await?,
        None
    );

    let users = tx.list_users().await?;
    assert_eq!(users.len(), 2);
    assert!(users[0].is_blocked());
    assert!(users[1].admin);
    assert_eq!(users[1].incoming_email_token, token);
    assert_eq!(users[0].emails.len(), 1);
    assert_eq!(users[1].emails.len(), 1);
    tx.commit().await
});

both!(support_bot_is_unique, |db| {
    let mut tx = db.tx().await;
    assert_eq!(tx.support_bot().await?, None);
    let bot = tx.ensure_support_bot().await?;
    assert!(bot.is_support_bot());
    assert!(bot.emails.is_empty());
    assert_eq!(tx.ensure_support_bot().await?.id, bot.id);
    tx.commit().await?;

    let mut tx = db.tx().await;
    let mut second = NewUser::new("bot2", "Bot", "bot2@example.com");
    second.kind = UserKind::SupportBot;
    let err = tx
        .create_user(second)
        .await
        .expect_err("only one Support Bot");
    assert!(err.is_unique_violation(), "{err:?}");
    Ok(())
});
