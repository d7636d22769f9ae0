//! The device authorization grant (RFC 8628), run once by `postern oauth login` to obtain a
//! refresh token for a mailbox: ask the device authorization endpoint for a code, show the
//! person the code and where to enter it, and poll the token endpoint until they have
//! approved, at the pace the server asks for.
//!
//! The poll honours `interval` (5 s when absent) and adds 5 s for every `slow_down`, as the RFC
//! requires; `authorization_pending` keeps polling, anything else ends the flow with the
//! server's reason. It also ends when the code expires.

use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;

use super::OAuthError;
use crate::http::describe;
use postern_vocab::Secret;

/// The grant type of the token request (RFC 8628, section 3.4).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The poll interval when the server names none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// What each `slow_down` adds to the interval.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The client and endpoints of one device login.
#[derive(Debug, Clone)]
pub struct DeviceLogin {
    /// The device authorization endpoint.
    pub device_url: Url,
    /// The token endpoint.
    pub token_url: Url,
    /// The OAuth client id.
    pub client_id: String,
    /// The client secret, for clients that have one (Google's).
    pub client_secret: Option<Secret>,
    /// The scopes asked for, space-separated.
    pub scope: String,
}

/// What the person is to do, and what the poll needs.
#[derive(Debug)]
pub struct DeviceCode {
    /// The code the person enters.
    pub user_code: String,
    /// Where they enter it.
    pub verification_uri: String,
    device_code: Secret,
    interval: Duration,
    expires_at: Instant,
}

/// What a completed login yields.
#[derive(Debug)]
pub struct Approved {
    /// The refresh token to keep.
    pub refresh_token: Secret,
    /// The scopes granted, if the server says.
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct CodeResponse {
    device_code: String,
    user_code: String,
    // RFC 8628 says `verification_uri`; Google answers `verification_url`.
    verification_uri: Option<String>,
    verification_url: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    refresh_token: Option<String>,
    scope: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl DeviceLogin {
    /// Asks for a device code.
    pub async fn start(&self, http: &reqwest::Client) -> Result<DeviceCode, OAuthError> {
        let mut form = vec![
            ("client_id", self.client_id.clone()),
            ("scope", self.scope.clone()),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose().to_owned()));
        }
        let (status, body) = self.post(http, &self.device_url, &form).await?;
        if !(200..300).contains(&status) {
            let answer: Option<TokenAnswer> = serde_json::from_slice(&body).ok();
            return Err(self.refusal(status, answer));
        }
        let code: CodeResponse = serde_json::from_slice(&body).map_err(|e| {
            OAuthError::BadResponse(format!("not a device authorization response ({e})"))
        })?;
        let verification_uri = code
            .verification_uri
            .or(code.verification_url)
            .ok_or_else(|| OAuthError::BadResponse("no verification_uri".to_owned()))?;
        Ok(DeviceCode {
            user_code: code.user_code,
            verification_uri,
            device_code: Secret::new(code.device_code),
            interval: code
                .interval
                .filter(|&s| s > 0)
                .map_or(DEFAULT_INTERVAL, Duration::from_secs),
            expires_at: Instant::now() + Duration::from_secs(code.expires_in),
        })
    }

    /// Polls the token endpoint until the person approved (or refused, or the code expired).
    pub async fn finish(
        &self,
        http: &reqwest::Client,
        code: DeviceCode,
    ) -> Result<Approved, OAuthError> {
        let mut interval = code.interval;
        let mut form = vec![
            ("grant_type", DEVICE_CODE_GRANT.to_owned()),
            ("device_code", code.device_code.expose().to_owned()),
            ("client_id", self.client_id.clone()),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose().to_owned()));
        }
        loop {
            if Instant::now() + interval > code.expires_at {
                return Err(OAuthError::Rejected {
                    status: 400,
                    error: "expired_token".to_owned(),
                    description: "the code expired before it was approved".to_owned(),
                });
            }
            tokio::time::sleep(interval).await;
            let (status, body) = self.post(http, &self.token_url, &form).await?;
            let answer: TokenAnswer = serde_json::from_slice(&body)
                .map_err(|e| OAuthError::BadResponse(format!("not a token response ({e})")))?;
            if (200..300).contains(&status) {
                let refresh_token =
                    answer
                        .refresh_token
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| {
                            OAuthError::BadResponse(
                                "no refresh_token (was offline access asked for?)".to_owned(),
                            )
                        })?;
                return Ok(Approved {
                    refresh_token: Secret::new(refresh_token),
                    scope: answer.scope,
                });
            }
            match answer.error.as_deref() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += SLOW_DOWN_STEP,
                _ => return Err(self.refusal(status, Some(answer))),
            }
        }
    }

    async fn post(
        &self,
        http: &reqwest::Client,
        url: &Url,
        form: &[(&str, String)],
    ) -> Result<(u16, Vec<u8>), OAuthError> {
        let response = http
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| OAuthError::Transport(self.scrub(&describe(&e))))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| OAuthError::Transport(self.scrub(&describe(&e))))?;
        Ok((status, body.to_vec()))
    }

    fn refusal(&self, status: u16, answer: Option<TokenAnswer>) -> OAuthError {
        let (error, description) = match answer {
            Some(answer) => (
                answer.error.unwrap_or_else(|| "unknown".to_owned()),
                answer.error_description.unwrap_or_default(),
            ),
            None => ("unknown".to_owned(), String::new()),
        };
        let first_line = description.lines().next().unwrap_or_default();
        OAuthError::Rejected {
            status,
            error: self.scrub(&error),
            description: self.scrub(first_line.chars().take(300).collect::<String>().trim()),
        }
    }

    fn scrub(&self, text: &str) -> String {
        match &self.client_secret {
            Some(secret) => secret.scrub(text),
            None => text.to_owned(),
        }
    }
}
