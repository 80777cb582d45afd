//! What the trade service keeps — tables' bills (trades), the orders on them with each
//! line as it was ordered, and the payment that closes a bill — as one trait,
//! [`TradeStorage`], in the service's own terms. Each database engine implements it in
//! its own crate (`pos-trade-postgres`, `pos-trade-sqlite`), and one contract test
//! suite runs against both.
//!
//! Promises every implementation keeps:
//! - every method is atomic: it changes everything it says or nothing;
//! - a device has at most one open bill, and the database enforces it;
//! - committing an order is idempotent on its (device, key) and on its order id, and
//!   paying on its (store, key): a retry is answered with what was done, a reuse of the
//!   key for another request is refused;
//! - an order lands on an open bill before it is paid, or on a new bill: never on a paid
//!   one; a bill is paid at most once, for exactly the sum of its orders;
//! - an order id given up by [`TradeStorage::settle_order`] is never committed;
//! - money is checked i64: a bill that would overflow is refused, never wrapped;
//! - instants are read after the locks are taken, so they follow commit order;
//! - a stored value this build does not know is an error, never a default.

pub mod fee;
pub mod model;
pub mod sales;
pub mod stored;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pos_common::{
    domain::{DeviceId, StoreId},
    storage::StorageError,
};

pub use fee::card_fee;
pub use model::{
    Bill, CardCompany, Category, Committed, IdempotencyKey, MAX_BILL_LINES, NewOrder, NewPayment,
    Order, OrderId, OrderLine, Paid, Payment, PaymentCursor, PaymentMethod, PaymentPage,
    SnapshotLine, Trade, TradeId, TradeStatus,
};

pub type StorageResult<T> = Result<T, StorageError>;

/// The trade service's storage.
#[async_trait]
pub trait TradeStorage: Send + Sync + 'static {
    /// Commits an order in one transaction: answers a retry (same device and key, or
    /// same order id) with what it committed, opens the device's bill when it has none
    /// (racing openers settle on the one the database lets in), records the order and its
    /// lines and adds its total to the bill.
    async fn commit_order(&self, order: &NewOrder) -> StorageResult<Committed>;

    /// Commits many orders, answering for each what [`Self::commit_order`] would have,
    /// called for each in turn: each order is atomic on its own (one order's failure
    /// changes nothing of another's), and orders of one device are added to its bill in
    /// the slice's order. An engine may commit them together (fewer statements and commits
    /// per order); this default commits them one by one.
    async fn commit_orders(&self, orders: &[NewOrder]) -> Vec<StorageResult<Committed>> {
        let mut outcomes = Vec::with_capacity(orders.len());
        for order in orders {
            outcomes.push(self.commit_order(order).await);
        }
        outcomes
    }

    /// Whether the order was committed. When it was not, it never will be: the id is
    /// given up, and a commit of it still in flight or arriving later is
    /// [`Committed::Abandoned`]. The stock reconciler asks this before it gives a
    /// reservation's stock back, so an order never stands without its stock.
    async fn settle_order(&self, order: &OrderId) -> StorageResult<bool>;

    /// The device's open bill with its orders.
    async fn open_trade(&self, store: StoreId, device: DeviceId) -> StorageResult<Option<Bill>>;

    /// Every open bill of the store with its orders, by device id, read in one statement.
    async fn open_trades(&self, store: StoreId) -> StorageResult<Vec<Bill>>;

    /// Every open bill of the store without its orders (total, status, when opened), by
    /// device id: the overview, small however much the tables have ordered.
    async fn open_trade_heads(&self, store: StoreId) -> StorageResult<Vec<Trade>>;

    /// A bill of the store, open or paid, with its orders.
    async fn trade(&self, store: StoreId, trade: TradeId) -> StorageResult<Option<Bill>>;

    /// Pays the device's open bill in one transaction: answers a retry (same store and
    /// key) with its payment, holds the bill so no order or other payment slips in,
    /// checks the expected amount, records the payment (its card fee computed here) and
    /// marks the bill paid.
    async fn pay(&self, payment: &NewPayment) -> StorageResult<Paid>;

    /// The payment of a bill of the store, when it was paid.
    async fn trade_payment(&self, store: StoreId, trade: TradeId)
    -> StorageResult<Option<Payment>>;

    /// A page of the store's payments made in `[from, to)`, newest first.
    async fn payments(
        &self,
        store: StoreId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PaymentPage,
    ) -> StorageResult<Vec<Payment>>;
}
