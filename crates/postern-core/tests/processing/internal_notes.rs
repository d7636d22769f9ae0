//! Internal notes ("Make this an internal note") and the line naming who receives a comment:
//! an internal note is mailed to nobody, on any path; the audience a comment box shows is the
//! set the notification goes to.

use postern_core::actions::{self, NoteVisibility};
use postern_core::notify::comment_audience;
use postern_core::{ErrorKind, ProcessError};
use postern_store::{IssueType, NewIssue, Noteable, Role};
use postern_testkit::both;

use crate::support::{INCOMING, World, recipients};

both!(
    internal_notes_are_mailed_to_nobody_and_the_line_names_who_is,
    |db| {
        let world = World::new(db).await?;
        let finn = world
            .member("finn", "finn@adventuretime.ooo", Some(Role::Reporter))
            .await?;
        let guest = world
            .member("bmo", "bmo@adventuretime.ooo", Some(Role::Guest))
            .await?;
        let config = world.config(INCOMING);
        let mut tx = world.store().begin().await?;
        let mut new = NewIssue::new(world.project.id, finn.id, "Printer", "on fire");
        new.issue_type = IssueType::Ticket;
        new.external_author = Some("customer@example.org".into());
        let ticket = tx.create_issue(new).await?;
        tx.add_issue_participant(ticket.id, "customer@example.org")
            .await?;
        let ticket = tx.issue_by_id(ticket.id).await?.ok_or("ticket")?;
        tx.commit().await?;
        let noteable = Noteable::Issue(ticket.id);

        let mut tx = world.store().begin().await?;
        let audience = comment_audience(
            &mut tx,
            &config,
            &world.project,
            &world.jake,
            noteable,
            Some(&ticket),
            false,
        )
        .await?;
        let names: Vec<&str> = audience.users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["finn"]);
        assert_eq!(audience.outside, ["customer@example.org"]);
        let internal = comment_audience(
            &mut tx,
            &config,
            &world.project,
            &world.jake,
            noteable,
            Some(&ticket),
            true,
        )
        .await?;
        assert!(internal.is_empty(), "{internal:?}");
        tx.rollback().await?;

        // An internal note, even one that mentions someone: nothing queued.
        let before = recipients(&world, None).await?;
        let mut tx = world.store().begin().await?;
        let note = actions::comment_as(
            &mut tx,
            &config,
            &world.project,
            &world.jake,
            &ticket,
            "Between us, @finn: the customer is upset",
            NoteVisibility::Internal,
        )
        .await?
        .ok_or("a note")?;
        tx.commit().await?;
        assert!(note.internal);
        assert_eq!(recipients(&world, None).await?, before);

        // A guest may not write one.
        let mut tx = world.store().begin().await?;
        let refused = actions::comment_as(
            &mut tx,
            &config,
            &world.project,
            &guest,
            &ticket,
            "psst",
            NoteVisibility::Internal,
        )
        .await;
        tx.rollback().await?;
        match refused {
            Err(ProcessError::Rejected(rejection)) => {
                assert_eq!(rejection.kind, ErrorKind::UserNotAuthorized);
            }
            other => panic!("a guest wrote an internal note: {other:?}"),
        }

        // An ordinary comment goes to exactly the audience the line named.
        let mut tx = world.store().begin().await?;
        actions::comment(
            &mut tx,
            &config,
            &world.project,
            &world.jake,
            &ticket,
            "On it.",
        )
        .await?;
        tx.commit().await?;
        let mut expected = before.clone();
        expected.extend([
            "customer@example.org".to_owned(),
            "finn@adventuretime.ooo".to_owned(),
        ]);
        expected.sort();
        assert_eq!(recipients(&world, None).await?, expected);
        Ok(())
    }
);
