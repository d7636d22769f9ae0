//! Subjects too long for a title: a Service Desk ticket is opened with the subject cut as a
//! person would cut it and kept whole in the description; a new issue by mail is refused with
//! GitLab's reason, as GitLab refuses it (its author can resend).

use postern_core::{ErrorKind, Outcome};
use postern_store::Visibility;
use postern_testkit::both;

use crate::support::{INCOMING, World};

/// A subject of 300 characters: words of nine letters and a space, so cuts fall between words.
fn long_subject() -> String {
    (0..30)
        .map(|n| format!("word{n:04}x"))
        .collect::<Vec<_>>()
        .join(" ")
}

both!(
    a_long_service_desk_subject_is_cut_at_a_word_and_kept_whole,
    |db| {
        let world = World::new(db).await?;
        let project = world
            .service_desk_project(Visibility::Private, |_| {})
            .await?;
        let subject = long_subject();
        assert!(subject.chars().count() > 255);
        let raw = format!(
            "From: jake@adventuretime.ooo\r\nTo: incoming+email-test-{}-issue-@appmail.adventuretime.ooo\r\n\
         Subject: {subject}\r\nMessage-ID: <long-subject@example.org>\r\n\r\nThe printer is on fire.\r\n",
            project.id
        );
        let outcome = world.receive(INCOMING, raw.as_bytes()).await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        let iid = outcome.created.and_then(|c| c.iid).ok_or("a ticket")?;
        let ticket = world.issue_in(&project, iid).await?;
        assert!(ticket.title.chars().count() <= 255, "{}", ticket.title);
        assert!(
            ticket.title.ends_with("x…"),
            "cut after a whole word: {}",
            ticket.title
        );
        assert!(subject.starts_with(ticket.title.trim_end_matches('…')));
        assert!(
            ticket
                .description
                .starts_with(&format!("**Subject:** {subject}\n\n")),
            "{}",
            ticket.description
        );
        assert!(ticket.description.contains("The printer is on fire."));
        Ok(())
    }
);

both!(a_service_desk_subject_that_fits_is_not_touched, |db| {
    let world = World::new(db).await?;
    let project = world
        .service_desk_project(Visibility::Private, |_| {})
        .await?;
    let subject = "x".repeat(255);
    let raw = format!(
        "From: jake@adventuretime.ooo\r\nTo: incoming+email-test-{}-issue-@appmail.adventuretime.ooo\r\n\
         Subject: {subject}\r\nMessage-ID: <fits@example.org>\r\n\r\nHello.\r\n",
        project.id
    );
    let outcome = world.receive(INCOMING, raw.as_bytes()).await?;
    let iid = outcome.created.and_then(|c| c.iid).ok_or("a ticket")?;
    let ticket = world.issue_in(&project, iid).await?;
    assert_eq!(ticket.title, subject);
    assert!(!ticket.description.contains("**Subject:**"));
    Ok(())
});

both!(
    a_long_new_issue_subject_is_refused_as_gitlab_refuses_it,
    |db| {
        let world = World::new(db).await?;
        let raw = format!(
            "From: jake@adventuretime.ooo\r\nTo: incoming+gitlabhq-gitlabhq-{}-{}-issue@appmail.adventuretime.ooo\r\n\
         Subject: {}\r\nMessage-ID: <long-issue@example.org>\r\n\r\nBody.\r\n",
            world.project.id,
            world.jake.incoming_email_token,
            long_subject()
        );
        let outcome = world.receive(INCOMING, raw.as_bytes()).await?;
        assert_eq!(outcome.error, Some(ErrorKind::InvalidIssue), "{outcome:?}");
        assert!(
            outcome
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("Title is too long (maximum is 255 characters)")),
            "{outcome:?}"
        );
        Ok(())
    }
);
