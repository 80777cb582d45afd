//! The trade service's storage on SQLite (`pos up`): compile-time checked queries
//! (`sqlx::query!`, offline data in `.sqlx/`) over SQLite's own idioms — instants as UTC
//! Unix milliseconds (SQLite has no timestamp type), closed sets as checked text in
//! STRICT tables, and an order's lines passed as one JSON array (`json_each`).
//!
//! SQLite runs one writer at a time: committing an order and paying start with `BEGIN
//! IMMEDIATE`, taking the write lock before they read, so each sees every write before
//! it whole and none can slip in between its read and its write. A batch of orders
//! commits in one such transaction, each order in a savepoint of its own.

mod batch;
mod orders;
mod payments;
mod rows;
mod sales;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pos_common::{
    clock::SharedClock,
    domain::{DeviceId, StoreId},
    storage::to_millis,
};
use pos_trade_storage::{
    Bill, Committed, NewOrder, NewPayment, OrderId, Paid, Payment, PaymentPage, StorageResult,
    Trade, TradeId, TradeStorage, stored,
};
use sqlx::{SqlitePool, migrate::Migrator};

use rows::{BillRow, PaymentRow, TradeRow};
pub use sales::SqliteSalesSource;

/// This engine's migrations (tracked per service, in `trade_migrations`).
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

#[derive(Clone)]
pub struct SqliteTradeStorage {
    pool: SqlitePool,
    clock: SharedClock,
}

impl SqliteTradeStorage {
    pub fn new(pool: SqlitePool, clock: SharedClock) -> Self {
        Self { pool, clock }
    }

    /// Now, at the milliseconds SQLite keeps, so what a call returns equals what a later
    /// read returns.
    fn now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        DateTime::from_timestamp_millis(to_millis(now)).unwrap_or(now)
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
        let store_id = store.get();
        let device_id = device.map(DeviceId::get);
        let trade_id = trade.map(TradeId::get);
        let rows = sqlx::query_as!(
            BillRow,
            r#"SELECT t.id, t.store_id, t.device_id, t.amount, t.status, t.opened_at,
                      t.paid_at,
                      o.id AS "order_id?: String", o.amount AS "order_amount?: i64",
                      o.created_at AS "order_created_at?: i64",
                      l.product_id AS "product_id?: i64",
                      l.product_name AS "product_name?: String",
                      l.category AS "category?: String", l.unit_price AS "unit_price?: i64",
                      l.count AS "count?: i64", l.amount AS "line_amount?: i64"
               FROM trades t
               LEFT JOIN trade_orders o ON o.trade_id = t.id
               LEFT JOIN trade_order_lines l ON l.order_id = o.id
               WHERE t.store_id = ?1
                 AND (?2 IS NULL OR t.device_id = ?2)
                 AND (?3 IS NULL OR t.id = ?3)
                 AND (?4 OR t.status = 'OPEN')
               ORDER BY t.device_id, t.id, o.created_at, o.id, l.product_id"#,
            store_id,
            device_id,
            trade_id,
            include_paid,
        )
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .into_iter()
            .map(BillRow::stored)
            .collect::<StorageResult<Vec<_>>>()?;
        stored::bills(rows)
    }
}

#[async_trait]
impl TradeStorage for SqliteTradeStorage {
    async fn commit_order(&self, order: &NewOrder) -> StorageResult<Committed> {
        orders::commit(&self.pool, || self.now(), order).await
    }

    /// The whole batch in one write transaction, each order in a savepoint (see `batch`).
    async fn commit_orders(&self, orders: &[NewOrder]) -> Vec<StorageResult<Committed>> {
        batch::commit_all(&self.pool, || self.now(), orders).await
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
        let store_id = store.get();
        let rows = sqlx::query_as!(
            TradeRow,
            r#"SELECT id AS "id!", store_id AS "store_id!", device_id AS "device_id!",
                      amount AS "amount!", status AS "status!", opened_at AS "opened_at!",
                      paid_at
               FROM trades
               WHERE store_id = ?1 AND status = 'OPEN'
               ORDER BY device_id"#,
            store_id,
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
        payments::pay(&self.pool, || self.now(), payment).await
    }

    async fn trade_payment(
        &self,
        store: StoreId,
        trade: TradeId,
    ) -> StorageResult<Option<Payment>> {
        let (store_id, trade_id) = (store.get(), trade.get());
        let row = sqlx::query_as!(
            PaymentRow,
            r#"SELECT id AS "id!", trade_id, store_id, device_id, method, card_company, amount,
                      card_fee, fingerprint, paid_at
               FROM trade_payments
               WHERE store_id = ?1 AND trade_id = ?2"#,
            store_id,
            trade_id,
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(PaymentRow::decode).transpose()
    }

    async fn payments(
        &self,
        store: StoreId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PaymentPage,
    ) -> StorageResult<Vec<Payment>> {
        let store_id = store.get();
        let (from, to) = (to_millis(from), to_millis(to));
        let after_at = page.after.map(|cursor| to_millis(cursor.paid_at));
        let after_id = page.after.map(|cursor| cursor.id);
        let rows = sqlx::query_as!(
            PaymentRow,
            r#"SELECT id AS "id!", trade_id, store_id, device_id, method, card_company, amount,
                      card_fee, fingerprint, paid_at
               FROM trade_payments
               WHERE store_id = ?1 AND paid_at >= ?2 AND paid_at < ?3
                 AND (?4 IS NULL OR (paid_at, id) < (?4, ?5))
               ORDER BY paid_at DESC, id DESC
               LIMIT ?6"#,
            store_id,
            from,
            to,
            after_at,
            after_id,
            page.limit,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(PaymentRow::decode).collect()
    }
}
