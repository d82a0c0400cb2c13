//! Authenticated keys remembered for a few seconds, so a request costs no
//! database round trip just to check its bearer token.
//!
//! Entries are keyed by the key's hash and hold the stored facts (owner,
//! expiry, end of a rotation's grace), which are checked against the clock
//! on every use, so expiry and rotation are exact. A key revoked, or a
//! connection deleted, through another node or the CLI stops working within
//! [`TTL_SECS`]; changes made on this node clear the cache at once.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// How long a looked-up key is trusted without asking the database again.
pub const TTL_SECS: i64 = 10;

/// Most keys remembered; past that the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// Looked-up keys by hash.
pub struct KeyCache<V> {
    map: RwLock<HashMap<String, (V, DateTime<Utc>)>>,
    /// Bumped by every [`KeyCache::clear`]: a lookup that began before a
    /// clear may have read the key as it was before the change, and must
    /// not put it back.
    generation: AtomicU64,
}

impl<V: Clone> Default for KeyCache<V> {
    fn default() -> Self {
        KeyCache { map: RwLock::new(HashMap::new()), generation: AtomicU64::new(0) }
    }
}

impl<V: Clone> KeyCache<V> {
    /// The entry for `hash`, if it was looked up less than [`TTL_SECS`] ago.
    pub fn get(&self, hash: &str, now: DateTime<Utc>) -> Option<V> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(hash).filter(|(_, at)| now - *at < Duration::seconds(TTL_SECS) && *at <= now).map(|(v, _)| v.clone())
    }

    /// The cache's generation, to take before looking a key up and give to
    /// [`KeyCache::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers a key looked up since `generation` was taken, unless the
    /// cache was cleared meanwhile (the lookup may predate the change).
    pub fn put(&self, hash: String, value: V, now: DateTime<Utc>, generation: u64) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(hash, (value, now));
    }

    /// Forgets everything (after a change to keys or connections on this node).
    pub fn clear(&self) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = KeyCache::default();
        let t0 = DateTime::from_timestamp(1_000_000, 0).unwrap();
        cache.put("h".into(), 7, t0, cache.generation());
        assert_eq!(cache.get("h", t0 + Duration::seconds(TTL_SECS - 1)), Some(7));
        assert_eq!(cache.get("h", t0 + Duration::seconds(TTL_SECS)), None);
        cache.clear();
        assert_eq!(cache.get("h", t0), None);
    }

    #[test]
    fn a_lookup_begun_before_a_clear_is_not_remembered() {
        let cache = KeyCache::default();
        let t0 = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let before = cache.generation();
        cache.clear();
        cache.put("h".into(), 7, t0, before);
        assert_eq!(cache.get("h", t0), None);
        cache.put("h".into(), 8, t0, cache.generation());
        assert_eq!(cache.get("h", t0), Some(8));
    }
}
