//! The settlement service's storage on PostgreSQL (production): compile-time checked
//! queries (`sqlx::query!`, offline data in `.sqlx/`), `date` window starts, enum types,
//! and set-based statements — a window is replaced for every store a run covers by a
//! fixed number of statements over `unnest`ed arrays, however many rows it holds.
//!
//! Enum columns are read as text and decoded by the domain's own names, so a value this
//! build does not know is an error, never a default.

mod days;
mod runs;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use pos_common::domain::{Category, StoreId};
use pos_settlement_storage::{
    AggregationRun, Begun, CardFees, DaySales, DaySettlements, Finished, NewRun, ProductSales,
    ProductSalesWindow, Ranking, Replaced, RunFilter, RunId, Settlement, SettlementDetail,
    SettlementStorage, SettlementWindow, StorageResult, Term, Window, store_of, term_name, term_of,
};
use sqlx::{PgConnection, PgPool, Postgres, Transaction, migrate::Migrator};

/// This engine's migrations (tracked per service, in `settlement_migrations`).
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

#[derive(Clone)]
pub struct PgSettlementStorage {
    pool: PgPool,
    #[cfg(feature = "fault-injection")]
    halfway: Option<pos_settlement_storage::Halfway>,
}

impl PgSettlementStorage {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            #[cfg(feature = "fault-injection")]
            halfway: None,
        }
    }

    /// The transaction that replaces a window of `table`: its turn among the window's
    /// writers taken, and `run`'s lease checked and held; `None` (nothing done) when the
    /// run no longer holds it.
    async fn begin_window_write(
        &self,
        run: RunId,
        table: &str,
        term: &str,
        start: NaiveDate,
    ) -> StorageResult<Option<Transaction<'static, Postgres>>> {
        let mut tx = self.pool.begin().await?;
        lock_window(&mut tx, table, term, start).await?;
        if holds_lease(&mut tx, run).await? {
            Ok(Some(tx))
        } else {
            tx.rollback().await?;
            Ok(None)
        }
    }

    /// Where tests stop a run: its old rows deleted, its new ones not yet written.
    async fn halfway(&self) {
        #[cfg(feature = "fault-injection")]
        if let Some(halfway) = &self.halfway {
            halfway().await;
        }
    }

    /// The storage with `halfway` awaited inside every replace's transaction, after the
    /// window's old rows are deleted and before its new ones are written: tests stop a
    /// run there as a crash would.
    #[cfg(feature = "fault-injection")]
    pub fn with_halfway(mut self, halfway: pos_settlement_storage::Halfway) -> Self {
        self.halfway = Some(halfway);
        self
    }
}

fn ids(stores: &[StoreId]) -> Vec<i64> {
    stores.iter().map(|store| store.get()).collect()
}

/// Column arrays of product sales rows, for one `unnest`.
struct SalesColumns {
    stores: Vec<i64>,
    products: Vec<i64>,
    names: Vec<String>,
    categories: Vec<String>,
    counts: Vec<i64>,
    amounts: Vec<i64>,
}

impl SalesColumns {
    fn of(rows: &[ProductSales]) -> Self {
        Self {
            stores: rows.iter().map(|r| r.store_id.get()).collect(),
            products: rows.iter().map(|r| r.product_id).collect(),
            names: rows.iter().map(|r| r.product_name.clone()).collect(),
            categories: rows
                .iter()
                .map(|r| r.category.as_str().to_string())
                .collect(),
            counts: rows.iter().map(|r| r.sale_count).collect(),
            amounts: rows.iter().map(|r| r.sale_amount).collect(),
        }
    }
}

struct SettlementRow {
    store_id: i64,
    term: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    revenue: i64,
    fee: i64,
    trade_count: i64,
}

impl SettlementRow {
    fn decode(self) -> StorageResult<Settlement> {
        Ok(Settlement {
            store_id: store_of("settlements.store_id", self.store_id)?,
            term: term_of("settlements.term", &self.term)?,
            window: Window {
                start: self.start_date,
                end: self.end_date,
            },
            revenue: self.revenue,
            fee: self.fee,
            trade_count: self.trade_count,
        })
    }
}

/// Makes writers of one window take turns, whatever stores each covers: runs of
/// overlapping scopes (every store, a shard, one owner's store) may run at once, and two
/// transactions deleting and re-inserting the same rows concurrently would otherwise
/// collide on their keys. Taken before the deletes, so the later writer's statements see
/// the earlier one's rows. Released at commit or rollback.
async fn lock_window(
    db: &mut Transaction<'_, Postgres>,
    table: &str,
    term: &str,
    start: chrono::NaiveDate,
) -> StorageResult<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)) AS locked",
        format!("{table}/{term}/{start}"),
    )
    .fetch_one(&mut **db)
    .await?;
    Ok(())
}

/// Whether `run` holds its lease, locking the lease until the transaction ends so that no
/// other run can take it over meanwhile.
async fn holds_lease(db: &mut Transaction<'_, Postgres>, run: RunId) -> StorageResult<bool> {
    let held = sqlx::query_scalar!(
        "SELECT run_id FROM aggregation_locks WHERE run_id = $1 FOR UPDATE",
        run.0,
    )
    .fetch_optional(&mut **db)
    .await?;
    Ok(held.is_some())
}

async fn settlement_in(
    db: &mut PgConnection,
    store: StoreId,
    term: Term,
    start: NaiveDate,
) -> StorageResult<Option<Settlement>> {
    sqlx::query_as!(
        SettlementRow,
        r#"SELECT store_id, term::text AS "term!", start_date, end_date, revenue, fee,
                  trade_count
           FROM settlements
           WHERE store_id = $1 AND term = $2::text::settlement_term AND start_date = $3"#,
        store.get(),
        term_name(term),
        start,
    )
    .fetch_optional(&mut *db)
    .await?
    .map(SettlementRow::decode)
    .transpose()
}

#[async_trait]
impl SettlementStorage for PgSettlementStorage {
    async fn replace_product_sales(
        &self,
        run: RunId,
        window: ProductSalesWindow<'_>,
    ) -> StorageResult<Replaced> {
        window.check()?;
        let (term, start, end) = (
            term_name(window.term),
            window.window.start,
            window.window.end,
        );
        let stores = ids(window.stores);
        let rows = SalesColumns::of(window.sales);
        let Some(mut tx) = self
            .begin_window_write(run, "product_sales", term, start)
            .await?
        else {
            return Ok(Replaced::LeaseLost);
        };
        sqlx::query!(
            "DELETE FROM product_sales
             WHERE term = $1::text::settlement_term AND start_date = $2 AND store_id = ANY($3)",
            term,
            start,
            &stores,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM product_sales_windows
             WHERE term = $1::text::settlement_term AND start_date = $2 AND store_id = ANY($3)",
            term,
            start,
            &stores,
        )
        .execute(&mut *tx)
        .await?;
        self.halfway().await;
        sqlx::query!(
            "INSERT INTO product_sales_windows (store_id, term, start_date, end_date)
             SELECT store_id, $2::text::settlement_term, $3, $4
             FROM unnest($1::bigint[]) AS s (store_id)",
            &stores,
            term,
            start,
            end,
        )
        .execute(&mut *tx)
        .await?;
        let written = sqlx::query!(
            "INSERT INTO product_sales
               (store_id, term, start_date, product_id, product_name, category, sale_count,
                sale_amount)
             SELECT r.store_id, $7::text::settlement_term, $8, r.product_id, r.product_name,
                    r.category::settlement_category, r.sale_count, r.sale_amount
             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[],
                         $6::bigint[])
               AS r (store_id, product_id, product_name, category, sale_count, sale_amount)",
            &rows.stores,
            &rows.products,
            &rows.names,
            &rows.categories,
            &rows.counts,
            &rows.amounts,
            term,
            start,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Replaced::Written(written))
    }

    async fn replace_settlements(
        &self,
        run: RunId,
        window: SettlementWindow<'_>,
    ) -> StorageResult<Replaced> {
        window.check()?;
        let (term, start, end) = (
            term_name(window.term),
            window.window.start,
            window.window.end,
        );
        let stores = ids(window.stores);
        let Some(mut tx) = self
            .begin_window_write(run, "settlements", term, start)
            .await?
        else {
            return Ok(Replaced::LeaseLost);
        };
        sqlx::query!(
            "DELETE FROM settlement_products
             WHERE term = $1::text::settlement_term AND start_date = $2 AND store_id = ANY($3)",
            term,
            start,
            &stores,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM settlement_card_fees
             WHERE term = $1::text::settlement_term AND start_date = $2 AND store_id = ANY($3)",
            term,
            start,
            &stores,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM settlements
             WHERE term = $1::text::settlement_term AND start_date = $2 AND store_id = ANY($3)",
            term,
            start,
            &stores,
        )
        .execute(&mut *tx)
        .await?;
        let totals_stores: Vec<i64> = window.totals.iter().map(|t| t.store_id.get()).collect();
        let revenues: Vec<i64> = window.totals.iter().map(|t| t.revenue).collect();
        let fees: Vec<i64> = window.totals.iter().map(|t| t.fee).collect();
        let trades: Vec<i64> = window.totals.iter().map(|t| t.trade_count).collect();
        self.halfway().await;
        // Every covered store settles, at zero when it sold nothing.
        let mut written = sqlx::query!(
            "INSERT INTO settlements
               (store_id, term, start_date, end_date, revenue, fee, trade_count)
             SELECT s.store_id, $6::text::settlement_term, $7, $8,
                    coalesce(t.revenue, 0), coalesce(t.fee, 0), coalesce(t.trade_count, 0)
             FROM unnest($1::bigint[]) AS s (store_id)
             LEFT JOIN unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
               AS t (store_id, revenue, fee, trade_count) ON t.store_id = s.store_id",
            &stores,
            &totals_stores,
            &revenues,
            &fees,
            &trades,
            term,
            start,
            end,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let fee_stores: Vec<i64> = window.card_fees.iter().map(|f| f.store_id.get()).collect();
        let companies: Vec<String> = window
            .card_fees
            .iter()
            .map(|f| f.card_company.as_str().to_string())
            .collect();
        let payments: Vec<i64> = window.card_fees.iter().map(|f| f.payment_count).collect();
        let amounts: Vec<i64> = window.card_fees.iter().map(|f| f.amount).collect();
        let company_fees: Vec<i64> = window.card_fees.iter().map(|f| f.fee).collect();
        written += sqlx::query!(
            "INSERT INTO settlement_card_fees
               (store_id, term, start_date, card_company, payment_count, amount, fee)
             SELECT f.store_id, $6::text::settlement_term, $7,
                    f.card_company::settlement_card_company, f.payment_count, f.amount, f.fee
             FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
               AS f (store_id, card_company, payment_count, amount, fee)",
            &fee_stores,
            &companies,
            &payments,
            &amounts,
            &company_fees,
            term,
            start,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let rows = SalesColumns::of(window.products);
        written += sqlx::query!(
            "INSERT INTO settlement_products
               (store_id, term, start_date, product_id, product_name, category, sale_count,
                sale_amount)
             SELECT r.store_id, $7::text::settlement_term, $8, r.product_id, r.product_name,
                    r.category::settlement_category, r.sale_count, r.sale_amount
             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[],
                         $6::bigint[])
               AS r (store_id, product_id, product_name, category, sale_count, sale_amount)",
            &rows.stores,
            &rows.products,
            &rows.names,
            &rows.categories,
            &rows.counts,
            &rows.amounts,
            term,
            start,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Replaced::Written(written))
    }

    async fn day_product_sales(
        &self,
        stores: &[StoreId],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StorageResult<DaySales> {
        days::product_sales(&self.pool, &ids(stores), from, to).await
    }

    async fn day_settlements(
        &self,
        stores: &[StoreId],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StorageResult<DaySettlements> {
        days::settlements(&self.pool, &ids(stores), from, to).await
    }

    async fn top_products(
        &self,
        store: StoreId,
        term: Term,
        start: NaiveDate,
        category: Option<Category>,
        ranking: Ranking,
        limit: u32,
    ) -> StorageResult<Option<Vec<ProductSales>>> {
        let mut tx = self.pool.begin().await?;
        let covered = sqlx::query_scalar!(
            r#"SELECT EXISTS (
                 SELECT 1 FROM product_sales_windows
                 WHERE store_id = $1 AND term = $2::text::settlement_term AND start_date = $3
               ) AS "covered!""#,
            store.get(),
            term_name(term),
            start,
        )
        .fetch_one(&mut *tx)
        .await?;
        if !covered {
            tx.commit().await?;
            return Ok(None);
        }
        let rows = sqlx::query!(
            r#"SELECT store_id, product_id, product_name, category::text AS "category!",
                      sale_count, sale_amount
               FROM product_sales
               WHERE store_id = $1 AND term = $2::text::settlement_term AND start_date = $3
                 AND ($4::text IS NULL OR category = $4::text::settlement_category)
               ORDER BY CASE WHEN $5 THEN sale_count ELSE sale_amount END DESC,
                        product_name COLLATE "C", product_id
               LIMIT $6"#,
            store.get(),
            term_name(term),
            start,
            category.map(Category::as_str),
            ranking == Ranking::Count,
            i64::from(limit),
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|r| {
                ProductSales::decode(
                    r.store_id,
                    r.product_id,
                    r.product_name,
                    &r.category,
                    r.sale_count,
                    r.sale_amount,
                )
            })
            .collect::<StorageResult<Vec<_>>>()
            .map(Some)
    }

    async fn settlement(
        &self,
        store: StoreId,
        term: Term,
        start: NaiveDate,
    ) -> StorageResult<Option<Settlement>> {
        let mut db = self.pool.acquire().await?;
        settlement_in(&mut db, store, term, start).await
    }

    async fn settlements(
        &self,
        store: StoreId,
        term: Term,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StorageResult<Vec<Settlement>> {
        sqlx::query_as!(
            SettlementRow,
            r#"SELECT store_id, term::text AS "term!", start_date, end_date, revenue, fee,
                      trade_count
               FROM settlements
               WHERE store_id = $1 AND term = $2::text::settlement_term
                 AND start_date BETWEEN $3 AND $4
               ORDER BY start_date"#,
            store.get(),
            term_name(term),
            from,
            to,
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(SettlementRow::decode)
        .collect()
    }

    async fn settlement_detail(
        &self,
        store: StoreId,
        term: Term,
        start: NaiveDate,
    ) -> StorageResult<Option<SettlementDetail>> {
        // One snapshot, so the parts add up to the settlement even while a run replaces it.
        let mut tx = self.pool.begin().await?;
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let Some(settlement) = settlement_in(&mut tx, store, term, start).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let products = sqlx::query!(
            r#"SELECT store_id, product_id, product_name, category::text AS "category!",
                      sale_count, sale_amount
               FROM settlement_products
               WHERE store_id = $1 AND term = $2::text::settlement_term AND start_date = $3
               ORDER BY category, sale_amount DESC, product_name COLLATE "C", product_id"#,
            store.get(),
            term_name(term),
            start,
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| {
            ProductSales::decode(
                r.store_id,
                r.product_id,
                r.product_name,
                &r.category,
                r.sale_count,
                r.sale_amount,
            )
        })
        .collect::<StorageResult<Vec<_>>>()?;
        let card_fees = sqlx::query!(
            r#"SELECT store_id, card_company::text AS "card_company!", payment_count, amount,
                      fee
               FROM settlement_card_fees
               WHERE store_id = $1 AND term = $2::text::settlement_term AND start_date = $3
               ORDER BY card_company"#,
            store.get(),
            term_name(term),
            start,
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| {
            CardFees::decode(
                r.store_id,
                &r.card_company,
                r.payment_count,
                r.amount,
                r.fee,
            )
        })
        .collect::<StorageResult<Vec<_>>>()?;
        tx.commit().await?;
        Ok(Some(SettlementDetail {
            settlement,
            products,
            card_fees,
        }))
    }

    async fn begin_run(&self, run: &NewRun) -> StorageResult<Begun> {
        runs::begin(&self.pool, run).await
    }

    async fn renew_lease(&self, run: RunId, until: DateTime<Utc>) -> StorageResult<bool> {
        runs::renew(&self.pool, run, until).await
    }

    async fn finish_run(&self, run: RunId, finished: &Finished) -> StorageResult<()> {
        runs::finish(&self.pool, run, finished).await
    }

    async fn runs(&self, filter: &RunFilter) -> StorageResult<Vec<AggregationRun>> {
        runs::list(&self.pool, filter).await
    }
}
