//! Tokens and who is calling. Tokens are EdDSA (Ed25519) JWTs with a `kid`; an
//! [`Authenticator`] checks them against the published keys, the deny-list and the
//! tablets' credentials and yields a [`Principal`], which [`AuthLayer`] puts into each
//! request's extensions for the handlers to authorize.

mod authenticator;
mod devices;
mod issuer;
mod key_cache;
mod keys;
mod layer;
mod principal;
mod remote;
mod revocations;

pub use authenticator::{Authenticator, Checks, EDGE_ATTESTATION, EDGE_ROLE, bearer_token};
pub use devices::{
    DeviceCredential, DeviceCredentials, StoreDeviceCredentials, check_device, is_current,
};
pub use issuer::{
    ACCESS_TOKEN_TTL_SECS, DEVICE_TOKEN_TTL_SECS, SERVICE_TOKEN_TTL_SECS, TokenIssuer,
};
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use key_cache::{JwksSource, KeyCache, KeySourceError, StaticJwks};
pub use keys::{CLOCK_LEEWAY_SECS, KeyError, SigningKey, Verifier, read_jwks};
pub use layer::{AuthLayer, AuthService};
pub use principal::{Claims, DeviceCaller, Principal, TokenType, internal_only, role_not_allowed};
pub use remote::{GrpcJwks, jwk_from_proto, jwk_to_proto};
pub use revocations::{DenyList, DenyListError, Revocations};

/// Default `iss` claim of tokens issued by the user service.
pub const DEFAULT_ISSUER: &str = "pos-mesh";
/// Default `aud` claim.
pub const DEFAULT_AUDIENCE: &str = "pos-mesh";
