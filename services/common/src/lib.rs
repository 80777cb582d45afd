//! Shared plumbing for every role: the typed API error, domain ids and values shared
//! between services, the clock, opening a database, ephemeral state on Redis or in
//! memory, token verification into a [`auth::Principal`], reaching other roles, health
//! and reflection, the framing check of requests, telemetry, Prometheus metrics, the process's
//! [`stopping::Stopping`] signal, and the [`role::Role`] every service crate exports.

pub mod aggregation;
pub mod auth;
pub mod clock;
pub mod domain;
pub mod ephemeral;
pub mod error;
pub mod events;
pub mod framing;
pub mod introspection;
pub mod metrics;
pub mod paging;
pub mod peer;
pub mod readiness;
pub mod role;
pub mod stopping;
pub mod storage;
pub mod telemetry;
pub mod time;

pub use error::{ApiError, ApiResult, Reason};
