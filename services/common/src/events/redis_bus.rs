//! The event bus on Redis pub/sub, so every replica hears every other. Channels are
//! namespaced by the key prefix.
//!
//! A replica has one subscriber connection however many watchers it serves: a tablet
//! per table and a counter screen per store would otherwise cost Redis a connection
//! each. A topic is subscribed when its first local subscriber comes and unsubscribed when
//! its last one goes; subscribing and unsubscribing take turns under one lock, so a
//! topic that is left and joined again at once is never left unsubscribed. When the
//! connection is lost every subscription's stream ends, which tells its subscriber to
//! read the state again and subscribe anew (on a new connection).

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use async_trait::async_trait;
use redis::{
    AsyncCommands,
    aio::{ConnectionManager, PubSubSink, PubSubStream},
};
use tokio::{sync::broadcast, task::JoinHandle};
use tokio_stream::{
    Stream, StreamExt,
    wrappers::{BroadcastStream, errors::BroadcastStreamRecvError},
};

use super::{Event, EventBus, EventError, Events};

/// Events a subscriber may be behind before it is told it missed some.
const BACKLOG: usize = 256;

/// How long connecting or subscribing may take: a Redis that does not answer must not
/// hold every new watch (they queue behind the hub's lock).
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// The local subscribers of each channel one connection listens to.
type Topics = Arc<Mutex<Channels>>;

#[derive(Default)]
struct Channels {
    /// Set once the connection is lost or given up: nothing joins it any more.
    closed: bool,
    senders: HashMap<String, broadcast::Sender<Vec<u8>>>,
}

impl Channels {
    /// Ends every subscription of the connection: their senders go, so their streams end.
    fn close(&mut self) {
        self.closed = true;
        self.senders.clear();
    }
}

fn locked(topics: &Topics) -> std::sync::MutexGuard<'_, Channels> {
    // Every change is one insert, removal or close: a panic cannot tear the map.
    topics.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct RedisBus {
    client: redis::Client,
    publisher: ConnectionManager,
    prefix: String,
    /// The shared subscriber connection, made when first needed and again after it is
    /// lost. The lock orders every SUBSCRIBE and UNSUBSCRIBE on it.
    hub: Arc<tokio::sync::Mutex<Option<Hub>>>,
}

/// One subscriber connection and the task that hands its messages to local subscribers.
struct Hub {
    sink: PubSubSink,
    topics: Topics,
    reader: JoinHandle<()>,
}

impl Drop for Hub {
    /// A hub given up (its connection lost, or a SUBSCRIBE on it failed) ends every
    /// subscription on it, so none waits for events that can no longer come.
    fn drop(&mut self) {
        self.reader.abort();
        locked(&self.topics).close();
    }
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
            hub: Arc::default(),
        })
    }

    fn channel(&self, topic: &str) -> String {
        format!("{}:events:{topic}", self.prefix)
    }

    async fn connect_hub(&self) -> Result<Hub, EventError> {
        let (sink, stream) = self
            .client
            .get_async_pubsub()
            .await
            .map_err(EventError::Unavailable)?
            .split();
        let topics = Topics::default();
        let reader = tokio::spawn(deliver(stream, topics.clone()));
        Ok(Hub {
            sink,
            topics,
            reader,
        })
    }
}

/// Hands each message to the local subscribers of its channel, until the connection is
/// lost; then ends every subscription.
async fn deliver(mut stream: PubSubStream, channels: Topics) {
    while let Some(message) = stream.next().await {
        if let Some(sender) = locked(&channels).senders.get(message.get_channel_name()) {
            // No receiver left: the last one's leaving unsubscribes it.
            let _ = sender.send(message.get_payload_bytes().to_vec());
        }
    }
    locked(&channels).close();
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

    async fn publish_all(&self, messages: &[(String, Vec<u8>)]) -> Result<(), EventError> {
        let mut pipeline = redis::pipe();
        for (topic, payload) in messages {
            pipeline.publish(self.channel(topic), payload).ignore();
        }
        let mut publisher = self.publisher.clone();
        pipeline
            .query_async::<()>(&mut publisher)
            .await
            .map_err(EventError::Unavailable)
    }

    async fn subscribe(&self, topic: &str) -> Result<Events, EventError> {
        let channel = self.channel(topic);
        let mut hub = self.hub.lock().await;
        if hub.as_ref().is_some_and(|hub| locked(&hub.topics).closed) {
            *hub = None; // Its connection was lost.
        }
        let current = match &mut *hub {
            Some(current) => current,
            none => {
                let connected = tokio::time::timeout(REDIS_TIMEOUT, self.connect_hub())
                    .await
                    .map_err(|_| EventError::TimedOut)??;
                none.insert(connected)
            }
        };
        let joined = locked(&current.topics)
            .senders
            .get(&channel)
            .map(|s| s.subscribe());
        let receiver = match joined {
            Some(receiver) => receiver,
            None => {
                let subscribed =
                    tokio::time::timeout(REDIS_TIMEOUT, current.sink.subscribe(&channel)).await;
                let failed = match subscribed {
                    Ok(Ok(())) => None,
                    Ok(Err(err)) => Some(EventError::Unavailable(err)),
                    Err(_) => Some(EventError::TimedOut),
                };
                if let Some(err) = failed {
                    // The connection is likely gone: give it up (which ends every
                    // subscription on it); the next subscriber makes a new one.
                    *hub = None;
                    return Err(err);
                }
                let (sender, receiver) = broadcast::channel(BACKLOG);
                let mut channels = locked(&current.topics);
                if channels.closed {
                    // Lost while subscribing: the caller reads afresh and tries again.
                    return Err(EventError::Ended);
                }
                channels.senders.insert(channel.clone(), sender);
                receiver
            }
        };
        let leave = Leave {
            hub: self.hub.clone(),
            topics: current.topics.clone(),
            channel,
        };
        let events = BroadcastStream::new(receiver).map(|received| match received {
            Ok(payload) => Event::Published(payload),
            Err(BroadcastStreamRecvError::Lagged(_)) => Event::Missed,
        });
        Ok(Box::pin(Subscription {
            events: Box::pin(events),
            _leave: leave,
        }))
    }
}

/// A subscriber's events; dropping it leaves the topic.
struct Subscription {
    // Declared first, so its receiver is gone before `_leave` counts the rest.
    events: Events,
    _leave: Leave,
}

impl Stream for Subscription {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.events.as_mut().poll_next(cx)
    }
}

/// Unsubscribes a channel when its last local subscriber is gone.
struct Leave {
    hub: Arc<tokio::sync::Mutex<Option<Hub>>>,
    /// Which connection the subscription was on: a later one is none of its business.
    topics: Topics,
    channel: String,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // The process is ending; so is the connection.
        };
        let (hub, on, channel) = (
            self.hub.clone(),
            self.topics.clone(),
            std::mem::take(&mut self.channel),
        );
        runtime.spawn(async move {
            let mut hub = hub.lock().await;
            let Some(current) = hub.as_mut().filter(|h| Arc::ptr_eq(&h.topics, &on)) else {
                return;
            };
            // Someone may have joined since; checked under the lock subscribers take.
            let unused = {
                let mut channels = locked(&current.topics);
                let unused = channels
                    .senders
                    .get(&channel)
                    .is_some_and(|sender| sender.receiver_count() == 0);
                if unused {
                    channels.senders.remove(&channel);
                }
                unused
            };
            if unused && let Err(err) = current.sink.unsubscribe(&channel).await {
                tracing::debug!(%channel, error = %err, "could not unsubscribe; the connection is likely gone");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn redis_url() -> String {
        std::env::var("POS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
    }

    /// Channels under this run's prefix, so parallel runs never hear each other.
    fn prefix() -> String {
        let run = std::env::var("POS_TEST_RUN_ID").unwrap_or_else(|_| "pos_t_local".to_string());
        format!("{run}:{}", uuid::Uuid::new_v4())
    }

    async fn subscribers(bus: &RedisBus, topic: &str) -> i64 {
        let mut connection = bus.publisher.clone();
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(bus.channel(topic))
            .query_async(&mut connection)
            .await
            .expect("PUBSUB NUMSUB");
        counts.first().map_or(0, |(_, count)| *count)
    }

    /// Against the Redis of `POS_TEST_REDIS_URL` (default localhost).
    #[tokio::test]
    async fn redis_bus_honours_the_contract() {
        let prefix = prefix();
        let bus = RedisBus::connect(&redis_url(), &prefix)
            .await
            .expect("Redis must be reachable for the test suite (see README)");
        super::super::contract::check(&bus).await;
        // Two buses (two replicas) on one Redis hear each other.
        let other = RedisBus::connect(&redis_url(), &prefix)
            .await
            .expect("connect");
        let mut events = other.subscribe("bill:9").await.expect("subscribe");
        bus.publish("bill:9", b"from the other replica")
            .await
            .expect("publish");
        let heard = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("within 5 s");
        assert_eq!(
            heard,
            Some(Event::Published(b"from the other replica".to_vec()))
        );
    }

    #[tokio::test]
    async fn subscribers_of_a_replica_share_one_redis_subscription() {
        let bus = RedisBus::connect(&redis_url(), &prefix())
            .await
            .expect("Redis must be reachable for the test suite (see README)");
        let first = bus.subscribe("bill:1").await.expect("subscribe");
        let mut second = bus.subscribe("bill:1").await.expect("subscribe");
        let third = bus.subscribe("store:1").await.expect("subscribe");
        assert_eq!(subscribers(&bus, "bill:1").await, 1, "one connection");
        assert_eq!(subscribers(&bus, "store:1").await, 1);
        // The topic stays while anyone listens...
        drop(first);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(subscribers(&bus, "bill:1").await, 1);
        bus.publish("bill:1", b"still here").await.expect("publish");
        let heard = tokio::time::timeout(Duration::from_secs(5), second.next())
            .await
            .expect("within 5 s");
        assert_eq!(heard, Some(Event::Published(b"still here".to_vec())));
        // ...and goes with its last subscriber; others stay.
        drop(second);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while subscribers(&bus, "bill:1").await != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "unsubscribed in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(subscribers(&bus, "store:1").await, 1);
        // Left and joined again: heard again.
        let mut again = bus.subscribe("bill:1").await.expect("subscribe");
        bus.publish("bill:1", b"back").await.expect("publish");
        let heard = tokio::time::timeout(Duration::from_secs(5), again.next())
            .await
            .expect("within 5 s");
        assert_eq!(heard, Some(Event::Published(b"back".to_vec())));
        drop(third);
    }
}
