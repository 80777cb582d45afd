//! Telling watchers which bills changed, behind the answer and together: a call that
//! changed a bill hands the announcement over and answers at once; a background task
//! publishes whatever has gathered meanwhile in one go (one round trip to Redis for many
//! orders), each bill's announcement once. The change is committed before it is
//! announced, so an announcement that is lost (the bus down, the queue full, the process
//! stopping) only delays watchers until their next event or periodic re-read.

use std::collections::HashSet;

use pos_common::{
    domain::{DeviceId, StoreId},
    events::SharedEventBus,
};
use pos_trade_storage::TradeId;
use tokio::sync::mpsc;

use crate::watch::{bill_topic, store_topic};

/// Announcements waiting at most; past it they are dropped (with a warning).
const QUEUE: usize = 10_000;
/// Announcements published together at most.
const BATCH: usize = 1_000;

#[derive(Clone)]
pub struct Announcements {
    queue: mpsc::Sender<(String, Vec<u8>)>,
}

impl Announcements {
    /// Starts publishing on `bus`; must be called within the runtime. The task ends
    /// when every handle is dropped, after publishing what was queued.
    pub fn start(bus: SharedEventBus) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(publish_batches(bus, pending));
        Self { queue }
    }

    /// Queues the news that the tablet's bill changed, for the tablet's and its store's
    /// watchers.
    pub fn bill_changed(&self, store: StoreId, device: DeviceId, trade: TradeId) {
        let payload = trade.to_string().into_bytes();
        for topic in [bill_topic(device), store_topic(store)] {
            if self.queue.try_send((topic, payload.clone())).is_err() {
                tracing::warn!(
                    %trade,
                    "too many bill changes waiting to be announced; watchers catch up later"
                );
            }
        }
    }
}

async fn publish_batches(bus: SharedEventBus, mut pending: mpsc::Receiver<(String, Vec<u8>)>) {
    let mut batch = Vec::with_capacity(BATCH);
    while pending.recv_many(&mut batch, BATCH).await > 0 {
        // A bill that changed twice meanwhile is announced once: watchers re-read it.
        let mut seen = HashSet::new();
        batch.retain(|message| seen.insert(message.clone()));
        if let Err(err) = bus.publish_all(&batch).await {
            tracing::warn!(
                announcements = batch.len(),
                error = %err,
                "bills changed but watchers were not told"
            );
        }
        batch.clear();
    }
}
