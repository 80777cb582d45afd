//! The store service's tables: the only code that writes them. Every function is one
//! short transaction or a single statement; SQL is shared by PostgreSQL and SQLite.

mod products;
mod reservations;
mod stores;

pub use products::{NewProduct, ProductChange};
pub use reservations::ReserveLine;

use pos_common::storage::Db;

/// A row of `stores`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoreRow {
    pub id: i64,
    pub owner_user_id: i64,
    pub name: String,
    pub pos_grade: String,
    pub settlement_day: i64,
    pub created_at: i64,
}

/// A row of `devices`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: i64,
    pub store_id: i64,
    pub label: String,
    pub credential_version: i64,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// A row of `products`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    pub id: i64,
    pub store_id: i64,
    pub name: String,
    pub category: String,
    pub price: i64,
    pub stock: i64,
    pub base_stock: i64,
    pub deleted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A row of `product_history`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub product_id: i64,
    pub price: i64,
    pub base_stock: i64,
    pub at: i64,
}

/// A reservation with its lines.
#[derive(Debug, Clone)]
pub struct ReservationRecord {
    pub order_id: String,
    pub store_id: i64,
    pub status: String,
    pub created_at: i64,
    pub lines: Vec<ReservationLineRow>,
}

/// A row of `stock_reservation_lines`: the product as it was when reserved.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReservationLineRow {
    pub product_id: i64,
    pub product_name: String,
    pub category: String,
    pub unit_price: i64,
    pub count: i64,
}

// Column lists as macros so queries stay `&'static str` literals (sqlx refuses dynamic SQL).
macro_rules! product_columns {
    () => {
        "id, store_id, name, category, price, stock, base_stock, deleted_at, created_at, updated_at"
    };
}
macro_rules! store_columns {
    () => {
        "id, owner_user_id, name, pos_grade, settlement_day, created_at"
    };
}
macro_rules! device_columns {
    () => {
        "id, store_id, label, credential_version, revoked_at, created_at"
    };
}
use {device_columns, product_columns, store_columns};

/// The store catalog's storage.
#[derive(Clone, Debug)]
pub struct StoreRepo {
    db: Db,
}

impl StoreRepo {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}
