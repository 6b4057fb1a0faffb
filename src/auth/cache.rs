//! A short memory of credential lookups.
//!
//! Every authenticated request resolves its token (or access key) and, for a
//! domain-scoped caller, the project it names. From SQLite each of those is a read
//! transaction of its own, and on two cores they cost more than the tag read the request
//! came for. The answers change rarely, so they are kept here, trusted while two things
//! hold: the store reports no credential change made through it since the answer was
//! read ([`Store::identity_epoch`](crate::core::port::Store::identity_epoch)), and the answer
//! is younger than the configured maximum age (`credential_cache_ms`, one second by
//! default), which bounds how long a change made by another process sharing the
//! database (the admin CLI, another replica) goes unseen.
//!
//! Only what the store found is kept: unknown tokens are looked up every time, so
//! guessing cannot fill the memory. Expiry is judged on every use, never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most answers kept per cache; when full, the cache starts over.
const CAPACITY: usize = 10_000;

/// Answers of one kind of lookup, by key.
pub struct LookupCache<V> {
    entries: Mutex<HashMap<String, Entry<V>>>,
    /// How long an answer is trusted when nothing in this process changed a
    /// credential; zero keeps nothing.
    max_age: Duration,
}

struct Entry<V> {
    value: V,
    epoch: u64,
    read_at: Instant,
}

impl<V: Clone> LookupCache<V> {
    pub fn new(max_age: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_age,
        }
    }

    /// The answer kept for `key`, if it was read at `epoch` less than the maximum age ago.
    pub fn get(&self, key: &str, epoch: u64) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        (entry.epoch == epoch && entry.read_at.elapsed() < self.max_age)
            .then(|| entry.value.clone())
    }

    /// The answer for `key`: kept, if fresh, else read by `read` and kept when found.
    /// `epoch` is taken by the caller before `read` runs (a future does nothing until
    /// awaited), so a change committed during the read leaves the kept answer stale.
    pub async fn get_or_read<E>(
        &self,
        key: &str,
        epoch: u64,
        read: impl std::future::Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<V>, E> {
        if let Some(kept) = self.get(key, epoch) {
            return Ok(Some(kept));
        }
        let found = read.await?;
        if let Some(found) = &found {
            self.put(key, epoch, found.clone());
        }
        Ok(found)
    }

    /// Keeps `value` for `key`; `epoch` must have been taken before the value was read,
    /// so that a change committed during the read makes it stale at once.
    pub fn put(&self, key: &str, epoch: u64, value: V) {
        if self.max_age.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CAPACITY && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(
            key.to_owned(),
            Entry {
                value,
                epoch,
                read_at: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_only_for_the_epoch_it_was_read_at() {
        let cache = LookupCache::new(Duration::from_secs(60));
        cache.put("t", 3, 42u32);
        assert_eq!(cache.get("t", 3), Some(42));
        assert_eq!(cache.get("t", 4), None, "a credential change drops it");
        assert_eq!(cache.get("other", 3), None);
    }

    #[test]
    fn a_full_cache_starts_over_instead_of_growing() {
        let cache = LookupCache::new(Duration::from_secs(60));
        for i in 0..CAPACITY {
            cache.put(&i.to_string(), 0, i);
        }
        cache.put("one more", 0, 0);
        assert_eq!(cache.get("one more", 0), Some(0));
        assert_eq!(cache.get("0", 0), None);
        assert!(cache.entries.lock().expect("lock").len() <= CAPACITY);
    }

    #[test]
    fn answers_age_out_and_a_zero_age_keeps_nothing() {
        let cache = LookupCache::new(Duration::from_millis(30));
        cache.put("t", 0, 1u8);
        assert_eq!(cache.get("t", 0), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get("t", 0), None);
        let off = LookupCache::new(Duration::ZERO);
        off.put("t", 0, 1u8);
        assert_eq!(off.get("t", 0), None);
    }
}
