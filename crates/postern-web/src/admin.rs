//! Administration pages: users (create, block, password, addresses: `postern_core::users`)
//! and creating projects (`postern_core::projects`). A project's own settings are in
//! `project_admin`.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use postern_core::ChangeError;
use postern_core::projects::ProjectRequest;
use postern_core::users::{self, Account, UserError, UserRefusal};
use postern_store::{Tx, User, UserState};
use serde::Deserialize;

use crate::auth::check_new_password;
use crate::error::Path;
use crate::project_settings;
use crate::session::{Admin, AdminPosted, Me};
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
}

/// A missing user or address is not found; the other refusals are the person's to fix.
fn user_error(error: UserError) -> WebError {
    match error {
        ChangeError::Refused(UserRefusal::NotFound) => WebError::NotFound,
        ChangeError::Refused(refusal) => WebError::BadRequest(refusal.to_string()),
        ChangeError::Failed(failure) => failure.into(),
    }
}

async fn users(State(state): State<WebState>, Admin(me): Admin) -> Result<Response, WebError> {
    users_page(&state, &me, None).await
}

async fn users_page(state: &WebState, me: &Me, notice: Option<&str>) -> Result<Response, WebError> {
    users_page_with(state, me, notice, None).await
}

/// The users page; with `refused`, the new-user form comes back as typed (never the
/// password) with the reason beside it, under the refusal's status.
async fn users_page_with(
    state: &WebState,
    me: &Me,
    notice: Option<&str>,
    refused: Option<(&NewUserForm, &WebError)>,
) -> Result<Response, WebError> {
    let users: Vec<User> = state.read(async |tx| Ok(tx.list_users().await?)).await?;
    let (status, error) = match refused.and_then(|(_, e)| e.form_problem()) {
        Some((status, text)) => (status, Some(text)),
        None => (axum::http::StatusCode::OK, None),
    };
    let typed = refused.map(|(form, _)| {
        crate::pages::page! {
            username => &form.username, name => &form.name, email => &form.email,
            admin => form.admin.is_some(),
        }
    });
    let page = state.render(
        "users.html",
        Some(me),
        crate::pages::page! { users => users, notice => notice, error => error, typed => typed },
    )?;
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
struct NewUserForm {
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
    AdminPosted(me, form): AdminPosted<NewUserForm>,
) -> Result<Response, WebError> {
    match add_user(&state, &form).await {
        Ok(()) => users_page(&state, &me, Some("User created.")).await,
        Err(error) if error.form_problem().is_some() => {
            users_page_with(&state, &me, None, Some((&form, &error))).await
        }
        Err(error) => Err(error),
    }
}

async fn add_user(state: &WebState, form: &NewUserForm) -> Result<(), WebError> {
    let hash = if form.password.is_empty() {
        None
    } else {
        check_new_password(&form.password)?;
        Some(state.hashing().hash(form.password.clone()).await?)
    };
    let account = Account {
        username: &form.username,
        name: &form.name,
        email: &form.email,
        email_verified: true,
        admin: form.admin.is_some(),
    };
    state
        .write(async |tx| {
            let user = users::create(tx, account).await.map_err(user_error)?;
            if let Some(hash) = hash {
                tx.set_password_hash(user.id, &hash).await?;
            }
            Ok(())
        })
        .await
}

#[derive(Deserialize)]
struct StateForm {
    #[serde(default)]
    state: String,
}

async fn set_user_state(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    AdminPosted(me, form): AdminPosted<StateForm>,
) -> Result<Response, WebError> {
    let new_state = form
        .state
        .parse::<UserState>()
        .map_err(|_| WebError::BadRequest("unknown state".into()))?;
    user_change(&state, async |tx| {
        users::set_state(tx, Some(&me.user), id, new_state).await
    })
    .await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    password: String,
}

async fn set_password(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    AdminPosted(me, form): AdminPosted<PasswordForm>,
) -> Result<Response, WebError> {
    check_new_password(&form.password)?;
    let hash = state.hashing().hash(form.password).await?;
    state
        .write(async |tx| {
            tx.user_by_id(id).await?.ok_or(WebError::NotFound)?;
            tx.set_password_hash(id, &hash).await?;
            if id != me.user.id {
                tx.delete_user_sessions(id).await?;
            }
            Ok(())
        })
        .await?;
    Ok(Redirect::to("/admin/users").into_response())
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    email: String,
    /// Present (checkbox or hidden field) when the address counts as verified.
    #[serde(default)]
    verified: Option<String>,
}

/// The shape of a change of an account: one change through `postern_core::users` in one
/// transaction, back to the list of users.
async fn user_change(
    state: &WebState,
    change: impl AsyncFnOnce(&mut Tx) -> Result<(), UserError>,
) -> Result<Response, WebError> {
    state
        .write(async |tx| change(tx).await.map_err(user_error))
        .await?;
    Ok(Redirect::to("/admin/users").into_response())
}

/// Adds an address; an administrator may vouch for it (verified) or leave it unverified, in
/// which case it identifies nobody until verified.
async fn add_email(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    AdminPosted(_, form): AdminPosted<EmailForm>,
) -> Result<Response, WebError> {
    let verified = form.verified.is_some();
    user_change(&state, async |tx| {
        let user = tx.user_by_id(id).await?.ok_or(UserRefusal::NotFound)?;
        users::add_email(tx, &user, &form.email, verified).await?;
        Ok(())
    })
    .await
}

async fn set_email_verified(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    AdminPosted(_, form): AdminPosted<EmailForm>,
) -> Result<Response, WebError> {
    let verified = form.verified.is_some();
    user_change(&state, async |tx| {
        users::set_email_verified(tx, id, &form.email, verified).await
    })
    .await
}

async fn remove_email(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    AdminPosted(_, form): AdminPosted<EmailForm>,
) -> Result<Response, WebError> {
    user_change(&state, async |tx| {
        users::remove_email(tx, id, &form.email).await
    })
    .await
}

async fn projects(State(state): State<WebState>, Admin(me): Admin) -> Result<Response, WebError> {
    projects_page(&state, &me, None).await
}

/// The projects page; with `refused`, the new-project form as typed and the reason beside
/// it, under the refusal's status.
async fn projects_page(
    state: &WebState,
    me: &Me,
    refused: Option<(&NewProjectForm, &WebError)>,
) -> Result<Response, WebError> {
    let projects = state.read(async |tx| Ok(tx.list_projects().await?)).await?;
    let (status, error) = match refused.and_then(|(_, e)| e.form_problem()) {
        Some((status, text)) => (status, Some(text)),
        None => (axum::http::StatusCode::OK, None),
    };
    let typed = refused.map(|(form, _)| {
        crate::pages::page! {
            namespace => &form.namespace, path => &form.path, name => &form.name,
            visibility => &form.visibility,
        }
    });
    let page = state.render(
        "projects_admin.html",
        Some(me),
        crate::pages::page! { projects => projects, error => error, typed => typed },
    )?;
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
struct NewProjectForm {
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    visibility: String,
}

/// Creates a project with `postern_core::projects`' rules; the administrator who creates it
/// becomes its owner.
async fn create_project(
    State(state): State<WebState>,
    AdminPosted(me, form): AdminPosted<NewProjectForm>,
) -> Result<Response, WebError> {
    let created = async {
        let request = ProjectRequest {
            namespace: &form.namespace,
            path: &form.path,
            name: &form.name,
            visibility: project_settings::visibility(&form.visibility)?,
            default_branch: "",
            owner: None,
        };
        project_settings::create_project(&state, &me.user, request).await
    }
    .await;
    match created {
        Ok(project) => Ok(Redirect::to(&format!("/admin/projects/{}", project.id)).into_response()),
        Err(error) if error.form_problem().is_some() => {
            projects_page(&state, &me, Some((&form, &error))).await
        }
        Err(error) => Err(error),
    }
}
