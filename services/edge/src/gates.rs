//! The edge's gates, in pipeline order.

mod authenticate;
mod classify;
mod deadline;
mod rate_limit;
mod strip;

pub use authenticate::{Authenticate, CurrentDevice};
pub use classify::Classify;
pub use deadline::{DefaultDeadline, parse_grpc_timeout};
pub use rate_limit::RateLimit;
pub use strip::StripInternalMetadata;
