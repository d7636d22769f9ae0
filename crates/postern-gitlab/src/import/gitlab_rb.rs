//! Omnibus `/etc/gitlab/gitlab.rb`: the `gitlab_rails['incoming_email_*']`,
//! `['service_desk_email_*']`, `['gitlab_*']` and `['redis_*']` assignments and `external_url`.

use std::path::Path;

use postern_store::Mailbox;
use serde_json::{Map, Value};

use super::ImportError;
use super::fields::{self, Ctx};
use super::ruby;
use crate::settings::{
    ConfigFormat, DeliveryMethod, GitlabMailboxes, MailboxSettings, RedisSettings, WebhookSecret,
};

/// Where Omnibus keeps the Rails application; relative paths are resolved against it.
const OMNIBUS_RAILS_ROOT: &str = "/opt/gitlab/embedded/service/gitlab-rails";
/// Omnibus' mail_room log.
const OMNIBUS_LOG: &str = "/var/log/gitlab/mailroom/mail_room_json.log";
/// Omnibus' bundled Redis.
const OMNIBUS_REDIS_SOCKET: &str = "/var/opt/gitlab/redis/redis.socket";

/// `gitlab.rb` suffix → `gitlab.yml` key.
const RENAMES: &[(&str, &str)] = &[
    ("enabled", "enabled"),
    ("address", "address"),
    ("email", "user"),
    ("password", "password"),
    ("host", "host"),
    ("port", "port"),
    ("ssl", "ssl"),
    ("start_tls", "start_tls"),
    ("mailbox_name", "mailbox"),
    ("idle_timeout", "idle_timeout"),
    ("log_file", "log_path"),
    ("delete_after_delivery", "delete_after_delivery"),
    ("expunge_deleted", "expunge_deleted"),
    ("inbox_method", "inbox_method"),
    ("inbox_options", "inbox_options"),
    ("delivery_method", "delivery_method"),
    ("gitlab_url", "gitlab_url"),
    ("secret_file", "secret_file"),
    ("auth_token", "auth_token"),
    ("private_key_file", "private_key_file"),
    ("public_key_files", "public_key_files"),
    ("encrypted_secret_file", "encrypted_secret_file"),
];

pub(super) fn parse(text: &str, name: &str) -> Result<GitlabMailboxes, ImportError> {
    let assignments = ruby::assignments(text).map_err(|e| ImportError::Ruby {
        path: name.to_owned(),
        line: e.line,
        message: e.message,
    })?;
    let mut incoming = Map::new();
    let mut service_desk = Map::new();
    let mut rails = Map::new();
    let mut external_url = None;
    for a in assignments {
        let (section, suffix) = if let Some(s) = a.key.strip_prefix("incoming_email_") {
            (&mut incoming, s)
        } else if let Some(s) = a.key.strip_prefix("service_desk_email_") {
            (&mut service_desk, s)
        } else if a.key == "external_url" {
            external_url = Some((a.value, a.line));
            continue;
        } else {
            rails.insert(a.key, a.value);
            continue;
        };
        let Some((_, yml)) = RENAMES.iter().find(|(rb, _)| *rb == suffix) else {
            return Err(ImportError::Ruby {
                path: name.to_owned(),
                line: a.line,
                message: format!("gitlab_rails['{}'] is not a key postern knows", a.key),
            });
        };
        section.insert((*yml).to_owned(), a.value);
    }
    let root = Path::new(OMNIBUS_RAILS_ROOT);
    let read = |map: &Map<String, Value>, prefix: &str, mailbox: Mailbox| {
        if map.is_empty() {
            return Ok(None);
        }
        let ctx = Ctx {
            path: name,
            prefix: format!("gitlab_rails['{prefix}_*']"),
        };
        let mut base = MailboxSettings::with_defaults(mailbox, DeliveryMethod::Webhook);
        base.log_path = Some(OMNIBUS_LOG.into());
        let mut m = fields::mailbox(&ctx, map, mailbox, base, root)?;
        if m.delivery_method == DeliveryMethod::Webhook && m.secret.is_none() {
            m.secret = Some(WebhookSecret::File(root.join(".gitlab_mailroom_secret")));
        }
        Ok::<_, ImportError>(Some(m))
    };
    let incoming = read(&incoming, "incoming_email", Mailbox::Incoming)?;
    let service_desk = read(&service_desk, "service_desk_email", Mailbox::ServiceDesk)?;

    let ctx = Ctx {
        path: name,
        prefix: "gitlab_rails".to_owned(),
    };
    let external_url = match external_url {
        None => None,
        Some((Value::String(url), _)) => Some(url.trim_end_matches('/').to_owned()),
        Some((_, line)) => {
            return Err(ImportError::Ruby {
                path: name.to_owned(),
                line,
                message: "external_url: expected a string".to_owned(),
            });
        }
    };
    let gitlab_host = ctx
        .string(&rails, "gitlab_host")?
        .or_else(|| external_url.as_deref().and_then(host_of));
    let gitlab_url = external_url.or_else(|| {
        let host = gitlab_host.as_deref()?;
        let https = ctx
            .boolean(&rails, "gitlab_https")
            .ok()
            .flatten()
            .unwrap_or(false);
        let port = ctx.unsigned(&rails, "gitlab_port").ok().flatten();
        let root = ctx
            .string(&rails, "gitlab_relative_url_root")
            .ok()
            .flatten()
            .unwrap_or_default();
        Some(fields::gitlab_url(https, host, port, &root))
    });
    Ok(GitlabMailboxes {
        format: ConfigFormat::GitlabRb,
        incoming,
        service_desk,
        gitlab_host,
        gitlab_url,
        redis: redis(&ctx, &rails)?,
    })
}

/// The host of `scheme://host[:port]/…`.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    Some(authority.split(':').next()?.to_owned()).filter(|h| !h.is_empty())
}

/// Omnibus' Redis: `redis_host` (TCP, with port, password, database, ssl), else `redis_socket`,
/// else the bundled Redis's socket. It counts as configured when a key names it, or when the
/// bundled Redis's socket is there (postern runs on the Omnibus host).
fn redis(ctx: &Ctx<'_>, rails: &Map<String, Value>) -> Result<RedisSettings, ImportError> {
    let password = ctx.string(rails, "redis_password")?;
    let db = ctx.integer(rails, "redis_database")?;
    let mut settings = if let Some(host) = ctx.string(rails, "redis_host")? {
        let scheme = if ctx.boolean(rails, "redis_ssl")?.unwrap_or(false) {
            "rediss"
        } else {
            "redis"
        };
        let port = ctx.unsigned::<u16>(rails, "redis_port")?.unwrap_or(6379);
        let auth = password
            .as_deref()
            .map(|p| format!(":{}@", fields::encode_userinfo(p)))
            .unwrap_or_default();
        let mut settings = RedisSettings::new(format!("{scheme}://{auth}{host}:{port}"));
        settings.configured = true;
        settings
    } else {
        let named = ctx.string(rails, "redis_socket")?;
        let configured = named.is_some() || std::path::Path::new(OMNIBUS_REDIS_SOCKET).exists();
        let socket = named.unwrap_or_else(|| OMNIBUS_REDIS_SOCKET.to_owned());
        let pass = password
            .as_deref()
            .map(|p| format!("?pass={}", fields::encode_userinfo(p)))
            .unwrap_or_default();
        let mut settings = RedisSettings::new(format!("unix://{socket}{pass}"));
        settings.configured = configured;
        settings
    };
    settings.db = db;
    settings.sentinels = super::gitlab_yml::sentinels(ctx, &rails_sentinels(rails))?;
    settings.configured |= !settings.sentinels.is_empty();
    Ok(settings)
}

fn rails_sentinels(rails: &Map<String, Value>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(v) = rails.get("redis_sentinels") {
        m.insert("sentinels".to_owned(), v.clone());
    }
    m
}
