//! Owner token pairs. A login starts a refresh *family*; the family remembers the one
//! refresh token id currently valid. Refreshing rotates it; presenting any older one
//! (a stolen token being replayed, or the thief's copy after the owner refreshed)
//! revokes the whole family. Every token of a login names its family (`fam`), access
//! tokens included, so revoking the family (Logout, or reuse caught) deny-lists each
//! access token of that login as well, wherever it is checked.

use std::{sync::Arc, time::Duration};

use pos_common::{
    ApiError, ApiResult, Reason,
    auth::{Claims, KeyCache, Revocations, TokenIssuer, TokenType},
    domain::{StoreId, UserId},
    ephemeral::SharedEphemeral,
};
use pos_proto::v1::TokenPair;

#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    pub access_secs: i64,
    pub refresh_secs: i64,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            access_secs: pos_common::auth::ACCESS_TOKEN_TTL_SECS,
            refresh_secs: 7 * 24 * 3600,
        }
    }
}

#[derive(Clone)]
pub struct Tokens {
    issuer: TokenIssuer,
    keys: Arc<KeyCache>,
    store: SharedEphemeral,
    revocations: Revocations,
    lifetimes: TokenLifetimes,
}

/// A verified refresh token that is its family's current one.
pub struct Rotation {
    pub user_id: UserId,
    pub family: String,
    pub next_refresh_id: String,
}

impl Tokens {
    pub fn new(
        issuer: TokenIssuer,
        keys: Arc<KeyCache>,
        store: SharedEphemeral,
        revocations: Revocations,
        lifetimes: TokenLifetimes,
    ) -> Self {
        Self {
            issuer,
            keys,
            revocations,
            store,
            lifetimes,
        }
    }

    fn family_key(family: &str) -> String {
        format!("refresh-family:{family}")
    }

    /// How long a revoked login stays deny-listed: as long as any access token of it can
    /// still be live. Access tokens are only minted while the family lives, so the
    /// longer of the two lifetimes covers every one of them, also those minted under an
    /// earlier, longer access lifetime or by a rotation racing with the revocation.
    fn revocation_lifetime(&self) -> Duration {
        let longest = self
            .lifetimes
            .access_secs
            .max(self.lifetimes.refresh_secs)
            .unsigned_abs();
        Duration::from_secs(longest)
    }

    fn family_ttl(&self) -> Duration {
        Duration::from_secs(self.lifetimes.refresh_secs.unsigned_abs())
    }

    /// A fresh login: a new family and a new pair.
    pub async fn login(&self, user_id: UserId, store_id: Option<StoreId>) -> ApiResult<TokenPair> {
        let family = uuid::Uuid::new_v4().to_string();
        let refresh_id = uuid::Uuid::new_v4().to_string();
        self.store
            .set(&Self::family_key(&family), &refresh_id, self.family_ttl())
            .await?;
        Ok(self.pair(user_id, store_id, &family, &refresh_id))
    }

    /// The pair for a family whose current refresh id is `refresh_id`.
    pub fn pair(
        &self,
        user_id: UserId,
        store_id: Option<StoreId>,
        family: &str,
        refresh_id: &str,
    ) -> TokenPair {
        let subject = user_id.to_string();
        let mut access =
            self.issuer
                .claims(&subject, TokenType::Access, self.lifetimes.access_secs);
        access.store_id = store_id.map(StoreId::get);
        access.fam = Some(family.to_string());
        let mut refresh =
            self.issuer
                .claims(&subject, TokenType::Refresh, self.lifetimes.refresh_secs);
        refresh.jti = refresh_id.to_string();
        refresh.fam = Some(family.to_string());
        TokenPair {
            access_token: self.issuer.sign(&access),
            refresh_token: self.issuer.sign(&refresh),
            access_expires_at: Some(expiry(access.exp)),
            refresh_expires_at: Some(expiry(refresh.exp)),
            token_type: "Bearer".into(),
        }
    }

    /// Verifies a refresh token: signature, expiry and type.
    async fn verify_refresh(&self, token: &str) -> ApiResult<(UserId, String, Claims)> {
        if token.is_empty() {
            return Err(ApiError::invalid("refresh_token", "required"));
        }
        let claims = self.keys.verify(token).await?;
        if claims.typ != TokenType::Refresh {
            return Err(ApiError::new(
                Reason::WrongTokenType,
                "this is not a refresh token",
            ));
        }
        let invalid = || ApiError::new(Reason::TokenInvalid, "token invalid: malformed claims");
        let user_id = claims
            .sub
            .parse::<i64>()
            .ok()
            .and_then(|id| UserId::parse(id).ok())
            .ok_or_else(invalid)?;
        let family = claims.fam.clone().ok_or_else(invalid)?;
        Ok((user_id, family, claims))
    }

    /// Moves the family on from this refresh token, or revokes the family if the token is
    /// not its current one (reuse).
    pub async fn rotate(&self, refresh_token: &str) -> ApiResult<Rotation> {
        let (user_id, family, claims) = self.verify_refresh(refresh_token).await?;
        let key = Self::family_key(&family);
        let revoked =
            || ApiError::new(Reason::TokenRevoked, "this login was revoked; log in again");
        let current = self.store.get(&key).await?.ok_or_else(revoked)?;
        let next_refresh_id = uuid::Uuid::new_v4().to_string();
        if current != claims.jti
            || !self
                .store
                .compare_and_swap(&key, &claims.jti, &next_refresh_id, self.family_ttl())
                .await?
        {
            // Reuse of a rotated token (or a lost race with a concurrent rotation of the
            // same token, which is reuse too): nobody keeps this login, neither the thief
            // nor the owner, and no access token minted for it works any more.
            self.revocations
                .deny_family(&family, self.revocation_lifetime())
                .await?;
            self.store.delete(&key).await?;
            tracing::warn!(
                user_id = user_id.get(),
                family,
                "refresh token reuse detected; family revoked"
            );
            return Err(ApiError::new(
                Reason::TokenRevoked,
                "refresh token reuse detected; every token of this login was revoked",
            ));
        }
        Ok(Rotation {
            user_id,
            family,
            next_refresh_id,
        })
    }

    /// Ends a login: the refresh family and the calling access token both stop working.
    pub async fn logout(
        &self,
        user_id: UserId,
        refresh_token: &str,
        access: &Claims,
    ) -> ApiResult<()> {
        let (owner, family, _) = self.verify_refresh(refresh_token).await?;
        if owner != user_id {
            // The caller is who they say; the token in the request is not theirs.
            return Err(ApiError::invalid(
                "refresh_token",
                "belongs to another owner's login",
            ));
        }
        self.store.delete(&Self::family_key(&family)).await?;
        self.revocations
            .deny_family(&family, self.revocation_lifetime())
            .await?;
        self.revocations.deny(access).await
    }
}

/// A token's `exp` (Unix seconds) on the wire.
fn expiry(exp: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: exp,
        nanos: 0,
    }
}
