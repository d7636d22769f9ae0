//! `postern.yml`: GitLab's mailbox sections verbatim, postern's own sections beside them.
//!
//! The `incoming_email:` and `service_desk_email:` sections take exactly the keys of the matching
//! `gitlab.yml` sections, so an administrator can paste theirs. Unknown keys are an error that
//! names the key: mail_room silently falls back to defaults on a typo, and a mailbox that quietly
//! uses the wrong folder loses mail.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use postern_mail::trim::TrimMode;
use postern_mail::{AddressTemplate, AnalysisOptions, Mailbox, ReplyOptions};
use serde::Deserialize;

/// The embedded default incoming address, used when nothing is configured.
pub const DEFAULT_INCOMING_ADDRESS: &str = "incoming+%{key}@localhost";
/// The embedded default instance host.
pub const DEFAULT_HOST: &str = "localhost";

/// A value that must never be printed: passwords, client secrets, tokens.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret read from elsewhere (GitLab's configuration in companion mode).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// GitLab's `incoming_email:` section.
    pub incoming_email: Option<MailboxConfig>,
    /// GitLab's `service_desk_email:` section.
    pub service_desk_email: Option<MailboxConfig>,
    /// This postern instance.
    pub instance: Option<InstanceConfig>,
    /// Where data lives.
    pub store: Option<StoreConfig>,
    /// The web server.
    pub web: Option<WebSection>,
    /// The built-in LMTP/SMTP listener.
    #[allow(
        dead_code,
        reason = "read by `serve`, which arrives with the mail sources"
    )]
    pub listener: Option<ListenConfig>,
    /// The outgoing SMTP relay.
    pub smtp: Option<SmtpConfig>,
    /// Logging of `serve`.
    pub log: Option<LogConfig>,
    /// What one message may make postern do, and when failing messages are set aside.
    pub limits: Option<LimitsConfig>,
    /// Which trimmer cuts quotes and signatures from replies (default `postern`).
    pub reply_trimming: Option<ReplyTrimming>,
}

/// `reply_trimming:`: `gitlab` reproduces GitLab's trimmer byte for byte; `postern` (the
/// default) keeps what GitLab's is known to eat and knows more languages' quote headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyTrimming {
    Gitlab,
    Postern,
}

impl From<ReplyTrimming> for TrimMode {
    fn from(value: ReplyTrimming) -> TrimMode {
        match value {
            ReplyTrimming::Gitlab => TrimMode::Gitlab,
            ReplyTrimming::Postern => TrimMode::Postern,
        }
    }
}

/// `limits:`. Every key has a safe default; a message over a limit is refused with a reject
/// notice that names it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest message `postern receive` takes from a pipe, in bytes (default 50 MiB); a larger
    /// one is kept as its header block and refused as `email_too_large`.
    pub max_message_bytes: Option<usize>,
    /// Attachments uploaded from one message (default 100).
    pub max_attachments: Option<usize>,
    /// Decoded bytes of one message's attachments together (default 50 MiB).
    pub max_attachment_bytes: Option<usize>,
    /// Quick actions run from one message (default 100).
    pub max_quick_actions: Option<usize>,
    /// Temporary failures in a row, with the same reason, after which a message is
    /// quarantined (default 8, about an hour of back-off).
    pub quarantine_after_failures: Option<u32>,
    /// Lines in all patches of one merge-request mail (default 200 000).
    pub max_patch_lines: Option<usize>,
    /// Files changed by all patches of one mail (default 1 000).
    pub max_patch_files: Option<usize>,
    /// The largest size one binary hunk of a patch may declare, in bytes (default 32 MiB).
    pub max_patch_binary_bytes: Option<u64>,
}

/// `log:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json` (one JSON object per line).
    pub format: Option<String>,
    /// An `EnvFilter` directive such as `info` (default) or `debug`; `POSTERN_LOG` overrides it.
    pub level: Option<String>,
}

/// One mailbox, with the keys of `gitlab.yml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "the mail sources that read these fields arrive with `serve`"
)]
pub struct MailboxConfig {
    pub enabled: Option<bool>,
    pub address: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub ssl: Option<bool>,
    pub start_tls: Option<bool>,
    pub mailbox: Option<String>,
    pub idle_timeout: Option<u64>,
    pub log_path: Option<PathBuf>,
    pub delete_after_delivery: Option<bool>,
    pub expunge_deleted: Option<bool>,
    pub inbox_method: Option<String>,
    pub inbox_options: Option<InboxOptions>,
    pub delivery_method: Option<String>,
    pub auth_token: Option<AuthToken>,
    pub gitlab_url: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub public_key_files: Option<Vec<PathBuf>>,
    pub encrypted_secret_file: Option<PathBuf>,
    /// (postern) `login` (default), `plain` or `xoauth2`.
    pub auth_method: Option<String>,
    /// (postern) XOAUTH2: a file holding the access token, read at every login.
    pub oauth2_token_file: Option<PathBuf>,
    /// (postern) An extra CA certificate (PEM) to trust for this mailbox.
    pub tls_ca_file: Option<PathBuf>,
    /// (postern) Allow a connection without TLS; honoured only for a loopback host.
    pub allow_plaintext: Option<bool>,
}

/// `inbox_options` for Microsoft Graph.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "read by the Graph source, which arrives with `serve`"
)]
pub struct InboxOptions {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub poll_interval: Option<u64>,
    pub azure_ad_endpoint: Option<String>,
    pub graph_endpoint: Option<String>,
    /// (postern) Messages listed per page (`$top`), 1 to 1000 (default 50).
    pub page_size: Option<u32>,
    /// (postern) IMAP XOAUTH2/OAUTHBEARER: `client_credentials` (default, Azure AD),
    /// `refresh_token` (delegated access, after `postern oauth login`) or `service_account`
    /// (Google, domain-wide delegation).
    pub oauth_grant: Option<String>,
    /// (postern) `google` or `microsoft`: the token and device endpoints and scope to use.
    pub provider: Option<String>,
    /// (postern) The token endpoint, instead of the provider's.
    pub token_url: Option<String>,
    /// (postern) The device authorization endpoint, instead of the provider's.
    pub device_authorization_url: Option<String>,
    /// (postern) The scope asked for, instead of the provider's.
    pub scope: Option<String>,
    /// (postern) Where the refresh token is kept (default
    /// `<data_dir>/oauth/<section>.refresh-token`).
    pub refresh_token_file: Option<PathBuf>,
    /// (postern) A Google service account key file (JSON).
    pub service_account_file: Option<PathBuf>,
    /// (postern) The user a service account acts for (default: the mailbox's `user`).
    pub subject: Option<String>,
}

/// `auth_token` of the webhook delivery (Omnibus/Helm style).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "read by the GitLab delivery, which arrives with companion mode"
)]
pub struct AuthToken {
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
}

/// `instance:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Host name used in notification Message-IDs and `References` (GitLab's `gitlab.host`).
    pub host: Option<String>,
    /// Name of this instance in mail sent to people (default `postern`).
    pub name: Option<String>,
    /// Seconds between two reject notices to the same sender for the same reason (default 3600).
    pub reject_notice_interval: Option<i64>,
}

/// `store:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://…` or `postgres://user:password@host/db`; a secret because of the password.
    pub url: Option<Secret>,
    pub data_dir: Option<PathBuf>,
}

/// `web:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// Address to bind (default `127.0.0.1:8080`).
    pub listen: Option<String>,
    /// Where people reach the UI (`https://tracker.example.com`), when that is not
    /// `http://<listen>`: behind a reverse proxy. Links printed or mailed use it; `https://`
    /// makes cookies `Secure`.
    pub external_url: Option<String>,
    /// Reverse proxies (CIDR networks or addresses) whose `Forwarded` / `X-Forwarded-For`
    /// headers name the client; no other peer's are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// `listener:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "read by `serve`")]
pub struct ListenConfig {
    pub listen: Option<String>,
}

/// `smtp:`: the relay outgoing mail goes through. Without it, mail is written as `.eml` files
/// into `<data_dir>/outbox/`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host name or address (required when the section is present).
    pub host: Option<String>,
    /// Port (default 587 with `starttls`, 465 with `tls`, 25 with `none`).
    pub port: Option<u16>,
    /// Login name, if the relay wants one.
    pub user: Option<String>,
    /// Password for `user`.
    pub password: Option<Secret>,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (loopback/trusted relays).
    pub tls: Option<String>,
    /// Envelope and header sender of postern's mail (default `noreply@<instance.host>`).
    pub from: Option<String>,
    /// Seconds to wait for the relay (default 30).
    pub timeout: Option<u64>,
}

impl Config {
    /// Reads and checks `path`. The error names the file and, for YAML problems, the key and line.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("invalid configuration in {}", path.display()))
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        // No source snippet in the message: it would quote the lines around the error, and
        // those may hold a password. The message names the key, the line and the column.
        let options = serde_saphyr::options! { with_snippet: false };
        let config: Config = serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(config)
    }

    /// The instance host, defaulting to `localhost`.
    pub fn host(&self) -> String {
        self.instance
            .as_ref()
            .and_then(|instance| instance.host.clone())
            .unwrap_or_else(|| DEFAULT_HOST.to_owned())
    }

    /// The instance name, defaulting to `postern`.
    pub fn instance_name(&self) -> String {
        self.instance
            .as_ref()
            .and_then(|instance| instance.name.clone())
            .unwrap_or_else(|| "postern".to_owned())
    }

    /// The incoming address template: the configured one when the section is present and not
    /// disabled, else the embedded default when no section exists at all.
    pub fn incoming_address(&self) -> Option<String> {
        match &self.incoming_email {
            None => Some(DEFAULT_INCOMING_ADDRESS.to_owned()),
            Some(section) if section.enabled == Some(false) => None,
            Some(section) => section.address.clone(),
        }
    }

    /// The Service Desk address template, when that mailbox is configured and not disabled.
    pub fn service_desk_address(&self) -> Option<String> {
        self.service_desk_email
            .as_ref()
            .filter(|section| section.enabled != Some(false))
            .and_then(|section| section.address.clone())
    }

    /// The trimming mode of `reply_trimming:` (default postern's own).
    pub fn trim_mode(&self) -> TrimMode {
        self.reply_trimming
            .map_or(TrimMode::Postern, TrimMode::from)
    }

    /// Analysis options for `inspect` from this configuration.
    pub fn analysis_options(&self, mailbox: Mailbox, reply: ReplyOptions) -> AnalysisOptions {
        AnalysisOptions {
            mailbox,
            incoming_address: self.incoming_address().as_deref().map(AddressTemplate::new),
            service_desk_address: self
                .service_desk_address()
                .as_deref()
                .map(AddressTemplate::new),
            host: Some(self.host()),
            reply,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_uses_only_known_keys() {
        let example = include_str!("../../../dist/postern.example.yml");
        let config = Config::parse(example).expect("dist/postern.example.yml parses");
        assert!(config.incoming_email.is_some() && config.log.is_some());
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = Config::parse("incoming_email:\n  adress: x\n").expect_err("typo must fail");
        assert!(format!("{error:#}").contains("adress"), "{error:#}");
    }

    #[test]
    fn errors_quote_no_line_of_the_file() {
        let text = "incoming_email:\n  password: \"hunter2\"\n  adress: x\n";
        let error = Config::parse(text).expect_err("typo must fail");
        let message = format!("{error:#}");
        assert!(message.contains("adress"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn gitlab_section_is_accepted_verbatim() {
        let text = r#"
incoming_email:
  enabled: true
  address: "gitlab-incoming+%{key}@gmail.com"
  user: "gitlab-incoming@gmail.com"
  password: "[REDACTED]"
  host: "imap.gmail.com"
  port: 993
  ssl: true
  start_tls: false
  mailbox: "inbox"
  idle_timeout: 60
  log_path: "log/mail_room_json.log"
  expunge_deleted: false
  delete_after_delivery: true
  inbox_method: "microsoft_graph"
  inbox_options:
    tenant_id: "t"
    client_id: "c"
    client_secret: "s"
    poll_interval: 60
instance:
  host: gitlab.example.com
"#;
        let config = Config::parse(text).expect("valid");
        assert_eq!(
            config.incoming_address().as_deref(),
            Some("gitlab-incoming+%{key}@gmail.com")
        );
        assert_eq!(config.host(), "gitlab.example.com");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("[REDACTED]") && !debug.contains("\"s\""),
            "{debug}"
        );
    }

    #[test]
    fn empty_file_means_embedded_defaults() {
        let config = Config::parse("").expect("empty is fine");
        assert_eq!(
            config.incoming_address().as_deref(),
            Some(DEFAULT_INCOMING_ADDRESS)
        );
        assert_eq!(config.host(), DEFAULT_HOST);
    }
}
