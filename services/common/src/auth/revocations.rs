//! Access tokens revoked before they expire: one token (its `jti`, at logout) or every
//! token of a login (its refresh family `fam`, at logout or when refresh reuse is caught).
//! Checking a token is one lookup of both keys, however they are stored.
//!
//! Where the deny-list lives is a [`DenyList`]: the shared ephemeral store (Redis, so
//! every replica sees it) in a deployment, a file that survives restarts in `pos up`.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

use super::{CLOCK_LEEWAY_SECS, Claims};
use crate::{
    ApiError, ApiResult,
    ephemeral::{EphemeralError, SharedEphemeral},
    storage::StorageError,
};

/// Why the deny-list could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DenyListError {
    #[error(transparent)]
    Ephemeral(#[from] EphemeralError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DenyListError> for ApiError {
    fn from(err: DenyListError) -> Self {
        match err {
            DenyListError::Ephemeral(err) => err.into(),
            DenyListError::Storage(err) => err.into(),
        }
    }
}

/// Keys that are denied until they expire.
#[async_trait]
pub trait DenyList: Send + Sync + 'static {
    /// Denies `key` for `ttl`.
    async fn deny(&self, key: &str, ttl: Duration) -> Result<(), DenyListError>;
    /// Whether any of `keys` is denied now, in one lookup.
    async fn any_denied(&self, keys: &[String]) -> Result<bool, DenyListError>;
}

/// The shared ephemeral store as the deny-list.
struct Ephemeral(SharedEphemeral);

#[async_trait]
impl DenyList for Ephemeral {
    async fn deny(&self, key: &str, ttl: Duration) -> Result<(), DenyListError> {
        Ok(self.0.set(key, "1", ttl).await?)
    }

    async fn any_denied(&self, keys: &[String]) -> Result<bool, DenyListError> {
        Ok(self.0.exists_any(keys).await?)
    }
}

/// How long past a token's `exp` a denial must last: verifiers accept a token for the
/// clock leeway after it, and their clocks may be behind ours by as much again.
const OUTLIVES_EXPIRY: Duration = Duration::from_secs(2 * CLOCK_LEEWAY_SECS + 1);

#[derive(Clone)]
pub struct Revocations {
    list: Arc<dyn DenyList>,
}

fn token_key(jti: &str) -> String {
    format!("denied-jti:{jti}")
}

fn family_key(family: &str) -> String {
    format!("denied-family:{family}")
}

impl Revocations {
    /// Kept in the shared ephemeral store.
    pub fn new(store: SharedEphemeral) -> Self {
        Self::in_list(Arc::new(Ephemeral(store)))
    }

    /// Kept in `list`.
    pub fn in_list(list: Arc<dyn DenyList>) -> Self {
        Self { list }
    }

    /// Denies the token for as long as any verifier could still accept it.
    pub async fn deny(&self, claims: &Claims) -> ApiResult<()> {
        let remaining = claims.exp - chrono::Utc::now().timestamp();
        if remaining > -OUTLIVES_EXPIRY.as_secs().cast_signed() {
            let ttl = Duration::from_secs(remaining.max(0).unsigned_abs()) + OUTLIVES_EXPIRY;
            self.list.deny(&token_key(&claims.jti), ttl).await?;
        }
        Ok(())
    }

    /// Revokes every access token of a login; `lifetime` must cover the longest any of
    /// them can live.
    pub async fn deny_family(&self, family: &str, lifetime: Duration) -> ApiResult<()> {
        self.list
            .deny(&family_key(family), lifetime + OUTLIVES_EXPIRY)
            .await?;
        Ok(())
    }

    /// Whether the token, or its whole login, was revoked.
    pub async fn is_revoked(&self, claims: &Claims) -> ApiResult<bool> {
        let mut keys = vec![token_key(&claims.jti)];
        if let Some(family) = &claims.fam {
            keys.push(family_key(family));
        }
        Ok(self.list.any_denied(&keys).await?)
    }
}
