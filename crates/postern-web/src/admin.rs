//! Administration pages: users (create, block, password), projects (create, members, Service
//! Desk settings) and each project's addresses as GitLab shows them.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use postern_store::{NewProject, NewUser, Project, Role, User, UserState, Visibility};
use serde::Deserialize;

use crate::secret::hash_password_blocking;
use crate::session::{self, Me};
use crate::{WebError, WebState};

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{id}/state", post(set_user_state))
        .route("/admin/users/{id}/password", post(set_password))
        .route("/admin/users/{id}/emails", post(add_email))
        .route(
            "/admin/users/{id}/emails/verified",
            post(set_email_verified),
        )
        .route("/admin/users/{id}/emails/remove", post(remove_email))
        .route("/admin/projects", get(projects).post(create_project))
        .route("/admin/projects/{id}", get(project))
        .route("/admin/projects/{id}/members", post(add_member))
        .route(
            "/admin/projects/{id}/members/{user_id}/remove",
            post(remove_member),
        )
        .route("/admin/projects/{id}/service_desk", post(service_desk))
}

const MIN_PASSWORD_CHARS: usize = 8;

async fn users(State(state): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    users_page(&state, &me, None).await
}

async fn users_page(state: &WebState, me: &Me, notice: Option<&str>) -> Result<Response, WebError> {
    let mut tx = state.store().begin_read_only().await?;
    let users: Vec<User> = tx.list_users().await?;
    tx.rollback().await?;
    Ok(state
        .render(
            "users.html",
            Some(me),
            crate::pages::page! { users => users, notice => notice },
        )?
        .into_response())
}

#[derive(Deserialize)]
struct NewUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    admin: Option<String>,
}

async fn create_user(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<NewUserForm>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    me.check_csrf(&form.csrf)?;
    let (username, email) = (form.username.trim(), form.email.trim());
    if username.is_empty() || email.is_empty() {
        return Err(WebError::BadRequest(
            "Username and email are required.".into(),
        ));
    }
    let hash = if form.password.is_empty() {
        None
    } else if form.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(WebError::BadRequest(
            "The password needs at least 8 characters.".into(),
        ));
    } else {
        Some(hash_password_blocking(form.password).await?)
    };
    let name = if form.name.trim().is_empty() {
        username
    } else {
        form.name.trim()
    };
    let mut new = NewUser::new(username, name, email);
    new.admin = form.admin.is_some();
    let mut tx = state.store().begin().await?;
    let user = match tx.create_user(new).await {
        Ok(user) => user,
        Err(e) if e.is_unique_violation() => {
            return Err(WebError::BadRequest(
                "That username or email is taken.".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(hash) = hash {
        tx.set_password_hash(user.id, &hash).await?;
    }
    tx.commit().await?;
    users_page(&state, &me, Some("User created.")).await
}

#[derive(Deserialize)]
struct StateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    state: String,
}

async fn set_user_state(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<StateForm>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    me.check_csrf(&form.csrf)?;
    let new_state = form
        .state
        .parse::<UserState>()
        .map_err(|_| WebError::BadRequest("unknown state".into()))?;
    if id == me.user.id && new_state == UserState::Blocked {
        return Err(WebError::BadRequest("You cannot block yourself.".into()));
    }
    let mut tx = state.store().begin().await?;
    if !tx.set_user_state(id, new_state).await? {
        return Err(WebError::NotFound);
    }
    if new_state == UserState::Blocked {
        tx.delete_user_sessions(id).await?;
    }
    tx.commit().await?;
    Ok(Redirect::to("/admin/users").into_response())
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

async fn set_password(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    me.check_csrf(&form.csrf)?;
    if form.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(WebError::BadRequest(
            "The password needs at least 8 characters.".into(),
        ));
    }
    let hash = hash_password_blocking(form.password).await?;
    let mut tx = state.store().begin().await?;
    tx.user_by_id(id).await?.ok_or(WebError::NotFound)?;
    tx.set_password_hash(id, &hash).await?;
    if id != me.user.id {
        tx.delete_user_sessions(id).await?;
    }
    tx.commit().await?;
    Ok(Redirect::to("/admin/users").into_response())
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    /// Present (checkbox or hidden field) when the address counts as verified.
    #[serde(default)]
    verified: Option<String>,
}

/// Adds an address; an administrator may vouch for it (verified) or leave it unverified, in
/// which case it identifies nobody until verified.
async fn add_email(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<EmailForm>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    me.check_csrf(&form.csrf)?;
    let email = form.email.trim();
    if !email.contains('@') {
        return Err(WebError::BadRequest("That is not an email address.".into()));
    }
    let mut tx = state.store().begin().await?;
    tx.user_by_id(id).await?.ok_or(WebError::NotFound)?;
    match tx.add_user_email(id, email, form.verified.is_some()).await {
        Ok(_) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(WebError::BadRequest(
                "That address belongs to someone.".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(Redirect::to("/admin/users").into_response())
}

async fn set_email_verified(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<EmailForm>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    me.check_csrf(&form.csrf)?;
    let mut tx = state.store().begin().await?;
    if !tx
        .set_email_verified(id, form.email.trim(), form.verified.is_some())
        .await?
    {
        return Err(WebError::NotFound);
    }
    tx.commit().await?;
    Ok(Redirect::to("/admin/users").into_response())
}

async fn remove_email(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<EmailForm>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    me.check_csrf(&form.csrf)?;
    let mut tx = state.store().begin().await?;
    if !tx.remove_user_email(id, form.email.trim()).await? {
        return Err(WebError::BadRequest(
            "Unknown address, or the primary one (which stays).".into(),
        ));
    }
    tx.commit().await?;
    Ok(Redirect::to("/admin/users").into_response())
}

async fn projects(State(state): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    let mut tx = state.store().begin_read_only().await?;
    let projects = tx.list_projects().await?;
    tx.rollback().await?;
    Ok(state
        .render(
            "projects_admin.html",
            Some(&me),
            crate::pages::page! { projects => projects },
        )?
        .into_response())
}

#[derive(Deserialize)]
struct NewProjectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    visibility: String,
}

async fn create_project(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<NewProjectForm>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    me.check_csrf(&form.csrf)?;
    let path = form.path.trim();
    let valid = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    let namespace = form.namespace.trim().trim_matches('/');
    if path.is_empty()
        || !valid(path)
        || !namespace
            .split('/')
            .all(|part| part.is_empty() || valid(part))
    {
        return Err(WebError::BadRequest(
            "Use letters, digits, '.', '_' and '-' in paths.".into(),
        ));
    }
    let visibility = match form.visibility.as_str() {
        "" => Visibility::Private,
        v => v
            .parse::<Visibility>()
            .map_err(|_| WebError::BadRequest("unknown visibility".into()))?,
    };
    let name = if form.name.trim().is_empty() {
        path
    } else {
        form.name.trim()
    };
    let mut tx = state.store().begin().await?;
    let project = match tx
        .create_project(NewProject {
            namespace_path: namespace.to_owned(),
            path: path.to_owned(),
            name: name.to_owned(),
            visibility,
            default_branch: "main".to_owned(),
        })
        .await
    {
        Ok(project) => project,
        Err(e) if e.is_unique_violation() => {
            return Err(WebError::BadRequest(
                "A project with that path exists.".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    tx.add_member(project.id, me.user.id, Role::Owner).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/admin/projects/{}", project.id)).into_response())
}

/// The addresses GitLab shows for a project, with `user`'s own token in the personal ones.
fn addresses(state: &WebState, project: &Project, user: &User) -> Vec<(String, String)> {
    let config = state.processor().config();
    let slug = &project.full_path_slug;
    let mut shown = Vec::new();
    if let Some(incoming) = &config.incoming_address {
        let token = &user.incoming_email_token;
        shown.push((
            "New issue by email (yours)".to_owned(),
            incoming.address_for_key(&format!("{slug}-{}-{token}-issue", project.id)),
        ));
        shown.push((
            "New merge request by email (yours)".to_owned(),
            incoming.address_for_key(&format!("{slug}-{}-{token}-merge-request", project.id)),
        ));
        if project.service_desk.enabled {
            shown.push((
                "Service Desk".to_owned(),
                incoming.address_for_key(&format!("{slug}-{}-issue-", project.id)),
            ));
        }
    }
    if let (Some(desk), true) = (&config.service_desk_address, project.service_desk.enabled) {
        let key = match &project.service_desk.project_key {
            Some(key) => format!("{slug}-{key}"),
            None => format!("{slug}-{}-issue-", project.id),
        };
        shown.push((
            "Service Desk (service desk mailbox)".to_owned(),
            desk.address_for_key(&key),
        ));
    }
    if let Some(custom) = &project.service_desk.custom_email {
        shown.push(("Custom support address".to_owned(), custom.clone()));
    }
    shown
}

async fn project(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    let mut tx = state.store().begin_read_only().await?;
    let project = tx.project_by_id(id).await?.ok_or(WebError::NotFound)?;
    let members = tx.list_members(id).await?;
    tx.rollback().await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let addresses = addresses(&state, &project, &me.user);
    Ok(state
        .render(
            "project_admin.html",
            Some(&me),
            crate::pages::page! { project => &project, members => members, roles => roles,
            addresses => addresses },
        )?
        .into_response())
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

async fn add_member(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<MemberForm>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    me.check_csrf(&form.csrf)?;
    let role = form
        .role
        .parse::<Role>()
        .map_err(|_| WebError::BadRequest("unknown role".into()))?;
    let mut tx = state.store().begin().await?;
    tx.project_by_id(id).await?.ok_or(WebError::NotFound)?;
    let user = tx
        .user_by_username(form.username.trim())
        .await?
        .ok_or_else(|| WebError::BadRequest("No such user.".into()))?;
    tx.add_member(id, user.id, role).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/admin/projects/{id}")).into_response())
}

async fn remove_member(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((id, user_id)): Path<(i64, i64)>,
    Form(form): Form<crate::auth::CsrfForm>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    me.check_csrf(&form.csrf)?;
    let mut tx = state.store().begin().await?;
    tx.remove_member(id, user_id).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/admin/projects/{id}")).into_response())
}

#[derive(Deserialize)]
struct ServiceDeskForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    project_key: String,
    #[serde(default)]
    tickets_confidential_by_default: Option<String>,
    #[serde(default)]
    reopen_issue_on_external_participant_note: Option<String>,
    #[serde(default)]
    add_external_participants_from_cc: Option<String>,
}

async fn service_desk(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<ServiceDeskForm>,
) -> Result<Response, WebError> {
    let me = session::require_admin(&state, &headers).await?;
    me.check_csrf(&form.csrf)?;
    let mut tx = state.store().begin().await?;
    let project = tx.project_by_id(id).await?.ok_or(WebError::NotFound)?;
    let mut settings = project.service_desk.clone();
    settings.enabled = form.enabled.is_some();
    let key = form.project_key.trim();
    settings.project_key = (!key.is_empty()).then(|| key.to_owned());
    settings.tickets_confidential_by_default = form.tickets_confidential_by_default.is_some();
    settings.reopen_issue_on_external_participant_note =
        form.reopen_issue_on_external_participant_note.is_some();
    settings.add_external_participants_from_cc = form.add_external_participants_from_cc.is_some();
    match tx.update_service_desk(id, &settings).await {
        Ok(_) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(WebError::BadRequest("That project key is taken.".into()));
        }
        Err(postern_store::StoreError::Invalid(text)) => {
            return Err(WebError::BadRequest(text));
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(Redirect::to(&format!("/admin/projects/{id}")).into_response())
}
