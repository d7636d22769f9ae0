//! [`WebError`]: every way a request can fail, and the response each one becomes; and
//! [`Path`], the path parameters of a page, where a value that does not parse is a missing page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
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
    /// The status and text of a refusal the person can fix in the form they sent (a bad
    /// field, a rule, a clash), to show beside the form kept as typed; `None` for the rest.
    pub(crate) fn form_problem(&self) -> Option<(StatusCode, &str)> {
        match self {
            WebError::BadRequest(text) => Some((StatusCode::BAD_REQUEST, text)),
            WebError::Refused(text) => Some((StatusCode::UNPROCESSABLE_ENTITY, text)),
            WebError::Conflict(text) => Some((StatusCode::CONFLICT, text)),
            _ => None,
        }
    }

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

/// What a failed page shows, carried in the response's extensions from [`WebError`] to
/// `pages::error_pages`, which renders it inside the layout (that layer has the templates and
/// the session; `into_response` has neither). Without that layer the plain text stands.
#[derive(Debug, Clone)]
pub(crate) struct ErrorPage {
    /// The page's heading.
    pub(crate) heading: &'static str,
    /// What went wrong, in words for the person.
    pub(crate) text: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if matches!(self, WebError::LoginRequired) {
            // The page asked for is put back by `pages::error_pages`, which sees the request.
            let mut response =
                (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
            response.extensions_mut().insert(SignInFirst);
            return response;
        }
        let retry_after = self.retry_after();
        let (status, text) = self.status_and_text();
        let heading = match status {
            StatusCode::NOT_FOUND => "Page not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT => "Not done",
            StatusCode::BAD_REQUEST => "Something in the form was wrong",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
            _ => "Something went wrong",
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text.clone(),
        )
            .into_response();
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
            .extensions_mut()
            .insert(ErrorPage { heading, text });
        response
    }
}

/// Marks the redirect of [`WebError::LoginRequired`], so `pages::error_pages` can add the page
/// asked for to the sign-in address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignInFirst;

/// A page's path parameters, as axum's `Path` reads them, except that a value that does not
/// parse (`/projects/abc`) is [`WebError::NotFound`]: no page has that address, and axum's
/// own answer would be a 400 naming Rust types.
pub(crate) struct Path<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => {
                tracing::debug!(error = %rejection, "path parameters do not parse: not found");
                Err(WebError::NotFound)
            }
        }
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
