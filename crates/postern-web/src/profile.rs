//! A person's own account: the profile page (addresses, password, incoming-email token) and
//! the one-time link an administrator hands to someone created without a password.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use postern_core::notification_levels::{self as levels, Level};
use postern_store::{Timestamp, User};
use serde::Deserialize;

use crate::auth::check_new_password;
use crate::error::Path;
use crate::secret::{new_token, same_secret, token_hash};
use crate::session::{self, AdminPosted, Me, Posted, SignedIn};
use crate::{WebError, WebState};

/// How long a password link works: a day, time enough to pass it on and use it.
const PASSWORD_LINK_SECONDS: i64 = 24 * 3600;

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/profile", get(profile))
        .route("/profile/password", post(change_password))
        .route("/profile/incoming_email_token", post(reset_token))
        .route("/profile/notifications", post(notifications))
        .route("/admin/users/{id}/password_link", post(password_link))
        .route("/password/set", get(set_password_form).post(set_password))
}

async fn profile(
    State(state): State<WebState>,
    SignedIn(me): SignedIn,
) -> Result<Response, WebError> {
    profile_page(&state, &me, StatusCode::OK, None, None).await
}

/// The profile page, with a `notice` of what was done or an `error` beside the password form.
async fn profile_page(
    state: &WebState,
    me: &Me,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    // The token is read again: the session's copy predates a reset made a moment ago.
    let user = state
        .read(async |tx| Ok(tx.user_by_id(me.user.id).await?))
        .await?
        .ok_or(WebError::NotFound)?;
    // The global level, and the level of each project the person is a member of.
    let (global, projects) = state
        .read(async |tx| {
            let global = levels::global(tx, user.id).await?;
            let chosen = tx.notification_levels_of(user.id).await?;
            let mut projects = Vec::new();
            for visible in crate::access::projects(tx, Some(&user)).await? {
                if visible.role.is_none() {
                    continue;
                }
                let level = chosen
                    .iter()
                    .find(|(id, _)| *id == visible.project.id)
                    .map_or("global", |(_, level)| level.as_str())
                    .to_owned();
                projects.push(crate::pages::page! {
                    id => visible.project.id, full_path => &visible.project.full_path,
                    level => level,
                });
            }
            Ok((global, projects))
        })
        .await?;
    let address = state
        .processor()
        .config()
        .incoming_address
        .as_ref()
        .map(|incoming| incoming.address_for_key(&user.incoming_email_token));
    let page = state.render(
        "profile.html",
        Some(me),
        crate::pages::page! {
            user => &user, emails => &user.emails, incoming_address => address,
            notice => notice, error => error, global_level => global.as_str(),
            project_levels => projects, levels => levels::Level::ALL.map(levels::Level::as_str),
        },
    )?;
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

/// A new password, given the current one (a session left open is not enough to take the
/// account over).
async fn change_password(
    State(state): State<WebState>,
    Posted(me, form): Posted<PasswordForm>,
) -> Result<Response, WebError> {
    let refused = StatusCode::UNPROCESSABLE_ENTITY;
    if form.password != form.password_confirmation {
        let problem = "The new password and its confirmation differ.";
        return profile_page(&state, &me, refused, None, Some(problem)).await;
    }
    if let Err(WebError::BadRequest(problem)) = check_new_password(&form.password) {
        return profile_page(&state, &me, refused, None, Some(&problem)).await;
    }
    let stored = state
        .read(async |tx| Ok(tx.password_hash(me.user.id).await?))
        .await?;
    let Some(admission) = state.hashing().admit() else {
        return Err(WebError::Unavailable(
            "password hashing is saturated".into(),
        ));
    };
    if !admission.verify(form.current_password, stored).await {
        let problem = "The current password is not right.";
        return profile_page(&state, &me, refused, None, Some(problem)).await;
    }
    let hash = state.hashing().hash(form.password).await?;
    state
        .write(async |tx| Ok(tx.set_password_hash(me.user.id, &hash).await?))
        .await?;
    profile_page(
        &state,
        &me,
        StatusCode::OK,
        Some("Your password was changed."),
        None,
    )
    .await
}

/// A new incoming-email token: the old new-issue addresses stop working (GitLab's "Reset
/// this token").
async fn reset_token(
    State(state): State<WebState>,
    Posted(me, _): Posted,
) -> Result<Response, WebError> {
    state
        .write(async |tx| Ok(tx.reset_incoming_email_token(me.user.id).await?))
        .await?;
    let notice = "Your incoming-email token was reset: the addresses you had stop working.";
    profile_page(&state, &me, StatusCode::OK, Some(notice), None).await
}

/// The notification levels form: `global`, and `project_<id>` for each project listed.
async fn notifications(
    State(state): State<WebState>,
    Posted(me, form): Posted<std::collections::HashMap<String, String>>,
) -> Result<Response, WebError> {
    state
        .write(async |tx| {
            for (field, value) in &form {
                let project = match field.as_str() {
                    "global" => None,
                    other => match other.strip_prefix("project_").map(str::parse::<i64>) {
                        Some(Ok(id)) => {
                            Some(tx.project_by_id(id).await?.ok_or(WebError::NotFound)?)
                        }
                        _ => continue,
                    },
                };
                // Nothing is saved unless every field is right (the transaction rolls back).
                let level = value
                    .parse::<Level>()
                    .map_err(|refusal| WebError::BadRequest(refusal.to_string()))?;
                if let Err(refusal) = levels::set(tx, &me.user, project.as_ref(), level).await? {
                    return Err(match refusal {
                        levels::LevelRefusal::ProjectNotFound => WebError::NotFound,
                        other => WebError::BadRequest(other.to_string()),
                    });
                }
            }
            Ok(())
        })
        .await?;
    let notice = "Your notification settings were saved.";
    profile_page(&state, &me, StatusCode::OK, Some(notice), None).await
}

/// The `settings` key of user `id`'s password link: `<expiry>:<hash of the token>`.
fn link_setting(id: i64) -> String {
    format!("web.password_link.{id}")
}

/// An administrator makes a one-time link for user `id` to choose a password (a new link
/// replaces an earlier one), and sees it once.
async fn password_link(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    AdminPosted(me, _): AdminPosted,
) -> Result<Response, WebError> {
    let token = new_token()?;
    let expires = Timestamp::now().plus_seconds(PASSWORD_LINK_SECONDS);
    let user = state
        .write(async |tx| {
            let user = tx
                .user_by_id(id)
                .await?
                .filter(|u| !u.is_support_bot())
                .ok_or(WebError::NotFound)?;
            let value = format!("{}:{}", expires.0, token_hash(&token));
            tx.set_setting(&link_setting(id), &value).await?;
            Ok(user)
        })
        .await?;
    let link = format!(
        "{}/password/set?user={id}&token={token}",
        state.config().base_url
    );
    let page = state.render(
        "password.html",
        Some(&me),
        crate::pages::page! { link => link, username => &user.username },
    )?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct LinkQuery {
    #[serde(default)]
    user: i64,
    #[serde(default)]
    token: String,
}

/// The user a password link is for, if it is current and the account may sign in.
async fn link_user(state: &WebState, id: i64, token: &str) -> Result<Option<User>, WebError> {
    state
        .read(async |tx| {
            let Some(stored) = tx.setting(&link_setting(id)).await? else {
                return Ok(None);
            };
            let Some((expires, hash)) = stored.split_once(':') else {
                return Ok(None);
            };
            let current = expires
                .parse::<i64>()
                .is_ok_and(|expires| Timestamp::now().0 < expires);
            if !current || token.is_empty() || !same_secret(hash, &token_hash(token)) {
                return Ok(None);
            }
            Ok(tx
                .user_by_id(id)
                .await?
                .filter(|u| !u.is_blocked() && !u.is_support_bot()))
        })
        .await
}

fn choose_page(
    state: &WebState,
    status: StatusCode,
    query: &LinkQuery,
    username: &str,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let page = state.render(
        "password.html",
        None,
        crate::pages::page! {
            user_id => query.user, token => &query.token, username => username, error => error,
        },
    )?;
    Ok((status, page).into_response())
}

async fn set_password_form(
    State(state): State<WebState>,
    Query(query): Query<LinkQuery>,
) -> Result<Response, WebError> {
    let user = link_user(&state, query.user, &query.token)
        .await?
        .ok_or(WebError::NotFound)?;
    choose_page(&state, StatusCode::OK, &query, &user.username, None)
}

#[derive(Deserialize)]
struct ChooseForm {
    #[serde(default)]
    user: i64,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// The link's holder chooses a password (the token in the form is its CSRF protection, as
/// on the setup page), the link is spent, and they are signed in.
async fn set_password(
    State(state): State<WebState>,
    axum::Form(form): axum::Form<ChooseForm>,
) -> Result<Response, WebError> {
    let query = LinkQuery {
        user: form.user,
        token: form.token,
    };
    let user = link_user(&state, query.user, &query.token)
        .await?
        .ok_or(WebError::NotFound)?;
    if let Err(WebError::BadRequest(problem)) = check_new_password(&form.password) {
        return choose_page(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            &query,
            &user.username,
            Some(&problem),
        );
    }
    let hash = state.hashing().hash(form.password).await?;
    state
        .write(async |tx| {
            tx.set_password_hash(user.id, &hash).await?;
            tx.delete_setting(&link_setting(user.id)).await?;
            Ok(())
        })
        .await?;
    let cookie = session::start(&state, user.id).await?;
    Ok(session::redirect_with_cookie(cookie, "/profile"))
}
