//! Passwords, sessions, API tokens and the per-state counts of the web UI.

use postern_store::{Timestamp, WebSession};

use crate::support::{both, user};

both!(password_hash_set_replace_and_admin_check, |db| {
    let mut tx = db.tx().await;
    let alice = user(&mut tx, "alice").await?;
    assert_eq!(tx.password_hash(alice.id).await?, None);
    assert!(!tx.admin_password_exists().await?);
    tx.set_password_hash(alice.id, "$argon2id$one").await?;
    tx.set_password_hash(alice.id, "$argon2id$two").await?;
    assert_eq!(
        tx.password_hash(alice.id).await?.as_deref(),
        Some("$argon2id$two")
    );
    // A password of a non-admin does not end the first-run setup.
    assert!(!tx.admin_password_exists().await?);
    tx.set_user_admin(alice.id, true).await?;
    assert!(tx.admin_password_exists().await?);
    tx.commit().await
});

both!(sessions_expire_and_end, |db| {
    let mut tx = db.tx().await;
    let alice = user(&mut tx, "alice").await?;
    let now = Timestamp::now();
    let session = WebSession {
        id_hash: "aa".repeat(32),
        user_id: alice.id,
        csrf_token: "csrf".to_owned(),
        created_at: now,
        expires_at: now.plus_seconds(60),
    };
    tx.create_session(&session).await?;
    assert_eq!(
        tx.session(&session.id_hash, now).await?,
        Some(session.clone())
    );
    // Expired at its expiry second, and unknown hashes find nothing.
    assert_eq!(
        tx.session(&session.id_hash, now.plus_seconds(60)).await?,
        None
    );
    assert_eq!(tx.session(&"bb".repeat(32), now).await?, None);
    assert_eq!(tx.delete_expired_sessions(now).await?, 0);
    assert_eq!(tx.delete_expired_sessions(now.plus_seconds(61)).await?, 1);
    tx.create_session(&session).await?;
    assert!(tx.delete_session(&session.id_hash).await?);
    assert!(!tx.delete_session(&session.id_hash).await?);
    tx.create_session(&session).await?;
    assert_eq!(tx.delete_user_sessions(alice.id).await?, 1);
    tx.commit().await
});

both!(api_tokens_by_hash_expiry_and_revocation, |db| {
    let mut tx = db.tx().await;
    let alice = user(&mut tx, "alice").await?;
    let now = Timestamp::now();
    let forever = tx.create_api_token(alice.id, "ci", "h1", None).await?;
    tx.create_api_token(alice.id, "tmp", "h2", Some(now.plus_seconds(10)))
        .await?;
    let used = tx.use_api_token("h1", now).await?;
    assert_eq!(used.as_ref().map(|t| t.id), Some(forever.id));
    let listed = tx.list_api_tokens(alice.id).await?;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].last_used_at, Some(now));
    assert!(tx.use_api_token("h2", now).await?.is_some());
    assert!(
        tx.use_api_token("h2", now.plus_seconds(10))
            .await?
            .is_none()
    );
    assert!(tx.use_api_token("nope", now).await?.is_none());
    assert!(!tx.revoke_api_token(alice.id + 1000, forever.id).await?);
    assert!(tx.revoke_api_token(alice.id, forever.id).await?);
    assert!(tx.use_api_token("h1", now).await?.is_none());
    tx.commit().await
});

both!(api_token_hash_is_unique, |db| {
    let mut tx = db.tx().await;
    let alice = user(&mut tx, "alice").await?;
    tx.create_api_token(alice.id, "ci", "h1", None).await?;
    let again = tx.create_api_token(alice.id, "dup", "h1", None).await;
    assert!(again.is_err_and(|e| e.is_unique_violation()));
    Ok(())
});
