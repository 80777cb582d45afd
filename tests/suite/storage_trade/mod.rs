//! The contract of `TradeStorage`: the same cases against the PostgreSQL and the SQLite
//! implementation, straight through the trait.

mod batches;
mod orders;
mod payments;
mod reads;
mod sales;

use std::sync::Arc;

use pos_common::{
    clock::{self, SharedClock},
    domain::{DeviceId, ProductId, StoreId},
    storage::Database,
};
use pos_trade_storage::{
    Bill, CardCompany, Category, Committed, IdempotencyKey, NewOrder, NewPayment, OrderId, Paid,
    PaymentMethod, SnapshotLine, TradeStorage,
};

pub use pos_trade::{MIGRATIONS, open_storage};

use crate::support::{Engine, TestDb};

/// The store the fixture's helpers order and pay in.
pub const STORE_ID: i64 = 1;

pub fn store(id: i64) -> StoreId {
    StoreId::from_stored(id)
}

pub fn device(id: i64) -> DeviceId {
    DeviceId::from_stored(id)
}

pub struct Fixture {
    test_db: TestDb,
    database: Database,
    pub storage: Arc<dyn TradeStorage>,
}

impl Fixture {
    pub async fn new(engine: Engine) -> Self {
        Self::with_clock(engine, clock::system()).await
    }

    pub async fn with_clock(engine: Engine, clock: SharedClock) -> Self {
        let (test_db, database) = TestDb::create(engine).await;
        database.migrate(&MIGRATIONS).await.expect("migrate");
        let storage = open_storage(&database, clock);
        Self {
            test_db,
            database,
            storage,
        }
    }

    /// Commits an order of `lines` (product id, name, unit price, count) for the device.
    pub async fn order(
        &self,
        device: DeviceId,
        id: &str,
        key: &str,
        lines: &[(i64, &str, i64, i64)],
    ) -> Committed {
        self.storage
            .commit_order(&new_order(store(STORE_ID), device, id, key, lines))
            .await
            .expect("commit order")
    }

    pub async fn pay(
        &self,
        device: DeviceId,
        key: &str,
        method: PaymentMethod,
        expected: Option<i64>,
    ) -> Paid {
        self.storage
            .pay(&new_payment(store(STORE_ID), device, key, method, expected))
            .await
            .expect("pay")
    }

    pub async fn open_bill(&self, device: DeviceId) -> Option<Bill> {
        self.storage
            .open_trade(store(STORE_ID), device)
            .await
            .expect("read open bill")
    }

    /// What the fixture's paid trades add up to, as the aggregation batch reads them.
    pub fn sales(&self) -> Arc<dyn pos_trade_storage::sales::SalesSource> {
        pos_trade::open_sales_source(&self.database)
    }

    pub async fn finish(self) {
        self.database.close().await;
        self.test_db.drop_database().await;
    }
}

/// An order whose fingerprint is made of its lines, as the trade role would make it.
pub fn new_order(
    store: StoreId,
    device: DeviceId,
    id: &str,
    key: &str,
    lines: &[(i64, &str, i64, i64)],
) -> NewOrder {
    let fingerprint = format!("{lines:?}");
    let lines = lines
        .iter()
        .map(|&(product, name, unit_price, count)| SnapshotLine {
            product_id: ProductId::from_stored(product),
            product_name: name.to_string(),
            category: Category::MainMenu,
            unit_price,
            count,
        })
        .collect();
    NewOrder::new(
        OrderId::parse(id).expect("order id"),
        store,
        device,
        IdempotencyKey::parse(key).expect("key"),
        fingerprint,
        lines,
    )
    .expect("valid order")
}

/// A payment whose fingerprint is made of its method and expected amount.
pub fn new_payment(
    store: StoreId,
    device: DeviceId,
    key: &str,
    method: PaymentMethod,
    expected: Option<i64>,
) -> NewPayment {
    NewPayment {
        store_id: store,
        device_id: device,
        method,
        expected_amount: expected,
        idempotency_key: IdempotencyKey::parse(key).expect("key"),
        fingerprint: format!("{method:?}/{expected:?}"),
    }
}

pub const CARD_H: PaymentMethod = PaymentMethod::Card(CardCompany::H);
