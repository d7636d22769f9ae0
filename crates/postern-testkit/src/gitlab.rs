//! A local stand-in for GitLab's internal mail_room API (`lib/api/internal/mail_room.rb`), on
//! 127.0.0.1, that checks what GitLab checks:
//!
//! - `POST /api/v4/internal/mail_room/<incoming_email|service_desk_email>`; another mailbox
//!   type, or one that is not enabled (no secret configured), is 401;
//! - the token in `Gitlab-Mailroom-Api-Request`, verified with the algorithm fixed by the
//!   configuration, never by the token: HS256 with the mailbox's own 32-byte secret (a token
//!   signed with the other mailbox's secret is 401), or ES256 with the configured public key
//!   when the token has a `kid`; `iss` must be `gitlab-mailroom`; `iat` must be present, at
//!   most 5 minutes old and not in the future; otherwise 401;
//! - `Content-Type: text/plain` (anything else 415), and the size limit GitLab's Sidekiq size
//!   limiter applies: over it, 400 `{"success": false, "message": <EmailTooLarge text>}`.
//!
//! Accepted messages are recorded byte for byte and answered 200 `{"success": true}`. Fault
//! knobs: answer 500 to the next N requests, a delay before each answer, and going down (every
//! connection dropped, the port closed) and coming back on the same port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::task::JoinSet;

/// GitLab's `EmailTooLarge` reject text.
pub const TOO_LARGE: &str = "We couldn't process your email because it is too large. Please create your issue or comment through the web interface.";

/// How the stand-in is configured for one mailbox type.
#[derive(Clone, Default)]
pub struct MailboxAuth {
    /// The decoded HS256 secret (32 bytes), or `None`: the mailbox is not enabled.
    pub secret: Option<Vec<u8>>,
    /// ES256: a PEM public key and its `kid`.
    pub es256: Option<(Vec<u8>, String)>,
}

/// The stand-in's configuration.
#[derive(Clone, Default)]
pub struct GitlabConfig {
    /// `incoming_email`.
    pub incoming: MailboxAuth,
    /// `service_desk_email`.
    pub service_desk: MailboxAuth,
    /// Size limit in bytes (GitLab's default is unlimited).
    pub max_size: Option<usize>,
}

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// `incoming_email` or `service_desk_email`.
    pub mailbox: String,
    /// The body exactly as received.
    pub body: Vec<u8>,
    /// The token's `nonce`, if any.
    pub nonce: Option<String>,
}

struct State {
    config: GitlabConfig,
    received: Mutex<Vec<Received>>,
    fail_next: AtomicU32,
    /// Bodies containing this are answered 422, as a proxy or a GitLab bug might refuse one
    /// message for good.
    refused_marker: Mutex<Option<Vec<u8>>>,
    delay_ms: AtomicU64,
    requests: AtomicU64,
    unauthorized: AtomicU64,
}

/// The running stand-in. Stopped when dropped.
pub struct GitlabStandIn {
    addr: SocketAddr,
    state: Arc<State>,
    tasks: Option<JoinSet<()>>,
}

impl GitlabStandIn {
    /// Starts on a free loopback port.
    pub async fn start(config: GitlabConfig) -> GitlabStandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the GitLab stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        let state = Arc::new(State {
            config,
            received: Mutex::new(Vec::new()),
            fail_next: AtomicU32::new(0),
            refused_marker: Mutex::new(None),
            delay_ms: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
        });
        let mut stand_in = GitlabStandIn {
            addr,
            state,
            tasks: None,
        };
        stand_in.serve(listener);
        stand_in
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let mut tasks = JoinSet::new();
        let state = self.state.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
                // Reap finished connections so the set does not grow without bound.
                while connections.try_join_next().is_some() {}
            }
        });
        self.tasks = Some(tasks);
    }

    /// `http://127.0.0.1:<port>`: GitLab's URL (`gitlab_url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every accepted message, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// How many requests arrived (accepted or not).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// How many requests were answered 401.
    pub fn unauthorized(&self) -> u64 {
        self.state.unauthorized.load(Ordering::SeqCst)
    }

    /// Answers 500 to the next `n` requests.
    pub fn fail_next(&self, n: u32) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Answers 422 to every message whose body contains `marker` (fault injection).
    pub fn refuse_containing(&self, marker: &[u8]) {
        if let Ok(mut refused) = self.state.refused_marker.lock() {
            *refused = Some(marker.to_vec());
        }
    }

    /// Waits this long before answering each request.
    pub fn set_delay(&self, delay: Duration) {
        self.state.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Closes the port and drops every open connection.
    pub async fn go_down(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            // Aborting the accept loop drops its listener and its set of connections.
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&mut self) {
        self.go_down().await;
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("re-bind the GitLab stand-in's port");
        self.serve(listener);
    }
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, body: serde_json::Value) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn unauthorized(state: &State) -> Answer {
    state.unauthorized.fetch_add(1, Ordering::SeqCst);
    answer(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({"message": "401 Unauthorized"}),
    )
}

async fn handle(state: &State, req: Request<Incoming>) -> Answer {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let path = req.uri().path().to_owned();
    let Some(mailbox) = path.strip_prefix("/api/v4/internal/mail_room/") else {
        return answer(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "404 Not Found"}),
        );
    };
    if req.method() != hyper::Method::POST {
        return answer(
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({"error": "405 Not Allowed"}),
        );
    }
    let auth = match mailbox {
        "incoming_email" => &state.config.incoming,
        "service_desk_email" => &state.config.service_desk,
        _ => return unauthorized(state),
    };
    let token = req
        .headers()
        .get("Gitlab-Mailroom-Api-Request")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(claims) = token.as_deref().and_then(|t| verify(auth, t)) else {
        return unauthorized(state);
    };
    if state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"message": "500 Internal Server Error"}),
        );
    }
    if content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or("").trim())
        != Some("text/plain")
    {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            serde_json::json!({"error": "The provided content-type is not supported."}),
        );
    }
    let Ok(body) = req.into_body().collect().await else {
        return answer(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "bad body"}),
        );
    };
    let body = body.to_bytes().to_vec();
    let refused = state.refused_marker.lock().ok().and_then(|marker| {
        marker.as_ref().map(|marker| {
            body.windows(marker.len())
                .any(|window| window == marker.as_slice())
        })
    });
    if refused == Some(true) {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({"message": "422 Unprocessable Entity"}),
        );
    }
    if state.config.max_size.is_some_and(|max| body.len() > max) {
        return answer(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"success": false, "message": TOO_LARGE}),
        );
    }
    let nonce = claims
        .get("nonce")
        .and_then(|n| n.as_str())
        .map(str::to_owned);
    if let Ok(mut received) = state.received.lock() {
        received.push(Received {
            mailbox: mailbox.to_owned(),
            body,
            nonce,
        });
    }
    answer(StatusCode::OK, serde_json::json!({"success": true}))
}

/// GitLab's `decode_jwt` with the issuer and 5-minute `iat` checks; the algorithm comes from
/// the configuration (ES256 only when a key is configured and the token names a `kid`).
fn verify(auth: &MailboxAuth, token: &str) -> Option<serde_json::Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let (key, algorithm) = match (&auth.es256, header.kid) {
        (Some((pem, kid)), Some(token_kid)) => {
            if *kid != token_kid {
                return None;
            }
            (DecodingKey::from_ec_pem(pem).ok()?, Algorithm::ES256)
        }
        _ => (
            DecodingKey::from_secret(auth.secret.as_ref()?),
            Algorithm::HS256,
        ),
    };
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims = ["iss".to_owned()].into_iter().collect();
    validation.validate_exp = false;
    validation.set_issuer(&["gitlab-mailroom"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).ok()?;
    let iat = data.claims.get("iat")?.as_i64()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let now = i64::try_from(now).ok()?;
    if iat < now - 300 || iat > now {
        return None;
    }
    Some(data.claims)
}

/// Writes `secret` as GitLab does (`Base64.strict_encode64`, mode 0600) to `path`.
pub fn write_secret_file(path: &std::path::Path, secret: &[u8]) {
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(
        path,
        base64::engine::general_purpose::STANDARD.encode(secret),
    )
    .expect("write the secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 0600");
}
