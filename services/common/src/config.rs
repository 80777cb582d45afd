//! Configuration shared by every role, read from flags or `POS_*` environment variables
//! (flags win). Each role's command composes the groups it needs.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Log line format.
    #[arg(
        long,
        env = "POS_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: postgres://user@host/db or sqlite://path/file.db.
    #[arg(long, env = "POS_DATABASE_URL")]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct EphemeralArgs {
    /// Redis URL for shared ephemeral state; in-memory (single process only) when unset.
    #[arg(long, env = "POS_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this process writes.
    #[arg(long, env = "POS_REDIS_KEY_PREFIX", default_value = "pos")]
    pub redis_key_prefix: String,
}

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// JWKS file (`{"keys":[...]}`) with the Ed25519 public keys that verify tokens.
    #[arg(long, env = "POS_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,
    /// Public keys retired from signing but still accepted until their tokens expire (key
    /// rotation). The user role publishes them beside its current key.
    #[arg(long, env = "POS_PREVIOUS_JWKS_FILE")]
    pub previous_jwks_file: Option<PathBuf>,
    /// Expected `iss` claim.
    #[arg(long, env = "POS_JWT_ISSUER", default_value = crate::auth::DEFAULT_ISSUER)]
    pub jwt_issuer: String,
    /// Expected `aud` claim.
    #[arg(long, env = "POS_JWT_AUDIENCE", default_value = crate::auth::DEFAULT_AUDIENCE)]
    pub jwt_audience: String,
}
