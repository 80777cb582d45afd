//! Device credential checks against the store service's internal API.

use async_trait::async_trait;
use pos_common::{
    ApiError, ApiResult, Reason,
    backend::{Backend, ServiceTokenLayer, WithServiceToken},
};
use pos_proto::v1::{
    GetDeviceCredentialRequest, store_internal_service_client::StoreInternalServiceClient,
};
use tonic::Code;
use tower::Layer;

use crate::gates::DeviceCredentials;

/// Asks the store service, on every device call, whether the token's credential is
/// current: revocation takes effect at once, and tablets call rarely enough to afford it.
#[derive(Clone)]
pub struct StoreDeviceCredentials {
    client: StoreInternalServiceClient<WithServiceToken<Backend>>,
}

impl StoreDeviceCredentials {
    pub fn new(store: Backend, service_token: &ServiceTokenLayer) -> Self {
        Self {
            client: StoreInternalServiceClient::new(service_token.layer(store)),
        }
    }
}

fn revoked() -> ApiError {
    ApiError::new(
        Reason::TokenRevoked,
        "this device credential was revoked or replaced",
    )
}

#[async_trait]
impl DeviceCredentials for StoreDeviceCredentials {
    async fn verify(
        &self,
        store_id: i64,
        device_id: i64,
        credential_version: i64,
    ) -> ApiResult<()> {
        let answer = self
            .client
            .clone()
            .get_device_credential(GetDeviceCredentialRequest {
                store_id,
                device_id,
            })
            .await;
        match answer {
            Ok(response) => {
                let current = response.into_inner();
                if current.revoked || current.credential_version != credential_version {
                    Err(revoked())
                } else {
                    Ok(())
                }
            }
            Err(status) if status.code() == Code::NotFound => Err(revoked()),
            Err(status) => Err(ApiError::unavailable("store service", status.message())),
        }
    }
}
