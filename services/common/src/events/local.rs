//! The in-process event bus: a broadcast channel per topic, made by its first subscriber
//! and dropped once nobody listens.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};

use super::{Event, EventBus, EventError, Events};

/// Events a subscriber may be behind before it is told it missed some.
const BACKLOG: usize = 256;

#[derive(Default)]
pub struct LocalBus {
    topics: Mutex<HashMap<String, broadcast::Sender<Vec<u8>>>>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Vec<u8>>>> {
        // Every change to the map is one insert or removal: a panic cannot leave it torn.
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), EventError> {
        let mut topics = self.topics();
        if let Some(sender) = topics.get(topic)
            && sender.send(payload.to_vec()).is_err()
        {
            // Nobody listens any more.
            topics.remove(topic);
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Events, EventError> {
        let receiver = self
            .topics()
            .entry(topic.to_string())
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe();
        Ok(Box::pin(BroadcastStream::new(receiver).map(
            |received| match received {
                Ok(payload) => Event::Published(payload),
                Err(BroadcastStreamRecvError::Lagged(_)) => Event::Missed,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_bus_honours_the_contract() {
        super::super::contract::check(&LocalBus::new()).await;
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told() {
        let bus = LocalBus::new();
        let mut events = bus.subscribe("t").await.expect("subscribe");
        for n in 0..(BACKLOG + 10) {
            bus.publish("t", &n.to_be_bytes()).await.expect("publish");
        }
        assert_eq!(events.next().await, Some(Event::Missed));
        // Topics nobody listens to are forgotten.
        drop(events);
        bus.publish("t", b"x").await.expect("publish");
        assert!(bus.topics().is_empty());
    }
}
