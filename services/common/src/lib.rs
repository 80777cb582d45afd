//! Shared plumbing for every pos service: configuration, telemetry, the typed API error,
//! storage on PostgreSQL or SQLite, ephemeral state on Redis or in memory, and token
//! verification into a [`auth::Principal`], and health and reflection.

pub mod auth;
pub mod backend;
pub mod config;
pub mod domain;
pub mod ephemeral;
pub mod error;
pub mod introspection;
pub mod storage;
pub mod telemetry;
pub mod time;

pub use error::{ApiError, ApiResult, Reason};
