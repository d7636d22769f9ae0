//! Who is asking: the session cookie of a browser, or the access token of an API client.

use axum::Form;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use postern_store::{Timestamp, User, WebSession};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::secret::{new_token, same_secret, token_hash};
use crate::{WebError, WebState};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "postern_session";
/// The cookie that protects the sign-in form itself (double submit: no session exists yet).
pub(crate) const LOGIN_COOKIE: &str = "postern_login";

/// A signed-in person, with the CSRF token their forms carry.
#[derive(Debug, Clone)]
pub(crate) struct Me {
    pub(crate) user: User,
    pub(crate) csrf: String,
}

impl Me {
    /// Refuses a form whose CSRF token is not this session's.
    pub(crate) fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        if same_secret(&self.csrf, sent) {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }

    pub(crate) fn require_admin(&self) -> Result<(), WebError> {
        if self.user.admin {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }
}

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`, `Secure` when configured.
pub(crate) fn set_cookie(
    state: &WebState,
    name: &str,
    value: &str,
    max_age: u64,
) -> Result<HeaderValue, WebError> {
    let secure = if state.config().secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .map_err(|e| WebError::Internal(format!("cookie: {e}")))
}

/// A redirect (303) to `location` that sets or clears the session cookie (sign-in, setup,
/// sign-out). `location` is this site's own path (`auth::safe_next` checks one a browser sent).
pub(crate) fn redirect_with_cookie(cookie: HeaderValue, location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::SET_COOKIE, cookie)],
        [(header::LOCATION, location)],
    )
        .into_response()
}

/// The signed-in user of this browser, if any (blocked users are signed out).
pub(crate) async fn current(state: &WebState, headers: &HeaderMap) -> Result<Option<Me>, WebError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let mut tx = state.store().begin_read_only().await?;
    let Some(session) = tx.session(&token_hash(id), Timestamp::now()).await? else {
        return Ok(None);
    };
    let user = tx.user_by_id(session.user_id).await?;
    tx.rollback().await?;
    Ok(user.filter(|u| !u.is_blocked()).map(|user| Me {
        user,
        csrf: session.csrf_token,
    }))
}

/// [`current`], or a redirect to the sign-in page.
pub(crate) async fn require(state: &WebState, headers: &HeaderMap) -> Result<Me, WebError> {
    current(state, headers)
        .await?
        .ok_or(WebError::LoginRequired)
}

/// [`require`] for administrators.
pub(crate) async fn require_admin(state: &WebState, headers: &HeaderMap) -> Result<Me, WebError> {
    let me = require(state, headers).await?;
    me.require_admin()?;
    Ok(me)
}

/// A handler's argument for whoever is asking in a browser: the signed-in person, or `None`
/// for a signed-out visitor ([`current`]).
pub(crate) struct Viewer(pub(crate) Option<Me>);

impl FromRequestParts<WebState> for Viewer {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        Ok(Viewer(current(state, &parts.headers).await?))
    }
}

/// A handler's argument for a signed-in person ([`require`]: the sign-in page otherwise); a
/// form handler takes [`Posted`] instead.
pub(crate) struct SignedIn(pub(crate) Me);

impl FromRequestParts<WebState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        Ok(SignedIn(require(state, &parts.headers).await?))
    }
}

/// A handler's argument for a signed-in administrator ([`require_admin`]); a form handler
/// takes [`AdminPosted`] instead.
pub(crate) struct Admin(pub(crate) Me);

impl FromRequestParts<WebState> for Admin {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        Ok(Admin(require_admin(state, &parts.headers).await?))
    }
}

/// A handler's argument for a form a signed-in person sent: the person, and the form's fields
/// `F` (none by default). The form is read as `Form` reads it (its content type, its fields),
/// then the session, then the form's CSRF token, which must be this session's (403).
pub(crate) struct Posted<F = NoFields>(pub(crate) Me, pub(crate) F);

/// [`Posted`] for administrators (403 for anyone else).
pub(crate) struct AdminPosted<F = NoFields>(pub(crate) Me, pub(crate) F);

/// A form with no fields but its CSRF token.
#[derive(Deserialize)]
pub(crate) struct NoFields {}

/// Every form's CSRF token, read beside its fields.
#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

/// The fields and the token of a posted form, and who sent it ([`Posted`]).
async fn posted<F: DeserializeOwned>(
    request: Request,
    state: &WebState,
) -> Result<(Me, F), Response> {
    let headers = request.headers().clone();
    let body = Bytes::from_request(request, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let Form(fields) = Form::<F>::from_request(form_request(&headers, body.clone()), state)
        .await
        .map_err(IntoResponse::into_response)?;
    let Form(token) = Form::<Token>::from_request(form_request(&headers, body), state)
        .await
        .map_err(IntoResponse::into_response)?;
    let me = require(state, &headers)
        .await
        .map_err(IntoResponse::into_response)?;
    me.check_csrf(&token.csrf)
        .map_err(IntoResponse::into_response)?;
    Ok((me, fields))
}

/// The posted `body` again, as a request `Form` reads (method and content type).
fn form_request(headers: &HeaderMap, body: Bytes) -> Request {
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = axum::http::Method::POST;
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        request
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    request
}

impl<F: DeserializeOwned + Send> FromRequest<WebState> for Posted<F> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, Response> {
        let (me, fields) = posted(request, state).await?;
        Ok(Posted(me, fields))
    }
}

impl<F: DeserializeOwned + Send> FromRequest<WebState> for AdminPosted<F> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, Response> {
        let (me, fields) = posted(request, state).await?;
        me.require_admin().map_err(IntoResponse::into_response)?;
        Ok(AdminPosted(me, fields))
    }
}

/// Starts a session for `user_id`; returns the `Set-Cookie` header value.
pub(crate) async fn start(state: &WebState, user_id: i64) -> Result<HeaderValue, WebError> {
    let id = new_token()?;
    let now = Timestamp::now();
    let lifetime = state.config().session_lifetime.as_secs();
    let mut tx = state.store().begin().await?;
    tx.delete_expired_sessions(now).await?;
    tx.create_session(&WebSession {
        id_hash: token_hash(&id),
        user_id,
        csrf_token: new_token()?,
        created_at: now,
        expires_at: now.plus_seconds(i64::try_from(lifetime).unwrap_or(i64::MAX)),
    })
    .await?;
    tx.commit().await?;
    set_cookie(state, SESSION_COOKIE, &id, lifetime)
}

/// Ends this browser's session; returns the header that clears the cookie.
pub(crate) async fn end(state: &WebState, headers: &HeaderMap) -> Result<HeaderValue, WebError> {
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        let mut tx = state.store().begin().await?;
        tx.delete_session(&token_hash(id)).await?;
        tx.commit().await?;
    }
    set_cookie(state, SESSION_COOKIE, "", 0)
}

/// The user behind the API request's token (`Authorization: Bearer …` or `PRIVATE-TOKEN`).
pub(crate) async fn api_user(state: &WebState, headers: &HeaderMap) -> Result<User, WebError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("private-token").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(WebError::Unauthorized)?;
    let mut tx = state.store().begin().await?;
    let found = tx
        .use_api_token(&token_hash(token), Timestamp::now())
        .await?;
    let user = match found {
        Some(found) => tx.user_by_id(found.user_id).await?,
        None => None,
    };
    tx.commit().await?;
    user.filter(|u| !u.is_blocked())
        .ok_or(WebError::Unauthorized)
}

/// A handler's argument for the API caller, by token (401 as JSON without one).
pub(crate) struct ApiUser(pub(crate) User);

impl FromRequestParts<WebState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, ApiError> {
        Ok(ApiUser(api_user(state, &parts.headers).await?))
    }
}

/// A handler's argument for an API caller who must be an administrator (403 otherwise).
pub(crate) struct ApiAdmin(pub(crate) User);

impl FromRequestParts<WebState> for ApiAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, ApiError> {
        let user = api_user(state, &parts.headers).await?;
        if user.admin {
            Ok(ApiAdmin(user))
        } else {
            Err(WebError::Forbidden.into())
        }
    }
}
