//! The JSON API: token auth, read rules, comments through the core action, admin-only routes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use postern_store::{Role, Visibility};
use postern_testkit::{BoxError, both};

use crate::support::{Reply, Web};

pub async fn token_for(web: &Web, username: &str) -> Result<String, BoxError> {
    let token = format!("pstn-test-{username}");
    let hash = {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let mut tx = web.store().begin().await?;
    let user = tx.user_by_username(username).await?.ok_or("no user")?;
    tx.create_api_token(user.id, "test", &hash, None).await?;
    tx.commit().await?;
    Ok(token)
}

pub async fn api(web: &Web, method: &str, path: &str, token: &str, json: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("/api/v1{path}"))
        .header("private-token", token);
    if json.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = json.map_or_else(Body::empty, |j| Body::from(j.to_owned()));
    web.call(request.body(body).unwrap()).await
}

both!(api_follows_the_read_rules, |db| {
    let web = Web::new(db).await?;
    let alice = web.user("alice", false).await?;
    web.user("eve", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    web.member(&project, &alice, Role::Developer).await?;
    web.issue(&project, &alice, "API bug", "").await?;
    let alice_t = token_for(&web, "alice").await?;
    let eve_t = token_for(&web, "eve").await?;

    let projects = api(&web, "GET", "/projects", &alice_t, None).await;
    assert_eq!(projects.status, StatusCode::OK);
    assert!(projects.body.contains("\"full_path\":\"group/p\""));
    assert_eq!(api(&web, "GET", "/projects", &eve_t, None).await.body, "[]");
    let id = project.id;
    for path in [
        format!("/projects/{id}"),
        format!("/projects/{id}/issues"),
        format!("/projects/{id}/issues/1"),
    ] {
        assert_eq!(
            api(&web, "GET", &path, &eve_t, None).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(
            api(&web, "GET", &path, &alice_t, None).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    let issues = api(
        &web,
        "GET",
        &format!("/projects/{id}/issues"),
        &alice_t,
        None,
    )
    .await;
    assert!(issues.body.contains("API bug"));
    let refused = api(&web, "GET", "/projects", "pstn-wrong", None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body, r#"{"message":"Unauthorized"}"#);
    let missing = api(&web, "GET", &format!("/projects/{id}"), &eve_t, None).await;
    assert_eq!(missing.body, r#"{"message":"Not found"}"#);
    Ok(())
});

both!(
    api_comments_and_opens_issues_through_the_core_actions,
    |db| {
        let web = Web::new(db).await?;
        let alice = web.user("alice", false).await?;
        let project = web.project("p", Visibility::Private).await?;
        web.member(&project, &alice, Role::Developer).await?;
        let token = token_for(&web, "alice").await?;
        let id = project.id;
        let created = api(
            &web,
            "POST",
            &format!("/projects/{id}/issues"),
            &token,
            Some(r#"{"title":"Via API","description":"body"}"#),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        assert!(created.body.contains("\"iid\":1"));
        let note = api(
            &web,
            "POST",
            &format!("/projects/{id}/issues/1/notes"),
            &token,
            Some(r#"{"body":"A comment"}"#),
        )
        .await;
        assert_eq!(note.status, StatusCode::CREATED, "{}", note.body);
        let close = api(
            &web,
            "POST",
            &format!("/projects/{id}/issues/1/notes"),
            &token,
            Some(r#"{"body":"/close"}"#),
        )
        .await;
        assert!(close.body.contains("quick_actions_only"));
        let issue = api(
            &web,
            "GET",
            &format!("/projects/{id}/issues/1"),
            &token,
            None,
        )
        .await;
        assert!(
            issue.body.contains("\"state\":\"closed\""),
            "{}",
            issue.body
        );
        let notes = api(
            &web,
            "GET",
            &format!("/projects/{id}/issues/1/notes"),
            &token,
            None,
        )
        .await;
        assert!(notes.body.contains("A comment"));
        Ok(())
    }
);

both!(api_mail_desk_routes_are_admin_only, |db| {
    let web = Web::new(db).await?;
    let root = web.user("root", true).await?;
    web.user("alice", false).await?;
    let project = web.project("p", Visibility::Private).await?;
    let outcome = web
        .receive(&web.new_issue_mail(&project, &root, "desk", "x"))
        .await?;
    let root_t = token_for(&web, "root").await?;
    let alice_t = token_for(&web, "alice").await?;
    let created = api(
        &web,
        "POST",
        "/projects",
        &root_t,
        Some(r#"{"namespace":"team","path":"new","visibility":"internal"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(created.body.contains("\"full_path\":\"team/new\""));
    let refused = api(&web, "POST", "/projects", &alice_t, Some(r#"{"path":"x"}"#)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let bad = api(
        &web,
        "POST",
        "/projects",
        &root_t,
        Some(r#"{"path":"../x"}"#),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    for path in ["/inbound", "/outbox", "/users"] {
        assert_eq!(
            api(&web, "GET", path, &alice_t, None).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            api(&web, "GET", path, &root_t, None).await.status,
            StatusCode::OK
        );
    }
    let inbound = api(
        &web,
        "GET",
        "/inbound?state=processed&limit=5",
        &root_t,
        None,
    )
    .await;
    let list: serde_json::Value = serde_json::from_str(&inbound.body)?;
    assert_eq!(list[0]["id"], outcome.inbound_id);
    assert!(list[0].get("raw").is_none());
    let path = format!("/inbound/{}/reprocess", outcome.inbound_id);
    assert_eq!(
        api(&web, "POST", &path, &alice_t, None).await.status,
        StatusCode::FORBIDDEN
    );
    let again = api(&web, "POST", &path, &root_t, None).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(
        again.body.contains("\"outcome\":\"duplicate\""),
        "{}",
        again.body
    );
    Ok(())
});
