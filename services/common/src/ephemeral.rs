//! Short-lived shared state (token deny-lists, refresh families, rate-limit counters,
//! login state): Redis in production so every replica sees the same state, and an
//! in-memory map when no Redis is configured (`pos up`, one process).

mod memory;
mod redis_store;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

pub use memory::MemoryStore;
pub use redis_store::RedisStore;

#[derive(Debug, thiserror::Error)]
pub enum EphemeralError {
    #[error("the ephemeral store is unreachable")]
    Unavailable(#[source] redis::RedisError),
    #[error("{key} does not hold a counter")]
    NotACounter { key: String },
}

impl From<EphemeralError> for crate::ApiError {
    fn from(err: EphemeralError) -> Self {
        match err {
            EphemeralError::Unavailable(_) => crate::ApiError::unavailable("ephemeral store", err),
            EphemeralError::NotACounter { .. } => crate::ApiError::internal(err),
        }
    }
}

impl From<EphemeralError> for tonic::Status {
    fn from(err: EphemeralError) -> Self {
        crate::ApiError::from(err).into()
    }
}

pub type EphemeralResult<T> = Result<T, EphemeralError>;

/// Key-value state that expires. Keys are namespaced by the implementation's prefix.
#[async_trait]
pub trait EphemeralStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> EphemeralResult<Option<String>>;
    /// Sets `key` to `value`, expiring after `ttl`.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<()>;
    /// Sets `key` only if it does not exist; true when this call set it.
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<bool>;
    /// Adds `by` to the counter at `key` (0 when absent) and returns the new value. The
    /// counter expires `ttl` after it was created; later increments do not extend it.
    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> EphemeralResult<i64>;
    /// Removes `key`; true when it existed.
    async fn delete(&self, key: &str) -> EphemeralResult<bool>;
    /// Sets `key` to `new` (expiring after `ttl`) only if it now holds `expected`; true
    /// when it did. Lets two racing writers agree on exactly one winner.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: &str,
        ttl: Duration,
    ) -> EphemeralResult<bool>;
    /// Whether any of `keys` exists, in one round trip however many keys are asked.
    async fn exists_any(&self, keys: &[String]) -> EphemeralResult<bool>;
}

pub type SharedEphemeral = Arc<dyn EphemeralStore>;

/// Redis when a URL is given, else in memory on the system clock.
pub async fn connect(
    redis_url: Option<&str>,
    key_prefix: &str,
) -> EphemeralResult<SharedEphemeral> {
    Ok(match redis_url {
        Some(url) => Arc::new(RedisStore::connect(url, key_prefix).await?),
        None => Arc::new(MemoryStore::new(crate::clock::system())),
    })
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every implementation must show; run against each. `expire` makes
    //! `ttl` pass: a manual clock moves for the in-memory store, real time for Redis.
    use std::future::Future;

    use super::*;

    pub async fn check<F, Fut>(store: &dyn EphemeralStore, ttl_short: Duration, expire: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()>,
    {
        let ttl = Duration::from_secs(600);
        assert_eq!(store.get("missing").await.expect("get"), None);

        store.set("k", "v1", ttl).await.expect("set");
        assert_eq!(store.get("k").await.expect("get").as_deref(), Some("v1"));

        assert!(!store.set_if_absent("k", "v2", ttl).await.expect("nx"));
        assert_eq!(store.get("k").await.expect("get").as_deref(), Some("v1"));
        assert!(store.set_if_absent("fresh", "x", ttl).await.expect("nx"));

        assert_eq!(store.increment("n", 1, ttl).await.expect("incr"), 1);
        assert_eq!(store.increment("n", 5, ttl).await.expect("incr"), 6);
        assert_eq!(store.get("n").await.expect("get").as_deref(), Some("6"));
        // A number stored as text counts on; other text is not a counter.
        store.set("text-n", "41", ttl).await.expect("set");
        assert_eq!(store.increment("text-n", 1, ttl).await.expect("incr"), 42);
        assert!(store.increment("k", 1, ttl).await.is_err());
        assert_eq!(store.get("k").await.expect("get").as_deref(), Some("v1"));

        assert!(
            store
                .exists_any(&["none-1".into(), "k".into()])
                .await
                .expect("exists")
        );
        assert!(
            !store
                .exists_any(&["none-1".into(), "none-2".into()])
                .await
                .expect("exists")
        );
        assert!(store.delete("k").await.expect("del"));
        assert!(!store.delete("k").await.expect("del"));
        assert_eq!(store.get("k").await.expect("get"), None);

        store.set("brief", "x", ttl_short).await.expect("set");
        assert_eq!(
            store
                .increment("brief-n", 2, ttl_short)
                .await
                .expect("incr"),
            2
        );
        // A later increment does not extend the counter's life.
        assert_eq!(store.increment("brief-n", 1, ttl).await.expect("incr"), 3);
        expire().await;
        assert_eq!(store.get("brief").await.expect("get"), None);
        assert!(!store.exists_any(&["brief".into()]).await.expect("exists"));
        assert_eq!(
            store
                .increment("brief-n", 1, ttl_short)
                .await
                .expect("incr"),
            1
        );
        assert!(store.set_if_absent("brief", "y", ttl).await.expect("nx"));
        assert!(!store.delete("expired-never-set").await.expect("del"));

        store.set("cas", "a", ttl).await.expect("set");
        assert!(
            !store
                .compare_and_swap("cas", "b", "c", ttl)
                .await
                .expect("cas")
        );
        assert!(
            store
                .compare_and_swap("cas", "a", "b", ttl)
                .await
                .expect("cas")
        );
        assert_eq!(store.get("cas").await.expect("get").as_deref(), Some("b"));
        assert!(
            !store
                .compare_and_swap("cas-missing", "a", "b", ttl)
                .await
                .expect("cas")
        );
        assert_eq!(store.get("cas-missing").await.expect("get"), None);
        let swaps = (0..16).map(|i| {
            let new = format!("n{i}");
            async move {
                store
                    .compare_and_swap("cas", "b", &new, ttl)
                    .await
                    .expect("cas")
            }
        });
        let swapped = futures::future::join_all(swaps).await;
        assert_eq!(swapped.iter().filter(|won| **won).count(), 1);

        // Concurrent set-if-absent: exactly one winner.
        let attempts = (0..16).map(|i| {
            let value = i.to_string();
            async move { store.set_if_absent("race", &value, ttl).await.expect("nx") }
        });
        let results = futures::future::join_all(attempts).await;
        assert_eq!(results.iter().filter(|won| **won).count(), 1);
    }
}
