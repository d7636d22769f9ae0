//! What one IMAP watcher connects to and how it behaves, validated once at start-up.
//!
//! [`ImapConfig`] is the plain, public form the caller fills in (from `incoming_email:` or
//! `service_desk_email:`); [`ImapConfig::validate`] turns it into [`ImapSettings`] or says
//! exactly which value is wrong. Only validated settings reach the network code, so a
//! plaintext connection to a remote host or an IDLE longer than servers allow cannot happen.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::ImapError;
use postern_vocab::Secret;

/// The longest IDLE servers tolerate without traffic (RFC 2177 asks clients to re-issue IDLE
/// at least every 29 minutes); longer values are refused, as mail_room does.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(29 * 60);

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (IMAPS, usually port 993).
    ImplicitTls,
    /// Plain connection upgraded with `STARTTLS` before logging in (usually port 143).
    StartTls,
    /// No encryption at all: only with `allow_plaintext` and a loopback host.
    Plain,
}

/// A future that yields an OAuth2 access token.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Secret, String>> + Send + 'a>>;

/// Where XOAUTH2 access tokens come from (a Microsoft client-credentials flow, a token file…).
pub trait TokenSource: Send + Sync {
    /// An access token. `refresh` is `true` when the server just refused the previous one, so
    /// a caching source must not hand out the same token again. Errors are plain text without
    /// secrets; they end up in logs and the status page.
    fn access_token(&self, refresh: bool) -> TokenFuture<'_>;
}

/// How the watcher authenticates.
#[derive(Clone)]
pub enum Auth {
    /// `LOGIN user password`.
    Login {
        /// The password.
        password: Secret,
    },
    /// `AUTHENTICATE PLAIN` (SASL PLAIN, RFC 4616).
    Plain {
        /// The password.
        password: Secret,
    },
    /// `AUTHENTICATE XOAUTH2` with a bearer token (Microsoft 365, Gmail). When the server
    /// refuses a token, one fresh token is asked for and tried before giving up.
    XOAuth2 {
        /// Where tokens come from.
        tokens: Arc<dyn TokenSource>,
    },
    /// `AUTHENTICATE OAUTHBEARER` (RFC 7628), the standard form of XOAUTH2 (Gmail, Dovecot);
    /// tokens as for [`Auth::XOAuth2`].
    OAuthBearer {
        /// Where tokens come from.
        tokens: Arc<dyn TokenSource>,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Login { .. } => f.write_str("Login { password: [redacted] }"),
            Auth::Plain { .. } => f.write_str("Plain { password: [redacted] }"),
            Auth::XOAuth2 { .. } => f.write_str("XOAuth2 { tokens: [token source] }"),
            Auth::OAuthBearer { .. } => f.write_str("OAuthBearer { tokens: [token source] }"),
        }
    }
}

impl Auth {
    /// The password, for removing it from server error texts.
    pub(crate) fn password(&self) -> Option<&Secret> {
        match self {
            Auth::Login { password } | Auth::Plain { password } => Some(password),
            Auth::XOAuth2 { .. } | Auth::OAuthBearer { .. } => None,
        }
    }
}

/// The watcher's configuration as the caller gives it; see [`ImapConfig::new`] for the
/// defaults and [`ImapConfig::validate`] for the rules.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// The source's name in logs and status (`incoming_email`, `service_desk_email`).
    pub name: String,
    /// The server's host name or IP address (also the name its TLS certificate must carry).
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// TLS mode.
    pub security: Security,
    /// Whether [`Security::Plain`] is acceptable at all (and then only to a loopback host).
    pub allow_plaintext: bool,
    /// The login name.
    pub user: String,
    /// How to authenticate.
    pub auth: Auth,
    /// The folder to watch (default `inbox`).
    pub mailbox: String,
    /// How long one IDLE lasts before it is re-issued and the folder scanned again (default
    /// 60 s; at most [`MAX_IDLE_TIMEOUT`]). Without IDLE, the folder is scanned this often.
    pub idle_timeout: Duration,
    /// Flag taken-in messages `\Deleted` (and expunge them by UID) instead of only `\Seen`.
    pub delete_after_delivery: bool,
    /// For servers without UIDPLUS: send a folder-wide `EXPUNGE` after flagging. With UIDPLUS
    /// the watcher always removes exactly its own messages with `UID EXPUNGE`.
    pub expunge_deleted: bool,
    /// A PEM file of extra CA certificates to trust besides the platform's.
    pub extra_ca_file: Option<PathBuf>,
    /// At most this many messages per fetch and per [`crate::intake::Intake::take`] (default 50).
    pub batch_max_messages: usize,
    /// At most this many message bytes per batch (default 8 MiB); a single larger message is
    /// fetched alone. Memory use is bounded by this, not by the backlog.
    pub batch_max_bytes: u64,
    /// The largest message downloaded, in bytes (default
    /// [`crate::intake::DEFAULT_MAX_MESSAGE_SIZE`]). A larger one (by `RFC822.SIZE`, or by
    /// what the server actually sends) is fetched as its header block only and handed on with
    /// [`crate::intake::Fetched::oversized`] set. Also bounds what one server response may make
    /// the watcher hold.
    pub max_message_size: u64,
    /// How long connecting, the TLS handshake, logging in and each command may take before
    /// the connection is given up (default 60 s). While a batch is fetched, each message must
    /// arrive within this time: a slow server that keeps sending is fine, a silent one is not.
    pub command_timeout: Duration,
}

impl ImapConfig {
    /// A configuration with the defaults: implicit TLS, folder `inbox`, IDLE re-issued every
    /// 60 s, messages flagged `\Seen` only, batches of at most 50 messages and 8 MiB, 60 s per
    /// command, no plaintext.
    pub fn new(name: &str, host: &str, port: u16, user: &str, auth: Auth) -> ImapConfig {
        ImapConfig {
            name: name.to_owned(),
            host: host.to_owned(),
            port,
            security: Security::ImplicitTls,
            allow_plaintext: false,
            user: user.to_owned(),
            auth,
            mailbox: "inbox".to_owned(),
            idle_timeout: Duration::from_secs(60),
            delete_after_delivery: false,
            expunge_deleted: false,
            extra_ca_file: None,
            batch_max_messages: 50,
            batch_max_bytes: 8 << 20,
            max_message_size: crate::intake::DEFAULT_MAX_MESSAGE_SIZE,
            command_timeout: Duration::from_secs(60),
        }
    }

    /// Checks every rule and returns the settings the watcher runs with, or a
    /// [`ImapError::Config`] naming the offending value.
    pub fn validate(self) -> Result<ImapSettings, ImapError> {
        let fail = |message: String| Err(ImapError::Config(format!("{}: {message}", self.name)));
        if self.host.trim().is_empty() {
            return fail("host is empty".to_owned());
        }
        if self.port == 0 {
            return fail("port 0 is not a valid port".to_owned());
        }
        if self.user.is_empty() {
            return fail("user is empty".to_owned());
        }
        if self.auth.password().is_some_and(Secret::is_empty) {
            return fail("password is empty".to_owned());
        }
        if self.mailbox.is_empty() {
            return fail("mailbox is empty".to_owned());
        }
        if self.idle_timeout.is_zero() {
            return fail("idle_timeout must be more than 0 seconds".to_owned());
        }
        if self.idle_timeout > MAX_IDLE_TIMEOUT {
            return fail(format!(
                "idle_timeout of {} s is more than the {} s (29 minutes) IMAP servers allow",
                self.idle_timeout.as_secs(),
                MAX_IDLE_TIMEOUT.as_secs()
            ));
        }
        if self.batch_max_messages == 0 || self.batch_max_bytes == 0 {
            return fail("batch limits must be more than 0".to_owned());
        }
        if self.max_message_size == 0 {
            return fail("max_message_size must be more than 0".to_owned());
        }
        if self.command_timeout.is_zero() {
            return fail("command timeout must be more than 0".to_owned());
        }
        if self.security == Security::Plain {
            if !self.allow_plaintext {
                return fail(format!(
                    "a plaintext IMAP connection to {} would send the password unencrypted; \
                     use ssl (implicit TLS) or start_tls",
                    self.host
                ));
            }
            if !is_loopback(&self.host) {
                return fail(format!(
                    "plaintext IMAP is only allowed to a loopback host (127.0.0.1, ::1, \
                     localhost), not {}; use ssl (implicit TLS) or start_tls",
                    self.host
                ));
            }
        }
        if let Some(path) = &self.extra_ca_file
            && !path.is_file()
        {
            return fail(format!("CA file {} does not exist", path.display()));
        }
        Ok(ImapSettings { config: self })
    }
}

/// Whether `host` names this machine: a loopback address or `localhost`.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// Validated settings of one watcher (see [`ImapConfig`] for the meaning of each value).
#[derive(Debug, Clone)]
pub struct ImapSettings {
    config: ImapConfig,
}

impl ImapSettings {
    /// The validated configuration.
    pub fn config(&self) -> &ImapConfig {
        &self.config
    }

    /// The source part of every identity and cursor: `<user>@<host>/<folder>`.
    pub fn source(&self) -> String {
        format!(
            "{}@{}/{}",
            self.config.user, self.config.host, self.config.mailbox
        )
    }

    /// Where the watcher reads from, for status pages: `<user>@<host>:<port>/<folder>`.
    pub fn location(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.config.user, self.config.host, self.config.port, self.config.mailbox
        )
    }

    /// The identity of message `uid` under `validity`:
    /// `imap:<user>@<host>/<folder>:<uidvalidity>:<uid>`.
    pub fn identity(&self, validity: u32, uid: u32) -> String {
        format!("imap:{}:{validity}:{uid}", self.source())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str) -> ImapConfig {
        ImapConfig::new(
            "incoming_email",
            host,
            993,
            "incoming",
            Auth::Login {
                password: Secret::new("pw-secret"),
            },
        )
    }

    fn error(config: ImapConfig) -> String {
        match config.validate() {
            Ok(_) => panic!("expected a configuration error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let settings = config("imap.example.org").validate().expect("valid");
        assert_eq!(settings.config().mailbox, "inbox");
        assert_eq!(settings.config().idle_timeout, Duration::from_secs(60));
        assert_eq!(
            settings.identity(7, 42),
            "imap:incoming@imap.example.org/inbox:7:42"
        );
    }

    #[test]
    fn plaintext_needs_permission_and_loopback() {
        let mut remote = config("imap.example.org");
        remote.security = Security::Plain;
        assert!(error(remote.clone()).contains("unencrypted"));
        remote.allow_plaintext = true;
        assert!(error(remote).contains("only allowed to a loopback host"));
        for host in ["127.0.0.1", "::1", "[::1]", "localhost"] {
            let mut local = config(host);
            local.security = Security::Plain;
            local.allow_plaintext = true;
            assert!(local.validate().is_ok(), "{host}");
        }
    }

    #[test]
    fn idle_timeout_is_bounded() {
        let mut long = config("imap.example.org");
        long.idle_timeout = Duration::from_secs(30 * 60);
        assert!(error(long).contains("29 minutes"));
        let mut max = config("imap.example.org");
        max.idle_timeout = MAX_IDLE_TIMEOUT;
        assert!(max.validate().is_ok());
    }

    #[test]
    fn errors_and_debug_never_show_the_password() {
        let mut bad = config("imap.example.org");
        bad.mailbox.clear();
        assert!(!error(bad.clone()).contains("pw-secret"));
        assert!(!format!("{bad:?}").contains("pw-secret"));
    }
}
