//! A stand-in for Microsoft Graph and its Azure AD token endpoint, on `127.0.0.1` with a random
//! port, for testing the Graph watcher where the real service cannot be reached.
//!
//! It checks what the real services check, with their status codes and error shapes:
//! - `POST /<tenant>/oauth2/v2.0/token`: a form with `grant_type=client_credentials`, the
//!   registered `client_id` and `client_secret` for the tenant in the path (a wrong secret is
//!   `401 invalid_client` with `AADSTS7000215`), and a `scope` ending in `/.default`. It issues
//!   random opaque tokens with a configurable `expires_in`, bound to the scope's resource.
//! - Every Graph call needs `Authorization: Bearer <issued, unexpired token for this server>`
//!   (`401 InvalidAuthenticationToken` otherwise); the user and folder in the path must exist
//!   (`404`). Supported: the folder, its message list (`$filter=isRead eq false`, `$top`,
//!   `$skip` with `@odata.nextLink`), `messages/<id>/$value`, `PATCH {"isRead": …}` (JSON
//!   checked) and `DELETE` (to the user's deleted items).
//!
//! Tests fill mailboxes, read flags back, inspect every request, and inject faults into the next
//! Graph calls ([`Fault`]) or expire every issued token. Like Graph under load, the stand-in can
//! throttle by itself ([`Throttling`], with `Retry-After` windows and a record of the calls that
//! did not wait for them) and take time over each call ([`GraphStandIn::set_latency`]), with the
//! most calls it had in hand at once recorded. The server stops when the value is dropped.

mod routes;
mod throttle;
mod tls;

pub use throttle::{IN_FLIGHT_GRACE, Refusal, Throttling, Violation};

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// A fault the next Graph call answers with instead of its normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests` with `Retry-After: <seconds>`.
    TooManyRequests {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u64,
    },
    /// `503 Service Unavailable` without `Retry-After`.
    Unavailable,
    /// The connection is closed without an answer.
    CloseConnection,
}

/// One message in a stand-in mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Graph's message id.
    pub id: String,
    /// The raw MIME returned by `/$value`.
    pub raw: Vec<u8>,
    /// The read flag.
    pub is_read: bool,
    /// How many times a `PATCH {"isRead": true}` was applied to it.
    pub read_marks: u32,
}

/// One request the stand-in answered (or closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `GET`, `POST`, `PATCH`, `DELETE` ….
    pub method: String,
    /// The path as sent (still percent-encoded).
    pub path: String,
    /// The query as sent, without `?`.
    pub query: String,
    /// The status answered; `0` when the connection was closed instead.
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
}

impl Recorded {
    /// Whether this was a call to the token endpoint.
    pub fn is_token_request(&self) -> bool {
        self.path.ends_with("/oauth2/v2.0/token")
    }
}

#[derive(Debug, Default)]
struct Folder {
    display_name: String,
    messages: Vec<StoredMessage>,
}

#[derive(Debug, Default)]
struct User {
    folders: HashMap<String, Folder>,
    deleted: Vec<StoredMessage>,
}

#[derive(Debug)]
struct Token {
    expires: Instant,
    audience: String,
}

#[derive(Debug)]
struct State {
    base: String,
    tenant_id: String,
    client_id: String,
    client_secret: String,
    token_lifetime: Duration,
    tokens: HashMap<String, Token>,
    tokens_issued: usize,
    users: HashMap<String, User>,
    faults: VecDeque<Fault>,
    method_faults: VecDeque<(String, Fault)>,
    requests: Vec<Recorded>,
    next_id: u64,
    throttle: throttle::Throttle,
    latency: Duration,
    in_flight: usize,
    max_in_flight: usize,
}

/// The running stand-in. Dropping it stops the server.
#[derive(Debug)]
pub struct GraphStandIn {
    url: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
    ca_file: Option<PathBuf>,
    /// Holds the certificates of an HTTPS stand-in.
    _tls_dir: Option<tempfile::TempDir>,
}

impl Drop for GraphStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl GraphStandIn {
    /// Starts a stand-in that knows one application: `client_id` with `client_secret` in
    /// `tenant_id`. Tokens last one hour until [`GraphStandIn::set_token_lifetime`].
    pub async fn start(tenant_id: &str, client_id: &str, client_secret: &str) -> GraphStandIn {
        GraphStandIn::start_with(tenant_id, client_id, client_secret, None).await
    }

    /// Like [`GraphStandIn::start`], but serving HTTPS with a certificate for `127.0.0.1`
    /// signed by a private CA ([`GraphStandIn::ca_file`]), made with Debian's `openssl`.
    pub async fn start_tls(tenant_id: &str, client_id: &str, client_secret: &str) -> GraphStandIn {
        let tls = tls::make();
        GraphStandIn::start_with(tenant_id, client_id, client_secret, Some(tls)).await
    }

    async fn start_with(
        tenant_id: &str,
        client_id: &str,
        client_secret: &str,
        tls: Option<tls::Tls>,
    ) -> GraphStandIn {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Graph stand-in on loopback");
        let address = listener.local_addr().expect("stand-in address");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{address}");
        let state = Arc::new(Mutex::new(State {
            base: url.clone(),
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            token_lifetime: Duration::from_secs(3600),
            tokens: HashMap::new(),
            tokens_issued: 0,
            users: HashMap::new(),
            faults: VecDeque::new(),
            method_faults: VecDeque::new(),
            requests: Vec::new(),
            next_id: 1,
            throttle: throttle::Throttle::default(),
            latency: Duration::ZERO,
            in_flight: 0,
            max_in_flight: 0,
        }));
        let (acceptor, ca_file, tls_dir) = match tls {
            Some(tls) => (Some(tls.acceptor), Some(tls.ca_file), Some(tls.dir)),
            None => (None, None, None),
        };
        let server = tokio::spawn(serve(listener, acceptor, state.clone()));
        GraphStandIn {
            url,
            state,
            server,
            ca_file,
            _tls_dir: tls_dir,
        }
    }

    /// The private CA's certificate (PEM file) of a stand-in started with
    /// [`GraphStandIn::start_tls`].
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The base URL (`http://127.0.0.1:<port>`): both the Azure AD and the Graph endpoint.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Adds mailbox `user` with an empty `inbox` folder.
    pub fn add_mailbox(&self, user: &str) {
        let mut state = self.lock();
        let mailbox = state.users.entry(user.to_ascii_lowercase()).or_default();
        mailbox.folders.entry("inbox".to_owned()).or_insert(Folder {
            display_name: "Inbox".to_owned(),
            messages: Vec::new(),
        });
    }

    /// Adds folder `folder` (addressed by this name) to mailbox `user`.
    pub fn add_folder(&self, user: &str, folder: &str) {
        let mut state = self.lock();
        let mailbox = state.users.entry(user.to_ascii_lowercase()).or_default();
        mailbox
            .folders
            .entry(folder.to_ascii_lowercase())
            .or_insert(Folder {
                display_name: folder.to_owned(),
                messages: Vec::new(),
            });
    }

    /// Adds an unread message to `folder` of `user` and returns its id.
    pub fn add_message(&self, user: &str, folder: &str, raw: &[u8]) -> String {
        self.insert(user, folder, raw, false)
    }

    /// Adds a message that is already read and returns its id.
    pub fn add_read_message(&self, user: &str, folder: &str, raw: &[u8]) -> String {
        self.insert(user, folder, raw, true)
    }

    fn insert(&self, user: &str, folder: &str, raw: &[u8], is_read: bool) -> String {
        let mut state = self.lock();
        // Real ids are long base64 strings ending in `=`; keep that shape so encoding is tested.
        let id = format!("AAMkAD{:08}-x/y+z=", state.next_id);
        state.next_id += 1;
        let folder = state
            .users
            .get_mut(&user.to_ascii_lowercase())
            .and_then(|u| u.folders.get_mut(&folder.to_ascii_lowercase()))
            .expect("add the mailbox and folder first");
        folder.messages.push(StoredMessage {
            id: id.clone(),
            raw: raw.to_vec(),
            is_read,
            read_marks: 0,
        });
        id
    }

    /// The messages now in `folder` of `user`, in insertion order.
    pub fn messages(&self, user: &str, folder: &str) -> Vec<StoredMessage> {
        self.lock()
            .users
            .get(&user.to_ascii_lowercase())
            .and_then(|u| u.folders.get(&folder.to_ascii_lowercase()))
            .map(|f| f.messages.clone())
            .unwrap_or_default()
    }

    /// The messages deleted from `user`'s folders, in deletion order.
    pub fn deleted(&self, user: &str) -> Vec<StoredMessage> {
        self.lock()
            .users
            .get(&user.to_ascii_lowercase())
            .map(|u| u.deleted.clone())
            .unwrap_or_default()
    }

    /// The `expires_in` of tokens issued from now on (whole seconds, at least one).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.lock().token_lifetime = lifetime.max(Duration::from_secs(1));
    }

    /// Makes every token issued so far expired, as if an hour had passed.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for token in self.lock().tokens.values_mut() {
            token.expires = now;
        }
    }

    /// The next `count` Graph calls (not token requests) answer with `fault`.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        let mut state = self.lock();
        state.faults.extend(std::iter::repeat_n(fault, count));
    }

    /// The next `count` Graph calls with `method` (`PATCH`, `DELETE` …) answer with `fault`;
    /// these are served before the ones of [`GraphStandIn::fail_next`].
    pub fn fail_next_method(&self, method: &str, count: usize, fault: Fault) {
        let mut state = self.lock();
        let entry = (method.to_ascii_uppercase(), fault);
        state
            .method_faults
            .extend(std::iter::repeat_n(entry, count));
    }

    /// Throttles Graph calls from now on as `plan` says.
    pub fn throttle(&self, plan: Throttling) {
        self.lock().throttle.set(plan);
    }

    /// How many Graph calls were refused by [`GraphStandIn::throttle`]'s plan (not counting the
    /// refusals of calls inside a window).
    pub fn throttle_refusals(&self) -> u64 {
        self.lock().throttle.refusals()
    }

    /// The calls that arrived inside a `Retry-After` window, later than
    /// [`IN_FLIGHT_GRACE`] after it opened.
    pub fn throttle_violations(&self) -> Vec<Violation> {
        self.lock().throttle.violations.clone()
    }

    /// Every Graph call (not token requests) is answered `latency` after it arrived, as a
    /// remote service would; the calls waiting meanwhile count as in hand.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// The most Graph calls the stand-in had in hand at once.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// How many tokens were issued.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens_issued
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

async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<Mutex<State>>,
) {
    // Dropping the set (when this task is aborted) aborts every connection with it.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                // A failed handshake (a client that does not trust the CA) ends the connection.
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(stream, state).await;
                    }
                }
                None => serve_connection(stream, state).await,
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn serve_connection(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    state: Arc<Mutex<State>>,
) {
    let service = service_fn(move |request| routes::handle(state.clone(), request));
    // A closed connection (fault injection, client gone) is not an error of the test.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}
