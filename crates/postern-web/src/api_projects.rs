//! The JSON API of a project's members, Service Desk settings and sender-authentication policy, with the rules of the
//! settings page (`project_settings`): anyone who can read the project lists its members;
//! maintainers, owners and administrators change them and the Service Desk settings.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use postern_store::{Member, Project, Role, Tx, User};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::project_settings;
use crate::session::ApiUser;
use crate::{WebError, WebState, access};
use postern_core::service_desk::ServiceDeskChange;

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/projects/{id}/members", get(members).post(add_member))
        .route(
            "/projects/{id}/members/{user_id}",
            put(change_member).delete(remove_member),
        )
        .route(
            "/projects/{id}/service_desk",
            get(service_desk).put(update_service_desk),
        )
        .route(
            "/projects/{id}/service_desk/custom_email/verify",
            post(verify_custom_email),
        )
        .route(
            "/projects/{id}/sender_authentication",
            get(sender_authentication).put(update_sender_authentication),
        )
}

/// One member as the API shows it, read back after a change.
async fn member_json(tx: &mut Tx, project_id: i64, user_id: i64) -> Result<Value, WebError> {
    tx.list_members(project_id)
        .await?
        .iter()
        .find(|m| m.user_id == user_id)
        .map(member_entity)
        .ok_or(WebError::NotFound)
}

/// A member as the API shows it (GitLab's member entity: `access_level` plus our role name).
fn member_entity(member: &Member) -> Value {
    json!({
        "id": member.user_id, "username": member.username, "role": member.role,
        "access_level": member.role.access_level(), "created_at": member.created_at,
    })
}

async fn members(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let members = state
        .read(async |tx| {
            access::project(tx, Some(&user), id).await?;
            Ok(tx.list_members(id).await?)
        })
        .await?;
    let members: Vec<Value> = members.iter().map(member_entity).collect();
    Ok(Json(members).into_response())
}

/// The role of a request: `"role": "developer"` or GitLab's `"access_level": 30`.
#[derive(Deserialize)]
struct RoleBody {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    access_level: Option<i64>,
}

impl RoleBody {
    fn role(&self) -> Result<Role, WebError> {
        match (self.role, self.access_level) {
            (Some(role), None) => Ok(role),
            (None, Some(level)) => Role::from_access_level(level)
                .ok_or_else(|| WebError::BadRequest(format!("unknown access_level {level}"))),
            (Some(role), Some(level)) if role.access_level() == level => Ok(role),
            _ => Err(WebError::BadRequest(
                "give one of role or access_level".into(),
            )),
        }
    }
}

#[derive(Deserialize)]
struct NewMemberBody {
    #[serde(default)]
    user_id: Option<i64>,
    #[serde(default)]
    username: Option<String>,
    #[serde(flatten)]
    role: RoleBody,
}

async fn add_member(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Json(body): Json<NewMemberBody>,
) -> Result<Response, ApiError> {
    let role = body.role.role()?;
    let member = project_settings::manage(&state, &user, id, async |tx, managed| {
        let target: Option<User> = match (body.user_id, body.username.as_deref()) {
            (Some(user_id), _) => tx.user_by_id(user_id).await?,
            (None, Some(username)) => tx.user_by_username(username.trim()).await?,
            (None, None) => {
                return Err(WebError::BadRequest("give user_id or username".into()));
            }
        };
        let target = target.ok_or_else(|| WebError::BadRequest("no such user".into()))?;
        if tx.member_role(id, target.id).await?.is_some() {
            return Err(WebError::Conflict(
                "already a member; use PUT to change the role".into(),
            ));
        }
        project_settings::set_member(tx, managed, target.id, role).await?;
        member_json(tx, id, target.id).await
    })
    .await?;
    Ok((StatusCode::CREATED, Json(member)).into_response())
}

async fn change_member(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path((id, user_id)): Path<(i64, i64)>,
    Json(body): Json<RoleBody>,
) -> Result<Response, ApiError> {
    let role = body.role()?;
    let member = project_settings::manage(&state, &user, id, async |tx, managed| {
        if tx.member_role(id, user_id).await?.is_none() {
            return Err(WebError::NotFound);
        }
        project_settings::set_member(tx, managed, user_id, role).await?;
        member_json(tx, id, user_id).await
    })
    .await?;
    Ok(Json(member).into_response())
}

async fn remove_member(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path((id, user_id)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    project_settings::manage(&state, &user, id, async |tx, managed| {
        project_settings::remove_member(tx, managed, user_id).await
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The Service Desk settings as the API shows them (never the verification token).
fn service_desk_json(project: &Project) -> Value {
    let settings = &project.service_desk;
    json!({
        "enabled": settings.enabled,
        "project_key": settings.project_key,
        "custom_email": settings.custom_email,
        "custom_email_enabled": settings.custom_email_enabled,
        "custom_email_verification": {
            "state": settings.custom_email_verification_state,
            "error": settings.custom_email_verification_error,
            "triggered_at": settings.custom_email_verification_triggered_at,
        },
        "tickets_confidential_by_default": settings.tickets_confidential_by_default,
        "reopen_issue_on_external_participant_note":
            settings.reopen_issue_on_external_participant_note,
        "add_external_participants_from_cc": settings.add_external_participants_from_cc,
    })
}

async fn service_desk(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let project = project_settings::managed_project(&state, &user, id).await?;
    Ok(Json(service_desk_json(&project)).into_response())
}

async fn update_service_desk(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Json(change): Json<ServiceDeskChange>,
) -> Result<Response, ApiError> {
    let config = state.processor().config();
    let project = project_settings::manage(&state, &user, id, async |tx, managed| {
        project_settings::update_service_desk(tx, config, managed, &user, change).await
    })
    .await?;
    Ok(Json(service_desk_json(&project)).into_response())
}

async fn verify_custom_email(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let config = state.processor().config();
    let sent_to = project_settings::manage(&state, &user, id, async |tx, managed| {
        project_settings::verify_custom_email(tx, config, managed, &user).await
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "sent_to": sent_to }))).into_response())
}

/// The project's sender-authentication policy: what it asks for, the instance's, the one
/// applied, and a warning when the instance verifies nothing.
async fn sender_authentication(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let project = project_settings::managed_project(&state, &user, id).await?;
    let config = state.processor().config();
    Ok(Json(project_settings::sender_policy_view(config, &project)).into_response())
}

#[derive(Deserialize)]
struct SenderPolicyChange {
    /// `dmarc`, `require`, or `default` (or null) for the instance's.
    policy: Option<String>,
}

async fn update_sender_authentication(
    ApiUser(user): ApiUser,
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Json(change): Json<SenderPolicyChange>,
) -> Result<Response, ApiError> {
    let policy = change.policy.unwrap_or_default();
    let project = project_settings::manage(&state, &user, id, async |tx, managed| {
        project_settings::set_sender_policy(tx, managed, &policy).await
    })
    .await?;
    let config = state.processor().config();
    Ok(Json(project_settings::sender_policy_view(config, &project)).into_response())
}
