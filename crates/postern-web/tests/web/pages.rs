//! Errors inside the page (layout, 404 for addresses that do not parse, the comment form's own
//! words, the new issue form kept with its errors) and signing in back to the page asked for.

use axum::http::{Method, StatusCode};
use postern_store::{Role, Visibility};
use postern_testkit::both;

use crate::support::{PASSWORD, Reply, Web, set_cookie_pair};

/// Whether `reply` is a page of the layout (header, menu) rather than bare text.
fn in_layout(reply: &Reply) -> bool {
    reply.header("content-type").starts_with("text/html")
        && reply.body.contains("<header>")
        && reply.body.contains("href=\"/static/style.css\"")
}

both!(
    errors_are_pages_of_the_layout_and_bad_addresses_are_404,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let guest = web.user("guest", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        web.member(&project, &guest, Role::Guest).await?;
        web.issue(&project, &alice, "Bug", "").await?;
        let session = web.login("alice").await?;

        for path in [
            "/projects/abc".to_owned(),
            format!("/projects/{}/issues/abc", project.id),
            format!("/projects/{}/issues/99999999999999999999", project.id),
            "/projects/999".to_owned(),
            format!("/projects/{}/merge_requests/x", project.id),
        ] {
            let reply = web.get(&path, session.cookie()).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert!(in_layout(&reply), "{path}: {}", reply.body);
            assert!(reply.body.contains("Page not found"), "{path}");
            assert!(!reply.body.contains("Cannot parse"), "{path}");
            // The signed-in person keeps their menu.
            assert!(reply.body.contains("Sign out alice"), "{path}");
        }

        let guest_s = web.login("guest").await?;
        let reply = web
            .post_form(
                &format!("/projects/{}/issues/1/close", project.id),
                &guest_s,
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(in_layout(&reply), "{}", reply.body);
        assert!(reply.body.contains("Not allowed"));

        // The admin's mail desk too: a message id that does not parse is a page not found.
        let root = web.user("root", true).await?;
        let admin = web.login(&root.username).await?;
        for path in [
            "/admin/mail/messages/abc",
            "/admin/mail/messages/abc/raw",
            "/admin/mail/outbox/x1",
        ] {
            let reply = web.get(path, admin.cookie()).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert!(in_layout(&reply), "{path}: {}", reply.body);
            assert!(!reply.body.contains("Cannot parse"), "{path}");
        }

        // The API keeps its JSON.
        let api = web.get("/api/v1/projects", None).await;
        assert_eq!(api.status, StatusCode::UNAUTHORIZED);
        assert!(api.body.starts_with('{'), "{}", api.body);
        Ok(())
    }
);

both!(an_empty_comment_is_refused_in_the_words_of_the_page, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    web.member(&project, &alice, Role::Developer).await?;
    web.issue(&project, &alice, "Bug", "").await?;
    let session = web.login("alice").await?;
    let reply = web
        .post_form(
            &format!("/projects/{}/issues/1/notes", project.id),
            &session,
            &[("body", " \n ")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(in_layout(&reply), "{}", reply.body);
    assert!(
        reply.body.contains("The comment is empty."),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains("email is blank"), "{}", reply.body);
    Ok(())
});

both!(
    a_refused_new_issue_comes_back_with_its_text_and_the_reason,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        let session = web.login("alice").await?;
        let form = web
            .get(
                &format!("/projects/{}/issues/new", project.id),
                session.cookie(),
            )
            .await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("id=\"new-title\""));
        assert!(form.body.contains("maxlength=\"255\""));

        let long = "t".repeat(256);
        for (title, reason) in [
            ("   ", "Title can&#x27;t be blank"),
            (
                long.as_str(),
                "Title is too long (maximum is 255 characters)",
            ),
        ] {
            let reply = web
                .post_form(
                    &format!("/projects/{}/issues", project.id),
                    &session,
                    &[("title", title), ("description", "My <b>long</b> text")],
                )
                .await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(in_layout(&reply));
            assert!(reply.body.contains(reason), "{}", reply.body);
            assert!(reply.body.contains("id=\"title-errors\""));
            // What was typed is still there, escaped.
            assert!(
                reply.body.contains("My &lt;b&gt;long&lt;&#x2f;b&gt; text"),
                "{}",
                reply.body
            );
            assert!(reply.body.contains(&format!("value=\"{}\"", title)));
        }
        // Outsiders get no form.
        web.user("eve", false).await?;
        let eve = web.login("eve").await?;
        let reply = web
            .get(
                &format!("/projects/{}/issues/new", project.id),
                eve.cookie(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        Ok(())
    }
);

/// Signs in through the form of `login_page` (which may carry `next`) with `login`; the reply.
async fn sign_in_from(web: &Web, login_page: &str, login: &str, next: Option<&str>) -> Reply {
    let form = web.get(login_page, None).await;
    let login_cookie = set_cookie_pair(&form, "postern_login").unwrap();
    let mut fields = vec![
        ("csrf", form.csrf()),
        ("username", login.to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    if let Some(next) = next {
        fields.push(("next", next.to_owned()));
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    web.send(Method::POST, "/login", Some(&login_cookie), Some(&fields))
        .await
}

both!(
    sign_in_returns_to_the_page_asked_for_and_nowhere_else,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        let wanted = format!("/projects/{}?state=opened", project.id);

        let reply = web.get(&wanted, None).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        let login_page = reply.header("location").to_owned();
        assert_eq!(
            login_page,
            format!("/login?next=/projects/{}%3Fstate%3Dopened", project.id)
        );
        let form = web.get(&login_page, None).await;
        assert!(
            form.body.contains(&format!(
                "name=\"next\" value=\"&#x2f;projects&#x2f;{}?state=opened\"",
                project.id
            )),
            "{}",
            form.body
        );
        let reply = sign_in_from(&web, &login_page, "alice", Some(&wanted)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(reply.header("location"), wanted);

        // Other sites, however spelled, are not returned to: home instead.
        for next in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "/%2F/evil.example",
            "javascript:alert(1)",
            " /projects",
            "/login",
            "",
        ] {
            let reply = sign_in_from(&web, "/login", "alice", Some(next)).await;
            assert_eq!(reply.status, StatusCode::SEE_OTHER, "{next:?}");
            let location = reply.header("location");
            assert!(
                location == "/" || (next == "/%2F/evil.example" && location == next),
                "{next:?} → {location}"
            );
            if next != "/%2F/evil.example" {
                let query = crate::support::urlencode(&[("next", next)]);
                let form = web.get(&format!("/login?{query}"), None).await;
                assert!(!form.body.contains("evil"), "{next:?}");
            }
        }
        Ok(())
    }
);

both!(sign_in_takes_a_username_or_a_verified_email, |db| {
    let web = Web::new(db).await?;
    web.user("alice", false).await?;
    let reply = sign_in_from(&web, "/login", "alice@example.com", None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.header("location"), "/");
    assert!(set_cookie_pair(&reply, "postern_session").is_some());
    let reply = sign_in_from(&web, "/login", "nobody@example.com", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let form = web.get("/login", None).await;
    assert!(form.body.contains("Username or email"));
    assert!(form.body.contains("autocomplete=\"current-password\""));
    Ok(())
});

both!(refused_admin_forms_come_back_as_typed, |db| {
    let web = Web::new(db).await?;
    web.user("root", true).await?;
    web.user("alice", false).await?;
    let root = web.login("root").await?;

    let reply = web
        .post_form(
            "/admin/projects",
            &root,
            &[
                ("namespace", ""),
                ("path", "my-desk"),
                ("name", "My desk"),
                ("visibility", "internal"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(in_layout(&reply));
    assert!(reply.body.contains("id=\"form-error\""), "{}", reply.body);
    assert!(reply.body.contains("value=\"my-desk\""));
    assert!(reply.body.contains("value=\"My desk\""));
    assert!(reply.body.contains("<option selected>internal</option>"));

    let reply = web
        .post_form(
            "/admin/users",
            &root,
            &[
                ("username", "alice"),
                ("name", "Another Alice"),
                ("email", "other@example.com"),
                ("password", "a secret password"),
            ],
        )
        .await;
    assert!(reply.status.is_client_error(), "{}", reply.status);
    assert!(in_layout(&reply));
    assert!(reply.body.contains("id=\"form-error\""), "{}", reply.body);
    assert!(reply.body.contains("value=\"Another Alice\""));
    assert!(reply.body.contains("value=\"other@example.com\""));
    assert!(!reply.body.contains("a secret password"), "never echoed");
    Ok(())
});
