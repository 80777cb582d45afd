//! Confirming committed orders' reservations in the background, in batches. The order
//! stands once it is committed, whatever the store hears after, so its tablet is answered
//! without waiting for the Confirm step; orders committed meanwhile are confirmed together
//! (ConfirmStocks: one call and one statement for many). A reservation whose confirmation
//! is lost (the store unreachable, this process stopping) is confirmed by the store's
//! reconciler, which finds the order committed.

use pos_trade_storage::OrderId;
use tokio::sync::mpsc;

use crate::stock::StoreStock;

/// Orders waiting to be confirmed at most; past it the reconciler confirms the rest.
const QUEUE: usize = 10_000;
/// Orders confirmed per call at most (the store's own limit).
const BATCH: usize = 1_000;

/// Where committed orders are handed over for confirmation.
#[derive(Clone)]
pub struct Confirmations {
    queue: mpsc::Sender<OrderId>,
}

impl Confirmations {
    /// Starts confirming through `stock`; it runs until every handle is dropped, and
    /// confirms what was handed over before that.
    pub fn start(stock: StoreStock) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(confirm_batches(stock, pending));
        Self { queue }
    }

    /// Queues a committed order's confirmation.
    pub fn confirm(&self, order: OrderId) {
        if let Err(err) = self.queue.try_send(order) {
            let order = match &err {
                mpsc::error::TrySendError::Full(order)
                | mpsc::error::TrySendError::Closed(order) => order,
            };
            tracing::warn!(
                order_id = order.as_str(),
                "too many confirmations waiting; the reconciler will confirm this order"
            );
        }
    }
}

/// Confirms whatever is queued, one call at a time: while a call is out, the orders
/// committed meanwhile gather into the next batch.
async fn confirm_batches(stock: StoreStock, mut pending: mpsc::Receiver<OrderId>) {
    let mut batch = Vec::with_capacity(BATCH);
    while pending.recv_many(&mut batch, BATCH).await > 0 {
        match stock.confirm_many(&batch).await {
            Ok(answer) => {
                for order in &answer.released_order_ids {
                    // Only a broken fence (an order committed after its id was given up)
                    // can lead here: its stock went back although it was sold.
                    tracing::error!(
                        order_id = order.as_str(),
                        "a committed order's reservation was released"
                    );
                }
                for order in &answer.unknown_order_ids {
                    tracing::error!(
                        order_id = order.as_str(),
                        "a committed order has no reservation"
                    );
                }
            }
            Err(status) => tracing::warn!(
                orders = batch.len(),
                %status,
                "could not confirm committed orders' stock; the reconciler will"
            ),
        }
        batch.clear();
    }
}
