//! Signed-out visitors: public projects with their issues and merge requests are readable;
//! private and internal projects, confidential issues, Service Desk tickets and internal notes
//! are not (the sign-in page instead, as GitLab answers); writing needs sign-in.

use axum::http::{Method, StatusCode};
use postern_store::{IssueType, NewIssue, NewNote, Noteable, Role, Visibility};
use postern_testkit::both;

use crate::merge_requests::merge_request;
use crate::support::Web;

both!(signed_out_visitors_read_public_projects_only, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    let public = web.project("open", Visibility::Public).await?;
    let internal = web.project("inside", Visibility::Internal).await?;
    let private = web.project("secret", Visibility::Private).await?;
    web.member(&public, &alice, Role::Developer).await?;
    let mut tx = web.store().begin().await?;
    let open_issue = tx
        .create_issue(NewIssue::new(public.id, alice.id, "Public bug", "details"))
        .await?;
    let mut confidential = NewIssue::new(public.id, alice.id, "Hidden bug", "x");
    confidential.confidential = true;
    tx.create_issue(confidential).await?;
    let mut ticket = NewIssue::new(public.id, alice.id, "Customer ticket", "x");
    ticket.issue_type = IssueType::Ticket;
    tx.create_issue(ticket).await?;
    tx.create_note(NewNote {
        noteable: Noteable::Issue(open_issue.id),
        author_id: alice.id,
        body: "Visible comment".into(),
        external_author: None,
        in_reply_to_discussion_id: None,
        internal: false,
        system: false,
    })
    .await?;
    tx.create_note(NewNote {
        noteable: Noteable::Issue(open_issue.id),
        author_id: alice.id,
        body: "Internal remark".into(),
        external_author: None,
        in_reply_to_discussion_id: None,
        internal: true,
        system: false,
    })
    .await?;
    tx.create_issue(NewIssue::new(private.id, alice.id, "Private bug", ""))
        .await?;
    tx.commit().await?;
    let mr = merge_request(&web, &public, &alice).await?;

    let explore = web.get("/explore", None).await;
    assert_eq!(explore.status, StatusCode::OK);
    assert!(explore.body.contains("group&#x2f;open"), "{}", explore.body);
    assert!(!explore.body.contains("group&#x2f;inside"));
    assert!(!explore.body.contains("group&#x2f;secret"));
    assert!(explore.body.contains("id=\"nav-sign-in\""));

    let project = web.get(&format!("/projects/{}", public.id), None).await;
    assert_eq!(project.status, StatusCode::OK);
    assert!(project.body.contains("Public bug"));
    assert!(project.body.contains("Speed up intake"));
    assert!(!project.body.contains("Hidden bug"));
    assert!(!project.body.contains("Customer ticket"));
    assert!(!project.body.contains("New issue"));

    let issue = web
        .get(&format!("/projects/{}/issues/1", public.id), None)
        .await;
    assert_eq!(issue.status, StatusCode::OK);
    assert!(issue.body.contains("Visible comment"));
    assert!(!issue.body.contains("Internal remark"));
    assert!(!issue.body.contains("id=\"comment-body\""));
    assert!(!issue.body.contains("id=\"toggle-state\""));
    let mr_page = web
        .get(
            &format!("/projects/{}/merge_requests/{}", public.id, mr.iid),
            None,
        )
        .await;
    assert_eq!(mr_page.status, StatusCode::OK);
    assert!(!mr_page.body.contains("id=\"comment-body\""));

    // Hidden, missing and never-existing look the same: the sign-in page.
    for path in [
        format!("/projects/{}/issues/2", public.id),
        format!("/projects/{}/issues/3", public.id),
        format!("/projects/{}/issues/99", public.id),
        format!("/projects/{}/merge_requests/99", public.id),
        format!("/projects/{}", internal.id),
        format!("/projects/{}", private.id),
        format!("/projects/{}/issues/1", private.id),
        "/projects/999".to_owned(),
    ] {
        let reply = web.get(&path, None).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        // The sign-in page returns to the page asked for.
        assert_eq!(
            reply.header("location"),
            format!("/login?next={path}"),
            "{path}"
        );
    }

    // Writing needs sign-in.
    for path in [
        format!("/projects/{}/issues", public.id),
        format!("/projects/{}/issues/1/notes", public.id),
        format!("/projects/{}/issues/1/close", public.id),
        format!("/projects/{}/merge_requests/{}/notes", public.id, mr.iid),
    ] {
        let reply = web
            .send(
                Method::POST,
                &path,
                None,
                Some(&[("title", "x"), ("body", "x")]),
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(reply.header("location"), "/login", "{path}");
    }

    // Signed in, an outsider also sees internal projects, and gets 404 for private ones.
    web.user("eve", false).await?;
    let eve = web.login("eve").await?;
    let explore = web.get("/explore", eve.cookie()).await;
    assert!(explore.body.contains("group&#x2f;inside"));
    assert_eq!(
        web.get(&format!("/projects/{}", private.id), eve.cookie())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    Ok(())
});
