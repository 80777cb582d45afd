//! The aggregation batch (`pos batch`): which windows of days a run covers, where those
//! days begin in the stores' time zone, and when the jobs are scheduled — one table for
//! `pos up`'s in-process scheduler and the Kubernetes CronJobs alike.

pub mod driver;
pub mod jobs;
pub mod metrics;
pub mod rollup;
pub mod schedule;
pub mod scheduler;
pub mod stores;
pub mod windows;
pub mod zone;

pub use driver::{Batch, Method, Outcome, PlanError};
pub use jobs::{Aggregator, Report, RunError, WindowRun};
pub use metrics::Pushgateway;
pub use schedule::{Days, SCHEDULE, Scheduled};
pub use stores::{StoreDirectory, StoreRoleDirectory};
pub use windows::{Covered, Job, SETTLEMENT_DAYS, Stores, Term, Window, WindowError};
pub use zone::{TimeZone, ZoneError};
