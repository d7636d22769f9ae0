//! Notifications that can be answered, and the round trip back in.

use postern_core::{ErrorKind, Outcome};
use postern_mail::Email;
use postern_store::{OutboxFilter, Role, Visibility};
use postern_testkit::{BoxError, both};

use crate::support::{INCOMING, World, renamed};

/// Every queued mail of `kind`, oldest first, as raw text.
async fn outbox(world: &World, kind: &str) -> Result<Vec<(Vec<String>, String)>, BoxError> {
    let mut tx = world.store().begin().await?;
    let mails = tx
        .list_outbox(&OutboxFilter {
            kind: Some(kind.to_owned()),
            limit: 100,
            ..OutboxFilter::default()
        })
        .await?;
    let mut out = Vec::new();
    for mail in mails.iter().rev() {
        let raw = tx.outbox_raw(mail.id).await?.ok_or("raw mail")?;
        out.push((mail.recipients.clone(), String::from_utf8(raw)?));
    }
    tx.commit().await?;
    Ok(out)
}

/// How a mail client answers `notification`: to its Reply-To, threaded, quoting it below.
fn reply_to(notification: &str, from: &str, text: &str, id: &str) -> Result<Vec<u8>, BoxError> {
    let email = Email::parse(notification.as_bytes());
    let reply_to = email.reply_to().into_iter().next().ok_or("Reply-To")?;
    let message_id = email.message_id().ok_or("Message-ID")?.to_owned();
    let mut references: Vec<String> = email.references();
    references.push(message_id.clone());
    // A client quotes what the person saw: the decoded text, not the MIME structure.
    let shown = postern_mail::parse_reply(
        &email,
        postern_mail::ReplyOptions {
            trim_reply: false,
            append_reply: false,
            allow_only_quotes: false,
            ..postern_mail::ReplyOptions::default()
        },
    )?;
    let quoted: String = shown
        .body
        .lines()
        .map(|line| format!("> {line}\r\n"))
        .collect();
    let references: Vec<String> = references.iter().map(|r| format!("<{r}>")).collect();
    Ok(format!(
        "From: {from}\r\nTo: {reply_to}\r\nSubject: Re: {}\r\nMessage-ID: <{id}@client.example>\r\n\
         In-Reply-To: <{message_id}>\r\nReferences: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {text}\r\n\r\nOn Mon, 1 Jan 2024 at 10:00, postern <postern@localhost> wrote:\r\n{quoted}",
        email.subject().unwrap_or(""),
        references.join(" ")
    )
    .into_bytes())
}

both!(comment_by_mail_notifies_the_others_who_can_answer, |db| {
    let world = World::new(db).await?;
    let finn = world
        .member("finn", "finn@adventuretime.ooo", Some(Role::Reporter))
        .await?;
    let issue = world.issue("Adventure Time Sux").await?;
    // Finn follows the issue: he gets mail about comments.
    let mut tx = world.store().begin().await?;
    tx.set_subscription(finn.id, postern_store::Noteable::Issue(issue.id), true)
        .await?;
    tx.commit().await?;
    world.notify(&issue, &world.jake).await?;
    let outcome = world
        .receive(crate::support::REPLY, &world.fixture("valid_reply.eml", 0))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");

    let mails = outbox(&world, "notification").await?;
    assert_eq!(mails.len(), 1, "only Finn: Jake wrote it");
    let (recipients, raw) = &mails[0];
    assert_eq!(recipients, &["finn@adventuretime.ooo"]);
    let mail = Email::parse(raw.as_bytes());
    let key = mail
        .header_value("X-Postern-Reply-Key")
        .ok_or("reply key header")?;
    // The reply address is on the incoming template the instance runs with.
    assert_eq!(
        mail.reply_to(),
        [format!("reply+{key}@appmail.adventuretime.ooo")]
    );
    assert!(raw.contains("Reply-To: \"GitLab\""), "{raw}");
    assert_eq!(mail.references()[0], format!("reply-{key}@localhost"));
    assert_eq!(
        mail.references()[1],
        format!("issue_{}@localhost", issue.id)
    );
    assert_eq!(
        mail.in_reply_to(),
        Some(format!("issue_{}@localhost", issue.id))
    );
    assert_eq!(
        mail.header_value("List-Unsubscribe"),
        Some(format!(
            "<mailto:reply+{key}-unsubscribe@appmail.adventuretime.ooo>"
        ))
    );
    assert_eq!(
        mail.header_value("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        mail.header_value("X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    assert_eq!(
        mail.header_value("X-Postern-Loop").as_deref(),
        Some("localhost")
    );
    assert_eq!(
        mail.subject(),
        Some(format!("GitLab | Adventure Time Sux (#{})", issue.iid).as_str())
    );

    // Finn answers from his mail client: his words become a comment in the same discussion,
    // the quote is trimmed, and Jake hears about it.
    let answer = reply_to(
        raw,
        "Finn <finn@adventuretime.ooo>",
        "Mathematical!",
        "finn-1",
    )?;
    let outcome = world.receive(INCOMING, &answer).await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let notes = world.notes(&issue).await?;
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[1].author_id, finn.id);
    assert!(
        notes[1].body.starts_with("Mathematical!"),
        "{}",
        notes[1].body
    );
    assert_eq!(notes[1].discussion_id, notes[0].discussion_id);
    let mails = outbox(&world, "notification").await?;
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].0, ["jake@adventuretime.ooo"]);
    Ok(())
});

both!(auto_reply_to_a_notification_is_dropped, |db| {
    let world = World::new(db).await?;
    world
        .member("finn", "finn@adventuretime.ooo", Some(Role::Reporter))
        .await?;
    let issue = world.issue("loop").await?;
    let mut tx = world.store().begin().await?;
    let finn = tx.user_by_username("finn").await?.ok_or("finn")?;
    tx.set_subscription(finn.id, postern_store::Noteable::Issue(issue.id), true)
        .await?;
    tx.commit().await?;
    world.notify(&issue, &world.jake).await?;
    world
        .receive(crate::support::REPLY, &world.fixture("valid_reply.eml", 0))
        .await?;
    let (_, raw) = outbox(&world, "notification").await?.remove(0);
    // An out-of-office answer, and the notification itself bounced back.
    let vacation = String::from_utf8(reply_to(
        &raw,
        "finn@adventuretime.ooo",
        "I am away",
        "away",
    )?)?
    .replacen("\r\n", "\r\nAuto-Submitted: auto-replied\r\n", 1);
    let outcome = world
        .receive(crate::support::REPLY, vacation.as_bytes())
        .await?;
    assert_eq!(outcome.outcome, Outcome::Ignored);
    let echoed = world.receive(crate::support::REPLY, raw.as_bytes()).await?;
    assert_eq!(echoed.outcome, Outcome::Ignored);
    assert_eq!(echoed.error, Some(ErrorKind::AutoGeneratedEmail));
    assert_eq!(world.notes(&issue).await?.len(), 1);
    assert_eq!(outbox(&world, "notification").await?.len(), 1);
    assert_eq!(outbox(&world, "reject").await?.len(), 0);
    Ok(())
});

both!(service_desk_round_trip, |db| {
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
    let iid = outcome.created.and_then(|c| c.iid).ok_or("ticket")?;
    let thanks = outbox(&world, "service_desk_thank_you").await?;
    assert_eq!(thanks.len(), 1);
    let (recipients, raw) = &thanks[0];
    assert_eq!(recipients, &["jake@adventuretime.ooo"]);
    let mail = Email::parse(raw.as_bytes());
    let text = postern_mail::parse_reply(&mail, postern_mail::ReplyOptions::default())?;
    assert_eq!(
        text.body,
        format!(
            "Thank you for your support request! We are tracking your request as ticket #{iid}, and will respond as soon as we can."
        )
    );
    assert_eq!(
        mail.from(),
        [format!(
            "incoming+email-test-{}-issue-@appmail.adventuretime.ooo",
            project.id
        )]
    );
    assert_eq!(
        mail.in_reply_to().as_deref(),
        Some("CADkmRc+rNGAGGbV2iE5p918UVy4UyJqVcXRO2=otppgzduJSg@mail.gmail.com")
    );

    // The customer answers the thank-you mail: a Support Bot note with them as author.
    let answer = reply_to(
        raw,
        "Jake <jake@adventuretime.ooo>",
        "One more thing: it is blue.",
        "c-1",
    )?;
    let outcome = world.receive(INCOMING, &answer).await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let ticket = world.issue_in(&project, iid).await?;
    let notes = world.notes(&ticket).await?;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].body.starts_with("One more thing: it is blue."),
        "{}",
        notes[0].body
    );
    assert_eq!(
        notes[0].external_author.as_deref(),
        Some("jake@adventuretime.ooo")
    );

    // A member comments on the ticket by its issue address: the customer gets it by mail.
    let member = world
        .member("pb", "pb@candy.example", Some(Role::Developer))
        .await?;
    let mut tx = world.store().begin().await?;
    tx.add_member(project.id, member.id, Role::Developer)
        .await?;
    tx.commit().await?;
    let comment = format!(
        "From: pb@candy.example\r\nTo: incoming+email-test-{}-{}-issue-{iid}@appmail.adventuretime.ooo\r\n\
         Subject: x\r\nMessage-ID: <pb-1@candy.example>\r\n\r\nWe are on it.\r\n",
        project.id, member.incoming_email_token
    );
    let outcome = world.receive(INCOMING, comment.as_bytes()).await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let to_customer = outbox(&world, "service_desk_note").await?;
    assert_eq!(to_customer.len(), 1);
    assert_eq!(to_customer[0].0, ["jake@adventuretime.ooo"]);
    let text = postern_mail::parse_reply(
        &Email::parse(to_customer[0].1.as_bytes()),
        postern_mail::ReplyOptions::default(),
    )?;
    assert_eq!(text.body, "We are on it.");
    let _ = renamed;
    Ok(())
});

both!(custom_email_verification_mail_round_trip, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |s| {
            s.custom_email = Some("support@candy.example".into())
        })
        .await?;
    let config = world.config_without_service_desk_mailbox(INCOMING);
    let mut tx = world.store().begin().await?;
    let sent_to =
        postern_core::verification::start(&mut tx, &config, &project, &world.jake).await?;
    tx.commit().await?;
    assert_eq!(sent_to, "support+verify@candy.example");
    let (recipients, raw) = outbox(&world, "custom_email_verification").await?.remove(0);
    assert_eq!(recipients, [sent_to]);

    // The provider forwards it to postern unchanged; postern recognises its own token.
    let processor =
        postern_core::Processor::new(world.store().clone(), world.repositories(), config);
    let outcome = processor
        .receive(
            raw.as_bytes(),
            postern_store::Mailbox::Incoming,
            postern_store::InboundSource::Pipe,
            None,
        )
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let mut tx = world.store().begin().await?;
    let updated = tx.project_by_id(project.id).await?.ok_or("project")?;
    tx.commit().await?;
    assert_eq!(
        updated.service_desk.custom_email_verification_state,
        Some(postern_store::CustomEmailVerificationState::Finished),
        "{:?}",
        updated.service_desk
    );
    let results = outbox(&world, "custom_email_verification_result").await?;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].0, ["jake@adventuretime.ooo"]);
    Ok(())
});

both!(
    notifications_link_to_the_issue_under_the_web_url_when_one_is_set,
    |db| {
        let world = World::new(db).await?;
        let finn = world
            .member("finn", "finn@adventuretime.ooo", Some(Role::Reporter))
            .await?;
        let issue = world.issue("Linked").await?;
        let mut tx = world.store().begin().await?;
        tx.set_subscription(finn.id, postern_store::Noteable::Issue(issue.id), true)
            .await?;
        let mut config = world.config(INCOMING);
        config.web_url = Some("https://tracker.example".into());
        let change = postern_core::notify::Change::IssueOpened(&issue);
        let queued =
            postern_core::notify::notify(&mut tx, &config, &world.project, &world.jake, change)
                .await?;
        assert_eq!(queued, 1);
        // Without a web URL there is no link: an address only the server reaches is no use in mail.
        config.web_url = None;
        postern_core::notify::notify(&mut tx, &config, &world.project, &world.jake, change).await?;
        tx.commit().await?;

        let mails = outbox(&world, "notification").await?;
        assert_eq!(mails.len(), 2);
        let link = format!(
            "https://tracker.example/projects/{}/issues/{}",
            world.project.id, issue.iid
        );
        // Undo quoted-printable's soft line breaks, should the encoder have folded a line.
        let linked = mails[0]
            .1
            .replace("=\r\n", "")
            .replace("=3D", "=")
            .replace("=20", " ");
        let text_link = linked
            .find(&format!("View it on postern: {link}"))
            .ok_or_else(|| format!("no text link:\n{linked}"))?;
        // Below the signature delimiter, with the rest of the footer.
        let delimiter = linked.find("\n-- \r\n").ok_or("signature delimiter")?;
        assert!(delimiter < text_link, "{linked}");
        assert!(
            linked.contains(&format!("<a href=\"{link}\">View it on postern</a>")),
            "{linked}"
        );
        let unlinked = &mails[1].1;
        assert!(!unlinked.contains("View it on"), "{unlinked}");
        Ok(())
    }
);
