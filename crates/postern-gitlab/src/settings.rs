//! The neutral form of a GitLab mailbox configuration: what `gitlab.yml`, Omnibus `gitlab.rb`,
//! `mail_room.yml` and postern's own `postern.yml` all say, with GitLab's key names and
//! defaults (see
//! <https://gitlab.com/gitlab-org/gitlab/-/blob/master/config/gitlab.yml.example>), plus the
//! keys postern adds (how to log in, what to trust). Every reader of a mailbox section fills
//! these types, and the watchers are built from them alone.

use std::path::PathBuf;

use postern_store::Mailbox;
pub use postern_vocab::Secret;

/// Which file a configuration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// A source install's `config/gitlab.yml`.
    GitlabYml,
    /// Omnibus `/etc/gitlab/gitlab.rb`.
    GitlabRb,
    /// mail_room's own `mail_room.yml`.
    MailRoomYml,
}

/// How messages are read from the mailbox (`inbox_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxMethod {
    /// IMAP (GitLab's default).
    Imap,
    /// Microsoft Graph.
    MicrosoftGraph,
}

/// How messages are handed to GitLab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMethod {
    /// `POST /api/v4/internal/mail_room/<mailbox>` with a JWT (mail_room's `postback`).
    Webhook,
    /// `LPUSH queue:default` of a Sidekiq job on GitLab's Redis (deprecated by GitLab).
    Sidekiq,
}

/// `inbox_options` of a mailbox: Microsoft Graph's (GitLab's keys), and the OAuth keys postern
/// adds for IMAP XOAUTH2 / OAUTHBEARER. `postern.yml` is read into it directly: a missing key
/// takes GitLab's default, an unknown key is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default = "GraphOptions::with_defaults", deny_unknown_fields)]
pub struct GraphOptions {
    /// Azure AD tenant.
    pub tenant_id: Option<String>,
    /// OAuth2 application (client) id.
    pub client_id: Option<String>,
    /// OAuth2 client secret.
    pub client_secret: Option<Secret>,
    /// Seconds between polls (GitLab's default 60).
    pub poll_interval: u64,
    /// Token endpoint base (default `https://login.microsoftonline.com`).
    pub azure_ad_endpoint: String,
    /// Graph API base (default `https://graph.microsoft.com`).
    pub graph_endpoint: String,
    /// (postern) Messages listed per page (`$top`), 1 to 1000; `None`: the watcher's default
    /// (50).
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

impl GraphOptions {
    /// GitLab's defaults, without credentials.
    pub fn with_defaults() -> GraphOptions {
        GraphOptions {
            tenant_id: None,
            client_id: None,
            client_secret: None,
            poll_interval: 60,
            azure_ad_endpoint: "https://login.microsoftonline.com".to_owned(),
            graph_endpoint: "https://graph.microsoft.com".to_owned(),
            page_size: None,
            oauth_grant: None,
            provider: None,
            token_url: None,
            device_authorization_url: None,
            scope: None,
            refresh_token_file: None,
            service_account_file: None,
            subject: None,
        }
    }
}

/// Where the webhook's HS256 secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookSecret {
    /// A file holding the Base64 of 32 random bytes (`secret_file`, mail_room's `jwt_secret_path`).
    File(PathBuf),
    /// The same text given inline (Omnibus `_auth_token`).
    Inline(Secret),
}

/// One mailbox (`incoming_email` or `service_desk_email`) with GitLab's keys and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSettings {
    /// Which mailbox this is.
    pub mailbox: Mailbox,
    /// `enabled` (default false).
    pub enabled: bool,
    /// `address`, with the `%{key}` placeholder.
    pub address: Option<String>,
    /// `user` (gitlab.rb `_email`): the IMAP login or the Graph mailbox.
    pub user: Option<String>,
    /// `password`.
    pub password: Option<Secret>,
    /// `host`.
    pub host: Option<String>,
    /// `port` (default 143).
    pub port: u16,
    /// `ssl` (default false).
    pub ssl: bool,
    /// `start_tls` (default false).
    pub start_tls: bool,
    /// `mailbox` (gitlab.rb `_mailbox_name`; default `inbox`).
    pub folder: String,
    /// `idle_timeout` in seconds (default 60).
    pub idle_timeout: u64,
    /// `log_path` (gitlab.rb `_log_file`).
    pub log_path: Option<PathBuf>,
    /// `delete_after_delivery` (default true).
    pub delete_after_delivery: bool,
    /// `expunge_deleted` (default false).
    pub expunge_deleted: bool,
    /// `inbox_method` (default IMAP).
    pub inbox_method: InboxMethod,
    /// `inbox_options` for Microsoft Graph.
    pub inbox_options: Option<GraphOptions>,
    /// `delivery_method`.
    pub delivery_method: DeliveryMethod,
    /// `gitlab_url`: where the webhook goes (no trailing `/`).
    pub gitlab_url: Option<String>,
    /// The webhook's HS256 secret.
    pub secret: Option<WebhookSecret>,
    /// postern's extension for ES256: the PEM private key whose public half GitLab has in
    /// `public_key_files`. When set, tokens are ES256 with a `kid`.
    pub private_key_file: Option<PathBuf>,
    /// `public_key_files` (what GitLab verifies ES256 tokens with).
    pub public_key_files: Vec<PathBuf>,
    /// `encrypted_secret_file` (GitLab's encrypted `user`/`password`; not readable here).
    pub encrypted_secret_file: Option<PathBuf>,
    /// (postern) `auth_method`: `login` (default), `plain`, `xoauth2` or `oauthbearer`.
    pub auth_method: Option<String>,
    /// (postern) XOAUTH2: a file holding the access token, read at every login.
    pub oauth2_token_file: Option<PathBuf>,
    /// (postern) An extra CA certificate (PEM) to trust for this mailbox.
    pub tls_ca_file: Option<PathBuf>,
    /// Whether the watcher may talk without TLS (it does so only to a loopback host). GitLab
    /// has no such key: with `ssl` and `start_tls` both false mail_room talks plaintext, so
    /// GitLab's files allow it; `postern.yml` must ask (`allow_plaintext`, default false).
    pub allow_plaintext: bool,
}

impl MailboxSettings {
    /// A disabled mailbox with GitLab's defaults.
    pub fn with_defaults(mailbox: Mailbox, delivery_method: DeliveryMethod) -> MailboxSettings {
        MailboxSettings {
            mailbox,
            enabled: false,
            address: None,
            user: None,
            password: None,
            host: None,
            port: 143,
            ssl: false,
            start_tls: false,
            folder: "inbox".to_owned(),
            idle_timeout: 60,
            log_path: None,
            delete_after_delivery: true,
            expunge_deleted: false,
            inbox_method: InboxMethod::Imap,
            inbox_options: None,
            delivery_method,
            gitlab_url: None,
            secret: None,
            private_key_file: None,
            public_key_files: Vec::new(),
            encrypted_secret_file: None,
            auth_method: None,
            oauth2_token_file: None,
            tls_ca_file: None,
            allow_plaintext: true,
        }
    }

    /// GitLab's enabled check: `enabled` and a non-blank address.
    pub fn is_active(&self) -> bool {
        self.enabled
            && self
                .address
                .as_deref()
                .is_some_and(|a| !a.trim().is_empty())
    }
}

/// GitLab's queues Redis, for Sidekiq delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://`, `rediss://` or `unix://` URL; may carry a password, hence secret. With
    /// sentinels, its host is the master's name (as redis-rb reads it).
    pub url: Secret,
    /// Database number, if not in the URL.
    pub db: Option<i64>,
    /// Sentinels as `(host, port)`.
    pub sentinels: Vec<(String, u16)>,
    /// Sidekiq queue (GitLab: `default`).
    pub queue: String,
    /// Key namespace (historic GitLab: `resque:gitlab`); none today.
    pub namespace: Option<String>,
    /// Whether GitLab's configuration names this Redis (`resque.yml`/`redis.queues.yml`,
    /// Omnibus' `redis_*` keys or its bundled Redis, a `mail_room.yml` with Redis arbitration
    /// or Sidekiq delivery) rather than it being GitLab's default assumed. Companion
    /// instances arbitrate through a configured Redis ([`crate::Arbiter`]); an assumed one
    /// may not be GitLab's, and waiting on it would hold mail back.
    pub configured: bool,
}

impl RedisSettings {
    /// A Redis at `url` with GitLab's queue, not marked [`RedisSettings::configured`].
    pub fn new(url: impl Into<String>) -> RedisSettings {
        RedisSettings {
            url: Secret::new(url),
            db: None,
            sentinels: Vec::new(),
            queue: "default".to_owned(),
            namespace: None,
            configured: false,
        }
    }
}

/// Everything postern needs from a GitLab configuration to stand in for mail_room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabMailboxes {
    /// Which file it came from.
    pub format: ConfigFormat,
    /// `incoming_email`, if the file has the section.
    pub incoming: Option<MailboxSettings>,
    /// `service_desk_email`, if the file has the section.
    pub service_desk: Option<MailboxSettings>,
    /// `gitlab.host`.
    pub gitlab_host: Option<String>,
    /// GitLab's own URL (`gitlab.{https,host,port,relative_url_root}` or `external_url`), the
    /// default for a mailbox's `gitlab_url`.
    pub gitlab_url: Option<String>,
    /// The queues Redis for Sidekiq delivery.
    pub redis: RedisSettings,
}

impl GitlabMailboxes {
    /// The mailboxes that are enabled with an address, incoming first.
    pub fn active(&self) -> impl Iterator<Item = &MailboxSettings> {
        [self.incoming.as_ref(), self.service_desk.as_ref()]
            .into_iter()
            .flatten()
            // mail_room.yml has no addresses: every mailbox it lists is one mail_room ran.
            .filter(|m| m.is_active() || (self.format == ConfigFormat::MailRoomYml && m.enabled))
    }

    /// The Redis companion instances arbitrate through ([`crate::Arbiter`]): GitLab's queues
    /// Redis when its configuration names it, or when a mailbox delivers through Sidekiq (which
    /// needs that Redis anyway). `None` when the Redis is only GitLab's default assumed.
    pub fn arbitration_redis(&self) -> Option<&RedisSettings> {
        let sidekiq = self
            .active()
            .any(|m| m.delivery_method == DeliveryMethod::Sidekiq);
        (self.redis.configured || sidekiq).then_some(&self.redis)
    }

    /// The webhook base URL of `settings`: its own `gitlab_url`, else GitLab's URL.
    pub fn webhook_base<'a>(&'a self, settings: &'a MailboxSettings) -> Option<&'a str> {
        settings
            .gitlab_url
            .as_deref()
            .or(self.gitlab_url.as_deref())
            .map(|u| u.trim_end_matches('/'))
    }
}

/// GitLab's name for a mailbox: `incoming_email` or `service_desk_email` (the config section and
/// the last segment of the webhook path).
pub fn mailbox_type(mailbox: Mailbox) -> &'static str {
    match mailbox {
        Mailbox::Incoming => "incoming_email",
        Mailbox::ServiceDesk => "service_desk_email",
    }
}

/// The mailbox a section reads, for telling instances on the same mailbox apart from others:
/// `imap:<user>@<host>/<folder>` or `graph:<user>/<folder>` (no port: one server, one mailbox).
pub fn mailbox_source(settings: &MailboxSettings) -> String {
    let user = settings.user.as_deref().unwrap_or_default();
    match settings.inbox_method {
        InboxMethod::Imap => format!(
            "imap:{user}@{}/{}",
            settings.host.as_deref().unwrap_or_default(),
            settings.folder
        ),
        InboxMethod::MicrosoftGraph => format!("graph:{user}/{}", settings.folder),
    }
}

/// The Sidekiq worker GitLab runs for a mailbox.
pub fn worker_class(mailbox: Mailbox) -> &'static str {
    match mailbox {
        Mailbox::Incoming => "EmailReceiverWorker",
        Mailbox::ServiceDesk => "ServiceDeskEmailReceiverWorker",
    }
}
