//! From what a person or the schedule asks for — a job and term on a date, a range of
//! dates, the window containing a date — to the windows to run and the stores each
//! covers, narrowed to a shard or one store; each window is then one [`Aggregator`] run.

use std::{collections::HashMap, sync::Arc};

use chrono::NaiveDate;
use pos_common::domain::StoreId;
use pos_settlement_storage::RunScope;

use crate::{
    Aggregator, Covered, Job, Report, RunError, SETTLEMENT_DAYS, Stores, Term, Window, WindowRun,
    stores::{DirectoryError, StoreDirectory},
    windows::{self, WindowError},
};

/// How a window's figures are computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Method {
    /// See [`WindowRun::verify`].
    pub verify: bool,
    /// See [`WindowRun::from_raw`].
    pub from_raw: bool,
}

/// Why nothing was run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("store {0} is not a store of this system")]
    UnknownStore(StoreId),
    #[error("the range ends ({to}) before it starts ({from})")]
    BackwardRange { from: NaiveDate, to: NaiveDate },
}

/// One window that was run, and how it went.
#[derive(Debug)]
pub struct Outcome {
    pub window: Window,
    pub stores: Stores,
    pub result: Result<Report, RunError>,
}

/// Runs the windows asked for, with the stores the store role lists.
#[derive(Clone)]
pub struct Batch {
    aggregator: Aggregator,
    directory: Arc<dyn StoreDirectory>,
}

impl Batch {
    pub fn new(aggregator: Aggregator, directory: Arc<dyn StoreDirectory>) -> Self {
        Self {
            aggregator,
            directory,
        }
    }

    /// What a scheduled run of `job` over `term` on `date` covers (DAY: the previous day
    /// and the day before it; WEEK: the previous week; MONTH: the previous month, or for
    /// settlements the stores settling on `date`'s day).
    pub async fn scheduled(
        &self,
        job: Job,
        term: Term,
        date: NaiveDate,
        scope: RunScope,
        method: Method,
    ) -> Result<Vec<Outcome>, PlanError> {
        let covered = windows::scheduled(job, term, date)?;
        let one_store = self.one_store(scope).await?;
        self.run_all(job, term, covered, scope, one_store, method)
            .await
    }

    /// Every window of `term` that holds a date from `from` to `to` (both included),
    /// oldest first; for MONTH settlements, those of every settlement day.
    pub async fn backfill(
        &self,
        job: Job,
        term: Term,
        from: NaiveDate,
        to: NaiveDate,
        scope: RunScope,
        method: Method,
    ) -> Result<Vec<Outcome>, PlanError> {
        if to < from {
            return Err(PlanError::BackwardRange { from, to });
        }
        let mut covered = Vec::new();
        for stores in store_groups(job, term) {
            let settles_on = match stores {
                Stores::SettlingOn(day) => day,
                Stores::All => 1,
            };
            let mut window = windows::containing(job, term, from, settles_on)?;
            while window.start <= to {
                covered.push(Covered { window, stores });
                window = windows::containing(job, term, window.end, settles_on)?;
            }
        }
        covered.sort_by_key(|covered| covered.window);
        let one_store = self.one_store(scope).await?;
        self.run_all(job, term, covered, scope, one_store, method)
            .await
    }

    /// The window of `term` containing `date`: for one store (`scope.store`), its
    /// window; for every store, every window that holds `date` (MONTH settlements: one
    /// per settlement day).
    pub async fn containing(
        &self,
        job: Job,
        term: Term,
        date: NaiveDate,
        scope: RunScope,
        method: Method,
    ) -> Result<Vec<Outcome>, PlanError> {
        let Some((store, settles_on)) = self.one_store(scope).await? else {
            return self.backfill(job, term, date, date, scope, method).await;
        };
        let window = windows::containing(job, term, date, settles_on)?;
        let stores = match (job, term) {
            (Job::Settlement, Term::Month) => Stores::SettlingOn(settles_on),
            _ => Stores::All,
        };
        let covered = vec![Covered { window, stores }];
        self.run_all(job, term, covered, scope, Some((store, settles_on)), method)
            .await
    }

    /// For a run of one store: the store and the day it settles on (whether it exists and
    /// when it settles is all such a run needs, not the list of every store).
    async fn one_store(&self, scope: RunScope) -> Result<Option<(StoreId, u32)>, PlanError> {
        let Some(store) = scope.store else {
            return Ok(None);
        };
        let day = self
            .directory
            .settlement_day_of(store)
            .await?
            .ok_or(PlanError::UnknownStore(store))?;
        Ok(Some((store, day)))
    }

    async fn run_all(
        &self,
        job: Job,
        term: Term,
        covered: Vec<Covered>,
        scope: RunScope,
        one_store: Option<(StoreId, u32)>,
        method: Method,
    ) -> Result<Vec<Outcome>, PlanError> {
        let mut outcomes = Vec::with_capacity(covered.len());
        // Windows of one group of stores (a DAY run's two days, a backfill's months) ask
        // the store role once.
        let mut lists: HashMap<Stores, Vec<StoreId>> = HashMap::new();
        for Covered { window, stores } in covered {
            let listed = match (one_store, stores) {
                (Some((store, _)), Stores::All) => vec![store],
                (Some((store, day)), Stores::SettlingOn(on)) if day == on => vec![store],
                (Some(_), Stores::SettlingOn(_)) => Vec::new(),
                (None, stores) => match lists.get(&stores) {
                    Some(listed) => listed.clone(),
                    None => {
                        let listed = self.directory.stores(stores).await?;
                        lists.insert(stores, listed.clone());
                        listed
                    }
                },
            };
            let part = part_of(scope, listed);
            let result = self
                .aggregator
                .run(WindowRun {
                    job,
                    term,
                    window,
                    scope,
                    stores: &part,
                    verify: method.verify,
                    from_raw: method.from_raw,
                })
                .await;
            match &result {
                Ok(report) => tracing::info!(
                    job = job.as_str(),
                    term = term.as_str(),
                    start = %window.start,
                    end = %window.end,
                    run = report.run.0,
                    rows_read = report.rows_read,
                    rows_written = report.rows_written,
                    "aggregated a window"
                ),
                Err(err) => tracing::error!(
                    job = job.as_str(),
                    term = term.as_str(),
                    start = %window.start,
                    end = %window.end,
                    error = %describe(err),
                    "a window failed"
                ),
            }
            outcomes.push(Outcome {
                window,
                stores,
                result,
            });
        }
        Ok(outcomes)
    }
}

/// The groups of stores a term's windows are kept for: MONTH settlements per settlement
/// day, everything else for every store at once.
fn store_groups(job: Job, term: Term) -> Vec<Stores> {
    match (job, term) {
        (Job::Settlement, Term::Month) => SETTLEMENT_DAYS.map(Stores::SettlingOn).to_vec(),
        _ => vec![Stores::All],
    }
}

/// The stores of `listed` that `scope` covers: those of its shard (by id, so that the
/// shards of a window never overlap and together cover it), or its one store.
pub fn part_of(scope: RunScope, listed: Vec<StoreId>) -> Vec<StoreId> {
    let count = i64::from(scope.shard_count.max(1));
    let index = i64::from(scope.shard_index);
    listed
        .into_iter()
        .filter(|store| scope.store.is_none_or(|only| only == *store))
        .filter(|store| store.get().rem_euclid(count) == index)
        .collect()
}

/// An error with its causes, one line.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[i64]) -> Vec<StoreId> {
        raw.iter().copied().map(StoreId::from_stored).collect()
    }

    #[test]
    fn shards_split_the_stores_without_overlap() {
        let stores = ids(&[1, 2, 3, 4, 5, 6, 7]);
        let mut seen = Vec::new();
        for index in 0..3 {
            let scope = RunScope {
                shard_index: index,
                shard_count: 3,
                store: None,
            };
            seen.extend(part_of(scope, stores.clone()));
        }
        seen.sort_unstable();
        assert_eq!(seen, stores);
        let first = RunScope {
            shard_index: 0,
            shard_count: 3,
            store: None,
        };
        assert_eq!(part_of(first, stores.clone()), ids(&[3, 6]));
    }

    #[test]
    fn one_store_is_its_own_part() {
        let scope = RunScope {
            store: Some(StoreId::from_stored(5)),
            ..RunScope::ALL
        };
        assert_eq!(part_of(scope, ids(&[1, 5, 9])), ids(&[5]));
        assert_eq!(part_of(scope, ids(&[1, 9])), ids(&[]));
    }

    #[test]
    fn monthly_settlements_are_kept_per_settlement_day() {
        assert_eq!(store_groups(Job::Settlement, Term::Month).len(), 6);
        assert_eq!(store_groups(Job::Settlement, Term::Day), vec![Stores::All]);
        assert_eq!(
            store_groups(Job::ProductSales, Term::Month),
            vec![Stores::All]
        );
    }
}
