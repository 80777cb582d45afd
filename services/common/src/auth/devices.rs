//! Whether a tablet's token is still its current credential. The store role answers
//! from its own table; every other role (and the edge) asks the store role's internal
//! API. Each call is checked once, where it is served or at the edge — or, for
//! PlaceOrder, by the store with the order's stock reservation.

use async_trait::async_trait;
use pos_proto::v1::{
    GetDeviceCredentialRequest, store_internal_service_client::StoreInternalServiceClient,
};
use tonic::Code;

use super::DeviceCaller;
use crate::{
    ApiError, ApiResult, Reason,
    domain::{DeviceId, StoreId},
    peer::{Peer, ServiceCredential, WithServiceToken, with_service_token},
};

/// A tablet's credential as the store role keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCredential {
    /// Only tokens carrying this version are valid.
    pub version: i64,
    /// No token of this tablet is valid until a new one is issued.
    pub revoked: bool,
}

/// Looks up a tablet's current credential.
#[async_trait]
pub trait DeviceCredentials: Send + Sync + 'static {
    /// `None` when the store has no such tablet.
    async fn current(
        &self,
        store_id: StoreId,
        device_id: DeviceId,
    ) -> ApiResult<Option<DeviceCredential>>;
}

/// `TOKEN_REVOKED` unless the token carries the tablet's current, unrevoked credential.
pub async fn check_device(
    credentials: &dyn DeviceCredentials,
    caller: &DeviceCaller,
) -> ApiResult<()> {
    let current = credentials
        .current(caller.store_id, caller.device_id)
        .await?;
    is_current(current, caller)
}

/// `TOKEN_REVOKED` unless `current` (the tablet's credential in the caller's store, `None`
/// when it has no such tablet) is the one the caller's token carries, unrevoked.
pub fn is_current(current: Option<DeviceCredential>, caller: &DeviceCaller) -> ApiResult<()> {
    match current {
        Some(current) if !current.revoked && current.version == caller.credential_version => Ok(()),
        _ => Err(ApiError::new(
            Reason::TokenRevoked,
            "this device credential was revoked or replaced",
        )),
    }
}

/// The store role's answer, over its internal API.
#[derive(Clone)]
pub struct StoreDeviceCredentials {
    client: StoreInternalServiceClient<WithServiceToken<Peer>>,
}

impl StoreDeviceCredentials {
    pub fn new(store: Peer, credential: &ServiceCredential) -> Self {
        Self {
            client: StoreInternalServiceClient::new(with_service_token(store, credential)),
        }
    }
}

#[async_trait]
impl DeviceCredentials for StoreDeviceCredentials {
    async fn current(
        &self,
        store_id: StoreId,
        device_id: DeviceId,
    ) -> ApiResult<Option<DeviceCredential>> {
        let answer = self
            .client
            .clone()
            .get_device_credential(GetDeviceCredentialRequest {
                store_id: store_id.get(),
                device_id: device_id.get(),
            })
            .await;
        match answer {
            Ok(response) => {
                let current = response.into_inner();
                Ok(Some(DeviceCredential {
                    version: current.credential_version,
                    revoked: current.revoked,
                }))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(ApiError::unavailable("store service", status)),
        }
    }
}
