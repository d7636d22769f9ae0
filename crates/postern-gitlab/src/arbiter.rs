//! Arbitration between companion instances that watch the same mailbox without a shared store,
//! through GitLab's Redis (mail_room's `arbitration_method: redis`, without its flaws).
//!
//! Every instance fetches and stores each message in its own store, as when alone, so no
//! instance's death can lose one. Only the delivery to GitLab is arbitrated: before it, the
//! deliverer takes a claim on the key `postern:claim:<source identity>` — the mailbox's user,
//! host and folder with UIDVALIDITY and UID (`imap:<user>@<host>/<folder>:<validity>:<uid>`),
//! or the Graph message id with its user and folder — so two mailboxes never share a key
//! (mail_room's `delivered:<uid>` is shared by the incoming and Service Desk mailboxes, whose
//! UIDs overlap). Messages without a source identity (LMTP, `postern receive`) reach one
//! instance only and are not arbitrated.
//!
//! A claim's value is `held <instance>` while its instance delivers, then `done <instance>`:
//!
//! - `held` lives [`HOLD_SECONDS`], longer than any delivery attempt; an instance that dies
//!   holding it, and never comes back, is replaced by another once it expires — a message the
//!   winner lost with its data directory still reaches GitLab.
//! - `done` lives [`DONE_SECONDS`]: an instance that finds another's `done` records the message
//!   as handled there (state `ignored`, not an error, not delivered); one that finds another's
//!   `held` waits for it ([`ErrorKind::ClaimedByAnotherInstance`](postern_vocab::ErrorKind)).
//! - The instance id is kept in the data directory ([`instance_id`]), so an instance that
//!   restarts finds its own claims: `held` ones it delivers at once, `done` ones (delivered, but
//!   the outcome not yet recorded when it died) it records as delivered without delivering
//!   them again.
//!
//! Instances also record their presence on each mailbox they watch ([`Arbiter::announce`]),
//! so that one whose store is not shared — whose every message would be handled twice —
//! can say so.
//!
//! GitLab's refusal of a message is final as its acceptance is (it answered the sender): the
//! claim is marked `done` either way. After a temporary failure it is released, so the other
//! instance may try. The one window left is the webhook's: a delivery GitLab accepted whose
//! `done` could not be written (Redis lost at that moment) is delivered again by the other
//! instance once the `held` claim expires (Sidekiq's marker stops that push). Redis unreachable
//! before delivery is a temporary failure: the message waits, as it does for GitLab itself.

use std::path::Path;
use std::time::Duration;

use postern_store::{InboundFinish, InboundMeta, InboundState, Mailbox, Timestamp};
use postern_vocab::backoff::ceil_seconds;
use postern_vocab::{Backoff, ErrorKind};

use crate::deliver::DeliveryFailure;
use crate::settings::RedisSettings;
use crate::sidekiq::{RedisLink, SidekiqError, describe};

/// How long a `held` claim lasts: longer than the longest delivery attempt (the webhook's
/// 60 s timeout, or Redis' 10 s), so a living holder never loses it mid-delivery.
pub const HOLD_SECONDS: u64 = 5 * 60;

/// How long a `done` claim is kept (7 days): another instance's copy of the message is
/// delivered long before that, unless that instance was stopped for longer.
pub const DONE_SECONDS: u64 = crate::sidekiq::MARKER_TTL_SECONDS;

/// The pause between tries to record a claim's outcome.
const SETTLE_PAUSE: Duration = Duration::from_millis(500);

/// The file in the data directory that keeps the instance id.
pub const INSTANCE_ID_FILE: &str = "instance-id";

/// `KEYS[1]` claim; `ARGV[1]` instance id, `ARGV[2]` hold seconds. Takes a free claim, renews
/// one this instance holds; returns `{state, owner, seconds left}` (`state` `won` when taken
/// now).
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'held ' .. ARGV[1], 'EX', ARGV[2])
  return {'won', ARGV[1], tonumber(ARGV[2])}
end
local state, owner = string.match(v, '^(%S+) (.+)$')
if state == 'held' and owner == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {state or 'unknown', owner or v, redis.call('TTL', KEYS[1])}
";

/// `KEYS[1]` claim; `ARGV[1]` instance id, `ARGV[2]` done seconds. Marks this instance's claim
/// (or a free one: the hold expired and nobody took it) done; returns 0 when another instance
/// holds it now.
const DONE: &str = r"
local v = redis.call('GET', KEYS[1])
if (not v) or v == 'held ' .. ARGV[1] or v == 'done ' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'done ' .. ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
";

/// `KEYS[1]` presence hash of a mailbox; `ARGV[1]` instance id, `ARGV[2]` now (Unix seconds),
/// `ARGV[3]` seconds the entry lasts. Records this instance (unless `ARGV[1]` is empty), drops
/// expired entries, returns the ids of the others present.
const ANNOUNCE: &str = r"
local now = tonumber(ARGV[2])
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[3]))
  redis.call('EXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
end
local entries = redis.call('HGETALL', KEYS[1])
local others = {}
for i = 1, #entries, 2 do
  if tonumber(entries[i + 1]) < now then
    redis.call('HDEL', KEYS[1], entries[i])
  elseif entries[i] ~= ARGV[1] then
    table.insert(others, entries[i])
  end
end
return others
";

/// How long an instance's presence on a mailbox lasts without being renewed.
pub const PRESENCE_SECONDS: u64 = 3 * 60;

/// `KEYS[1]` claim; `ARGV[1]` instance id. Drops this instance's `held` claim.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == 'held ' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// What the claim before a delivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This instance holds the claim (taken now, or held since before a restart): deliver.
    Deliver,
    /// This instance delivered it already (before a restart that came before the outcome was
    /// recorded): record it as delivered, do not deliver again.
    DeliveredHere,
    /// Another instance delivered it: record it as handled there.
    DeliveredElsewhere {
        /// That instance's id.
        instance: String,
    },
    /// Another instance is delivering it: ask again later, at the latest when its hold ends.
    HeldElsewhere {
        /// That instance's id.
        instance: String,
        /// Seconds until the hold expires.
        seconds_left: u64,
    },
}

/// Claims messages of the mailboxes of one companion instance on GitLab's Redis. One per
/// process, shared by every mailbox (the keys name the mailbox).
pub struct Arbiter {
    link: RedisLink,
    instance: String,
}

impl std::fmt::Debug for Arbiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arbiter")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Arbiter {
    /// An arbiter on the Redis of `settings` for the instance `instance` ([`instance_id`]).
    /// Does not connect yet.
    pub fn new(settings: &RedisSettings, instance: &str) -> Result<Arbiter, SidekiqError> {
        Ok(Arbiter {
            link: RedisLink::new(settings)?,
            instance: instance.to_owned(),
        })
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The claim key of the message whose source identity is `source_identity`.
    pub fn key(&self, source_identity: &str) -> String {
        self.link.namespaced(claim_key(source_identity))
    }

    /// Claims the message with `source_identity` before delivering it. `Err` (without secrets)
    /// when Redis cannot be asked: the caller retries later.
    pub async fn claim(&self, source_identity: &str) -> Result<Claim, String> {
        let reply: (String, String, i64) = self
            .script(CLAIM, source_identity, Some(HOLD_SECONDS))
            .await?;
        let (state, owner, ttl) = reply;
        let mine = owner == self.instance;
        Ok(match (state.as_str(), mine) {
            ("won" | "held", true) => Claim::Deliver,
            ("done", true) => Claim::DeliveredHere,
            ("done", false) => Claim::DeliveredElsewhere { instance: owner },
            // `held` by another, or a value this version does not know: wait for it to end.
            _ => Claim::HeldElsewhere {
                instance: owner,
                seconds_left: u64::try_from(ttl).unwrap_or(1).max(1),
            },
        })
    }

    /// Marks the claim done after GitLab's verdict on the message. `Ok(false)` when another
    /// instance holds it now (this one's hold expired during the delivery).
    pub async fn delivered(&self, source_identity: &str) -> Result<bool, String> {
        let done: i64 = self
            .script(DONE, source_identity, Some(DONE_SECONDS))
            .await?;
        Ok(done == 1)
    }

    /// Releases this instance's hold after a delivery that did not succeed, so another
    /// instance may try.
    pub async fn release(&self, source_identity: &str) -> Result<(), String> {
        let _: i64 = self.script(RELEASE, source_identity, None).await?;
        Ok(())
    }

    /// `PING`, for checks.
    pub async fn ping(&self) -> Result<(), String> {
        self.link.ping().await
    }

    /// Records this instance as watching `mailbox` ([`mailbox_source`](crate::mailbox_source))
    /// for [`PRESENCE_SECONDS`]; returns the other instances recorded there, sorted. Renew it
    /// well within that time.
    pub async fn announce(&self, mailbox: &str) -> Result<Vec<String>, String> {
        self.presence(mailbox, &self.instance).await
    }

    /// The instances recorded as watching `mailbox`, other than this one, without recording
    /// this one (for `check`).
    pub async fn others_present(&self, mailbox: &str) -> Result<Vec<String>, String> {
        let mut others = self.presence(mailbox, "").await?;
        others.retain(|id| *id != self.instance);
        Ok(others)
    }

    async fn presence(&self, mailbox: &str, instance: &str) -> Result<Vec<String>, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut c = self.link.connection().await?;
        let reply: Result<Vec<String>, _> = redis::cmd("EVAL")
            .arg(ANNOUNCE)
            .arg(1)
            .arg(self.link.namespaced(presence_key(mailbox)))
            .arg(instance)
            .arg(now)
            .arg(PRESENCE_SECONDS)
            .query_async(&mut c)
            .await;
        match reply {
            Ok(mut others) => {
                others.sort();
                Ok(others)
            }
            Err(e) => {
                self.link.forget().await;
                Err(describe(&e))
            }
        }
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        script: &str,
        source_identity: &str,
        seconds: Option<u64>,
    ) -> Result<T, String> {
        let mut c = self.link.connection().await?;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script)
            .arg(1)
            .arg(self.key(source_identity))
            .arg(&self.instance);
        if let Some(seconds) = seconds {
            cmd.arg(seconds);
        }
        match cmd.query_async(&mut c).await {
            Ok(reply) => Ok(reply),
            Err(e) => {
                self.link.forget().await;
                Err(describe(&e))
            }
        }
    }
}

/// What the arbitration before a delivery decided, for the deliverer.
pub(crate) enum Decision {
    /// Deliver; with the source identity whose claim this instance now holds, if arbitrated.
    Deliver(Option<String>),
    /// This instance delivered it before a restart: record it as delivered.
    Recorded,
    /// Another instance delivered it: record this (`ignored`, not an error).
    Elsewhere(InboundFinish),
    /// Another instance is delivering it: ask again at `at`.
    Wait {
        /// Which instance, in words.
        reason: String,
        /// The next attempt.
        at: Timestamp,
    },
    /// Redis could not be asked: a temporary failure.
    Failed(DeliveryFailure),
}

/// Asks `arbiter`, if any, whether this instance delivers `meta`'s message (of `mailbox`);
/// a wait follows `retry`'s back-off, and ends at the latest when the other's hold does.
pub(crate) async fn decide(
    arbiter: Option<&Arbiter>,
    mailbox: Mailbox,
    meta: &InboundMeta,
    retry: &Backoff,
) -> Decision {
    let (Some(arbiter), Some(identity)) = (arbiter, meta.source_identity.as_deref()) else {
        return Decision::Deliver(None);
    };
    let mailbox = mailbox.as_str();
    let id = meta.id;
    match arbiter.claim(identity).await {
        Ok(Claim::Deliver) => Decision::Deliver(Some(identity.to_owned())),
        Ok(Claim::DeliveredHere) => {
            tracing::info!(
                mailbox,
                id,
                "delivered by this instance before it restarted; recorded, not delivered again"
            );
            Decision::Recorded
        }
        Ok(Claim::DeliveredElsewhere { instance }) => {
            tracing::info!(
                mailbox,
                id,
                instance,
                "handed to GitLab by another postern instance; recorded as handled there"
            );
            Decision::Elsewhere(InboundFinish {
                state: InboundState::Ignored,
                handler: None,
                error_kind: None,
                reason: Some(format!(
                    "handed to GitLab by another postern instance ({instance})"
                )),
                outcome: Some(serde_json::json!({ "delivered_by_instance": instance }).to_string()),
            })
        }
        Ok(Claim::HeldElsewhere {
            instance,
            seconds_left,
        }) => {
            let wait = retry
                .delay(meta.attempts)
                .min(Duration::from_secs(seconds_left.saturating_add(1)));
            let at = Timestamp::now().plus_seconds(ceil_seconds(wait).max(1));
            tracing::info!(mailbox, id, instance, retry_in = ?wait, "another postern instance is delivering this message; waiting for it");
            Decision::Wait {
                reason: format!("another postern instance ({instance}) is delivering it"),
                at,
            }
        }
        Err(reason) => Decision::Failed(DeliveryFailure::Temporary {
            kind: ErrorKind::RedisUnavailable,
            reason: format!("cannot arbitrate with other instances: {reason}"),
        }),
    }
}

/// After a delivery this instance held the claim for: `done` when GitLab gave its verdict
/// (accepted, or refused for good), else released so another instance may try. A failure here is logged, never fatal: the message's
/// own outcome stands, and an unwritten `done` leaves the hold to expire (the one window in
/// which another instance delivers it again).
pub(crate) async fn settle(arbiter: &Arbiter, identity: &str, delivered: bool) {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        let result = if delivered {
            arbiter.delivered(identity).await
        } else {
            arbiter.release(identity).await.map(|()| true)
        };
        match result {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!(
                    source_identity = identity,
                    "the claim expired during the delivery and another instance holds it now; it may deliver the message too"
                );
                return;
            }
            Err(reason) if attempt < ATTEMPTS => {
                tracing::warn!(
                    reason,
                    "cannot record the claim's outcome on Redis; trying again"
                );
                tokio::time::sleep(SETTLE_PAUSE).await;
            }
            Err(reason) => {
                tracing::warn!(
                    reason,
                    delivered,
                    "cannot record the claim's outcome on Redis; the hold expires by itself"
                );
            }
        }
    }
}

/// The claim key of a source identity, before any namespace.
pub fn claim_key(source_identity: &str) -> String {
    format!("postern:claim:{source_identity}")
}

/// The presence key of a mailbox, before any namespace.
pub fn presence_key(mailbox: &str) -> String {
    format!("postern:instances:{mailbox}")
}

/// This instance's id: read from `<data_dir>/instance-id`, or made (16 random hex digits) and
/// written there on first use, so a restarted instance recognises its own claims. Instances
/// must not share a data directory (nor copies of one).
pub fn instance_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(INSTANCE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if is_instance_id(text.trim()) => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold an instance id (hex digits); remove it to make a new one",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = postern_vocab::random::hex(8).map_err(std::io::Error::other)?;
    // Written aside and renamed: a crash leaves the whole id or none.
    let partial = data_dir.join(format!("{INSTANCE_ID_FILE}.partial"));
    std::fs::write(&partial, format!("{id}\n"))?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &path)?;
    Ok(id)
}

fn is_instance_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_and_service_desk_keys_never_collide() {
        // The same UIDVALIDITY and UID in two mailboxes of one server and user: mail_room's
        // `delivered:<uid>` would be one key.
        let incoming = claim_key("imap:gitlab@mail.example.org/inbox:1700000000:42");
        let desk = claim_key("imap:gitlab@mail.example.org/service-desk:1700000000:42");
        let other_user = claim_key("imap:desk@mail.example.org/inbox:1700000000:42");
        let other_host = claim_key("imap:gitlab@mail2.example.org/inbox:1700000000:42");
        let keys = [&incoming, &desk, &other_user, &other_host];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            incoming,
            "postern:claim:imap:gitlab@mail.example.org/inbox:1700000000:42"
        );
    }

    #[test]
    fn namespace_prefixes_the_key() {
        let mut settings = RedisSettings::new("redis://127.0.0.1:1");
        settings.namespace = Some("mail_room:gitlab".to_owned());
        let arbiter = Arbiter::new(&settings, "00ff").expect("settings");
        assert_eq!(
            arbiter.key("imap:u@h/inbox:1:2"),
            "mail_room:gitlab:postern:claim:imap:u@h/inbox:1:2"
        );
    }

    #[test]
    fn instance_id_is_kept_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = instance_id(dir.path()).expect("made");
        assert_eq!(first.len(), 16);
        assert_eq!(instance_id(dir.path()).expect("read"), first);
        let other = tempfile::tempdir().expect("tempdir");
        assert_ne!(instance_id(other.path()).expect("made"), first);
        std::fs::write(dir.path().join(INSTANCE_ID_FILE), "not an id\n").expect("write");
        assert!(instance_id(dir.path()).is_err());
    }

    #[test]
    fn debug_does_not_show_the_url() {
        let settings = RedisSettings::new("redis://:hunter2@127.0.0.1:1/0");
        let arbiter = Arbiter::new(&settings, "00ff").expect("settings");
        assert!(!format!("{arbiter:?}").contains("hunter2"));
    }
}
