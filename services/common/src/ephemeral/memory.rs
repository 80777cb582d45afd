//! The ephemeral store in this process's memory, on `moka`'s concurrent cache: its
//! per-key atomic compute gives set-if-absent, creating counters and compare-and-swap,
//! and its per-entry expiry frees memory. Whether an entry is still alive is decided by
//! the injected [`Clock`](crate::clock::Clock), so tests move time instead of sleeping.
//! A counter is an atomic inside its entry, so counting a rate limit on every call is a
//! read of the cache, not a write.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use moka::{Expiry, ops::compute::Op, sync::Cache};

use super::{EphemeralError, EphemeralResult, EphemeralStore};
use crate::clock::SharedClock;

#[derive(Debug, Clone)]
struct Entry {
    value: Value,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
enum Value {
    Text(String),
    Counter(Arc<AtomicI64>),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Text(text) => text.clone(),
            Value::Counter(count) => count.load(Ordering::SeqCst).to_string(),
        }
    }
}

/// Adds `by` to a counter, saturating; returns the new count.
fn add(count: &AtomicI64, by: i64) -> i64 {
    let previous = count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            Some(n.saturating_add(by))
        })
        .unwrap_or_else(|n| n);
    previous.saturating_add(by)
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
        Ok(self.live(self.entries.get(key)).map(|e| e.value.text()))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<()> {
        let entry = Entry {
            value: Value::Text(value.to_string()),
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
                value: Value::Text(value.to_string()),
                expires_at: self.expiry(ttl),
            })
        });
        Ok(inserted)
    }

    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> EphemeralResult<i64> {
        // The counter exists: count in place, the entry and its expiry stay as they are.
        if let Some(Entry {
            value: Value::Counter(count),
            ..
        }) = self.live(self.entries.get(key))
        {
            return Ok(add(&count, by));
        }
        // Create it (or turn a number stored as text into one, as Redis counts any
        // integer string), unless a racing call did first.
        let mut outcome = Ok(by);
        self.entries.entry_by_ref(key).and_compute_with(|current| {
            match self.live(current.map(|e| e.into_value())) {
                Some(Entry {
                    value: Value::Counter(count),
                    ..
                }) => {
                    outcome = Ok(add(&count, by));
                    Op::Nop
                }
                Some(Entry {
                    value: Value::Text(text),
                    expires_at,
                }) => match text.parse::<i64>() {
                    Ok(number) => {
                        let next = number.saturating_add(by);
                        outcome = Ok(next);
                        Op::Put(Entry {
                            value: Value::Counter(Arc::new(AtomicI64::new(next))),
                            expires_at,
                        })
                    }
                    Err(_) => {
                        outcome = Err(EphemeralError::NotACounter {
                            key: key.to_string(),
                        });
                        Op::Nop
                    }
                },
                None => Op::Put(Entry {
                    value: Value::Counter(Arc::new(AtomicI64::new(by))),
                    expires_at: self.expiry(ttl),
                }),
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
                Some(entry) if entry.value.text() == expected => {
                    swapped = true;
                    Op::Put(Entry {
                        value: Value::Text(new.to_string()),
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
