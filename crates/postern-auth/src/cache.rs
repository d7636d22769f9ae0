//! Bounded caches of parsed DNS records for mail-auth (`ResolverCache`): a warm verification
//! parses no key and sends no query. Each cache holds at most [`CACHE_ENTRIES`]; when full,
//! expired entries go first, then the one closest to expiry, so a flood of one-off domains
//! costs a scan of a full map at worst and cannot grow memory.

use crate::config::{CACHE_ENTRIES, CACHE_MAX_TTL};
use mail_auth::{MX, RecordSet, ResolverCache, Txt};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

/// One cache: key → (value, valid until).
pub(crate) struct BoundedCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> BoundedCache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        BoundedCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // A panic elsewhere while holding the lock leaves a map that is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

impl<K: Hash + Eq + Clone, V: Clone> ResolverCache<K, V> for BoundedCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.lock();
        match entries.get(name) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(value, _)| value)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let now = Instant::now();
        let valid_until = valid_until.min(now + CACHE_MAX_TTL);
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(k, _)| k.clone());
                if let Some(soonest) = soonest {
                    entries.remove(&soonest);
                }
            }
        }
        entries.insert(key, (value, valid_until));
    }
}

/// The five caches mail-auth's lookups take.
pub(crate) struct Caches {
    pub(crate) txt: BoundedCache<Box<str>, Txt>,
    pub(crate) mx: BoundedCache<Box<str>, RecordSet<MX>>,
    pub(crate) ipv4: BoundedCache<Box<str>, RecordSet<Ipv4Addr>>,
    pub(crate) ipv6: BoundedCache<Box<str>, RecordSet<Ipv6Addr>>,
    pub(crate) ptr: BoundedCache<IpAddr, RecordSet<Box<str>>>,
}

impl Caches {
    pub(crate) fn new() -> Self {
        Caches {
            txt: BoundedCache::new(CACHE_ENTRIES),
            mx: BoundedCache::new(CACHE_ENTRIES),
            ipv4: BoundedCache::new(CACHE_ENTRIES),
            ipv6: BoundedCache::new(CACHE_ENTRIES),
            ptr: BoundedCache::new(CACHE_ENTRIES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn never_holds_more_than_its_capacity_and_drops_expired_entries_first() {
        let cache: BoundedCache<Box<str>, u32> = BoundedCache::new(3);
        let now = Instant::now();
        cache.insert("old".into(), 1, now); // already expired
        cache.insert("a".into(), 2, now + Duration::from_secs(50));
        cache.insert("b".into(), 3, now + Duration::from_secs(100));
        cache.insert("c".into(), 4, now + Duration::from_secs(100));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("old"), None);
        cache.insert("d".into(), 5, now + Duration::from_secs(100));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("a"), None, "the entry closest to expiry went");
        assert_eq!(cache.get("d"), Some(5));
    }

    #[test]
    fn an_expired_entry_is_not_returned() {
        let cache: BoundedCache<Box<str>, u32> = BoundedCache::new(3);
        cache.insert("x".into(), 1, Instant::now());
        assert_eq!(cache.get("x"), None);
    }
}
