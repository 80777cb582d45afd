//! Aggregation runs: the record every run leaves (job, term, window, shard, status, rows
//! read and written, times, error) and the lease a running run holds on its window, so
//! that the same window never runs twice at once while a crashed holder's lease expires.

use chrono::{DateTime, Utc};
use pos_common::{
    aggregation::{Job, Term, Window},
    domain::StoreId,
    storage::StorageError,
};

use crate::StorageResult;

/// An aggregation run's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub i64);

/// Which part of a window's stores a run covers: shard `index` of `count` (0 of 1 for
/// all), and of those one store only when an owner runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunScope {
    pub shard_index: u32,
    pub shard_count: u32,
    pub store: Option<StoreId>,
}

impl RunScope {
    pub const ALL: RunScope = RunScope {
        shard_index: 0,
        shard_count: 1,
        store: None,
    };

    /// The store column: 0 for every store.
    pub fn store_column(&self) -> i64 {
        self.store.map_or(0, |store| store.get())
    }
}

/// Which runs to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunFilter {
    /// Those that covered this store (its own, and those of every store or of its
    /// shard); every run when `None`.
    pub store: Option<StoreId>,
    pub job: Option<Job>,
    pub term: Option<Term>,
    /// Only runs older than this one (the next page after it).
    pub before: Option<RunId>,
    pub limit: u32,
}

impl RunFilter {
    /// The latest `limit` runs of every kind.
    pub fn latest(limit: u32) -> Self {
        Self {
            store: None,
            job: None,
            term: None,
            before: None,
            limit,
        }
    }
}

/// A run about to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRun {
    pub job: Job,
    pub term: Term,
    pub window: Window,
    pub scope: RunScope,
    pub started_at: DateTime<Utc>,
    /// How long its lease on the window lasts unless renewed.
    pub lease_until: DateTime<Utc>,
}

/// How starting a run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begun {
    /// It holds the window's lease.
    Started(RunId),
    /// Another run holds the lease until then; this one is recorded as failed.
    Busy {
        refused: RunId,
        holder: RunId,
        until: DateTime<Utc>,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Succeeded {
        rows_read: u64,
        rows_written: u64,
        at: DateTime<Utc>,
    },
    Failed {
        error: String,
        at: DateTime<Utc>,
    },
}

impl Finished {
    /// The run record's columns for it: status, rows read and written, when, and error.
    pub fn columns(&self) -> (RunStatus, i64, i64, DateTime<Utc>, Option<&str>) {
        match self {
            Self::Succeeded {
                rows_read,
                rows_written,
                at,
            } => (
                RunStatus::Succeeded,
                stored_count(*rows_read),
                stored_count(*rows_written),
                *at,
                None,
            ),
            Self::Failed { error, at } => (RunStatus::Failed, 0, 0, *at, Some(error.as_str())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }

    pub fn of(column: &'static str, stored: &str) -> StorageResult<Self> {
        [Self::Running, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == stored)
            .ok_or_else(|| StorageError::unknown(column, stored))
    }
}

/// A run's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregationRun {
    pub id: RunId,
    pub job: Job,
    pub term: Term,
    pub window: Window,
    pub scope: RunScope,
    pub status: RunStatus,
    /// Aggregate rows read: per-product, per-store and per-card-company totals from the
    /// trade database, or the DAY rows a rollup summed.
    pub rows_read: u64,
    /// Aggregate rows written: product sales, settlement, card fee and settlement product
    /// rows (not the markers saying which stores a window covers).
    pub rows_written: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// The name a job is stored under.
pub fn job_name(job: Job) -> &'static str {
    match job {
        Job::ProductSales => "PRODUCT_SALES",
        Job::Settlement => "SETTLEMENT",
    }
}

/// The job a stored name stands for.
pub fn job_of(column: &'static str, stored: &str) -> StorageResult<Job> {
    [Job::ProductSales, Job::Settlement]
        .into_iter()
        .find(|job| job_name(*job) == stored)
        .ok_or_else(|| StorageError::unknown(column, stored))
}

/// A count as stored (never negative: the schema checks it).
pub fn count_of(column: &'static str, stored: i64) -> StorageResult<u64> {
    u64::try_from(stored).map_err(|_| StorageError::unknown(column, stored))
}

/// A count to store.
pub fn stored_count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// A run's scope as stored.
pub fn scope_of(shard_index: i64, shard_count: i64, store_id: i64) -> StorageResult<RunScope> {
    let shard =
        |column, value: i64| u32::try_from(value).map_err(|_| StorageError::unknown(column, value));
    Ok(RunScope {
        shard_index: shard("aggregation_runs.shard_index", shard_index)?,
        shard_count: shard("aggregation_runs.shard_count", shard_count)?,
        store: match store_id {
            0 => None,
            id => Some(crate::store_of("aggregation_runs.store_id", id)?),
        },
    })
}
