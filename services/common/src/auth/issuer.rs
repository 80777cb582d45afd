//! Minting tokens with a signing key. The user role issues owner tokens, the store role
//! tablet credentials, every role its own service token; tests and `pos up --demo` use it
//! to mint any kind.

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;

use super::{Claims, SigningKey, TokenType};
use crate::domain::{DeviceId, StoreId, UserId};

/// Device tokens live until revoked or rotated; the expiry only bounds a leaked key's reach.
pub const DEVICE_TOKEN_TTL_SECS: i64 = 10 * 365 * 24 * 3600;
/// Default owner access token lifetime: one hour.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 3600;
/// Service-to-service token lifetime; [`crate::peer::ServiceCredential`] re-mints them
/// at half of it.
pub const SERVICE_TOKEN_TTL_SECS: i64 = 24 * 3600;

#[derive(Clone)]
pub struct TokenIssuer {
    key: Arc<SigningKey>,
    issuer: String,
    audience: String,
}

impl TokenIssuer {
    pub fn new(key: Arc<SigningKey>, issuer: &str, audience: &str) -> Self {
        Self {
            key,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
        }
    }

    /// Claims of this issuer for `sub`, valid `ttl_secs` from now.
    pub fn claims(&self, sub: &str, typ: TokenType, ttl_secs: i64) -> Claims {
        Claims::new(&self.issuer, &self.audience, sub, typ, ttl_secs)
    }

    pub fn sign(&self, claims: &Claims) -> String {
        self.key.sign(claims)
    }

    pub fn owner_access(
        &self,
        user_id: UserId,
        store_id: Option<StoreId>,
        ttl_secs: i64,
    ) -> String {
        let mut claims = self.claims(&user_id.to_string(), TokenType::Access, ttl_secs);
        claims.store_id = store_id.map(StoreId::get);
        self.sign(&claims)
    }

    pub fn device(
        &self,
        store_id: StoreId,
        device_id: DeviceId,
        credential_version: i64,
    ) -> String {
        let claims = self
            .claims(
                &format!("device:{device_id}"),
                TokenType::Device,
                DEVICE_TOKEN_TTL_SECS,
            )
            .with_store(store_id)
            .with_device(device_id, credential_version);
        self.sign(&claims)
    }

    /// A token naming `role` (`user`, `edge`, `trade`, ...) for another role's internal API.
    pub fn service(&self, role: &str) -> String {
        self.service_for(role, SERVICE_TOKEN_TTL_SECS)
    }

    /// A service token of `role` valid for `ttl_secs`; `sub` and `role` both name it.
    pub fn service_for(&self, role: &str, ttl_secs: i64) -> String {
        let mut claims = self.claims(role, TokenType::Service, ttl_secs);
        claims.role = role.to_string();
        self.sign(&claims)
    }

    /// The public key that verifies what this issuer signs.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.key.jwk()],
        }
    }
}
