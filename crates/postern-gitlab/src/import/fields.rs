//! One mailbox section with `gitlab.yml`'s key names, read from a tree with GitLab's defaults
//! and type checks. The other formats rename their keys to these first.

use std::path::{Path, PathBuf};

use postern_store::Mailbox;
use serde_json::{Map, Value};

use super::ImportError;
use crate::settings::{
    DeliveryMethod, GraphOptions, InboxMethod, MailboxSettings, Secret, WebhookSecret,
};

/// Names keys in errors: the file and the key path above the current map.
pub(crate) struct Ctx<'a> {
    /// The file, for messages.
    pub path: &'a str,
    /// The key path of the map being read (`production.incoming_email`).
    pub prefix: String,
}

impl Ctx<'_> {
    pub(crate) fn invalid(&self, key: &str, message: impl Into<String>) -> ImportError {
        ImportError::Invalid {
            path: self.path.to_owned(),
            key: if self.prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{}.{key}", self.prefix)
            },
            message: message.into(),
        }
    }

    pub(crate) fn string(
        &self,
        map: &Map<String, Value>,
        key: &str,
    ) -> Result<Option<String>, ImportError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.invalid(key, "expected a string")),
        }
    }

    pub(crate) fn boolean(
        &self,
        map: &Map<String, Value>,
        key: &str,
    ) -> Result<Option<bool>, ImportError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(self.invalid(key, "expected true or false")),
        }
    }

    pub(crate) fn integer(
        &self,
        map: &Map<String, Value>,
        key: &str,
    ) -> Result<Option<i64>, ImportError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.invalid(key, "expected a whole number")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.invalid(key, "expected a whole number")),
            Some(_) => Err(self.invalid(key, "expected a whole number")),
        }
    }

    pub(crate) fn unsigned<T: TryFrom<i64>>(
        &self,
        map: &Map<String, Value>,
        key: &str,
    ) -> Result<Option<T>, ImportError> {
        match self.integer(map, key)? {
            None => Ok(None),
            Some(n) => T::try_from(n)
                .map(Some)
                .map_err(|_| self.invalid(key, "number out of range")),
        }
    }

    pub(crate) fn path(
        &self,
        map: &Map<String, Value>,
        key: &str,
        root: &Path,
    ) -> Result<Option<PathBuf>, ImportError> {
        Ok(self.string(map, key)?.map(|p| resolve(root, &p)))
    }

    pub(crate) fn object<'m>(
        &self,
        map: &'m Map<String, Value>,
        key: &str,
    ) -> Result<Option<&'m Map<String, Value>>, ImportError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(self.invalid(key, "expected a mapping")),
        }
    }
}

/// `p` relative to `root` unless absolute.
pub(crate) fn resolve(root: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        root.join(p)
    }
}

/// The keys a mailbox section may have (GitLab's `config/gitlab.yml.example`, plus postern's
/// `private_key_file` for ES256 and Omnibus' `auth_token`).
const MAILBOX_KEYS: &[&str] = &[
    "enabled",
    "address",
    "user",
    "password",
    "host",
    "port",
    "ssl",
    "start_tls",
    "mailbox",
    "idle_timeout",
    "log_path",
    "delete_after_delivery",
    "expunge_deleted",
    "inbox_method",
    "inbox_options",
    "delivery_method",
    "gitlab_url",
    "secret_file",
    "auth_token",
    "private_key_file",
    "public_key_files",
    "encrypted_secret_file",
];

const GRAPH_KEYS: &[&str] = &[
    "tenant_id",
    "client_id",
    "client_secret",
    "poll_interval",
    "azure_ad_endpoint",
    "graph_endpoint",
];

/// Reads one mailbox section. Unknown keys are refused by name: mail_room silently falls back
/// to a default on a typo, and a mailbox quietly reading the wrong folder loses mail.
pub(crate) fn mailbox(
    ctx: &Ctx<'_>,
    map: &Map<String, Value>,
    mailbox: Mailbox,
    base: MailboxSettings,
    root: &Path,
) -> Result<MailboxSettings, ImportError> {
    if let Some(unknown) = map.keys().find(|k| !MAILBOX_KEYS.contains(&k.as_str())) {
        return Err(ctx.invalid(unknown, "unknown key"));
    }
    let mut m = base;
    m.mailbox = mailbox;
    m.enabled = ctx.boolean(map, "enabled")?.unwrap_or(m.enabled);
    m.address = ctx.string(map, "address")?.or(m.address);
    m.user = ctx.string(map, "user")?.or(m.user);
    m.password = ctx.string(map, "password")?.map(Secret::new).or(m.password);
    m.host = ctx.string(map, "host")?.or(m.host);
    m.port = ctx.unsigned(map, "port")?.unwrap_or(m.port);
    m.ssl = ctx.boolean(map, "ssl")?.unwrap_or(m.ssl);
    m.start_tls = ctx.boolean(map, "start_tls")?.unwrap_or(m.start_tls);
    m.folder = ctx.string(map, "mailbox")?.unwrap_or(m.folder);
    m.idle_timeout = ctx.unsigned(map, "idle_timeout")?.unwrap_or(m.idle_timeout);
    m.log_path = ctx.path(map, "log_path", root)?.or(m.log_path);
    m.delete_after_delivery = ctx
        .boolean(map, "delete_after_delivery")?
        .unwrap_or(m.delete_after_delivery);
    m.expunge_deleted = ctx
        .boolean(map, "expunge_deleted")?
        .unwrap_or(m.expunge_deleted);
    if let Some(method) = ctx.string(map, "inbox_method")? {
        m.inbox_method = match method.as_str() {
            "imap" => InboxMethod::Imap,
            "microsoft_graph" => InboxMethod::MicrosoftGraph,
            _ => return Err(ctx.invalid("inbox_method", "expected imap or microsoft_graph")),
        };
    }
    if let Some(options) = ctx.object(map, "inbox_options")? {
        m.inbox_options = Some(graph_options(ctx, options)?);
    }
    if let Some(method) = ctx.string(map, "delivery_method")? {
        m.delivery_method = match method.as_str() {
            "webhook" | "postback" => DeliveryMethod::Webhook,
            "sidekiq" => DeliveryMethod::Sidekiq,
            _ => return Err(ctx.invalid("delivery_method", "expected webhook or sidekiq")),
        };
    }
    m.gitlab_url = ctx
        .string(map, "gitlab_url")?
        .map(|u| u.trim_end_matches('/').to_owned())
        .or(m.gitlab_url);
    if let Some(token) = ctx.string(map, "auth_token")? {
        m.secret = Some(WebhookSecret::Inline(Secret::new(token)));
    }
    if let Some(file) = ctx.path(map, "secret_file", root)? {
        m.secret = Some(WebhookSecret::File(file));
    }
    m.private_key_file = ctx
        .path(map, "private_key_file", root)?
        .or(m.private_key_file);
    match map.get("public_key_files") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            m.public_key_files = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(resolve(root, s)),
                    _ => Err(ctx.invalid("public_key_files", "expected a list of paths")),
                })
                .collect::<Result<_, _>>()?;
        }
        Some(Value::String(s)) => m.public_key_files = vec![resolve(root, s)],
        Some(_) => return Err(ctx.invalid("public_key_files", "expected a list of paths")),
    }
    m.encrypted_secret_file = ctx
        .path(map, "encrypted_secret_file", root)?
        .or(m.encrypted_secret_file);
    Ok(m)
}

fn graph_options(ctx: &Ctx<'_>, map: &Map<String, Value>) -> Result<GraphOptions, ImportError> {
    let ctx = Ctx {
        path: ctx.path,
        prefix: format!("{}.inbox_options", ctx.prefix),
    };
    if let Some(unknown) = map.keys().find(|k| !GRAPH_KEYS.contains(&k.as_str())) {
        return Err(ctx.invalid(unknown, "unknown key"));
    }
    let mut g = GraphOptions::with_defaults();
    g.tenant_id = ctx.string(map, "tenant_id")?;
    g.client_id = ctx.string(map, "client_id")?;
    g.client_secret = ctx.string(map, "client_secret")?.map(Secret::new);
    g.poll_interval = ctx
        .unsigned(map, "poll_interval")?
        .unwrap_or(g.poll_interval);
    g.azure_ad_endpoint = ctx
        .string(map, "azure_ad_endpoint")?
        .unwrap_or(g.azure_ad_endpoint);
    g.graph_endpoint = ctx
        .string(map, "graph_endpoint")?
        .unwrap_or(g.graph_endpoint);
    Ok(g)
}

/// `scheme://host[:port]/root` for GitLab's own URL, leaving out the scheme's default port.
pub(crate) fn gitlab_url(https: bool, host: &str, port: Option<u16>, root: &str) -> String {
    let scheme = if https { "https" } else { "http" };
    let default_port = if https { 443 } else { 80 };
    let port = port
        .filter(|p| *p != default_port)
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let root = root.trim_end_matches('/');
    format!("{scheme}://{host}{port}{root}")
}

/// Percent-encodes a URL userinfo part (a Redis password may hold `@` or `:`).
pub(crate) fn encode_userinfo(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
