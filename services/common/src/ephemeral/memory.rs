//! The ephemeral store in this process's memory, on `moka`'s concurrent cache: its
//! per-key atomic compute gives set-if-absent, increment and compare-and-swap, and its
//! per-entry expiry frees memory. Whether an entry is still alive is decided by the
//! injected [`Clock`](crate::clock::Clock), so tests move time instead of sleeping.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use moka::{Expiry, ops::compute::Op, sync::Cache};

use super::{EphemeralError, EphemeralResult, EphemeralStore};
use crate::clock::SharedClock;

#[derive(Debug, Clone)]
struct Entry {
    value: String,
    expires_at: DateTime<Utc>,
}

/// Frees an entry's memory once its clock time is up.
struct UntilExpiry(SharedClock);

impl UntilExpiry {
    fn remaining(&self, entry: &Entry) -> Option<Duration> {
        Some(
            (entry.expires_at - self.0.now())
                .to_std()
                .unwrap_or(Duration::ZERO),
        )
    }
}

impl Expiry<String, Entry> for UntilExpiry {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        self.remaining(entry)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.remaining(entry)
    }
}

pub struct MemoryStore {
    entries: Cache<String, Entry>,
    clock: SharedClock,
}

impl MemoryStore {
    pub fn new(clock: SharedClock) -> Self {
        let entries = Cache::builder()
            .expire_after(UntilExpiry(clock.clone()))
            .build();
        Self { entries, clock }
    }

    fn expiry(&self, ttl: Duration) -> DateTime<Utc> {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        self.clock
            .now()
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The entry at `key` if it is still alive.
    fn live(&self, entry: Option<Entry>) -> Option<Entry> {
        entry.filter(|e| e.expires_at > self.clock.now())
    }
}

#[async_trait]
impl EphemeralStore for MemoryStore {
    async fn get(&self, key: &str) -> EphemeralResult<Option<String>> {
        Ok(self.live(self.entries.get(key)).map(|e| e.value))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<()> {
        let entry = Entry {
            value: value.to_string(),
            expires_at: self.expiry(ttl),
        };
        self.entries.insert(key.to_string(), entry);
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<bool> {
        let mut inserted = false;
        self.entries.entry_by_ref(key).and_compute_with(|current| {
            if self.live(current.map(|e| e.into_value())).is_some() {
                return Op::Nop;
            }
            inserted = true;
            Op::Put(Entry {
                value: value.to_string(),
                expires_at: self.expiry(ttl),
            })
        });
        Ok(inserted)
    }

    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> EphemeralResult<i64> {
        let mut outcome = Ok(0);
        self.entries.entry_by_ref(key).and_compute_with(|current| {
            match self.live(current.map(|e| e.into_value())) {
                Some(entry) => match entry.value.parse::<i64>() {
                    Ok(count) => {
                        let next = count.saturating_add(by);
                        outcome = Ok(next);
                        Op::Put(Entry {
                            value: next.to_string(),
                            expires_at: entry.expires_at,
                        })
                    }
                    Err(_) => {
                        outcome = Err(EphemeralError::NotACounter {
                            key: key.to_string(),
                        });
                        Op::Nop
                    }
                },
                None => {
                    outcome = Ok(by);
                    Op::Put(Entry {
                        value: by.to_string(),
                        expires_at: self.expiry(ttl),
                    })
                }
            }
        });
        outcome
    }

    async fn delete(&self, key: &str) -> EphemeralResult<bool> {
        Ok(self.live(self.entries.remove(key)).is_some())
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: &str,
        ttl: Duration,
    ) -> EphemeralResult<bool> {
        let mut swapped = false;
        self.entries.entry_by_ref(key).and_compute_with(|current| {
            match self.live(current.map(|e| e.into_value())) {
                Some(entry) if entry.value == expected => {
                    swapped = true;
                    Op::Put(Entry {
                        value: new.to_string(),
                        expires_at: self.expiry(ttl),
                    })
                }
                _ => Op::Nop,
            }
        });
        Ok(swapped)
    }

    async fn exists_any(&self, keys: &[String]) -> EphemeralResult<bool> {
        Ok(keys
            .iter()
            .any(|key| self.live(self.entries.get(key)).is_some()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn memory_store_honours_the_contract() {
        let clock = ManualClock::new(Utc::now());
        let store = MemoryStore::new(clock.clone());
        let short = Duration::from_secs(2);
        super::super::contract::check(&store, short, || {
            let clock = Arc::clone(&clock);
            async move { clock.advance(Duration::from_secs(3)) }
        })
        .await;
    }
}
