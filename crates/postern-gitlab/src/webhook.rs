//! Webhook delivery (mail_room's `postback`): `POST <gitlab_url>/api/v4/internal/mail_room/
//! <incoming_email|service_desk_email>` with the raw message byte for byte, `Content-Type:
//! text/plain` and a fresh JWT in `Gitlab-Mailroom-Api-Request`.
//!
//! Unlike mail_room (a new connection per message, no timeouts, any status counted as
//! success), one keep-alive client is used with explicit timeouts, and only a 2xx acknowledges.
//! GitLab answers 400 `{"success": false, "message": …}` when the message exceeds its Sidekiq
//! size limit (it has then sent the sender a rejection itself): that is a final rejection. Every
//! other answer — 401/403 (wrong secret, mailbox disabled), 404, 5xx — and every transport error
//! is temporary: the message stays and is retried.

use std::sync::Arc;
use std::time::Duration;

use postern_store::Mailbox;
use postern_vocab::ErrorKind;

use crate::deliver::DeliveryFailure;
use crate::jwt::{HEADER, JwtSigner};
use crate::settings::mailbox_type;

/// Timeouts of the webhook client. The defaults suit a GitLab on the same network.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Connecting (TCP and TLS).
    pub connect_timeout: Duration,
    /// The whole request, from sending to the last byte of the answer. GitLab only enqueues a
    /// job, so a long wait means it is overloaded; the message is retried later.
    pub timeout: Duration,
    /// How long an idle keep-alive connection is kept.
    pub pool_idle_timeout: Duration,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

/// Why a webhook client could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The TLS or HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The URL is not `http(s)://…`.
    #[error("gitlab_url {0:?} is not an http:// or https:// URL")]
    Url(String),
}

/// An HTTP client for webhooks: rustls with ring and the platform's certificate verifier,
/// keep-alive, explicit timeouts, no redirects (a redirect would drop the POST body).
pub fn http_client(options: &WebhookOptions) -> Result<reqwest::Client, WebhookError> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| WebhookError::Client(e.to_string()))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout)
        .pool_idle_timeout(options.pool_idle_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("postern/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| WebhookError::Client(e.to_string()))
}

/// What GitLab answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAnswer {
    /// HTTP status.
    pub status: u16,
    /// The body, cut to 1 000 bytes (GitLab answers with a short JSON).
    pub body: String,
}

/// Delivers to one mailbox's endpoint.
#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    signer: JwtSigner,
}

impl Webhook {
    /// The endpoint of `mailbox` under `gitlab_url`, signing with `signer`, through `client`
    /// (share one client between mailboxes so they share connections).
    pub fn new(
        client: reqwest::Client,
        gitlab_url: &str,
        mailbox: Mailbox,
        signer: JwtSigner,
    ) -> Result<Webhook, WebhookError> {
        let base = gitlab_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(WebhookError::Url(base.to_owned()));
        }
        Ok(Webhook {
            client,
            url: format!("{base}/api/v4/internal/mail_room/{}", mailbox_type(mailbox)),
            signer,
        })
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The signer (for checks).
    pub fn signer(&self) -> &JwtSigner {
        &self.signer
    }

    /// POSTs `raw` with `token` and returns GitLab's answer; transport errors as text.
    pub async fn post(&self, raw: Vec<u8>, token: &str) -> Result<WebhookAnswer, String> {
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .header(HEADER, token)
            .body(raw)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| describe(&e))?;
        let cut = &body[..body.len().min(1000)];
        Ok(WebhookAnswer {
            status,
            body: String::from_utf8_lossy(cut).into_owned(),
        })
    }

    /// Delivers one message; `Ok` only for a 2xx.
    pub async fn deliver(&self, raw: &[u8]) -> Result<(), DeliveryFailure> {
        let token = self
            .signer
            .token()
            .map_err(|e| DeliveryFailure::Temporary {
                kind: ErrorKind::WebhookToken,
                reason: e.to_string(),
            })?;
        let answer =
            self.post(raw.to_vec(), &token)
                .await
                .map_err(|reason| DeliveryFailure::Temporary {
                    kind: ErrorKind::WebhookUnreachable,
                    reason,
                })?;
        classify(&answer)
    }
}

/// 2xx → delivered; 400 with GitLab's `{"success": false, "message": …}` → rejected (too
/// large); another 400, 413 or 422 → temporary, but about this message (`webhook_refused`: the
/// deliverer quarantines a message GitLab keeps refusing); anything else → temporary.
pub fn classify(answer: &WebhookAnswer) -> Result<(), DeliveryFailure> {
    match answer.status {
        200..=299 => Ok(()),
        400 => match too_large_message(&answer.body) {
            Some(message) => Err(DeliveryFailure::Rejected {
                kind: ErrorKind::EmailTooLarge,
                reason: message,
            }),
            None => Err(DeliveryFailure::Temporary {
                kind: REFUSED,
                reason: format!("GitLab answered 400: {}", bounded(&answer.body)),
            }),
        },
        413 | 422 => Err(DeliveryFailure::Temporary {
            kind: REFUSED,
            reason: format!(
                "GitLab answered {}: {}",
                answer.status,
                bounded(&answer.body)
            ),
        }),
        401 | 403 => Err(DeliveryFailure::Temporary {
            kind: ErrorKind::WebhookUnauthorized,
            reason: format!(
                "GitLab answered {}: the JWT was refused (wrong secret_file, clock skew, or the mailbox is not enabled in GitLab)",
                answer.status
            ),
        }),
        status => Err(DeliveryFailure::Temporary {
            kind: ErrorKind::WebhookStatus,
            reason: format!("GitLab answered {status}"),
        }),
    }
}

/// The kind of a failure that is about the message rather than about GitLab: GitLab (or the
/// proxy in front of it) refused this request. Retried, since the cause may be a GitLab bug
/// that is fixed, but the same refusal again and again quarantines the message.
pub const REFUSED: ErrorKind = ErrorKind::WebhookRefused;

/// At most the first 500 characters of a response body, for a reason text.
fn bounded(body: &str) -> &str {
    match body.char_indices().nth(500) {
        Some((at, _)) => &body[..at],
        None => body,
    }
}

/// The `message` of GitLab's `{"success": false, "message": "…"}`.
fn too_large_message(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    if value.get("success")? != &serde_json::Value::Bool(false) {
        return None;
    }
    Some(value.get("message")?.as_str()?.to_owned())
}

/// A transport error without the URL's query or anything secret (reqwest's text names the URL,
/// which holds no secret here, and the cause).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> WebhookAnswer {
        WebhookAnswer {
            status,
            body: body.to_owned(),
        }
    }

    #[test]
    fn only_2xx_acknowledges() {
        assert!(classify(&answer(200, r#"{"success":true}"#)).is_ok());
        assert!(classify(&answer(204, "")).is_ok());
        for status in [301, 400, 401, 403, 404, 413, 422, 500, 502, 503] {
            assert!(
                matches!(
                    classify(&answer(status, "")),
                    Err(DeliveryFailure::Temporary { .. })
                ),
                "{status}"
            );
        }
    }

    #[test]
    fn too_large_is_a_rejection_with_gitlabs_reason() {
        let text = "We couldn't process your email because it is too large.";
        let body = serde_json::json!({"success": false, "message": text}).to_string();
        match classify(&answer(400, &body)) {
            Err(DeliveryFailure::Rejected { kind, reason }) => {
                assert_eq!(kind, ErrorKind::EmailTooLarge);
                assert_eq!(reason, text);
            }
            other => panic!("{other:?}"),
        }
        // A 400 from something else (a proxy) is not GitLab's verdict.
        assert!(matches!(
            classify(&answer(400, "<html>Bad Request</html>")),
            Err(DeliveryFailure::Temporary { .. })
        ));
    }
}
