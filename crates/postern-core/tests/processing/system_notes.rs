//! System notes: what a change did, written with the change whatever asked for it (a mail's
//! quick actions, a person through `actions`), and the mail GitLab sends about a state or
//! assignee change.

use postern_core::actions;
use postern_store::{IssueState, NewIssue, Note, Role};
use postern_testkit::both;

use crate::support::{INCOMING, World, mails_to};

fn system(notes: &[Note]) -> Vec<String> {
    notes
        .iter()
        .filter(|n| n.system)
        .map(|n| n.body.clone())
        .collect()
}

both!(quick_actions_of_a_person_leave_gitlabs_history, |db| {
    let world = World::new(db).await?;
    let finn = world
        .member("finn", "finn@adventuretime.ooo", Some(Role::Developer))
        .await?;
    let mut tx = world.store().begin().await?;
    let issue = tx
        .create_issue(NewIssue::new(
            world.project.id,
            finn.id,
            "Old title",
            "text",
        ))
        .await?;
    tx.commit().await?;
    let config = world.config(INCOMING);

    let mut tx = world.store().begin().await?;
    let note = actions::comment(
        &mut tx,
        &config,
        &world.project,
        &world.jake,
        &issue,
        "Taking it.\n/title New title\n/label ~bug ~\"needs review\"\n/assign @jake @finn\n/due 2026-12-01\n/confidential\n/close\n/estimate 1h",
    )
    .await?;
    tx.commit().await?;
    assert!(note.is_some(), "the comment itself");
    let after = world.issue_by_iid(issue.iid).await?;
    assert_eq!(after.state, IssueState::Closed);
    let notes = world.notes(&after).await?;
    assert_eq!(
        system(&notes),
        [
            "changed title from **Old title** to **New title**",
            "added ~bug ~\"needs review\" labels",
            "assigned to @jake and @finn",
            "changed due date to December 1, 2026",
            "made the issue confidential",
            "closed",
            "did not run `/estimate 1h`: time tracking is not supported here",
        ]
    );
    assert!(
        notes
            .iter()
            .filter(|n| n.system)
            .all(|n| n.author_id == world.jake.id)
    );
    // Finn hears about the comment, the assignment and the closing; jake about nothing.
    assert_eq!(
        mails_to(&world, "notification", "finn@adventuretime.ooo").await?,
        3
    );
    assert_eq!(
        mails_to(&world, "notification", "jake@adventuretime.ooo").await?,
        0
    );

    // Nothing changed, nothing written.
    let mut tx = world.store().begin().await?;
    actions::comment(
        &mut tx,
        &config,
        &world.project,
        &world.jake,
        &after,
        "/close",
    )
    .await?;
    tx.commit().await?;
    let again = world.notes(&after).await?;
    assert_eq!(system(&again).len(), 7);
    Ok(())
});

both!(quick_actions_by_mail_write_the_same_notes, |db| {
    let world = World::new(db).await?;
    let issue = world.issue("By mail").await?;
    let raw = format!(
        "From: jake@adventuretime.ooo\r\nTo: incoming+gitlabhq-gitlabhq-{}-{}-issue-{}@appmail.adventuretime.ooo\r\n\
         Subject: Re: By mail\r\nMessage-ID: <sys-1@example.test>\r\n\r\n/close\r\n/unassign\r\n/remove_due_date\r\n",
        world.project.id, world.jake.incoming_email_token, issue.iid
    );
    let outcome = world.receive(INCOMING, raw.as_bytes()).await?;
    assert!(outcome.error.is_none(), "{outcome:?}");
    let notes = world.notes(&issue).await?;
    // Only what changed: there was no assignee nor due date.
    assert_eq!(system(&notes), ["closed"]);
    Ok(())
});
