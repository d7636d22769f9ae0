//! mail_room's own `mail_room.yml` (plain YAML; GitLab's is ERB and must be rendered first):
//! a `:mailboxes:` list with symbol keys. Which GitLab mailbox each entry feeds is read from its
//! `delivery_url` (`…/internal/mail_room/<incoming_email|service_desk_email>`) or its Sidekiq
//! `worker`.
//!
//! Defaults are mail_room's own (port 993, ssl true, idle_timeout 1740, delete_after_delivery
//! false), not gitlab.yml's: a `mail_room.yml` that leaves `:port:` out meant 993 to the process
//! it configured, and a drop-in must read it the same way.

use std::path::Path;

use postern_store::Mailbox;
use serde_json::{Map, Value};

use super::ImportError;
use super::fields::{self, Ctx};
use crate::settings::{
    ConfigFormat, DeliveryMethod, GitlabMailboxes, MailboxSettings, RedisSettings, WebhookSecret,
    mailbox_type, worker_class,
};

/// Keys mail_room reads in a mailbox entry; anything else is refused (mail_room ignores
/// misspelt keys and silently uses a default).
const KEYS: &[&str] = &[
    "email",
    "password",
    "host",
    "port",
    "ssl",
    "start_tls",
    "name",
    "search_command",
    "limit_max_unread",
    "idle_timeout",
    "delete_after_delivery",
    "expunge_deleted",
    "delivery_method",
    "delivery_url",
    "delivery_token",
    "log_path",
    "delivery_options",
    "arbitration_method",
    "arbitration_options",
    "logger",
    "inbox_method",
    "inbox_options",
];

/// Removes the leading `:` of Ruby symbol keys, in this map and the maps inside it.
fn unsymbol(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.trim_start_matches(':').to_owned(), unsymbol(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(unsymbol).collect()),
        other => other.clone(),
    }
}

pub(super) fn parse(tree: &Value, name: &str) -> Result<GitlabMailboxes, ImportError> {
    let tree = unsymbol(tree);
    let top = Ctx {
        path: name,
        prefix: String::new(),
    };
    let Some(Value::Array(entries)) = tree.get("mailboxes") else {
        return Err(top.invalid(":mailboxes:", "missing: expected a list of mailboxes"));
    };
    let mut out = GitlabMailboxes {
        format: ConfigFormat::MailRoomYml,
        incoming: None,
        service_desk: None,
        gitlab_host: None,
        gitlab_url: None,
        redis: RedisSettings::new("redis://localhost:6379"),
    };
    let mut redis_seen = false;
    // mail_room's own arbitration Redis: GitLab's, used when no mailbox delivers through
    // Sidekiq (whose Redis settings must be the queue's).
    let mut arbitration_redis = None;
    for (i, entry) in entries.iter().enumerate() {
        let ctx = Ctx {
            path: name,
            prefix: format!(":mailboxes:[{i}]"),
        };
        let Value::Object(entry) = entry else {
            return Err(ctx.invalid("", "expected a mapping"));
        };
        if let Some(unknown) = entry.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(ctx.invalid(unknown, "unknown key"));
        }
        let empty = Map::new();
        let options = ctx.object(entry, "delivery_options")?.unwrap_or(&empty);
        let octx = Ctx {
            path: name,
            prefix: format!("{}.delivery_options", ctx.prefix),
        };
        let url = octx
            .string(options, "delivery_url")?
            .or(ctx.string(entry, "delivery_url")?);
        let worker = octx.string(options, "worker")?;
        let mailbox = [Mailbox::Incoming, Mailbox::ServiceDesk]
            .into_iter()
            .find(|m| {
                url.as_deref()
                    .is_some_and(|u| u.trim_end_matches('/').ends_with(&format!("/{}", mailbox_type(*m))))
                    || worker.as_deref() == Some(worker_class(*m))
            })
            .ok_or_else(|| {
                ctx.invalid(
                    "delivery_options",
                    "cannot tell which GitLab mailbox this is: expected a delivery_url ending in /incoming_email or /service_desk_email, or worker EmailReceiverWorker or ServiceDeskEmailReceiverWorker",
                )
            })?;

        // Rename to gitlab.yml's keys and read with the shared rules.
        let mut map = Map::new();
        for (from, to) in [
            ("email", "user"),
            ("password", "password"),
            ("host", "host"),
            ("port", "port"),
            ("start_tls", "start_tls"),
            ("name", "mailbox"),
            ("idle_timeout", "idle_timeout"),
            ("delete_after_delivery", "delete_after_delivery"),
            ("expunge_deleted", "expunge_deleted"),
            ("inbox_method", "inbox_method"),
            ("inbox_options", "inbox_options"),
            ("log_path", "log_path"),
        ] {
            if let Some(v) = entry.get(from) {
                map.insert(to.to_owned(), v.clone());
            }
        }
        // `ssl` may be a hash of OpenSSL parameters, which means "on".
        match entry.get("ssl") {
            Some(Value::Object(_)) => {
                map.insert("ssl".to_owned(), Value::Bool(true));
            }
            Some(v) => {
                map.insert("ssl".to_owned(), v.clone());
            }
            None => {}
        }
        if let Some(Value::Object(logger)) = entry.get("logger")
            && let Some(path) = logger.get("log_path")
        {
            map.insert("log_path".to_owned(), path.clone());
        }
        let method = match ctx.string(entry, "delivery_method")?.as_deref() {
            None | Some("postback") => DeliveryMethod::Webhook,
            Some("sidekiq") => DeliveryMethod::Sidekiq,
            Some(_) => {
                return Err(ctx.invalid(
                    "delivery_method",
                    "postern delivers to GitLab only: expected postback or sidekiq",
                ));
            }
        };
        let mut base = MailboxSettings::with_defaults(mailbox, method);
        base.enabled = true;
        base.port = 993;
        base.ssl = true;
        base.idle_timeout = 1740;
        base.delete_after_delivery = false;
        let mut m = fields::mailbox(&ctx, &map, mailbox, base, Path::new("/"))?;
        if let Some(url) = url {
            let suffix = format!("/api/v4/internal/mail_room/{}", mailbox_type(mailbox));
            m.gitlab_url = url
                .trim_end_matches('/')
                .strip_suffix(&suffix)
                .map(str::to_owned);
        }
        if let Some(alg) = octx.string(options, "jwt_algorithm")?
            && alg != "HS256"
        {
            return Err(octx.invalid("jwt_algorithm", "only HS256 is read from mail_room.yml"));
        }
        if let Some(path) = octx.string(options, "jwt_secret_path")? {
            m.secret = Some(WebhookSecret::File(path.into()));
        }
        if method == DeliveryMethod::Sidekiq && !redis_seen {
            redis_seen = true;
            let mut redis = RedisSettings::new(
                octx.string(options, "redis_url")?
                    .unwrap_or_else(|| "redis://localhost:6379".to_owned()),
            );
            redis.db = octx.integer(options, "redis_db")?;
            redis.namespace = octx.string(options, "namespace")?;
            redis.queue = octx.string(options, "queue")?.unwrap_or(redis.queue);
            redis.sentinels = super::gitlab_yml::sentinels(&octx, options)?;
            redis.configured = true;
            out.redis = redis;
        }
        if arbitration_redis.is_none()
            && ctx.string(entry, "arbitration_method")?.as_deref() == Some("redis")
        {
            let arbitration = ctx.object(entry, "arbitration_options")?.unwrap_or(&empty);
            let actx = Ctx {
                path: name,
                prefix: format!("{}.arbitration_options", ctx.prefix),
            };
            let mut redis = RedisSettings::new(
                actx.string(arbitration, "redis_url")?
                    .unwrap_or_else(|| "redis://localhost:6379".to_owned()),
            );
            redis.namespace = actx.string(arbitration, "namespace")?;
            redis.sentinels = super::gitlab_yml::sentinels(&actx, arbitration)?;
            redis.configured = true;
            arbitration_redis = Some(redis);
        }
        let slot = match mailbox {
            Mailbox::Incoming => &mut out.incoming,
            Mailbox::ServiceDesk => &mut out.service_desk,
        };
        if slot.is_some() {
            return Err(ctx.invalid("", format!("a second {} mailbox", mailbox_type(mailbox))));
        }
        *slot = Some(m);
    }
    if !redis_seen && let Some(redis) = arbitration_redis {
        out.redis = redis;
    }
    if out.gitlab_url.is_none() {
        out.gitlab_url = out
            .incoming
            .iter()
            .chain(out.service_desk.iter())
            .find_map(|m| m.gitlab_url.clone());
    }
    Ok(out)
}
