//! A Service Desk ticket's outside participants unsubscribing by mail: their mail carries
//! `List-Unsubscribe` as members' notifications do, and a mail from them to its
//! `-unsubscribe` address takes them off the ticket (a "removed" system note by the Support
//! Bot), once, and only when it comes from the address the mail went to. The one-click link
//! is tested with the web UI (postern-web's `desk_unsubscribe`).

use postern_core::actions::{self, NoteVisibility};
use postern_core::{ErrorKind, HandlerKind, Outcome, ReceiveOutcome};
use postern_mail::Email;
use postern_store::{Issue, IssueState, NewSentNotification, Note, Noteable, Project, User};
use postern_testkit::{BoxError, both};

use crate::support::{INCOMING, KEY, World, mails_to, outbox, recipients};
use crate::ticket_closed::{comment, set_state, ticket};

const ANSWER: &str = "service_desk_note";

/// The newest answer mailed to `to`.
async fn answer_to(world: &World, to: &str) -> Result<String, BoxError> {
    let (_, raw) = outbox(world, ANSWER)
        .await?
        .into_iter()
        .rev()
        .find(|(recipients, _)| recipients.iter().any(|r| r == to))
        .ok_or_else(|| format!("no answer to {to}"))?;
    Ok(raw)
}

/// The mailto of `raw`'s `List-Unsubscribe` (its last entry).
fn unsubscribe_address(raw: &str) -> Result<String, BoxError> {
    let header = Email::parse(raw.as_bytes())
        .header_value("List-Unsubscribe")
        .ok_or("no List-Unsubscribe")?;
    let start = header.rfind("<mailto:").ok_or("no mailto")? + "<mailto:".len();
    let end = start + header[start..].find('>').ok_or("no >")?;
    Ok(header[start..end].to_owned())
}

/// A mail from `from` to `to`, as a mail client writes for a `mailto:` unsubscribe.
fn mail(from: &str, to: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: unsubscribe\r\n\
         Message-ID: <{id}@client.example>\r\n\r\nunsubscribe\r\n"
    )
    .into_bytes()
}

/// A mail from `from` to the unsubscribe address of the newest answer to cc@example.com.
async fn unsubscribe_cc(world: &World, from: &str, id: &str) -> Result<ReceiveOutcome, BoxError> {
    let address = unsubscribe_address(&answer_to(world, "cc@example.com").await?)?;
    world.receive(INCOMING, &mail(from, &address, id)).await
}

/// The ticket's email participants as they are now.
async fn participants(
    world: &World,
    project: &Project,
    ticket: &Issue,
) -> Result<Vec<String>, BoxError> {
    Ok(world
        .issue_in(project, ticket.iid)
        .await?
        .email_participants)
}

/// The fixtures' ticket (see `ticket_closed`), answered by pb, and its participants then.
async fn answered(world: &World) -> Result<(Project, Issue, User, Vec<String>), BoxError> {
    let (project, ticket, pb) = ticket(world, false).await?;
    comment(
        world,
        &project,
        &pb,
        &ticket,
        "We are on it.",
        NoteVisibility::Public,
    )
    .await?;
    let before = participants(world, &project, &ticket).await?;
    assert!(before.iter().any(|p| p == "cc@example.com"), "{before:?}");
    Ok((project, ticket, pb, before))
}

/// The "removed …" system notes on the ticket.
async fn removals(world: &World, ticket: &Issue) -> Result<Vec<Note>, BoxError> {
    Ok(world
        .notes(ticket)
        .await?
        .into_iter()
        .filter(|note| note.system && note.body.starts_with("removed "))
        .collect())
}

/// Whether the Support Bot has a subscription row for the ticket (it must never get one).
async fn bot_subscription(world: &World, ticket: &Issue) -> Result<Option<bool>, BoxError> {
    let mut tx = world.store().begin().await?;
    let bot = tx.support_bot().await?.ok_or("support bot")?;
    let subscription = tx.subscription(bot.id, Noteable::Issue(ticket.id)).await?;
    tx.rollback().await?;
    Ok(subscription)
}

both!(
    answers_to_outside_participants_carry_list_unsubscribe,
    |db| {
        let world = World::new(db).await?;
        // Answered with no web address, then with an HTTPS one.
        let (project, ticket, pb, _) = answered(&world).await?;
        let mut config = world.config(INCOMING);
        config.web_url = Some("https://tracker.example".into());
        let mut tx = world.store().begin().await?;
        actions::comment_as(
            &mut tx,
            &config,
            &project,
            &pb,
            &ticket,
            "Still on it.",
            NoteVisibility::Public,
        )
        .await?;
        tx.commit().await?;

        let mails = outbox(&world, ANSWER).await?;
        assert_eq!(
            mails.len(),
            6,
            "{:?}",
            mails.iter().map(|m| &m.0).collect::<Vec<_>>()
        );
        let mut tx = world.store().begin().await?;
        for (n, (to, raw)) in mails.iter().enumerate() {
            let email = Email::parse(raw.as_bytes());
            let key = email
                .header_value("X-Postern-Reply-Key")
                .ok_or("reply key")?;
            let mailto = format!("<mailto:incoming+{key}-unsubscribe@appmail.adventuretime.ooo>");
            let header = email
                .header_value("List-Unsubscribe")
                .ok_or("List-Unsubscribe")?;
            if n < 3 {
                assert_eq!(header, mailto);
                assert!(!email.has_header("List-Unsubscribe-Post"), "{raw}");
            } else {
                assert!(
                    header.starts_with("<https://tracker.example/-/unsubscribe/"),
                    "{header}"
                );
                assert!(header.ends_with(&format!(">, {mailto}")), "{header}");
                assert_eq!(
                    email.header_value("List-Unsubscribe-Post").as_deref(),
                    Some("List-Unsubscribe=One-Click")
                );
            }
            // Each notification knows the outside address it went to.
            let sent = tx
                .sent_notification_by_key(&key)
                .await?
                .ok_or("sent notification")?;
            assert_eq!(
                sent.participant_email.as_deref(),
                to.first().map(String::as_str)
            );
        }
        tx.rollback().await?;
        Ok(())
    }
);

both!(
    a_participants_unsubscribe_mail_takes_them_off_the_ticket,
    |db| {
        let world = World::new(db).await?;
        let (project, ticket, pb, before) = answered(&world).await?;
        // cc@ writes to the mailto of their answer, their address in other capitals.
        let outcome = unsubscribe_cc(&world, "Carbon Copy <CC@Example.COM>", "u-1").await?;
        assert_eq!(
            outcome.handler,
            Some(HandlerKind::Unsubscribe),
            "{outcome:?}"
        );
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        let others: Vec<String> = before
            .iter()
            .filter(|p| *p != "cc@example.com")
            .cloned()
            .collect();
        assert_eq!(participants(&world, &project, &ticket).await?, others);
        let removed = removals(&world, &ticket).await?;
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].body, "removed cc@example.com");
        let mut tx = world.store().begin().await?;
        let bot = tx.support_bot().await?.ok_or("support bot")?;
        assert_eq!(removed[0].author_id, bot.id);
        // The line above the comment box no longer names them.
        let now = tx.issue_by_id(ticket.id).await?.ok_or("ticket")?;
        let audience = postern_core::notify::comment_audience(
            &mut tx,
            &world.config(INCOMING),
            &project,
            &pb,
            Noteable::Issue(ticket.id),
            Some(&now),
            false,
        )
        .await?;
        tx.rollback().await?;
        assert_eq!(audience.outside, others);
        assert_eq!(bot_subscription(&world, &ticket).await?, None);

        // The next answer goes to the others only.
        comment(
            &world,
            &project,
            &pb,
            &ticket,
            "Fixed.",
            NoteVisibility::Public,
        )
        .await?;
        assert_eq!(mails_to(&world, ANSWER, "cc@example.com").await?, 1);
        for other in &others {
            assert_eq!(mails_to(&world, ANSWER, other).await?, 2, "{other}");
        }

        // Unsubscribing again is harmless: nothing removed, no second note.
        let outcome = unsubscribe_cc(&world, "cc@example.com", "u-2").await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        assert_eq!(removals(&world, &ticket).await?.len(), 1);
        assert_eq!(participants(&world, &project, &ticket).await?, others);

        // Closing it tells the others, with the same unsubscribe header.
        set_state(&world, &project, &pb, &ticket, IssueState::Closed).await?;
        let mut expected = others.clone();
        expected.sort();
        assert_eq!(
            recipients(&world, Some("service_desk_closed")).await?,
            expected
        );
        for (_, raw) in outbox(&world, "service_desk_closed").await? {
            assert!(unsubscribe_address(&raw)?.ends_with("-unsubscribe@appmail.adventuretime.ooo"));
        }
        assert_eq!(bot_subscription(&world, &ticket).await?, None);
        Ok(())
    }
);

both!(
    an_unsubscribe_mail_from_another_address_removes_nobody,
    |db| {
        let world = World::new(db).await?;
        let (project, ticket, _, before) = answered(&world).await?;
        // jake@, himself a participant, forwards cc@'s answer's unsubscribe: it is not his to use.
        let outcome = unsubscribe_cc(&world, "jake@adventuretime.ooo", "f-1").await?;
        assert_eq!(outcome.error, Some(ErrorKind::UserNotFound), "{outcome:?}");
        assert_eq!(participants(&world, &project, &ticket).await?, before);
        assert!(removals(&world, &ticket).await?.is_empty());
        assert_eq!(bot_subscription(&world, &ticket).await?, None);
        Ok(())
    }
);

both!(
    an_older_notification_unsubscribes_its_sender_if_a_participant,
    |db| {
        let world = World::new(db).await?;
        let (project, ticket, _) = ticket(&world, false).await?;
        // Service Desk mail from before the address was recorded.
        let mut tx = world.store().begin().await?;
        let bot = tx.ensure_support_bot().await?;
        tx.create_sent_notification(NewSentNotification {
            partition: 0,
            namespace_id: project.id,
            recipient_id: bot.id,
            noteable: Noteable::Issue(ticket.id),
            in_reply_to_discussion_id: None,
            reply_key: Some(KEY.into()),
            participant_email: None,
        })
        .await?;
        tx.commit().await?;
        let before = participants(&world, &project, &ticket).await?;
        let address = format!("incoming+{KEY}-unsubscribe@appmail.adventuretime.ooo");

        // Someone who is no participant: nothing to remove.
        let outcome = world
            .receive(INCOMING, &mail("stranger@example.net", &address, "o-1"))
            .await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        assert_eq!(participants(&world, &project, &ticket).await?, before);

        // kk@ is one: they leave.
        let outcome = world
            .receive(INCOMING, &mail("kk@example.org", &address, "o-2"))
            .await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        let after = participants(&world, &project, &ticket).await?;
        assert!(!after.iter().any(|p| p == "kk@example.org"), "{after:?}");
        assert_eq!(after.len(), before.len() - 1);
        let removed = removals(&world, &ticket).await?;
        let bodies: Vec<&str> = removed.iter().map(|n| n.body.as_str()).collect();
        assert_eq!(bodies, ["removed kk@example.org"]);
        assert_eq!(bot_subscription(&world, &ticket).await?, None);
        Ok(())
    }
);

// The thank-you, the customer's first mail from the desk, lets them leave as every later one
// does: its List-Unsubscribe names the customer's own unsubscribe address.
both!(the_thank_you_lets_the_customer_leave, |db| {
    let world = World::new(db).await?;
    let (project, ticket, _) = ticket(&world, false).await?;
    let (to, thanks) = outbox(&world, "service_desk_thank_you")
        .await?
        .pop()
        .ok_or("the thank-you")?;
    assert_eq!(to, ["jake@adventuretime.ooo"]);
    let address = unsubscribe_address(&thanks)?;
    let outcome = world
        .receive(
            INCOMING,
            &mail("jake@adventuretime.ooo", &address, "jake-u"),
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let left = participants(&world, &project, &ticket).await?;
    assert!(
        !left.iter().any(|p| p == "jake@adventuretime.ooo"),
        "{left:?}"
    );
    Ok(())
});
