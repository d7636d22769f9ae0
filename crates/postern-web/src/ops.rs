//! `/health`, `/ready` and `/metrics`, and the recorder the binary installs once.
//!
//! `/health` is open and says only `ok`. `/ready` and `/metrics` show mailbox locations, last
//! errors and counts, so they need an administrator: a signed-in administrator's session, or an
//! administrator's personal access token (`Authorization: Bearer …` or `PRIVATE-TOKEN`), which
//! is what a Prometheus scrape or a load balancer's probe sends. Anonymous requests get 401,
//! signed-in non-administrators 403.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use postern_core::ReceiveOutcome;
use postern_inbox::status::StatusSnapshot;
use postern_store::StateCount;

use crate::{WebError, WebState, session};

/// Seconds; processing one message is usually milliseconds, a git apply can take seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide Prometheus recorder behind the `metrics` macros and returns the
/// handle for [`WebState::with_metrics`]. Call once, at startup; a second call fails.
pub fn install_metrics_recorder() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)?
        .install_recorder()
}

/// Records one message's result: `postern_messages_total{outcome, error_kind, mailbox}`, the
/// `postern_processing_seconds` histogram and, for a verified message,
/// `postern_sender_authentication_total{dmarc, act_as_user}`. The binary calls it around
/// `Processor::receive`; without an installed recorder it does nothing.
pub fn record_receive(outcome: &ReceiveOutcome, mailbox: &str, elapsed: Duration) {
    metrics::counter!(
        "postern_messages_total",
        "outcome" => outcome.outcome.as_str(),
        "error_kind" => outcome.error.map_or("", postern_core::ErrorKind::as_str),
        "mailbox" => mailbox.to_owned(),
    )
    .increment(1);
    metrics::histogram!("postern_processing_seconds", "mailbox" => mailbox.to_owned())
        .record(elapsed.as_secs_f64());
    if let Some(authentication) = &outcome.authentication {
        metrics::counter!(
            "postern_sender_authentication_total",
            "dmarc" => authentication.dmarc.clone(),
            "act_as_user" => authentication.act_as_user.clone(),
        )
        .increment(1);
    }
}

/// Liveness: the process answers.
pub(crate) async fn health() -> &'static str {
    "ok"
}

#[derive(serde::Serialize)]
struct Readiness {
    ready: bool,
    store: String,
    sources: Vec<StatusSnapshot>,
    not_ready: Vec<String>,
    /// What an operator should know though the instance is ready.
    warnings: Vec<String>,
}

/// Lets an administrator through: by token when the request carries one (a token that is not
/// an administrator's is refused rather than falling back to the cookie), else by session.
async fn require_operator(state: &WebState, headers: &HeaderMap) -> Result<(), WebError> {
    let has_token =
        headers.contains_key(header::AUTHORIZATION) || headers.contains_key("private-token");
    let admin = if has_token {
        session::api_user(state, headers).await?.admin
    } else {
        let me = session::current(state, headers)
            .await?
            .ok_or(WebError::Unauthorized)?;
        me.user.admin
    };
    if admin {
        Ok(())
    } else {
        Err(WebError::Forbidden)
    }
}

/// Readiness: the store answers a query and every source is connected. 503 lists what is not.
/// Warnings (another instance on a mailbox without a shared store …) are listed without
/// making the instance unready: taking it out of service would not stop the other one.
pub(crate) async fn ready(State(state): State<WebState>, headers: HeaderMap) -> Response {
    if let Err(refused) = require_operator(&state, &headers).await {
        return refused.into_response();
    }
    let mut not_ready = Vec::new();
    let store = match state.store().ping().await {
        Ok(()) => "ok".to_owned(),
        Err(error) => {
            not_ready.push(format!("store: {error}"));
            "unavailable".to_owned()
        }
    };
    let sources: Vec<StatusSnapshot> = state.inner.sources.iter().map(|s| s.snapshot()).collect();
    for source in &sources {
        if !source.state.is_connected() {
            let mut line = format!("{} ({}): {:?}", source.name, source.kind, source.state);
            if let Some(error) = &source.last_error {
                let _ = write!(line, ": {error}");
            }
            not_ready.push(line);
        }
    }
    let ready = not_ready.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ready,
        store,
        sources,
        not_ready,
        warnings: state.inner.warnings.list(),
    };
    (status, Json(body)).into_response()
}

/// A gauge of rows per state, one line per state.
fn state_gauge(text: &mut String, (name, help): (&str, &str), rows: &[StateCount]) {
    gauge_header(text, name, help);
    for row in rows {
        let _ = writeln!(text, "{name}{{state=\"{}\"}} {}", row.state, row.count);
    }
}

/// Prometheus text: what the recorder collected, then the gauges read now.
pub(crate) async fn metrics(State(state): State<WebState>, headers: HeaderMap) -> Response {
    if let Err(refused) = require_operator(&state, &headers).await {
        return refused.into_response();
    }
    let mut text = state
        .inner
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    let sources: Vec<StatusSnapshot> = state.inner.sources.iter().map(|s| s.snapshot()).collect();
    source_gauges(&mut text, &sources);
    let counts = async {
        let mut tx = state.store().begin_read_only().await?;
        let inbound = tx.count_inbound_by_state().await?;
        let outbox = tx.count_outbox_by_state().await?;
        tx.rollback().await?;
        Ok::<_, postern_store::StoreError>((inbound, outbox))
    };
    let up = match counts.await {
        Ok((inbound, outbox)) => {
            state_gauge(
                &mut text,
                (
                    "postern_inbound_messages",
                    "Stored inbound messages by state.",
                ),
                &inbound,
            );
            state_gauge(
                &mut text,
                (
                    "postern_outbox_messages",
                    "Outbox entries by delivery state.",
                ),
                &outbox,
            );
            1
        }
        Err(error) => {
            tracing::warn!(error = %error, "metrics: store counts unavailable");
            0
        }
    };
    let stats = state.sign_in_stats();
    for (name, help, value) in [
        (
            "postern_sign_in_password_checks_total",
            "Password hashes and verifications run for sign-ins.",
            stats.password_checks,
        ),
        (
            "postern_sign_in_refused_busy_total",
            "Sign-ins refused because every hashing slot and waiting place was taken.",
            stats.refused_busy,
        ),
    ] {
        let _ = writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    gauge_header(
        &mut text,
        "postern_store_up",
        "Whether the store answered the scrape's queries.",
    );
    let _ = writeln!(text, "postern_store_up {up}");
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn gauge_header(text: &mut String, name: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// Label values come from configuration; quotes, backslashes and newlines are escaped as the
/// exposition format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A gauge family: name, help text, and its value for one source (none: not known).
type Family = (
    &'static str,
    &'static str,
    fn(&StatusSnapshot) -> Option<u64>,
);

fn source_gauges(text: &mut String, sources: &[StatusSnapshot]) {
    let families: [Family; 6] = [
        (
            "postern_source_connected",
            "1 when the source is connected.",
            |s| Some(u64::from(s.state.is_connected())),
        ),
        (
            "postern_source_backlog",
            "Messages waiting on the server, as last counted.",
            |s| s.backlog,
        ),
        (
            "postern_source_reconnects",
            "Reconnections since start.",
            |s| Some(s.reconnects),
        ),
        (
            "postern_source_messages_taken",
            "Messages taken in since start.",
            |s| Some(s.messages_taken),
        ),
        (
            "postern_source_last_message_timestamp_seconds",
            "When the last message was taken in.",
            |s| s.last_message_at.map(unix_seconds),
        ),
        (
            "postern_source_token_expiry_timestamp_seconds",
            "When the access token expires.",
            |s| s.token_expires_at.map(unix_seconds),
        ),
    ];
    for (name, help, value) in families {
        gauge_header(text, name, help);
        for source in sources {
            if let Some(v) = value(source) {
                let _ = writeln!(
                    text,
                    "{name}{{source=\"{}\",kind=\"{}\"}} {v}",
                    label(&source.name),
                    label(&source.kind)
                );
            }
        }
    }
}
