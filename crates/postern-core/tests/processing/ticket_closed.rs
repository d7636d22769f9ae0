//! The notice a Service Desk ticket's outside participants get when a person closes it: from
//! every path that closes (`system_notes::update_issue`, `/close` in a member's mail reply),
//! only for a ticket a member answered, never on reopening nor for an issue; and their answer
//! to it comes back as a note on the ticket, reopening it when the project says so.

use postern_core::actions::{self, NoteVisibility};
use postern_core::{Outcome, system_notes};
use postern_mail::Email;
use postern_store::{
    Issue, IssueState, IssueUpdate, NewIssue, OutboxFilter, Project, Role, User, Visibility,
};
use postern_testkit::{BoxError, both};

use crate::support::{INCOMING, World, outbox, recipients, reply_to};

const KIND: &str = "service_desk_closed";

/// A ticket from GitLab's fixture, by jake@ with cc@example.com and kk@example.org copied in
/// (and joined), in a project whose Service Desk reopens on a customer's answer if `reopen`;
/// and pb, a developer of that project.
pub async fn ticket(world: &World, reopen: bool) -> Result<(Project, Issue, User), BoxError> {
    let project = world
        .service_desk_project(Visibility::Private, |s| {
            s.add_external_participants_from_cc = true;
            s.reopen_issue_on_external_participant_note = reopen;
        })
        .await?;
    let outcome = world
        .receive(
            INCOMING,
            &world.fixture_for(&project, "service_desk.eml", 0),
        )
        .await?;
    let iid = outcome.created.and_then(|c| c.iid).ok_or("ticket")?;
    let pb = world.member("pb", "pb@candy.example", None).await?;
    let mut tx = world.store().begin().await?;
    tx.add_member(project.id, pb.id, Role::Developer).await?;
    tx.commit().await?;
    let ticket = world.issue_in(&project, iid).await?;
    Ok((project, ticket, pb))
}

/// pb's mail with `body` to `ticket`'s own address (the new-note address with pb's token).
fn by_issue_address(project: &Project, pb: &User, ticket: &Issue, body: &str) -> String {
    format!(
        "From: pb@candy.example\r\nTo: incoming+email-test-{}-{}-issue-{}@appmail.adventuretime.ooo\r\n\
         Subject: x\r\nMessage-ID: <pb-1@candy.example>\r\n\r\n{body}\r\n",
        project.id, pb.incoming_email_token, ticket.iid
    )
}

/// `actor` opens or closes `issue` through the one path a person's change takes.
pub async fn set_state(
    world: &World,
    project: &Project,
    actor: &User,
    issue: &Issue,
    state: IssueState,
) -> Result<(), BoxError> {
    let config = world.config(INCOMING);
    let mut tx = world.store().begin().await?;
    let current = tx.issue_by_id(issue.id).await?.ok_or("issue")?;
    let update = IssueUpdate {
        state: Some(state),
        ..IssueUpdate::default()
    };
    system_notes::update_issue(&mut tx, &config, project, actor, &current, update).await?;
    tx.commit().await?;
    Ok(())
}

/// `author` comments on `issue` as a person does in the browser or the API.
pub async fn comment(
    world: &World,
    project: &Project,
    author: &User,
    issue: &Issue,
    text: &str,
    visibility: NoteVisibility,
) -> Result<(), BoxError> {
    let config = world.config(INCOMING);
    let mut tx = world.store().begin().await?;
    actions::comment_as(&mut tx, &config, project, author, issue, text, visibility).await?;
    tx.commit().await?;
    Ok(())
}

/// The sorted recipients of the closed notices queued so far.
async fn notified(world: &World) -> Result<Vec<String>, BoxError> {
    recipients(world, Some(KIND)).await
}

/// The closed notice queued for `to`.
async fn notice_to(world: &World, to: &str) -> Result<String, BoxError> {
    let mails = outbox(world, KIND).await?;
    let (_, raw) = mails
        .into_iter()
        .find(|(recipients, _)| recipients.iter().any(|r| r == to))
        .ok_or_else(|| format!("no closed notice to {to}"))?;
    Ok(raw)
}

both!(an_answered_ticket_closed_tells_each_participant, |db| {
    let world = World::new(db).await?;
    let (project, ticket, pb) = ticket(&world, false).await?;
    // kk@ was taken off the ticket: no more mail about it.
    let mut tx = world.store().begin().await?;
    tx.remove_issue_participant(ticket.id, "kk@example.org")
        .await?;
    tx.commit().await?;
    comment(
        &world,
        &project,
        &pb,
        &ticket,
        "We are on it.",
        NoteVisibility::Public,
    )
    .await?;

    set_state(&world, &project, &pb, &ticket, IssueState::Closed).await?;
    assert_eq!(
        notified(&world).await?,
        ["cc@example.com", "jake@adventuretime.ooo"]
    );
    let raw = notice_to(&world, "jake@adventuretime.ooo").await?;
    let mail = Email::parse(raw.as_bytes());
    let key = mail
        .header_value("X-Postern-Reply-Key")
        .ok_or("reply key header")?;
    assert_eq!(
        mail.from(),
        [format!(
            "incoming+email-test-{}-issue-@appmail.adventuretime.ooo",
            project.id
        )]
    );
    assert_eq!(
        mail.reply_to(),
        [format!("incoming+{key}@appmail.adventuretime.ooo")]
    );
    assert_eq!(mail.subject(), Some("Re: The message subject! @all (#1)"));
    let root = format!("issue_{}@localhost", ticket.id);
    assert_eq!(mail.in_reply_to(), Some(root.clone()));
    assert_eq!(mail.references(), [format!("reply-{key}@localhost"), root]);
    assert_eq!(
        mail.header_value("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    let text = postern_mail::parse_reply(&mail, postern_mail::ReplyOptions::default())?;
    assert!(
        text.body
            .contains("Your request #1 “The message subject! @all” was closed by pb."),
        "{}",
        text.body
    );
    assert!(
        text.body
            .contains("You can still reply to this mail to add a comment."),
        "{}",
        text.body
    );
    assert!(
        !text.body.contains("http"),
        "no link to a page they cannot read: {}",
        text.body
    );

    // Closing what is closed changes nothing and sends nothing.
    set_state(&world, &project, &pb, &ticket, IssueState::Closed).await?;
    assert_eq!(notified(&world).await?.len(), 2);

    // The customer answers the notice: a Support Bot note in their name; the ticket stays
    // closed, as the project does not reopen on answers.
    let answer = reply_to(&raw, "Jake <jake@adventuretime.ooo>", "Thanks!", "c-1")?;
    let outcome = world.receive(INCOMING, &answer).await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let after = world.issue_in(&project, ticket.iid).await?;
    assert_eq!(after.state, IssueState::Closed);
    let notes = world.notes(&after).await?;
    let last = notes.last().ok_or("a note")?;
    assert!(last.body.starts_with("Thanks!"), "{}", last.body);
    assert_eq!(
        last.external_author.as_deref(),
        Some("jake@adventuretime.ooo")
    );
    assert!(!last.internal && !last.system);
    Ok(())
});

both!(
    a_close_in_a_members_mail_reply_tells_them_and_an_answer_reopens,
    |db| {
        let world = World::new(db).await?;
        let (project, ticket, pb) = ticket(&world, true).await?;
        // pb answers by the ticket's issue address, the customer answers that, and pb closes the
        // ticket with `/close` in a reply to the notification of the customer's answer.
        let answer = by_issue_address(&project, &pb, &ticket, "We are on it.");
        let outcome = world.receive(INCOMING, answer.as_bytes()).await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        let (_, to_jake) = outbox(&world, "service_desk_note")
            .await?
            .into_iter()
            .find(|(to, _)| to == &["jake@adventuretime.ooo"])
            .ok_or("the answer to jake@")?;
        let follow_up = reply_to(&to_jake, "jake@adventuretime.ooo", "Any news?", "c-1")?;
        world.receive(INCOMING, &follow_up).await?;
        let (_, to_pb) = outbox(&world, "notification")
            .await?
            .into_iter()
            .find(|(to, _)| to == &["pb@candy.example"])
            .ok_or("the notification to pb")?;
        let close = reply_to(&to_pb, "pb@candy.example", "/close", "pb-2")?;
        let outcome = world.receive(INCOMING, &close).await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        let closed = world.issue_in(&project, ticket.iid).await?;
        assert_eq!(closed.state, IssueState::Closed);
        assert_eq!(
            notified(&world).await?,
            ["cc@example.com", "jake@adventuretime.ooo", "kk@example.org"]
        );
        let raw = notice_to(&world, "cc@example.com").await?;
        let text = postern_mail::parse_reply(
            &Email::parse(raw.as_bytes()),
            postern_mail::ReplyOptions::default(),
        )?;
        assert!(
            text.body
                .contains("If it is not solved, reply to this mail and it will be reopened."),
            "{}",
            text.body
        );

        // cc@ answers the notice: their note, and the ticket open again; reopening tells no one.
        let answer = reply_to(&raw, "cc@example.com", "Not solved for me.", "cc-1")?;
        let outcome = world.receive(INCOMING, &answer).await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
        let reopened = world.issue_in(&project, ticket.iid).await?;
        assert_eq!(reopened.state, IssueState::Opened);
        let notes = world.notes(&reopened).await?;
        assert!(
            notes
                .iter()
                .any(|n| n.body.starts_with("Not solved for me.")
                    && n.external_author.as_deref() == Some("cc@example.com"))
        );
        assert!(notes.iter().any(|n| n.system && n.body == "reopened"));
        assert_eq!(notified(&world).await?.len(), 3);
        Ok(())
    }
);

both!(
    no_notice_unanswered_on_reopening_by_the_bot_or_for_an_issue,
    |db| {
        let world = World::new(db).await?;
        let (project, ticket, pb) = ticket(&world, false).await?;
        // The customer's own follow-up and an internal note are no answer.
        let (_, thanks) = outbox(&world, "service_desk_thank_you")
            .await?
            .pop()
            .ok_or("the thank-you")?;
        let follow_up = reply_to(&thanks, "jake@adventuretime.ooo", "Any news?", "c-1")?;
        world.receive(INCOMING, &follow_up).await?;
        comment(
            &world,
            &project,
            &pb,
            &ticket,
            "Spam, I think",
            NoteVisibility::Internal,
        )
        .await?;
        assert_eq!(world.notes(&ticket).await?.len(), 2);
        set_state(&world, &project, &pb, &ticket, IssueState::Closed).await?;
        set_state(&world, &project, &pb, &ticket, IssueState::Opened).await?;
        assert!(notified(&world).await?.is_empty());

        // Answered, but closed by the Support Bot: nothing; reopened: nothing.
        comment(
            &world,
            &project,
            &pb,
            &ticket,
            "Not spam after all.",
            NoteVisibility::Public,
        )
        .await?;
        let mut tx = world.store().begin().await?;
        let bot = tx.support_bot().await?.ok_or("support bot")?;
        tx.commit().await?;
        set_state(&world, &project, &bot, &ticket, IssueState::Closed).await?;
        set_state(&world, &project, &pb, &ticket, IssueState::Opened).await?;
        assert!(notified(&world).await?.is_empty());
        set_state(&world, &project, &pb, &ticket, IssueState::Closed).await?;
        assert_eq!(notified(&world).await?.len(), 3);

        // An issue with an outside address (as a ticket turned into one would keep it),
        // answered and closed: no mail to that address.
        let mut tx = world.store().begin().await?;
        let issue = tx
            .create_issue(NewIssue::new(project.id, pb.id, "Plain", "text"))
            .await?;
        tx.add_issue_participant(issue.id, "stranger@example.org")
            .await?;
        tx.commit().await?;
        comment(
            &world,
            &project,
            &pb,
            &issue,
            "Noted.",
            NoteVisibility::Public,
        )
        .await?;
        set_state(&world, &project, &pb, &issue, IssueState::Closed).await?;
        let mut tx = world.store().begin().await?;
        let all = tx.list_outbox(&OutboxFilter::default()).await?;
        tx.rollback().await?;
        assert!(
            all.iter()
                .all(|m| !m.recipients.contains(&"stranger@example.org".to_owned())),
            "{all:?}"
        );
        assert_eq!(notified(&world).await?.len(), 3);
        Ok(())
    }
);

// GitLab's order: the commands of a comment run after it is saved, so a first answer that
// also closes ("Fixed. /close") is an answer, and the customer hears of the closing.
both!(a_first_answer_that_closes_is_an_answer, |db| {
    let world = World::new(db).await?;
    let (project, ticket, pb) = ticket(&world, false).await?;
    let answer = by_issue_address(
        &project,
        &pb,
        &ticket,
        "Fixed, the toner was empty.\r\n\r\n/close",
    );
    let outcome = world.receive(INCOMING, answer.as_bytes()).await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");
    let closed = world.issue_in(&project, ticket.iid).await?;
    assert_eq!(closed.state, IssueState::Closed);
    let bodies: Vec<String> = world
        .notes(&closed)
        .await?
        .into_iter()
        .map(|n| n.body)
        .collect();
    let answered = bodies
        .iter()
        .position(|b| b.starts_with("Fixed, the toner"));
    let closing = bodies.iter().position(|b| b == "closed");
    assert!(
        matches!((answered, closing), (Some(a), Some(c)) if a < c),
        "the answer is saved before the ticket closes: {bodies:?}"
    );
    assert_eq!(
        notified(&world).await?,
        ["cc@example.com", "jake@adventuretime.ooo", "kk@example.org"]
    );
    Ok(())
});
