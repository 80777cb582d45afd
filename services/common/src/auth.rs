//! Tokens and who is calling. Tokens are EdDSA (Ed25519) JWTs with a `kid`; a
//! [`Verifier`] checks them against a JWKS and yields a [`Principal`], which
//! [`AuthLayer`] puts into each request's extensions for the handlers to authorize.

mod authenticator;
mod issuer;
mod keys;
mod layer;
mod principal;
mod remote;

pub use authenticator::{
    Authenticator, JwksSource, KeyCache, Revocations, StaticJwks, bearer_token,
};
pub use issuer::{
    ACCESS_TOKEN_TTL_SECS, DEVICE_TOKEN_TTL_SECS, SERVICE_TOKEN_TTL_SECS, TokenIssuer,
};
pub use keys::{Jwk, Jwks, SigningKey, Verifier};
pub use layer::{AuthLayer, AuthService};
pub use principal::{Claims, Principal, TokenType, role_not_allowed};
pub use remote::GrpcJwks;

/// Default `iss` claim of tokens issued by the user service.
pub const DEFAULT_ISSUER: &str = "pos-mesh";
/// Default `aud` claim.
pub const DEFAULT_AUDIENCE: &str = "pos-mesh";
