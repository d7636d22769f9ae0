//! [`WebError`]: every way a request can fail, and the response each one becomes.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use postern_core::ProcessError;
use postern_store::StoreError;

/// Why a request failed. Internal details go to the log, never to the response.
#[derive(Debug)]
pub enum WebError {
    /// No such page, or one the user may not know exists (private projects look missing).
    NotFound,
    /// Signed in, but not allowed.
    Forbidden,
    /// A browser without a session: sent to the sign-in page.
    LoginRequired,
    /// An API call without a valid token.
    Unauthorized,
    /// The form or query was wrong; the text is shown.
    BadRequest(String),
    /// The tracker refused the change (GitLab's reason text is shown).
    Refused(String),
    /// The change clashes with what exists (the text is shown).
    Conflict(String),
    /// Too many failed sign-ins; try again after this many seconds.
    TooManyAttempts(u64),
    /// The database or disk is unavailable for now.
    Unavailable(String),
    /// A bug or broken invariant.
    Internal(String),
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebError::NotFound => f.write_str("not found"),
            WebError::Forbidden => f.write_str("forbidden"),
            WebError::LoginRequired => f.write_str("sign-in required"),
            WebError::Unauthorized => f.write_str("unauthorized"),
            WebError::BadRequest(text) => write!(f, "bad request: {text}"),
            WebError::Refused(text) => write!(f, "refused: {text}"),
            WebError::Conflict(text) => write!(f, "conflict: {text}"),
            WebError::TooManyAttempts(seconds) => {
                write!(f, "too many failed sign-ins, retry after {seconds} s")
            }
            WebError::Unavailable(text) => write!(f, "temporarily unavailable: {text}"),
            WebError::Internal(text) => write!(f, "internal error: {text}"),
        }
    }
}

impl std::error::Error for WebError {}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> Self {
        if error.is_temporary() {
            WebError::Unavailable(error.to_string())
        } else {
            WebError::Internal(error.to_string())
        }
    }
}

impl From<ProcessError> for WebError {
    fn from(error: ProcessError) -> Self {
        match error {
            ProcessError::Rejected(rejection) => WebError::Refused(rejection.reason),
            ProcessError::Temporary(text) => WebError::Unavailable(text),
            ProcessError::Internal(text) => WebError::Internal(text),
        }
    }
}

impl From<minijinja::Error> for WebError {
    fn from(error: minijinja::Error) -> Self {
        WebError::Internal(format!("template: {error:#}"))
    }
}

impl WebError {
    /// The `Retry-After` header value a refusal carries, if any.
    pub(crate) fn retry_after(&self) -> Option<axum::http::HeaderValue> {
        match self {
            WebError::TooManyAttempts(seconds) => Some(axum::http::HeaderValue::from(*seconds)),
            _ => None,
        }
    }

    /// The status and the text shown to the client (details of server-side failures only go
    /// to the log).
    fn status_and_text(self) -> (StatusCode, String) {
        match self {
            WebError::NotFound => (StatusCode::NOT_FOUND, "Not found".to_owned()),
            WebError::Forbidden => (StatusCode::FORBIDDEN, "Forbidden".to_owned()),
            WebError::LoginRequired => (StatusCode::UNAUTHORIZED, "Sign-in required".to_owned()),
            WebError::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized".to_owned()),
            WebError::BadRequest(text) => (StatusCode::BAD_REQUEST, text),
            WebError::Refused(text) => (StatusCode::UNPROCESSABLE_ENTITY, text),
            WebError::Conflict(text) => (StatusCode::CONFLICT, text),
            WebError::TooManyAttempts(seconds) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed sign-ins. Try again in {} minute(s).",
                    seconds.div_ceil(60)
                ),
            ),
            WebError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "web request: temporarily unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable, try again".to_owned(),
                )
            }
            WebError::Internal(detail) => {
                tracing::error!(error = %detail, "web request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error".to_owned(),
                )
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if matches!(self, WebError::LoginRequired) {
            return (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
        }
        let retry_after = self.retry_after();
        let (status, text) = self.status_and_text();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response();
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// A [`WebError`] answered as JSON (`{"message": "…"}`), for the API.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) WebError);

impl<E> From<E> for ApiError
where
    WebError: From<E>,
{
    fn from(error: E) -> Self {
        ApiError(WebError::from(error))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.0.retry_after();
        let (status, message) = self.0.status_and_text();
        let mut response = (
            status,
            axum::Json(serde_json::json!({ "message": message })),
        )
            .into_response();
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
