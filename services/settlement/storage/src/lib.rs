//! What the settlement service keeps — product sales and settlements per store, term and
//! window, as the aggregation batch writes them — as one trait, [`SettlementStorage`].
//! Each database engine implements it in its own crate (`pos-settlement-postgres`,
//! `pos-settlement-sqlite`), and one contract test suite runs against both.
//!
//! Promises every implementation keeps:
//! - a window is replaced whole, for the stores a run covers, in one transaction: a
//!   failed run leaves the previous rows; a re-run never duplicates (rows are keyed on
//!   store, term, window start and product or card company);
//! - a store a run covered is known to be aggregated for that window even when it sold
//!   nothing (zero, not "not aggregated");
//! - a window (of one job, term, shard and store scope) is leased to one run at a time;
//!   every run, also one refused for a busy window, leaves a record;
//! - a stored value this build does not know is an error, never a default.

pub mod runs;

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use pos_common::{
    domain::{CardCompany, Category, StoreId},
    storage::StorageError,
};

pub use pos_common::aggregation::{Job, Term, Window};
pub use runs::{AggregationRun, Begun, Finished, NewRun, RunFilter, RunId, RunScope, RunStatus};

pub type StorageResult<T> = Result<T, StorageError>;

/// A test hook the engines' storage can await half way through replacing a window (see
/// their `with_halfway`, compiled only with their `fault-injection` feature).
pub type Halfway = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync,
>;

/// One product's sales in a store's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSales {
    pub store_id: StoreId,
    pub product_id: i64,
    /// As it was ordered the last time it was sold in the window.
    pub product_name: String,
    pub category: Category,
    pub sale_count: i64,
    pub sale_amount: i64,
}

impl ProductSales {
    /// A stored row, its category and store decoded (both engines read the same columns).
    pub fn decode(
        store_id: i64,
        product_id: i64,
        product_name: String,
        category: &str,
        sale_count: i64,
        sale_amount: i64,
    ) -> StorageResult<Self> {
        Ok(Self {
            store_id: store_of("product_sales.store_id", store_id)?,
            product_id,
            product_name,
            category: category_of("product_sales.category", category)?,
            sale_count,
            sale_amount,
        })
    }
}

/// A store's card payments with one company in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardFees {
    pub store_id: StoreId,
    pub card_company: CardCompany,
    pub payment_count: i64,
    pub amount: i64,
    pub fee: i64,
}

impl CardFees {
    /// A stored row, its company and store decoded.
    pub fn decode(
        store_id: i64,
        card_company: &str,
        payment_count: i64,
        amount: i64,
        fee: i64,
    ) -> StorageResult<Self> {
        Ok(Self {
            store_id: store_of("settlement_card_fees.store_id", store_id)?,
            card_company: card_company_of("settlement_card_fees.card_company", card_company)?,
            payment_count,
            amount,
            fee,
        })
    }
}

/// What a store's paid trades in a window came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreTotals {
    pub store_id: StoreId,
    pub revenue: i64,
    pub fee: i64,
    pub trade_count: i64,
}

impl StoreTotals {
    /// A stored settlement's totals, its store decoded.
    pub fn decode(store_id: i64, revenue: i64, fee: i64, trade_count: i64) -> StorageResult<Self> {
        Ok(Self {
            store_id: store_of("settlements.store_id", store_id)?,
            revenue,
            fee,
            trade_count,
        })
    }
}

/// A run's product sales for one window and the stores it covers (every store in
/// `stores`, whether or not it sold anything; `sales` only of those stores).
#[derive(Debug, Clone, Copy)]
pub struct ProductSalesWindow<'a> {
    pub term: Term,
    pub window: Window,
    pub stores: &'a [StoreId],
    pub sales: &'a [ProductSales],
}

/// A run's settlements for one window and the stores it covers: a store in `stores`
/// without totals settles at zero.
#[derive(Debug, Clone, Copy)]
pub struct SettlementWindow<'a> {
    pub term: Term,
    pub window: Window,
    pub stores: &'a [StoreId],
    pub totals: &'a [StoreTotals],
    pub card_fees: &'a [CardFees],
    pub products: &'a [ProductSales],
}

/// Refuses rows of a store a run does not cover: writing them would leave a window
/// holding rows no run of it accounts for.
fn all_covered(
    covered: &[StoreId],
    mut stores: impl Iterator<Item = StoreId>,
) -> StorageResult<()> {
    let covered: HashSet<StoreId> = covered.iter().copied().collect();
    if stores.all(|store| covered.contains(&store)) {
        Ok(())
    } else {
        Err(StorageError::Inconsistent(
            "rows of a store the run does not cover",
        ))
    }
}

impl ProductSalesWindow<'_> {
    pub fn check(&self) -> StorageResult<()> {
        all_covered(self.stores, self.sales.iter().map(|s| s.store_id))
    }
}

impl SettlementWindow<'_> {
    pub fn check(&self) -> StorageResult<()> {
        let stores = self.totals.iter().map(|t| t.store_id);
        let stores = stores.chain(self.card_fees.iter().map(|f| f.store_id));
        all_covered(
            self.stores,
            stores.chain(self.products.iter().map(|p| p.store_id)),
        )
    }
}

/// A store's settlement for one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub store_id: StoreId,
    pub term: Term,
    pub window: Window,
    pub revenue: i64,
    pub fee: i64,
    pub trade_count: i64,
}

impl Settlement {
    /// Revenue less card fees (a settlement's fee never exceeds its revenue).
    pub fn operating_profit(&self) -> i64 {
        self.revenue.saturating_sub(self.fee)
    }
}

/// A settlement with what it is made of: sales per product and fees per card company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementDetail {
    pub settlement: Settlement,
    pub products: Vec<ProductSales>,
    pub card_fees: Vec<CardFees>,
}

/// DAY product sales over a range of days: the (store, day) windows that were
/// aggregated, and their rows by day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaySales {
    pub covered: Vec<(StoreId, NaiveDate)>,
    pub sales: Vec<(NaiveDate, ProductSales)>,
}

/// DAY settlements over a range of days, for rolling days up into a MONTH: the totals
/// of every (store, day) window that was settled (a settled store has totals, at zero
/// when it sold nothing), ordered by store and day; card fees by store, company and day;
/// product sales by store, product and day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaySettlements {
    pub totals: Vec<(NaiveDate, StoreTotals)>,
    pub card_fees: Vec<(NaiveDate, CardFees)>,
    pub products: Vec<(NaiveDate, ProductSales)>,
}

impl DaySettlements {
    /// The (store, day) windows that were settled.
    pub fn covered(&self) -> impl Iterator<Item = (StoreId, NaiveDate)> + '_ {
        self.totals.iter().map(|(day, t)| (t.store_id, *day))
    }
}

/// How replacing a window went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// Done: this many rows written.
    Written(u64),
    /// The run no longer holds its lease (another run took it over): nothing written.
    LeaseLost,
}

/// How top products are ranked; ties are broken by name, then product id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    Count,
    Amount,
}

/// The settlement service's storage.
#[async_trait]
pub trait SettlementStorage: Send + Sync + 'static {
    /// Replaces the window's product sales of `window.stores` in one transaction, and
    /// marks each of them aggregated for it — only while `run` still holds its lease on
    /// the window (checked and held in the same transaction, so a run whose lease was
    /// taken over never overwrites the newer run's rows).
    async fn replace_product_sales(
        &self,
        run: RunId,
        window: ProductSalesWindow<'_>,
    ) -> StorageResult<Replaced>;

    /// Replaces the window's settlements of `window.stores` (totals, card fees and
    /// product sales) in one transaction, only while `run` still holds its lease.
    async fn replace_settlements(
        &self,
        run: RunId,
        window: SettlementWindow<'_>,
    ) -> StorageResult<Replaced>;

    /// The DAY product sales of `stores` on the days `from` to `to` (exclusive), with
    /// which of those (store, day) windows were aggregated, for rolling days up into a
    /// WEEK or MONTH.
    async fn day_product_sales(
        &self,
        stores: &[StoreId],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StorageResult<DaySales>;

    /// The DAY settlements of `stores` on the days `from` to `to` (exclusive), read from
    /// one snapshot, for rolling days up into a MONTH.
    async fn day_settlements(
        &self,
        stores: &[StoreId],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StorageResult<DaySettlements>;

    /// The store's `limit` top products in the window starting `start` (of `category`
    /// only, when given); `None` when the window was not aggregated for the store.
    async fn top_products(
        &self,
        store: StoreId,
        term: Term,
        start: NaiveDate,
        category: Option<Category>,
        ranking: Ranking,
        limit: u32,
    ) -> StorageResult<Option<Vec<ProductSales>>>;

    /// The store's settlement of the window starting `start`, if it was aggregated.
    async fn settlement(
        &self,
        store: StoreId,
        term: Term,
        start: NaiveDate,
    ) -> StorageResult<Option<Settlement>>;

    /// The store's settlements of windows starting from `from` to `to`, both included,
    /// oldest first.
    async fn settlements(
        &self,
        store: StoreId,
        term: Term,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StorageResult<Vec<Settlement>>;

    /// The store's settlement of the window starting `start` with its parts (products by
    /// category then amount, card companies in order), if it was aggregated.
    async fn settlement_detail(
        &self,
        store: StoreId,
        term: Term,
        start: NaiveDate,
    ) -> StorageResult<Option<SettlementDetail>>;

    /// Records a run and takes its window's lease, unless another run holds it (a lease
    /// past its expiry is taken over); a refused run is recorded as failed.
    async fn begin_run(&self, run: &NewRun) -> StorageResult<Begun>;

    /// Extends a running run's lease; false when it no longer holds it.
    async fn renew_lease(&self, run: RunId, until: DateTime<Utc>) -> StorageResult<bool>;

    /// Records how a run ended and gives its lease back.
    async fn finish_run(&self, run: RunId, finished: &Finished) -> StorageResult<()>;

    /// The latest runs the filter lets through, newest (highest id) first.
    async fn runs(&self, filter: &RunFilter) -> StorageResult<Vec<AggregationRun>>;
}

/// The name a term is stored under.
pub fn term_name(term: Term) -> &'static str {
    match term {
        Term::Day => "DAY",
        Term::Week => "WEEK",
        Term::Month => "MONTH",
    }
}

/// The term a stored name stands for.
pub fn term_of(column: &'static str, stored: &str) -> StorageResult<Term> {
    [Term::Day, Term::Week, Term::Month]
        .into_iter()
        .find(|term| term_name(*term) == stored)
        .ok_or_else(|| StorageError::unknown(column, stored))
}

/// The category a stored name stands for.
pub fn category_of(column: &'static str, stored: &str) -> StorageResult<Category> {
    Category::from_name(stored).ok_or_else(|| StorageError::unknown(column, stored))
}

/// The card company a stored name stands for.
pub fn card_company_of(column: &'static str, stored: &str) -> StorageResult<CardCompany> {
    CardCompany::from_name(stored).ok_or_else(|| StorageError::unknown(column, stored))
}

/// A stored store id.
pub fn store_of(column: &'static str, stored: i64) -> StorageResult<StoreId> {
    StoreId::parse(stored).map_err(|_| StorageError::unknown(column, stored))
}
