//! The mail postern sends, as its recipients get it: the HTML part renders the Markdown
//! (sanitised, inline styles), the text part keeps the source, a link to the page, and
//! one-click unsubscribe (RFC 8058) through the web UI without a session.

use axum::http::{Method, StatusCode};
use postern_core::Outcome;
use postern_store::{Noteable, OutboxFilter, Role, Visibility};
use postern_testkit::{BoxError, both};

use crate::support::Web;

/// The newest outbox mail of `kind` to `to`, as sent.
pub async fn last_mail_to(web: &Web, kind: &str, to: &str) -> Result<Vec<u8>, BoxError> {
    let mut tx = web.store().begin().await?;
    let rows = tx
        .list_outbox(&OutboxFilter {
            kind: Some(kind.to_owned()),
            ..OutboxFilter::default()
        })
        .await?;
    let row = rows
        .iter()
        .find(|m| m.recipients.iter().any(|r| r == to))
        .ok_or_else(|| format!("no {kind} mail to {to}: {rows:?}"))?;
    let raw = tx.outbox_raw(row.id).await?.ok_or("no raw mail")?;
    tx.rollback().await?;
    Ok(raw)
}

/// The path of the one-click link in `raw`'s `List-Unsubscribe`, checked as RFC 8058 asks: the
/// HTTPS link beside the mailto, and the one-click header.
pub fn one_click_path(raw: &[u8]) -> Result<String, BoxError> {
    let email = postern_mail::Email::parse(raw);
    let unsubscribe = email.header_value("List-Unsubscribe").ok_or("no header")?;
    let prefix = "<https://tracker.example/-/unsubscribe/";
    assert!(unsubscribe.starts_with(prefix), "{unsubscribe}");
    assert!(unsubscribe.contains(", <mailto:incoming+"), "{unsubscribe}");
    assert_eq!(
        email.header_value("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let token = &unsubscribe[prefix.len()..unsubscribe.find('>').ok_or("no >")?];
    Ok(format!("/-/unsubscribe/{token}"))
}

/// A mailbox provider's one-click POST to `path` (no session, no CSRF token: the link's token
/// decides), and the page saying it is done.
pub async fn one_click(web: &Web, path: &str) -> crate::support::Reply {
    let done = web
        .send(
            Method::POST,
            path,
            None,
            Some(&[("List-Unsubscribe", "One-Click")]),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("id=\"unsubscribed\""), "{}", done.body);
    done
}

both!(
    notification_html_renders_markdown_and_unsubscribes_in_one_click,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let bob = web.user("bob", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        web.member(&project, &bob, Role::Developer).await?;
        let outcome = web
            .receive(&web.new_issue_mail(&project, &bob, "Invoice", "wrong total"))
            .await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");

        // Alice answers; the instance is reached at an HTTPS address.
        let mut config = web.processor.config().clone();
        config.web_url = Some("https://tracker.example".into());
        let mut tx = web.store().begin().await?;
        let issue = tx.issue_by_iid(project.id, 1).await?.ok_or("issue")?;
        let body = "We **corrected** it.\n\n| Item | Total |\n|---|---|\n| Tea | 3 |\n\n\
                <img src=x onerror=alert(1)><span style=\"color:red\">styled</span>";
        postern_core::actions::comment(&mut tx, &config, &project, &alice, &issue, body).await?;
        tx.commit().await?;

        let raw = last_mail_to(&web, "notification", "bob@example.com").await?;
        let mail = mail_parser::MessageParser::default()
            .parse(&raw)
            .ok_or("unparsable")?;
        let html = mail.body_html(0).ok_or("no HTML part")?;
        assert!(html.contains("<strong>corrected</strong>"), "{html}");
        assert!(html.contains("<table style=\""), "{html}");
        assert!(html.contains(">Tea</td>"), "{html}");
        for bad in [
            "**corrected**",
            "| Item",
            "onerror",
            "color:red",
            "src=\"x\"",
        ] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        let page = format!("https://tracker.example/projects/{}/issues/1", project.id);
        assert!(html.contains(&format!("<a href=\"{page}\">")), "{html}");
        let text = mail.body_text(0).ok_or("no text part")?;
        assert!(text.contains("We **corrected** it."), "{text}");
        assert!(text.contains(&page), "{text}");

        let path = one_click_path(&raw)?;

        // The page asks and changes nothing (mail scanners follow links).
        let subscribed = async |web: &Web| -> Result<Option<bool>, BoxError> {
            let mut tx = web.store().begin().await?;
            let subscriptions = tx.subscriptions_for(Noteable::Issue(issue.id)).await?;
            tx.rollback().await?;
            Ok(subscriptions
                .iter()
                .find(|s| s.user_id == bob.id)
                .map(|s| s.subscribed))
        };
        let confirm = web.get(&path, None).await;
        assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
        assert!(confirm.body.contains("Invoice"), "{}", confirm.body);
        assert_eq!(subscribed(&web).await?, None);

        // The mailbox provider's POST: no session, no CSRF token; the link's token decides.
        one_click(&web, &path).await;
        assert_eq!(subscribed(&web).await?, Some(false));

        // Bob hears no more about it.
        let mut tx = web.store().begin().await?;
        let issue = tx.issue_by_iid(project.id, 1).await?.ok_or("issue")?;
        let queued_before = tx.list_outbox(&OutboxFilter::default()).await?.len();
        postern_core::actions::comment(&mut tx, &config, &project, &alice, &issue, "More.").await?;
        assert_eq!(
            tx.list_outbox(&OutboxFilter::default()).await?.len(),
            queued_before
        );
        tx.commit().await?;

        // An unknown or malformed token unsubscribes no one.
        let wrong = "0".repeat(32);
        for bad in [wrong.as_str(), "nope"] {
            let reply = web
                .send(Method::POST, &format!("/-/unsubscribe/{bad}"), None, None)
                .await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND);
        }
        Ok(())
    }
);

both!(plain_http_instances_offer_only_the_mailto, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    let bob = web.user("bob", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    web.member(&project, &alice, Role::Developer).await?;
    web.member(&project, &bob, Role::Developer).await?;
    web.receive(&web.new_issue_mail(&project, &bob, "Plain", "x"))
        .await?;
    let mut config = web.processor.config().clone();
    config.web_url = Some("http://tracker.example".into());
    let mut tx = web.store().begin().await?;
    let issue = tx.issue_by_iid(project.id, 1).await?.ok_or("issue")?;
    postern_core::actions::comment(&mut tx, &config, &project, &alice, &issue, "ok").await?;
    tx.commit().await?;
    let raw = last_mail_to(&web, "notification", "bob@example.com").await?;
    let email = postern_mail::Email::parse(&raw);
    let unsubscribe = email.header_value("List-Unsubscribe").ok_or("no header")?;
    assert!(unsubscribe.starts_with("<mailto:"), "{unsubscribe}");
    assert!(!email.has_header("List-Unsubscribe-Post"));
    Ok(())
});
