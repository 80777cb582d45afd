//! Turns a bearer token into a [`Principal`]. Three checks, each of which can run once per
//! call: the signature (cheap after the first time, see [`KeyCache`]), the deny-list of
//! revoked logins (one lookup in the shared state), and a tablet's current credential
//! (asked of the store role). The edge runs all three (the tablet check not for the RPCs
//! whose policy leaves it to the service: PlaceOrder, checked with its stock
//! reservation, so a handler must never act on a tablet before that); a service behind the edge only
//! re-verifies the signature when the edge vouches for the call (see
//! [`EDGE_ATTESTATION`]), and runs all three for calls that did not come through it.

use std::sync::Arc;

use super::{Claims, DeviceCredentials, KeyCache, Principal, Revocations, TokenType, check_device};
use crate::{ApiError, ApiResult, Reason};

/// The header the edge adds to every call it forwards, holding a short-lived service
/// token of its own: "the edge has checked revocation and the tablet credential of this
/// call". The edge strips every client-supplied `x-pos-*` header first, and a client holds
/// no key that signs service tokens, so a client cannot forge it. (Roles inside the mesh
/// that hold such a key could; see the README's known limits.)
pub const EDGE_ATTESTATION: &str = "x-pos-edge";

/// The name service tokens of the edge carry.
pub const EDGE_ROLE: &str = "edge";

/// Which checks a call still needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Signature, revocation and tablet credential: a call straight to a service.
    Full,
    /// Signature only: the edge already checked the rest.
    VouchedByEdge,
}

#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<KeyCache>,
    /// When set, service tokens are accepted only from these keys, and these keys sign
    /// nothing else: whoever holds a service key (the edge) cannot mint owner tokens.
    service_keys: Option<Arc<KeyCache>>,
    revocations: Option<Revocations>,
    devices: Option<Arc<dyn DeviceCredentials>>,
}

impl Authenticator {
    /// Signature checks only, until revocations and device credentials are added.
    pub fn new(keys: Arc<KeyCache>) -> Self {
        Self {
            keys,
            service_keys: None,
            revocations: None,
            devices: None,
        }
    }

    /// Refuses revoked access tokens (the deny-list in the shared state).
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Refuses tablet tokens whose credential was rotated or revoked.
    pub fn with_devices(mut self, devices: Arc<dyn DeviceCredentials>) -> Self {
        self.devices = Some(devices);
        self
    }

    /// Accepts service tokens only when signed by `service_keys`.
    pub fn with_service_keys(mut self, service_keys: Arc<KeyCache>) -> Self {
        self.service_keys = Some(service_keys);
        self
    }

    pub fn keys(&self) -> &Arc<KeyCache> {
        &self.keys
    }

    /// Signature, expiry and token type; no lookups.
    pub async fn verify(&self, token: &str) -> ApiResult<(Principal, Claims)> {
        let claims = self.verify_claims(token).await?;
        let principal = Principal::from_claims(&claims)?;
        Ok((principal, claims))
    }

    async fn verify_claims(&self, token: &str) -> ApiResult<Claims> {
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

    /// `TOKEN_REVOKED` for an access token whose login (or itself) was revoked.
    pub async fn check_revocation(&self, claims: &Claims) -> ApiResult<()> {
        if claims.typ == TokenType::Access
            && let Some(revocations) = &self.revocations
            && revocations.is_revoked(claims).await?
        {
            return Err(ApiError::new(
                Reason::TokenRevoked,
                "this token was revoked",
            ));
        }
        Ok(())
    }

    /// `TOKEN_REVOKED` for a tablet token that is no longer the tablet's credential.
    pub async fn check_device(&self, principal: &Principal) -> ApiResult<()> {
        if let (Principal::Device(caller), Some(devices)) = (principal, &self.devices) {
            check_device(devices.as_ref(), caller).await?;
        }
        Ok(())
    }

    /// Verifies the token and runs the checks the call still needs.
    pub async fn authenticate(
        &self,
        token: &str,
        checks: Checks,
    ) -> ApiResult<(Principal, Claims)> {
        let (principal, claims) = self.verify(token).await?;
        if checks == Checks::Full {
            self.check_revocation(&claims).await?;
            self.check_device(&principal).await?;
        }
        Ok((principal, claims))
    }

    /// Whether `attestation` is a valid service token of the edge.
    pub async fn vouched_by_edge(&self, attestation: &str) -> bool {
        matches!(
            self.verify(attestation).await,
            Ok((Principal::Service { role }, _)) if role == EDGE_ROLE
        )
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::{
        auth::{DeviceCredential, SigningKey, StaticJwks, TokenIssuer},
        clock,
        domain::{DeviceId, StoreId, UserId},
        ephemeral::{EphemeralResult, EphemeralStore, MemoryStore},
    };

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a")
    }

    async fn keys_of(issuer: &TokenIssuer) -> Arc<KeyCache> {
        Arc::new(KeyCache::new(Arc::new(StaticJwks(issuer.jwks())), "i", "a").await)
    }

    fn owner(id: i64) -> UserId {
        UserId::from_stored(id)
    }

    #[tokio::test]
    async fn service_keys_sign_service_tokens_only_and_only_they_do() {
        let users = issuer();
        let services = issuer();
        let auth =
            Authenticator::new(keys_of(&users).await).with_service_keys(keys_of(&services).await);
        let store = Some(StoreId::from_stored(1));

        assert!(auth.verify(&services.service("edge")).await.is_ok());
        assert!(
            auth.verify(&users.owner_access(owner(1), store, 60))
                .await
                .is_ok()
        );
        for forged in [
            services.owner_access(owner(1), store, 60),
            users.service("edge"),
        ] {
            assert_eq!(
                auth.verify(&forged).await.unwrap_err().reason(),
                Reason::TokenInvalid
            );
        }
        assert!(auth.vouched_by_edge(&services.service("edge")).await);
        assert!(!auth.vouched_by_edge(&services.service("user")).await);
        assert!(!auth.vouched_by_edge(&users.service("edge")).await);
    }

    /// Counts lookups, to prove each check costs one.
    struct Counting {
        inner: MemoryStore,
        lookups: AtomicUsize,
    }

    #[async_trait]
    impl EphemeralStore for Counting {
        async fn get(&self, key: &str) -> EphemeralResult<Option<String>> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.inner.get(key).await
        }
        async fn set(
            &self,
            key: &str,
            value: &str,
            ttl: std::time::Duration,
        ) -> EphemeralResult<()> {
            self.inner.set(key, value, ttl).await
        }
        async fn set_if_absent(
            &self,
            key: &str,
            value: &str,
            ttl: std::time::Duration,
        ) -> EphemeralResult<bool> {
            self.inner.set_if_absent(key, value, ttl).await
        }
        async fn increment(
            &self,
            key: &str,
            by: i64,
            ttl: std::time::Duration,
        ) -> EphemeralResult<i64> {
            self.inner.increment(key, by, ttl).await
        }
        async fn delete(&self, key: &str) -> EphemeralResult<bool> {
            self.inner.delete(key).await
        }
        async fn compare_and_swap(
            &self,
            key: &str,
            expected: &str,
            new: &str,
            ttl: std::time::Duration,
        ) -> EphemeralResult<bool> {
            self.inner.compare_and_swap(key, expected, new, ttl).await
        }
        async fn exists_any(&self, keys: &[String]) -> EphemeralResult<bool> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.inner.exists_any(keys).await
        }
    }

    struct OneTablet {
        current: DeviceCredential,
        asked: AtomicUsize,
    }

    #[async_trait]
    impl DeviceCredentials for OneTablet {
        async fn current(&self, _: StoreId, _: DeviceId) -> ApiResult<Option<DeviceCredential>> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(Some(self.current))
        }
    }

    #[tokio::test]
    async fn revocation_is_one_lookup_and_vouched_calls_skip_it() {
        let issuer = issuer();
        let state = Arc::new(Counting {
            inner: MemoryStore::new(clock::system()),
            lookups: AtomicUsize::new(0),
        });
        let revocations = Revocations::new(state.clone());
        let tablet = Arc::new(OneTablet {
            current: DeviceCredential {
                version: 2,
                revoked: false,
            },
            asked: AtomicUsize::new(0),
        });
        let auth = Authenticator::new(keys_of(&issuer).await)
            .with_revocations(revocations.clone())
            .with_devices(tablet.clone());

        let mut claims = issuer.claims("1", TokenType::Access, 60);
        claims.fam = Some("login-1".into());
        let token = issuer.sign(&claims);
        auth.authenticate(&token, Checks::Full)
            .await
            .expect("valid");
        assert_eq!(
            state.lookups.load(Ordering::SeqCst),
            1,
            "token and login in one lookup"
        );
        auth.authenticate(&token, Checks::VouchedByEdge)
            .await
            .expect("valid");
        assert_eq!(
            state.lookups.load(Ordering::SeqCst),
            1,
            "the edge already looked"
        );

        revocations
            .deny_family("login-1", std::time::Duration::from_secs(60))
            .await
            .expect("deny");
        assert_eq!(
            auth.authenticate(&token, Checks::Full)
                .await
                .unwrap_err()
                .reason(),
            Reason::TokenRevoked
        );

        let store = StoreId::from_stored(1);
        let device = DeviceId::from_stored(9);
        let current = issuer.device(store, device, 2);
        let replaced = issuer.device(store, device, 1);
        auth.authenticate(&current, Checks::Full)
            .await
            .expect("current tablet");
        assert_eq!(
            auth.authenticate(&replaced, Checks::Full)
                .await
                .unwrap_err()
                .reason(),
            Reason::TokenRevoked
        );
        assert_eq!(tablet.asked.load(Ordering::SeqCst), 2);
        auth.authenticate(&replaced, Checks::VouchedByEdge)
            .await
            .expect("the edge answers for the credential");
        assert_eq!(tablet.asked.load(Ordering::SeqCst), 2, "not asked again");
    }

    #[tokio::test]
    async fn logout_denies_the_token_and_refresh_tokens_never_authorize() {
        let issuer = issuer();
        let revocations = Revocations::new(Arc::new(MemoryStore::new(clock::system())));
        let auth = Authenticator::new(keys_of(&issuer).await).with_revocations(revocations.clone());
        let token = issuer.owner_access(owner(1), Some(StoreId::from_stored(2)), 60);
        let (_, claims) = auth
            .authenticate(&token, Checks::Full)
            .await
            .expect("valid");
        revocations.deny(&claims).await.expect("deny");
        assert_eq!(
            auth.authenticate(&token, Checks::Full)
                .await
                .unwrap_err()
                .reason(),
            Reason::TokenRevoked
        );
        let refresh = issuer.sign(&issuer.claims("1", TokenType::Refresh, 60));
        assert_eq!(
            auth.authenticate(&refresh, Checks::Full)
                .await
                .unwrap_err()
                .reason(),
            Reason::WrongTokenType
        );
    }
}
