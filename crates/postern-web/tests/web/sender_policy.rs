//! A project's sender-authentication policy on the settings page and in the API: set by its
//! maintainers only, read back as stored, and shown with a warning when the instance verifies
//! no senders (these tests' instance policy is `off`).

use axum::http::StatusCode;
use postern_store::{ProjectSenderPolicy, Role, Visibility};
use postern_testkit::both;

use crate::api::{api, token_for};
use crate::support::Web;

both!(
    sender_policy_is_set_by_maintainers_on_the_page_and_in_the_api,
    |db| {
        let web = Web::new(db).await?;
        let maintainer = web.user("maintainer", false).await?;
        let developer = web.user("developer", false).await?;
        let project = web.project("vault", Visibility::Private).await?;
        web.member(&project, &maintainer, Role::Maintainer).await?;
        web.member(&project, &developer, Role::Developer).await?;
        let form = format!("/admin/projects/{}/sender_authentication", project.id);

        let dev = web.login("developer").await?;
        let refused = web.post_form(&form, &dev, &[("policy", "require")]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);

        let session = web.login("maintainer").await?;
        let set = web
            .post_form(&form, &session, &[("policy", "require")])
            .await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.body);
        assert!(
            set.body.contains("<option value=\"require\" selected>"),
            "{}",
            set.body
        );
        assert!(set.body.contains("id=\"sender-authentication-warning\""));
        let mut tx = web.store().begin_read_only().await?;
        let stored = tx.project_by_id(project.id).await?.ok_or("no project")?;
        tx.rollback().await?;
        assert_eq!(stored.sender_policy, Some(ProjectSenderPolicy::Require));

        let path = format!("/projects/{}/sender_authentication", project.id);
        let maintainer_t = token_for(&web, "maintainer").await?;
        let developer_t = token_for(&web, "developer").await?;
        let shown = api(&web, "GET", &path, &maintainer_t, None).await;
        assert_eq!(shown.status, StatusCode::OK);
        let view: serde_json::Value = serde_json::from_str(&shown.body)?;
        assert_eq!(view["project"], "require");
        assert_eq!(view["effective"], "off");
        assert!(view["warning"].is_string(), "{view}");
        let put = |token: &str, body: &'static str| {
            let token = token.to_owned();
            let path = path.clone();
            let web = &web;
            async move { api(web, "PUT", &path, &token, Some(body)).await }
        };
        assert_eq!(
            put(&developer_t, r#"{"policy":"dmarc"}"#).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            put(&maintainer_t, r#"{"policy":"off"}"#).await.status,
            StatusCode::BAD_REQUEST,
            "a project cannot loosen the instance's policy"
        );
        let cleared = put(&maintainer_t, r#"{"policy":"default"}"#).await;
        assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
        let view: serde_json::Value = serde_json::from_str(&cleared.body)?;
        assert!(view["project"].is_null(), "{view}");
        assert!(view["warning"].is_null(), "{view}");
        Ok(())
    }
);
