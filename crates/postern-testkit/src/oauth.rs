//! A stand-in for an OAuth 2.0 authorisation server (Google's or Microsoft's, for IMAP), on
//! `127.0.0.1` with a random port: a token endpoint, a device authorisation endpoint and an
//! introspection endpoint for Dovecot's `oauth2` passdb.
//!
//! It checks what Google's token endpoint checks:
//! - `grant_type=refresh_token`: the registered `client_id` and `client_secret`, and a refresh
//!   token it issued and has not revoked (`400 invalid_grant` otherwise). With rotation on (as
//!   Microsoft does), every use issues a new refresh token and revokes the one used.
//! - `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`: an RS256 `assertion` whose
//!   signature verifies with the registered service account's public key, whose `iss` is that
//!   account, `aud` this token endpoint, `scope` the one expected, `sub` a known user, and `exp`
//!   in the future and at most an hour after `iat`.
//! - `grant_type=urn:ietf:params:oauth:grant-type:device_code`: a device code it issued, the
//!   client's credentials, and the poll pace: the answers follow a script
//!   (`authorization_pending`, `slow_down`, then the tokens), and polls faster than the interval
//!   in force are recorded.
//!
//! Access tokens are random, bound to a user, and live [`OAuthStandIn::set_token_lifetime`].
//! `POST /introspect` (`token=…`) answers `{"active": true, "email": user}` for a live token and
//! `{"active": false}` otherwise, which is what Dovecot's `introspection_mode = post` reads.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The grant type of a JWT bearer assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The grant type of a device code poll.
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The scope service accounts must ask for (full IMAP access at Google).
pub const MAIL_SCOPE: &str = "https://mail.google.com/";

/// One device code poll as the stand-in saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    /// When it arrived.
    pub at: Instant,
    /// What it was answered (`authorization_pending`, `slow_down`, `ok`).
    pub answer: String,
}

struct Device {
    user: String,
    interval: Duration,
    last_poll: Option<Instant>,
    script: VecDeque<&'static str>,
}

struct State {
    client_id: String,
    client_secret: String,
    service_account: Option<(String, jsonwebtoken::DecodingKey)>,
    token_lifetime: Duration,
    rotate: bool,
    access: HashMap<String, (String, Instant)>,
    refresh: HashMap<String, String>,
    devices: HashMap<String, Device>,
    polls: Vec<Poll>,
    too_fast: usize,
    grants: Vec<String>,
    introspections: Vec<bool>,
}

/// The running stand-in. Dropping it stops the server.
pub struct OAuthStandIn {
    url: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl Drop for OAuthStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl OAuthStandIn {
    /// Starts a stand-in knowing one client, `client_id` with `client_secret`. Access tokens
    /// live an hour, refresh tokens are not rotated, no service account is known.
    pub async fn start(client_id: &str, client_secret: &str) -> OAuthStandIn {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OAuth stand-in on loopback");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            service_account: None,
            token_lifetime: Duration::from_secs(3600),
            rotate: false,
            access: HashMap::new(),
            refresh: HashMap::new(),
            devices: HashMap::new(),
            polls: Vec::new(),
            too_fast: 0,
            grants: Vec::new(),
            introspections: Vec::new(),
        }));
        let server = tokio::spawn(serve(listener, state.clone(), url.clone()));
        OAuthStandIn { url, state, server }
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.url)
    }

    /// The device authorisation endpoint.
    pub fn device_url(&self) -> String {
        format!("{}/device/code", self.url)
    }

    /// The introspection endpoint (for Dovecot's `introspection_url`).
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.url)
    }

    /// Registers a service account: its `client_email` and public key (PEM).
    pub fn add_service_account(&self, client_email: &str, public_key_pem: &[u8]) {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem)
            .expect("an RSA public key in PEM");
        self.lock().service_account = Some((client_email.to_owned(), key));
    }

    /// Issues a refresh token for `user`, as a completed login would have.
    pub fn issue_refresh_token(&self, user: &str) -> String {
        let token = format!("1//r-{}", random());
        self.lock().refresh.insert(token.clone(), user.to_owned());
        token
    }

    /// Whether `token` is a live refresh token.
    pub fn refresh_token_valid(&self, token: &str) -> bool {
        self.lock().refresh.contains_key(token)
    }

    /// Turns on rotation: each use of a refresh token revokes it and issues a new one.
    pub fn rotate_refresh_tokens(&self) {
        self.lock().rotate = true;
    }

    /// The lifetime (`expires_in`) of access tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.lock().token_lifetime = lifetime;
    }

    /// The grant type of every successful token request, in order.
    pub fn grants(&self) -> Vec<String> {
        self.lock().grants.clone()
    }

    /// Every device code poll, in order.
    pub fn polls(&self) -> Vec<Poll> {
        self.lock().polls.clone()
    }

    /// What each introspection answered (`active`), in order.
    pub fn introspections(&self) -> Vec<bool> {
        self.lock().introspections.clone()
    }

    /// Polls that came sooner than the interval in force allowed.
    pub fn polls_too_fast(&self) -> usize {
        self.lock().too_fast
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    match state.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn random() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>, base: String) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        let base = base.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), base.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

type Answer = Response<Full<Bytes>>;

async fn handle(
    state: Arc<Mutex<State>>,
    base: String,
    request: Request<Incoming>,
) -> Result<Answer, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    let post = request.method() == hyper::Method::POST;
    let body = match Limited::new(request.into_body(), 1 << 16).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let form: HashMap<String, String> = url_form(&body);
    let mut state = lock(&state);
    let answer = match (post, path.as_str()) {
        (true, "/token") => token(&mut state, &base, &form),
        (true, "/device/code") => device(&mut state, &base, &form),
        (true, "/introspect") => introspect(&mut state, &form),
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
    };
    Ok(answer)
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn answer(status: StatusCode, body: &Value) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body.to_string())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    answer
}

fn error(status: StatusCode, code: &str, description: &str) -> Answer {
    answer(
        status,
        &json!({"error": code, "error_description": description}),
    )
}

fn client_ok(state: &State, form: &HashMap<String, String>) -> Option<Answer> {
    if form.get("client_id") != Some(&state.client_id) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        ));
    }
    if form.get("client_secret") != Some(&state.client_secret) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Unauthorized",
        ));
    }
    None
}

fn issue(state: &mut State, user: &str, grant: &str, refresh: Option<String>) -> Answer {
    let access = format!("ya29.{}", random());
    let lifetime = state.token_lifetime;
    state
        .access
        .insert(access.clone(), (user.to_owned(), Instant::now() + lifetime));
    state.grants.push(grant.to_owned());
    let mut body = json!({
        "access_token": access,
        "expires_in": lifetime.as_secs(),
        "token_type": "Bearer",
        "scope": MAIL_SCOPE,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    answer(StatusCode::OK, &body)
}

fn token(state: &mut State, base: &str, form: &HashMap<String, String>) -> Answer {
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {
            if let Some(refused) = client_ok(state, form) {
                return refused;
            }
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let Some(user) = state.refresh.get(&presented).cloned() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Token has been expired or revoked.",
                );
            };
            let rotated = state.rotate.then(|| {
                state.refresh.remove(&presented);
                let next = format!("1//r-{}", random());
                state.refresh.insert(next.clone(), user.clone());
                next
            });
            issue(state, &user, "refresh_token", rotated)
        }
        Some(JWT_BEARER) => {
            let assertion = form.get("assertion").cloned().unwrap_or_default();
            match check_assertion(state, &format!("{base}/token"), &assertion) {
                Ok(user) => issue(state, &user, "service_account", None),
                Err(refusal) => *refusal,
            }
        }
        Some(DEVICE_CODE) => poll(state, form),
        _ => error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type.",
        ),
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    sub: Option<String>,
    aud: String,
    scope: Option<String>,
    iat: u64,
    exp: u64,
}

fn check_assertion(state: &State, audience: &str, assertion: &str) -> Result<String, Box<Answer>> {
    let invalid = |text: &str| Box::new(error(StatusCode::BAD_REQUEST, "invalid_grant", text));
    let Some((email, key)) = &state.service_account else {
        return Err(invalid("No service account is registered."));
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[email.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Claims>(assertion, key, &validation)
        .map_err(|e| invalid(&format!("Invalid JWT: {e}")))?
        .claims;
    if claims.iss != *email || claims.aud != audience {
        return Err(invalid("Invalid JWT: iss or aud."));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if claims.exp <= now || claims.exp > claims.iat + 3600 || claims.iat > now + 60 {
        return Err(invalid(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        ));
    }
    if claims.scope.as_deref() != Some(MAIL_SCOPE) {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        )));
    }
    match claims.sub {
        Some(sub) if !sub.is_empty() => Ok(sub),
        _ => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method.",
        ))),
    }
}

/// `POST /device/code`: hands out a code for the one user `device-user@example.test`.
fn device(state: &mut State, base: &str, form: &HashMap<String, String>) -> Answer {
    if let Some(refused) = client_ok(state, form) {
        return refused;
    }
    if form.get("scope").is_none_or(String::is_empty) {
        return error(StatusCode::BAD_REQUEST, "invalid_scope", "Missing scope.");
    }
    let code = random();
    let interval = Duration::from_secs(1);
    state.devices.insert(
        code.clone(),
        Device {
            user: "device-user@example.test".to_owned(),
            interval,
            last_poll: None,
            script: VecDeque::from(["authorization_pending", "slow_down"]),
        },
    );
    answer(
        StatusCode::OK,
        &json!({
            "device_code": code,
            "user_code": "WDJB-MJHT",
            "verification_url": format!("{base}/device"),
            "expires_in": 120,
            "interval": interval.as_secs(),
        }),
    )
}

fn poll(state: &mut State, form: &HashMap<String, String>) -> Answer {
    if let Some(refused) = client_ok(state, form) {
        return refused;
    }
    let code = form.get("device_code").cloned().unwrap_or_default();
    let now = Instant::now();
    let Some(device) = state.devices.get_mut(&code) else {
        return error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad device code.");
    };
    let too_fast = device
        .last_poll
        .is_some_and(|last| now.duration_since(last) < device.interval);
    device.last_poll = Some(now);
    let step = device.script.pop_front();
    if step == Some("slow_down") {
        device.interval += Duration::from_secs(5);
    }
    let user = device.user.clone();
    if too_fast {
        state.too_fast += 1;
    }
    state.polls.push(Poll {
        at: now,
        answer: step.unwrap_or("ok").to_owned(),
    });
    match step {
        Some(step) => error(StatusCode::PRECONDITION_REQUIRED, step, step),
        None => {
            state.devices.remove(&code);
            let refresh = format!("1//r-{}", random());
            state.refresh.insert(refresh.clone(), user.clone());
            issue(state, &user, "device_code", Some(refresh))
        }
    }
}

fn introspect(state: &mut State, form: &HashMap<String, String>) -> Answer {
    let token = form.get("token").cloned().unwrap_or_default();
    let user = match state.access.get(&token) {
        Some((user, expires)) if Instant::now() < *expires => Some(user.clone()),
        _ => None,
    };
    state.introspections.push(user.is_some());
    match user {
        Some(user) => answer(StatusCode::OK, &json!({"active": true, "email": user})),
        None => answer(StatusCode::OK, &json!({"active": false})),
    }
}
