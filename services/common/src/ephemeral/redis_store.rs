//! Redis-backed ephemeral store, shared by every replica.

use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, aio::ConnectionManager};

use super::{EphemeralError, EphemeralResult, EphemeralStore};

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
}

fn unavailable(err: redis::RedisError) -> EphemeralError {
    EphemeralError::Unavailable(err)
}

fn ttl_millis(ttl: Duration) -> u64 {
    // Redis refuses a zero expiry; the shortest meaningful one is 1 ms.
    ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64
}

impl RedisStore {
    /// Connects (the manager reconnects on its own after failures). Every key is
    /// written as `<prefix>:<key>`.
    pub async fn connect(url: &str, prefix: &str) -> EphemeralResult<Self> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let connection = ConnectionManager::new(client).await.map_err(unavailable)?;
        Ok(Self {
            connection,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }
}

#[async_trait]
impl EphemeralStore for RedisStore {
    async fn get(&self, key: &str) -> EphemeralResult<Option<String>> {
        let mut conn = self.connection.clone();
        conn.get(self.key(key)).await.map_err(unavailable)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<()> {
        let mut conn = self.connection.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<bool> {
        let mut conn = self.connection.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(reply.is_some())
    }

    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> EphemeralResult<i64> {
        let mut conn = self.connection.clone();
        let key = self.key(key);
        // One atomic round trip; PEXPIRE NX sets the expiry only when the counter is new.
        let (value,): (i64,) = redis::pipe()
            .atomic()
            .incr(&key, by)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_millis(ttl))
            .arg("NX")
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(value)
    }

    async fn delete(&self, key: &str) -> EphemeralResult<bool> {
        let mut conn = self.connection.clone();
        let removed: i64 = conn.del(self.key(key)).await.map_err(unavailable)?;
        Ok(removed > 0)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: &str,
        ttl: Duration,
    ) -> EphemeralResult<bool> {
        // A script runs atomically in Redis: no other client can write between GET and SET.
        let script = redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then \
               redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 \
             else return 0 end",
        );
        let mut conn = self.connection.clone();
        let swapped: i64 = script
            .key(self.key(key))
            .arg(expected)
            .arg(new)
            .arg(ttl_millis(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(swapped == 1)
    }

    async fn exists_any(&self, keys: &[String]) -> EphemeralResult<bool> {
        if keys.is_empty() {
            return Ok(false);
        }
        let mut conn = self.connection.clone();
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        // EXISTS counts every listed key that exists, in one command.
        let found: i64 = conn.exists(keys).await.map_err(unavailable)?;
        Ok(found > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs against the Redis of `POS_TEST_REDIS_URL` (default localhost) under this run's
    /// prefix. Redis keeps its own time, so "time passes" by deleting what would have
    /// expired by then.
    #[tokio::test]
    async fn redis_store_honours_the_contract() {
        let url = std::env::var("POS_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
        let run = std::env::var("POS_TEST_RUN_ID").unwrap_or_else(|_| "pos_t_local".to_string());
        let prefix = format!("{run}:{}", uuid::Uuid::new_v4());
        let store = RedisStore::connect(&url, &prefix)
            .await
            .expect("Redis must be reachable for the test suite (see README)");
        let keys = |conn: ConnectionManager| {
            let pattern = format!("{prefix}:*");
            async move {
                let mut conn = conn;
                let keys: Vec<String> = conn.keys(pattern).await.expect("keys");
                keys
            }
        };
        let short = Duration::from_secs(2);
        let connection = store.connection.clone();
        super::super::contract::check(&store, short, || {
            let mut conn = connection.clone();
            let listing = keys(connection.clone());
            async move {
                for key in listing.await {
                    let left: i64 = conn.pttl(&key).await.expect("pttl");
                    if (0..=3000).contains(&left) {
                        let _: i64 = conn.del(&key).await.expect("del");
                    }
                }
            }
        })
        .await;
        let mut conn = store.connection.clone();
        let left = keys(store.connection.clone()).await;
        if !left.is_empty() {
            let _: i64 = conn.del(left).await.expect("cleanup");
        }
    }
}
