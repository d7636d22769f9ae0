//! The mail desk: sources, inbound log with filters and paging, raw download, process again,
//! outbox.

use postern_core::Outcome;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use postern_inbox::status::SourceStatus;
use postern_store::{Role, Visibility};
use postern_testkit::both;

use crate::support::Web;

both!(mail_desk_is_for_administrators_only, |db| {
    let web = Web::new(db).await?;
    web.user("alice", false).await?;
    let session = web.login("alice").await?;
    for path in [
        "/admin/mail",
        "/admin/mail/outbox",
        "/admin/mail/messages/1",
        "/admin/mail/messages/1/raw",
    ] {
        assert_eq!(
            web.get(path, session.cookie()).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let reply = web
        .post_form("/admin/mail/messages/1/reprocess", &session, &[])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    Ok(())
});

both!(
    mail_desk_shows_sources_and_the_inbound_log_with_filters_and_pages,
    |db| {
        let source = Arc::new(SourceStatus::new(
            "incoming_email",
            "imap",
            "bot@imap.example:993/INBOX",
        ));
        source.failed("authentication failed");
        let web = Web::with_sources(db, vec![source]).await?;
        let root = web.user("root", true).await?;
        let alice = web.user("alice", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        let outsider = web.user("eve", false).await?;
        web.receive(&web.new_issue_mail(&project, &alice, "first", "hello"))
            .await?;
        web.receive(&web.new_issue_mail(&project, &outsider, "second", "hi"))
            .await?;
        web.receive(&web.new_issue_mail(&project, &alice, "third", "more"))
            .await?;
        let _ = root;
        let session = web.login("root").await?;

        let page = web.get("/admin/mail", session.cookie()).await;
        assert_eq!(page.status, StatusCode::OK);
        // Templates escape `/` too.
        assert!(
            page.body.contains("bot@imap.example:993&#x2f;INBOX"),
            "{}",
            page.body
        );
        assert!(page.body.contains("reconnecting"));
        assert!(page.body.contains("authentication failed"));
        // Page size 2 in tests: the newest two, and a link to the older one.
        assert!(
            page.body
                .contains("<a href=\"/admin/mail/messages/3\">3</a>")
        );
        assert!(
            page.body
                .contains("<a href=\"/admin/mail/messages/2\">2</a>")
        );
        assert!(
            !page
                .body
                .contains("<a href=\"/admin/mail/messages/1\">1</a>")
        );
        assert!(page.body.contains("before=2"), "{}", page.body);
        let older = web
            .get("/admin/mail?state=&mailbox=&before=2", session.cookie())
            .await;
        assert!(
            older
                .body
                .contains("<a href=\"/admin/mail/messages/1\">1</a>")
        );
        assert!(!older.body.contains("before="));

        let rejected = web
            .get("/admin/mail?state=rejected", session.cookie())
            .await;
        assert!(
            rejected
                .body
                .contains("<a href=\"/admin/mail/messages/2\">2</a>")
        );
        assert!(
            rejected.body.contains("project_not_found"),
            "{}",
            rejected.body
        );
        assert!(
            !rejected
                .body
                .contains("<a href=\"/admin/mail/messages/3\">3</a>")
        );
        let service_desk = web
            .get("/admin/mail?mailbox=service_desk", session.cookie())
            .await;
        assert!(service_desk.body.contains("No message."));
        let bad = web.get("/admin/mail?state=bogus", session.cookie()).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        Ok(())
    }
);

both!(raw_message_downloads_as_an_attachment, |db| {
    let web = Web::new(db).await?;
    let root = web.user("root", true).await?;
    let project = web.project("p", Visibility::Private).await?;
    let mail = web.new_issue_mail(&project, &root, "raw", "<script>alert(1)</script>");
    let outcome = web.receive(&mail).await?;
    let session = web.login("root").await?;
    let reply = web
        .get(
            &format!("/admin/mail/messages/{}/raw", outcome.inbound_id),
            session.cookie(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "application/octet-stream");
    assert_eq!(
        reply.header("content-disposition"),
        format!(
            "attachment; filename=\"message-{}.eml\"",
            outcome.inbound_id
        )
    );
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
    assert_eq!(reply.body, mail);
    let missing = web
        .get("/admin/mail/messages/999/raw", session.cookie())
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    Ok(())
});

both!(process_again_applies_what_changed_since, |db| {
    let web = Web::new(db).await?;
    web.user("root", true).await?;
    let alice = web.user("alice", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    let outcome = web
        .receive(&web.new_issue_mail(&project, &alice, "late member", "please"))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Rejected);
    web.member(&project, &alice, Role::Developer).await?;
    let session = web.login("root").await?;
    let path = format!("/admin/mail/messages/{}", outcome.inbound_id);
    let page = web.get(&path, session.cookie()).await;
    assert!(page.body.contains("<td id=\"state\">rejected</td>"));

    let no_csrf = web
        .send(
            Method::POST,
            &format!("{path}/reprocess"),
            session.cookie(),
            Some(&[("csrf", "x")]),
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let reply = web
        .post_form(&format!("{path}/reprocess"), &session, &[])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let page = web.get(&path, session.cookie()).await;
    assert!(
        page.body.contains("<td id=\"state\">processed</td>"),
        "{}",
        page.body
    );
    let mut tx = web.store().begin().await?;
    assert!(tx.issue_by_iid(project.id, 1).await?.is_some());
    tx.rollback().await?;
    Ok(())
});

both!(outbox_lists_mail_with_delivery_state, |db| {
    let web = Web::new(db).await?;
    web.user("root", true).await?;
    let eve = web.user("eve", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    let outcome = web
        .receive(&web.new_issue_mail(&project, &eve, "no", "x"))
        .await?;
    assert!(outcome.reject_notice_queued);
    let session = web.login("root").await?;
    let page = web.get("/admin/mail/outbox", session.cookie()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("eve@example.com"));
    assert!(page.body.contains("<td>queued</td>"));
    let sent = web
        .get("/admin/mail/outbox?state=sent", session.cookie())
        .await;
    assert!(sent.body.contains("The outbox is empty."));
    Ok(())
});

both!(
    quarantined_mail_shows_with_its_reason_and_can_be_processed_again,
    |db| {
        let web = Web::new(db).await?;
        web.user("root", true).await?;
        let alice = web.user("alice", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        // Stored, then set aside as processing would after the same failure again and again.
        let mut tx = web.store().begin().await?;
        let mail = web.new_issue_mail(&project, &alice, "aside", "hello");
        let id = match tx
            .insert_inbound(&postern_store::NewInbound {
                mailbox: postern_store::Mailbox::Incoming,
                source: postern_store::InboundSource::Lmtp,
                message_id: None,
                raw: mail.as_bytes().into(),
                source_identity: None,
                content_identity: postern_store::content_identity(None, mail.as_bytes()),
                declared_size: None,
            })
            .await?
        {
            postern_store::InsertOutcome::New(id) => id,
            other => panic!("{other:?}"),
        };
        tx.quarantine_inbound(
            id,
            postern_core::ErrorKind::RepeatedFailure,
            "failed 8 times in a row: disk full",
        )
        .await?;
        tx.commit().await?;

        let session = web.login("root").await?;
        let list = web
            .get("/admin/mail?state=quarantined", session.cookie())
            .await;
        assert!(
            list.body
                .contains("<option value=\"quarantined\" selected>")
        );
        assert!(
            list.body.contains("failed 8 times in a row: disk full"),
            "{}",
            list.body
        );
        let path = format!("/admin/mail/messages/{id}");
        let page = web.get(&path, session.cookie()).await;
        assert!(
            page.body.contains("<td id=\"state\">quarantined</td>"),
            "{}",
            page.body
        );
        let reply = web
            .post_form(&format!("{path}/reprocess"), &session, &[])
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let page = web.get(&path, session.cookie()).await;
        assert!(
            page.body.contains("<td id=\"state\">processed</td>"),
            "{}",
            page.body
        );
        Ok(())
    }
);
