//! Service Desk.

use postern_core::{ErrorKind, HandlerKind, Outcome};
use postern_store::{CustomEmailVerificationState, IssueState, IssueType, Timestamp, Visibility};
use postern_testkit::both;

use postern_core::{Processor, ReceiveOutcome};
use postern_store::{InboundSource, Mailbox};
use postern_testkit::BoxError;

use crate::support::{INCOMING, World, renamed};

/// A Service Desk project whose custom email `custom-support-email@example.com` awaits its
/// verification mail with `token`.
async fn verification_project(
    world: &World,
    token: &str,
) -> Result<postern_store::Project, BoxError> {
    world
        .service_desk_project(Visibility::Private, |s| {
            s.custom_email = Some("custom-support-email@example.com".into());
            s.custom_email_verification_state = Some(CustomEmailVerificationState::Started);
            s.custom_email_verification_token = Some(token.into());
            s.custom_email_verification_triggered_at = Some(Timestamp::now());
        })
        .await
}

/// Verification mail, as in GitLab's spec: only the incoming mailbox is configured (with a
/// Service Desk mailbox, the fixture's `Delivered-To` alias is an incorrect forwarding target).
async fn verify(world: &World, raw: &[u8]) -> Result<ReceiveOutcome, BoxError> {
    let processor = Processor::new(
        world.store().clone(),
        world.repositories(),
        world.config_without_service_desk_mailbox(INCOMING),
    );
    Ok(processor
        .receive(raw, Mailbox::Incoming, InboundSource::Pipe, None)
        .await?)
}

const DESCRIPTION: &str =
    "Service desk stuff!\n\n```\na = b\n```\n\n`/label ~label1`\n`/assign @user1`\n`/close`";

both!(new_ticket_by_the_support_bot, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |_| {})
        .await?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture_for(&project, "service_desk.eml", 0),
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let created = outcome.created.ok_or("a ticket")?;
    assert_eq!(created.kind, "ticket");
    let ticket = world.issue_in(&project, created.iid.ok_or("iid")?).await?;
    assert_eq!(ticket.issue_type, IssueType::Ticket);
    assert_eq!(ticket.title, "The message subject! @all");
    assert!(ticket.confidential);
    assert_eq!(
        ticket.external_author.as_deref(),
        Some("jake@adventuretime.ooo")
    );
    assert!(
        ticket.description.starts_with(DESCRIPTION),
        "{}",
        ticket.description
    );
    // Redacted quick actions did not run.
    assert_eq!(ticket.state, IssueState::Opened);
    assert!(ticket.labels.is_empty());
    assert_eq!(ticket.email_participants, ["jake@adventuretime.ooo"]);
    let mut tx = world.store().begin().await?;
    let bot = tx.support_bot().await?.ok_or("support bot")?;
    tx.commit().await?;
    assert_eq!(ticket.author_id, bot.id);
    Ok(())
});

both!(reply_by_in_reply_to_joins_the_ticket, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |_| {})
        .await?;
    let first = world
        .receive(
            INCOMING,
            &world.fixture_for(&project, "service_desk.eml", 0),
        )
        .await?;
    let iid = first.created.and_then(|c| c.iid).ok_or("ticket")?;
    // GitLab's fixture answers from alan@, who is no participant of jake@'s ticket: here the
    // answer comes from jake@, the ticket's author, as a reply from its participant would.
    let raw = String::from_utf8(world.fixture_for(&project, "service_desk_reply.eml", 0))?
        .replace("<alan@adventuretime.ooo>", "<Jake@adventuretime.ooo>");
    let reply = world.receive(INCOMING, raw.as_bytes()).await?;
    assert_eq!(reply.outcome, Outcome::Processed, "{reply:?}");
    assert_eq!(
        reply.created.as_ref().map(|c| c.kind.as_str()),
        Some("note")
    );
    let ticket = world.issue_in(&project, iid).await?;
    let notes = world.notes(&ticket).await?;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].body, "Service desk reply!\n\n`/label ~label2`");
    assert_eq!(
        notes[0].external_author.as_deref(),
        Some("Jake@adventuretime.ooo")
    );
    assert_eq!(ticket.email_participants, ["jake@adventuretime.ooo"]);
    Ok(())
});

both!(
    a_stranger_naming_a_tickets_message_id_opens_a_ticket_of_their_own,
    |db| {
        let world = World::new(db).await?;
        let project = world
            .service_desk_project(Visibility::Private, |_| {})
            .await?;
        world
            .receive(
                INCOMING,
                &world.fixture_for(&project, "service_desk.eml", 0),
            )
            .await?;
        // GitLab's own fixture: alan@ answers jake@'s ticket by its Message-ID.
        let reply = world
            .receive(
                INCOMING,
                &world.fixture_for(&project, "service_desk_reply.eml", 0),
            )
            .await?;
        assert_eq!(
            reply.created.as_ref().map(|c| (c.kind.as_str(), c.iid)),
            Some(("ticket", Some(2))),
            "{reply:?}"
        );
        let first = world.issue_in(&project, 1).await?;
        assert_eq!(first.email_participants, ["jake@adventuretime.ooo"]);
        assert!(world.notes(&first).await?.is_empty());
        Ok(())
    }
);

both!(reply_without_the_first_ticket_opens_a_new_one, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |_| {})
        .await?;
    let reply = world
        .receive(
            INCOMING,
            &world.fixture_for(&project, "service_desk_reply.eml", 0),
        )
        .await?;
    assert_eq!(
        reply.created.as_ref().map(|c| c.kind.as_str()),
        Some("ticket")
    );
    Ok(())
});

both!(disabled_service_desk_is_project_not_found, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |s| s.enabled = false)
        .await?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture_for(&project, "service_desk.eml", 0),
        )
        .await?;
    assert_eq!(outcome.error, Some(ErrorKind::ProjectNotFound));
    Ok(())
});

both!(legacy_forwarded_and_sender_variants, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |_| {})
        .await?;
    for (name, author) in [
        ("service_desk_legacy.eml", "jake@adventuretime.ooo"),
        ("service_desk_forwarded.eml", "jake.g@adventuretime.ooo"),
        ("service_desk_sender_and_from.eml", "finn@adventuretime.ooo"),
        // GitLab takes Reply-To (marceline@) as the author; postern takes From (the thank-you
        // still goes to Reply-To).
        (
            "service_desk_reply_to_and_from.eml",
            "finn@adventuretime.ooo",
        ),
    ] {
        let raw = renamed(&world.fixture_for(&project, name, 0), name);
        let outcome = world.receive(INCOMING, &raw).await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{name}: {outcome:?}");
        let ticket = world
            .issue_in(
                &project,
                outcome.created.and_then(|c| c.iid).ok_or("ticket")?,
            )
            .await?;
        assert_eq!(ticket.external_author.as_deref(), Some(author), "{name}");
    }
    Ok(())
});

both!(alias_address_with_project_key, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |s| {
            s.project_key = Some("mykey".into())
        })
        .await?;
    for name in [
        "service_desk_custom_address.eml",
        "service_desk_custom_address_envelope_to.eml",
        "service_desk_custom_address_reply.eml",
        "service_desk_custom_address_no_key.eml",
    ] {
        let raw = renamed(&world.fixture_for(&project, name, 0), name);
        let outcome = world.receive_service_desk(&raw).await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{name}: {outcome:?}");
        assert_eq!(outcome.handler, Some(HandlerKind::ServiceDesk), "{name}");
    }
    let wrong_key =
        String::from_utf8(world.fixture_for(&project, "service_desk_custom_address.eml", 0))?
            .replace("-mykey@", "-some_key@")
            .replace("Message-ID: <", "Message-ID: <wrong-key-");
    let outcome = world.receive_service_desk(wrong_key.as_bytes()).await?;
    assert_eq!(outcome.error, Some(ErrorKind::ProjectNotFound));
    let no_key = world
        .receive_service_desk(&world.fixture("service_desk_reference_headers.eml", 0))
        .await?;
    assert_eq!(no_key.error, Some(ErrorKind::UnknownIncomingEmail));
    Ok(())
});

both!(illegal_utf8_is_converted, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |_| {})
        .await?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture_for(&project, "service_desk_reply_illegal_utf8.eml", 0),
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let ticket = world
        .issue_in(
            &project,
            outcome.created.and_then(|c| c.iid).ok_or("ticket")?,
        )
        .await?;
    assert!(!ticket.description.is_empty());
    assert!(
        !ticket.description.contains('\u{FFFD}'),
        "{}",
        ticket.description
    );
    Ok(())
});

both!(custom_email_verification, |db| {
    let world = World::new(db).await?;
    let project = verification_project(&world, "ZROT4ZZXA-Y6").await?;
    let raw = world.fixture_for(
        &project,
        "service_desk_custom_email_address_verification.eml",
        0,
    );
    let outcome = verify(&world, &raw).await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    assert_eq!(outcome.created, None, "verification mail creates no ticket");
    let mut tx = world.store().begin().await?;
    let updated = tx.project_by_id(project.id).await?.ok_or("project")?;
    tx.commit().await?;
    let settings = &updated.service_desk;
    assert!(!settings.custom_email_enabled);
    assert_eq!(
        (
            settings.custom_email_verification_state,
            settings.custom_email_verification_error.as_deref()
        ),
        (Some(CustomEmailVerificationState::Finished), None),
        "{settings:?}"
    );
    Ok(())
});

both!(
    mail_without_the_token_leaves_the_verification_pending,
    |db| {
        let world = World::new(db).await?;
        let project = verification_project(&world, "XXXXXXXXXXXX").await?;
        let raw = world.fixture_for(
            &project,
            "service_desk_custom_email_address_verification.eml",
            0,
        );
        verify(&world, &raw).await?;
        let mut tx = world.store().begin().await?;
        let updated = tx.project_by_id(project.id).await?.ok_or("project")?;
        tx.commit().await?;
        // The `+verify` address is no secret: a mail without the token decides nothing.
        let settings = &updated.service_desk;
        assert_eq!(
            (
                settings.custom_email_verification_state,
                settings.custom_email_verification_error.as_deref()
            ),
            (Some(CustomEmailVerificationState::Started), None),
            "{settings:?}"
        );
        Ok(())
    }
);

both!(verification_forwarded_to_the_alias_fails, |db| {
    let world = World::new(db).await?;
    let project = verification_project(&world, "ZROT4ZZXA-Y6").await?;
    let raw = world.fixture_for(
        &project,
        "service_desk_custom_email_address_verification.eml",
        0,
    );
    world.receive(INCOMING, &raw).await?;
    let mut tx = world.store().begin().await?;
    let updated = tx.project_by_id(project.id).await?.ok_or("project")?;
    tx.commit().await?;
    assert_eq!(
        updated
            .service_desk
            .custom_email_verification_error
            .as_deref(),
        Some("incorrect_forwarding_target")
    );
    Ok(())
});

both!(closed_ticket_reopens_on_external_reply, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |s| {
            s.reopen_issue_on_external_participant_note = true
        })
        .await?;
    let first = world
        .receive(
            INCOMING,
            &world.fixture_for(&project, "service_desk.eml", 0),
        )
        .await?;
    let iid = first.created.and_then(|c| c.iid).ok_or("ticket")?;
    let ticket = world.issue_in(&project, iid).await?;
    let mut tx = world.store().begin().await?;
    tx.update_issue(
        ticket.id,
        postern_store::IssueUpdate {
            state: Some(IssueState::Closed),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    // GitLab's fixture answers from alan@; the ticket's participant is jake@.
    let reply = String::from_utf8(world.fixture_for(&project, "service_desk_reply.eml", 0))?
        .replace("<alan@adventuretime.ooo>", "<jake@adventuretime.ooo>");
    world.receive(INCOMING, reply.as_bytes()).await?;
    let ticket = world.issue_in(&project, iid).await?;
    assert_eq!(ticket.state, IssueState::Opened);
    let notes = world.notes(&ticket).await?;
    assert!(notes.iter().any(|n| n.internal
        && n.body == ":wave: This issue has been reopened because it received a new comment from an external participant."));
    Ok(())
});

both!(cc_addresses_join_when_the_project_asks, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |s| {
            s.add_external_participants_from_cc = true
        })
        .await?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture_for(&project, "service_desk.eml", 0),
        )
        .await?;
    let ticket = world
        .issue_in(
            &project,
            outcome.created.and_then(|c| c.iid).ok_or("ticket")?,
        )
        .await?;
    let mut participants = ticket.email_participants.clone();
    participants.sort();
    assert_eq!(
        participants,
        ["cc@example.com", "jake@adventuretime.ooo", "kk@example.org"]
    );
    Ok(())
});

both!(participants_stop_at_ten, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |s| {
            s.add_external_participants_from_cc = true
        })
        .await?;
    let cc: Vec<String> = (0..15).map(|i| format!("person{i}@example.org")).collect();
    let raw = String::from_utf8(world.fixture_for(&project, "service_desk.eml", 0))?.replace(
        "Cc: Carbon Copy <cc@example.com>, kk@example.org",
        &format!("Cc: {}", cc.join(", ")),
    );
    let outcome = world.receive(INCOMING, raw.as_bytes()).await?;
    let ticket = world
        .issue_in(
            &project,
            outcome.created.and_then(|c| c.iid).ok_or("ticket")?,
        )
        .await?;
    assert_eq!(ticket.email_participants.len(), 10);
    assert!(
        ticket
            .email_participants
            .contains(&"jake@adventuretime.ooo".to_owned())
    );
    Ok(())
});
