//! Access tokens revoked before they expire: one token (its `jti`, at logout) or every
//! token of a login (its refresh family `fam`, at logout or when refresh reuse is caught).
//! Checking a token is one lookup of both keys, however they are stored.

use std::time::Duration;

use super::Claims;
use crate::{ApiResult, ephemeral::SharedEphemeral};

#[derive(Clone)]
pub struct Revocations {
    store: SharedEphemeral,
}

fn token_key(jti: &str) -> String {
    format!("denied-jti:{jti}")
}

fn family_key(family: &str) -> String {
    format!("denied-family:{family}")
}

impl Revocations {
    pub fn new(store: SharedEphemeral) -> Self {
        Self { store }
    }

    /// Denies the token until its own expiry (after which it is refused anyway).
    pub async fn deny(&self, claims: &Claims) -> ApiResult<()> {
        let remaining = claims.exp - chrono::Utc::now().timestamp();
        if remaining > 0 {
            let ttl = Duration::from_secs(remaining.unsigned_abs() + 5);
            self.store.set(&token_key(&claims.jti), "1", ttl).await?;
        }
        Ok(())
    }

    /// Revokes every access token of a login for as long as any of them can live.
    pub async fn deny_family(&self, family: &str, access_lifetime: Duration) -> ApiResult<()> {
        self.store
            .set(
                &family_key(family),
                "1",
                access_lifetime + Duration::from_secs(5),
            )
            .await?;
        Ok(())
    }

    /// Whether the token, or its whole login, was revoked.
    pub async fn is_revoked(&self, claims: &Claims) -> ApiResult<bool> {
        let mut keys = vec![token_key(&claims.jti)];
        if let Some(family) = &claims.fam {
            keys.push(family_key(family));
        }
        Ok(self.store.exists_any(&keys).await?)
    }
}
