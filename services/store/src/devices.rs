//! Tablet credentials answered from the store's own table, for the store role's own
//! calls (other roles ask over [`pos_common::auth::StoreDeviceCredentials`]).

use std::sync::Arc;

use async_trait::async_trait;
use pos_common::{
    ApiResult,
    auth::{DeviceCredential, DeviceCredentials},
    domain::{DeviceId, StoreId},
};
use pos_store_storage::StoreStorage;

pub struct LocalDeviceCredentials {
    storage: Arc<dyn StoreStorage>,
}

impl LocalDeviceCredentials {
    pub fn new(storage: Arc<dyn StoreStorage>) -> Self {
        Self { storage }
    }
}

#[async_trait]
impl DeviceCredentials for LocalDeviceCredentials {
    async fn current(
        &self,
        store_id: StoreId,
        device_id: DeviceId,
    ) -> ApiResult<Option<DeviceCredential>> {
        Ok(self
            .storage
            .device(store_id, device_id)
            .await?
            .map(|device| DeviceCredential {
                version: device.credential_version,
                revoked: device.revoked_at.is_some(),
            }))
    }
}
