//! In-memory ephemeral store for a single process.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{EphemeralResult, EphemeralStore};

/// Expired entries are swept once per this many operations (and ignored in between).
const SWEEP_EVERY: u64 = 1024;

#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, (String, Instant)>,
    operations: u64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the entries after dropping the expired one at `key` (and, now and then,
    /// every expired one), so `f` never sees a dead value.
    fn with_entries<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut HashMap<String, (String, Instant)>) -> T,
    ) -> T {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        entries.operations += 1;
        if entries.operations.is_multiple_of(SWEEP_EVERY) {
            entries.map.retain(|_, (_, expires)| *expires > now);
        } else if entries
            .map
            .get(key)
            .is_some_and(|(_, expires)| *expires <= now)
        {
            entries.map.remove(key);
        }
        f(&mut entries.map)
    }
}

#[async_trait]
impl EphemeralStore for MemoryStore {
    async fn get(&self, key: &str) -> EphemeralResult<Option<String>> {
        Ok(self.with_entries(key, |e| e.get(key).map(|(v, _)| v.clone())))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<()> {
        let expires = Instant::now() + ttl;
        self.with_entries(key, |e| {
            e.insert(key.to_string(), (value.to_string(), expires))
        });
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<bool> {
        let expires = Instant::now() + ttl;
        Ok(self.with_entries(key, |e| {
            if e.contains_key(key) {
                false
            } else {
                e.insert(key.to_string(), (value.to_string(), expires));
                true
            }
        }))
    }

    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> EphemeralResult<i64> {
        let expires = Instant::now() + ttl;
        Ok(self.with_entries(key, |e| {
            let entry = e
                .entry(key.to_string())
                .or_insert_with(|| ("0".to_string(), expires));
            let next = entry.0.parse::<i64>().unwrap_or(0).saturating_add(by);
            entry.0 = next.to_string();
            next
        }))
    }

    async fn delete(&self, key: &str) -> EphemeralResult<bool> {
        Ok(self.with_entries(key, |e| e.remove(key).is_some()))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: &str,
        ttl: Duration,
    ) -> EphemeralResult<bool> {
        let expires = Instant::now() + ttl;
        Ok(self.with_entries(key, |e| match e.get_mut(key) {
            Some(entry) if entry.0 == expected => {
                *entry = (new.to_string(), expires);
                true
            }
            _ => false,
        }))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_store_honours_the_contract() {
        super::super::contract::check(&super::MemoryStore::new()).await;
    }
}
