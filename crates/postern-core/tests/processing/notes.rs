//! Replies, comments by issue address, unsubscribe.

use postern_core::{ErrorKind, HandlerKind, Outcome};
use postern_store::{IssueState, Noteable, Role};
use postern_testkit::both;

use crate::support::{INCOMING, KEY, REPLY, World, receive_with, renamed};

both!(reply_becomes_a_note_by_the_recipient, |db| {
    let world = World::new(db).await?;
    let issue = world.issue("Adventure Time Sux").await?;
    world.notify(&issue, &world.jake).await?;
    let outcome = world
        .receive(REPLY, &world.fixture("valid_reply.eml", 0))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    assert_eq!(outcome.handler, Some(HandlerKind::CreateNote));
    let notes = world.notes(&issue).await?;
    assert_eq!(notes.len(), 1);
    let note = &notes[0];
    assert_eq!(note.author_id, world.jake.id);
    assert_eq!(Some(note.id), outcome.created.and_then(|c| c.note_id));
    // An issue reply keeps the quoted part, collapsed.
    assert!(
        note.body.starts_with(
            "I could not disagree more. I am obviously biased but adventure time is the\n\
             greatest show ever created. Everyone should watch it.\n\n- Jake out\n\n\
             <details><summary>...</summary>\n\n"
        ),
        "{}",
        note.body
    );
    assert!(note.body.ends_with("</details>"), "{}", note.body);
    Ok(())
});

both!(reply_key_from_references_without_subaddressing, |db| {
    let world = World::new(db).await?;
    let issue = world.issue("Adventure Time Sux").await?;
    world.notify(&issue, &world.jake).await?;
    let raw = world.fixture(
        "reply_without_subaddressing_and_key_inside_references.eml",
        0,
    );
    // A dedicated address (no %{key}): only References can carry the key.
    let outcome = world
        .receive("reply@appmail.adventuretime.ooo", &raw)
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let notes = world.notes(&issue).await?;
    assert!(notes[0].body.contains("I could not disagree more."));
    Ok(())
});

both!(
    a_key_only_in_references_needs_the_sender_policy_to_pass,
    |db| {
        let world = World::new(db).await?;
        let issue = world.issue("Adventure Time Sux").await?;
        world.notify(&issue, &world.jake).await?;
        // Jake's domain publishes a DKIM key and DMARC p=reject. (The zone is the top-level
        // domain: DMARC's tree walk asks up to `_dmarc.ooo`, which must be answered, not refused.)
        let (key, key_record) = postern_testkit::dkim::ed25519_key();
        let Some(dns) = postern_testkit::dns::DnsServer::start_or_skip(
            "ooo.",
            &[
                postern_testkit::dns::txt_record("s1._domainkey.adventuretime", &key_record),
                postern_testkit::dns::txt_record("_dmarc.adventuretime", "v=DMARC1; p=reject"),
            ],
        ) else {
            return Ok(());
        };
        let mut config = world.config("reply@appmail.adventuretime.ooo");
        config.sender_authentication = postern_core::authentication::SenderAuthentication::new(
            postern_auth::Authenticator::new(&postern_auth::AuthConfig {
                dns: postern_auth::DnsConfig {
                    nameservers: vec![dns.addr()],
                    ..postern_auth::DnsConfig::default()
                },
                ..postern_auth::AuthConfig::default()
            })?,
            postern_auth::Policy::Dmarc,
        );
        let processor =
            postern_core::Processor::new(world.store().clone(), world.repositories(), config);
        // Sent to an address without a key: only References carries it.
        let unsigned = String::from_utf8(world.fixture(
            "reply_without_subaddressing_and_key_inside_references.eml",
            0,
        ))?;

        // Unsigned, its From fails DMARC: anyone who saw a notification could write this.
        let outcome = receive_with(&processor, unsigned.as_bytes()).await?;
        assert_eq!(
            outcome.error,
            Some(ErrorKind::SenderNotAuthenticated),
            "{outcome:?}"
        );
        assert!(!outcome.reject_notice_queued, "no notice to a forged From");
        assert!(world.notes(&issue).await?.is_empty());

        // Signed by Jake's domain, the same key in References acts.
        let signed = key.sign(
            &unsigned.replace("Message-ID: <", "Message-ID: <signed-"),
            "adventuretime.ooo",
            "s1",
        );
        let outcome = receive_with(&processor, signed.as_bytes()).await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        assert_eq!(world.notes(&issue).await?.len(), 1);
        Ok(())
    }
);

both!(reply_from_an_unverified_address_is_user_not_found, |db| {
    let world = World::new(db).await?;
    let issue = world.issue("t").await?;
    world.notify(&issue, &world.jake).await?;
    let raw = String::from_utf8(world.fixture("valid_reply.eml", 0))?.replace(
        "From: Jake the Dog <jake@adventuretime.ooo>",
        "From: Finn <finn@adventuretime.ooo>",
    );
    let outcome = world.receive(REPLY, raw.as_bytes()).await?;
    assert_eq!(outcome.error, Some(ErrorKind::UserNotFound));
    assert!(world.notes(&issue).await?.is_empty());
    Ok(())
});

both!(unknown_reply_key_is_sent_notification_not_found, |db| {
    let world = World::new(db).await?;
    let outcome = world
        .receive(REPLY, &world.fixture("valid_reply.eml", 0))
        .await?;
    assert_eq!(outcome.error, Some(ErrorKind::SentNotificationNotFound));
    assert_eq!(
        outcome.reason.as_deref(),
        Some(
            "We couldn't figure out what the email is in reply to. Please create your comment through the web interface."
        )
    );
    assert!(outcome.reject_notice_queued);
    Ok(())
});

both!(commands_only_reply_runs_them_without_a_note, |db| {
    let world = World::new(db).await?;
    // A developer may close; the reply has only /close and /todo above the quote.
    let issue = world.issue("to close").await?;
    world.notify(&issue, &world.jake).await?;
    let outcome = world
        .receive(REPLY, &world.fixture("commands_only_reply.eml", 0))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    assert_eq!(outcome.created, None);
    // No comment: only the history of what the commands did, as GitLab keeps it.
    let notes = world.notes(&issue).await?;
    let bodies: Vec<(&str, bool)> = notes.iter().map(|n| (n.body.as_str(), n.system)).collect();
    assert_eq!(bodies, [("closed", true)]);
    assert_eq!(
        world.issue_by_iid(issue.iid).await?.state,
        IssueState::Closed
    );
    Ok(())
});

both!(quick_actions_need_update_rights, |db| {
    let world = World::new(db).await?;
    let guest = world
        .member("bmo", "bmo@adventuretime.ooo", Some(Role::Guest))
        .await?;
    let issue = world.issue("stays open").await?;
    world.notify(&issue, &guest).await?;
    let raw = String::from_utf8(world.fixture("commands_in_reply.eml", 0))?
        .replace("jake@adventuretime.ooo", "bmo@adventuretime.ooo");
    let outcome = world.receive(REPLY, raw.as_bytes()).await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let notes = world.notes(&issue).await?;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].body.starts_with("Cool!"), "{}", notes[0].body);
    assert!(!notes[0].body.contains("/close"), "{}", notes[0].body);
    assert_eq!(
        world.issue_by_iid(issue.iid).await?.state,
        IssueState::Opened
    );
    Ok(())
});

both!(note_on_issuable_keeps_the_whole_text, |db| {
    let world = World::new(db).await?;
    let issue = world.issue("forwarded").await?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture("valid_note_on_issuable.eml", issue.iid),
        )
        .await?;
    assert_eq!(outcome.handler, Some(HandlerKind::CreateNoteOnIssuable));
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let notes = world.notes(&issue).await?;
    assert_eq!(notes.len(), 1);
    // Untrimmed: the quoted text stays.
    assert!(notes[0].body.contains('>'), "{}", notes[0].body);

    let missing_raw = renamed(&world.fixture("valid_note_on_issuable.eml", 999), "missing");
    let missing = world.receive(INCOMING, &missing_raw).await?;
    assert_eq!(missing.error, Some(ErrorKind::NoteableNotFound));
    Ok(())
});

both!(confidential_issue_needs_reporter, |db| {
    let world = World::new(db).await?;
    let guest = world
        .member("bmo", "bmo@adventuretime.ooo", Some(Role::Guest))
        .await?;
    let issue = world.issue("secret").await?;
    let mut tx = world.store().begin().await?;
    tx.update_issue(
        issue.id,
        postern_store::IssueUpdate {
            confidential: Some(true),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    let raw = String::from_utf8(world.fixture("valid_note_on_issuable.eml", issue.iid))?.replace(
        &world.jake.incoming_email_token,
        &guest.incoming_email_token,
    );
    let outcome = world.receive(INCOMING, raw.as_bytes()).await?;
    assert_eq!(outcome.error, Some(ErrorKind::UserNotAuthorized));
    Ok(())
});

both!(unsubscribe_by_mail, |db| {
    let world = World::new(db).await?;
    let issue = world.issue("noisy").await?;
    world.notify(&issue, &world.jake).await?;
    for suffix in ["-unsubscribe", "+unsubscribe"] {
        let raw = String::from_utf8(world.fixture("valid_reply.eml", 0))?
            .replace(&format!("reply+{KEY}@"), &format!("reply+{KEY}{suffix}@"))
            .replace("Message-ID: <", &format!("Message-ID: <{suffix}"));
        let outcome = world.receive(REPLY, raw.as_bytes()).await?;
        assert_eq!(
            outcome.handler,
            Some(HandlerKind::Unsubscribe),
            "{outcome:?}"
        );
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    }
    let mut tx = world.store().begin().await?;
    let subscribed = tx
        .subscription(world.jake.id, Noteable::Issue(issue.id))
        .await?;
    tx.commit().await?;
    assert_eq!(subscribed, Some(false));
    Ok(())
});

/// A merge request by `author` in the fixtures' project, and a notification about it to
/// `recipient` with the fixtures' reply key.
async fn notified_merge_request(
    world: &World,
    author: &postern_store::User,
    recipient: &postern_store::User,
) -> Result<postern_store::MergeRequest, postern_testkit::BoxError> {
    let mut tx = world.store().begin().await?;
    let mr = tx
        .create_merge_request(postern_store::NewMergeRequest {
            project_id: world.project.id,
            title: "Feature".into(),
            description: String::new(),
            source_branch: "feature".into(),
            target_branch: "master".into(),
            author_id: author.id,
            commits: Vec::new(),
        })
        .await?;
    tx.create_sent_notification(postern_store::NewSentNotification {
        partition: 0,
        namespace_id: world.project.id,
        recipient_id: recipient.id,
        noteable: Noteable::MergeRequest(mr.id),
        in_reply_to_discussion_id: None,
        reply_key: Some(KEY.into()),
        participant_email: None,
    })
    .await?;
    tx.commit().await?;
    Ok(mr)
}

async fn merge_request_state(
    world: &World,
    id: i64,
) -> Result<postern_store::MergeRequestState, postern_testkit::BoxError> {
    let mut tx = world.store().begin().await?;
    let state = tx.merge_request_by_id(id).await?.ok_or("no mr")?.state;
    tx.commit().await?;
    Ok(state)
}

both!(merge_request_reply_closes_it_for_a_developer, |db| {
    let world = World::new(db).await?;
    let mr = notified_merge_request(&world, &world.jake, &world.jake).await?;
    let outcome = world
        .receive(REPLY, &world.fixture("commands_only_reply.eml", 0))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    assert_eq!(
        merge_request_state(&world, mr.id).await?,
        postern_store::MergeRequestState::Closed
    );
    Ok(())
});

both!(merge_request_reply_commands_need_update_rights, |db| {
    let world = World::new(db).await?;
    let guest = world
        .member("bmo", "bmo@adventuretime.ooo", Some(Role::Guest))
        .await?;
    let mr = notified_merge_request(&world, &world.jake, &guest).await?;
    let raw = String::from_utf8(world.fixture("commands_in_reply.eml", 0))?
        .replace("jake@adventuretime.ooo", "bmo@adventuretime.ooo");
    let outcome = world.receive(REPLY, raw.as_bytes()).await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    assert_eq!(
        merge_request_state(&world, mr.id).await?,
        postern_store::MergeRequestState::Opened
    );
    Ok(())
});
