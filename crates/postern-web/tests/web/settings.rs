//! Project settings on the page and in the API: members and Service Desk for maintainers,
//! owners and administrators only, the owner role for owners only, and the custom email
//! verification mail queued when an address is set or verification is asked again.

use axum::http::StatusCode;
use postern_core::Outcome;
use postern_store::{CustomEmailVerificationState, OutboxFilter, Role, Visibility};
use postern_testkit::both;

use crate::api::{api, token_for};
use crate::support::Web;

both!(
    custom_email_verification_starts_from_the_settings_page,
    |db| {
        let web = Web::new(db).await?;
        let maintainer = web.user("maintainer", false).await?;
        let developer = web.user("developer", false).await?;
        let project = web.project("desk", Visibility::Private).await?;
        web.member(&project, &maintainer, Role::Maintainer).await?;
        web.member(&project, &developer, Role::Developer).await?;
        let settings = format!("/projects/{}/settings", project.id);
        let post_path = format!("/admin/projects/{}/service_desk/custom_email", project.id);

        let dev = web.login("developer").await?;
        assert_eq!(
            web.get(&settings, dev.cookie()).await.status,
            StatusCode::FORBIDDEN
        );
        let refused = web
            .post_form(&post_path, &dev, &[("custom_email", "support@acme.com")])
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);

        let session = web.login("maintainer").await?;
        let project_page = web
            .get(&format!("/projects/{}", project.id), session.cookie())
            .await;
        assert!(project_page.body.contains(&settings));
        let page = web.get(&settings, session.cookie()).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("id=\"verify-custom-email\""));
        let bad = web
            .post_form(
                &post_path,
                &session,
                &[("custom_email", "support+x@acme.com")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let set = web
            .post_form(
                &post_path,
                &session,
                &[("custom_email", "support@acme.com")],
            )
            .await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.body);
        assert!(set.body.contains("verification email is on its way"));
        assert!(set.body.contains("id=\"verify-custom-email\""));

        let mut tx = web.store().begin_read_only().await?;
        let stored = tx.project_by_id(project.id).await?.ok_or("no project")?;
        let outbox = tx.list_outbox(&OutboxFilter::default()).await?;
        let first_raw = match outbox
            .iter()
            .find(|m| m.kind == "custom_email_verification")
        {
            Some(mail) => tx.outbox_raw(mail.id).await?.unwrap_or_default(),
            None => Vec::new(),
        };
        tx.rollback().await?;
        let settings_now = &stored.service_desk;
        assert_eq!(
            settings_now.custom_email_verification_state,
            Some(CustomEmailVerificationState::Started)
        );
        assert_eq!(
            settings_now.custom_email_verification_triggerer_id,
            Some(maintainer.id)
        );
        let token = settings_now
            .custom_email_verification_token
            .clone()
            .ok_or("no token")?;
        let mails: Vec<_> = outbox
            .iter()
            .filter(|m| m.kind == "custom_email_verification")
            .collect();
        assert_eq!(mails.len(), 1, "{outbox:?}");
        assert_eq!(mails[0].recipients, ["support+verify@acme.com"]);
        assert!(String::from_utf8_lossy(&first_raw).contains(&token));
        // The token never reaches a page.
        assert!(!set.body.contains(&token));

        // Enabling before verification is refused.
        let early = web
            .post_form(
                &post_path,
                &session,
                &[
                    ("custom_email", "support@acme.com"),
                    ("custom_email_enabled", "1"),
                ],
            )
            .await;
        assert_eq!(early.status, StatusCode::BAD_REQUEST);

        // Asking again sends a new token.
        let again = web
            .post_form(&format!("{post_path}/verify"), &session, &[])
            .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        assert!(again.body.contains("support+verify@acme.com"));
        let mut tx = web.store().begin_read_only().await?;
        let stored = tx.project_by_id(project.id).await?.ok_or("no project")?;
        let count = tx
            .list_outbox(&OutboxFilter::default())
            .await?
            .iter()
            .filter(|m| m.kind == "custom_email_verification")
            .count();
        tx.rollback().await?;
        assert_eq!(count, 2);
        assert_ne!(
            stored.service_desk.custom_email_verification_token,
            Some(token)
        );
        Ok(())
    }
);

both!(members_follow_gitlabs_owner_rules_on_page_and_api, |db| {
    let web = Web::new(db).await?;
    let owner = web.user("owner", false).await?;
    let maintainer = web.user("maintainer", false).await?;
    let carol = web.user("carol", false).await?;
    let reader = web.user("reader", false).await?;
    web.user("eve", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    web.member(&project, &owner, Role::Owner).await?;
    web.member(&project, &maintainer, Role::Maintainer).await?;
    web.member(&project, &reader, Role::Reporter).await?;
    let base = format!("/projects/{}/members", project.id);
    let maintainer_t = token_for(&web, "maintainer").await?;
    let owner_t = token_for(&web, "owner").await?;
    let reader_t = token_for(&web, "reader").await?;
    let eve_t = token_for(&web, "eve").await?;

    let listed = api(&web, "GET", &base, &reader_t, None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(
        listed.body.contains("\"username\":\"owner\""),
        "{}",
        listed.body
    );
    assert!(listed.body.contains("\"access_level\":50"));
    assert_eq!(
        api(&web, "GET", &base, &eve_t, None).await.status,
        StatusCode::NOT_FOUND
    );
    let by_reader = api(
        &web,
        "POST",
        &base,
        &reader_t,
        Some(r#"{"username":"carol","role":"developer"}"#),
    )
    .await;
    assert_eq!(by_reader.status, StatusCode::FORBIDDEN);

    let added = api(
        &web,
        "POST",
        &base,
        &maintainer_t,
        Some(&format!(r#"{{"user_id":{},"access_level":30}}"#, carol.id)),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert!(added.body.contains("\"role\":\"developer\""));
    let again = api(
        &web,
        "POST",
        &base,
        &maintainer_t,
        Some(r#"{"username":"carol","role":"guest"}"#),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let changed = api(
        &web,
        "PUT",
        &format!("{base}/{}", carol.id),
        &maintainer_t,
        Some(r#"{"role":"maintainer"}"#),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert!(changed.body.contains("\"access_level\":40"));
    // A maintainer cannot make owners or touch them.
    let promote = api(
        &web,
        "PUT",
        &format!("{base}/{}", carol.id),
        &maintainer_t,
        Some(r#"{"role":"owner"}"#),
    )
    .await;
    assert_eq!(promote.status, StatusCode::FORBIDDEN);
    let demote_owner = api(
        &web,
        "DELETE",
        &format!("{base}/{}", owner.id),
        &maintainer_t,
        None,
    )
    .await;
    assert_eq!(demote_owner.status, StatusCode::FORBIDDEN);
    // The owner can, but not leave the project ownerless.
    let last_owner = api(
        &web,
        "PUT",
        &format!("{base}/{}", owner.id),
        &owner_t,
        Some(r#"{"role":"developer"}"#),
    )
    .await;
    assert_eq!(last_owner.status, StatusCode::BAD_REQUEST);
    let promote = api(
        &web,
        "PUT",
        &format!("{base}/{}", carol.id),
        &owner_t,
        Some(r#"{"role":"owner"}"#),
    )
    .await;
    assert_eq!(promote.status, StatusCode::OK);
    let removed = api(
        &web,
        "DELETE",
        &format!("{base}/{}", maintainer.id),
        &owner_t,
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let missing = api(
        &web,
        "DELETE",
        &format!("{base}/{}", maintainer.id),
        &owner_t,
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api(&web, "GET", &base, &maintainer_t, None).await.status,
        StatusCode::NOT_FOUND
    );

    // The page applies the same rules: the reporter may not add anyone.
    let reader_s = web.login("reader").await?;
    let page_add = web
        .post_form(
            &format!("/admin/projects/{}/members", project.id),
            &reader_s,
            &[("username", "eve"), ("role", "guest")],
        )
        .await;
    assert_eq!(page_add.status, StatusCode::FORBIDDEN);
    let owner_s = web.login("owner").await?;
    let page_add = web
        .post_form(
            &format!("/admin/projects/{}/members", project.id),
            &owner_s,
            &[("username", "eve"), ("role", "guest")],
        )
        .await;
    assert_eq!(page_add.status, StatusCode::SEE_OTHER);
    Ok(())
});

both!(service_desk_settings_api_is_for_maintainers, |db| {
    let web = Web::new(db).await?;
    let maintainer = web.user("maintainer", false).await?;
    let developer = web.user("developer", false).await?;
    web.user("root", true).await?;
    let project = web.project("desk", Visibility::Private).await?;
    web.member(&project, &maintainer, Role::Maintainer).await?;
    web.member(&project, &developer, Role::Developer).await?;
    let path = format!("/projects/{}/service_desk", project.id);
    let maintainer_t = token_for(&web, "maintainer").await?;
    let developer_t = token_for(&web, "developer").await?;
    let root_t = token_for(&web, "root").await?;

    assert_eq!(
        api(&web, "GET", &path, &developer_t, None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(
            &web,
            "PUT",
            &path,
            &developer_t,
            Some(r#"{"enabled":true}"#)
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let shown = api(&web, "GET", &path, &maintainer_t, None).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.contains("\"enabled\":false"), "{}", shown.body);

    let updated = api(
        &web,
        "PUT",
        &path,
        &maintainer_t,
        Some(r#"{"enabled":true,"project_key":"help","custom_email":"support@acme.com"}"#),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert!(updated.body.contains("\"enabled\":true"));
    assert!(updated.body.contains("\"project_key\":\"help\""));
    assert!(
        updated.body.contains("\"state\":\"started\""),
        "{}",
        updated.body
    );
    assert!(!updated.body.contains("token"));
    // Absent fields stay; the unverified address cannot be enabled.
    let early = api(
        &web,
        "PUT",
        &path,
        &root_t,
        Some(r#"{"custom_email_enabled":true}"#),
    )
    .await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST);
    let bad_key = api(
        &web,
        "PUT",
        &path,
        &maintainer_t,
        Some(r#"{"project_key":"Not valid"}"#),
    )
    .await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);
    let verify = api(
        &web,
        "POST",
        &format!("{path}/custom_email/verify"),
        &maintainer_t,
        None,
    )
    .await;
    assert_eq!(verify.status, StatusCode::ACCEPTED, "{}", verify.body);
    assert!(verify.body.contains("support+verify@acme.com"));
    let mut tx = web.store().begin_read_only().await?;
    let mails = tx
        .list_outbox(&OutboxFilter::default())
        .await?
        .into_iter()
        .filter(|m| m.kind == "custom_email_verification")
        .count();
    tx.rollback().await?;
    assert_eq!(mails, 2);
    assert_eq!(
        api(
            &web,
            "POST",
            &format!("{path}/custom_email/verify"),
            &developer_t,
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    Ok(())
});

both!(
    verification_mail_coming_back_verifies_and_then_enables,
    |db| {
        let web = Web::new(db).await?;
        let owner = web.user("owner", false).await?;
        let project = web.project("desk", Visibility::Private).await?;
        web.member(&project, &owner, Role::Owner).await?;
        let session = web.login("owner").await?;
        let base = format!("/admin/projects/{}/service_desk", project.id);
        let enabled = web.post_form(&base, &session, &[("enabled", "1")]).await;
        assert_eq!(enabled.status, StatusCode::SEE_OTHER);
        let set = web
            .post_form(
                &format!("{base}/custom_email"),
                &session,
                &[("custom_email", "support@acme.com")],
            )
            .await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.body);

        // The mail provider forwards support+verify@acme.com back to postern, unchanged.
        let mut tx = web.store().begin_read_only().await?;
        let mail = tx
            .list_outbox(&OutboxFilter::default())
            .await?
            .into_iter()
            .find(|m| m.kind == "custom_email_verification")
            .ok_or("no verification mail")?;
        let raw = tx.outbox_raw(mail.id).await?.ok_or("no raw")?;
        tx.rollback().await?;
        let outcome = web.receive(&String::from_utf8(raw)?).await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");

        let page = web
            .get(
                &format!("/projects/{}/settings", project.id),
                session.cookie(),
            )
            .await;
        assert!(page.body.contains("verification finished"), "{}", page.body);
        let enable = web
            .post_form(
                &format!("{base}/custom_email"),
                &session,
                &[
                    ("custom_email", "support@acme.com"),
                    ("custom_email_enabled", "1"),
                ],
            )
            .await;
        assert_eq!(enable.status, StatusCode::OK, "{}", enable.body);
        let mut tx = web.store().begin_read_only().await?;
        let stored = tx.project_by_id(project.id).await?.ok_or("no project")?;
        let results = tx
            .list_outbox(&OutboxFilter::default())
            .await?
            .into_iter()
            .filter(|m| m.kind == "custom_email_verification_result")
            .count();
        tx.rollback().await?;
        assert!(stored.service_desk.custom_email_enabled);
        assert_eq!(results, 1, "the owner hears the result");
        Ok(())
    }
);

both!(a_custom_email_taken_by_another_project_is_refused, |db| {
    let web = Web::new(db).await?;
    let root = web.user("root", true).await?;
    let acme = web.project("web", Visibility::Private).await?;
    let evil = web.project("evil", Visibility::Private).await?;
    web.member(&evil, &root, Role::Owner).await?;
    let root_t = token_for(&web, "root").await?;
    let put = |project: i64, body: &'static str| {
        let path = format!("/projects/{project}/service_desk");
        let (web, token) = (&web, root_t.clone());
        async move { api(web, "PUT", &path, &token, Some(body)).await }
    };
    let taken = put(acme.id, r#"{"custom_email":"support@acme.com"}"#).await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    // Through the API, another spelling of the same address.
    let refused = put(evil.id, r#"{"custom_email":"Support@ACME.com"}"#).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("is already the custom email address of another project"),
        "{}",
        refused.body
    );
    // Through the settings page.
    let session = web.login("root").await?;
    let page = web
        .post_form(
            &format!("/admin/projects/{}/service_desk/custom_email", evil.id),
            &session,
            &[("custom_email", "support@acme.com")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("another project"), "{}", page.body);
    let mut tx = web.store().begin().await?;
    let stored = tx.project_by_id(evil.id).await?.ok_or("project")?;
    tx.commit().await?;
    assert_eq!(stored.service_desk.custom_email, None);
    Ok(())
});

// A refused settings form comes back in the page, as typed, with its reason beside it: an
// unknown user for a new member, the last owner removed, a Service Desk key GitLab refuses.
both!(refused_settings_forms_come_back_as_typed, |db| {
    let web = Web::new(db).await?;
    let owner = web.user("owner", false).await?;
    let project = web.project("desk", Visibility::Private).await?;
    web.member(&project, &owner, Role::Owner).await?;
    let session = web.login("owner").await?;
    let members = format!("/admin/projects/{}/members", project.id);

    let unknown = web
        .post_form(
            &members,
            &session,
            &[("username", "nobody-here"), ("role", "reporter")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.body.contains("id=\"member-error\""),
        "{}",
        unknown.body
    );
    assert!(unknown.body.contains("No such user."));
    assert!(unknown.body.contains("value=\"nobody-here\""));
    assert!(unknown.body.contains("<option selected>reporter</option>"));
    assert!(unknown.body.contains("<h2>Members</h2>"), "the whole page");

    let last_owner = web
        .post_form(&format!("{members}/{}/remove", owner.id), &session, &[])
        .await;
    assert!(last_owner.status.is_client_error(), "{}", last_owner.status);
    assert!(
        last_owner
            .body
            .contains("A project needs at least one owner.")
    );
    assert!(last_owner.body.contains("id=\"member-error\""));

    let bad_key = web
        .post_form(
            &format!("/admin/projects/{}/service_desk", project.id),
            &session,
            &[("enabled", "1"), ("project_key", "Not A Key!")],
        )
        .await;
    assert!(bad_key.status.is_client_error(), "{}", bad_key.status);
    assert!(
        bad_key.body.contains("id=\"service-desk-error\""),
        "{}",
        bad_key.body
    );
    assert!(bad_key.body.contains("value=\"Not A Key!\""));
    Ok(())
});
