//! Service Desk work as agents do it: internal notes (never mailed, hidden from whoever may
//! not read them on the page and in the API) and the line naming who receives a comment.

use axum::http::StatusCode;
use postern_store::{IssueType, NewIssue, OutboxFilter, Role, Visibility};
use postern_testkit::both;

use crate::api::{api, token_for};
use crate::support::Web;

/// Every outbox row's recipients, in order.
async fn outbox_recipients(web: &Web) -> Result<Vec<Vec<String>>, postern_testkit::BoxError> {
    let mut tx = web.store().begin().await?;
    let outbox = tx.list_outbox(&OutboxFilter::default()).await?;
    tx.rollback().await?;
    Ok(outbox.into_iter().map(|m| m.recipients).collect())
}

both!(
    internal_notes_are_mailed_to_nobody_and_read_by_reporters_only,
    |db| {
        let web = Web::new(db).await?;
        let agent = web.user("agent", false).await?;
        let dev = web.user("dev", false).await?;
        let guest = web.user("guest", false).await?;
        let project = web.project("desk", Visibility::Public).await?;
        web.member(&project, &agent, Role::Reporter).await?;
        web.member(&project, &dev, Role::Developer).await?;
        web.member(&project, &guest, Role::Guest).await?;
        let mut tx = web.store().begin().await?;
        // A ticket from a customer, assigned to the developer; and an ordinary public issue.
        let mut ticket = NewIssue::new(project.id, dev.id, "Printer on fire", "Please help");
        ticket.issue_type = IssueType::Ticket;
        ticket.external_author = Some("customer@example.org".into());
        ticket.assignee_ids = vec![dev.id];
        let ticket = tx.create_issue(ticket).await?;
        tx.add_issue_participant(ticket.id, "customer@example.org")
            .await?;
        tx.create_issue(NewIssue::new(project.id, dev.id, "Public bug", "visible"))
            .await?;
        tx.commit().await?;

        let session = web.login("agent").await?;
        let path = format!("/projects/{}/issues/1", project.id);
        let page = web.get(&path, session.cookie()).await;
        assert_eq!(page.status, StatusCode::OK);
        // The line above the comment box names the customer and the developer, and the checkbox
        // is offered to a reporter.
        let line_start = page.body.find("id=\"mail-line\"").expect("mail line");
        let line =
            &page.body[line_start..line_start + page.body[line_start..].find("</p>").unwrap()];
        assert!(line.contains("customer@example.org"), "{line}");
        assert!(line.contains("dev"), "{line}");
        assert!(!line.contains("agent"), "{line}");
        assert!(page.body.contains("id=\"comment-internal\""));

        // An internal note: stored, shown to the agent, mailed to nobody.
        let before = outbox_recipients(&web).await?;
        let reply = web
            .post_form(
                &format!("{path}/notes"),
                &session,
                &[
                    ("body", "Customer **sounds** upset, @dev"),
                    ("internal", "1"),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(
            outbox_recipients(&web).await?,
            before,
            "an internal note was mailed"
        );
        let page = web.get(&path, session.cookie()).await;
        assert!(page.body.contains("Customer <strong>sounds</strong> upset"));
        assert!(page.body.contains("note internal"));

        // An ordinary answer goes to exactly the people the line named.
        let reply = web
            .post_form(
                &format!("{path}/notes"),
                &session,
                &[("body", "We are on it.")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let after = outbox_recipients(&web).await?;
        let mut new: Vec<String> = after[before.len()..].iter().flatten().cloned().collect();
        new.sort();
        assert_eq!(new, ["customer@example.org", "dev@example.com"]);

        // On the public issue: an internal note, hidden from a guest, signed out and in the API.
        let public = format!("/projects/{}/issues/2", project.id);
        let reply = web
            .post_form(
                &format!("{public}/notes"),
                &session,
                &[("body", "internal-only remark"), ("internal", "on")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert!(
            web.get(&public, session.cookie())
                .await
                .body
                .contains("internal-only remark")
        );
        let anonymous = web.get(&public, None).await;
        assert_eq!(anonymous.status, StatusCode::OK);
        assert!(!anonymous.body.contains("internal-only remark"));
        let guest_s = web.login("guest").await?;
        let guest_page = web.get(&public, guest_s.cookie()).await;
        assert_eq!(guest_page.status, StatusCode::OK);
        assert!(!guest_page.body.contains("internal-only remark"));
        assert!(!guest_page.body.contains("comment-internal"));
        let notes = format!("/projects/{}/issues/2/notes", project.id);
        let guest_t = token_for(&web, "guest").await?;
        let agent_t = token_for(&web, "agent").await?;
        let guest_api = api(&web, "GET", &notes, &guest_t, None).await;
        assert_eq!(guest_api.status, StatusCode::OK);
        assert!(!guest_api.body.contains("internal-only remark"));
        let agent_api = api(&web, "GET", &notes, &agent_t, None).await;
        assert!(
            agent_api.body.contains("internal-only remark"),
            "{}",
            agent_api.body
        );

        // A guest may not write one: refused, nothing stored, nothing published.
        let refused = web
            .post_form(
                &format!("{public}/notes"),
                &guest_s,
                &[("body", "guest sneaks in"), ("internal", "1")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(
            !web.get(&public, session.cookie())
                .await
                .body
                .contains("guest sneaks in")
        );
        Ok(())
    }
);

/// A customer's HTML-only mail to the Service Desk of `project`: a table, line breaks, an
/// inline image (`cid:`), a remote image and an image with a relative `src`.
pub fn html_ticket_mail(project: &postern_store::Project) -> String {
    format!(
        "From: Customer <customer@example.org>\r\n\
         To: support+group-{path}-{id}-issue-@example.com\r\n\
         Subject: Wrong invoice\r\nMessage-ID: <invoice@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
         --rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><body><p>Hello,<br>the invoice is wrong:</p>\
         <table><tr><th>Item</th><th>Total</th></tr><tr><td>Tea</td><td>3</td></tr></table>\
         <p><img src=\"cid:logo@example.org\" alt=\"our logo\"></p>\
         <img src=\"https://tracker.example.net/pixel.gif\"><img src=\"x\">\
         <p>Regards</p></body></html>\r\n\
         --rel\r\nContent-Type: image/png; name=\"logo.png\"\r\nContent-ID: <logo@example.org>\r\n\
         Content-Disposition: inline; filename=\"logo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\r\n\
         --rel--\r\n",
        path = project.path,
        id = project.id,
    )
}

both!(
    an_html_ticket_is_readable_and_the_answer_renders_its_markdown,
    |db| {
        let web = Web::new(db).await?;
        let agent = web.user("agent", false).await?;
        let project = web.project("desk", Visibility::Private).await?;
        web.member(&project, &agent, Role::Reporter).await?;
        let mut tx = web.store().begin().await?;
        let mut settings = project.service_desk.clone();
        settings.enabled = true;
        tx.update_service_desk(project.id, &settings).await?;
        tx.commit().await?;
        let outcome = web
            .processor
            .receive(
                html_ticket_mail(&project).as_bytes(),
                postern_store::Mailbox::ServiceDesk,
                postern_store::InboundSource::Lmtp,
                None,
            )
            .await?;
        assert_eq!(
            outcome.outcome,
            postern_core::Outcome::Processed,
            "{outcome:?}"
        );

        // Readable: the table and the line break as sent, the inline image in place from its
        // upload, the remote image blocked and counted, the relative source gone.
        let session = web.login("agent").await?;
        let path = format!("/projects/{}/issues/1", project.id);
        let page = web.get(&path, session.cookie()).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let body = &page.body;
        assert!(body.contains("class=\"mail-html\""), "{body}");
        assert!(body.contains("Hello,<br>the invoice is wrong:"), "{body}");
        assert!(body.contains("<td>Tea</td>"), "{body}");
        let inline = body.find("<img src=\"/uploads/").ok_or("no inline image")?;
        assert!(
            body[inline..].starts_with("<img src=\"/uploads/")
                && body[inline..inline + 120].contains("logo.png"),
            "{body}"
        );
        assert!(body.contains("1 remote image blocked"), "{body}");
        assert!(!body.contains("tracker.example.net"), "{body}");
        assert!(!body.contains("src=\"x\""), "{body}");
        // GitLab's Markdown stays the stored text, shown below.
        assert!(body.contains("Stored text"), "{body}");
        // The inline image loads for the agent.
        let src_start = inline + "<img src=\"".len();
        let src_end = src_start + body[src_start..].find('"').ok_or("unterminated src")?;
        let image = web.get(&body[src_start..src_end], session.cookie()).await;
        assert_eq!(image.status, StatusCode::OK);
        assert_eq!(image.header("content-type"), "image/png");

        // An internal note: nothing queued for anyone.
        let before = outbox_recipients(&web).await?;
        let reply = web
            .post_form(
                &format!("{path}/notes"),
                &session,
                &[
                    ("body", "Tea was 2, check with accounting"),
                    ("internal", "1"),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(outbox_recipients(&web).await?, before);

        // The answer in Markdown: the customer's mail renders it.
        let answer =
            "We have **corrected** the invoice:\n\n| Item | Total |\n|---|---|\n| Tea | 2 |\n";
        let reply = web
            .post_form(&format!("{path}/notes"), &session, &[("body", answer)])
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let raw =
            crate::mailout::last_mail_to(&web, "service_desk_note", "customer@example.org").await?;
        let mail = mail_parser::MessageParser::default()
            .parse(&raw)
            .ok_or("unparsable")?;
        let html = mail.body_html(0).ok_or("no HTML part")?;
        assert!(html.contains("<strong>corrected</strong>"), "{html}");
        assert!(html.contains(">Tea</td>"), "{html}");
        assert!(
            !html.contains("**corrected**") && !html.contains("| Item"),
            "{html}"
        );
        assert!(!html.contains("accounting"), "{html}");
        let text = mail.body_text(0).ok_or("no text part")?;
        assert!(
            text.contains("We have **corrected** the invoice:"),
            "{text}"
        );
        Ok(())
    }
);

/// A `multipart/form-data` comment as a browser sends it: the fields, then one file.
fn multipart_comment(fields: &[(&str, &str)], file: (&str, &str, &[u8])) -> (String, Vec<u8>) {
    let boundary = "----postern-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    let (name, content_type, bytes) = file;
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

both!(files_attached_in_the_browser_follow_their_note, |db| {
    let web = Web::new(db).await?;
    let agent = web.user("agent", false).await?;
    let guest = web.user("guest", false).await?;
    let project = web.project("desk", Visibility::Public).await?;
    web.member(&project, &agent, Role::Reporter).await?;
    web.member(&project, &guest, Role::Guest).await?;
    web.issue(&project, &agent, "Bug", "details").await?;
    let session = web.login("agent").await?;
    let path = format!("/projects/{}/issues/1", project.id);
    let png = b"\x89PNG\r\n\x1a\n-not-really-a-png";

    let mut links = Vec::new();
    for (text, internal) in [("Screenshot, café ☕", false), ("Internal log", true)] {
        let mut fields = vec![("csrf", session.csrf.as_str()), ("body", text)];
        if internal {
            fields.push(("internal", "1"));
        }
        let name = if internal { "secret.png" } else { "shot.png" };
        let (content_type, body) = multipart_comment(&fields, (name, "image/png", png));
        let request = axum::http::Request::builder()
            .method("POST")
            .uri(format!("{path}/notes"))
            .header("cookie", &session.cookie)
            .header("content-type", content_type)
            .body(axum::body::Body::from(body))?;
        let reply = web.call(request).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let page = web.get(&path, session.cookie()).await;
        assert!(page.body.contains(text), "{}", page.body);
        let marker = format!("/{name}");
        let end = page.body.find(&marker).ok_or("no link to the file")? + marker.len();
        let start = page.body[..end]
            .rfind("/uploads/")
            .ok_or("no upload path")?;
        links.push(page.body[start..end].to_owned());
    }
    let agent_sees = web.get(&links[1], session.cookie()).await;
    assert_eq!(agent_sees.status, StatusCode::OK);
    assert_eq!(agent_sees.bytes.as_ref(), png);
    // The public comment's file loads signed out; the internal note's does not, nor for a guest.
    assert_eq!(web.get(&links[0], None).await.status, StatusCode::OK);
    assert_ne!(web.get(&links[1], None).await.status, StatusCode::OK);
    let guest_s = web.login("guest").await?;
    assert_ne!(
        web.get(&links[1], guest_s.cookie()).await.status,
        StatusCode::OK
    );

    // Without the session's CSRF token nothing is stored.
    let (content_type, body) = multipart_comment(
        &[("csrf", "forged"), ("body", "forged comment")],
        ("x.png", "image/png", png),
    );
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(format!("{path}/notes"))
        .header("cookie", &session.cookie)
        .header("content-type", content_type)
        .body(axum::body::Body::from(body))?;
    assert_eq!(web.call(request).await.status, StatusCode::FORBIDDEN);
    assert!(
        !web.get(&path, session.cookie())
            .await
            .body
            .contains("forged comment")
    );
    Ok(())
});

both!(
    closing_an_answered_ticket_in_the_browser_tells_its_customer,
    |db| {
        let web = Web::new(db).await?;
        let agent = web.user("agent", false).await?;
        let project = web.project("desk", Visibility::Private).await?;
        web.member(&project, &agent, Role::Reporter).await?;
        let mut tx = web.store().begin().await?;
        for title in ["Printer <on> fire & smoke", "Cheap pills"] {
            let mut ticket = NewIssue::new(project.id, agent.id, title, "Please help");
            ticket.issue_type = IssueType::Ticket;
            ticket.external_author = Some("customer@example.org".into());
            let ticket = tx.create_issue(ticket).await?;
            tx.add_issue_participant(ticket.id, "customer@example.org")
                .await?;
        }
        tx.commit().await?;
        let session = web.login("agent").await?;
        let answered = format!("/projects/{}/issues/1", project.id);
        let reply = web
            .post_form(
                &format!("{answered}/notes"),
                &session,
                &[("body", "Call the fire brigade.")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let reply = web
            .post_form(&format!("{answered}/close"), &session, &[])
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);

        let raw = crate::mailout::last_mail_to(&web, "service_desk_closed", "customer@example.org")
            .await?;
        let mail = mail_parser::MessageParser::default()
            .parse(&raw)
            .ok_or("unparsable")?;
        assert_eq!(mail.subject(), Some("Re: Printer <on> fire & smoke (#1)"));
        let html = mail.body_html(0).ok_or("no HTML part")?;
        assert!(
            html.contains(
                "Your request #1 “Printer &lt;on&gt; fire &amp; smoke” was closed by agent."
            ),
            "{html}"
        );
        assert!(!html.contains("<on>"), "{html}");
        let text = mail.body_text(0).ok_or("no text part")?;
        assert!(
            text.contains("Your request #1 “Printer <on> fire & smoke” was closed by agent."),
            "{text}"
        );

        // The unanswered one (spam, say), closed: no notice.
        let reply = web
            .post_form(
                &format!("/projects/{}/issues/2/close", project.id),
                &session,
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let mut tx = web.store().begin().await?;
        let closed = tx
            .list_outbox(&OutboxFilter {
                kind: Some("service_desk_closed".to_owned()),
                ..OutboxFilter::default()
            })
            .await?;
        tx.rollback().await?;
        assert_eq!(closed.len(), 1, "{closed:?}");
        Ok(())
    }
);
