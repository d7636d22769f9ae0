//! Where XOAUTH2 / OAUTHBEARER access tokens for IMAP come from: a file another program keeps
//! fresh, or one of the grants of `inbox_options.oauth_grant`: Microsoft's client credentials
//! (Microsoft 365, the default), a refresh token from `postern oauth login` (Google or Microsoft
//! delegated access), or a Google service account with domain-wide delegation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use postern_inbox::imap::{TokenFuture, TokenSource};
use postern_inbox::oauth;
use postern_vocab::Secret;

use postern_gitlab::{GraphOptions, MailboxSettings};

/// A token read from a file at every login.
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    /// Reads `path`.
    pub fn new(path: PathBuf) -> TokenFile {
        TokenFile { path }
    }
}

impl TokenSource for TokenFile {
    fn access_token(&self, _refresh: bool) -> TokenFuture<'_> {
        Box::pin(async move {
            let text = tokio::fs::read_to_string(&self.path).await.map_err(|e| {
                format!("cannot read oauth2_token_file {}: {e}", self.path.display())
            })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(format!(
                    "oauth2_token_file {} is empty",
                    self.path.display()
                ));
            }
            Ok(Secret::new(token))
        })
    }
}

/// Microsoft 365: client credentials for `https://outlook.office365.com/.default`.
pub struct ClientCredentials {
    source: oauth::TokenSource,
}

impl ClientCredentials {
    /// From the section's `inbox_options` (tenant_id, client_id, client_secret,
    /// azure_ad_endpoint).
    pub fn for_imap(name: &str, section: &MailboxSettings) -> Result<ClientCredentials, String> {
        let missing =
            |key: &str| format!("{name}: xoauth2 needs oauth2_token_file or inbox_options.{key}");
        let options = section
            .inbox_options
            .as_ref()
            .ok_or_else(|| missing("tenant_id"))?;
        let tenant = options
            .tenant_id
            .as_deref()
            .ok_or_else(|| missing("tenant_id"))?;
        let client = options
            .client_id
            .as_deref()
            .ok_or_else(|| missing("client_id"))?;
        let secret = options
            .client_secret
            .as_ref()
            .ok_or_else(|| missing("client_secret"))?;
        let endpoint = postern_inbox::http::parse_endpoint(
            &format!("{name}.inbox_options.azure_ad_endpoint"),
            &options.azure_ad_endpoint,
        )?;
        let http = postern_inbox::http::client(section.tls_ca_file.as_deref())
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(ClientCredentials {
            source: oauth::TokenSource::new(
                http,
                &endpoint,
                tenant,
                client,
                secret.clone(),
                oauth::OUTLOOK_SCOPE,
            ),
        })
    }
}

impl TokenSource for ClientCredentials {
    fn access_token(&self, refresh: bool) -> TokenFuture<'_> {
        Box::pin(async move {
            if refresh {
                self.source.invalidate().await;
            }
            self.source
                .token()
                .await
                .map(|token| token.secret().clone())
                .map_err(|e| e.to_string())
        })
    }
}

/// Google's OAuth endpoints and the scope of full IMAP access.
const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const GOOGLE_DEVICE_URL: &str = "https://oauth2.googleapis.com/device/code";
const GOOGLE_SCOPE: &str = "https://mail.google.com/";
/// Delegated IMAP access to Exchange Online, with a refresh token (`offline_access`).
const MICROSOFT_SCOPE: &str = "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access";

/// Where a mailbox section's OAuth client talks to, for a refresh token or a device login.
pub struct Endpoints {
    /// The token endpoint.
    pub token_url: postern_inbox::http::Url,
    /// The device authorization endpoint.
    pub device_url: postern_inbox::http::Url,
    /// The scope asked for.
    pub scope: String,
}

/// The endpoints of `provider` (`google` or `microsoft`, or the section's `provider`), each
/// overridden by the section's `token_url`, `device_authorization_url` and `scope`.
pub fn endpoints(
    name: &str,
    section: &MailboxSettings,
    provider: Option<&str>,
) -> Result<Endpoints, String> {
    let options = section.inbox_options.as_ref();
    let option =
        |get: fn(&GraphOptions) -> Option<&String>| options.and_then(get).map(String::as_str);
    let provider = provider.or(option(|o| o.provider.as_ref()));
    let (token, device, scope) = match provider {
        Some("google") => (
            GOOGLE_TOKEN_URL.to_owned(),
            GOOGLE_DEVICE_URL.to_owned(),
            GOOGLE_SCOPE,
        ),
        Some("microsoft") => {
            let base = options
                .map_or(oauth::DEFAULT_AZURE_AD_ENDPOINT, |o| {
                    o.azure_ad_endpoint.as_str()
                })
                .trim_end_matches('/');
            // Delegated access from any work account unless a tenant is named.
            let tenant = option(|o| o.tenant_id.as_ref()).unwrap_or("organizations");
            (
                format!("{base}/{tenant}/oauth2/v2.0/token"),
                format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
                MICROSOFT_SCOPE,
            )
        }
        None => (String::new(), String::new(), ""),
        Some(other) => {
            return Err(format!(
                "{name}.inbox_options.provider: {other:?} is not google or microsoft"
            ));
        }
    };
    let url = |key: &str, value: Option<&str>, default: String| {
        let text = value.map(str::to_owned).unwrap_or(default);
        if text.is_empty() {
            return Err(format!(
                "{name}.inbox_options: provider (google or microsoft) or {key} is required"
            ));
        }
        postern_inbox::http::parse_endpoint(&format!("{name}.inbox_options.{key}"), &text)
    };
    Ok(Endpoints {
        token_url: url("token_url", option(|o| o.token_url.as_ref()), token)?,
        device_url: url(
            "device_authorization_url",
            option(|o| o.device_authorization_url.as_ref()),
            device,
        )?,
        scope: option(|o| o.scope.as_ref()).unwrap_or(scope).to_owned(),
    })
}

/// Where a section's refresh token is kept: `refresh_token_file`, or
/// `<data_dir>/oauth/<section>.refresh-token`.
pub fn refresh_token_path(name: &str, section: &MailboxSettings, data_dir: &Path) -> PathBuf {
    section
        .inbox_options
        .as_ref()
        .and_then(|o| o.refresh_token_file.clone())
        .unwrap_or_else(|| data_dir.join("oauth").join(format!("{name}.refresh-token")))
}

/// The token source of an XOAUTH2 / OAUTHBEARER mailbox: a token file, or the section's
/// `inbox_options.oauth_grant`.
pub fn imap_tokens(
    name: &str,
    section: &MailboxSettings,
    data_dir: &Path,
) -> Result<Arc<dyn TokenSource>, String> {
    if let Some(path) = &section.oauth2_token_file {
        return Ok(Arc::new(TokenFile::new(path.clone())));
    }
    let options = section.inbox_options.as_ref();
    let grant = options
        .and_then(|o| o.oauth_grant.as_deref())
        .unwrap_or("client_credentials");
    let http = || {
        postern_inbox::http::client(section.tls_ca_file.as_deref())
            .map_err(|e| format!("{name}: {e}"))
    };
    match grant {
        "client_credentials" => Ok(Arc::new(ClientCredentials::for_imap(name, section)?)),
        "refresh_token" => {
            let endpoints = endpoints(name, section, None)?;
            let client_id = options
                .and_then(|o| o.client_id.clone())
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| format!("{name}.inbox_options.client_id is required"))?;
            let path = refresh_token_path(name, section, data_dir);
            let store = oauth::RefreshTokenFile::load(&path)
                .map_err(|e| format!("{name}: {e} (run `postern oauth login`)"))?;
            Ok(Arc::new(oauth::TokenSource::with_grant(
                http()?,
                endpoints.token_url,
                oauth::Grant::RefreshToken {
                    client_id,
                    client_secret: options.and_then(|o| o.client_secret.as_ref()).cloned(),
                    scope: Some(endpoints.scope),
                    store,
                },
            )))
        }
        "service_account" => {
            let path = options
                .and_then(|o| o.service_account_file.as_ref())
                .ok_or_else(|| format!("{name}.inbox_options.service_account_file is required"))?;
            let subject = options
                .and_then(|o| o.subject.as_deref())
                .or(section.user.as_deref())
                .ok_or_else(|| format!("{name}.inbox_options.subject or user is required"))?;
            let scope = options
                .and_then(|o| o.scope.as_deref())
                .unwrap_or(GOOGLE_SCOPE);
            let (account, token_uri) = oauth::ServiceAccount::load(path, subject, scope)
                .map_err(|e| format!("{name}: {e}"))?;
            let token_url = options
                .and_then(|o| o.token_url.clone())
                .or(token_uri)
                .unwrap_or_else(|| GOOGLE_TOKEN_URL.to_owned());
            let token_url = postern_inbox::http::parse_endpoint(
                &format!("{name}.inbox_options.token_url"),
                &token_url,
            )?;
            Ok(Arc::new(oauth::TokenSource::with_grant(
                http()?,
                token_url,
                oauth::Grant::ServiceAccount(account),
            )))
        }
        other => Err(format!(
            "{name}.inbox_options.oauth_grant: {other:?} is not client_credentials, refresh_token or service_account"
        )),
    }
}
