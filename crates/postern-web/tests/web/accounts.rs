//! The profile page (addresses, password, incoming-email token) and the password link for an
//! account created without a password.

use axum::http::{Method, StatusCode};
use postern_store::NewUser;
use postern_testkit::both;

use crate::support::{PASSWORD, Web, set_cookie_pair};

both!(
    the_profile_changes_the_password_and_resets_the_token,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let session = web.login("alice").await?;
        let page = web.get("/profile", session.cookie()).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains("alice@example.com (primary)"),
            "{}",
            page.body
        );
        assert!(page.body.contains(&alice.incoming_email_token));

        let change = |current: &'static str, new: &'static str, again: &'static str| {
            let session = &session;
            let web = &web;
            async move {
                web.post_form(
                    "/profile/password",
                    session,
                    &[
                        ("current_password", current),
                        ("password", new),
                        ("password_confirmation", again),
                    ],
                )
                .await
            }
        };
        let wrong = change("not it at all", "a new password", "a new password").await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(wrong.body.contains("The current password is not right."));
        let differ = change(PASSWORD, "a new password", "another one").await;
        assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(differ.body.contains("differ"));
        let short = change(PASSWORD, "short", "short").await;
        assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(short.body.contains("at least 8 characters"));
        let done = change(PASSWORD, "a new password", "a new password").await;
        assert_eq!(done.status, StatusCode::OK);
        assert!(done.body.contains("Your password was changed."));
        assert!(
            web.login("alice").await.is_err(),
            "the old password is gone"
        );

        let reset = web
            .post_form("/profile/incoming_email_token", &session, &[])
            .await;
        assert_eq!(reset.status, StatusCode::OK);
        assert!(reset.body.contains("token was reset"));
        assert!(!reset.body.contains(&alice.incoming_email_token));
        let mut tx = web.store().begin().await?;
        let found = tx
            .user_by_incoming_token(&alice.incoming_email_token)
            .await?;
        tx.rollback().await?;
        assert!(found.is_none(), "the old token no longer acts");
        Ok(())
    }
);

both!(a_password_link_lets_a_new_user_in_once, |db| {
    let web = Web::new(db).await?;
    web.user("root", true).await?;
    web.user("alice", false).await?;
    let mut tx = web.store().begin().await?;
    let finn = tx
        .create_user(NewUser::new("finn", "Finn", "finn@example.com"))
        .await?;
    tx.commit().await?;

    let alice = web.login("alice").await?;
    let path = format!("/admin/users/{}/password_link", finn.id);
    let refused = web.post_form(&path, &alice, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let root = web.login("root").await?;
    let users = web.get("/admin/users", root.cookie()).await;
    assert!(
        users
            .body
            .contains(&format!("id=\"password-link-{}\"", finn.id))
    );
    let made = web.post_form(&path, &root, &[]).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let marker = "id=\"password-link\" class=\"address\" value=\"";
    let start = made.body.find(marker).ok_or("no link")? + marker.len();
    let end = made.body[start..].find('"').ok_or("no end")? + start;
    // The page escapes `&` and `/`; the link's path and query are what a browser follows.
    let link = made.body[start..end]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    let local = link
        .strip_prefix("http://127.0.0.1:8080")
        .ok_or("link on the base URL")?
        .to_owned();
    assert!(local.starts_with("/password/set?user="), "{local}");

    let form = web.get(&local, None).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("Choose your password, @finn"));
    let token = local.rsplit("token=").next().unwrap_or_default().to_owned();
    let user = finn.id.to_string();
    let short = web
        .send(
            Method::POST,
            "/password/set",
            None,
            Some(&[("user", &user), ("token", &token), ("password", "short")]),
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    let chosen = web
        .send(
            Method::POST,
            "/password/set",
            None,
            Some(&[("user", &user), ("token", &token), ("password", PASSWORD)]),
        )
        .await;
    assert_eq!(chosen.status, StatusCode::SEE_OTHER, "{}", chosen.body);
    assert_eq!(chosen.header("location"), "/profile");
    assert!(set_cookie_pair(&chosen, "postern_session").is_some());
    web.login("finn").await?;

    // Spent: the link works once; a wrong token never.
    assert_eq!(web.get(&local, None).await.status, StatusCode::NOT_FOUND);
    let wrong = format!("/password/set?user={}&token=00ff", finn.id);
    assert_eq!(web.get(&wrong, None).await.status, StatusCode::NOT_FOUND);
    Ok(())
});

both!(notification_levels_are_chosen_on_the_profile, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    let project = web.project("p", postern_store::Visibility::Private).await?;
    let other = web.project("q", postern_store::Visibility::Private).await?;
    web.member(&project, &alice, postern_store::Role::Developer)
        .await?;
    let session = web.login("alice").await?;
    let page = web.get("/profile", session.cookie()).await;
    assert!(
        page.body
            .contains(&format!("name=\"project_{}\"", project.id))
    );
    assert!(
        !page
            .body
            .contains(&format!("name=\"project_{}\"", other.id))
    );

    let field = format!("project_{}", project.id);
    let saved = web
        .post_form(
            "/profile/notifications",
            &session,
            &[("global", "watch"), (&field, "disabled")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(saved.body.contains("<option selected>watch</option>"));
    assert!(saved.body.contains("<option selected>disabled</option>"));

    for (name, value, status) in [
        ("global", "loud", StatusCode::BAD_REQUEST),
        ("global", "global", StatusCode::BAD_REQUEST),
        (
            format!("project_{}", other.id).as_str(),
            "watch",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let reply = web
            .post_form("/profile/notifications", &session, &[(name, value)])
            .await;
        assert_eq!(reply.status, status, "{name}={value}");
    }
    Ok(())
});
