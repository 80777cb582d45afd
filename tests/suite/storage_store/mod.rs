//! The contract of `StoreStorage`: the same cases against the PostgreSQL and the SQLite
//! implementation, straight through the trait.

mod catalog;
mod errors;
mod history;
mod migration;
mod pages;
mod reconcile;
mod reservations;
mod reserve_batches;

use std::sync::Arc;

use pos_common::{
    clock,
    domain::{Grade, ProductId, SettlementDay, StoreId, StoreName, StoreRequest, UserId},
    error::Violations,
    storage::Database,
};
use pos_store::storage::{
    Amount, Category, Created, NewProduct, OrderId, OrderLines, Page, Product, ProductFilter,
    ProductLimit, ProductName, Reservation, Store, StoreStorage,
};

use crate::support::{Engine, TestDb};

pub struct Fixture {
    test_db: TestDb,
    pub database: Database,
    pub storage: Arc<dyn StoreStorage>,
}

impl Fixture {
    pub async fn new(engine: Engine) -> Self {
        Self::with_clock(engine, clock::system()).await
    }

    pub async fn with_clock(engine: Engine, clock: clock::SharedClock) -> Self {
        let (test_db, database) = TestDb::create(engine).await;
        database
            .migrate(&pos_store::MIGRATIONS)
            .await
            .expect("migrate");
        let storage = pos_store::open_storage(&database, clock);
        Self {
            test_db,
            database,
            storage,
        }
    }

    pub async fn store(&self, owner: i64) -> Store {
        self.storage
            .create_store_for_owner(
                UserId::from_stored(owner),
                &request("Cafe", Grade::Bronze, 10),
            )
            .await
            .expect("create store")
            .0
    }

    pub async fn product(
        &self,
        store: StoreId,
        name: &str,
        category: Category,
        price: i64,
        stock: i64,
    ) -> ProductId {
        let created = self
            .storage
            .create_product(
                store,
                &NewProduct {
                    name: ProductName::parse(name).expect("name"),
                    category,
                    price: Amount::parse(price).expect("price"),
                    base_stock: Amount::parse(stock).expect("stock"),
                },
                ProductLimit::default(),
            )
            .await
            .expect("create product");
        match created {
            Created::Product(product) => product.id,
            Created::StoreFull => panic!("the store is full"),
        }
    }

    /// Every product of the store (deleted too), through the pages.
    pub async fn all_products(&self, store: StoreId, filter: ProductFilter) -> Vec<Product> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .storage
                .list_products(store, filter, Page { after, limit: 2 })
                .await
                .expect("list");
            let Some(last) = page.last() else {
                return all;
            };
            after = last.id.get();
            all.extend(page);
        }
    }

    pub async fn stock(&self, store: StoreId, product: ProductId) -> i64 {
        self.storage
            .product(store, product)
            .await
            .expect("read")
            .expect("product")
            .stock
    }

    pub async fn finish(self) {
        self.database.close().await;
        self.test_db.drop_database().await;
    }
}

pub fn request(name: &str, grade: Grade, day: i32) -> StoreRequest {
    StoreRequest {
        name: StoreName::parse(name).expect("name"),
        grade,
        settlement_day: SettlementDay::parse(day).expect("day"),
    }
}

pub fn order(id: &str) -> OrderId {
    OrderId::parse(id).expect("order id")
}

pub fn lines(raw: &[(ProductId, i64)]) -> OrderLines {
    let pairs: Vec<(i64, i64)> = raw.iter().map(|(p, c)| (p.get(), *c)).collect();
    let mut violations = Violations::new();
    OrderLines::parse(&pairs, &mut violations).expect("valid lines")
}

/// (product, name, category, unit price, count) of each line, as the order keeps them.
pub fn snapshot(reservation: &Reservation) -> Vec<(ProductId, &str, Category, i64, i64)> {
    reservation
        .lines
        .iter()
        .map(|l| {
            (
                l.product_id,
                l.product_name.as_str(),
                l.category,
                l.unit_price,
                l.count,
            )
        })
        .collect()
}
