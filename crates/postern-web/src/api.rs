//! The JSON API under `/api/v1`, authenticated by personal access token
//! (`Authorization: Bearer pstn-…` or `PRIVATE-TOKEN: pstn-…`), with the same rules as the pages.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use postern_core::actions;
use postern_core::projects::ProjectRequest;
use postern_store::{Noteable, OutboxFilter, Visibility};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::desk::LogQuery;
use crate::error::ApiError;
use crate::issue_list::ListParams;
use crate::session::{ApiAdmin, ApiUser};
use crate::{WebError, WebState};
use crate::{access, project_settings};

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/user", get(user))
        .route("/users", get(users))
        .route("/projects", get(projects).post(create_project))
        .route("/projects/{id}", get(project))
        .route("/projects/{id}/issues", get(issues).post(create_issue))
        .route("/projects/{id}/issues/{iid}", get(issue))
        .route(
            "/projects/{id}/issues/{iid}/notes",
            get(issue_notes).post(create_note),
        )
        .route("/projects/{id}/merge_requests", get(merge_requests))
        .route("/inbound", get(inbound))
        .route("/inbound/{id}/reprocess", post(reprocess))
        .route("/outbox", get(outbox))
}

async fn user(ApiUser(user): ApiUser) -> Json<Value> {
    Json(json!({
        "id": user.id, "username": user.username, "name": user.name,
        "admin": user.admin, "state": user.state, "emails": user.emails,
    }))
}

async fn projects(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
) -> Result<Response, ApiError> {
    let projects: Vec<_> = state
        .read(async |tx| access::projects(tx, Some(&user)).await)
        .await?
        .into_iter()
        .map(|v| v.project)
        .collect();
    Ok(Json(projects).into_response())
}

async fn users(ApiAdmin(_): ApiAdmin, State(state): State<WebState>) -> Result<Response, ApiError> {
    let users: Vec<_> = state
        .read(async |tx| Ok(tx.list_users().await?))
        .await?
        .into_iter()
        .map(|u| {
            json!({
                "id": u.id, "username": u.username, "name": u.name, "state": u.state,
                "admin": u.admin, "kind": u.kind, "emails": u.emails,
            })
        })
        .collect();
    Ok(Json(users).into_response())
}

#[derive(Deserialize)]
struct NewProjectBody {
    #[serde(default)]
    namespace: String,
    path: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    visibility: Option<Visibility>,
}

/// Administrators create projects (`postern_core::projects`); the creator becomes their owner.
async fn create_project(
    ApiAdmin(user): ApiAdmin,
    State(state): State<WebState>,
    Json(body): Json<NewProjectBody>,
) -> Result<Response, ApiError> {
    let request = ProjectRequest {
        namespace: &body.namespace,
        path: &body.path,
        name: &body.name,
        visibility: body.visibility.unwrap_or(Visibility::Private),
        default_branch: "",
        owner: None,
    };
    let project = project_settings::create_project(&state, &user, request).await?;
    Ok((StatusCode::CREATED, Json(project)).into_response())
}

async fn project(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let visible = state
        .read(async |tx| access::project(tx, Some(&user), id).await)
        .await?;
    Ok(Json(visible.project).into_response())
}

/// The project's issues the user reads, one page of them, with the web list's parameters
/// (`issue_list`: `q`, `state`, `type`, `label`, `author`, `assignee`, `mine`, `sort`, `page`,
/// `per_page`); newest first. The page is told in GitLab's headers: `X-Page`, `X-Per-Page` and
/// `X-Next-Page` (empty on the last page).
async fn issues(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let page = state
        .read(async |tx| {
            let visible = access::project(tx, Some(&user), id).await?;
            params.search(tx, &visible, Some(&user)).await
        })
        .await?;
    let next = if page.has_next {
        (page.page + 1).to_string()
    } else {
        String::new()
    };
    let headers = [
        ("x-page", page.page.to_string()),
        ("x-per-page", page.per_page.to_string()),
        ("x-next-page", next),
    ];
    Ok((headers, Json(page.items)).into_response())
}

async fn issue(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path((id, iid)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    let issue = state
        .read(async |tx| {
            let visible = access::project(tx, Some(&user), id).await?;
            access::issue(tx, Some(&user), &visible, iid).await
        })
        .await?;
    Ok(Json(issue).into_response())
}

async fn issue_notes(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path((id, iid)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    let notes = state
        .read(async |tx| {
            let visible = access::project(tx, Some(&user), id).await?;
            let issue = access::issue(tx, Some(&user), &visible, iid).await?;
            let internal = visible.sees_internal(Some(&user));
            access::notes(tx, Noteable::Issue(issue.id), internal, false).await
        })
        .await?;
    Ok(Json(notes).into_response())
}

#[derive(Deserialize)]
struct NewIssue {
    title: String,
    #[serde(default)]
    description: String,
}

async fn create_issue(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Json(body): Json<NewIssue>,
) -> Result<Response, ApiError> {
    let config = state.processor().config();
    let issue = state
        .write(async |tx| {
            let visible = access::project(tx, Some(&user), id).await?;
            let title = body.title.trim();
            let issue = actions::open_issue(
                tx,
                config,
                &visible.project,
                &user,
                title,
                &body.description,
            )
            .await?;
            Ok(issue)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(issue)).into_response())
}

#[derive(Deserialize)]
struct NewNote {
    body: String,
}

async fn create_note(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path((id, iid)): Path<(i64, i64)>,
    Json(body): Json<NewNote>,
) -> Result<Response, ApiError> {
    let config = state.processor().config();
    let note = state
        .write(async |tx| {
            let visible = access::project(tx, Some(&user), id).await?;
            let issue = access::issue(tx, Some(&user), &visible, iid).await?;
            Ok(actions::comment(tx, config, &visible.project, &user, &issue, &body.body).await?)
        })
        .await?;
    // Only quick actions: nothing to show but their effect.
    let body = match note {
        Some(note) => {
            json!({ "id": note.id, "body": note.body, "discussion_id": note.discussion_id })
        }
        None => json!({ "id": null, "quick_actions_only": true }),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn merge_requests(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let mrs = state
        .read(async |tx| {
            access::project(tx, Some(&user), id).await?;
            Ok(tx.list_merge_requests(Some(id)).await?)
        })
        .await?;
    Ok(Json(mrs).into_response())
}

#[derive(Deserialize)]
struct InboundQuery {
    #[serde(flatten)]
    log: LogQuery,
    limit: Option<i64>,
}

async fn inbound(
    ApiAdmin(_): ApiAdmin,
    State(state): State<WebState>,
    Query(query): Query<InboundQuery>,
) -> Result<Response, ApiError> {
    let limit = query
        .limit
        .unwrap_or(state.config().page_size)
        .clamp(1, 1000);
    let filter = query.log.filter(limit)?;
    let messages = state
        .read(async |tx| Ok(tx.list_inbound(&filter).await?))
        .await?;
    Ok(Json(messages).into_response())
}

async fn reprocess(
    ApiAdmin(_): ApiAdmin,
    State(state): State<WebState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let outcome = state
        .processor()
        .reprocess(id)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(Json(outcome).into_response())
}

async fn outbox(
    ApiAdmin(_): ApiAdmin,
    State(state): State<WebState>,
) -> Result<Response, ApiError> {
    let filter = OutboxFilter {
        limit: state.config().page_size,
        ..OutboxFilter::default()
    };
    let mails = state
        .read(async |tx| Ok(tx.list_outbox(&filter).await?))
        .await?;
    Ok(Json(mails).into_response())
}
