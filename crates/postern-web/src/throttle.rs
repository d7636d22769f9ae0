//! Sign-in throttling: after too many failed sign-ins for one account from one address, from
//! one address for any account, or for one account from anywhere, further attempts are refused
//! (429 with `Retry-After`) until the window ends, without running argon2 at all.
//!
//! Hand-written rather than `governor` (which is not in the tree): governor meters every
//! request and cannot look at a key without spending from it, while this needs "count only
//! failures, and check before verifying without counting". The map is bounded: expired entries
//! go first, then the oldest, so a flood of addresses costs memory only up to the bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures each key may have in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures for one account from one address (default 5).
    pub per_account_and_address: u32,
    /// Failures from one address, all accounts together (default 20).
    pub per_address: u32,
    /// Failures for one account, all addresses together (default 50: high enough that a
    /// stranger cannot easily lock a person out, low enough to stop a distributed guess).
    pub per_account: u32,
    /// The window, counted from the first failure (default 15 minutes).
    pub window: Duration,
    /// Keys remembered at most (default 10 000).
    pub max_entries: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            per_account_and_address: 5,
            per_address: 20,
            per_account: 50,
            window: Duration::from_secs(15 * 60),
            max_entries: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    AccountAndAddress(String, IpAddr),
    Address(IpAddr),
    Account(String),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

/// Failed sign-ins by key, shared by every request.
#[derive(Debug)]
pub(crate) struct SignInThrottle {
    policy: ThrottlePolicy,
    failures: Mutex<HashMap<Key, Failures>>,
}

impl SignInThrottle {
    pub(crate) fn new(policy: ThrottlePolicy) -> SignInThrottle {
        SignInThrottle {
            policy,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(&self, username: &str, address: IpAddr) -> [(Key, u32); 3] {
        let account = username.trim().to_lowercase();
        [
            (
                Key::AccountAndAddress(account.clone(), address),
                self.policy.per_account_and_address,
            ),
            (Key::Address(address), self.policy.per_address),
            (Key::Account(account), self.policy.per_account),
        ]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Failures>> {
        // A panic while holding the lock leaves only counters behind; they stay usable.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `username` from `address` must wait, if any of its keys is at its limit.
    pub(crate) fn wait(&self, username: &str, address: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.lock();
        self.keys(username, address)
            .iter()
            .filter_map(|(key, limit)| {
                let entry = failures.get(key)?;
                let ends = entry.since + self.policy.window;
                (entry.count >= *limit && now < ends).then(|| ends - now)
            })
            .max()
    }

    /// Counts one failed sign-in of `username` from `address`.
    pub(crate) fn failed(&self, username: &str, address: IpAddr, now: Instant) {
        let window = self.policy.window;
        let mut failures = self.lock();
        for (key, _) in self.keys(username, address) {
            if !failures.contains_key(&key) && failures.len() >= self.policy.max_entries {
                failures.retain(|_, entry| now < entry.since + window);
                if failures.len() >= self.policy.max_entries
                    && let Some(oldest) = failures
                        .iter()
                        // Among equally old entries the one with fewest failures goes, so a
                        // key that is close to its limit outlives one-off failures.
                        .min_by_key(|(_, entry)| (entry.since, entry.count))
                        .map(|(key, _)| key.clone())
                {
                    failures.remove(&oldest);
                }
            }
            let entry = failures.entry(key).or_insert(Failures {
                count: 0,
                since: now,
            });
            if now >= entry.since + window {
                *entry = Failures {
                    count: 0,
                    since: now,
                };
            }
            entry.count = entry.count.saturating_add(1);
        }
    }

    /// Forgets the failures of `username` from `address` after a successful sign-in (the
    /// address's and the account's overall counts stay).
    pub(crate) fn succeeded(&self, username: &str, address: IpAddr) {
        let account = username.trim().to_lowercase();
        self.lock()
            .remove(&Key::AccountAndAddress(account, address));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The client's address for throttling: the connection's peer, or with
/// [`WebConfig::client_address_from_forwarded_for`](crate::WebConfig) the last
/// `X-Forwarded-For` entry. Unspecified (one shared bucket) when neither is known, as for a
/// router driven without a listener.
pub(crate) struct ClientAddress(pub(crate) IpAddr);

impl axum::extract::FromRequestParts<crate::WebState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::WebState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .config()
            .client_address_from_forwarded_for
            .then(|| {
                parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .next_back()
                    .and_then(|v| v.trim().parse::<IpAddr>().ok())
            })
            .flatten();
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(ClientAddress(
            forwarded
                .or(peer)
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            per_account_and_address: 3,
            per_address: 5,
            per_account: 7,
            window: Duration::from_secs(60),
            max_entries: 64,
        }
    }

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const AWAY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_account_and_address_is_limited_until_its_window_ends() {
        let throttle = SignInThrottle::new(policy());
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.wait("Alice", HOME, start), None);
            throttle.failed("alice", HOME, start);
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(
            throttle.wait("ALICE", HOME, later),
            Some(Duration::from_secs(40))
        );
        assert_eq!(throttle.wait("alice", AWAY, later), None);
        assert_eq!(throttle.wait("bob", HOME, later), None);
        assert_eq!(
            throttle.wait("alice", HOME, start + Duration::from_secs(60)),
            None
        );
    }

    #[test]
    fn one_address_guessing_many_accounts_is_limited() {
        let throttle = SignInThrottle::new(policy());
        let now = Instant::now();
        for name in ["a", "b", "c", "d", "e"] {
            throttle.failed(name, HOME, now);
        }
        assert!(throttle.wait("f", HOME, now).is_some());
        assert_eq!(throttle.wait("f", AWAY, now), None);
    }

    #[test]
    fn success_clears_only_the_account_and_address() {
        let throttle = SignInThrottle::new(policy());
        let now = Instant::now();
        for _ in 0..3 {
            throttle.failed("alice", HOME, now);
        }
        throttle.succeeded("alice", HOME);
        assert_eq!(throttle.wait("alice", HOME, now), None);
    }

    #[test]
    fn a_full_map_evicts_one_off_failures_before_a_guessing_address() {
        let throttle = SignInThrottle::new(ThrottlePolicy {
            max_entries: 8,
            ..policy()
        });
        let now = Instant::now();
        // Five accounts from one address make eleven keys, three more than the bound; every
        // key has the same age, so eviction must decide by count and keep the address's.
        for name in ["a", "b", "c", "d", "e"] {
            throttle.failed(name, HOME, now);
        }
        assert!(throttle.len() <= 8, "{}", throttle.len());
        assert!(throttle.wait("f", HOME, now).is_some());
    }

    #[test]
    fn the_map_stays_within_its_bound() {
        let throttle = SignInThrottle::new(ThrottlePolicy {
            max_entries: 8,
            ..policy()
        });
        let now = Instant::now();
        for i in 0..100u8 {
            let address = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i));
            throttle.failed(&format!("user{i}"), address, now);
        }
        assert!(throttle.len() <= 8, "{}", throttle.len());
    }
}
