//! The JSON API under `/api/v1`, authenticated by personal access token
//! (`Authorization: Bearer pstn-…` or `PRIVATE-TOKEN: pstn-…`), with the same rules as the pages.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use postern_core::actions;
use postern_core::projects::ProjectRequest;
use postern_store::{IssueFilter, Noteable, OutboxFilter, User, Visibility};
use serde::Deserialize;
use serde_json::json;

use crate::desk::LogQuery;
use crate::error::ApiError;
use crate::session::api_user;
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

fn admin_only(user: &User) -> Result<(), WebError> {
    if user.admin {
        Ok(())
    } else {
        Err(WebError::Forbidden)
    }
}

async fn user(State(state): State<WebState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    Ok(Json(json!({
        "id": user.id, "username": user.username, "name": user.name,
        "admin": user.admin, "state": user.state, "emails": user.emails,
    }))
    .into_response())
}

async fn projects(State(state): State<WebState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    let mut tx = state.store().begin_read_only().await?;
    let projects: Vec<_> = access::projects(&mut tx, Some(&user))
        .await?
        .into_iter()
        .map(|v| v.project)
        .collect();
    tx.rollback().await?;
    Ok(Json(projects).into_response())
}

async fn users(State(state): State<WebState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    admin_only(&user)?;
    let mut tx = state.store().begin_read_only().await?;
    let users: Vec<_> = tx
        .list_users()
        .await?
        .into_iter()
        .map(|u| {
            json!({
                "id": u.id, "username": u.username, "name": u.name, "state": u.state,
                "admin": u.admin, "kind": u.kind, "emails": u.emails,
            })
        })
        .collect();
    tx.rollback().await?;
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
    State(state): State<WebState>,
    headers: HeaderMap,
    Json(body): Json<NewProjectBody>,
) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    admin_only(&user)?;
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
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    let mut tx = state.store().begin_read_only().await?;
    let visible = access::project(&mut tx, Some(&user), id).await?;
    tx.rollback().await?;
    Ok(Json(visible.project).into_response())
}

async fn issues(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    let mut tx = state.store().begin_read_only().await?;
    let visible = access::project(&mut tx, Some(&user), id).await?;
    let filter = IssueFilter {
        project_id: Some(id),
        state: None,
        issue_type: None,
    };
    let actor = visible.actor(&user);
    let issues: Vec<_> = tx
        .list_issues(&filter)
        .await?
        .into_iter()
        .filter(|i| actor.can_read_issue(&visible.project, i))
        .collect();
    tx.rollback().await?;
    Ok(Json(issues).into_response())
}

async fn issue(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((id, iid)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    let mut tx = state.store().begin_read_only().await?;
    let visible = access::project(&mut tx, Some(&user), id).await?;
    let issue = access::issue(&mut tx, Some(&user), &visible, iid).await?;
    tx.rollback().await?;
    Ok(Json(issue).into_response())
}

async fn issue_notes(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((id, iid)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    let mut tx = state.store().begin_read_only().await?;
    let visible = access::project(&mut tx, Some(&user), id).await?;
    let issue = access::issue(&mut tx, Some(&user), &visible, iid).await?;
    let notes = access::notes(
        &mut tx,
        Noteable::Issue(issue.id),
        visible.sees_internal(Some(&user)),
        false,
    )
    .await?;
    tx.rollback().await?;
    Ok(Json(notes).into_response())
}

#[derive(Deserialize)]
struct NewIssue {
    title: String,
    #[serde(default)]
    description: String,
}

async fn create_issue(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<NewIssue>,
) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    let mut tx = state.store().begin().await?;
    let visible = access::project(&mut tx, Some(&user), id).await?;
    let config = state.processor().config();
    let issue = actions::open_issue(
        &mut tx,
        config,
        &visible.project,
        &user,
        body.title.trim(),
        &body.description,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(issue)).into_response())
}

#[derive(Deserialize)]
struct NewNote {
    body: String,
}

async fn create_note(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((id, iid)): Path<(i64, i64)>,
    Json(body): Json<NewNote>,
) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    let mut tx = state.store().begin().await?;
    let visible = access::project(&mut tx, Some(&user), id).await?;
    let issue = access::issue(&mut tx, Some(&user), &visible, iid).await?;
    let config = state.processor().config();
    let note =
        actions::comment(&mut tx, config, &visible.project, &user, &issue, &body.body).await?;
    tx.commit().await?;
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
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    let mut tx = state.store().begin_read_only().await?;
    access::project(&mut tx, Some(&user), id).await?;
    let mrs = tx.list_merge_requests(Some(id)).await?;
    tx.rollback().await?;
    Ok(Json(mrs).into_response())
}

#[derive(Deserialize)]
struct InboundQuery {
    #[serde(flatten)]
    log: LogQuery,
    limit: Option<i64>,
}

async fn inbound(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Query<InboundQuery>,
) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    admin_only(&user)?;
    let limit = query
        .limit
        .unwrap_or(state.config().page_size)
        .clamp(1, 1000);
    let filter = query.log.filter(limit)?;
    let mut tx = state.store().begin_read_only().await?;
    let messages = tx.list_inbound(&filter).await?;
    tx.rollback().await?;
    Ok(Json(messages).into_response())
}

async fn reprocess(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    admin_only(&user)?;
    let outcome = state
        .processor()
        .reprocess(id)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(Json(outcome).into_response())
}

async fn outbox(State(state): State<WebState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = api_user(&state, &headers).await?;
    admin_only(&user)?;
    let mut tx = state.store().begin_read_only().await?;
    let mails = tx
        .list_outbox(&OutboxFilter {
            limit: state.config().page_size,
            ..OutboxFilter::default()
        })
        .await?;
    tx.rollback().await?;
    Ok(Json(mails).into_response())
}
