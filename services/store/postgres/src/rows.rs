//! Rows as PostgreSQL returns them, and their decoding into the domain.

use chrono::{DateTime, Utc};
use pos_common::{
    domain::{DeviceId, Grade, ProductId, SettlementDay, StoreId, StoreName, UserId},
    storage::StorageError,
};
use pos_store_storage::{
    Amount, Category, Device, HistoryEntry, Product, ProductName, StorageResult, Store,
};

pub struct StoreRow {
    pub id: i64,
    pub owner_user_id: i64,
    pub name: String,
    pub pos_grade: String,
    pub settlement_day: i32,
    pub created_at: DateTime<Utc>,
}

pub struct DeviceRow {
    pub id: i64,
    pub store_id: i64,
    pub label: String,
    pub credential_version: i64,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub struct ProductRow {
    pub id: i64,
    pub store_id: i64,
    pub name: String,
    pub category: String,
    pub price: i64,
    pub stock: i64,
    pub base_stock: i64,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct HistoryRow {
    pub product_id: i64,
    pub price: i64,
    pub base_stock: i64,
    pub at: DateTime<Utc>,
}

pub fn decode_all<R, T>(rows: Vec<R>, decode: fn(R) -> StorageResult<T>) -> StorageResult<Vec<T>> {
    rows.into_iter().map(decode).collect()
}

pub fn category(stored: &str) -> StorageResult<Category> {
    Category::from_name(stored).ok_or_else(|| StorageError::unknown("category", stored))
}

pub fn amount(column: &'static str, stored: i64) -> StorageResult<Amount> {
    Amount::parse(stored).map_err(|_| StorageError::unknown(column, stored))
}

impl StoreRow {
    pub fn decode(self) -> StorageResult<Store> {
        Ok(Store {
            id: StoreId::from_stored(self.id),
            owner: UserId::from_stored(self.owner_user_id),
            name: StoreName::parse(&self.name)
                .map_err(|_| StorageError::unknown("stores.name", &self.name))?,
            grade: Grade::from_name(&self.pos_grade)
                .ok_or_else(|| StorageError::unknown("stores.pos_grade", &self.pos_grade))?,
            settlement_day: SettlementDay::parse(self.settlement_day)
                .map_err(|_| StorageError::unknown("stores.settlement_day", self.settlement_day))?,
            created_at: self.created_at,
        })
    }
}

impl DeviceRow {
    pub fn decode(self) -> Device {
        Device {
            id: DeviceId::from_stored(self.id),
            store_id: StoreId::from_stored(self.store_id),
            label: self.label,
            credential_version: self.credential_version,
            revoked_at: self.revoked_at,
            created_at: self.created_at,
        }
    }
}

impl ProductRow {
    pub fn decode(self) -> StorageResult<Product> {
        Ok(Product {
            id: ProductId::from_stored(self.id),
            store_id: StoreId::from_stored(self.store_id),
            name: ProductName::parse(&self.name)
                .map_err(|_| StorageError::unknown("products.name", &self.name))?,
            category: category(&self.category)?,
            price: amount("products.price", self.price)?,
            stock: self.stock,
            base_stock: amount("products.base_stock", self.base_stock)?,
            deleted_at: self.deleted_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl HistoryRow {
    pub fn decode(self) -> StorageResult<HistoryEntry> {
        Ok(HistoryEntry {
            product_id: ProductId::from_stored(self.product_id),
            price: amount("product_history.price", self.price)?,
            base_stock: amount("product_history.base_stock", self.base_stock)?,
            at: self.at,
        })
    }
}
