//! OAuth2 access tokens for Microsoft Graph and for IMAP XOAUTH2 / OAUTHBEARER, by one of three
//! grants ([`Grant`]): Azure AD client credentials (Microsoft 365 applications), a refresh token
//! (delegated access to a Google or Microsoft mailbox, obtained once with the device flow in
//! [`device`] and kept in a file that follows its rotation, [`RefreshTokenFile`]), or a Google
//! service account with domain-wide delegation (a JWT bearer assertion signed with the
//! account's key, [`ServiceAccount`]).
//!
//! One [`TokenSource`] per grant and scope: it asks the token endpoint (for client credentials
//! `<azure_ad_endpoint>/<tenant>/oauth2/v2.0/token`) for a token, keeps it, and asks again once
//! [`RENEW_AT`] of the lifetime the endpoint gave has passed: a one-hour token is renewed after
//! 48 minutes, a 20-second one after 16 seconds, so a watcher never sends a token that is about
//! to expire and never asks more often than the lifetime makes necessary. (A fixed margin, such
//! as "five minutes before the end", would mean asking before every request for a token that
//! lives less than five minutes.) After a `401` the caller calls [`TokenSource::invalidate_if`]
//! with the refused token and gets a fresh one; several requests refused with the same token
//! cause one renewal, not one each. mail_room fetched its token once at start and never again,
//! which is why it stopped after an hour.
//!
//! The client secret, refresh token and assertion travel only in the form body of that one
//! request; the access token only in `Authorization` headers and SASL. None appears in errors or
//! logs: Azure's error text (`AADSTS7000215: Invalid client secret provided …`) is reported with
//! the secret scrubbed.

pub mod device;
mod grant;

pub use grant::{Grant, RefreshTokenFile, ServiceAccount};

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Url;
use serde::Deserialize;

use crate::http::{describe, join};
use postern_vocab::Secret;

/// Azure AD's public-cloud endpoint (`azure_ad_endpoint` when not set).
pub const DEFAULT_AZURE_AD_ENDPOINT: &str = "https://login.microsoftonline.com";
/// The scope for IMAP and SMTP XOAUTH2 against Exchange Online.
pub const OUTLOOK_SCOPE: &str = "https://outlook.office365.com/.default";
/// How long one token request may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest error text kept from the token endpoint.
const MAX_ERROR_TEXT: usize = 300;
/// The fraction of a token's lifetime after which it is renewed.
pub const RENEW_AT: f64 = 0.8;
/// After a failed renewal while the current token is still valid, the next attempt waits this
/// fraction of the time the token has left, so a token endpoint that is down is not asked
/// before every request.
const RETRY_FRACTION: f64 = 0.25;

/// Why no token could be had. No variant contains the client secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The token endpoint refused: wrong secret, unknown tenant or client, bad scope.
    #[error("token endpoint refused (HTTP {status}): {error}: {description}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// OAuth's `error` (`invalid_client`, `unauthorized_client` …).
        error: String,
        /// The first line of `error_description` (with the AADSTS code), secret scrubbed.
        description: String,
    },
    /// The endpoint could not be reached or did not answer in time.
    #[error("token endpoint unreachable: {0}")]
    Transport(String),
    /// The endpoint answered something that is not a token.
    #[error("token endpoint answered unexpectedly: {0}")]
    BadResponse(String),
    /// The request could not be made here (an assertion that cannot be signed).
    #[error("cannot ask for a token: {0}")]
    Local(String),
}

/// An access token and when it ends. `Debug` does not show the token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    value: Secret,
    expires_at: SystemTime,
    renew_at: Instant,
}

impl AccessToken {
    /// The token, for an `Authorization: Bearer` header or an XOAUTH2 string.
    pub fn secret(&self) -> &Secret {
        &self.value
    }

    /// When the token endpoint said it ends.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

/// Issues and caches client-credentials tokens for one scope.
#[derive(Debug)]
pub struct TokenSource {
    http: reqwest::Client,
    token_url: Url,
    grant: Grant,
    cached: tokio::sync::Mutex<Option<AccessToken>>,
    expires_at: Mutex<Option<SystemTime>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    refresh_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

impl TokenSource {
    /// A source for `scope` (for Graph `<graph_endpoint>/.default`, for IMAP [`OUTLOOK_SCOPE`])
    /// with the application `client_id` in `tenant_id`. Asks nothing yet.
    pub fn new(
        http: reqwest::Client,
        azure_ad_endpoint: &Url,
        tenant_id: &str,
        client_id: &str,
        client_secret: Secret,
        scope: &str,
    ) -> TokenSource {
        let token_url = join(azure_ad_endpoint, &[tenant_id, "oauth2", "v2.0", "token"]);
        let grant = Grant::ClientCredentials {
            client_id: client_id.to_owned(),
            client_secret,
            scope: scope.to_owned(),
        };
        TokenSource::with_grant(http, token_url, grant)
    }

    /// A source that asks `token_url` for tokens by `grant`. Asks nothing yet.
    pub fn with_grant(http: reqwest::Client, token_url: Url, grant: Grant) -> TokenSource {
        TokenSource {
            http,
            token_url,
            grant,
            cached: tokio::sync::Mutex::new(None),
            expires_at: Mutex::new(None),
        }
    }

    /// A valid token: the cached one until its renewal time, else a new one. If renewing fails
    /// while the cached token has not yet ended, the cached one is returned (and the failure
    /// logged), so a short outage of the token endpoint does not stop mail.
    pub async fn token(&self) -> Result<AccessToken, OAuthError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.clone());
        }
        match self.request().await {
            Ok(token) => {
                tracing::debug!(grant = self.grant.kind(), expires_at = ?token.expires_at, "new access token");
                self.set_expiry(Some(token.expires_at));
                *cached = Some(token.clone());
                Ok(token)
            }
            Err(error) => match cached.as_mut() {
                Some(token) if SystemTime::now() < token.expires_at => {
                    tracing::warn!(%error, "renewing the access token failed; using the current one until it ends");
                    let left = token
                        .expires_at
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    token.renew_at = Instant::now() + left.mul_f64(RETRY_FRACTION);
                    Ok(token.clone())
                }
                _ => {
                    *cached = None;
                    self.set_expiry(None);
                    Err(error)
                }
            },
        }
    }

    /// Forgets the cached token, so the next [`TokenSource::token`] asks for a new one.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// Forgets the cached token if it is still `refused` (the resource server answered `401`
    /// to it). When another request already brought a new one, that one is kept: concurrent
    /// requests refused with the same old token renew it once.
    pub async fn invalidate_if(&self, refused: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|token| token.value.expose() == refused.expose())
        {
            *cached = None;
        }
    }

    /// When the current token ends, if there is one.
    pub fn expires_at(&self) -> Option<SystemTime> {
        match self.expires_at.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// The token endpoint's URL (no secret in it).
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    fn set_expiry(&self, at: Option<SystemTime>) {
        match self.expires_at.lock() {
            Ok(mut guard) => *guard = at,
            Err(poisoned) => *poisoned.into_inner() = at,
        }
    }

    async fn request(&self) -> Result<AccessToken, OAuthError> {
        let form = self.grant.form(&self.token_url)?;
        let asked_at = (Instant::now(), SystemTime::now());
        let response = self
            .http
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .timeout(TOKEN_TIMEOUT)
            .send()
            .await
            .map_err(|e| OAuthError::Transport(self.scrub(&describe(&e))))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| OAuthError::Transport(self.scrub(&describe(&e))))?;
        if !status.is_success() {
            return Err(self.rejected(status.as_u16(), &body));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| OAuthError::BadResponse(format!("not a token response ({e})")))?;
        let Some(value) = parsed.access_token.filter(|t| !t.is_empty()) else {
            return Err(OAuthError::BadResponse("no access_token".to_owned()));
        };
        if let Some(kind) = parsed.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(OAuthError::BadResponse(format!(
                "token_type {kind:?}, expected Bearer"
            )));
        }
        let lifetime = lifetime(parsed.expires_in.as_ref())?;
        if let Some(rotated) = parsed.refresh_token.filter(|t| !t.is_empty()) {
            self.grant.rotated(Secret::new(rotated));
        }
        Ok(AccessToken {
            value: Secret::new(value),
            expires_at: asked_at.1 + lifetime,
            renew_at: asked_at.0 + renew_after(lifetime),
        })
    }

    fn rejected(&self, status: u16, body: &[u8]) -> OAuthError {
        let parsed: Option<ErrorResponse> = serde_json::from_slice(body).ok();
        let (error, description) = match parsed {
            Some(parsed) => (
                parsed.error.unwrap_or_else(|| "unknown".to_owned()),
                parsed.error_description.unwrap_or_default(),
            ),
            None => (
                "unknown".to_owned(),
                String::from_utf8_lossy(body).into_owned(),
            ),
        };
        // Azure appends trace and correlation ids on further lines; the first line says it all.
        let first_line = description.lines().next().unwrap_or_default();
        let mut description = self.scrub(first_line.trim());
        if description.len() > MAX_ERROR_TEXT {
            let mut end = MAX_ERROR_TEXT;
            while !description.is_char_boundary(end) {
                end -= 1;
            }
            description.truncate(end);
            description.push('…');
        }
        OAuthError::Rejected {
            status,
            error: self.scrub(&error),
            description,
        }
    }

    /// `text` without any secret of the grant in it.
    fn scrub(&self, text: &str) -> String {
        self.grant.scrub(text)
    }
}

/// IMAP XOAUTH2 / OAUTHBEARER take their tokens from here too; after the server refused one
/// (`refresh`), the cached token is dropped and a new one asked for.
impl crate::imap::TokenSource for TokenSource {
    fn access_token(&self, refresh: bool) -> crate::imap::TokenFuture<'_> {
        Box::pin(async move {
            if refresh {
                self.invalidate().await;
            }
            self.token()
                .await
                .map(|token| token.secret().clone())
                .map_err(|e| e.to_string())
        })
    }
}

/// How long after asking a token of `lifetime` is renewed. Counted from the moment of asking,
/// so the time the answer took is on the safe side.
fn renew_after(lifetime: Duration) -> Duration {
    lifetime.mul_f64(RENEW_AT)
}

/// `expires_in` in seconds; Azure's v1 endpoints send it as a string, v2 as a number.
fn lifetime(expires_in: Option<&serde_json::Value>) -> Result<Duration, OAuthError> {
    let seconds = match expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match seconds {
        Some(s) if s > 0 => Ok(Duration::from_secs(s)),
        _ => Err(OAuthError::BadResponse(
            "missing or invalid expires_in".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_as_number_or_string() {
        let number = serde_json::json!(3599);
        let string = serde_json::json!("3599");
        assert_eq!(lifetime(Some(&number)), Ok(Duration::from_secs(3599)));
        assert_eq!(lifetime(Some(&string)), Ok(Duration::from_secs(3599)));
        assert!(lifetime(None).is_err());
        assert!(lifetime(Some(&serde_json::json!(0))).is_err());
    }

    #[test]
    fn renewal_is_a_fraction_of_the_lifetime() {
        assert_eq!(
            renew_after(Duration::from_secs(20)),
            Duration::from_secs(16)
        );
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(2880)
        );
        // Short tokens are still used for most of their life, not renewed before every request.
        assert!(renew_after(Duration::from_secs(60)) >= Duration::from_secs(45));
    }

    #[test]
    fn token_url_has_the_tenant() {
        let http = crate::http::client(None).expect("client");
        let endpoint = Url::parse("https://login.microsoftonline.us/").expect("URL");
        let secret = Secret::new("very-secret-value");
        let source = TokenSource::new(http, &endpoint, "t-1", "c", secret, OUTLOOK_SCOPE);
        assert_eq!(
            source.token_url().as_str(),
            "https://login.microsoftonline.us/t-1/oauth2/v2.0/token"
        );
        assert!(!format!("{source:?}").contains("very-secret-value"));
    }
}
