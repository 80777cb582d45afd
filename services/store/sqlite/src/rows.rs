//! Rows as SQLite returns them (instants in UTC Unix milliseconds), and their decoding
//! into the domain.

use pos_common::{
    domain::{DeviceId, Grade, ProductId, SettlementDay, StoreId, StoreName, UserId},
    storage::{StorageError, from_millis},
};
use pos_store_storage::{
    Amount, Category, Device, HistoryEntry, Product, ProductName, StorageResult, Store,
};

pub struct StoreRow {
    pub id: i64,
    pub owner_user_id: i64,
    pub name: String,
    pub pos_grade: String,
    pub settlement_day: i64,
    pub created_at: i64,
}

pub struct DeviceRow {
    pub id: i64,
    pub store_id: i64,
    pub label: String,
    pub credential_version: i64,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

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

pub struct HistoryRow {
    pub product_id: i64,
    pub price: i64,
    pub base_stock: i64,
    pub at: i64,
}

pub fn decode_all<R, T>(rows: Vec<R>, decode: fn(R) -> StorageResult<T>) -> StorageResult<Vec<T>> {
    rows.into_iter().map(decode).collect()
}

pub fn category(stored: &str) -> StorageResult<Category> {
    Category::from_name(stored).ok_or_else(|| StorageError::unknown("category", stored))
}

fn amount(column: &'static str, stored: i64) -> StorageResult<Amount> {
    Amount::parse(stored).map_err(|_| StorageError::unknown(column, stored))
}

impl StoreRow {
    pub fn decode(self) -> StorageResult<Store> {
        let day = i32::try_from(self.settlement_day)
            .ok()
            .and_then(|day| SettlementDay::parse(day).ok())
            .ok_or_else(|| StorageError::unknown("stores.settlement_day", self.settlement_day))?;
        Ok(Store {
            id: StoreId::from_stored(self.id),
            owner: UserId::from_stored(self.owner_user_id),
            name: StoreName::parse(&self.name)
                .map_err(|_| StorageError::unknown("stores.name", &self.name))?,
            grade: Grade::from_name(&self.pos_grade)
                .ok_or_else(|| StorageError::unknown("stores.pos_grade", &self.pos_grade))?,
            settlement_day: day,
            created_at: from_millis("stores.created_at", self.created_at)?,
        })
    }
}

impl DeviceRow {
    pub fn decode(self) -> StorageResult<Device> {
        Ok(Device {
            id: DeviceId::from_stored(self.id),
            store_id: StoreId::from_stored(self.store_id),
            label: self.label,
            credential_version: self.credential_version,
            revoked_at: self
                .revoked_at
                .map(|at| from_millis("devices.revoked_at", at))
                .transpose()?,
            created_at: from_millis("devices.created_at", self.created_at)?,
        })
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
            deleted_at: self
                .deleted_at
                .map(|at| from_millis("products.deleted_at", at))
                .transpose()?,
            created_at: from_millis("products.created_at", self.created_at)?,
            updated_at: from_millis("products.updated_at", self.updated_at)?,
        })
    }
}

impl HistoryRow {
    pub fn decode(self) -> StorageResult<HistoryEntry> {
        Ok(HistoryEntry {
            product_id: ProductId::from_stored(self.product_id),
            price: amount("product_history.price", self.price)?,
            base_stock: amount("product_history.base_stock", self.base_stock)?,
            at: from_millis("product_history.at", self.at)?,
        })
    }
}
