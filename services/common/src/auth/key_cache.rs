//! The public keys that verify tokens, from where they are published (a file, our own
//! key in `pos up`, or the user role's GetJwks), refetched when a token names a key we do
//! not know (rotation) and every five minutes (withdrawal). Verified tokens are
//! remembered until they expire: the edge and then the service check every call's
//! token, and an Ed25519 verification costs far more than a lookup.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use moka::{Expiry, sync::Cache};
use tokio::sync::Mutex;

use super::{Claims, KeyError, Verifier};
use crate::{ApiError, ApiResult};

/// Why the key source could not give us keys.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    #[error("the key source is unreachable")]
    Unreachable(#[source] tonic::Status),
    #[error("the key source did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("the key source published a key that does not decode")]
    Undecodable(#[source] serde_json::Error),
    #[error("the key source published an unusable key set")]
    Unusable(#[source] KeyError),
}

/// Where the public keys come from.
#[async_trait]
pub trait JwksSource: Send + Sync + 'static {
    async fn fetch(&self) -> Result<JwkSet, KeySourceError>;
}

/// A fixed key set (a file, or our own key).
pub struct StaticJwks(pub JwkSet);

#[async_trait]
impl JwksSource for StaticJwks {
    async fn fetch(&self) -> Result<JwkSet, KeySourceError> {
        Ok(self.0.clone())
    }
}

/// Refetching more often than this on unknown `kid`s would let garbage tokens hammer the
/// key source.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// Keys are refetched at least this often, so a key withdrawn at the source (a
/// compromised one) stops verifying within this time.
const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// How many verified tokens are remembered.
const VERIFIED_CAPACITY: u64 = 16_384;
/// How long fetching the keys may take before the calls waiting on it go on without.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Forgets a verified token when it expires.
struct UntilTokenExpiry;

impl Expiry<String, Claims> for UntilTokenExpiry {
    fn expire_after_create(&self, _: &String, claims: &Claims, _: Instant) -> Option<Duration> {
        let left = claims.exp.saturating_sub(chrono::Utc::now().timestamp());
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

type Outcome = Result<(), Arc<KeySourceError>>;

pub struct KeyCache {
    source: Arc<dyn JwksSource>,
    issuer: String,
    audience: String,
    verifier: RwLock<Arc<Verifier>>,
    /// When the keys were last fetched, and how that fetch went.
    last_fetch: Mutex<Option<(Instant, Outcome)>>,
    /// When the keys were last loaded successfully.
    loaded_at: std::sync::Mutex<Option<Instant>>,
    verified: Cache<String, Claims>,
}

impl KeyCache {
    /// Starts with whatever the source has now; an unreachable source is retried later.
    pub async fn new(source: Arc<dyn JwksSource>, issuer: &str, audience: &str) -> Self {
        let empty = Verifier::new(&JwkSet { keys: Vec::new() }, issuer, audience)
            .expect("an empty key set is valid");
        let cache = Self {
            source,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            verifier: RwLock::new(Arc::new(empty)),
            last_fetch: Mutex::new(None),
            loaded_at: std::sync::Mutex::new(None),
            verified: Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .expire_after(UntilTokenExpiry)
                .build(),
        };
        if let Err(err) = cache.load().await {
            tracing::warn!(error = %err, "cannot fetch the token keys yet; will retry on first use");
        }
        cache
    }

    pub(crate) fn current(&self) -> Arc<Verifier> {
        self.verifier
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Refetches, at most once per interval; within it the last answer stands. Waits for
    /// a refetch already under way.
    async fn refresh(&self) -> Outcome {
        let last = self.last_fetch.lock().await;
        self.refresh_holding(last).await
    }

    /// The periodic refetch: when another call is already at it, this one goes on with
    /// the keys it has instead of waiting.
    async fn refresh_unless_under_way(&self) {
        let Ok(last) = self.last_fetch.try_lock() else {
            return;
        };
        if let Err(err) = self.refresh_holding(last).await {
            tracing::warn!(error = %err, "cannot refresh the token keys; using the ones we have");
        }
    }

    async fn refresh_holding(
        &self,
        mut last: tokio::sync::MutexGuard<'_, Option<(Instant, Outcome)>>,
    ) -> Outcome {
        if let Some((at, outcome)) = last.as_ref()
            && at.elapsed() < MIN_REFETCH_INTERVAL
        {
            return outcome.clone();
        }
        let outcome = self.load().await.map_err(Arc::new);
        *last = Some((Instant::now(), outcome.clone()));
        outcome
    }

    async fn load(&self) -> Result<(), KeySourceError> {
        let jwks = tokio::time::timeout(FETCH_TIMEOUT, self.source.fetch())
            .await
            .map_err(|_| KeySourceError::TimedOut(FETCH_TIMEOUT))??;
        let verifier =
            Verifier::new(&jwks, &self.issuer, &self.audience).map_err(KeySourceError::Unusable)?;
        *self
            .verifier
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(verifier);
        self.verified.invalidate_all();
        *self.loaded_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(())
    }

    fn stale(&self) -> bool {
        self.loaded_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|at| at.elapsed() > REFRESH_EVERY)
    }

    /// Verifies a token, refetching the keys once if it names a key we do not know.
    pub async fn verify(&self, token: &str) -> ApiResult<Claims> {
        if self.stale() {
            self.refresh_unless_under_way().await;
        }
        if let Some(claims) = self.verified.get(token)
            // The memory can outlive the token by a moment; an expired one is verified
            // in full (and refused).
            && claims.exp > chrono::Utc::now().timestamp()
        {
            return Ok(claims);
        }
        let mut verifier = self.current();
        if verifier.knows_key_of(token) == Some(false) {
            if let Err(err) = self.refresh().await {
                // We cannot tell a forged key id from a new key we failed to fetch.
                if self.current().knows_key_of(token) == Some(false) {
                    return Err(ApiError::unavailable("token keys", err));
                }
            }
            verifier = self.current();
        }
        let claims = verifier.verify(token)?;
        self.verified.insert(token.to_string(), claims.clone());
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Reason,
        auth::{SigningKey, TokenIssuer},
        domain::UserId,
    };

    pub(crate) struct Rotating(pub std::sync::Mutex<JwkSet>);

    #[async_trait]
    impl JwksSource for Rotating {
        async fn fetch(&self) -> Result<JwkSet, KeySourceError> {
            Ok(self.0.lock().expect("lock").clone())
        }
    }

    struct Down;

    #[async_trait]
    impl JwksSource for Down {
        async fn fetch(&self) -> Result<JwkSet, KeySourceError> {
            Err(KeySourceError::Unreachable(tonic::Status::unavailable(
                "connection refused",
            )))
        }
    }

    #[tokio::test]
    async fn an_unreachable_key_source_is_unavailable_not_invalid() {
        let issuer = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        let keys = KeyCache::new(Arc::new(Down), "i", "a").await;
        let err = keys
            .verify(&issuer.owner_access(UserId::from_stored(1), None, 60))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Reason::DependencyUnavailable);
        // A token that is not even a JWT is still simply invalid.
        assert_eq!(
            keys.verify("junk").await.unwrap_err().reason(),
            Reason::TokenInvalid
        );
    }

    #[tokio::test]
    async fn a_withdrawn_key_stops_verifying_once_the_keys_reload() {
        let old = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        let new = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        let source = Arc::new(Rotating(std::sync::Mutex::new(old.jwks())));
        let keys = KeyCache::new(source.clone(), "i", "a").await;
        let token = old.owner_access(UserId::from_stored(1), None, 60);
        keys.verify(&token).await.expect("verified and remembered");

        *source.0.lock().expect("lock") = new.jwks();
        keys.load().await.expect("reload");
        assert_eq!(
            keys.verify(&token).await.unwrap_err().reason(),
            Reason::TokenInvalid,
            "the remembered verification went with the old keys"
        );
        keys.verify(&new.owner_access(UserId::from_stored(1), None, 60))
            .await
            .expect("the new key verifies");
    }
}
