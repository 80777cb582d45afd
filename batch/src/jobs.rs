//! Running one window of a job: take the window's lease (so the same window never runs
//! twice at once), read what the covered stores' paid trades add up to, replace the
//! window's rows for those stores in one transaction, and record how the run went. The
//! lease is renewed while the run works; a run that loses it stops, and its write checks
//! the lease in the same transaction, so it never overwrites a newer run's rows.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use pos_common::{
    aggregation::{Job, Term, Window},
    clock::SharedClock,
    domain::StoreId,
    storage::StorageError,
};
use pos_settlement_storage::{
    Begun, CardFees, Finished, NewRun, ProductSales, ProductSalesWindow, Replaced, RunId, RunScope,
    SettlementStorage, SettlementWindow, StoreTotals,
};
use pos_trade_storage::sales::{
    CardFeeTotal, PaidBetween, ProductSaleTotal, SalesSource, StoreSelection, StoreTotal,
};

use crate::{
    TimeZone,
    driver::describe,
    windows::{WindowError, check_window},
};

/// How long a run's lease lasts unless renewed; it is renewed every third of that.
pub const LEASE: Duration = Duration::from_secs(60);

/// One window of a job, for these stores (every store of the scope, sold or not).
#[derive(Debug, Clone, Copy)]
pub struct WindowRun<'a> {
    pub job: Job,
    pub term: Term,
    pub window: Window,
    pub scope: RunScope,
    pub stores: &'a [StoreId],
    /// For a WEEK or MONTH of product sales (rolled up from DAY rows): also recompute it
    /// from the paid trades, and fail naming the differences when they disagree.
    pub verify: bool,
    /// Compute a WEEK or MONTH of product sales from the paid trades themselves instead
    /// of rolling up DAY rows (an on-demand recomputation: DAY rows may predate late
    /// payments).
    pub from_raw: bool,
}

/// What a successful run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub run: RunId,
    pub rows_read: u64,
    pub rows_written: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the window is busy: run {} holds it until {until}", holder.0)]
    Busy {
        refused: RunId,
        holder: RunId,
        until: DateTime<Utc>,
    },
    #[error("run {} lost its lease on the window (another run took it over)", .0.0)]
    LeaseLost(RunId),
    #[error("not a window of this job and term")]
    Window(#[source] WindowError),
    #[error("the rollup disagrees with the paid trades: {0}")]
    Verify(String),
    #[error("reading the paid trades failed")]
    Source(#[source] StorageError),
    #[error("writing the aggregates failed")]
    Write(#[source] StorageError),
    #[error("recording the run failed")]
    Record(#[source] StorageError),
}

/// Runs windows of jobs from a source of paid trades into the settlement's storage.
#[derive(Clone)]
pub struct Aggregator {
    source: Arc<dyn SalesSource>,
    storage: Arc<dyn SettlementStorage>,
    zone: TimeZone,
    clock: SharedClock,
    lease: Duration,
}

impl Aggregator {
    pub fn new(
        source: Arc<dyn SalesSource>,
        storage: Arc<dyn SettlementStorage>,
        zone: TimeZone,
        clock: SharedClock,
    ) -> Self {
        Self {
            source,
            storage,
            zone,
            clock,
            lease: LEASE,
        }
    }

    fn lease_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        TimeDelta::from_std(self.lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Runs one window: the lease, the work, the record.
    pub async fn run(&self, run: WindowRun<'_>) -> Result<Report, RunError> {
        check_window(run.job, run.term, run.window).map_err(RunError::Window)?;
        // A store named twice would be covered twice.
        let mut stores = run.stores.to_vec();
        stores.sort_unstable();
        stores.dedup();
        let run = WindowRun {
            stores: &stores,
            ..run
        };
        let now = self.clock.now();
        let begun = self
            .storage
            .begin_run(&NewRun {
                job: run.job,
                term: run.term,
                window: run.window,
                scope: run.scope,
                started_at: now,
                lease_until: self.lease_from(now),
            })
            .await
            .map_err(RunError::Record)?;
        let id = match begun {
            Begun::Started(id) => id,
            Begun::Busy {
                refused,
                holder,
                until,
            } => {
                return Err(RunError::Busy {
                    refused,
                    holder,
                    until,
                });
            }
        };
        let outcome = tokio::select! {
            done = self.aggregate(id, &run) => done,
            lost = self.keep_lease(id) => Err(lost),
        };
        let at = self.clock.now();
        let finished = match &outcome {
            Ok((rows_read, rows_written)) => Finished::Succeeded {
                rows_read: *rows_read,
                rows_written: *rows_written,
                at,
            },
            Err(err) => Finished::Failed {
                error: describe(err),
                at,
            },
        };
        self.storage
            .finish_run(id, &finished)
            .await
            .map_err(RunError::Record)?;
        let (rows_read, rows_written) = outcome?;
        Ok(Report {
            run: id,
            rows_read,
            rows_written,
        })
    }

    /// Renews the lease every third of its length; answers only when it is lost.
    async fn keep_lease(&self, run: RunId) -> RunError {
        loop {
            tokio::time::sleep(self.lease / 3).await;
            let until = self.lease_from(self.clock.now());
            match self.storage.renew_lease(run, until).await {
                Ok(true) => {}
                Ok(false) => return RunError::LeaseLost(run),
                // A database that cannot be reached now may answer at the next renewal;
                // the lease has two more thirds to go.
                Err(err) => tracing::warn!(error = %err, run = run.0, "could not renew a lease"),
            }
        }
    }

    /// Reads and writes the window: (rows read, rows written).
    async fn aggregate(&self, id: RunId, run: &WindowRun<'_>) -> Result<(u64, u64), RunError> {
        let (from, to) = self.zone.instants(run.window);
        let paid = PaidBetween { from, to };
        let stores = StoreSelection::Only(run.stores.to_vec());
        match run.job {
            Job::ProductSales if run.term != Term::Day && !run.from_raw => {
                self.roll_up(id, run).await
            }
            Job::ProductSales => {
                let sales = self
                    .source
                    .product_sales(paid, &stores)
                    .await
                    .map_err(RunError::Source)?;
                let sales: Vec<ProductSales> = sales.into_iter().map(product_sales).collect();
                let written = self
                    .storage
                    .replace_product_sales(
                        id,
                        ProductSalesWindow {
                            term: run.term,
                            window: run.window,
                            stores: run.stores,
                            sales: &sales,
                        },
                    )
                    .await
                    .map_err(RunError::Write)?;
                Ok((count(sales.len()), written_or_lost(id, written)?))
            }
            Job::Settlement => {
                let source = self
                    .source
                    .settlement(paid, &stores)
                    .await
                    .map_err(RunError::Source)?;
                let totals: Vec<StoreTotals> = source.stores.into_iter().map(totals).collect();
                let card_fees: Vec<CardFees> =
                    source.card_fees.into_iter().map(card_fees).collect();
                let products: Vec<ProductSales> =
                    source.products.into_iter().map(product_sales).collect();
                let read = totals.len() + card_fees.len() + products.len();
                let written = self
                    .storage
                    .replace_settlements(
                        id,
                        SettlementWindow {
                            term: run.term,
                            window: run.window,
                            stores: run.stores,
                            totals: &totals,
                            card_fees: &card_fees,
                            products: &products,
                        },
                    )
                    .await
                    .map_err(RunError::Write)?;
                Ok((count(read), written_or_lost(id, written)?))
            }
        }
    }
}

impl Aggregator {
    /// A WEEK or MONTH of product sales from its DAY rows: the days some store lacks are
    /// aggregated first (each a run of its own), then the days are summed per product,
    /// named as on the latest day.
    async fn roll_up(&self, id: RunId, run: &WindowRun<'_>) -> Result<(u64, u64), RunError> {
        let (start, end) = (run.window.start, run.window.end);
        let mut days = self
            .storage
            .day_product_sales(run.stores, start, end)
            .await
            .map_err(RunError::Source)?;
        let covered = std::mem::take(&mut days.covered);
        let mut filled_in = false;
        let mut day = start;
        while day < end {
            let next = day.succ_opt().unwrap_or(end);
            let missing: Vec<StoreId> = run
                .stores
                .iter()
                .copied()
                .filter(|store| !covered.contains(&(*store, day)))
                .collect();
            if !missing.is_empty() {
                let day_run = WindowRun {
                    job: Job::ProductSales,
                    term: Term::Day,
                    window: Window {
                        start: day,
                        end: next,
                    },
                    scope: run.scope,
                    stores: &missing,
                    verify: false,
                    from_raw: false,
                };
                Box::pin(self.run(day_run)).await?;
                filled_in = true;
            }
            day = next;
        }
        // Read again only when days were added.
        if filled_in {
            days = self
                .storage
                .day_product_sales(run.stores, start, end)
                .await
                .map_err(RunError::Source)?;
        }
        let read = count(days.sales.len());
        let sales = sum_days(days.sales).map_err(RunError::Source)?;
        if run.verify {
            let (from, to) = self.zone.instants(run.window);
            let raw = self
                .source
                .product_sales(
                    PaidBetween { from, to },
                    &StoreSelection::Only(run.stores.to_vec()),
                )
                .await
                .map_err(RunError::Source)?;
            let raw: Vec<ProductSales> = raw.into_iter().map(product_sales).collect();
            let differences = differences(&sales, &raw);
            if !differences.is_empty() {
                return Err(RunError::Verify(differences.join("; ")));
            }
        }
        let written = self
            .storage
            .replace_product_sales(
                id,
                ProductSalesWindow {
                    term: run.term,
                    window: run.window,
                    stores: run.stores,
                    sales: &sales,
                },
            )
            .await
            .map_err(RunError::Write)?;
        Ok((read, written_or_lost(id, written)?))
    }
}

/// DAY rows (ordered by store, product and day) summed per product, named as on the last
/// day it sold.
fn sum_days(days: Vec<(NaiveDate, ProductSales)>) -> Result<Vec<ProductSales>, StorageError> {
    let mut summed: Vec<ProductSales> = Vec::new();
    for (_, row) in days {
        match summed.last_mut() {
            Some(last) if last.store_id == row.store_id && last.product_id == row.product_id => {
                let add = |a: i64, b: i64| {
                    a.checked_add(b)
                        .ok_or(StorageError::Inconsistent("sales past what an i64 holds"))
                };
                last.sale_count = add(last.sale_count, row.sale_count)?;
                last.sale_amount = add(last.sale_amount, row.sale_amount)?;
                last.product_name = row.product_name;
                last.category = row.category;
            }
            _ => summed.push(row),
        }
    }
    Ok(summed)
}

/// What differs between a rollup and the same window from the paid trades, per product.
fn differences(rolled: &[ProductSales], raw: &[ProductSales]) -> Vec<String> {
    let key = |p: &ProductSales| (p.store_id, p.product_id);
    let totals = |rows: &[ProductSales]| -> std::collections::BTreeMap<(StoreId, i64), (i64, i64)> {
        rows.iter()
            .map(|p| (key(p), (p.sale_count, p.sale_amount)))
            .collect()
    };
    let (rolled, raw) = (totals(rolled), totals(raw));
    let keys: std::collections::BTreeSet<&(StoreId, i64)> =
        rolled.keys().chain(raw.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (rolled.get(k), raw.get(k));
            (a != b).then(|| {
                let show = |v: Option<&(i64, i64)>| {
                    v.map_or("none".to_string(), |(count, amount)| {
                        format!("{count} sold for {amount}")
                    })
                };
                format!(
                    "store {} product {}: rolled up {}, from trades {}",
                    k.0.get(),
                    k.1,
                    show(a),
                    show(b)
                )
            })
        })
        .collect()
}

fn written_or_lost(run: RunId, replaced: Replaced) -> Result<u64, RunError> {
    match replaced {
        Replaced::Written(rows) => Ok(rows),
        Replaced::LeaseLost => Err(RunError::LeaseLost(run)),
    }
}

/// A count of rows as the run record keeps it.
fn count(rows: usize) -> u64 {
    u64::try_from(rows).unwrap_or(u64::MAX)
}

fn product_sales(row: ProductSaleTotal) -> ProductSales {
    ProductSales {
        store_id: row.store_id,
        product_id: row.product_id,
        product_name: row.product_name,
        category: row.category,
        sale_count: row.sale_count,
        sale_amount: row.sale_amount,
    }
}

fn totals(row: StoreTotal) -> StoreTotals {
    StoreTotals {
        store_id: row.store_id,
        revenue: row.revenue,
        fee: row.fee,
        trade_count: row.trade_count,
    }
}

fn card_fees(row: CardFeeTotal) -> CardFees {
    CardFees {
        store_id: row.store_id,
        card_company: row.card_company,
        payment_count: row.payment_count,
        amount: row.amount,
        fee: row.fee,
    }
}
