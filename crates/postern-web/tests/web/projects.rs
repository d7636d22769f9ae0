//! Creating projects on the administration page and through the API, with the rules
//! `postern admin project add` has too (they are postern-core's `projects::create`): a path
//! GitLab would accept, the project's git repository, its creator as owner, the default branch
//! protected; and the Support Bot refused as a member on both.

use axum::http::{Method, StatusCode};
use postern_store::{Project, Role};
use postern_testkit::{BoxError, both};

use crate::api::{api, token_for};
use crate::support::Web;

/// What every new project must be: its creator the only member, as owner; `main` its
/// protected default branch; a bare git repository of its own.
async fn assert_created_whole(web: &Web, id: i64, creator: &str) -> Result<Project, BoxError> {
    let mut tx = web.store().begin_read_only().await?;
    let project = tx.project_by_id(id).await?.ok_or("no project")?;
    let members = tx.list_members(id).await?;
    let protected = tx.protected_branches(id).await?;
    tx.rollback().await?;
    let members: Vec<(&str, Role)> = members
        .iter()
        .map(|m| (m.username.as_str(), m.role))
        .collect();
    assert_eq!(members, [(creator, Role::Owner)], "{}", project.full_path);
    assert_eq!(project.default_branch, "main");
    assert_eq!(protected, ["main"]);
    let head = web
        .data
        .path()
        .join("repositories")
        .join(format!("{id}.git"))
        .join("HEAD");
    let head = std::fs::read_to_string(&head)
        .map_err(|e| format!("{}: no repository ({e})", project.full_path))?;
    assert!(head.starts_with("ref: refs/heads/"), "{head}");
    Ok(project)
}

/// The repositories that exist, by directory name.
fn repositories(web: &Web) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(web.data.path().join("repositories"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

both!(
    projects_created_on_the_page_and_through_the_api_are_whole,
    |db| {
        let web = Web::new(db).await?;
        web.user("root", true).await?;
        web.user("alice", false).await?;
        let session = web.login("root").await?;
        let root_t = token_for(&web, "root").await?;
        let alice_t = token_for(&web, "alice").await?;
        let page = |namespace: &'static str, path: &'static str| {
            let (web, session) = (&web, &session);
            async move {
                web.send(
                    Method::POST,
                    "/admin/projects",
                    session.cookie(),
                    Some(&[
                        ("csrf", session.csrf.as_str()),
                        ("namespace", namespace),
                        ("path", path),
                        ("name", ""),
                        ("visibility", ""),
                    ]),
                )
                .await
            }
        };

        let created = page("team", "desk").await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let id: i64 = created
            .header("location")
            .rsplit('/')
            .next()
            .ok_or("no location")?
            .parse()?;
        let on_page = assert_created_whole(&web, id, "root").await?;
        assert_eq!(on_page.full_path, "team/desk");
        assert_eq!(on_page.name, "desk");

        let reply = api(
            &web,
            "POST",
            "/projects",
            &root_t,
            Some(r#"{"namespace":"team/sub","path":"api"}"#),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let body: serde_json::Value = serde_json::from_str(&reply.body)?;
        let id = body["id"].as_i64().ok_or("no id")?;
        let through_api = assert_created_whole(&web, id, "root").await?;
        assert_eq!(through_api.full_path, "team/sub/api");

        // The same path rule on both; nothing is created on a refusal.
        for (namespace, path) in [("", "desk"), ("team", ".hidden"), ("team", "a/b")] {
            let refused = page(namespace, path).await;
            assert_eq!(
                refused.status,
                StatusCode::BAD_REQUEST,
                "{namespace}/{path}"
            );
        }
        for body in [
            r#"{"namespace":"team","path":"desk.git"}"#,
            r#"{"path":"alone"}"#,
            r#"{"namespace":"te am","path":"x"}"#,
        ] {
            let refused = api(&web, "POST", "/projects", &root_t, Some(body)).await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                refused.body.contains("namespace/project"),
                "{}",
                refused.body
            );
        }
        let taken = page("TEAM", "Desk").await;
        assert_eq!(taken.status, StatusCode::BAD_REQUEST);
        assert!(taken.body.contains("exists"), "{}", taken.body);
        let forbidden = api(
            &web,
            "POST",
            "/projects",
            &alice_t,
            Some(r#"{"namespace":"team","path":"mine"}"#),
        )
        .await;
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

        let mut tx = web.store().begin_read_only().await?;
        let all = tx.list_projects().await?;
        tx.rollback().await?;
        let paths: Vec<&str> = all.iter().map(|p| p.full_path.as_str()).collect();
        assert_eq!(paths, ["team/desk", "team/sub/api"]);
        assert_eq!(
            repositories(&web),
            [
                format!("{}.git", on_page.id),
                format!("{}.git", through_api.id)
            ]
        );
        Ok(())
    }
);

both!(
    the_support_bot_is_no_member_on_the_page_or_through_the_api,
    |db| {
        let web = Web::new(db).await?;
        let owner = web.user("owner", false).await?;
        let project = web
            .project("desk", postern_store::Visibility::Private)
            .await?;
        web.member(&project, &owner, Role::Owner).await?;
        let mut tx = web.store().begin().await?;
        let bot = tx.ensure_support_bot().await?;
        tx.commit().await?;
        let token = token_for(&web, "owner").await?;
        let body = format!(r#"{{"user_id":{},"role":"reporter"}}"#, bot.id);
        let path = format!("/projects/{}/members", project.id);
        let refused = api(&web, "POST", &path, &token, Some(&body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(refused.body.contains("Support Bot"), "{}", refused.body);
        let session = web.login("owner").await?;
        let refused = web
            .send(
                Method::POST,
                &format!("/admin/projects/{}/members", project.id),
                session.cookie(),
                Some(&[
                    ("csrf", session.csrf.as_str()),
                    ("username", "support-bot"),
                    ("role", "owner"),
                ]),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        let mut tx = web.store().begin_read_only().await?;
        let members = tx.list_members(project.id).await?;
        tx.rollback().await?;
        assert_eq!(members.len(), 1, "only the owner: {members:?}");
        Ok(())
    }
);
