//! The trade service's storage on PostgreSQL (production): compile-time checked queries
//! (`sqlx::query!`, offline data in `.sqlx/`), `timestamptz` instants, enum types, and
//! set-based statements — an order's lines are recorded, and a store's open bills read,
//! by a constant number of statements however many rows they touch.
//!
//! Locking: committing an order and paying both lock the device's open bill (`FOR
//! UPDATE`) first, so each sees the other whole or not at all; the partial unique index
//! on open bills settles racing first orders. A batch of orders commits together in one
//! transaction that takes the same locks in one global order (`batch`).
//!
//! Enum columns are read as text and decoded by the domain's own names, so a value this
//! build does not know (one added by a newer migration) is an error, never a default.

mod batch;
mod orders;
mod payments;
mod rows;
mod sales;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use pos_common::{
    clock::SharedClock,
    domain::{DeviceId, StoreId},
    storage::StorageError,
};
use pos_trade_storage::{
    Bill, Committed, NewOrder, NewPayment, OrderId, Paid, Payment, PaymentPage, StorageResult,
    Trade, TradeId, TradeStorage,
    stored::{self, StoredPayment},
};
use sqlx::{PgPool, migrate::Migrator};

use rows::{BillRow, TradeRow};
pub use sales::PgSalesSource;

/// How many times a transaction that lost a race at a unique index is tried again. One
/// retry settles any single race (the winner has committed); the rest absorb bursts.
const RACE_RETRIES: usize = 8;

/// This engine's migrations (tracked per service, in `trade_migrations`).
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

#[derive(Clone)]
pub struct PgTradeStorage {
    pool: PgPool,
    clock: SharedClock,
}

impl PgTradeStorage {
    pub fn new(pool: PgPool, clock: SharedClock) -> Self {
        Self { pool, clock }
    }

    /// Now, at the microseconds `timestamptz` keeps, so what a call returns equals what
    /// a later read returns.
    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    /// Bills of the store — only open ones unless `include_paid` — optionally only the
    /// device's or only one trade, with their orders, in one statement (one snapshot).
    async fn bills(
        &self,
        store: StoreId,
        device: Option<DeviceId>,
        trade: Option<TradeId>,
        include_paid: bool,
    ) -> StorageResult<Vec<Bill>> {
        let rows = sqlx::query_as!(
            BillRow,
            r#"SELECT t.id, t.store_id, t.device_id, t.amount, t.status::text AS "status!",
                      t.opened_at, t.paid_at,
                      o.id AS "order_id?", o.amount AS "order_amount?",
                      o.created_at AS "order_created_at?", l.product_id AS "product_id?",
                      l.product_name AS "product_name?", l.category::text AS "category?",
                      l.unit_price AS "unit_price?", l.count AS "count?",
                      l.amount AS "line_amount?"
               FROM trades t
               LEFT JOIN trade_orders o ON o.trade_id = t.id
               LEFT JOIN trade_order_lines l ON l.order_id = o.id
               WHERE t.store_id = $1
                 AND ($2::bigint IS NULL OR t.device_id = $2)
                 AND ($3::bigint IS NULL OR t.id = $3)
                 AND ($4 OR t.status = 'OPEN')
               ORDER BY t.device_id, t.id, o.created_at, o.id, l.product_id"#,
            store.get(),
            device.map(DeviceId::get),
            trade.map(TradeId::get),
            include_paid,
        )
        .fetch_all(&self.pool)
        .await?;
        stored::bills(rows.into_iter().map(BillRow::stored))
    }
}

/// A unique index refused the row: a concurrent transaction won a race.
fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A bigint overflowed (SQLSTATE 22003): an amount past the largest kept.
fn is_numeric_overflow(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("22003"))
}

fn races_lost() -> StorageError {
    StorageError::Inconsistent("a write kept losing races at a unique index")
}

#[async_trait]
impl TradeStorage for PgTradeStorage {
    async fn commit_order(&self, order: &NewOrder) -> StorageResult<Committed> {
        for _ in 0..=RACE_RETRIES {
            if let Some(committed) = orders::commit_once(&self.pool, || self.now(), order).await? {
                return Ok(committed);
            }
        }
        Err(races_lost())
    }

    /// The batch's plain orders in one transaction (see `batch`), then the rest one by
    /// one, in the slice's order.
    async fn commit_orders(&self, orders: &[NewOrder]) -> Vec<StorageResult<Committed>> {
        let together = batch::commit_together(&self.pool, || self.now(), orders).await;
        let mut answers = Vec::with_capacity(orders.len());
        for (order, answered) in orders.iter().zip(together) {
            answers.push(match answered {
                Some(committed) => Ok(committed),
                None => self.commit_order(order).await,
            });
        }
        answers
    }

    async fn settle_order(&self, order: &OrderId) -> StorageResult<bool> {
        orders::settle(&self.pool, self.now(), order).await
    }

    async fn open_trade(&self, store: StoreId, device: DeviceId) -> StorageResult<Option<Bill>> {
        Ok(self
            .bills(store, Some(device), None, false)
            .await?
            .into_iter()
            .next())
    }

    async fn open_trades(&self, store: StoreId) -> StorageResult<Vec<Bill>> {
        self.bills(store, None, None, false).await
    }

    async fn open_trade_heads(&self, store: StoreId) -> StorageResult<Vec<Trade>> {
        let rows = sqlx::query_as!(
            TradeRow,
            r#"SELECT id, store_id, device_id, amount, status::text AS "status!", opened_at,
                      paid_at
               FROM trades
               WHERE store_id = $1 AND status = 'OPEN'
               ORDER BY device_id"#,
            store.get(),
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TradeRow::decode).collect()
    }

    async fn trade(&self, store: StoreId, trade: TradeId) -> StorageResult<Option<Bill>> {
        Ok(self
            .bills(store, None, Some(trade), true)
            .await?
            .into_iter()
            .next())
    }

    async fn pay(&self, payment: &NewPayment) -> StorageResult<Paid> {
        for _ in 0..=RACE_RETRIES {
            if let Some(paid) = payments::pay_once(&self.pool, || self.now(), payment).await? {
                return Ok(paid);
            }
        }
        Err(races_lost())
    }

    async fn trade_payment(
        &self,
        store: StoreId,
        trade: TradeId,
    ) -> StorageResult<Option<Payment>> {
        let row = sqlx::query_as!(
            StoredPayment,
            r#"SELECT id, trade_id, store_id, device_id, method::text AS "method!",
                      card_company::text AS card_company, amount, card_fee, fingerprint,
                      paid_at
               FROM trade_payments
               WHERE store_id = $1 AND trade_id = $2"#,
            store.get(),
            trade.get(),
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(StoredPayment::decode).transpose()
    }

    async fn payments(
        &self,
        store: StoreId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PaymentPage,
    ) -> StorageResult<Vec<Payment>> {
        let rows = sqlx::query_as!(
            StoredPayment,
            r#"SELECT id, trade_id, store_id, device_id, method::text AS "method!",
                      card_company::text AS card_company, amount, card_fee, fingerprint,
                      paid_at
               FROM trade_payments
               WHERE store_id = $1 AND paid_at >= $2 AND paid_at < $3
                 AND ($4::timestamptz IS NULL OR (paid_at, id) < ($4, $5::bigint))
               ORDER BY paid_at DESC, id DESC
               LIMIT $6"#,
            store.get(),
            from,
            to,
            page.after.map(|cursor| cursor.paid_at),
            page.after.map(|cursor| cursor.id),
            page.limit,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StoredPayment::decode).collect()
    }
}
