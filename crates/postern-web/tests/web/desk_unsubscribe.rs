//! A Service Desk ticket's outside participant unsubscribing in one click (RFC 8058): the
//! page asks them about their request, the POST (no session, the link's token decides) takes
//! them off the ticket, once, and they get no more mail about it while the others still do.

use axum::http::{Method, StatusCode};
use postern_store::{IssueType, NewIssue, Noteable, OutboxFilter, Role, Visibility};
use postern_testkit::{BoxError, both};

use crate::mailout::{last_mail_to, one_click, one_click_path};
use crate::support::Web;

/// The ticket's email participants, the Support Bot's system notes on it, and the Support
/// Bot's own subscription to it.
type TicketState = (Vec<String>, Vec<String>, Option<bool>);

both!(an_outside_participant_unsubscribes_in_one_click, |db| {
    let web = Web::new(db).await?;
    let agent = web.user("agent", false).await?;
    let project = web.project("desk", Visibility::Private).await?;
    web.member(&project, &agent, Role::Reporter).await?;
    let mut tx = web.store().begin().await?;
    let mut ticket = NewIssue::new(project.id, agent.id, "Printer on fire", "Please help");
    ticket.issue_type = IssueType::Ticket;
    ticket.external_author = Some("customer@example.org".into());
    let ticket = tx.create_issue(ticket).await?;
    tx.add_issue_participant(ticket.id, "customer@example.org")
        .await?;
    tx.add_issue_participant(ticket.id, "colleague@example.org")
        .await?;
    tx.commit().await?;

    // The agent answers; the instance is reached at an HTTPS address.
    let mut config = web.processor.config().clone();
    config.web_url = Some("https://tracker.example".into());
    let answer = async |web: &Web, text: &str| -> Result<(), BoxError> {
        let mut tx = web.store().begin().await?;
        let ticket = tx.issue_by_id(ticket.id).await?.ok_or("ticket")?;
        postern_core::actions::comment(&mut tx, &config, &project, &agent, &ticket, text).await?;
        tx.commit().await?;
        Ok(())
    };
    answer(&web, "We are on it.").await?;
    let raw = last_mail_to(&web, "service_desk_note", "customer@example.org").await?;
    let path = one_click_path(&raw)?;

    let state = async |web: &Web| -> Result<TicketState, BoxError> {
        let mut tx = web.store().begin().await?;
        let now = tx.issue_by_id(ticket.id).await?.ok_or("ticket")?;
        let notes = tx.notes_for(Noteable::Issue(ticket.id)).await?;
        let bot = tx.ensure_support_bot().await?;
        let bot_subscribed = tx.subscription(bot.id, Noteable::Issue(ticket.id)).await?;
        tx.rollback().await?;
        let removals = notes
            .into_iter()
            .filter(|note| note.system && note.author_id == bot.id)
            .map(|note| note.body)
            .collect();
        Ok((now.email_participants, removals, bot_subscribed))
    };

    // The page asks, worded for someone without an account, and changes nothing.
    let confirm = web.get(&path, None).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(
        confirm
            .body
            .contains("Stop getting mail about request #1 <strong dir=\"auto\">Printer on fire"),
        "{}",
        confirm.body
    );
    assert!(!confirm.body.contains("desk #1"), "{}", confirm.body);
    assert_eq!(state(&web).await?.0.len(), 2);

    // The mailbox provider's POST removes them from the ticket, as the Support Bot.
    let done = one_click(&web, &path).await;
    assert!(done.body.contains("request #1"), "{}", done.body);
    let expected = (
        vec!["colleague@example.org".to_owned()],
        vec!["removed customer@example.org".to_owned()],
        None,
    );
    assert_eq!(state(&web).await?, expected);

    // A second click is harmless: the same page, nothing more written.
    let again = web.send(Method::POST, &path, None, None).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(state(&web).await?, expected);

    // The line above the comment box names only the colleague, and so does the next mail.
    let session = web.login("agent").await?;
    let page = web
        .get(
            &format!("/projects/{}/issues/1", project.id),
            session.cookie(),
        )
        .await;
    let start = page.body.find("id=\"mail-line\"").ok_or("mail line")?;
    let line = &page.body[start..start + page.body[start..].find("</p>").ok_or("</p>")?];
    assert!(line.contains("colleague@example.org"), "{line}");
    assert!(!line.contains("customer@example.org"), "{line}");
    let mut tx = web.store().begin().await?;
    let queued_before = tx.list_outbox(&OutboxFilter::default()).await?.len();
    tx.rollback().await?;
    answer(&web, "Fixed.").await?;
    let mut tx = web.store().begin().await?;
    let outbox = tx.list_outbox(&OutboxFilter::default()).await?;
    tx.rollback().await?;
    let new: Vec<Vec<String>> = outbox
        .iter()
        .take(outbox.len() - queued_before)
        .map(|mail| mail.recipients.clone())
        .collect();
    assert_eq!(new, [["colleague@example.org"]]);
    Ok(())
});
