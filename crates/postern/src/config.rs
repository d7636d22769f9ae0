//! `postern.yml`: GitLab's mailbox sections verbatim, postern's own sections beside them.
//!
//! The `incoming_email:` and `service_desk_email:` sections take exactly the keys of the matching
//! `gitlab.yml` sections, so an administrator can paste theirs. Unknown keys are an error that
//! names the key: mail_room silently falls back to defaults on a typo, and a mailbox that quietly
//! uses the wrong folder loses mail. For the same reason the `gitlab.yml` keys that would have
//! no effect here are refused with advice ([`GitlabDeliveryKey`], [`EncryptedSecretFile`]);
//! only mail_room's `log_path`, harmless to ignore, is accepted and ignored.

use std::path::{Path, PathBuf};

use anyhow::Context;
use postern_gitlab::{DeliveryMethod, GraphOptions, InboxMethod, MailboxSettings};
use postern_mail::trim::TrimMode;
use postern_mail::{AddressTemplate, AnalysisOptions, AttachmentLimits, Mailbox, ReplyOptions};
use serde::Deserialize;

/// The embedded default incoming address, used when nothing is configured.
pub const DEFAULT_INCOMING_ADDRESS: &str = "incoming+%{key}@localhost";
/// The embedded default instance host.
pub const DEFAULT_HOST: &str = "localhost";

pub use postern_vocab::Secret;

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
    pub listener: Option<ListenConfig>,
    /// The outgoing SMTP relay.
    pub smtp: Option<SmtpConfig>,
    /// Logging of `serve`.
    pub log: Option<LogConfig>,
    /// What one message may make postern do, and when failing messages are set aside.
    pub limits: Option<LimitsConfig>,
    /// Which trimmer cuts quotes and signatures from replies (default `postern`).
    pub reply_trimming: Option<ReplyTrimming>,
    /// Who may act by mail: DKIM, SPF, DMARC and the policy applied to them.
    pub sender_authentication: Option<SenderAuthenticationConfig>,
    /// A Redis the instances watching the same mailboxes share, so that they notice one
    /// another.
    pub redis: Option<RedisSection>,
}

/// `redis:`. Used only to notice other instances on the same mailboxes: with stores of their
/// own they would handle every message twice, and each says so (log, `/ready`, `check`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSection {
    /// `redis://[:password@]host[:port][/db]`, `rediss://…` or `unix:///path`; a secret because
    /// of the password.
    pub url: Secret,
    /// A prefix for postern's keys, when the Redis is shared with other applications.
    pub namespace: Option<String>,
}

/// `sender_authentication:`. Without it, the policy is `dmarc` with the system's resolver.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderAuthenticationConfig {
    /// `off` (verify nothing), `dmarc` (default: honour the From domain's own DMARC policy) or
    /// `require` (acting as a user needs a DMARC pass or an aligned DKIM pass).
    pub policy: Option<postern_auth::Policy>,
    /// authserv-ids of the MTAs whose `Authentication-Results` headers are believed.
    #[serde(default)]
    pub trusted_authserv_ids: Vec<String>,
    /// Host names those MTAs write after `by` in their `Received` lines (default: the
    /// authserv-ids).
    #[serde(default)]
    pub trusted_hosts: Vec<String>,
    /// The DNS resolver used for verification.
    pub dns: Option<DnsSection>,
}

/// `sender_authentication.dns:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    /// Resolvers as `ip` or `ip:port` (default: those of /etc/resolv.conf).
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// How long one query may take, in milliseconds (default 2000).
    pub timeout_ms: Option<u64>,
    /// How many times a query is sent before it counts as a temporary error (default 2).
    pub attempts: Option<usize>,
}

/// Overrides `sender_authentication.policy` (`off`, `dmarc`, `require`): for a machine without
/// DNS, or a test run that is not about authentication.
pub const POLICY_ENV: &str = "POSTERN_SENDER_AUTHENTICATION";

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
    pub delete_after_delivery: Option<bool>,
    pub expunge_deleted: Option<bool>,
    /// `imap` (default) or `microsoft_graph`.
    pub inbox_method: Option<InboxMethod>,
    /// Microsoft Graph's keys, and postern's OAuth keys for IMAP.
    pub inbox_options: Option<GraphOptions>,
    /// mail_room's log file. Accepted so that a pasted `gitlab.yml` section loads, and ignored:
    /// postern logs to standard error, as `log:` says.
    #[serde(rename = "log_path")]
    pub _log_path: Option<serde::de::IgnoredAny>,
    /// GitLab's keys for handing mail over to GitLab; refused here (see [`GitlabDeliveryKey`]).
    #[serde(rename = "delivery_method")]
    pub _delivery_method: Option<GitlabDeliveryKey<0>>,
    #[serde(rename = "gitlab_url")]
    pub _gitlab_url: Option<GitlabDeliveryKey<1>>,
    #[serde(rename = "secret_file")]
    pub _secret_file: Option<GitlabDeliveryKey<2>>,
    #[serde(rename = "auth_token")]
    pub _auth_token: Option<GitlabDeliveryKey<3>>,
    #[serde(rename = "public_key_files")]
    pub _public_key_files: Option<GitlabDeliveryKey<4>>,
    /// GitLab's encrypted `user`/`password` override; refused (see [`EncryptedSecretFile`]).
    #[serde(rename = "encrypted_secret_file")]
    pub _encrypted_secret_file: Option<EncryptedSecretFile>,
    /// (postern) `login` (default), `plain` or `xoauth2`.
    pub auth_method: Option<String>,
    /// (postern) XOAUTH2: a file holding the access token, read at every login.
    pub oauth2_token_file: Option<PathBuf>,
    /// (postern) An extra CA certificate (PEM) to trust for this mailbox.
    pub tls_ca_file: Option<PathBuf>,
    /// (postern) Allow a connection without TLS; honoured only for a loopback host.
    pub allow_plaintext: Option<bool>,
}

impl MailboxConfig {
    /// This section in the one typed model of a mailbox that GitLab's files are read into too,
    /// with the defaults filled in: GitLab's, except that `port` defaults to 993 with `ssl`
    /// (the only sensible port for implicit TLS) and plaintext needs `allow_plaintext`.
    pub fn settings(&self, mailbox: postern_store::Mailbox) -> MailboxSettings {
        // postern.yml never hands mail to GitLab; the delivery fields keep their defaults and
        // are not read.
        let mut settings = MailboxSettings::with_defaults(mailbox, DeliveryMethod::Webhook);
        let ssl = self.ssl.unwrap_or(false);
        settings.enabled = self.enabled.unwrap_or(false);
        settings.address.clone_from(&self.address);
        settings.user.clone_from(&self.user);
        settings.password.clone_from(&self.password);
        settings.host.clone_from(&self.host);
        settings.port = self.port.unwrap_or(if ssl { 993 } else { 143 });
        settings.ssl = ssl;
        settings.start_tls = self.start_tls.unwrap_or(false);
        if let Some(folder) = &self.mailbox {
            settings.folder.clone_from(folder);
        }
        if let Some(seconds) = self.idle_timeout {
            settings.idle_timeout = seconds;
        }
        settings.delete_after_delivery = self.delete_after_delivery.unwrap_or(true);
        settings.expunge_deleted = self.expunge_deleted.unwrap_or(false);
        settings.inbox_method = self.inbox_method.unwrap_or(InboxMethod::Imap);
        settings.inbox_options.clone_from(&self.inbox_options);
        settings.auth_method.clone_from(&self.auth_method);
        settings
            .oauth2_token_file
            .clone_from(&self.oauth2_token_file);
        settings.tls_ca_file.clone_from(&self.tls_ca_file);
        settings.allow_plaintext = self.allow_plaintext.unwrap_or(false);
        settings
    }
}

/// The `gitlab.yml` mailbox keys that only tell mail_room how to hand mail to GitLab. The
/// fields that refuse them are typed `GitlabDeliveryKey<i>`, `i` the key's index here.
const GITLAB_DELIVERY_KEYS: [&str; 5] = [
    "delivery_method",
    "gitlab_url",
    "secret_file",
    "auth_token",
    "public_key_files",
];

/// One of [`GITLAB_DELIVERY_KEYS`]. `postern.yml` configures postern processing the mail
/// itself, so such a key would have no effect; an administrator who wrote one most likely
/// wants companion mode, which reads these keys from GitLab's own file. It is refused with that
/// advice instead of ignored.
#[derive(Debug)]
pub struct GitlabDeliveryKey<const KEY: usize>;

impl<'de, const KEY: usize> Deserialize<'de> for GitlabDeliveryKey<KEY> {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        let key = GITLAB_DELIVERY_KEYS.get(KEY).copied().unwrap_or("this key");
        Err(serde::de::Error::custom(format!(
            "`{key}` says how mail_room hands mail to GitLab, which postern.yml does not \
             configure (postern processes the mail itself): remove it, or to hand mail to \
             GitLab run `postern serve --gitlab-config <gitlab.yml>`, which reads it there"
        )))
    }
}

/// GitLab's `encrypted_secret_file`: `user` and `password` kept in Rails' encrypted settings,
/// which postern cannot decrypt. Ignoring it would log in without the password GitLab uses,
/// so it is refused with the way out.
#[derive(Debug)]
pub struct EncryptedSecretFile;

impl<'de> Deserialize<'de> for EncryptedSecretFile {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "postern cannot read GitLab's encrypted settings (`encrypted_secret_file`): remove \
             the key and write `user` and `password` in this section",
        ))
    }
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
    /// Days a reply key stays valid after its notification was sent (default: for ever).
    pub reply_key_max_age_days: Option<u32>,
    /// Automatic mails (reject notices, Service Desk thank-yous, verification results) to one
    /// address per hour, every kind counted together (default 5; 0 sends none).
    pub auto_mail_per_recipient: Option<u32>,
    /// Automatic mails per hour in all (default 500; 0 sends none).
    pub auto_mail_per_hour: Option<u32>,
}

/// `store:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://…` or `postgres://user:password@host/db`; a secret because of the password.
    pub url: Option<Secret>,
    pub data_dir: Option<PathBuf>,
    /// The key sealing incoming-email tokens in the database (default
    /// `<data_dir>/secrets/token.key`). Instances sharing one PostgreSQL database must share
    /// this key: point each at the same file, or copy it to each.
    pub token_key_file: Option<PathBuf>,
    /// The projects' git repositories (default `<data_dir>/repositories`). Instances sharing
    /// one PostgreSQL database must share this directory too (a shared file system): the
    /// database keeps everything else, but not the repositories.
    pub repositories_dir: Option<PathBuf>,
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
    /// HTTPS of postern's own, for an installation without a reverse proxy.
    pub tls: Option<WebTls>,
}

/// `web.tls:`: the certificate chain and private key (PEM files) `serve` answers HTTPS with.
/// Both are read again on SIGHUP; a pair that does not load keeps the one in use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebTls {
    /// The server's certificate, followed by any intermediates.
    pub certificate: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `listener:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
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

    /// `web.external_url` without a trailing slash, when set; an error names what is wrong
    /// with it (a scheme other than http/https, no host, spaces or control characters).
    pub fn external_url(&self) -> anyhow::Result<Option<String>> {
        let Some(url) = self
            .web
            .as_ref()
            .and_then(|web| web.external_url.as_deref())
        else {
            return Ok(None);
        };
        let url = url.trim();
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        let host_ok = url
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.trim_end_matches('/').is_empty());
        if !scheme_ok || !host_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            anyhow::bail!(
                "web.external_url: expected http://… or https://… without spaces, not {url:?}"
            );
        }
        Ok(Some(url.trim_end_matches('/').to_owned()))
    }

    /// The sender-authentication policy: [`POLICY_ENV`], else `sender_authentication.policy`,
    /// else `dmarc`.
    pub fn sender_policy(&self) -> Result<postern_auth::Policy, String> {
        if let Ok(value) = std::env::var(POLICY_ENV) {
            return value
                .parse::<postern_auth::Policy>()
                .map_err(|e| format!("{POLICY_ENV} {e}"));
        }
        Ok(self
            .sender_authentication
            .as_ref()
            .and_then(|section| section.policy)
            .unwrap_or_default())
    }

    /// The verifier's configuration from `sender_authentication:`.
    pub fn auth_config(&self) -> Result<postern_auth::AuthConfig, String> {
        let default = postern_auth::DnsConfig::default();
        let section = self.sender_authentication.as_ref();
        let dns = section.and_then(|section| section.dns.as_ref());
        let nameservers = dns
            .map(|dns| dns.nameservers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|server| parse_nameserver(server))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(postern_auth::AuthConfig {
            dns: postern_auth::DnsConfig {
                nameservers,
                timeout: dns
                    .and_then(|dns| dns.timeout_ms)
                    .map_or(default.timeout, std::time::Duration::from_millis),
                attempts: dns.and_then(|dns| dns.attempts).unwrap_or(default.attempts),
            },
            trusted_authserv_ids: section
                .map(|section| section.trusted_authserv_ids.clone())
                .unwrap_or_default(),
            trusted_hosts: section
                .map(|section| section.trusted_hosts.clone())
                .unwrap_or_default(),
        })
    }

    /// The trimming mode of `reply_trimming:` (default postern's own).
    pub fn trim_mode(&self) -> TrimMode {
        self.reply_trimming
            .map_or(TrimMode::Postern, TrimMode::from)
    }

    /// `limits.max_attachments` and `max_attachment_bytes`, defaults filled in: the receiver's
    /// first step refuses a message over them, in `inspect` as in processing.
    pub fn attachment_limits(&self) -> AttachmentLimits {
        let default = AttachmentLimits::default();
        let limits = self.limits.as_ref();
        AttachmentLimits {
            max_attachments: limits
                .and_then(|limits| limits.max_attachments)
                .unwrap_or(default.max_attachments),
            max_attachment_bytes: limits
                .and_then(|limits| limits.max_attachment_bytes)
                .unwrap_or(default.max_attachment_bytes),
        }
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
            limits: self.attachment_limits(),
        }
    }
}

/// `ip` or `ip:port` (port 53 by default; IPv6 with a port as `[ip]:port`).
fn parse_nameserver(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<std::net::SocketAddr>() {
        return Ok(address);
    }
    text.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!(
                "sender_authentication.dns.nameservers: {text:?} is not an IP address or ip:port"
            )
        })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
