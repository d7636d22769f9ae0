//! Tracker pages: read rules, comments and state changes through the core actions, and
//! attachments.

use axum::http::{Method, StatusCode};
use postern_core::Outcome;
use postern_store::{NewIssue, NewUpload, OutboxFilter, Role, Visibility};
use postern_testkit::both;

use crate::support::Web;

both!(
    private_projects_and_confidential_issues_look_missing_to_outsiders,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        web.user("eve", false).await?;
        let guest = web.user("guest", false).await?;
        let project = web.project("secret", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        web.member(&project, &guest, Role::Guest).await?;
        let mut tx = web.store().begin().await?;
        tx.create_issue(NewIssue::new(project.id, alice.id, "Open bug", "details"))
            .await?;
        let mut hidden = NewIssue::new(project.id, alice.id, "Hidden bug", "private");
        hidden.confidential = true;
        tx.create_issue(hidden).await?;
        tx.commit().await?;

        let alice_s = web.login("alice").await?;
        let home = web.get("/", alice_s.cookie()).await;
        assert!(home.body.contains("group&#x2f;secret"));
        let page = web
            .get(&format!("/projects/{}", project.id), alice_s.cookie())
            .await;
        assert!(page.body.contains("Open bug") && page.body.contains("Hidden bug"));
        let issue = web
            .get(
                &format!("/projects/{}/issues/2", project.id),
                alice_s.cookie(),
            )
            .await;
        assert_eq!(issue.status, StatusCode::OK);

        let eve = web.login("eve").await?;
        assert!(
            !web.get("/", eve.cookie())
                .await
                .body
                .contains("group&#x2f;secret")
        );
        for path in [
            format!("/projects/{}", project.id),
            format!("/projects/{}/issues/1", project.id),
        ] {
            assert_eq!(
                web.get(&path, eve.cookie()).await.status,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }

        let guest_s = web.login("guest").await?;
        let page = web
            .get(&format!("/projects/{}", project.id), guest_s.cookie())
            .await;
        assert!(page.body.contains("Open bug"));
        assert!(!page.body.contains("Hidden bug"));
        let hidden = web
            .get(
                &format!("/projects/{}/issues/2", project.id),
                guest_s.cookie(),
            )
            .await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND);
        Ok(())
    }
);

both!(comment_from_the_page_notifies_like_mail, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    let bob = web.user("bob", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    web.member(&project, &alice, Role::Developer).await?;
    web.member(&project, &bob, Role::Developer).await?;
    // Bob opens the issue by mail, so he participates.
    let outcome = web
        .receive(&web.new_issue_mail(&project, &bob, "By mail", "hello"))
        .await?;
    assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");

    let session = web.login("alice").await?;
    let path = format!("/projects/{}/issues/1", project.id);
    let page = web.get(&path, session.cookie()).await;
    assert!(page.body.contains("id=\"comment-body\""));
    let reply = web
        .post_form(
            &format!("{path}/notes"),
            &session,
            &[("body", "Looking **into** it")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = web.get(&path, session.cookie()).await;
    assert!(page.body.contains("Looking <strong>into</strong> it"));

    let mut tx = web.store().begin().await?;
    let outbox = tx.list_outbox(&OutboxFilter::default()).await?;
    tx.rollback().await?;
    assert!(
        outbox
            .iter()
            .any(|m| m.recipients.contains(&"bob@example.com".to_owned())),
        "{outbox:?}"
    );

    let empty = web
        .post_form(&format!("{path}/notes"), &session, &[("body", "  ")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    Ok(())
});

both!(close_and_reopen_need_the_update_right, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    let guest = web.user("guest", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    web.member(&project, &alice, Role::Reporter).await?;
    web.member(&project, &guest, Role::Guest).await?;
    web.issue(&project, &alice, "Bug", "").await?;
    let path = format!("/projects/{}/issues/1", project.id);

    let guest_s = web.login("guest").await?;
    let page = web.get(&path, guest_s.cookie()).await;
    assert!(!page.body.contains("id=\"toggle-state\""));
    let reply = web.post_form(&format!("{path}/close"), &guest_s, &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    let session = web.login("alice").await?;
    let reply = web.post_form(&format!("{path}/close"), &session, &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let page = web.get(&path, session.cookie()).await;
    assert!(
        page.body.contains("<span id=\"issue-state\">closed</span>"),
        "{}",
        page.body
    );
    let reply = web
        .post_form(&format!("{path}/reopen"), &session, &[])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let page = web.get(&path, session.cookie()).await;
    assert!(page.body.contains("<span id=\"issue-state\">opened</span>"));
    Ok(())
});

both!(new_issue_from_the_project_page, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    let project = web.project("p", Visibility::Internal).await?;
    let _ = alice;
    let session = web.login("alice").await?;
    let reply = web
        .post_form(
            &format!("/projects/{}/issues", project.id),
            &session,
            &[("title", "From the web"), ("description", "text")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("location"),
        format!("/projects/{}/issues/1", project.id)
    );
    let blank = web
        .post_form(
            &format!("/projects/{}/issues", project.id),
            &session,
            &[("title", " ")],
        )
        .await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    Ok(())
});

both!(attachments_are_served_inert, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    web.user("eve", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    web.member(&project, &alice, Role::Developer).await?;
    let files = [
        (
            "s1",
            "page.html",
            "text/html",
            b"<script>alert(1)</script>".as_slice(),
        ),
        ("s2", "dot.png", "image/png", b"\x89PNG\r\n".as_slice()),
        (
            "s3",
            "x.svg",
            "image/svg+xml",
            b"<svg onload=alert(1)>".as_slice(),
        ),
    ];
    let staging: Vec<(String, &[u8])> = files
        .iter()
        .map(|(secret, name, _, bytes)| (format!("{secret}/{name}"), *bytes))
        .collect();
    let mut staged = web
        .store()
        .stage_uploads(&web.data.path().join("uploads"), &staging)
        .await?;
    let mut tx = web.store().begin().await?;
    for (secret, name, content_type, bytes) in files {
        tx.create_upload(
            NewUpload {
                project_id: project.id,
                secret: secret.into(),
                filename: name.into(),
                content_type: content_type.into(),
                size: bytes.len() as i64,
                uploaded_by: None,
                relative_path: format!("{secret}/{name}"),
            },
            &mut staged,
        )
        .await?;
    }
    tx.commit().await?;
    let session = web.login("alice").await?;
    let html = web.get("/uploads/s1/page.html", session.cookie()).await;
    assert_eq!(html.status, StatusCode::OK);
    assert_eq!(html.header("content-type"), "application/octet-stream");
    assert_eq!(
        html.header("content-disposition"),
        "attachment; filename=\"page.html\""
    );
    assert_eq!(html.header("x-content-type-options"), "nosniff");
    let svg = web.get("/uploads/s3/x.svg", session.cookie()).await;
    assert!(svg.header("content-disposition").starts_with("attachment"));
    let png = web.get("/uploads/s2/dot.png", session.cookie()).await;
    assert_eq!(png.header("content-type"), "image/png");
    assert_eq!(png.header("content-disposition"), "inline");
    // Wrong file name or a reader without access: missing.
    assert_eq!(
        web.get("/uploads/s2/other.png", session.cookie())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let eve = web.login("eve").await?;
    assert_eq!(
        web.get("/uploads/s2/dot.png", eve.cookie()).await.status,
        StatusCode::NOT_FOUND
    );
    Ok(())
});

both!(
    every_page_carries_the_strict_content_security_policy,
    |db| {
        let web = Web::new(db).await?;
        web.user("root", true).await?;
        let project = web.project("p", Visibility::Private).await?;
        let login = web.get("/login", None).await;
        assert!(
            login
                .header("content-security-policy")
                .starts_with("default-src 'none';")
        );
        let session = web.login("root").await?;
        for path in [
            "/".to_owned(),
            format!("/projects/{}", project.id),
            "/admin/mail".to_owned(),
            "/admin/mail/outbox".to_owned(),
            "/admin/users".to_owned(),
            "/admin/projects".to_owned(),
            format!("/admin/projects/{}", project.id),
            "/profile/tokens".to_owned(),
            "/static/style.css".to_owned(),
        ] {
            let reply = web.get(&path, session.cookie()).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
            let csp = reply.header("content-security-policy");
            assert!(csp.starts_with("default-src 'none';"), "{path}: {csp}");
            assert!(!csp.contains("script-src"), "no script source at all");
            assert_eq!(reply.header("x-frame-options"), "DENY");
        }
        Ok(())
    }
);

both!(
    admin_creates_users_and_projects_and_sets_service_desk,
    |db| {
        let web = Web::new(db).await?;
        web.user("root", true).await?;
        let alice = web.user("alice", false).await?;
        let session = web.login("root").await?;
        let alice_s = web.login("alice").await?;
        assert_eq!(
            web.get("/admin/users", alice_s.cookie()).await.status,
            StatusCode::FORBIDDEN
        );
        let _ = alice;

        let csrf = session.csrf.as_str();
        let reply = web
            .send(
                Method::POST,
                "/admin/users",
                session.cookie(),
                Some(&[
                    ("csrf", csrf),
                    ("username", "carol"),
                    ("name", "Carol"),
                    ("email", "carol@example.com"),
                    ("password", crate::support::PASSWORD),
                ]),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.contains("carol@example.com"));
        web.login("carol").await?;

        let reply = web
            .send(
                Method::POST,
                "/admin/projects",
                session.cookie(),
                Some(&[
                    ("csrf", csrf),
                    ("namespace", "team"),
                    ("path", "desk"),
                    ("name", "Desk"),
                    ("visibility", "private"),
                ]),
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let location = reply.header("location").to_owned();
        let reply = web
            .send(
                Method::POST,
                &format!("{location}/members"),
                session.cookie(),
                Some(&[("csrf", csrf), ("username", "carol"), ("role", "reporter")]),
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let reply = web
            .send(
                Method::POST,
                &format!("{location}/service_desk"),
                session.cookie(),
                Some(&[("csrf", csrf), ("enabled", "1"), ("project_key", "help")]),
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let page = web.get(&location, session.cookie()).await;
        assert!(page.body.contains("carol"));
        assert!(
            page.body.contains("support+team-desk-help@example.com"),
            "{}",
            page.body
        );
        assert!(page.body.contains("-issue-@example.com"));
        let bad_key = web
            .send(
                Method::POST,
                &format!("{location}/service_desk"),
                session.cookie(),
                Some(&[
                    ("csrf", csrf),
                    ("enabled", "1"),
                    ("project_key", "Not Valid!"),
                ]),
            )
            .await;
        assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);
        Ok(())
    }
);

both!(admin_manages_addresses_and_blocks_users, |db| {
    let web = Web::new(db).await?;
    web.user("root", true).await?;
    let dave = web.user("dave", false).await?;
    let session = web.login("root").await?;
    let csrf = session.csrf.as_str();
    let base = format!("/admin/users/{}", dave.id);
    let post = |path: String, fields: Vec<(&'static str, &'static str)>| {
        let web = &web;
        let cookie = session.cookie.clone();
        async move {
            let mut all = vec![("csrf", csrf)];
            all.extend(fields);
            web.send(Method::POST, &path, Some(&cookie), Some(&all))
                .await
        }
    };
    let added = post(
        format!("{base}/emails"),
        vec![("email", "dave@work.example")],
    )
    .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    let mut tx = web.store().begin().await?;
    assert!(
        tx.user_by_verified_email("dave@work.example")
            .await?
            .is_none()
    );
    tx.rollback().await?;
    let verified = post(
        format!("{base}/emails/verified"),
        vec![("email", "dave@work.example"), ("verified", "1")],
    )
    .await;
    assert_eq!(verified.status, StatusCode::SEE_OTHER);
    let mut tx = web.store().begin().await?;
    assert!(
        tx.user_by_verified_email("dave@work.example")
            .await?
            .is_some()
    );
    tx.rollback().await?;
    let taken = post(
        format!("{base}/emails"),
        vec![("email", "root@example.com")],
    )
    .await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST);
    let primary = post(
        format!("{base}/emails/remove"),
        vec![("email", "dave@example.com")],
    )
    .await;
    assert_eq!(primary.status, StatusCode::BAD_REQUEST);
    let removed = post(
        format!("{base}/emails/remove"),
        vec![("email", "dave@work.example")],
    )
    .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);

    let dave_s = web.login("dave").await?;
    let blocked = post(format!("{base}/state"), vec![("state", "blocked")]).await;
    assert_eq!(blocked.status, StatusCode::SEE_OTHER);
    assert_eq!(
        web.get("/", dave_s.cookie()).await.status,
        StatusCode::SEE_OTHER
    );
    let page = web.get("/admin/users", session.cookie()).await;
    assert!(page.body.contains("Unblock"));
    Ok(())
});

both!(
    merge_request_page_shows_commits_and_the_escaped_diff,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let project = web.project("code", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        let repository = web.processor.repositories().repository(project.id)?;
        let author = postern_git::Identity::new("Alice", "alice@example.com");
        repository.commit_files("main", &[("README", b"hello\n")], "Initial", &author)?;
        let main = repository.head_of("main")?.ok_or("main exists")?;
        repository.reset_branch("feature", Some(&main))?;
        let sha = repository.commit_files(
            "feature",
            &[("page.html", b"<script>alert(1)</script>\n")],
            "Add a page",
            &author,
        )?;
        let mut tx = web.store().begin().await?;
        tx.create_merge_request(postern_store::NewMergeRequest {
            project_id: project.id,
            title: "Add a page".into(),
            description: "Please *review*".into(),
            source_branch: "feature".into(),
            target_branch: "main".into(),
            author_id: alice.id,
            commits: vec![postern_store::Commit {
                sha: sha.clone(),
                title: "Add a page".into(),
                message: "Add a page\n".into(),
                author_name: "Alice".into(),
                author_email: "alice@example.com".into(),
            }],
        })
        .await?;
        tx.commit().await?;
        let session = web.login("alice").await?;
        let page = web
            .get(
                &format!("/projects/{}/merge_requests/1", project.id),
                session.cookie(),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&sha[..12]));
        assert!(page.body.contains("Please <em>review</em>"));
        assert!(
            page.body
                .contains("+&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("<script>"));
        Ok(())
    }
);

both!(uploads_follow_the_issue_or_note_that_links_them, |db| {
    use postern_store::{NewNote, Noteable};
    let web = Web::new(db).await?;
    let maintainer = web.user("maria", false).await?;
    let guest = web.user("gus", false).await?;
    web.user("stranger", false).await?;
    let project = web.project("open", Visibility::Public).await?;
    web.member(&project, &maintainer, Role::Maintainer).await?;
    web.member(&project, &guest, Role::Guest).await?;
    let secrets = [
        "0123456789abcdef0123456789abcdef",
        "1123456789abcdef0123456789abcdef",
        "2123456789abcdef0123456789abcdef",
    ];
    let staging: Vec<(String, &[u8])> = secrets
        .iter()
        .map(|secret| (format!("{secret}/a.png"), b"\x89PNG\r\n".as_slice()))
        .collect();
    let mut staged = web
        .store()
        .stage_uploads(&web.data.path().join("uploads"), &staging)
        .await?;
    let [public_url, confidential_url, internal_url] =
        secrets.map(|secret| format!("/uploads/{secret}/a.png"));
    let mut tx = web.store().begin().await?;
    for secret in secrets {
        tx.create_upload(
            NewUpload {
                project_id: project.id,
                secret: secret.into(),
                filename: "a.png".into(),
                content_type: "image/png".into(),
                size: 6,
                uploaded_by: None,
                relative_path: format!("{secret}/a.png"),
            },
            &mut staged,
        )
        .await?;
    }
    let public = tx
        .create_issue(NewIssue::new(
            project.id,
            maintainer.id,
            "public",
            &format!("![shot]({public_url})"),
        ))
        .await?;
    let mut secret_issue = NewIssue::new(
        project.id,
        maintainer.id,
        "secret",
        &format!("![shot]({confidential_url})"),
    );
    secret_issue.confidential = true;
    tx.create_issue(secret_issue).await?;
    let mut internal = NewNote::new(
        Noteable::Issue(public.id),
        maintainer.id,
        &format!("![shot]({internal_url})"),
    );
    internal.internal = true;
    tx.create_note(internal).await?;
    tx.commit().await?;

    let maria = web.login("maria").await?;
    let gus = web.login("gus").await?;
    let stranger = web.login("stranger").await?;
    // A public issue's image loads for everyone, signed out too.
    for cookie in [None, gus.cookie(), stranger.cookie(), maria.cookie()] {
        assert_eq!(web.get(&public_url, cookie).await.status, StatusCode::OK);
    }
    // The confidential issue's and the internal note's only for those who may read them.
    for url in [&confidential_url, &internal_url] {
        assert_eq!(
            web.get(url, maria.cookie()).await.status,
            StatusCode::OK,
            "{url}"
        );
        let signed_out = web.get(url, None).await;
        assert_ne!(signed_out.status, StatusCode::OK, "{url}");
        assert!(!signed_out.body.contains("PNG"), "{url}");
        for cookie in [gus.cookie(), stranger.cookie()] {
            assert_eq!(
                web.get(url, cookie).await.status,
                StatusCode::NOT_FOUND,
                "{url}"
            );
        }
    }
    Ok(())
});
