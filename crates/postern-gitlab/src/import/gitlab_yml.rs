//! A source install's `config/gitlab.yml` (its `production:` section), plus the queues Redis
//! from the sibling `redis.queues.yml` or `resque.yml`, as Rails reads them.

use std::path::{Path, PathBuf};

use postern_store::Mailbox;
use serde_json::{Map, Value};

use super::ImportError;
use super::fields::{self, Ctx};
use crate::settings::{
    ConfigFormat, DeliveryMethod, GitlabMailboxes, MailboxSettings, RedisSettings, WebhookSecret,
};

/// GitLab's documented secret file, relative to the Rails root.
const DEFAULT_SECRET_FILE: &str = ".gitlab_mailroom_secret";

pub(super) fn parse(tree: &Value, name: &str, dir: &Path) -> Result<GitlabMailboxes, ImportError> {
    let top = Ctx {
        path: name,
        prefix: String::new(),
    };
    let production = match tree.get("production") {
        Some(Value::Object(p)) => p,
        _ => {
            return Err(top.invalid(
                "production",
                "missing: gitlab.yml needs a production: section",
            ));
        }
    };
    let root = rails_root(dir);
    let section = |key: &str, mailbox: Mailbox| -> Result<Option<MailboxSettings>, ImportError> {
        let ctx = Ctx {
            path: name,
            prefix: format!("production.{key}"),
        };
        let parent = Ctx {
            path: name,
            prefix: "production".to_owned(),
        };
        let Some(map) = parent.object(production, key)? else {
            return Ok(None);
        };
        let base = MailboxSettings::with_defaults(mailbox, DeliveryMethod::Sidekiq);
        let mut m = fields::mailbox(&ctx, map, mailbox, base, &root)?;
        if m.delivery_method == DeliveryMethod::Webhook && m.secret.is_none() {
            m.secret = Some(WebhookSecret::File(root.join(DEFAULT_SECRET_FILE)));
        }
        Ok(Some(m))
    };
    let incoming = section("incoming_email", Mailbox::Incoming)?;
    let service_desk = section("service_desk_email", Mailbox::ServiceDesk)?;

    let gitlab_ctx = Ctx {
        path: name,
        prefix: "production.gitlab".to_owned(),
    };
    let empty = Map::new();
    let gitlab = Ctx {
        path: name,
        prefix: "production".to_owned(),
    }
    .object(production, "gitlab")?
    .unwrap_or(&empty);
    let gitlab_host = gitlab_ctx.string(gitlab, "host")?;
    let https = gitlab_ctx.boolean(gitlab, "https")?.unwrap_or(false);
    let port = gitlab_ctx.unsigned(gitlab, "port")?;
    let relative = gitlab_ctx
        .string(gitlab, "relative_url_root")?
        .unwrap_or_default();
    let gitlab_url = gitlab_host
        .as_deref()
        .map(|host| fields::gitlab_url(https, host, port, &relative));

    Ok(GitlabMailboxes {
        format: ConfigFormat::GitlabYml,
        incoming,
        service_desk,
        gitlab_host,
        gitlab_url,
        redis: queues_redis(dir)?,
    })
}

/// The Rails root: the parent of `config/`, else the file's own directory.
fn rails_root(dir: &Path) -> PathBuf {
    if dir.file_name().is_some_and(|n| n == "config") {
        dir.parent().map_or_else(|| dir.to_owned(), Path::to_owned)
    } else {
        dir.to_owned()
    }
}

/// `redis.queues.yml`, else `resque.yml`, else GitLab's default `redis://localhost:6379`.
fn queues_redis(dir: &Path) -> Result<RedisSettings, ImportError> {
    for file in ["redis.queues.yml", "resque.yml"] {
        let path = dir.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let name = path.display().to_string();
        let tree = super::yaml(&text, &name)?;
        let ctx = Ctx {
            path: &name,
            prefix: "production".to_owned(),
        };
        return match tree.get("production") {
            Some(Value::String(url)) => {
                let mut redis = RedisSettings::new(url.clone());
                redis.configured = true;
                Ok(redis)
            }
            Some(Value::Object(map)) => {
                let mut redis = RedisSettings::new(
                    ctx.string(map, "url")?
                        .unwrap_or_else(|| "redis://localhost:6379".to_owned()),
                );
                redis.db = ctx.integer(map, "db")?;
                redis.sentinels = sentinels(&ctx, map)?;
                redis.configured = true;
                Ok(redis)
            }
            _ => Err(ctx.invalid("", "expected a URL or a mapping with url:")),
        };
    }
    Ok(RedisSettings::new("redis://localhost:6379"))
}

/// `sentinels: [{host:, port:}]` (port 26379 when left out, as redis-rb does).
pub(super) fn sentinels(
    ctx: &Ctx<'_>,
    map: &Map<String, Value>,
) -> Result<Vec<(String, u16)>, ImportError> {
    let Some(Value::Array(items)) = map.get("sentinels") else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|item| {
            let Value::Object(s) = item else {
                return Err(ctx.invalid("sentinels", "expected a list of {host, port}"));
            };
            let s: Map<String, Value> = s
                .iter()
                .map(|(k, v)| (k.trim_start_matches(':').to_owned(), v.clone()))
                .collect();
            let host = ctx
                .string(&s, "host")?
                .ok_or_else(|| ctx.invalid("sentinels", "a sentinel has no host"))?;
            Ok((host, ctx.unsigned(&s, "port")?.unwrap_or(26379)))
        })
        .collect()
}
