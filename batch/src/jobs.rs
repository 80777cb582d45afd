//! Running one window of a job: take the window's lease (so the same window never runs
//! twice at once), read what the covered stores' paid trades add up to, replace the
//! window's rows for those stores in one transaction, and record how the run went. The
//! lease is renewed while the run works; a run that loses it stops, and its write checks
//! the lease in the same transaction, so it never overwrites a newer run's rows. DAY
//! windows are read from the paid trades; WEEK and MONTH ones are summed from their DAY
//! rows (`rollup`).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
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
    rollup::{
        Settled, missing_days, product_differences, settlement_differences, sum_products,
        sum_settlements,
    },
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
    /// For a WEEK or MONTH (rolled up from DAY rows): also recompute it from the paid
    /// trades, and fail naming the differences when they disagree.
    pub verify: bool,
    /// Compute a WEEK or MONTH from the paid trades themselves instead of rolling up DAY
    /// rows (an on-demand recomputation: DAY rows may predate late payments).
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
        match run.job {
            Job::ProductSales => {
                let (read, sales) = if run.term == Term::Day || run.from_raw {
                    let sales = self.product_sales_from_trades(run).await?;
                    (sales.len(), sales)
                } else {
                    self.rolled_up_product_sales(run).await?
                };
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
                Ok((count(read), written_or_lost(id, written)?))
            }
            Job::Settlement => {
                let (read, settled) = if run.term == Term::Day || run.from_raw {
                    let settled = self.settlement_from_trades(run).await?;
                    (settled.rows(), settled)
                } else {
                    self.rolled_up_settlement(run).await?
                };
                let written = self
                    .storage
                    .replace_settlements(
                        id,
                        SettlementWindow {
                            term: run.term,
                            window: run.window,
                            stores: run.stores,
                            totals: &settled.totals,
                            card_fees: &settled.card_fees,
                            products: &settled.products,
                        },
                    )
                    .await
                    .map_err(RunError::Write)?;
                Ok((count(read), written_or_lost(id, written)?))
            }
        }
    }

    fn paid(&self, run: &WindowRun<'_>) -> (PaidBetween, StoreSelection) {
        let (from, to) = self.zone.instants(run.window);
        (
            PaidBetween { from, to },
            StoreSelection::Only(run.stores.to_vec()),
        )
    }

    async fn product_sales_from_trades(
        &self,
        run: &WindowRun<'_>,
    ) -> Result<Vec<ProductSales>, RunError> {
        let (paid, stores) = self.paid(run);
        let sales = self
            .source
            .product_sales(paid, &stores)
            .await
            .map_err(RunError::Source)?;
        Ok(sales.into_iter().map(product_sales).collect())
    }

    async fn settlement_from_trades(&self, run: &WindowRun<'_>) -> Result<Settled, RunError> {
        let (paid, stores) = self.paid(run);
        let source = self
            .source
            .settlement(paid, &stores)
            .await
            .map_err(RunError::Source)?;
        Ok(Settled {
            totals: source.stores.into_iter().map(totals).collect(),
            card_fees: source.card_fees.into_iter().map(card_fees).collect(),
            products: source.products.into_iter().map(product_sales).collect(),
        })
    }

    /// Aggregates the days of `missing` first, each as a run of its own.
    async fn fill_in(
        &self,
        run: &WindowRun<'_>,
        missing: Vec<(Window, Vec<StoreId>)>,
    ) -> Result<(), RunError> {
        for (window, stores) in missing {
            let day_run = WindowRun {
                term: Term::Day,
                window,
                stores: &stores,
                verify: false,
                from_raw: false,
                ..*run
            };
            Box::pin(self.run(day_run)).await?;
        }
        Ok(())
    }
}

impl Aggregator {
    /// A WEEK or MONTH of product sales from its DAY rows (the days some store lacks
    /// aggregated first); with `verify`, checked against the paid trades. (rows read,
    /// rows)
    async fn rolled_up_product_sales(
        &self,
        run: &WindowRun<'_>,
    ) -> Result<(usize, Vec<ProductSales>), RunError> {
        let (start, end) = (run.window.start, run.window.end);
        let mut days = self
            .storage
            .day_product_sales(run.stores, start, end)
            .await
            .map_err(RunError::Source)?;
        let covered = std::mem::take(&mut days.covered);
        let missing = missing_days(run.window, run.stores, covered);
        // Read again only when days were added.
        if !missing.is_empty() {
            self.fill_in(run, missing).await?;
            days = self
                .storage
                .day_product_sales(run.stores, start, end)
                .await
                .map_err(RunError::Source)?;
        }
        let read = days.sales.len();
        let sales = sum_products(days.sales).map_err(RunError::Source)?;
        if run.verify {
            let raw = self.product_sales_from_trades(run).await?;
            let differences = product_differences(&sales, &raw);
            if !differences.is_empty() {
                return Err(RunError::Verify(differences.join("; ")));
            }
        }
        Ok((read, sales))
    }

    /// A MONTH settlement from its DAY settlements, as product sales are rolled up.
    async fn rolled_up_settlement(
        &self,
        run: &WindowRun<'_>,
    ) -> Result<(usize, Settled), RunError> {
        let (start, end) = (run.window.start, run.window.end);
        let read_days = || async {
            self.storage
                .day_settlements(run.stores, start, end)
                .await
                .map_err(RunError::Source)
        };
        let mut days = read_days().await?;
        let missing = missing_days(run.window, run.stores, days.covered());
        if !missing.is_empty() {
            self.fill_in(run, missing).await?;
            days = read_days().await?;
        }
        let read = days.totals.len() + days.card_fees.len() + days.products.len();
        let settled = sum_settlements(days).map_err(RunError::Source)?;
        if run.verify {
            let raw = self.settlement_from_trades(run).await?;
            let differences = settlement_differences(&settled, &raw);
            if !differences.is_empty() {
                return Err(RunError::Verify(differences.join("; ")));
            }
        }
        Ok((read, settled))
    }
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
