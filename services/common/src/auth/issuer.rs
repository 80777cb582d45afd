//! Minting tokens with a signing key. The user service issues owner tokens; the store
//! service issues device tokens; tests and `pos up --demo` use it to mint any kind.

use std::sync::Arc;

use super::{Claims, Jwks, SigningKey, TokenType};

/// Device tokens live until revoked or rotated; the expiry only bounds a leaked key's reach.
pub const DEVICE_TOKEN_TTL_SECS: i64 = 10 * 365 * 24 * 3600;
/// Default owner access token lifetime (SPEC section 6).
pub const ACCESS_TOKEN_TTL_SECS: i64 = 3600;
/// Service-to-service token lifetime; `ServiceTokenLayer` re-mints them at half of it.
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

    pub fn owner_access(&self, user_id: i64, store_id: Option<i64>, ttl_secs: i64) -> String {
        let mut claims = self.claims(&user_id.to_string(), TokenType::Access, ttl_secs);
        claims.store_id = store_id;
        self.sign(&claims)
    }

    pub fn device(&self, store_id: i64, device_id: i64, credential_version: i64) -> String {
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

    pub fn service(&self, name: &str) -> String {
        self.sign(&self.claims(name, TokenType::Service, SERVICE_TOKEN_TTL_SECS))
    }

    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.key.jwk()],
        }
    }
}
