//! Read access at the time of use: notifications, reply keys and `/assign` follow who may read
//! the issue now — removed members of a private project, blocked users, non-reporters on a
//! confidential issue or an internal note get nothing and can name no one.

use postern_core::notify::{Change, notify};
use postern_core::permissions::Actor;
use postern_core::{ErrorKind, Outcome};
use postern_store::{IssueUpdate, NewNote, Noteable, OutboxFilter, Role, User, UserState};
use postern_testkit::{BoxError, both};

use crate::support::{INCOMING, KEY, REPLY, World, recipients};

/// The recipients of every queued notification, sorted.
async fn notified(world: &World) -> Result<Vec<String>, BoxError> {
    recipients(world, Some("notification")).await
}

async fn clear_outbox(world: &World) -> Result<(), BoxError> {
    let mut tx = world.store().begin().await?;
    for mail in tx.list_outbox(&OutboxFilter::default()).await? {
        tx.mark_outbox_sent(mail.id).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Notifications not yet sent, by recipient.
async fn pending(world: &World) -> Result<Vec<String>, BoxError> {
    let mut tx = world.store().begin().await?;
    let mails = tx
        .list_outbox(&OutboxFilter {
            state: Some(postern_store::OutboxState::Queued),
            kind: Some("notification".to_owned()),
            limit: 1000,
        })
        .await?;
    tx.commit().await?;
    let mut to: Vec<String> = mails.into_iter().flat_map(|m| m.recipients).collect();
    to.sort();
    Ok(to)
}

async fn subscribe(world: &World, user: &User, issue_id: i64) -> Result<(), BoxError> {
    let mut tx = world.store().begin().await?;
    tx.set_subscription(user.id, Noteable::Issue(issue_id), true)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A comment by `author` on issue `iid` of the world's project, by its issue address.
fn comment_by_address(world: &World, author: &User, iid: i64, text: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {}\r\nTo: incoming+gitlabhq-gitlabhq-{}-{}-issue-{iid}@appmail.adventuretime.ooo\r\n\
         Subject: x\r\nMessage-ID: <{id}@example.test>\r\n\r\n{text}\r\n",
        author.primary_email().unwrap_or_default(),
        world.project.id,
        author.incoming_email_token
    )
    .into_bytes()
}

both!(
    notifications_go_only_to_people_who_can_read_the_issue_now,
    |db| {
        let world = World::new(db).await?;
        let finn = world
            .member("finn", "finn@ooo.example", Some(Role::Reporter))
            .await?;
        let guest = world
            .member("guest", "guest@ooo.example", Some(Role::Guest))
            .await?;
        let removed = world
            .member("pb", "pb@ooo.example", Some(Role::Developer))
            .await?;
        let blocked = world
            .member("ice", "ice@ooo.example", Some(Role::Developer))
            .await?;
        let outsider = world
            .member("mallory", "mallory@evil.example", None)
            .await?;
        let lsp = world
            .member("lsp", "lsp@ooo.example", Some(Role::Developer))
            .await?;
        let issue = world.issue("The build is broken").await?;
        for user in [&finn, &guest, &removed, &blocked, &outsider] {
            subscribe(&world, user, issue.id).await?;
        }
        let mut tx = world.store().begin().await?;
        tx.remove_member(world.project.id, removed.id).await?;
        tx.set_user_state(blocked.id, UserState::Blocked).await?;
        tx.commit().await?;

        let outcome = world
            .receive(
                INCOMING,
                &comment_by_address(&world, &lsp, issue.iid, "Looking.", "c1"),
            )
            .await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        // Private project: members who are not blocked; never the outsider or the removed member.
        assert_eq!(
            notified(&world).await?,
            [
                "finn@ooo.example",
                "guest@ooo.example",
                "jake@adventuretime.ooo"
            ]
        );

        // The issue becomes confidential: reporters and the author only.
        clear_outbox(&world).await?;
        let mut tx = world.store().begin().await?;
        tx.update_issue(
            issue.id,
            IssueUpdate {
                confidential: Some(true),
                ..IssueUpdate::default()
            },
        )
        .await?;
        tx.commit().await?;
        world
            .receive(
                INCOMING,
                &comment_by_address(&world, &lsp, issue.iid, "Still.", "c2"),
            )
            .await?;
        assert_eq!(
            pending(&world).await?,
            ["finn@ooo.example", "jake@adventuretime.ooo"]
        );
        Ok(())
    }
);

both!(internal_notes_are_mailed_to_nobody, |db| {
    let world = World::new(db).await?;
    let finn = world
        .member("finn", "finn@ooo.example", Some(Role::Reporter))
        .await?;
    let guest = world
        .member("guest", "guest@ooo.example", Some(Role::Guest))
        .await?;
    let issue = world.issue("Secret plans").await?;
    subscribe(&world, &finn, issue.id).await?;
    subscribe(&world, &guest, issue.id).await?;
    let config = world.config(INCOMING);
    let mut tx = world.store().begin().await?;
    let note = tx
        .create_note(NewNote {
            noteable: Noteable::Issue(issue.id),
            author_id: finn.id,
            body: "Between us.".to_owned(),
            external_author: None,
            in_reply_to_discussion_id: None,
            internal: true,
            system: false,
        })
        .await?;
    let change = Change::Commented {
        note: &note,
        issue: Some(&issue),
    };
    notify(&mut tx, &config, &world.project, &finn, change).await?;
    tx.commit().await?;
    // Not even Jake, a developer who may read it: GitLab mails internal notes to reporters
    // and up, but a notification carries a reply key, and a reply by mail would come back as
    // an ordinary comment, mailed to everyone (a ticket's customer too). Issue 18: internal
    // notes are never mailed.
    assert!(notified(&world).await?.is_empty());
    Ok(())
});

both!(assign_names_only_people_who_can_read_the_issue, |db| {
    let world = World::new(db).await?;
    let finn = world
        .member("finn", "finn@ooo.example", Some(Role::Reporter))
        .await?;
    let mallory = world
        .member("mallory", "mallory@evil.example", None)
        .await?;
    let issue = world.issue("The build is broken").await?;
    let outcome = world
        .receive(
            INCOMING,
            &comment_by_address(
                &world,
                &world.jake,
                issue.iid,
                "Over to you.\r\n\r\n/assign @mallory @finn",
                "a1",
            ),
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let issue = world.issue_by_iid(issue.iid).await?;
    assert_eq!(issue.assignee_ids, [finn.id], "mallory is not a member");
    // Finn hears of the comment and of the assignment (`system_notes`), as GitLab mails both;
    // mallory of neither.
    assert_eq!(
        notified(&world).await?,
        ["finn@ooo.example", "finn@ooo.example"]
    );

    // The refusal is recorded with its reason; the readable name is applied.
    let actions = postern_mail::extract_quick_actions("/assign @mallory").1;
    let actor = Actor {
        user: &world.jake,
        role: Some(Role::Developer),
    };
    let mut tx = world.store().begin().await?;
    let effects = postern_core::quick::interpret(
        &mut tx,
        &actions,
        &actor,
        &world.project,
        Some(&issue),
        false,
    )
    .await?;
    tx.commit().await?;
    assert_eq!(effects.update.assignee_ids, Some(vec![finn.id]));
    assert_eq!(effects.refused.len(), 1, "{effects:?}");
    assert_eq!(effects.refused[0].reason, "assignee_cannot_read");

    // A new issue by mail: the same rule.
    let new_issue = format!(
        "From: jake@adventuretime.ooo\r\nTo: incoming+gitlabhq-gitlabhq-{}-{}-issue@appmail.adventuretime.ooo\r\n\
         Subject: Another\r\nMessage-ID: <n1@example.test>\r\n\r\nText.\r\n\r\n/assign @mallory\r\n",
        world.project.id, world.jake.incoming_email_token
    );
    let outcome = world.receive(INCOMING, new_issue.as_bytes()).await?;
    let iid = outcome.created.and_then(|c| c.iid).ok_or("issue")?;
    assert!(world.issue_by_iid(iid).await?.assignee_ids.is_empty());
    assert!(
        !notified(&world)
            .await?
            .contains(&mallory.primary_email().unwrap_or_default().to_owned()),
        "mallory never hears of it"
    );
    Ok(())
});

both!(a_reply_key_whose_recipient_lost_access_is_refused, |db| {
    let world = World::new(db).await?;
    let finn = world
        .member("finn", "finn@ooo.example", Some(Role::Reporter))
        .await?;
    let issue = world.issue("Adventure Time Sux").await?;
    // GitLab's fixture replies from jake@adventuretime.ooo with the shared key: make the key
    // jake's, then take his access away.
    world.notify(&issue, &world.jake).await?;
    let mut tx = world.store().begin().await?;
    tx.remove_member(world.project.id, world.jake.id).await?;
    tx.commit().await?;
    let outcome = world
        .receive(REPLY, &world.fixture("valid_reply.eml", 0))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Rejected, "{outcome:?}");
    assert_eq!(outcome.error, Some(ErrorKind::UserNotAuthorized));
    assert_eq!(
        outcome.reason.as_deref(),
        Some(
            "You are not allowed to perform this action. If you believe this is in error, contact a staff member."
        )
    );
    assert!(world.notes(&issue).await?.is_empty());

    // Back as a guest, the key works again — until the issue is made confidential.
    let mut tx = world.store().begin().await?;
    tx.add_member(world.project.id, world.jake.id, Role::Guest)
        .await?;
    let other = tx
        .create_issue(postern_store::NewIssue::new(
            world.project.id,
            finn.id,
            "Other",
            "x",
        ))
        .await?;
    tx.commit().await?;
    let mut tx = world.store().begin().await?;
    tx.create_sent_notification(postern_store::NewSentNotification {
        partition: 0,
        namespace_id: world.project.id,
        recipient_id: world.jake.id,
        noteable: Noteable::Issue(other.id),
        in_reply_to_discussion_id: None,
        reply_key: Some("0000000000000000000000abc".into()),
        participant_email: None,
    })
    .await?;
    tx.update_issue(
        other.id,
        IssueUpdate {
            confidential: Some(true),
            ..IssueUpdate::default()
        },
    )
    .await?;
    tx.commit().await?;
    let raw = String::from_utf8(world.fixture("valid_reply.eml", 0))?
        .replace(KEY, "0-0000000000000000000000abc")
        .replace("Message-ID: <", "Message-ID: <second-");
    let outcome = world.receive(REPLY, raw.as_bytes()).await?;
    assert_eq!(
        outcome.error,
        Some(ErrorKind::UserNotAuthorized),
        "{outcome:?}"
    );

    // Blocked: GitLab's own, more precise answer.
    let mut tx = world.store().begin().await?;
    tx.set_user_state(world.jake.id, UserState::Blocked).await?;
    tx.commit().await?;
    let raw = raw.replace("Message-ID: <second-", "Message-ID: <third-");
    let outcome = world.receive(REPLY, raw.as_bytes()).await?;
    assert_eq!(outcome.error, Some(ErrorKind::UserBlocked), "{outcome:?}");
    Ok(())
});

both!(mentions_notify_only_people_who_can_read_the_issue, |db| {
    let world = World::new(db).await?;
    let finn = world
        .member("finn", "finn@ooo.example", Some(Role::Developer))
        .await?;
    world
        .member("lsp", "lsp@ooo.example", Some(Role::Guest))
        .await?;
    world
        .member("mallory", "mallory@evil.example", None)
        .await?;
    let issue = world.issue("The build is broken").await?;
    let outcome = world
        .receive(
            INCOMING,
            &comment_by_address(
                &world,
                &finn,
                issue.iid,
                "@lsp and @mallory, see `@jake` and mail jake@example.com.",
                "m1",
            ),
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    // Jake as the author; lsp as a member mentioned; never mallory, outside the project.
    assert_eq!(
        notified(&world).await?,
        ["jake@adventuretime.ooo", "lsp@ooo.example"]
    );
    Ok(())
});
