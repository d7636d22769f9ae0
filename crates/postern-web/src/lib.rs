//! postern's face: the web UI, the JSON API, and the operations endpoints.
//!
//! - **Operations**: `/health` (the process answers), `/ready` (the store answers a query and
//!   every mail source is connected), `/metrics` (Prometheus text: what the process recorded
//!   through the `metrics` facade plus gauges computed from the store and the sources at scrape
//!   time).
//! - **Sign-in**: passwords (argon2), sessions in an HttpOnly, SameSite=Lax cookie whose id is
//!   stored hashed, a CSRF token on every form, and personal access tokens for the API. The first
//!   run offers a one-time setup link for the first administrator ([`setup_link`]). Failed
//!   sign-ins are throttled ([`ThrottlePolicy`]).
//! - **Mail desk** (administrators): every source's state, the inbound log with filters, the raw
//!   message, "process again", and the outbox.
//! - **Tracker**: projects, issues, tickets, merge requests and their comments (public
//!   projects readable signed out, except confidential issues and tickets); Markdown is
//!   rendered and then sanitised, so nothing in any email can run in a browser. Commenting and
//!   closing go through `postern_core::actions`, the same path as the CLI, so the same
//!   notifications go out as for mail.
//! - **Project settings** for maintainers, owners and administrators: members, Service Desk,
//!   the custom support address and its verification, through `postern_core::members`,
//!   `service_desk` and `authentication`; creating projects through `postern_core::projects`;
//!   accounts through `postern_core::users`.
//! - **JSON API** under `/api/v1`, authenticated by personal access token.
//! - **HTTPS of its own** ([`serve_tls`]), for installations without a reverse proxy: the
//!   certificate and key are swapped in place by [`ServerCertificate::reload`].
//!
//! Every page is server-rendered (minijinja templates, HTML auto-escaping) and carries a strict
//! Content-Security-Policy that allows no script at all.
//!
//! What this crate must never do: decide a tracker rule itself or call a rule-bearing `Tx`
//! write (it calls `postern-core`; the tidy test lists those writes), write to the store
//! outside a `Tx`, or print a password, session id or token.

#![deny(missing_docs)]

mod access;
mod admin;
mod api;
mod api_projects;
mod auth;
mod bidi;
mod comment_files;
mod desk;
mod error;
mod issue_list;
mod markdown;
mod merge_requests;
mod ops;
mod pages;
mod profile;
mod project_admin;
mod project_settings;
mod proxy;
mod relative_time;
mod secret;
mod session;
mod state;
mod threads;
mod throttle;
mod tls;
mod tracker;

use std::future::Future;

use axum::Router;
use axum::routing::{get, post};

pub use auth::{SetupLink, setup_link};
pub use error::WebError;
pub use markdown::render_markdown;
pub use ops::{install_metrics_recorder, record_receive};
pub use proxy::TrustedProxies;
pub use secret::{HashingLimits, SignInStats, hash_password};
pub use state::{Warnings, WebConfig, WebState};
pub use throttle::ThrottlePolicy;
pub use tls::{ServerCertificate, TlsError};

/// Every route of the UI, the API and the operations endpoints.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/static/favicon.svg", get(pages::favicon))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/setup", get(auth::setup_form).post(auth::setup))
        .route(
            "/profile/tokens",
            get(auth::tokens).post(auth::create_token),
        )
        .route("/profile/tokens/{id}/revoke", post(auth::revoke_token))
        .merge(profile::routes())
        .merge(desk::routes())
        .merge(tracker::routes())
        .merge(merge_requests::routes())
        .merge(threads::unsubscribe_routes())
        .merge(admin::routes())
        .merge(project_admin::routes())
        .nest("/api/v1", api::routes().merge(api_projects::routes()))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::error_pages,
        ))
        .layer(axum::middleware::from_fn(pages::security_headers))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then lets requests in flight
/// finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address is what sign-in throttling counts by.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// [`serve`] over HTTPS with `certificate`, which can be reloaded while serving: new
/// connections get the new pair, open ones keep theirs.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    certificate: std::sync::Arc<ServerCertificate>,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // `tap_io` does nothing to the stream: it gives the TLS listener axum's `ConnectInfo` of
    // the peer address, which axum provides for tapped listeners of any kind.
    let listener = tls::TlsListener::new(listener, certificate)?.tap_io(|_| {});
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
