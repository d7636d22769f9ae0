//! Sign-in, sessions, CSRF, the first-run setup link and personal access tokens.

use axum::http::{Method, StatusCode};
use postern_store::{Timestamp, UserState};
use postern_testkit::both;

use crate::support::{PASSWORD, Web, set_cookie_pair};

both!(pages_need_sign_in_and_the_api_a_token, |db| {
    let web = Web::new(db).await?;
    for path in [
        "/",
        "/projects/1",
        "/admin/mail",
        "/admin/users",
        "/profile/tokens",
    ] {
        let reply = web.get(path, None).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        let back = if path == "/" {
            "/login".to_owned()
        } else {
            format!("/login?next={path}")
        };
        assert_eq!(reply.header("location"), back, "{path}");
    }
    let reply = web.get("/api/v1/projects", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // A made-up session cookie is no session.
    let reply = web.get("/", Some("postern_session=00ff")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    Ok(())
});

both!(sign_in_sets_a_hardened_cookie_stored_only_hashed, |db| {
    let web = Web::new(db).await?;
    web.user("alice", false).await?;
    let form = web.get("/login", None).await;
    assert_eq!(form.status, StatusCode::OK);
    let login_cookie = set_cookie_pair(&form, "postern_login").unwrap();
    let reply = web
        .send(
            Method::POST,
            "/login",
            Some(&login_cookie),
            Some(&[
                ("csrf", &form.csrf()),
                ("username", "ALICE"),
                ("password", PASSWORD),
            ]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), "/");
    let set_cookie = reply.header("set-cookie").to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"));
    assert!(set_cookie.contains("Path=/"));
    let cookie = set_cookie_pair(&reply, "postern_session").unwrap();
    let id = cookie.trim_start_matches("postern_session=");
    // The database knows the session only by its hash.
    let mut tx = web.store().begin().await?;
    assert_eq!(tx.session(id, Timestamp::now()).await?, None);
    tx.rollback().await?;
    let home = web.get("/", Some(&cookie)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Sign out alice"));
    Ok(())
});

both!(
    wrong_password_unknown_user_and_blocked_user_are_refused,
    |db| {
        let web = Web::new(db).await?;
        let bob = web.user("bob", false).await?;
        let form = web.get("/login", None).await;
        let login_cookie = set_cookie_pair(&form, "postern_login").unwrap();
        let csrf = form.csrf();
        for (user, password) in [("bob", "wrong password"), ("nobody", PASSWORD)] {
            let reply = web
                .send(
                    Method::POST,
                    "/login",
                    Some(&login_cookie),
                    Some(&[("csrf", &csrf), ("username", user), ("password", password)]),
                )
                .await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{user}");
            assert!(reply.body.contains("Invalid username or password."));
            assert!(set_cookie_pair(&reply, "postern_session").is_none());
        }
        let session = web.login("bob").await?;
        let mut tx = web.store().begin().await?;
        tx.set_user_state(bob.id, UserState::Blocked).await?;
        tx.commit().await?;
        // A blocked user's session stops working, and they cannot sign in again.
        assert_eq!(
            web.get("/", session.cookie()).await.status,
            StatusCode::SEE_OTHER
        );
        assert!(web.login("bob").await.is_err());
        Ok(())
    }
);

both!(sign_in_form_needs_its_own_csrf_cookie, |db| {
    let web = Web::new(db).await?;
    web.user("alice", false).await?;
    let form = web.get("/login", None).await;
    let fields = [
        ("csrf", form.csrf()),
        ("username", "alice".into()),
        ("password", PASSWORD.into()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Without the cookie (a cross-site form) the sign-in is refused.
    let reply = web.send(Method::POST, "/login", None, Some(&fields)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = web
        .send(
            Method::POST,
            "/login",
            Some("postern_login=other"),
            Some(&fields),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    Ok(())
});

both!(forms_without_the_session_csrf_token_are_refused, |db| {
    let web = Web::new(db).await?;
    web.user("root", true).await?;
    let session = web.login("root").await?;
    for path in [
        "/logout",
        "/admin/projects",
        "/admin/users",
        "/profile/tokens",
    ] {
        for csrf in ["", "0000"] {
            let reply = web
                .send(
                    Method::POST,
                    path,
                    session.cookie(),
                    Some(&[("csrf", csrf), ("name", "x")]),
                )
                .await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} {csrf:?}");
        }
    }
    // Still signed in: the refused logout did nothing.
    assert_eq!(web.get("/", session.cookie()).await.status, StatusCode::OK);
    Ok(())
});

both!(logout_ends_the_session, |db| {
    let web = Web::new(db).await?;
    web.user("alice", false).await?;
    let session = web.login("alice").await?;
    let reply = web.post_form("/logout", &session, &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(
        web.get("/", session.cookie()).await.status,
        StatusCode::SEE_OTHER
    );
    Ok(())
});

both!(setup_link_creates_the_first_admin_once, |db| {
    let web = Web::new(db).await?;
    let link = postern_web::setup_link(&web.state)
        .await?
        .expect("no admin yet");
    assert_eq!(format!("{link:?}"), "SetupLink([redacted])");
    let url = link.expose();
    let token = url
        .strip_prefix("http://127.0.0.1:8080/setup?token=")
        .expect("link shape");
    assert_eq!(
        web.get("/setup?token=wrong", None).await.status,
        StatusCode::NOT_FOUND
    );
    let form = web.get(&format!("/setup?token={token}"), None).await;
    assert_eq!(form.status, StatusCode::OK);

    let fields = |password: &'static str| {
        vec![
            ("token", token.to_owned()),
            ("username", "root".to_owned()),
            ("name", "Root".to_owned()),
            ("email", "root@example.com".to_owned()),
            ("password", password.to_owned()),
        ]
    };
    let short = fields("short");
    let short: Vec<(&str, &str)> = short.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = web.send(Method::POST, "/setup", None, Some(&short)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let good = fields(PASSWORD);
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = web.send(Method::POST, "/setup", None, Some(&good)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let cookie = set_cookie_pair(&reply, "postern_session").unwrap();
    let home = web.get("/", Some(&cookie)).await;
    assert!(home.body.contains("Mail desk"), "the new user is an admin");
    // Used once: the token and any new link are gone.
    let reply = web.send(Method::POST, "/setup", None, Some(&good)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(postern_web::setup_link(&web.state).await?.is_none());
    web.login("root").await?;
    Ok(())
});

both!(access_tokens_are_shown_once_work_and_can_be_revoked, |db| {
    let web = Web::new(db).await?;
    web.user("alice", false).await?;
    let session = web.login("alice").await?;
    let reply = web
        .post_form("/profile/tokens", &session, &[("name", "laptop")])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let start =
        reply.body.find("<code id=\"new-token\">").unwrap() + "<code id=\"new-token\">".len();
    let token = reply.body[start..start + 69].to_owned();
    assert!(token.starts_with("pstn-"), "{token}");
    let listing = web.get("/profile/tokens", session.cookie()).await;
    assert!(listing.body.contains("laptop"));
    assert!(!listing.body.contains(&token), "shown only once");

    let api = |token: String| {
        axum::http::Request::get("/api/v1/user")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let me = web.call(api(token.clone())).await;
    assert_eq!(me.status, StatusCode::OK);
    assert!(me.body.contains("\"username\":\"alice\""));

    let mut tx = web.store().begin().await?;
    let alice = tx.user_by_username("alice").await?.unwrap();
    let id = tx.list_api_tokens(alice.id).await?[0].id;
    tx.rollback().await?;
    let reply = web
        .post_form(&format!("/profile/tokens/{id}/revoke"), &session, &[])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(web.call(api(token)).await.status, StatusCode::UNAUTHORIZED);
    Ok(())
});
