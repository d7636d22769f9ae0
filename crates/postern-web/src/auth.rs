//! Signing in and out, the first administrator's setup link, and personal access tokens.

use std::time::Instant;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use postern_core::ChangeError;
use serde::Deserialize;

use crate::error::Path;
use crate::secret::{new_token, same_secret, token_hash};
use crate::session::{self, LOGIN_COOKIE, Posted, SignedIn, cookie, set_cookie};
use crate::throttle::ClientAddress;
use crate::{WebError, WebState};

/// The `settings` key holding the hash of the one-time setup token.
const SETUP_TOKEN_SETTING: &str = "web.setup_token_sha256";
const MIN_PASSWORD_CHARS: usize = 8;

/// Why a new password is refused, if it is (the one rule, for the first administrator's
/// setup and for passwords an administrator sets).
fn weak_password(password: &str) -> Option<&'static str> {
    (password.chars().count() < MIN_PASSWORD_CHARS)
        .then_some("The password needs at least 8 characters.")
}

/// [`weak_password`] as a refusal of the form.
pub(crate) fn check_new_password(password: &str) -> Result<(), WebError> {
    match weak_password(password) {
        Some(problem) => Err(WebError::BadRequest(problem.into())),
        None => Ok(()),
    }
}
/// `Retry-After` when every hashing slot and waiting place is taken: a queue drains in well
/// under a second, so a short wait is honest.
const BUSY_RETRY_SECONDS: u64 = 1;

/// The one-time link that lets the first administrator choose a password. Its `Debug` hides
/// the token; print it with [`SetupLink::expose`] where the operator alone reads it.
#[derive(Clone)]
pub struct SetupLink(String);

impl SetupLink {
    /// The full link, token included.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SetupLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupLink([redacted])")
    }
}

/// When no active administrator has a password yet, makes a new one-time setup token
/// (replacing any earlier one) and returns the link to print at startup; `None` once an
/// administrator can sign in.
pub async fn setup_link(state: &WebState) -> Result<Option<SetupLink>, WebError> {
    let mut tx = state.store().begin().await?;
    if tx.admin_password_exists().await? {
        return Ok(None);
    }
    let token = new_token()?;
    tx.set_setting(SETUP_TOKEN_SETTING, &token_hash(&token))
        .await?;
    tx.commit().await?;
    Ok(Some(SetupLink(format!(
        "{}/setup?token={token}",
        state.config().base_url
    ))))
}

/// The longest page address kept for after sign-in; a longer one is dropped (home instead).
const MAX_NEXT_BYTES: usize = 2048;

/// `next` if it is a page of this site to return to after sign-in: a relative path starting
/// with one `/` (`//host` and `/\host` are other sites to a browser), printable ASCII only
/// (no scheme, no control character, nothing a browser would repair into another address).
/// Anything else is `None`, and sign-in goes home.
pub(crate) fn safe_next(next: &str) -> Option<&str> {
    let safe = next.len() <= MAX_NEXT_BYTES
        && next.starts_with('/')
        && !next.starts_with("//")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !next.starts_with("/login")
        && !next.starts_with("/logout");
    safe.then_some(next)
}

/// The sign-in page's address that returns to `next` (already checked by [`safe_next`]).
pub(crate) fn sign_in_address(next: &str) -> String {
    let encoded: String = next
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/login?next={encoded}")
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

fn login_page(
    state: &WebState,
    status: StatusCode,
    username: &str,
    next: &str,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let login_csrf = new_token()?;
    let next = safe_next(next).unwrap_or("");
    let page = state.render(
        "login.html",
        None,
        crate::pages::page! {
            login_csrf => &login_csrf, username => username, next => next, error => error,
        },
    )?;
    let cookie = set_cookie(state, LOGIN_COOKIE, &login_csrf, 3600)?;
    Ok((status, [(header::SET_COOKIE, cookie)], page).into_response())
}

pub(crate) async fn login_form(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, WebError> {
    if session::current(&state, &headers).await?.is_some() {
        return Ok(Redirect::to(safe_next(&query.next).unwrap_or("/")).into_response());
    }
    login_page(&state, StatusCode::OK, "", &query.next, None)
}

/// The account `login` names: a username, or else (GitLab's "Username or primary email") the
/// user one of whose verified addresses it is.
async fn user_by_login(
    tx: &mut postern_store::Tx,
    login: &str,
) -> Result<Option<postern_store::User>, WebError> {
    let login = login.trim();
    if let Some(user) = tx.user_by_username(login).await? {
        return Ok(Some(user));
    }
    if !login.contains('@') {
        return Ok(None);
    }
    Ok(tx.user_by_verified_email(login).await?)
}

pub(crate) async fn login(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_secret(expected, &form.csrf) {
        return Err(WebError::Forbidden);
    }
    let mut tx = state.store().begin_read_only().await?;
    let user = user_by_login(&mut tx, &form.username).await?;
    let stored = match &user {
        Some(user) => tx.password_hash(user.id).await?,
        None => None,
    };
    tx.rollback().await?;
    let throttle = state.throttle();
    // Counted before argon2 runs, so parallel attempts cannot all slip under the limit, and a
    // limited client costs no hashing at all.
    let reservation =
        match throttle.reserve(&form.username, user.is_some(), address, Instant::now()) {
            Ok(reservation) => reservation,
            Err(wait) => {
                let seconds = wait.as_secs().max(1);
                tracing::warn!(
                    username = %form.username.escape_debug(), client = %address,
                    retry_after = seconds, "sign-in refused: too many failed attempts"
                );
                let retry_after = WebError::TooManyAttempts(seconds).retry_after();
                let message = format!(
                    "Too many failed sign-ins. Try again in {} minute(s).",
                    seconds.div_ceil(60)
                );
                let mut page = login_page(
                    &state,
                    StatusCode::TOO_MANY_REQUESTS,
                    &form.username,
                    &form.next,
                    Some(&message),
                )?;
                if let Some(value) = retry_after {
                    page.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return Ok(page);
            }
        };
    // Then a place in the hashing queue: when every slot and waiting place is taken the answer
    // is immediate and costs no hashing, and the attempt is taken back from the counts.
    let Some(admission) = state.hashing().admit() else {
        throttle.not_tried(reservation);
        tracing::warn!(client = %address, "sign-in refused: password hashing is saturated");
        let mut page = login_page(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            &form.username,
            &form.next,
            Some("The server is busy. Try again in a moment."),
        )?;
        page.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(BUSY_RETRY_SECONDS),
        );
        return Ok(page);
    };
    // Unknown names and accounts without a password are checked against a dummy hash: the
    // same cost, so timing does not tell which names exist.
    let matches = admission.verify(form.password, stored).await;
    let user = user.filter(|u| matches && !u.is_blocked() && !u.is_support_bot());
    let Some(user) = user else {
        tracing::info!(
            username = %form.username.escape_debug(), client = %address, "sign-in failed"
        );
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &form.username,
            &form.next,
            Some("Invalid username or password."),
        );
    };
    throttle.succeeded(reservation);
    let cookie = session::start(&state, user.id).await?;
    let next = safe_next(&form.next).unwrap_or("/");
    Ok(session::redirect_with_cookie(cookie, next))
}

pub(crate) async fn logout(
    State(state): State<WebState>,
    headers: HeaderMap,
    Posted(_, _): Posted,
) -> Result<Response, WebError> {
    let cookie = session::end(&state, &headers).await?;
    Ok(session::redirect_with_cookie(cookie, "/login"))
}

#[derive(Deserialize)]
pub(crate) struct SetupQuery {
    #[serde(default)]
    token: String,
}

/// Whether `token` is the current setup token and no administrator can sign in yet.
async fn setup_allowed(state: &WebState, token: &str) -> Result<bool, WebError> {
    let mut tx = state.store().begin_read_only().await?;
    let stored = tx.setting(SETUP_TOKEN_SETTING).await?;
    let done = tx.admin_password_exists().await?;
    tx.rollback().await?;
    Ok(!done && stored.is_some_and(|hash| same_secret(&hash, &token_hash(token))))
}

pub(crate) async fn setup_form(
    State(state): State<WebState>,
    Query(query): Query<SetupQuery>,
) -> Result<Response, WebError> {
    if !setup_allowed(&state, &query.token).await? {
        return Err(WebError::NotFound);
    }
    let page = state.render(
        "setup.html",
        None,
        crate::pages::page! { token => &query.token, username => "root", name => "Administrator" },
    )?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
pub(crate) struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn setup(
    State(state): State<WebState>,
    Form(form): Form<SetupForm>,
) -> Result<Response, WebError> {
    // The token in the form is the CSRF protection here: only its holder can post.
    if !setup_allowed(&state, &form.token).await? {
        return Err(WebError::NotFound);
    }
    let problem = if form.username.trim().is_empty() || form.email.trim().is_empty() {
        Some("Username and email are required.")
    } else {
        weak_password(&form.password)
    };
    if let Some(problem) = problem {
        let page = state.render(
            "setup.html",
            None,
            crate::pages::page! { token => &form.token, username => &form.username, name => &form.name,
                       email => &form.email, error => problem },
        )?;
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let hash = state.hashing().hash(form.password).await?;
    let mut tx = state.store().begin().await?;
    let user = match tx.user_by_username(form.username.trim()).await? {
        Some(user) if !user.is_support_bot() => user,
        Some(_) => return Err(WebError::BadRequest("That username is reserved.".into())),
        None => {
            let account = postern_core::users::Account {
                username: &form.username,
                name: &form.name,
                email: &form.email,
                email_verified: true,
                admin: true,
            };
            match postern_core::users::create(&mut tx, account).await {
                Ok(user) => user,
                Err(ChangeError::Refused(refusal)) => {
                    return Err(WebError::BadRequest(refusal.to_string()));
                }
                Err(ChangeError::Failed(failure)) => return Err(failure.into()),
            }
        }
    };
    tx.set_user_admin(user.id, true).await?;
    tx.set_password_hash(user.id, &hash).await?;
    tx.delete_setting(SETUP_TOKEN_SETTING).await?;
    tx.commit().await?;
    let cookie = session::start(&state, user.id).await?;
    Ok(session::redirect_with_cookie(cookie, "/"))
}

async fn tokens_page(
    state: &WebState,
    me: &session::Me,
    new_token: Option<&str>,
) -> Result<Response, WebError> {
    let tokens = state
        .read(async |tx| Ok(tx.list_api_tokens(me.user.id).await?))
        .await?;
    let page = state.render(
        "tokens.html",
        Some(me),
        crate::pages::page! { tokens => tokens, new_token => new_token },
    )?;
    Ok(page.into_response())
}

pub(crate) async fn tokens(
    State(state): State<WebState>,
    SignedIn(me): SignedIn,
) -> Result<Response, WebError> {
    tokens_page(&state, &me, None).await
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    name: String,
}

pub(crate) async fn create_token(
    State(state): State<WebState>,
    Posted(me, form): Posted<TokenForm>,
) -> Result<Response, WebError> {
    let name = form.name.trim();
    if name.is_empty() {
        return Err(WebError::BadRequest("A token needs a name.".into()));
    }
    // A fixed prefix makes a leaked token easy to spot by secret scanners.
    let token = format!("pstn-{}", new_token()?);
    let mut tx = state.store().begin().await?;
    tx.create_api_token(me.user.id, name, &token_hash(&token), None)
        .await?;
    tx.commit().await?;
    tokens_page(&state, &me, Some(&token)).await
}

pub(crate) async fn revoke_token(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(me, _): Posted,
) -> Result<Response, WebError> {
    let revoked = state
        .write(async |tx| Ok(tx.revoke_api_token(me.user.id, id).await?))
        .await?;
    if !revoked {
        return Err(WebError::NotFound);
    }
    Ok(Redirect::to("/profile/tokens").into_response())
}
