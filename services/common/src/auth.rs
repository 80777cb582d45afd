//! Tokens and who is calling. Tokens are EdDSA (Ed25519) JWTs with a `kid`; a
//! [`Verifier`] checks them against a JWKS and yields a [`Principal`], which
//! [`AuthInterceptor`] puts into each request's extensions for the handlers to authorize.

mod issuer;
mod keys;
mod principal;

pub use issuer::{
    ACCESS_TOKEN_TTL_SECS, DEVICE_TOKEN_TTL_SECS, SERVICE_TOKEN_TTL_SECS, TokenIssuer,
};
pub use keys::{Jwk, Jwks, SigningKey, Verifier};
pub use principal::{AuthInterceptor, Claims, Principal, TokenType};

/// Default `iss` claim of tokens issued by the user service.
pub const DEFAULT_ISSUER: &str = "pos-mesh";
/// Default `aud` claim.
pub const DEFAULT_AUDIENCE: &str = "pos-mesh";
