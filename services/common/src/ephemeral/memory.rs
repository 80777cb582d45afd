//! In-memory ephemeral store for a single process.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{EphemeralResult, EphemeralStore};

#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the live entries, dropping expired ones first (lazy expiry keeps it simple).
    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<String, (String, Instant)>) -> T) -> T {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        entries.retain(|_, (_, expires)| *expires > now);
        f(&mut entries)
    }
}

#[async_trait]
impl EphemeralStore for MemoryStore {
    async fn get(&self, key: &str) -> EphemeralResult<Option<String>> {
        Ok(self.with_entries(|e| e.get(key).map(|(v, _)| v.clone())))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<()> {
        let expires = Instant::now() + ttl;
        self.with_entries(|e| e.insert(key.to_string(), (value.to_string(), expires)));
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<bool> {
        let expires = Instant::now() + ttl;
        Ok(self.with_entries(|e| {
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
        Ok(self.with_entries(|e| {
            let entry = e
                .entry(key.to_string())
                .or_insert_with(|| ("0".to_string(), expires));
            let next = entry.0.parse::<i64>().unwrap_or(0).saturating_add(by);
            entry.0 = next.to_string();
            next
        }))
    }

    async fn delete(&self, key: &str) -> EphemeralResult<bool> {
        Ok(self.with_entries(|e| e.remove(key).is_some()))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: &str,
        ttl: Duration,
    ) -> EphemeralResult<bool> {
        let expires = Instant::now() + ttl;
        Ok(self.with_entries(|e| match e.get_mut(key) {
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
