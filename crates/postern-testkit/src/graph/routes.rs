//! The stand-in's request handling: the token endpoint and the Graph mail calls, with the checks
//! and error bodies of the real services.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::throttle::{Refusal, Verdict};
use super::{Fault, Recorded, State, Token, lock};

/// The largest request body read.
const MAX_BODY: usize = 1 << 20;

type Answer = Response<Full<Bytes>>;

/// Handles one request; `Err` makes hyper close the connection without answering.
pub(super) async fn handle(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Answer, std::io::Error> {
    let at = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let headers = request.headers().clone();
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let call = Call {
        method,
        segments: path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect(),
        query: parse_query(&query),
        authorization: header(&headers, hyper::header::AUTHORIZATION),
        content_type: header(&headers, hyper::header::CONTENT_TYPE),
        body,
    };
    let graph_call = call.segments.first().is_some_and(|s| s == "v1.0");
    let latency = if graph_call {
        let mut state = lock(&state);
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        state.latency
    } else {
        Duration::ZERO
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut state = lock(&state);
    if graph_call {
        state.in_flight -= 1;
    }
    let answer = route(&mut state, &call, &format!("{} {path}", call.method), at);
    state.requests.push(Recorded {
        method: call.method.to_string(),
        path,
        query,
        status: answer.as_ref().map_or(0, |a| a.status().as_u16()),
        at,
    });
    answer.ok_or_else(|| std::io::Error::other("fault injected: connection closed"))
}

struct Call {
    method: Method,
    segments: Vec<String>,
    query: HashMap<String, String>,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

fn header(headers: &hyper::HeaderMap, name: hyper::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The answer, or `None` to close the connection.
fn route(state: &mut State, call: &Call, name: &str, at: Instant) -> Option<Answer> {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        [tenant, "oauth2", "v2.0", "token"] => Some(token(state, tenant, call)),
        ["v1.0", "users", user, rest @ ..] => {
            if let Verdict::Refuse {
                refusal,
                retry_after,
            } = state.throttle.judge(name, at)
            {
                return Some(refuse(refusal, retry_after));
            }
            let method_fault = state
                .method_faults
                .front()
                .is_some_and(|(method, _)| method == call.method.as_str());
            if method_fault && let Some((_, fault)) = state.method_faults.pop_front() {
                return fault_answer(fault);
            }
            if let Some(fault) = state.faults.pop_front() {
                return fault_answer(fault);
            }
            if let Some(rejection) = authorize(state, call) {
                return Some(rejection);
            }
            Some(graph(state, user, rest, call))
        }
        _ => Some(graph_error(
            StatusCode::NOT_FOUND,
            "UnknownError",
            "no such resource",
        )),
    }
}

fn refuse(refusal: Refusal, retry_after: Option<String>) -> Answer {
    let (status, code, message) = match refusal {
        Refusal::TooManyRequests => (
            StatusCode::TOO_MANY_REQUESTS,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        ),
        Refusal::UnavailableUntil => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        ),
        Refusal::BandwidthExceeded => (
            StatusCode::from_u16(509).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "BandwidthLimitExceeded",
            "Bandwidth limit exceeded for the mailbox.",
        ),
    };
    let mut answer = graph_error(status, code, message);
    if let Some(value) = retry_after
        && let Ok(value) = hyper::header::HeaderValue::from_str(&value)
    {
        answer
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, value);
    }
    answer
}

fn fault_answer(fault: Fault) -> Option<Answer> {
    match fault {
        Fault::TooManyRequests { retry_after_secs } => {
            let mut answer = graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
            );
            answer.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from(retry_after_secs),
            );
            Some(answer)
        }
        Fault::Unavailable => Some(graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        )),
        Fault::CloseConnection => None,
    }
}

/// Azure AD's client-credentials grant.
fn token(state: &mut State, tenant: &str, call: &Call) -> Answer {
    if call.method != Method::POST {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900561: The endpoint only accepts POST requests.",
        );
    }
    if tenant != state.tenant_id {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    let form_type = call
        .content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let form = parse_query(&String::from_utf8_lossy(&call.body));
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(other) => {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("AADSTS70003: The app requested an unsupported grant type '{other}'."),
            );
        }
        None => {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
            );
        }
    }
    let client_id = form
        .get("client_id")
        .map(String::as_str)
        .unwrap_or_default();
    if client_id != state.client_id {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!(
                "AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    }
    match form.get("client_secret") {
        None => {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            );
        }
        Some(secret) if *secret != state.client_secret => {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                &format!(
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.\r\nTrace ID: 0000 Correlation ID: 0000 Timestamp: 2026-01-01 00:00:00Z"
                ),
            );
        }
        Some(_) => {}
    }
    let scope = form.get("scope").map(String::as_str).unwrap_or_default();
    let Some(audience) = scope.strip_suffix("/.default").filter(|a| !a.is_empty()) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "AADSTS1002012: The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    let value = random_token();
    let lifetime = state.token_lifetime;
    state.tokens.insert(
        value.clone(),
        Token {
            expires: Instant::now() + lifetime,
            audience: audience.to_owned(),
        },
    );
    state.tokens_issued += 1;
    json_answer(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": value,
        }),
    )
}

/// Graph's bearer check: an issued, unexpired token whose audience is this server. Returns
/// the rejection, if any.
fn authorize(state: &State, call: &Call) -> Option<Answer> {
    let reject = |message: &str| {
        let mut answer = graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        );
        answer.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer realm=\"\""),
        );
        answer
    };
    let Some(value) = call
        .authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return Some(reject("Access token is empty."));
    };
    let Some(token) = state.tokens.get(value.trim()) else {
        return Some(reject("IDX14100: JWT is not well formed."));
    };
    if Instant::now() >= token.expires {
        return Some(reject("Access token has expired or is not yet valid."));
    }
    if token.audience.trim_end_matches('/') != state.base {
        return Some(reject("Invalid audience."));
    }
    None
}

/// The mail calls under `/v1.0/users/<user>/`.
fn graph(state: &mut State, user: &str, rest: &[&str], call: &Call) -> Answer {
    let base = state.base.clone();
    let Some(mailbox) = state.users.get_mut(&user.to_ascii_lowercase()) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            &format!("The requested user '{user}' is invalid."),
        );
    };
    let not_found = || {
        graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    };
    match (&call.method, rest) {
        (&Method::GET, ["mailFolders", folder]) => {
            let Some(folder) = mailbox.folders.get(&folder.to_ascii_lowercase()) else {
                return not_found();
            };
            let unread = folder.messages.iter().filter(|m| !m.is_read).count();
            json_answer(
                StatusCode::OK,
                &json!({
                    "displayName": folder.display_name,
                    "unreadItemCount": unread,
                    "totalItemCount": folder.messages.len(),
                }),
            )
        }
        (&Method::GET, ["mailFolders", folder_name, "messages"]) => {
            let Some(folder) = mailbox.folders.get(&folder_name.to_ascii_lowercase()) else {
                return not_found();
            };
            list(&base, user, folder_name, &folder.messages, &call.query)
        }
        (method, ["messages", id, rest @ ..]) => {
            let found = mailbox.folders.values_mut().find_map(|folder| {
                let index = folder.messages.iter().position(|m| m.id == *id)?;
                Some((folder, index))
            });
            let Some((folder, index)) = found else {
                return not_found();
            };
            match (method, rest) {
                (&Method::GET, ["$value"]) => {
                    let mut answer =
                        Response::new(Full::new(Bytes::from(folder.messages[index].raw.clone())));
                    answer.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain"),
                    );
                    answer
                }
                (&Method::PATCH, []) => patch(&mut folder.messages[index], call),
                (&Method::DELETE, []) => {
                    let message = folder.messages.remove(index);
                    mailbox.deleted.push(message);
                    let mut answer = Response::new(Full::new(Bytes::new()));
                    *answer.status_mut() = StatusCode::NO_CONTENT;
                    answer
                }
                _ => graph_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Request_BadRequest",
                    "method not allowed",
                ),
            }
        }
        _ => graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unsupported segment type.",
        ),
    }
}

fn list(
    base: &str,
    user: &str,
    folder: &str,
    messages: &[super::StoredMessage],
    query: &HashMap<String, String>,
) -> Answer {
    let unread_only = match query.get("$filter").map(String::as_str) {
        None => false,
        Some("isRead eq false") => true,
        Some(other) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidUrlQueryFilter",
                &format!("The stand-in supports only 'isRead eq false', not {other:?}."),
            );
        }
    };
    let top = match query.get("$top").map(|t| t.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid $top value.");
        }
    };
    let skip = match query.get("$skip").map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid $skip value.",
            );
        }
    };
    let matching: Vec<&super::StoredMessage> = messages
        .iter()
        .filter(|m| !unread_only || !m.is_read)
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(top)
        .map(|m| json!({"id": m.id, "internetMessageId": format!("<{}@stand-in>", m.id), "isRead": m.is_read}))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{base}/v1.0/$metadata#users('{user}')/mailFolders('{folder}')/messages(id,internetMessageId,isRead)"),
        "value": page,
    });
    if skip + top < matching.len() {
        // Like Graph: the next link repeats the query with `$skip` advanced, `$` encoded.
        let filter = if unread_only {
            "%24filter=isRead%20eq%20false&"
        } else {
            ""
        };
        body["@odata.nextLink"] = json!(format!(
            "{base}/v1.0/users/{}/mailFolders/{}/messages?{filter}%24select=id%2cinternetMessageId%2cisRead&%24top={top}&%24skip={}",
            percent_encode(user),
            percent_encode(folder),
            skip + top
        ));
    }
    json_answer(StatusCode::OK, &body)
}

fn patch(message: &mut super::StoredMessage, call: &Call) -> Answer {
    let json_type = call
        .content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("application/json"));
    if !json_type {
        return graph_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "Content-Type must be application/json.",
        );
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&call.body) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "RequestBodyRead",
            "The request body is not a JSON object.",
        );
    };
    for (name, value) in &fields {
        match (name.as_str(), value) {
            ("isRead", Value::Bool(read)) => {
                message.is_read = *read;
                if *read {
                    message.read_marks += 1;
                }
            }
            _ => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidProperty",
                    &format!("The stand-in does not update property {name:?} to {value}."),
                );
            }
        }
    }
    json_answer(
        StatusCode::OK,
        &json!({"id": message.id, "isRead": message.is_read}),
    )
}

fn json_answer(status: StatusCode, body: &Value) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body.to_string())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    answer
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Answer {
    json_answer(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn aad_error(status: StatusCode, error: &str, description: &str) -> Answer {
    let code: u64 = description
        .strip_prefix("AADSTS")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    json_answer(
        status,
        &json!({"error": error, "error_description": description, "error_codes": [code]}),
    )
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("random token");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&name.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
