//! The mail desk and the outbox made to be scanned: From, To, Subject, state, error and what a
//! message created; the message page with a readable body and the outcome of "Process again";
//! outbox rows that open to the mail as sent; a Service Desk that is off named as such.

use axum::http::{Method, StatusCode, header};
use postern_core::{ErrorKind, Outcome};
use postern_store::{InboundSource, Mailbox, OutboxFilter, Role, Visibility};
use postern_testkit::both;

use crate::support::Web;

both!(desk_rows_name_sender_subject_and_what_was_created, |db| {
    let web = Web::new(db).await?;
    web.user("root", true).await?;
    let alice = web.user("alice", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    // Rejected first (Alice is no member yet), then processed again once she is.
    let outcome = web
        .receive(&web.new_issue_mail(&project, &alice, "Printer jam", "It *jams* daily."))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Rejected);
    let session = web.login("root").await?;
    let list = web.get("/admin/mail", session.cookie()).await;
    assert_eq!(list.status, StatusCode::OK);
    for expected in [
        "alice@example.com",
        "incoming+",
        "Printer jam",
        "project_not_found",
    ] {
        assert!(list.body.contains(expected), "{expected}: {}", list.body);
    }

    web.member(&project, &alice, Role::Developer).await?;
    let path = format!("/admin/mail/messages/{}", outcome.inbound_id);
    let page = web.get(&path, session.cookie()).await;
    let reply = web
        .send(
            Method::POST,
            &format!("{path}/reprocess"),
            session.cookie(),
            Some(&[("csrf", &page.csrf())]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let location = reply.header(header::LOCATION.as_str()).to_owned();
    let page = web.get(&location, session.cookie()).await;
    assert!(
        page.body.contains("Processed again: processed"),
        "{}",
        page.body
    );
    // Attribute values are escaped: `/` as `&#x2f;`.
    let issue_link = format!(
        "href=\"&#x2f;projects&#x2f;{}&#x2f;issues&#x2f;1\"",
        project.id
    );
    assert!(page.body.contains(&issue_link), "{}", page.body);
    assert!(
        page.body
            .contains("<td id=\"subject\" dir=\"auto\">Printer jam</td>"),
        "{}",
        page.body
    );
    // The body as text, not only the headers.
    assert!(page.body.contains("It *jams* daily."), "{}", page.body);
    let list = web.get("/admin/mail", session.cookie()).await;
    assert!(list.body.contains(&issue_link), "{}", list.body);
    Ok(())
});

both!(outbox_rows_open_to_the_mail_as_sent, |db| {
    let web = Web::new(db).await?;
    web.user("root", true).await?;
    let eve = web.user("eve", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    let outcome = web
        .receive(&web.new_issue_mail(&project, &eve, "no", "x"))
        .await?;
    assert!(outcome.reject_notice_queued);
    let mut tx = web.store().begin().await?;
    let notice = tx.list_outbox(&OutboxFilter::default()).await?;
    tx.rollback().await?;
    let id = notice.first().ok_or("no outbox mail")?.id;
    let session = web.login("root").await?;
    let list = web.get("/admin/mail/outbox", session.cookie()).await;
    assert!(
        list.body
            .contains(&format!("<a href=\"/admin/mail/outbox/{id}\">")),
        "{}",
        list.body
    );
    let page = web
        .get(&format!("/admin/mail/outbox/{id}"), session.cookie())
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("eve@example.com"), "{}", page.body);
    assert!(
        page.body.contains("find the project"),
        "the notice's text: {}",
        page.body
    );
    let raw = web
        .get(&format!("/admin/mail/outbox/{id}/raw"), session.cookie())
        .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.header("content-type"), "application/octet-stream");
    assert!(raw.body.contains("To: "), "{}", raw.body);
    // Administrators only.
    let eve_s = web.login("eve").await?;
    let denied = web
        .get(&format!("/admin/mail/outbox/{id}"), eve_s.cookie())
        .await;
    assert_ne!(denied.status, StatusCode::OK);
    Ok(())
});

both!(
    a_service_desk_that_is_off_is_named_to_the_operator_only,
    |db| {
        let web = Web::new(db).await?;
        web.user("root", true).await?;
        let project = web.project("p", Visibility::Private).await?;
        let mail = format!(
            "From: Customer <customer@example.org>\r\nTo: support+group-p-{}-issue-@example.com\r\n\
         Subject: Help\r\nMessage-ID: <help@example.org>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n",
            project.id
        );
        let outcome = web
            .processor
            .receive(
                mail.as_bytes(),
                Mailbox::ServiceDesk,
                InboundSource::Lmtp,
                None,
            )
            .await?;
        // GitLab's answer, unchanged: project not found, and its notice.
        assert_eq!(
            outcome.error,
            Some(ErrorKind::ProjectNotFound),
            "{outcome:?}"
        );
        let session = web.login("root").await?;
        let page = web
            .get(
                &format!("/admin/mail/messages/{}", outcome.inbound_id),
                session.cookie(),
            )
            .await;
        assert!(
            page.body
                .contains("Service Desk is disabled for group&#x2f;p"),
            "{}",
            page.body
        );
        let mut tx = web.store().begin().await?;
        for mail in tx.list_outbox(&OutboxFilter::default()).await? {
            let raw = tx.outbox_raw(mail.id).await?.ok_or("raw")?;
            let raw = String::from_utf8_lossy(&raw);
            assert!(!raw.contains("Service Desk is disabled"), "{raw}");
        }
        tx.rollback().await?;
        Ok(())
    }
);
