//! What changed, shown and editable on the issue page (labels, assignees, due date), the system
//! notes every path writes and the mail a browser change sends; and each member's own
//! addresses on the project page.

use axum::http::StatusCode;
use postern_store::{OutboxFilter, Role, Visibility};
use postern_testkit::both;

use crate::support::Web;

both!(fields_are_shown_edited_and_recorded_as_system_notes, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    let bob = web.user("bob", false).await?;
    let guest = web.user("guest", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    web.member(&project, &alice, Role::Reporter).await?;
    web.member(&project, &bob, Role::Developer).await?;
    web.member(&project, &guest, Role::Guest).await?;
    web.issue(&project, &bob, "Bob's bug", "").await?;
    let path = format!("/projects/{}/issues/1", project.id);

    let session = web.login("alice").await?;
    let page = web.get(&path, session.cookie()).await;
    assert!(page.body.contains("id=\"fields-form\""), "{}", page.body);
    assert!(page.body.contains("<dd id=\"assignees\">None</dd>"));
    let reply = web
        .post_form(
            &format!("{path}/fields"),
            &session,
            &[
                ("labels", "bug, needs review"),
                ("assignees", "@bob"),
                ("due_date", "2026-12-01"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = web.get(&path, session.cookie()).await;
    assert!(
        page.body.contains("<dd id=\"assignees\">@bob</dd>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<span class=\"label\" dir=\"auto\">needs review</span>")
    );
    assert!(page.body.contains("<dd id=\"due-date\">2026-12-01</dd>"));
    for note in [
        "added ~bug ~",
        "assigned to @bob",
        "changed due date to December 1, 2026",
    ] {
        assert!(page.body.contains(note), "{note}: {}", page.body);
    }
    assert!(page.body.contains("class=\"note system\""));

    // The same form clears them.
    let reply = web
        .post_form(
            &format!("{path}/fields"),
            &session,
            &[("labels", ""), ("assignees", ""), ("due_date", "")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let page = web.get(&path, session.cookie()).await;
    for note in ["removed ~bug ~", "unassigned @bob", "removed due date"] {
        assert!(page.body.contains(note), "{note}");
    }

    // Refusals are visible, not skipped.
    for (field, value, reason) in [
        ("assignees", "nobody", "No user is called @nobody."),
        ("due_date", "tomorrow", "The due date must be a date"),
    ] {
        let reply = web
            .post_form(&format!("{path}/fields"), &session, &[(field, value)])
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(reply.body.contains(reason), "{}", reply.body);
    }
    let guest_s = web.login("guest").await?;
    let page = web.get(&path, guest_s.cookie()).await;
    assert!(!page.body.contains("id=\"fields-form\""));
    let reply = web
        .post_form(&format!("{path}/fields"), &guest_s, &[("labels", "x")])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    Ok(())
});

both!(
    closing_from_the_browser_notes_it_and_mails_the_author,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let bob = web.user("bob", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        web.member(&project, &bob, Role::Developer).await?;
        web.issue(&project, &bob, "Bob's bug", "").await?;
        let path = format!("/projects/{}/issues/1", project.id);
        let session = web.login("alice").await?;
        let reply = web.post_form(&format!("{path}/close"), &session, &[]).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let page = web.get(&path, session.cookie()).await;
        assert!(page.body.contains("<p>closed</p>"), "{}", page.body);

        let mut tx = web.store().begin().await?;
        let outbox = tx.list_outbox(&OutboxFilter::default()).await?;
        tx.rollback().await?;
        let to_bob: Vec<_> = outbox
            .iter()
            .filter(|m| m.recipients.contains(&"bob@example.com".to_owned()))
            .collect();
        assert_eq!(to_bob.len(), 1, "{outbox:?}");
        assert!(
            !outbox
                .iter()
                .any(|m| m.recipients.contains(&"alice@example.com".to_owned())),
            "the one who closed it is not told"
        );

        // `/estimate` is answered visibly.
        let reply = web
            .post_form(
                &format!("{path}/notes"),
                &session,
                &[("body", "/estimate 2h")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let page = web.get(&path, session.cookie()).await;
        assert!(
            page.body.contains("time tracking is not supported here"),
            "{}",
            page.body
        );
        Ok(())
    }
);

both!(members_see_their_own_addresses_on_the_project_page, |db| {
    let web = Web::new(db).await?;
    let dev = web.user("dev", false).await?;
    let reporter = web.user("rep", false).await?;
    let guest = web.user("guest", false).await?;
    let project = web.project("p", Visibility::Public).await?;
    web.member(&project, &dev, Role::Developer).await?;
    web.member(&project, &reporter, Role::Reporter).await?;
    web.member(&project, &guest, Role::Guest).await?;
    let mut tx = web.store().begin().await?;
    let mut settings = project.service_desk.clone();
    settings.enabled = true;
    tx.update_service_desk(project.id, &settings).await?;
    tx.commit().await?;
    let page_path = format!("/projects/{}", project.id);
    let issue_address = |token: &str| {
        format!(
            "incoming+{}-{}-{token}-issue@example.com",
            project.full_path_slug, project.id
        )
    };
    let desk_address = format!(
        "support+{}-{}-issue-@example.com",
        project.full_path_slug, project.id
    );

    let dev_s = web.login("dev").await?;
    let page = web.get(&page_path, dev_s.cookie()).await;
    assert!(page.body.contains("id=\"my-addresses\""));
    assert!(
        page.body.contains(&format!(
            "value=\"{}\" readonly",
            issue_address(&dev.incoming_email_token)
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!(
        "incoming+{}-{}-{}-merge-request@example.com",
        project.full_path_slug, project.id, dev.incoming_email_token
    )));
    assert!(page.body.contains(&desk_address));

    let rep_s = web.login("rep").await?;
    let page = web.get(&page_path, rep_s.cookie()).await;
    assert!(
        page.body
            .contains(&issue_address(&reporter.incoming_email_token))
    );
    assert!(!page.body.contains("-merge-request@"));
    assert!(page.body.contains(&desk_address));
    // Nobody sees another person's token.
    assert!(!page.body.contains(&dev.incoming_email_token));

    let guest_s = web.login("guest").await?;
    let page = web.get(&page_path, guest_s.cookie()).await;
    assert!(
        page.body
            .contains(&issue_address(&guest.incoming_email_token))
    );
    assert!(!page.body.contains(&desk_address), "reporters and up only");

    let anonymous = web.get(&page_path, None).await;
    assert!(!anonymous.body.contains("id=\"my-addresses\""));
    Ok(())
});
