//! Sidekiq delivery (GitLab's deprecated `delivery_method: sidekiq`): `LPUSH queue:<queue>` on
//! GitLab's queues Redis of the job JSON GitLab's `EmailReceiverWorker` /
//! `ServiceDeskEmailReceiverWorker` read, as mail_room's `delivery/sidekiq.rb` builds it
//! (<https://github.com/tpitale/mail_room/blob/master/lib/mail_room/delivery/sidekiq.rb>).
//! The message is acknowledged only after Redis replied to the LPUSH.
//!
//! Exactly once, even across a crash: the LPUSH runs in one Lua script with `SET NX` of a
//! marker key named after the mailbox and the message's content identity. If postern dies
//! after Redis took the job but before the store recorded it, the retry finds the marker and
//! pushes nothing. (A webhook cannot have this: GitLab's endpoint keeps no idempotency key.)
//! The markers expire after [`MARKER_TTL_SECONDS`]; a retry comes long before that.
//!
//! The connection is made lazily and dropped on any error, so a Redis outage costs one failed
//! attempt per message and the next attempt reconnects; the process never dies of it.

use std::time::Duration;

use encoding_rs::Encoding;
use postern_store::Mailbox;
use postern_vocab::ErrorKind;
use redis::IntoConnectionInfo as _;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use crate::deliver::DeliveryFailure;
use crate::jwt::random_hex;
use crate::settings::{RedisSettings, worker_class};

/// Connect and reply timeouts for Redis.
const REDIS_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a delivered marker is kept (7 days).
pub const MARKER_TTL_SECONDS: u64 = 7 * 24 * 60 * 60;

/// `KEYS[1]` marker, `KEYS[2]` queue; `ARGV[1]` job, `ARGV[2]` marker TTL. Returns 1 when the
/// job was pushed, 0 when the marker showed it had been already. Redis runs a script
/// atomically, so the marker and the job exist together or not at all.
const PUSH_ONCE: &str = r"
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
";

/// Whether a push added the job or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The job is on the queue now.
    New,
    /// An earlier attempt had pushed it (its outcome was not recorded); nothing was added.
    Already,
}

/// Why a Sidekiq destination could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SidekiqError {
    /// The Redis URL or sentinel list is not usable (the URL itself is not shown: it may hold
    /// a password).
    #[error("Redis settings are not usable: {0}")]
    Settings(String),
}

enum Target {
    Direct(Box<redis::Client>),
    Sentinel(Box<redis::sentinel::SentinelClient>),
}

/// A lazily made connection to the Redis of [`RedisSettings`] (direct or through sentinels),
/// dropped on any error so the next use reconnects. Shared by Sidekiq delivery and the
/// arbitration between companion instances ([`crate::arbiter`]).
pub(crate) struct RedisLink {
    target: Mutex<Target>,
    connection: Mutex<Option<MultiplexedConnection>>,
    namespace: Option<String>,
}

impl RedisLink {
    /// A link to the Redis of `settings`. Does not connect yet.
    pub(crate) fn new(settings: &RedisSettings) -> Result<RedisLink, SidekiqError> {
        let info = settings
            .url
            .expose()
            .into_connection_info()
            .map_err(|e| SidekiqError::Settings(format!("{:?}", e.kind())))?;
        let mut redis_info = info.redis_settings().clone();
        if let Some(db) = settings.db {
            redis_info = redis_info.set_db(db);
        }
        let target = if settings.sentinels.is_empty() {
            let info = info.set_redis_settings(redis_info);
            Target::Direct(Box::new(
                redis::Client::open(info)
                    .map_err(|e| SidekiqError::Settings(format!("{:?}", e.kind())))?,
            ))
        } else {
            // As redis-rb reads it: with sentinels, the URL's host names the master.
            let master = match info.addr() {
                redis::ConnectionAddr::Tcp(host, _) => host.clone(),
                redis::ConnectionAddr::TcpTls { host, .. } => host.clone(),
                _ => {
                    return Err(SidekiqError::Settings(
                        "with sentinels the URL must be redis://<master name>".to_owned(),
                    ));
                }
            };
            let nodes: Vec<String> = settings
                .sentinels
                .iter()
                .map(|(host, port)| format!("redis://{host}:{port}"))
                .collect();
            let node_info = redis::sentinel::SentinelNodeConnectionInfo::default()
                .set_redis_connection_info(redis_info);
            Target::Sentinel(Box::new(
                redis::sentinel::SentinelClient::build(
                    nodes,
                    master,
                    Some(node_info),
                    redis::sentinel::SentinelServerType::Master,
                )
                .map_err(|e| SidekiqError::Settings(format!("{:?}", e.kind())))?,
            ))
        };
        Ok(RedisLink {
            target: Mutex::new(target),
            connection: Mutex::new(None),
            namespace: settings.namespace.clone(),
        })
    }

    /// `name` in the configured key namespace (historic GitLab: `resque:gitlab:<name>`).
    pub(crate) fn namespaced(&self, name: String) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}:{name}"),
            None => name,
        }
    }

    /// The connection, made now if there is none.
    pub(crate) async fn connection(&self) -> Result<MultiplexedConnection, String> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let connection = match &mut *self.target.lock().await {
            Target::Direct(client) => client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|e| describe(&e))?,
            Target::Sentinel(client) => client
                .get_async_connection_with_config(&config)
                .await
                .map_err(|e| describe(&e))?,
        };
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Drops the connection after an error: the next use reconnects.
    pub(crate) async fn forget(&self) {
        *self.connection.lock().await = None;
    }

    /// `PING`, for checks.
    pub(crate) async fn ping(&self) -> Result<(), String> {
        let mut c = self.connection().await?;
        let result: Result<String, _> = redis::cmd("PING").query_async(&mut c).await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                self.forget().await;
                Err(describe(&e))
            }
        }
    }
}

/// Pushes jobs for one mailbox.
pub struct Sidekiq {
    link: RedisLink,
    key: String,
    marker_prefix: String,
    queue: String,
    worker: &'static str,
}

impl std::fmt::Debug for Sidekiq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidekiq")
            .field("key", &self.key)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl Sidekiq {
    /// A destination for `mailbox` on the Redis of `settings`. Does not connect yet.
    pub fn new(settings: &RedisSettings, mailbox: Mailbox) -> Result<Sidekiq, SidekiqError> {
        let link = RedisLink::new(settings)?;
        Ok(Sidekiq {
            key: link.namespaced(format!("queue:{}", settings.queue)),
            marker_prefix: link.namespaced(format!(
                "postern:delivered:{}:",
                crate::settings::mailbox_type(mailbox)
            )),
            link,
            queue: settings.queue.clone(),
            worker: worker_class(mailbox),
        })
    }

    /// The Redis list jobs go to (`queue:default`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// `PING`, for checks.
    pub async fn ping(&self) -> Result<(), String> {
        self.link.ping().await
    }

    /// The marker key that records `identity` as pushed.
    pub fn marker_key(&self, identity: &str) -> String {
        format!("{}{identity}", self.marker_prefix)
    }

    /// Pushes the job for `raw`, unless the message with this content `identity` was pushed
    /// before; `Ok` once Redis replied.
    pub async fn deliver(&self, raw: &[u8], identity: &str) -> Result<Pushed, DeliveryFailure> {
        let jid = random_hex(12).map_err(|reason| DeliveryFailure::Temporary {
            kind: ErrorKind::SidekiqJob,
            reason,
        })?;
        let job = job_json(self.worker, &self.queue, raw, &jid, epoch_seconds_f64());
        let unavailable = |reason: String| DeliveryFailure::Temporary {
            kind: ErrorKind::RedisUnavailable,
            reason,
        };
        let mut c = self.link.connection().await.map_err(unavailable)?;
        // Plain EVAL: the script is short next to the job, and there is no script cache to
        // lose when Redis restarts.
        let pushed: Result<i64, _> = redis::cmd("EVAL")
            .arg(PUSH_ONCE)
            .arg(2)
            .arg(self.marker_key(identity))
            .arg(&self.key)
            .arg(job.to_string())
            .arg(MARKER_TTL_SECONDS)
            .query_async(&mut c)
            .await;
        match pushed {
            Ok(1) => Ok(Pushed::New),
            Ok(_) => Ok(Pushed::Already),
            Err(e) => {
                // A broken connection is replaced on the next attempt.
                self.link.forget().await;
                Err(unavailable(describe(&e)))
            }
        }
    }
}

/// The Sidekiq job of mail_room's `item_for`: `class`, `args: [mail]`, `queue`, `jid` (24 hex
/// digits), `retry: false`, `enqueued_at` (float seconds), plus `created_at` (the same time),
/// which Sidekiq's own client always sets and its Web UI shows.
pub fn job_json(worker: &str, queue: &str, raw: &[u8], jid: &str, now: f64) -> serde_json::Value {
    serde_json::json!({
        "class": worker,
        "args": [to_utf8(raw)],
        "queue": queue,
        "jid": jid,
        "retry": false,
        "created_at": now,
        "enqueued_at": now,
    })
}

/// The mail as a UTF-8 string, as mail_room makes it: unchanged if it is valid UTF-8, else
/// converted from the charset a detector guesses (mail_room: charlock_holmes; here chardetng,
/// Firefox's detector). Where mail_room would then fail on bytes the guess cannot decode, this
/// replaces them with U+FFFD, as GitLab's own API path does.
pub fn to_utf8(raw: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(raw) {
        return text.to_owned();
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(raw, true);
    let encoding: &'static Encoding = detector.guess(None, false);
    let (text, _, _) = encoding.decode(raw);
    text.into_owned()
}

fn epoch_seconds_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A Redis error in words, without the URL (which may hold a password).
pub(crate) fn describe(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "Redis timed out".to_owned()
    } else if e.is_connection_refusal() {
        "Redis refused the connection".to_owned()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "Redis connection failed".to_owned()
    } else {
        format!("Redis error: {:?}", e.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_passes_unchanged_and_latin1_is_converted() {
        assert_eq!(to_utf8("Grüße\r\n".as_bytes()), "Grüße\r\n");
        let latin1 = b"Subject: caf\xe9 cr\xe8me br\xfbl\xe9e\r\n\r\nd\xe9j\xe0 vu, tr\xe8s \xe9l\xe9gant\r\n";
        let text = to_utf8(latin1);
        assert!(text.contains("café crème brûlée"), "{text}");
        assert!(text.contains("déjà vu"), "{text}");
    }

    #[test]
    fn job_has_mail_rooms_fields() {
        let job = job_json("EmailReceiverWorker", "default", b"x", "00ff", 1.5);
        assert_eq!(job["class"], "EmailReceiverWorker");
        assert_eq!(job["args"], serde_json::json!(["x"]));
        assert_eq!(job["queue"], "default");
        assert_eq!(job["jid"], "00ff");
        assert_eq!(job["retry"], false);
        assert_eq!(job["enqueued_at"], 1.5);
        assert_eq!(job["created_at"], 1.5);
    }

    #[test]
    fn debug_does_not_show_the_url() {
        let settings = RedisSettings::new("redis://:hunter2@127.0.0.1:1/0");
        let sidekiq = Sidekiq::new(&settings, Mailbox::Incoming).ok();
        let debug = format!("{sidekiq:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
