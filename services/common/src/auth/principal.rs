//! Token claims and the principal they name.

use serde::{Deserialize, Serialize};
use tonic::Request;

use crate::{
    ApiError, ApiResult, Reason,
    domain::{DeviceId, StoreId, UserId},
};

/// The `typ` claim: what a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// An owner's short-lived API token.
    Access,
    /// Only for RefreshTokens / Logout; never accepted as a bearer token.
    Refresh,
    /// An ordering tablet's credential.
    Device,
    /// A role of this system calling another role's internal API; `sub` (and `role`)
    /// name the role.
    Service,
}

/// JWT claims: iss, aud, sub, exp, iat, jti, typ, role, and what the token is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub typ: TokenType,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<i64>,
    /// Device credential version; older versions are revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<i64>,
    /// Refresh token family: every rotation of one login shares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
}

impl Claims {
    /// The verified claims attached by [`super::AuthLayer`], or `TOKEN_MISSING`.
    pub fn of<T>(request: &Request<T>) -> ApiResult<&Claims> {
        request
            .extensions()
            .get::<Claims>()
            .ok_or_else(|| ApiError::new(Reason::TokenMissing, "authorization token missing"))
    }

    /// Claims for `sub` of the given type, valid for `ttl_secs` from now (negative: already expired).
    pub fn new(iss: &str, aud: &str, sub: &str, typ: TokenType, ttl_secs: i64) -> Self {
        let now = chrono::Utc::now().timestamp();
        let role = match typ {
            TokenType::Access | TokenType::Refresh => "owner",
            TokenType::Device => "device",
            TokenType::Service => "service",
        };
        Self {
            iss: iss.into(),
            aud: aud.into(),
            sub: sub.into(),
            exp: now.saturating_add(ttl_secs),
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            typ,
            role: role.into(),
            store_id: None,
            device_id: None,
            ver: None,
            fam: None,
        }
    }

    pub fn with_store(mut self, store_id: StoreId) -> Self {
        self.store_id = Some(store_id.get());
        self
    }

    pub fn with_device(mut self, device_id: DeviceId, credential_version: i64) -> Self {
        self.device_id = Some(device_id.get());
        self.ver = Some(credential_version);
        self
    }
}

/// A tablet, as its token names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCaller {
    pub store_id: StoreId,
    pub device_id: DeviceId,
    pub credential_version: i64,
}

/// Who is calling, as proven by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A restaurant owner; `store_id` is absent until signup created the store.
    Owner {
        user_id: UserId,
        store_id: Option<StoreId>,
    },
    /// An ordering tablet of one store.
    Device(DeviceCaller),
    /// Another role of this system, by name (`user`, `trade`, `edge`, ...).
    Service { role: String },
}

impl Principal {
    pub fn from_claims(claims: &Claims) -> ApiResult<Self> {
        let invalid = || ApiError::new(Reason::TokenInvalid, "token invalid: malformed claims");
        let id = |raw: Option<i64>| raw.filter(|id| *id > 0).ok_or_else(invalid);
        match claims.typ {
            TokenType::Access => Ok(Principal::Owner {
                user_id: UserId::parse(claims.sub.parse().map_err(|_| invalid())?)
                    .map_err(|_| invalid())?,
                store_id: claims
                    .store_id
                    .map(|raw| StoreId::parse(raw).map_err(|_| invalid()))
                    .transpose()?,
            }),
            TokenType::Device => Ok(Principal::Device(DeviceCaller {
                store_id: StoreId::from_stored(id(claims.store_id)?),
                device_id: DeviceId::from_stored(id(claims.device_id)?),
                credential_version: claims.ver.ok_or_else(invalid)?,
            })),
            TokenType::Service if !claims.sub.is_empty() => Ok(Principal::Service {
                role: claims.sub.clone(),
            }),
            TokenType::Service => Err(invalid()),
            TokenType::Refresh => Err(ApiError::new(
                Reason::WrongTokenType,
                "a refresh token cannot authorize calls",
            )),
        }
    }

    /// The principal attached by [`super::AuthLayer`], or `TOKEN_MISSING`.
    pub fn of<T>(request: &Request<T>) -> ApiResult<&Principal> {
        request
            .extensions()
            .get::<Principal>()
            .ok_or_else(|| ApiError::new(Reason::TokenMissing, "authorization token missing"))
    }

    /// The owner's user id and the store id their token names (absent before signup).
    pub fn require_owner(&self) -> ApiResult<(UserId, Option<StoreId>)> {
        match self {
            Principal::Owner { user_id, store_id } => Ok((*user_id, *store_id)),
            _ => Err(role_not_allowed("an owner")),
        }
    }

    /// The calling tablet.
    pub fn require_device(&self) -> ApiResult<DeviceCaller> {
        match self {
            Principal::Device(device) => Ok(*device),
            _ => Err(role_not_allowed("a tablet")),
        }
    }

    /// Succeeds only for one of the named roles of this system: internal APIs name who
    /// may call each of their RPCs.
    pub fn require_service(&self, allowed: &[&str]) -> ApiResult<()> {
        match self {
            Principal::Service { role } if allowed.contains(&role.as_str()) => Ok(()),
            Principal::Service { role } => Err(ApiError::new(
                Reason::RoleNotAllowed,
                format!(
                    "the {role} role may not call this; only {}",
                    allowed.join(", ")
                ),
            )),
            _ => Err(internal_only()),
        }
    }
}

/// A call to an internal API without a service token.
pub fn internal_only() -> ApiError {
    ApiError::new(Reason::InternalOnly, "this API is internal to the system")
}

/// A valid token of the wrong role (a tablet calling an owner RPC, or the reverse).
pub fn role_not_allowed(expected: &str) -> ApiError {
    ApiError::new(
        Reason::RoleNotAllowed,
        format!("only {expected} may call this"),
    )
}
