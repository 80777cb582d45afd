//! Change notifications between the replicas of a role: "this bill changed", published by
//! whichever replica changed it and heard by every replica with a watcher of it. Redis
//! pub/sub in production; an in-process broadcast when there is no Redis (`pos up`, one
//! process).
//!
//! Delivery is at most once and only to subscribers present when an event is published.
//! A subscriber that falls behind gets [`Event::Missed`] instead of what it missed, and
//! one whose connection is lost sees its stream end: either way it must read the state
//! again, which is what the events only ever prompt.

mod local;
mod redis_bus;

use std::{pin::Pin, sync::Arc};

use async_trait::async_trait;
use tokio_stream::Stream;

pub use local::LocalBus;
pub use redis_bus::RedisBus;

/// One notification on a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// What was published.
    Published(Vec<u8>),
    /// Events were dropped because this subscriber fell behind.
    Missed,
}

/// The events of one subscription, from when it was made.
pub type Events = Pin<Box<dyn Stream<Item = Event> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event bus is unreachable")]
    Unavailable(#[source] redis::RedisError),
    #[error("the event bus did not answer in time")]
    TimedOut,
    /// A subscription's stream ended: its connection to the bus was lost.
    #[error("the subscription to the event bus was lost")]
    Ended,
}

impl From<EventError> for crate::ApiError {
    fn from(err: EventError) -> Self {
        crate::ApiError::unavailable("event bus", err)
    }
}

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Tells the current subscribers of `topic`.
    async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), EventError>;
    /// Publishes each `(topic, payload)` in turn; a bus may send them together (one round
    /// trip). Stops at the first failure.
    async fn publish_all(&self, messages: &[(String, Vec<u8>)]) -> Result<(), EventError> {
        for (topic, payload) in messages {
            self.publish(topic, payload).await?;
        }
        Ok(())
    }
    /// Everything published on `topic` from now on.
    async fn subscribe(&self, topic: &str) -> Result<Events, EventError>;
}

pub type SharedEventBus = Arc<dyn EventBus>;

#[cfg(test)]
pub(crate) mod contract {
    //! What every bus must do; run against each.
    use std::time::Duration;

    use tokio_stream::StreamExt;

    use super::*;

    async fn next(events: &mut Events) -> Event {
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event within 5 s")
            .expect("the stream goes on")
    }

    async fn nothing_within(events: &mut Events, wait: Duration) {
        if let Ok(event) = tokio::time::timeout(wait, events.next()).await {
            panic!("unexpected {event:?}");
        }
    }

    pub async fn check(bus: &dyn EventBus) {
        bus.publish("bill:1", b"before anyone listened")
            .await
            .expect("publish");
        let mut first = bus.subscribe("bill:1").await.expect("subscribe");
        let mut second = bus.subscribe("bill:1").await.expect("subscribe");
        let mut other = bus.subscribe("bill:2").await.expect("subscribe");
        for n in 0..3u8 {
            bus.publish("bill:1", &[n]).await.expect("publish");
        }
        for events in [&mut first, &mut second] {
            for n in 0..3u8 {
                assert_eq!(next(events).await, Event::Published(vec![n]));
            }
        }
        nothing_within(&mut other, Duration::from_millis(200)).await;
        bus.publish("bill:2", b"two").await.expect("publish");
        assert_eq!(next(&mut other).await, Event::Published(b"two".to_vec()));
        nothing_within(&mut first, Duration::from_millis(200)).await;
        // A dropped subscriber costs nothing and others go on.
        drop(second);
        bus.publish("bill:1", b"after").await.expect("publish");
        assert_eq!(next(&mut first).await, Event::Published(b"after".to_vec()));
        // Published together, each reaches its topic's subscribers, in order.
        let together = [
            ("bill:1".to_string(), b"x".to_vec()),
            ("bill:2".to_string(), b"y".to_vec()),
            ("bill:1".to_string(), b"z".to_vec()),
        ];
        bus.publish_all(&together).await.expect("publish all");
        assert_eq!(next(&mut first).await, Event::Published(b"x".to_vec()));
        assert_eq!(next(&mut first).await, Event::Published(b"z".to_vec()));
        assert_eq!(next(&mut other).await, Event::Published(b"y".to_vec()));
    }
}
