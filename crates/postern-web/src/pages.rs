//! Page rendering: the templates, the common layout context, the stylesheet, and the security
//! headers every response carries.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};

use crate::error::{ErrorPage, SignInFirst};
use crate::session::Me;
use crate::{WebError, WebState};

/// No script from anywhere, images and styles only from this site, forms only to this site,
/// never framed. Mail content is sanitised as well; this is the second wall.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; img-src 'self'; \
     style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("error.html", include_str!("../templates/error.html")),
    (
        "new_issue.html",
        include_str!("../templates/new_issue.html"),
    ),
    ("profile.html", include_str!("../templates/profile.html")),
    ("password.html", include_str!("../templates/password.html")),
    ("setup.html", include_str!("../templates/setup.html")),
    ("tokens.html", include_str!("../templates/tokens.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("project.html", include_str!("../templates/project.html")),
    ("issue.html", include_str!("../templates/issue.html")),
    (
        "unsubscribe.html",
        include_str!("../templates/unsubscribe.html"),
    ),
    (
        "merge_request.html",
        include_str!("../templates/merge_request.html"),
    ),
    ("desk.html", include_str!("../templates/desk.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("outbox.html", include_str!("../templates/outbox.html")),
    (
        "outbox_mail.html",
        include_str!("../templates/outbox_mail.html"),
    ),
    ("users.html", include_str!("../templates/users.html")),
    (
        "projects_admin.html",
        include_str!("../templates/projects_admin.html"),
    ),
    (
        "project_admin.html",
        include_str!("../templates/project_admin.html"),
    ),
];

/// A page's values: `page! { name => value, … }`, each value anything `Serialize`.
macro_rules! page {
    ($($key:ident => $value:expr),* $(,)?) => {{
        let mut map = std::collections::BTreeMap::<&'static str, minijinja::Value>::new();
        $( map.insert(stringify!($key), minijinja::Value::from(minijinja::value::Serde(&$value))); )*
        minijinja::Value::from(map)
    }};
}

pub(crate) use page;

/// The template set. `.html` names are auto-escaped, so text from mail is inert unless a
/// template marks it `|safe` — which only sanitised Markdown output is.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Relative times ("3 hours ago") with the exact time for a `title`.
    env.add_filter("when", crate::relative_time::when);
    for (name, source) in TEMPLATES {
        if let Err(error) = env.add_template(name, source) {
            // The templates are compiled into the binary; the page test renders each one.
            tracing::error!(template = name, error = %error, "template does not compile");
        }
    }
    env
}

impl WebState {
    /// Renders template `name` with `page`, plus the layout's values (instance name, the
    /// signed-in user and their CSRF token).
    pub(crate) fn render(
        &self,
        name: &str,
        me: Option<&Me>,
        page: Value,
    ) -> Result<Html<String>, WebError> {
        let template = self.inner.templates.get_template(name)?;
        let html = template.render(context! {
            instance => &self.config().instance_name,
            me => me.map(|m| context! {
                id => m.user.id,
                username => &m.user.username,
                admin => m.user.admin,
            }),
            csrf => me.map(|m| m.csrf.as_str()),
            ..page
        })?;
        Ok(Html(crate::bidi::isolate_bidi_controls(html)))
    }
}

/// Adds the security headers to every response (a handler may have set its own first).
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Puts a failed page inside the layout: a [`WebError`] becomes its plain text plus an
/// [`ErrorPage`], rendered here with the signed-in person's header (a 404 or 403 a person can
/// leave by the menu). A sign-in redirect of a page read (`GET`) carries the page asked for,
/// so signing in returns there. The API keeps its JSON; anything else passes unchanged.
pub(crate) async fn error_pages(
    State(state): State<WebState>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers().clone();
    let asked = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let read = request.method() == Method::GET;
    let response = next.run(request).await;
    if asked.starts_with("/api/") {
        return response;
    }
    if response.extensions().get::<SignInFirst>().is_some() {
        return match crate::auth::safe_next(&asked) {
            Some(next) if read && next != "/" => (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, crate::auth::sign_in_address(next))],
            )
                .into_response(),
            _ => response,
        };
    }
    let Some(error) = response.extensions().get::<ErrorPage>().cloned() else {
        return response;
    };
    // The session is looked up again only for a failed page; a failure to find it (the store
    // being what failed) shows the page signed out rather than hiding the error.
    let me = crate::session::current(&state, &headers)
        .await
        .ok()
        .flatten();
    let status = response.status();
    let page = page! { status => status.as_u16(), heading => error.heading, message => error.text };
    match state.render("error.html", me.as_ref(), page) {
        Ok(html) => {
            let mut page = (status, html).into_response();
            if let Some(retry_after) = response.headers().get(header::RETRY_AFTER) {
                page.headers_mut()
                    .insert(header::RETRY_AFTER, retry_after.clone());
            }
            page
        }
        Err(error) => {
            tracing::error!(%error, "error page does not render");
            response
        }
    }
}

/// The one stylesheet (no build step).
pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../templates/style.css"),
    )
}

/// The icon browsers show in tabs: an envelope, drawn in SVG (no binary in the repository).
pub(crate) async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("../templates/favicon.svg"),
    )
}
