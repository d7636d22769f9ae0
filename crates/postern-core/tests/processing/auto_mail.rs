//! Automatic mail limits: thank-yous, reject notices and verification results share one budget
//! per recipient and one per hour for the instance, and a message the caller says may not be
//! answered gets nothing (no backscatter to forged senders).

use postern_core::auto_mail::{AutoMailLimits, may_send};
use postern_core::{ErrorKind, Outcome};
use postern_core::{Processor, ProcessorConfig};
use postern_mail::Email;
use postern_store::{InboundSource, Mailbox, Project, Visibility};
use postern_testkit::both;

use crate::support::{INCOMING, World, outbox};

/// A mail to the project's Service Desk address.
fn to_service_desk(project: &Project, from: &str, subject: &str, n: usize) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: incoming+email-test-{}-issue-@appmail.adventuretime.ooo\r\n\
         Subject: {subject}\r\nMessage-ID: <sd-{n}@forged.example>\r\n\r\nHello {n}.\r\n",
        project.id
    )
    .into_bytes()
}

/// The hour the limits count in now.
fn window() -> i64 {
    postern_store::Timestamp::now().0 / postern_core::auto_mail::AUTO_MAIL_WINDOW_SECONDS
}

/// The most `limit` can let through between `started` and now: twice as much when a new hour
/// began meanwhile (each hour has its own share).
fn allowed(limit: u32, started: i64) -> usize {
    let limit = limit as usize;
    if window() == started {
        limit
    } else {
        2 * limit
    }
}

fn processor(world: &World, limits: AutoMailLimits) -> Processor {
    let config = ProcessorConfig {
        auto_mail: limits,
        ..world.config(INCOMING)
    };
    Processor::new(world.store().clone(), world.repositories(), config)
}

both!(
    a_flood_of_forged_service_desk_mail_gets_at_most_the_per_recipient_thank_yous,
    |db| {
        let world = World::new(db).await?;
        let project = world
            .service_desk_project(Visibility::Private, |_| {})
            .await?;
        let processor = processor(&world, AutoMailLimits::default());
        for n in 0..50 {
            let raw = to_service_desk(&project, "victim@innocent.example", "You won! (#11)", n);
            let outcome = processor
                .receive(&raw, Mailbox::Incoming, InboundSource::Pipe, None)
                .await?;
            assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        }
        let thanks = outbox(&world, "service_desk_thank_you").await?;
        assert_eq!(
            thanks.len(),
            AutoMailLimits::default().per_recipient as usize,
            "every ticket is kept, the thank-yous stop at the recipient's share"
        );
        // Another address still has its own share.
        let raw = to_service_desk(&project, "customer@other.example", "Help", 99);
        processor
            .receive(&raw, Mailbox::Incoming, InboundSource::Pipe, None)
            .await?;
        let thanks = outbox(&world, "service_desk_thank_you").await?;
        assert_eq!(
            thanks.last().map(|t| t.0.clone()),
            Some(vec!["customer@other.example".to_owned()])
        );
        Ok(())
    }
);

both!(the_hourly_cap_holds_across_recipients, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |_| {})
        .await?;
    let limits = AutoMailLimits {
        per_recipient: 5,
        per_hour: 3,
    };
    let processor = processor(&world, limits);
    let started = window();
    for n in 0..10 {
        let raw = to_service_desk(&project, &format!("sender{n}@forged.example"), "Hi", n);
        processor
            .receive(&raw, Mailbox::Incoming, InboundSource::Pipe, None)
            .await?;
    }
    // A reject notice counts against the same cap: an unknown reply key, from a new address.
    let unknown = b"From: someone@else.example\r\nTo: incoming+0000000000000000000000000000abcd@appmail.adventuretime.ooo\r\n\
        Subject: hi\r\nMessage-ID: <r1@else.example>\r\n\r\nHello.\r\n";
    let outcome = processor
        .receive(unknown, Mailbox::Incoming, InboundSource::Pipe, None)
        .await?;
    assert_eq!(outcome.outcome, Outcome::Rejected, "{outcome:?}");
    if window() == started {
        assert!(!outcome.reject_notice_queued, "the hour's cap is spent");
        assert!(outbox(&world, "reject").await?.is_empty());
    }
    let thanks = outbox(&world, "service_desk_thank_you").await?.len();
    assert!((3..=allowed(3, started)).contains(&thanks), "{thanks}");
    Ok(())
});

both!(
    reject_notices_and_thank_yous_share_the_recipients_budget,
    |db| {
        let world = World::new(db).await?;
        let project = world
            .service_desk_project(Visibility::Private, |_| {})
            .await?;
        let limits = AutoMailLimits {
            per_recipient: 2,
            per_hour: 100,
        };
        let processor = processor(&world, limits);
        let raw = to_service_desk(&project, "jake@adventuretime.ooo", "Help", 1);
        processor
            .receive(&raw, Mailbox::Incoming, InboundSource::Pipe, None)
            .await?;
        // Two refusals of different kinds: one notice fits in the share, the other does not.
        let unknown_key = b"From: jake@adventuretime.ooo\r\nTo: incoming+0000000000000000000000000000abcd@appmail.adventuretime.ooo\r\n\
        Subject: hi\r\nMessage-ID: <r1@adventuretime.ooo>\r\n\r\nHello.\r\n";
        let no_key = b"From: jake@adventuretime.ooo\r\nTo: nobody@appmail.adventuretime.ooo\r\n\
        Subject: hi\r\nMessage-ID: <r2@adventuretime.ooo>\r\n\r\nHello.\r\n";
        let first = processor
            .receive(unknown_key, Mailbox::Incoming, InboundSource::Pipe, None)
            .await?;
        let second = processor
            .receive(no_key, Mailbox::Incoming, InboundSource::Pipe, None)
            .await?;
        assert_eq!(first.error, Some(ErrorKind::SentNotificationNotFound));
        assert_eq!(second.error, Some(ErrorKind::UnknownIncomingEmail));
        assert!(first.reject_notice_queued);
        assert!(!second.reject_notice_queued, "{second:?}");
        Ok(())
    }
);

both!(a_message_that_may_not_be_answered_gets_nothing, |db| {
    let world = World::new(db).await?;
    let config = world.config(INCOMING);
    let mut tx = world.store().begin().await?;
    let refused = may_send(&mut tx, &config, "reject", "victim@innocent.example", false).await?;
    assert!(refused.is_none(), "the caller's word decides");
    for machine in [
        "MAILER-DAEMON@example.com",
        "postmaster@example.com",
        "postern@localhost",
        "incoming+abc@appmail.adventuretime.ooo",
    ] {
        let permit = may_send(&mut tx, &config, "reject", machine, true).await?;
        assert!(permit.is_none(), "{machine}");
    }
    let permit = may_send(&mut tx, &config, "reject", "person@example.com", true).await?;
    assert!(permit.is_some());
    tx.commit().await?;
    Ok(())
});

both!(
    the_thank_you_subject_keeps_gitlabs_form_with_the_title_cleaned_and_cut,
    |db| {
        let world = World::new(db).await?;
        let project = world
            .service_desk_project(Visibility::Private, |_| {})
            .await?;
        let long = format!(
            "You won!\u{202E}moc.live\u{202C} Claim at http://evil.example/{}",
            "x".repeat(300)
        );
        let raw = to_service_desk(&project, "jake@adventuretime.ooo", &long[..250], 1);
        let outcome = world.receive(INCOMING, &raw).await?;
        let iid = outcome.created.and_then(|c| c.iid).ok_or("ticket")?;
        let (_, mail) = outbox(&world, "service_desk_thank_you").await?.remove(0);
        let subject = Email::parse(mail.as_bytes())
            .subject()
            .unwrap_or("")
            .to_owned();
        assert!(
            subject.starts_with("Re: You won!moc.live Claim at http://evil.example/xx"),
            "{subject}"
        );
        assert!(subject.ends_with(&format!("… (#{iid})")), "{subject}");
        assert!(!subject.contains('\u{202E}'));
        let title = subject
            .trim_start_matches("Re: ")
            .trim_end_matches(&format!(" (#{iid})"));
        assert_eq!(
            title.chars().count(),
            postern_core::notify::MAX_SUBJECT_TEXT_CHARS
        );
        // An ordinary subject is GitLab's, unchanged.
        let raw = to_service_desk(&project, "finn@ooo.example", "Printer on fire", 2);
        let outcome = world.receive(INCOMING, &raw).await?;
        let iid = outcome.created.and_then(|c| c.iid).ok_or("ticket")?;
        let (_, mail) = outbox(&world, "service_desk_thank_you").await?.remove(1);
        let subject = Email::parse(mail.as_bytes())
            .subject()
            .unwrap_or("")
            .to_owned();
        assert_eq!(subject, format!("Re: Printer on fire (#{iid})"));
        Ok(())
    }
);
