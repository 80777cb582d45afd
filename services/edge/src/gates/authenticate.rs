//! Authentication by policy: a public RPC needs no token (but a token that is sent must
//! be valid, as the services would insist too); any other RPC needs a valid token of a
//! role its policy row allows. [`CurrentDevice`] then checks, after rate limiting, that
//! a tablet's credential is still current: that check costs a call to the store.

use std::sync::Arc;

use async_trait::async_trait;
use pos_common::{
    ApiError, ApiResult, Reason,
    auth::{Authenticator, Principal, bearer_token, role_not_allowed},
};
use tonic::{Status, body::Body};

use crate::{
    gate::Gate,
    policy::{Access, Route},
};

/// Whether a tablet token's credential version is still the device's current one.
#[async_trait]
pub trait DeviceCredentials: Send + Sync + 'static {
    /// `Err(TOKEN_REVOKED)` when the device was revoked or issued a newer credential.
    async fn verify(&self, store_id: i64, device_id: i64, credential_version: i64)
    -> ApiResult<()>;
}

#[derive(Clone)]
pub struct Authenticate {
    auth: Authenticator,
}

impl Authenticate {
    pub fn new(auth: Authenticator) -> Self {
        Self { auth }
    }

    async fn principal_for(
        &self,
        access: Access,
        headers: &http::HeaderMap,
    ) -> ApiResult<Principal> {
        let token = bearer_token(headers)?
            .ok_or_else(|| ApiError::new(Reason::TokenMissing, "authorization token missing"))?;
        let (principal, _) = self.auth.authenticate(token).await?;
        let allowed = matches!(
            (&principal, access),
            (
                Principal::Owner { .. },
                Access::Owner | Access::OwnerOrDevice
            ) | (
                Principal::Device { .. },
                Access::Device | Access::OwnerOrDevice
            )
        );
        if !allowed {
            return Err(role_not_allowed(match access {
                Access::Owner => "an owner",
                Access::Device => "a tablet",
                _ => "an owner or a tablet",
            }));
        }
        Ok(principal)
    }
}

#[async_trait]
impl Gate for Authenticate {
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        request.extensions_mut().remove::<Principal>();
        let access = match request.extensions().get::<Route>() {
            Some(Route::Rpc { rule, .. }) => rule.access,
            _ => return Ok(()),
        };
        if access == Access::Public {
            if let Some(token) = bearer_token(request.headers())? {
                let (principal, _) = self.auth.authenticate(token).await?;
                request.extensions_mut().insert(principal);
            }
            return Ok(());
        }
        let principal = self.principal_for(access, request.headers()).await?;
        request.extensions_mut().insert(principal);
        Ok(())
    }
}

/// Refuses tablet tokens whose credential was revoked or replaced.
#[derive(Clone)]
pub struct CurrentDevice {
    devices: Arc<dyn DeviceCredentials>,
}

impl CurrentDevice {
    pub fn new(devices: Arc<dyn DeviceCredentials>) -> Self {
        Self { devices }
    }
}

#[async_trait]
impl Gate for CurrentDevice {
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        let public = matches!(
            request.extensions().get::<Route>(),
            Some(Route::Rpc { rule, .. }) if rule.access == Access::Public
        );
        if let (
            false,
            Some(Principal::Device {
                store_id,
                device_id,
                credential_version,
            }),
        ) = (public, request.extensions().get::<Principal>())
        {
            self.devices
                .verify(*store_id, *device_id, *credential_version)
                .await?;
        }
        Ok(())
    }
}
