//! The event bus on Redis pub/sub, so every replica hears every other. Channels are
//! namespaced by the key prefix. Each subscription has a connection of its own: the
//! stream ends when that connection is lost, which tells its subscriber to read the
//! state again and subscribe anew.

use async_trait::async_trait;
use redis::{AsyncCommands, aio::ConnectionManager};
use tokio_stream::StreamExt;

use super::{Event, EventBus, EventError, Events};

pub struct RedisBus {
    client: redis::Client,
    publisher: ConnectionManager,
    prefix: String,
}

impl RedisBus {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, EventError> {
        let client = redis::Client::open(url).map_err(EventError::Unavailable)?;
        let publisher = ConnectionManager::new(client.clone())
            .await
            .map_err(EventError::Unavailable)?;
        Ok(Self {
            client,
            publisher,
            prefix: prefix.to_string(),
        })
    }

    fn channel(&self, topic: &str) -> String {
        format!("{}:events:{topic}", self.prefix)
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), EventError> {
        let mut publisher = self.publisher.clone();
        let _listeners: i64 = publisher
            .publish(self.channel(topic), payload)
            .await
            .map_err(EventError::Unavailable)?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Events, EventError> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(EventError::Unavailable)?;
        pubsub
            .subscribe(self.channel(topic))
            .await
            .map_err(EventError::Unavailable)?;
        Ok(Box::pin(pubsub.into_on_message().map(|message| {
            Event::Published(message.get_payload_bytes().to_vec())
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the Redis of `POS_TEST_REDIS_URL` (default localhost), on channels under
    /// this run's prefix.
    #[tokio::test]
    async fn redis_bus_honours_the_contract() {
        let url = std::env::var("POS_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
        let run = std::env::var("POS_TEST_RUN_ID").unwrap_or_else(|_| "pos_t_local".to_string());
        let prefix = format!("{run}:{}", uuid::Uuid::new_v4());
        let bus = RedisBus::connect(&url, &prefix)
            .await
            .expect("Redis must be reachable for the test suite (see README)");
        super::super::contract::check(&bus).await;
        // Two buses (two replicas) on one Redis hear each other.
        let other = RedisBus::connect(&url, &prefix).await.expect("connect");
        let mut events = other.subscribe("bill:9").await.expect("subscribe");
        bus.publish("bill:9", b"from the other replica")
            .await
            .expect("publish");
        let heard = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
            .await
            .expect("within 5 s");
        assert_eq!(
            heard,
            Some(Event::Published(b"from the other replica".to_vec()))
        );
    }
}
