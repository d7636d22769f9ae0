//! The Microsoft Graph mailbox watcher: polls a folder for unread messages, hands each raw
//! message to the [`Intake`](crate::intake::Intake), and marks it read (or deletes it) only
//! after the intake said it is durable.
//!
//! mail_room's Graph inbox
//! (<https://github.com/tpitale/mail_room/blob/master/lib/mail_room/microsoft_graph/connection.rb>)
//! fetched its token once and died on the first `401` an hour later,
//! and ended the process on any other HTTP error. Here the token is renewed at a fraction of its
//! lifetime and after a `401`, a throttled request (`429`, `503`, `504`, `509`) is sent again
//! after `Retry-After` without giving up what the pass has done, every other failure backs off
//! and tries again, and the watcher only stops on shutdown.
//!
//! A pass works page by page and message by message: list one page of unread messages, then
//! for each (at most [`MAX_CONCURRENCY`] at a time, Graph's limit per mailbox) fetch it, hand it
//! to the intake and mark it read (or delete it) as soon as the intake said it is durable; then
//! list the first page again. Following `@odata.nextLink` instead would skip messages: marking
//! messages read shifts an `isRead eq false` listing under its `$skip`.
//!
//! - [`GraphSettings`]: what to watch and how to authenticate, with [`GraphSettings::validate`].
//! - [`watch`]: the long-running watcher for `postern serve`.
//! - [`check`]: one token request and one folder lookup, for `postern check`.

mod client;
mod watch;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use reqwest::Url;

use crate::http::parse_endpoint;
use crate::intake::IntakeError;
use crate::oauth::{DEFAULT_AZURE_AD_ENDPOINT, OAuthError};
use postern_vocab::Secret;

pub use watch::watch;

/// Microsoft Graph's public-cloud endpoint (`graph_endpoint` when not set).
pub const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
/// How often the folder is polled when not set (mail_room's default).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// Messages listed per page when not set.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Graph's largest `$top` for messages.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// At most this many requests to one mailbox at a time: Graph allows four concurrent requests
/// per application and mailbox and throttles beyond.
pub const MAX_CONCURRENCY: usize = 4;

/// One Graph mailbox folder to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSettings {
    /// The configuration section: `incoming_email` or `service_desk_email` (for logs and status).
    pub name: String,
    /// The mailbox, as an email address or user id (`user` in gitlab.yml).
    pub user: String,
    /// The mail folder: a well-known name (`inbox`) or a folder id (`mailbox` in gitlab.yml).
    pub folder: String,
    /// The Azure AD tenant (directory) id.
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: Secret,
    /// Time between the end of one pass and the start of the next.
    pub poll_interval: Duration,
    /// Azure AD's base URL, for national clouds (`https://login.microsoftonline.us`).
    pub azure_ad_endpoint: String,
    /// Graph's base URL, for national clouds (`https://graph.microsoft.us`).
    pub graph_endpoint: String,
    /// Delete each message (to Deleted Items) after marking it read.
    pub delete_after_delivery: bool,
    /// Messages per listing page (`$top`), 1 to 1000.
    pub page_size: u32,
    /// PEM file with further CA certificates to trust (private deployments, tests).
    pub extra_ca_file: Option<PathBuf>,
    /// The largest message downloaded, in bytes. A larger one (by its `Content-Length`, or by
    /// what arrives) is read only up to its header block and handed on with
    /// [`Fetched::oversized`](crate::intake::Fetched::oversized) set.
    pub max_message_size: u64,
}

impl GraphSettings {
    /// Settings with the defaults: folder `inbox`, poll every 60 s, public cloud, no deleting,
    /// 50 messages per page.
    pub fn new(
        name: &str,
        user: &str,
        tenant_id: &str,
        client_id: &str,
        client_secret: impl Into<Secret>,
    ) -> GraphSettings {
        GraphSettings {
            name: name.to_owned(),
            user: user.to_owned(),
            folder: "inbox".to_owned(),
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.into(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            azure_ad_endpoint: DEFAULT_AZURE_AD_ENDPOINT.to_owned(),
            graph_endpoint: DEFAULT_GRAPH_ENDPOINT.to_owned(),
            delete_after_delivery: false,
            page_size: DEFAULT_PAGE_SIZE,
            extra_ca_file: None,
            max_message_size: crate::intake::DEFAULT_MAX_MESSAGE_SIZE,
        }
    }

    /// Checks every setting and returns the parsed Azure AD and Graph endpoints. Errors name the
    /// setting and never contain the secret.
    pub fn validate(&self) -> Result<(Url, Url), GraphError> {
        let fail = |text: String| Err(GraphError::Config(text));
        if self.user.trim().is_empty() {
            return fail("user: the mailbox address is missing".to_owned());
        }
        if self.user.contains(['/', '?', '#']) {
            return fail(format!("user: {:?} is not a mailbox address", self.user));
        }
        if self.folder.trim().is_empty() || self.folder.contains(['/', '?', '#']) {
            return fail(format!("mailbox: {:?} is not a folder name", self.folder));
        }
        let id_like = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        };
        if !id_like(&self.tenant_id) {
            return fail(
                "inbox_options.tenant_id: missing or not a tenant id or domain".to_owned(),
            );
        }
        if self.client_id.trim().is_empty() {
            return fail("inbox_options.client_id is missing".to_owned());
        }
        if self.client_secret.is_empty() {
            return fail("inbox_options.client_secret is missing".to_owned());
        }
        if self.poll_interval.is_zero() {
            return fail("inbox_options.poll_interval must be at least 1 second".to_owned());
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return fail(format!(
                "inbox_options.page_size must be 1 to {MAX_PAGE_SIZE}"
            ));
        }
        if self.max_message_size == 0 {
            return fail("max_message_size must be more than 0".to_owned());
        }
        let azure = parse_endpoint("inbox_options.azure_ad_endpoint", &self.azure_ad_endpoint)
            .map_err(GraphError::Config)?;
        let graph = parse_endpoint("inbox_options.graph_endpoint", &self.graph_endpoint)
            .map_err(GraphError::Config)?;
        Ok((azure, graph))
    }

    /// Where this source reads, without secrets: `user/folder via graph-endpoint`.
    pub fn location(&self) -> String {
        format!("{}/{} via {}", self.user, self.folder, self.graph_endpoint)
    }

    /// The [`Fetched::identity`](crate::intake::Fetched::identity) of message `id`:
    /// `graph:<user>/<folder>:<id>`.
    pub fn identity(&self, id: &str) -> String {
        format!("graph:{}/{}:{}", self.user, self.folder, id)
    }
}

/// Why a Graph call or pass failed. No variant contains the client secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The settings are unusable; retrying does not help.
    #[error("invalid Microsoft Graph settings: {0}")]
    Config(String),
    /// No access token.
    #[error(transparent)]
    Token(#[from] OAuthError),
    /// Graph could not be reached or did not answer in time.
    #[error("Microsoft Graph unreachable: {0}")]
    Transport(String),
    /// Graph refused even a fresh token (missing `Mail.ReadWrite` permission, access policy).
    #[error("Microsoft Graph refused the access token (HTTP 401): {0}")]
    Unauthorized(String),
    /// Graph asked to slow down (`429`, `509`) or was unavailable (`503`, `504`) for every
    /// attempt of one request.
    #[error("Microsoft Graph is busy (HTTP {status}){}", retry_after.map(|d| format!("; retry after {} s", d.as_secs())).unwrap_or_default())]
    Throttled {
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The user, folder or message does not exist.
    #[error("not found in Microsoft Graph (HTTP 404): {0}")]
    NotFound(String),
    /// Any other refusal.
    #[error("Microsoft Graph answered HTTP {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// Graph's `error.code: error.message`.
        message: String,
    },
    /// An answer that could not be understood.
    #[error("unexpected answer from Microsoft Graph: {0}")]
    BadResponse(String),
    /// A message larger than Graph allows. No longer returned by the watcher: a message over
    /// `max_message_size` is handed on as its header block, marked oversized.
    #[error("message of {0} bytes is larger than Microsoft Graph allows")]
    TooLarge(u64),
    /// The intake did not take the batch; nothing of it was acknowledged.
    #[error(transparent)]
    Intake(#[from] IntakeError),
}

impl GraphError {
    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GraphError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Where the source reads ([`GraphSettings::location`]).
    pub location: String,
    /// When the token obtained for the check ends.
    pub token_expires_at: SystemTime,
    /// The folder's display name (`Inbox`).
    pub folder_name: String,
    /// Unread messages in the folder: what the watcher would take in next.
    pub unread: u64,
    /// All messages in the folder.
    pub total: u64,
}

/// For `postern check`: validates `settings`, obtains a token and reads the folder's counts.
/// Changes nothing in the mailbox.
pub async fn check(settings: &GraphSettings) -> Result<CheckReport, GraphError> {
    let client = client::GraphClient::new(settings)?;
    let token = client.token().await?;
    let folder = client.folder().await?;
    Ok(CheckReport {
        location: settings.location(),
        token_expires_at: client.token_expiry().unwrap_or(token.expires_at()),
        folder_name: folder.display_name,
        unread: folder.unread,
        total: folder.total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GraphSettings {
        GraphSettings::new(
            "incoming_email",
            "in@example.com",
            "tenant-1",
            "client",
            "s3cret!",
        )
    }

    #[test]
    fn defaults_are_valid() {
        assert!(settings().validate().is_ok());
    }

    #[test]
    fn invalid_settings_are_named_without_the_secret() {
        type Change = fn(&mut GraphSettings);
        let cases: Vec<(Change, &str)> = vec![
            (|s| s.user.clear(), "user"),
            (|s| s.folder = "a/b".into(), "mailbox"),
            (|s| s.tenant_id = "x/../y".into(), "tenant_id"),
            (|s| s.client_id.clear(), "client_id"),
            (|s| s.client_secret = Secret::default(), "client_secret"),
            (|s| s.poll_interval = Duration::ZERO, "poll_interval"),
            (|s| s.page_size = 0, "page_size"),
            (
                |s| s.graph_endpoint = "http://graph.example".into(),
                "graph_endpoint",
            ),
            (
                |s| s.azure_ad_endpoint = "not a url".into(),
                "azure_ad_endpoint",
            ),
        ];
        for (change, named) in cases {
            let mut s = settings();
            change(&mut s);
            let error = s.validate().expect_err("invalid").to_string();
            assert!(error.contains(named), "{error:?} should name {named}");
            assert!(!error.contains("s3cret!"));
        }
        assert!(!format!("{:?}", settings()).contains("s3cret!"));
    }

    #[test]
    fn identity_names_user_folder_and_id() {
        assert_eq!(
            settings().identity("AAMk="),
            "graph:in@example.com/inbox:AAMk="
        );
    }
}
