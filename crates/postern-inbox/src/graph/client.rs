//! The Microsoft Graph calls the watcher makes, each with a bearer token, an explicit timeout
//! and one retry with a fresh token after `401`.
//!
//! A throttled request (`429`, `503`, `504`, `509`) is sent again by [`GraphClient`] itself,
//! after the server's `Retry-After` (seconds or an HTTP date) or, without one, after a capped
//! exponential back-off with jitter ([`Backoff`]), at most [`MAX_ATTEMPTS`] times. Graph
//! throttles per application and mailbox, so the wait holds back every request of this client
//! (the [`Gate`]), not only the refused one: a request sent inside the window would only be
//! refused again and, on real Graph, lengthen it. The caller therefore sees a throttle only when
//! it lasts, and keeps the progress of its pass.
//!
//! Answers are classified into [`GraphError`] here so the watcher only decides what to do next:
//! a throttle that outlasted the attempts is [`GraphError::Throttled`] with the server's
//! `Retry-After`, `404` is [`GraphError::NotFound`] (a message someone else moved), anything else
//! is kept with Graph's own `error.code` and `error.message`.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;

use super::{GraphError, GraphSettings};
use crate::headers::header_block;
use crate::http::{self, describe, join};
use crate::intake::MAX_HEADER_BLOCK;
use crate::oauth::{AccessToken, TokenSource};
use postern_vocab::Backoff;

/// A listing page or a small call (PATCH, DELETE, folder) may take this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Downloading one raw message may take this long.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest error text kept from a Graph answer.
const MAX_ERROR_TEXT: usize = 300;
/// How many times one request is sent while Graph throttles it.
pub(crate) const MAX_ATTEMPTS: u32 = 6;
/// The longest `Retry-After` honoured as given; longer ones are shortened to this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// The first wait after a throttled answer without `Retry-After`; it doubles per attempt.
const THROTTLE_FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait after a throttled answer without `Retry-After`.
const THROTTLE_MAX_WAIT: Duration = Duration::from_secs(30);

/// A downloaded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Downloaded {
    /// The raw MIME, or only its header block when `oversized` is set.
    pub raw: Vec<u8>,
    /// Over the size limit: the declared size (`Content-Length`), or at least the bytes seen.
    pub oversized: Option<u64>,
}

/// One message of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub id: String,
    pub is_read: bool,
}

/// One page of a listing and where the next one is.
#[derive(Debug)]
pub(crate) struct Page {
    pub messages: Vec<Listed>,
    pub next: Option<Url>,
}

/// What `GET mailFolders/<folder>` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Folder {
    pub display_name: String,
    pub unread: u64,
    pub total: u64,
}

#[derive(Deserialize)]
struct ListBody {
    #[serde(default)]
    value: Vec<ListItem>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct ListItem {
    id: String,
    #[serde(rename = "isRead", default)]
    is_read: bool,
}

#[derive(Deserialize)]
struct FolderBody {
    #[serde(rename = "displayName", default)]
    display_name: String,
    #[serde(rename = "unreadItemCount", default)]
    unread: u64,
    #[serde(rename = "totalItemCount", default)]
    total: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
}

/// The moment before which no request of one client is sent, after a throttled answer.
#[derive(Debug, Default)]
struct Gate {
    closed_until: Mutex<Option<Instant>>,
}

impl Gate {
    /// Returns once the gate is open (at once when it is).
    async fn pass(&self) {
        loop {
            let until = *lock(&self.closed_until);
            match until {
                Some(until) if until > Instant::now() => {
                    tokio::time::sleep_until(until.into()).await;
                }
                _ => return,
            }
        }
    }

    /// Whether a request now would be sent inside a wait.
    fn is_closed(&self) -> bool {
        lock(&self.closed_until).is_some_and(|until| until > Instant::now())
    }

    /// Closes the gate for `wait` from now (or keeps it closed longer if it already is).
    fn close_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut closed = lock(&self.closed_until);
        if closed.is_none_or(|current| current < until) {
            *closed = Some(until);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic elsewhere while holding the lock leaves nothing half-done.
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Graph for one mailbox folder.
#[derive(Debug)]
pub(crate) struct GraphClient {
    http: reqwest::Client,
    tokens: TokenSource,
    gate: Gate,
    graph: Url,
    user: String,
    folder: String,
    page_size: u32,
    max_message_size: u64,
}

impl GraphClient {
    /// A client for `settings` (validated here); connects nothing yet.
    pub fn new(settings: &GraphSettings) -> Result<GraphClient, GraphError> {
        let (azure, graph) = settings.validate()?;
        let http = http::client(settings.extra_ca_file.as_deref())
            .map_err(|e| GraphError::Config(e.to_string()))?;
        let scope = format!("{}/.default", graph.as_str().trim_end_matches('/'));
        let tokens = TokenSource::new(
            http.clone(),
            &azure,
            &settings.tenant_id,
            &settings.client_id,
            settings.client_secret.clone(),
            &scope,
        );
        Ok(GraphClient {
            http,
            tokens,
            gate: Gate::default(),
            graph,
            user: settings.user.clone(),
            folder: settings.folder.clone(),
            page_size: settings.page_size,
            max_message_size: settings.max_message_size,
        })
    }

    /// A valid access token (cached or new).
    pub async fn token(&self) -> Result<AccessToken, GraphError> {
        Ok(self.tokens.token().await?)
    }

    /// When the current token ends.
    pub fn token_expiry(&self) -> Option<SystemTime> {
        self.tokens.expires_at()
    }

    /// The first page of unread messages in the folder.
    pub fn first_page(&self) -> Url {
        let mut url = join(
            &self.graph,
            &[
                "v1.0",
                "users",
                &self.user,
                "mailFolders",
                &self.folder,
                "messages",
            ],
        );
        url.set_query(Some(&format!(
            "$filter=isRead%20eq%20false&$select=id,internetMessageId,isRead&$top={}",
            self.page_size
        )));
        url
    }

    /// One page of a listing. `url` is [`GraphClient::first_page`] or a `@odata.nextLink`,
    /// which must point at the configured Graph endpoint (the token is not sent elsewhere).
    pub async fn list(&self, url: &Url) -> Result<Page, GraphError> {
        if url.origin() != self.graph.origin() {
            return Err(GraphError::BadResponse(format!(
                "@odata.nextLink points at another host: {}",
                url.origin().ascii_serialization()
            )));
        }
        let response = self.send(Method::GET, url, CALL_TIMEOUT, None).await?;
        let body: ListBody = json(response).await?;
        let next = match body.next_link {
            Some(link) => Some(
                Url::parse(&link)
                    .map_err(|e| GraphError::BadResponse(format!("bad @odata.nextLink ({e})")))?,
            ),
            None => None,
        };
        let messages = body
            .value
            .into_iter()
            .map(|item| Listed {
                id: item.id,
                is_read: item.is_read,
            })
            .collect();
        Ok(Page { messages, next })
    }

    /// The raw MIME of message `id`, exactly as Graph returns it — unless it is over the size
    /// limit: then the download stops at the end of its header block (or at the limit when
    /// Graph does not say the size up front), and only the header block is kept.
    pub async fn fetch_raw(&self, id: &str) -> Result<Downloaded, GraphError> {
        let url = self.message_url(id, true);
        let mut response = self.send(Method::GET, &url, DOWNLOAD_TIMEOUT, None).await?;
        let max = self.max_message_size;
        let declared = response.content_length();
        if let Some(length) = declared
            && length > max
        {
            let head = read_header_block(&mut response).await?;
            // Dropping the response closes the connection: the rest is never transferred.
            return Ok(Downloaded {
                raw: head,
                oversized: Some(length),
            });
        }
        let mut raw = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            let seen = (raw.len() + chunk.len()) as u64;
            if seen > max {
                raw.extend_from_slice(&chunk[..chunk.len().min(MAX_HEADER_BLOCK)]);
                let head = header_block(&raw, MAX_HEADER_BLOCK).to_vec();
                return Ok(Downloaded {
                    raw: head,
                    oversized: Some(declared.unwrap_or(seen).max(seen)),
                });
            }
            raw.extend_from_slice(&chunk);
        }
        Ok(Downloaded {
            raw,
            oversized: None,
        })
    }

    /// `PATCH {"isRead": true}` on message `id`.
    pub async fn mark_read(&self, id: &str) -> Result<(), GraphError> {
        let url = self.message_url(id, false);
        let body = serde_json::json!({ "isRead": true });
        self.send(Method::PATCH, &url, CALL_TIMEOUT, Some(&body))
            .await
            .map(drop)
    }

    /// `DELETE` message `id` (Graph moves it to Deleted Items).
    pub async fn delete(&self, id: &str) -> Result<(), GraphError> {
        let url = self.message_url(id, false);
        self.send(Method::DELETE, &url, CALL_TIMEOUT, None)
            .await
            .map(drop)
    }

    /// The folder's name and counts.
    pub async fn folder(&self) -> Result<Folder, GraphError> {
        let mut url = join(
            &self.graph,
            &["v1.0", "users", &self.user, "mailFolders", &self.folder],
        );
        url.set_query(Some("$select=displayName,unreadItemCount,totalItemCount"));
        let response = self.send(Method::GET, &url, CALL_TIMEOUT, None).await?;
        let body: FolderBody = json(response).await?;
        Ok(Folder {
            display_name: body.display_name,
            unread: body.unread,
            total: body.total,
        })
    }

    fn message_url(&self, id: &str, raw: bool) -> Url {
        let mut segments = vec!["v1.0", "users", self.user.as_str(), "messages", id];
        if raw {
            segments.push("$value");
        }
        join(&self.graph, &segments)
    }

    /// Sends one request with a bearer token: after a `401` once more with a new token, after
    /// a throttled answer again once the wait is over (at most [`MAX_ATTEMPTS`] times).
    async fn send(
        &self,
        method: Method,
        url: &Url,
        timeout: Duration,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, GraphError> {
        let mut reauthorized = false;
        let mut throttled = 0;
        let mut backoff = Backoff::new(THROTTLE_FIRST_WAIT, THROTTLE_MAX_WAIT).streak();
        loop {
            self.gate.pass().await;
            // After the gate: a wait of minutes must not leave us holding an expired token.
            let token = self.tokens.token().await?;
            if self.gate.is_closed() {
                // Closed by another request while this one waited for the token.
                continue;
            }
            let mut request: RequestBuilder = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.secret().expose())
                .timeout(timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(transport)?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status == StatusCode::UNAUTHORIZED && !reauthorized {
                tracing::debug!("Microsoft Graph answered 401; asking for a new token");
                self.tokens.invalidate_if(token.secret()).await;
                reauthorized = true;
                continue;
            }
            if is_throttling(status) {
                let wait = match retry_after(response.headers()) {
                    Some(asked) => asked.min(MAX_RETRY_AFTER),
                    None => backoff.next_delay(),
                };
                // At once, before the body is read: the other requests of this client must
                // hold back from now on. Also when giving up, so the next pass does not meet the
                // same window.
                self.gate.close_for(wait);
                throttled += 1;
                if throttled < MAX_ATTEMPTS {
                    // Read to the end (an error text) so the connection can be used again.
                    let _ = response.bytes().await;
                    tracing::debug!(
                        status = status.as_u16(),
                        attempt = throttled,
                        wait_ms = wait.as_millis() as u64,
                        "Microsoft Graph is throttling; waiting before sending again"
                    );
                    continue;
                }
            }
            return Err(classify(response).await);
        }
    }
}

/// Reads `response` up to the end of its header block, at most [`MAX_HEADER_BLOCK`] bytes.
async fn read_header_block(response: &mut Response) -> Result<Vec<u8>, GraphError> {
    let mut head: Vec<u8> = Vec::new();
    while head.len() < MAX_HEADER_BLOCK {
        let Some(chunk) = response.chunk().await.map_err(transport)? else {
            break;
        };
        // Only the new bytes (and the three before them) can complete the empty line.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..chunk.len().min(MAX_HEADER_BLOCK - head.len())]);
        let fresh = &head[from..];
        let ended = fresh.windows(2).any(|w| w == b"\n\n")
            || fresh.windows(3).any(|w| w == b"\n\r\n")
            || head.starts_with(b"\r\n")
            || head.starts_with(b"\n");
        if ended {
            break;
        }
    }
    Ok(header_block(&head, MAX_HEADER_BLOCK).to_vec())
}

fn transport(error: reqwest::Error) -> GraphError {
    GraphError::Transport(describe(&error))
}

async fn json<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, GraphError> {
    let bytes = response.bytes().await.map_err(transport)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| GraphError::BadResponse(format!("unexpected JSON ({e})")))
}

/// Turns a non-success answer into an error, keeping Graph's `error.code: error.message`.
async fn classify(response: Response) -> GraphError {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response.bytes().await.unwrap_or_default();
    let message = match serde_json::from_slice::<ErrorBody>(&body)
        .ok()
        .and_then(|b| b.error)
    {
        Some(detail) => format!(
            "{}: {}",
            detail.code.unwrap_or_default(),
            detail.message.unwrap_or_default()
        ),
        None => String::from_utf8_lossy(&body).trim().to_owned(),
    };
    let message = shorten(message);
    match status {
        StatusCode::UNAUTHORIZED => GraphError::Unauthorized(message),
        StatusCode::NOT_FOUND => GraphError::NotFound(message),
        status if is_throttling(status) => GraphError::Throttled {
            status: status.as_u16(),
            retry_after,
        },
        _ => GraphError::Status {
            status: status.as_u16(),
            message,
        },
    }
}

/// `509 Bandwidth Limit Exceeded`: not in the HTTP standard, but Graph answers it when an
/// application sends too much to one mailbox.
const BANDWIDTH_LIMIT_EXCEEDED: StatusCode = match StatusCode::from_u16(509) {
    Ok(status) => status,
    Err(_) => StatusCode::SERVICE_UNAVAILABLE,
};

/// The answers that mean "not now": Graph's throttling (`429`, `509`) and a busy or
/// unreachable service behind its gateway (`503`, `504`).
fn is_throttling(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
            | BANDWIDTH_LIMIT_EXCEEDED
    )
}

/// `Retry-After` as HTTP allows it: delay-seconds or an HTTP date (a date in the past is no
/// wait). Graph sends seconds; proxies and other gateways in front of it may send a date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

fn shorten(mut text: String) -> String {
    if text.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "7".parse().expect("header value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT"
                .parse()
                .expect("header value"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO), "in the past");
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert(RETRY_AFTER, later.parse().expect("header value"));
        let wait = retry_after(&headers).expect("a date");
        assert!(wait > Duration::from_secs(28) && wait <= Duration::from_secs(30));
        headers.insert(RETRY_AFTER, "soon".parse().expect("header value"));
        assert_eq!(retry_after(&headers), None);
    }

    #[tokio::test]
    async fn the_gate_holds_until_the_latest_wait() {
        let gate = Gate::default();
        let start = Instant::now();
        gate.pass().await;
        assert!(start.elapsed() < Duration::from_millis(50), "open at first");
        gate.close_for(Duration::from_millis(150));
        gate.close_for(Duration::from_millis(50));
        gate.pass().await;
        assert!(
            start.elapsed() >= Duration::from_millis(150),
            "the longer wait holds"
        );
    }

    #[test]
    fn first_page_asks_for_unread_only() {
        let mut settings = GraphSettings::new("incoming_email", "in@example.com", "t", "c", "s");
        settings.page_size = 25;
        let client = GraphClient::new(&settings).expect("valid settings");
        assert_eq!(
            client.first_page().as_str(),
            "https://graph.microsoft.com/v1.0/users/in@example.com/mailFolders/inbox/messages\
             ?$filter=isRead%20eq%20false&$select=id,internetMessageId,isRead&$top=25"
        );
    }
}
