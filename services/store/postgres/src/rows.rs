//! Rows as PostgreSQL returns them that the shared decoding does not cover.

use chrono::{DateTime, Utc};
use pos_common::domain::{DeviceId, StoreId};
use pos_store_storage::{Device, StorageResult};

pub struct DeviceRow {
    pub id: i64,
    pub store_id: i64,
    pub label: String,
    pub credential_version: i64,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub fn decode_all<R, T>(rows: Vec<R>, decode: fn(R) -> StorageResult<T>) -> StorageResult<Vec<T>> {
    rows.into_iter().map(decode).collect()
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
