//! Where XOAUTH2 access tokens for IMAP come from: a file another program keeps fresh (Gmail
//! with a service account or a refresh-token helper), or Microsoft's client-credentials flow
//! with the mailbox's `inbox_options` (Microsoft 365).

use std::path::PathBuf;

use postern_inbox::imap::{TokenFuture, TokenSource};
use postern_inbox::oauth;
use postern_inbox::secret::Secret;

use crate::config::MailboxConfig;

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
    pub fn for_imap(name: &str, section: &MailboxConfig) -> Result<ClientCredentials, String> {
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
            options
                .azure_ad_endpoint
                .as_deref()
                .unwrap_or(oauth::DEFAULT_AZURE_AD_ENDPOINT),
        )?;
        let http = postern_inbox::http::client(section.tls_ca_file.as_deref())
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(ClientCredentials {
            source: oauth::TokenSource::new(
                http,
                &endpoint,
                tenant,
                client,
                Secret::new(secret.expose()),
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
