//! Async token checks shared by the edge and every service: signature against a JWKS that
//! is refetched when a token names an unknown `kid` (key rotation), and the deny-list of
//! logged-out access tokens.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::{Claims, Jwks, Principal, TokenType, Verifier};
use crate::{ApiError, ApiResult, Reason, ephemeral::SharedEphemeral};

/// Where the public keys come from: a file or our own key (`pos up`), or the user
/// service's GetJwks (Kubernetes).
#[async_trait]
pub trait JwksSource: Send + Sync + 'static {
    async fn fetch(&self) -> Result<Jwks, String>;
}

/// A fixed key set.
pub struct StaticJwks(pub Jwks);

#[async_trait]
impl JwksSource for StaticJwks {
    async fn fetch(&self) -> Result<Jwks, String> {
        Ok(self.0.clone())
    }
}

/// Refetching more often than this on unknown `kid`s would let garbage tokens hammer the
/// key source.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// Keys are refetched at least this often, so a key withdrawn at the source (a
/// compromised one) stops verifying within this time.
const REFRESH_EVERY: Duration = Duration::from_secs(300);

/// How many verified tokens [`KeyCache`] remembers.
const VERIFIED_CAPACITY: usize = 16_384;

/// The current verifier, refreshed from its source on an unknown `kid`. It remembers
/// tokens it verified: the edge and then the service check every call's token, and an
/// Ed25519 verification costs far more than the lookup (expiry is still checked on
/// every use; the memory is dropped whenever the keys change).
pub struct KeyCache {
    source: Arc<dyn JwksSource>,
    issuer: String,
    audience: String,
    verifier: RwLock<Arc<Verifier>>,
    /// When the keys were last fetched, and how that fetch went.
    last_fetch: Mutex<Option<(Instant, Result<(), String>)>>,
    /// When the keys were last loaded successfully.
    loaded_at: std::sync::Mutex<Option<Instant>>,
    verified: std::sync::Mutex<HashMap<String, Claims>>,
}

impl KeyCache {
    /// Starts with whatever the source has now; an unreachable source is retried later.
    pub async fn new(source: Arc<dyn JwksSource>, issuer: &str, audience: &str) -> Self {
        let empty =
            Verifier::new(&Jwks::default(), issuer, audience).expect("an empty key set is valid");
        let cache = Self {
            source,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            verifier: RwLock::new(Arc::new(empty)),
            last_fetch: Mutex::new(None),
            loaded_at: std::sync::Mutex::new(None),
            verified: std::sync::Mutex::new(HashMap::new()),
        };
        if let Err(err) = cache.load().await {
            tracing::warn!(%err, "cannot fetch the token keys yet; will retry on first use");
        }
        cache
    }

    pub(crate) fn current(&self) -> Arc<Verifier> {
        self.verifier
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Refetches because a token named an unknown key, at most once per interval.
    async fn refresh(&self) -> Result<(), String> {
        let mut last = self.last_fetch.lock().await;
        if let Some((at, outcome)) = last.as_ref()
            && at.elapsed() < MIN_REFETCH_INTERVAL
        {
            // Too soon to ask again: the last answer stands.
            return outcome.clone();
        }
        let outcome = self.load().await;
        *last = Some((Instant::now(), outcome.clone()));
        outcome
    }

    async fn load(&self) -> Result<(), String> {
        let jwks = self.source.fetch().await?;
        let verifier = Verifier::new(&jwks, &self.issuer, &self.audience)?;
        *self
            .verifier
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(verifier);
        self.remembered().clear();
        *self.loaded_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(())
    }

    fn stale(&self) -> bool {
        self.loaded_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|at| at.elapsed() > REFRESH_EVERY)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<String, Claims>> {
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn recall(&self, token: &str) -> Option<Claims> {
        let claims = self.remembered().get(token).cloned()?;
        // Past its expiry a remembered token goes through full verification (and fails).
        (claims.exp > chrono::Utc::now().timestamp()).then_some(claims)
    }

    fn remember(&self, token: &str, claims: &Claims) {
        let mut verified = self.remembered();
        if verified.len() >= VERIFIED_CAPACITY {
            let now = chrono::Utc::now().timestamp();
            verified.retain(|_, c| c.exp > now);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(token.to_string(), claims.clone());
    }

    /// Verifies a token, refetching the keys once if it names a key we do not know.
    pub async fn verify(&self, token: &str) -> ApiResult<Claims> {
        if self.stale()
            && let Err(err) = self.refresh().await
        {
            tracing::warn!(%err, "cannot refresh the token keys; using the ones we have");
        }
        if let Some(claims) = self.recall(token) {
            return Ok(claims);
        }
        let mut verifier = self.current();
        if verifier.knows_key_of(token) == Some(false) {
            if let Err(err) = self.refresh().await {
                // We cannot tell a forged key id from a new key we failed to fetch.
                tracing::warn!(%err, "cannot refresh the token keys");
                if self.current().knows_key_of(token) == Some(false) {
                    return Err(ApiError::unavailable("token keys", err));
                }
            }
            verifier = self.current();
        }
        let claims = verifier.verify(token)?;
        self.remember(token, &claims);
        Ok(claims)
    }
}

/// Access tokens revoked before they expire: one token (its `jti`, at logout) or every
/// token of a login (its refresh family `fam`, at logout or when refresh reuse is caught).
#[derive(Clone)]
pub struct Revocations {
    store: SharedEphemeral,
}

impl Revocations {
    pub fn new(store: SharedEphemeral) -> Self {
        Self { store }
    }

    fn key(jti: &str) -> String {
        format!("denied-jti:{jti}")
    }

    /// Denies the token until its own expiry (after which it is refused anyway).
    pub async fn deny(&self, claims: &Claims) -> ApiResult<()> {
        let remaining = claims.exp - chrono::Utc::now().timestamp();
        if remaining > 0 {
            let ttl = Duration::from_secs(remaining.unsigned_abs() + 5);
            self.store.set(&Self::key(&claims.jti), "1", ttl).await?;
        }
        Ok(())
    }

    /// Revokes every access token of a login for as long as any of them can live.
    pub async fn deny_family(&self, family: &str, access_lifetime: Duration) -> ApiResult<()> {
        self.store
            .set(
                &format!("denied-family:{family}"),
                "1",
                access_lifetime + Duration::from_secs(5),
            )
            .await?;
        Ok(())
    }

    pub async fn is_denied(&self, claims: &Claims) -> ApiResult<bool> {
        if self.store.get(&Self::key(&claims.jti)).await?.is_some() {
            return Ok(true);
        }
        match &claims.fam {
            Some(family) => Ok(self
                .store
                .get(&format!("denied-family:{family}"))
                .await?
                .is_some()),
            None => Ok(false),
        }
    }
}

/// Turns a bearer token into a principal: signature, expiry, type, deny-list.
#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<KeyCache>,
    /// When set, service tokens are accepted only from these keys, and these keys sign
    /// nothing else: whoever holds a service key (the edge) cannot mint owner tokens.
    service_keys: Option<Arc<KeyCache>>,
    revocations: Option<Revocations>,
}

impl Authenticator {
    /// `revocations` is absent where no shared state is configured; the edge always has it.
    pub fn new(keys: Arc<KeyCache>, revocations: Option<Revocations>) -> Self {
        Self {
            keys,
            service_keys: None,
            revocations,
        }
    }

    /// Accepts service tokens only when signed by `service_keys`.
    pub fn with_service_keys(mut self, service_keys: Arc<KeyCache>) -> Self {
        self.service_keys = Some(service_keys);
        self
    }

    async fn verify(&self, token: &str) -> ApiResult<Claims> {
        let Some(service_keys) = &self.service_keys else {
            return self.keys.verify(token).await;
        };
        let misused =
            |why: &str| ApiError::new(Reason::TokenInvalid, format!("token invalid: {why}"));
        if service_keys.current().knows_key_of(token) == Some(true) {
            let claims = service_keys.verify(token).await?;
            if claims.typ != TokenType::Service {
                return Err(misused("a service key signs service tokens only"));
            }
            return Ok(claims);
        }
        let claims = self.keys.verify(token).await?;
        if claims.typ == TokenType::Service {
            return Err(misused("service tokens must be signed by a service key"));
        }
        Ok(claims)
    }

    /// Verifies the token and returns who it names, with its claims.
    pub async fn authenticate(&self, token: &str) -> ApiResult<(Principal, Claims)> {
        let claims = self.verify(token).await?;
        let principal = Principal::from_claims(&claims)?;
        if claims.typ == TokenType::Access
            && let Some(revocations) = &self.revocations
            && revocations.is_denied(&claims).await?
        {
            return Err(ApiError::new(
                Reason::TokenRevoked,
                "this token was revoked",
            ));
        }
        Ok((principal, claims))
    }

    pub fn keys(&self) -> &Arc<KeyCache> {
        &self.keys
    }
}

/// Reads `authorization: Bearer <token>`: `None` when absent, an error when malformed.
pub fn bearer_token(headers: &http::HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let header = value
        .to_str()
        .map_err(|_| ApiError::new(Reason::TokenInvalid, "token invalid: not ASCII"))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::new(Reason::TokenInvalid, "token invalid: not a Bearer token"))?
        .trim();
    if token.is_empty() {
        return Ok(None);
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::{SigningKey, TokenIssuer},
        ephemeral::MemoryStore,
    };

    struct Rotating(std::sync::Mutex<Jwks>);

    #[async_trait]
    impl JwksSource for Rotating {
        async fn fetch(&self) -> Result<Jwks, String> {
            Ok(self.0.lock().expect("lock").clone())
        }
    }

    struct Down;

    #[async_trait]
    impl JwksSource for Down {
        async fn fetch(&self) -> Result<Jwks, String> {
            Err("connection refused".into())
        }
    }

    #[tokio::test]
    async fn an_unreachable_key_source_is_unavailable_not_invalid() {
        let issuer = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        let keys = KeyCache::new(Arc::new(Down), "i", "a").await;
        let err = keys
            .verify(&issuer.owner_access(1, None, 60))
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
    async fn service_keys_sign_service_tokens_only_and_only_they_do() {
        let users = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        let services = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        let keys = Arc::new(KeyCache::new(Arc::new(StaticJwks(users.jwks())), "i", "a").await);
        let service_keys =
            Arc::new(KeyCache::new(Arc::new(StaticJwks(services.jwks())), "i", "a").await);
        let auth = Authenticator::new(keys, None).with_service_keys(service_keys);

        assert!(auth.authenticate(&services.service("edge")).await.is_ok());
        assert!(
            auth.authenticate(&users.owner_access(1, Some(1), 60))
                .await
                .is_ok()
        );
        for forged in [services.owner_access(1, Some(1), 60), users.service("edge")] {
            assert_eq!(
                auth.authenticate(&forged).await.unwrap_err().reason(),
                Reason::TokenInvalid
            );
        }
    }

    #[tokio::test]
    async fn unknown_kid_triggers_one_refetch_and_logout_denies_access() {
        let old = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        let new = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        let source = Arc::new(Rotating(std::sync::Mutex::new(old.jwks())));
        let keys = Arc::new(KeyCache::new(source.clone(), "i", "a").await);
        let revocations = Revocations::new(Arc::new(MemoryStore::new()));
        let auth = Authenticator::new(keys, Some(revocations.clone()));

        let token = old.owner_access(1, Some(2), 60);
        assert!(auth.authenticate(&token).await.is_ok());
        // The key set rotates: a token of the new key is accepted after one refetch.
        let mut both = old.jwks();
        both.keys.extend(new.jwks().keys);
        *source.0.lock().expect("lock") = both;
        assert!(
            auth.authenticate(&new.owner_access(1, Some(2), 60))
                .await
                .is_ok()
        );

        let (_, claims) = auth.authenticate(&token).await.expect("valid");
        revocations.deny(&claims).await.expect("deny");
        let err = auth.authenticate(&token).await.unwrap_err();
        assert_eq!(err.reason(), Reason::TokenRevoked);
        let refresh = old.sign(&old.claims("1", TokenType::Refresh, 60));
        assert_eq!(
            auth.authenticate(&refresh).await.unwrap_err().reason(),
            Reason::WrongTokenType
        );
    }
}
