//! Authentication by policy: a public RPC needs no token (but a token that is sent must
//! be valid, as the services would insist too); any other RPC needs a valid, unrevoked
//! token of a role its policy row allows. [`CurrentDevice`] then checks, after rate
//! limiting, that a tablet's credential is still current (that costs a call to the
//! store), for every call with a tablet token whose policy row does not leave that to
//! the service (PlaceOrder: the store checks it with the reservation). The roles behind
//! the edge do neither check again (see [`pos_common::auth::EDGE_ATTESTATION`]).
//!
//! A call whose token proves no one (missing where needed, forged, expired, revoked), or
//! whose caller may not make it, is charged to its address by the rate limit before it
//! is refused, so failed attempts are limited like anonymous calls. Valid callers pay nothing for this: only failures are
//! counted, after the fact.

use async_trait::async_trait;
use pos_common::{
    ApiError, ApiResult, Reason,
    auth::{Authenticator, Principal, bearer_token, role_not_allowed},
};
use tonic::{Code, Status, body::Body};

use crate::{
    gate::Gate,
    gates::RateLimit,
    policy::{Access, Route},
};

#[derive(Clone)]
pub struct Authenticate {
    auth: Authenticator,
    /// Where failed authentications are counted, against the caller's address.
    limits: RateLimit,
}

impl Authenticate {
    pub fn new(auth: Authenticator, limits: RateLimit) -> Self {
        Self { auth, limits }
    }

    /// Signature, type and the deny-list (one lookup).
    async fn principal(&self, token: &str) -> ApiResult<Principal> {
        let (principal, claims) = self.auth.verify(token).await?;
        self.auth.check_revocation(&claims).await?;
        Ok(principal)
    }

    async fn principal_for(
        &self,
        access: Access,
        headers: &http::HeaderMap,
    ) -> ApiResult<Principal> {
        let token = bearer_token(headers)?
            .ok_or_else(|| ApiError::new(Reason::TokenMissing, "authorization token missing"))?;
        let principal = self.principal(token).await?;
        let allowed = matches!(
            (&principal, access),
            (
                Principal::Owner { .. },
                Access::Owner | Access::OwnerOrDevice
            ) | (Principal::Device(_), Access::Device | Access::OwnerOrDevice)
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

    /// Puts the caller's [`Principal`] into the request when it proves one.
    async fn identify(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        let access = match request.extensions().get::<Route>() {
            Some(Route::Rpc { rule, .. }) => rule.access,
            _ => return Ok(()),
        };
        if access == Access::Public {
            if let Some(token) = bearer_token(request.headers())? {
                let principal = self.principal(token).await?;
                request.extensions_mut().insert(principal);
            }
            return Ok(());
        }
        let principal = self.principal_for(access, request.headers()).await?;
        request.extensions_mut().insert(principal);
        Ok(())
    }
}

#[async_trait]
impl Gate for Authenticate {
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        request.extensions_mut().remove::<Principal>();
        match self.identify(request).await {
            // A refused credential, or one used where it has no business (a tablet-only
            // RPC with an owner's token): both are charged, or a caller could make the
            // edge verify tokens and consult the deny-list for free.
            Err(refusal)
                if matches!(
                    refusal.code(),
                    Code::Unauthenticated | Code::PermissionDenied
                ) =>
            {
                // Over the address's limit, the caller hears that instead.
                self.limits.charge_address(request).await?;
                Err(refusal)
            }
            outcome => outcome,
        }
    }
}

/// Refuses tablet tokens whose credential was revoked or replaced.
#[derive(Clone)]
pub struct CurrentDevice {
    auth: Authenticator,
}

impl CurrentDevice {
    pub fn new(auth: Authenticator) -> Self {
        Self { auth }
    }
}

#[async_trait]
impl Gate for CurrentDevice {
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        // Every call that carries a tablet token, public RPCs too: a token that is sent must
        // be current, and the edge's attestation then vouches for every check it names —
        // except where the policy leaves the check to the service, which makes it with
        // the call's own work (PlaceOrder's reservation).
        if let Some(Route::Rpc { rule, .. }) = request.extensions().get::<Route>()
            && rule.service_checks_tablet
        {
            return Ok(());
        }
        if let Some(principal) = request.extensions().get::<Principal>() {
            self.auth.check_device(principal).await?;
        }
        Ok(())
    }
}
