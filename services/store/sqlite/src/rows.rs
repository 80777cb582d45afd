//! Rows as SQLite returns them (instants in UTC Unix milliseconds), turned into the
//! shared stored forms.

use pos_common::{
    domain::{DeviceId, StoreId},
    storage::{StorageError, from_millis},
};
use pos_store_storage::{
    Device, HistoryEntry, Product, StorageResult, Store,
    stored::{StoredHistory, StoredProduct, StoredStore},
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
    pub id: i64,
    pub product_id: i64,
    pub price: i64,
    pub base_stock: i64,
    pub at: i64,
}

pub fn decode_all<R, T>(rows: Vec<R>, decode: fn(R) -> StorageResult<T>) -> StorageResult<Vec<T>> {
    rows.into_iter().map(decode).collect()
}

impl StoreRow {
    pub fn decode(self) -> StorageResult<Store> {
        StoredStore {
            id: self.id,
            owner_user_id: self.owner_user_id,
            name: self.name,
            pos_grade: self.pos_grade,
            settlement_day: i32::try_from(self.settlement_day)
                .map_err(|_| StorageError::unknown("stores.settlement_day", self.settlement_day))?,
            created_at: from_millis("stores.created_at", self.created_at)?,
        }
        .decode()
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
        StoredProduct {
            id: self.id,
            store_id: self.store_id,
            name: self.name,
            category: self.category,
            price: self.price,
            stock: self.stock,
            base_stock: self.base_stock,
            deleted_at: self
                .deleted_at
                .map(|at| from_millis("products.deleted_at", at))
                .transpose()?,
            created_at: from_millis("products.created_at", self.created_at)?,
            updated_at: from_millis("products.updated_at", self.updated_at)?,
        }
        .decode()
    }
}

impl HistoryRow {
    pub fn decode(self) -> StorageResult<HistoryEntry> {
        StoredHistory {
            id: self.id,
            product_id: self.product_id,
            price: self.price,
            base_stock: self.base_stock,
            at: from_millis("product_history.at", self.at)?,
        }
        .decode()
    }
}
