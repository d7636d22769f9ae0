//! Sign-in throttling: after too many failed sign-ins for one account from one address, from
//! one address for any account, or for one account from anywhere, further attempts are refused
//! (429 with `Retry-After`) until the window ends, without running argon2 at all.
//!
//! Every attempt is counted (reserved) before its password is verified and refunded only when
//! it succeeds, so N attempts in parallel get exactly as far as N one after the other: the
//! attempt after the limit is refused even while the earlier ones are still hashing.
//!
//! IPv6 clients are counted by their /64 (one household or server usually owns a whole /64, so
//! counting single addresses would give an attacker 2^64 fresh buckets); IPv4-mapped IPv6
//! addresses count as the IPv4 address.
//!
//! Two bounded maps: `open` holds what anyone can create (addresses, names that are not
//! accounts, account-and-address pairs) and evicts expired entries first, then those below
//! their limit, oldest first; `accounts` holds the per-account counters of accounts that exist,
//! which only sign-ins naming a real account can create, so a flood of made-up names or of
//! addresses cannot push a guessed account's counter out.
//!
//! Hand-written rather than `governor` (which is not in the tree): governor meters every
//! request and cannot look at a key without spending from it, while this needs "count only
//! failures, and check before verifying".

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
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
    /// Keys remembered at most, in each of the two maps (default 10 000).
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

/// Bits of an IPv6 address that name one client network.
const IPV6_CLIENT_PREFIX_BITS: u32 = 64;

/// The unit an address is counted by: IPv4 as is, IPv6 by its /64.
pub(crate) fn client_group(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = u128::MAX << (128 - IPV6_CLIENT_PREFIX_BITS);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
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

#[derive(Debug, Default)]
struct Maps {
    open: HashMap<Key, Failures>,
    accounts: HashMap<String, Failures>,
}

/// One counted attempt; hand it back to [`SignInThrottle::succeeded`] if the password was right.
#[derive(Debug)]
pub(crate) struct Reservation {
    account: String,
    group: IpAddr,
    account_exists: bool,
}

/// Failed sign-ins by key, shared by every request.
#[derive(Debug)]
pub(crate) struct SignInThrottle {
    policy: ThrottlePolicy,
    maps: Mutex<Maps>,
}

/// Adds one failure to `key`'s entry in `map`, first making room if the map is full: expired
/// entries go, then the oldest entry below its limit (fewest failures first), and only if every
/// entry is a live lockout the oldest of those.
fn count_one<K: Clone + Eq + std::hash::Hash>(
    map: &mut HashMap<K, Failures>,
    key: K,
    max_entries: usize,
    window: Duration,
    limit_of: impl Fn(&K) -> u32,
    now: Instant,
) {
    if !map.contains_key(&key) && map.len() >= max_entries {
        map.retain(|_, entry| now < entry.since + window);
        if map.len() >= max_entries
            && let Some(victim) = map
                .iter()
                .min_by_key(|(key, entry)| (entry.count >= limit_of(key), entry.since, entry.count))
                .map(|(key, _)| key.clone())
        {
            map.remove(&victim);
        }
    }
    let entry = map.entry(key).or_insert(Failures {
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

/// Takes back one counted attempt (a success, or an attempt that was never verified).
fn refund<K: Eq + std::hash::Hash>(map: &mut HashMap<K, Failures>, key: &K) {
    if let Some(entry) = map.get_mut(key) {
        entry.count = entry.count.saturating_sub(1);
        if entry.count == 0 {
            map.remove(key);
        }
    }
}

impl SignInThrottle {
    pub(crate) fn new(policy: ThrottlePolicy) -> SignInThrottle {
        SignInThrottle {
            policy,
            maps: Mutex::new(Maps::default()),
        }
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::AccountAndAddress(..) => self.policy.per_account_and_address,
            Key::Address(_) => self.policy.per_address,
            Key::Account(_) => self.policy.per_account,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic while holding the lock leaves only counters behind; they stay usable.
        self.maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wait_for(&self, entry: Option<&Failures>, limit: u32, now: Instant) -> Option<Duration> {
        let entry = entry?;
        let ends = entry.since + self.policy.window;
        (entry.count >= limit && now < ends).then(|| ends - now)
    }

    /// Counts one attempt of `username` from `address` before its password is checked, or
    /// says how long to wait if any of its keys is at its limit (then nothing is counted).
    /// `account_exists`: whether `username` names an account, which decides the map its
    /// per-account counter lives in.
    pub(crate) fn reserve(
        &self,
        username: &str,
        account_exists: bool,
        address: IpAddr,
        now: Instant,
    ) -> Result<Reservation, Duration> {
        let account = username.trim().to_lowercase();
        let group = client_group(address);
        let pair = Key::AccountAndAddress(account.clone(), group);
        let by_address = Key::Address(group);
        let by_account = Key::Account(account.clone());
        let mut maps = self.lock();
        let account_entry = if account_exists {
            maps.accounts.get(&account)
        } else {
            maps.open.get(&by_account)
        };
        let wait = [
            self.wait_for(maps.open.get(&pair), self.limit(&pair), now),
            self.wait_for(maps.open.get(&by_address), self.limit(&by_address), now),
            self.wait_for(account_entry, self.policy.per_account, now),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        let (max, window) = (self.policy.max_entries, self.policy.window);
        let open_keys = if account_exists {
            vec![pair, by_address]
        } else {
            vec![pair, by_address, by_account]
        };
        for key in open_keys {
            count_one(&mut maps.open, key, max, window, |k| self.limit(k), now);
        }
        if account_exists {
            let per_account = self.policy.per_account;
            count_one(
                &mut maps.accounts,
                account.clone(),
                max,
                window,
                |_| per_account,
                now,
            );
        }
        Ok(Reservation {
            account,
            group,
            account_exists,
        })
    }

    /// A successful sign-in: forgets the account-and-address failures and refunds the attempt
    /// from the address's and the account's counts (their earlier failures stay).
    pub(crate) fn succeeded(&self, reservation: Reservation) {
        let mut maps = self.lock();
        maps.open.remove(&Key::AccountAndAddress(
            reservation.account.clone(),
            reservation.group,
        ));
        refund(&mut maps.open, &Key::Address(reservation.group));
        if reservation.account_exists {
            refund(&mut maps.accounts, &reservation.account);
        } else {
            refund(&mut maps.open, &Key::Account(reservation.account));
        }
    }

    /// An attempt that was counted but never verified (the server was too busy to hash it):
    /// takes it back from every key.
    pub(crate) fn not_tried(&self, reservation: Reservation) {
        let mut maps = self.lock();
        refund(
            &mut maps.open,
            &Key::AccountAndAddress(reservation.account.clone(), reservation.group),
        );
        refund(&mut maps.open, &Key::Address(reservation.group));
        if reservation.account_exists {
            refund(&mut maps.accounts, &reservation.account);
        } else {
            refund(&mut maps.open, &Key::Account(reservation.account));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let maps = self.lock();
        maps.open.len() + maps.accounts.len()
    }
}

/// The client's address for throttling and logs: the connection's peer, or, when that peer is
/// one of [`WebConfig::trusted_proxies`](crate::WebConfig), the client its forwarding headers
/// name. Unspecified (one shared bucket) when there is no peer, as for a router driven
/// without a listener.
pub(crate) struct ClientAddress(pub(crate) IpAddr);

impl axum::extract::FromRequestParts<crate::WebState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::WebState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |info| {
                info.0.ip()
            });
        let values = |name: &'static str| {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
        };
        Ok(ClientAddress(state.config().trusted_proxies.client(
            peer,
            values("forwarded"),
            values("x-forwarded-for"),
        )))
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

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn an_account_and_address_is_limited_until_its_window_ends() {
        let throttle = SignInThrottle::new(policy());
        let start = Instant::now();
        for _ in 0..3 {
            assert!(throttle.reserve("Alice", true, HOME, start).is_ok());
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(
            throttle.reserve("ALICE", true, HOME, later).err(),
            Some(Duration::from_secs(40))
        );
        assert!(throttle.reserve("alice", true, AWAY, later).is_ok());
        assert!(throttle.reserve("bob", true, HOME, later).is_ok());
        assert!(
            throttle
                .reserve("alice", true, HOME, start + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn reservations_in_flight_count_like_finished_failures() {
        // Nothing is reported back between the attempts, as when all run in parallel.
        let throttle = SignInThrottle::new(policy());
        let now = Instant::now();
        let admitted = (0..60)
            .filter(|_| throttle.reserve("alice", true, HOME, now).is_ok())
            .count();
        assert_eq!(admitted, 3);
    }

    #[test]
    fn one_address_guessing_many_accounts_is_limited() {
        let throttle = SignInThrottle::new(policy());
        let now = Instant::now();
        for name in ["a", "b", "c", "d", "e"] {
            assert!(throttle.reserve(name, false, HOME, now).is_ok());
        }
        assert!(throttle.reserve("f", false, HOME, now).is_err());
        assert!(throttle.reserve("f", false, AWAY, now).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let throttle = SignInThrottle::new(policy());
        let now = Instant::now();
        for i in 0..5u16 {
            let address = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, i, 0, 0, 1));
            assert!(
                throttle
                    .reserve(&format!("u{i}"), false, address, now)
                    .is_ok()
            );
        }
        let same_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0xffff, 1, 2, 3));
        assert!(throttle.reserve("z", false, same_64, now).is_err());
        let next_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1));
        assert!(throttle.reserve("z", false, next_64, now).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap_or(HOME);
        assert_eq!(client_group(mapped), HOME);
    }

    #[test]
    fn success_clears_the_pair_and_refunds_the_attempt() {
        let throttle = SignInThrottle::new(policy());
        let now = Instant::now();
        for _ in 0..2 {
            assert!(throttle.reserve("alice", true, HOME, now).is_ok());
        }
        let Ok(right) = throttle.reserve("alice", true, HOME, now) else {
            panic!("third attempt is within the limit");
        };
        throttle.succeeded(right);
        for _ in 0..3 {
            assert!(throttle.reserve("alice", true, HOME, now).is_ok());
        }
        // Two failures before and three after the success: the address has 5, its limit.
        assert!(throttle.reserve("bob", true, HOME, now).is_err());
    }

    #[test]
    fn a_flood_from_many_addresses_keeps_an_accounts_counter() {
        let throttle = SignInThrottle::new(ThrottlePolicy {
            max_entries: 8,
            ..policy()
        });
        let now = Instant::now();
        for i in 0..7 {
            assert!(throttle.reserve("alice", true, v4(i), now).is_ok());
        }
        for i in 100..1100 {
            let _ = throttle.reserve(&format!("made-up{i}"), false, v4(i), now);
        }
        assert!(throttle.reserve("alice", true, v4(5000), now).is_err());
    }

    #[test]
    fn a_full_map_evicts_one_off_failures_before_a_lockout() {
        let throttle = SignInThrottle::new(ThrottlePolicy {
            max_entries: 8,
            ..policy()
        });
        let now = Instant::now();
        for name in ["a", "b", "c", "d", "e"] {
            assert!(throttle.reserve(name, false, HOME, now).is_ok());
        }
        for i in 0..100 {
            let _ = throttle.reserve(&format!("user{i}"), false, v4(i), now);
        }
        assert!(throttle.reserve("f", false, HOME, now).is_err());
    }

    #[test]
    fn the_maps_stay_within_their_bound() {
        let throttle = SignInThrottle::new(ThrottlePolicy {
            max_entries: 8,
            ..policy()
        });
        let now = Instant::now();
        for i in 0..100 {
            let _ = throttle.reserve(&format!("user{i}"), i % 2 == 0, v4(i), now);
        }
        assert!(throttle.len() <= 16, "{}", throttle.len());
    }
}
