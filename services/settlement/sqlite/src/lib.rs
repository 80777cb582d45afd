//! The settlement service's storage on SQLite (`pos up`): compile-time checked queries
//! (`sqlx::query!`, offline data in `.sqlx/`) over SQLite's own idioms — dates as ISO
//! text, closed sets as checked text in STRICT tables, and a window's rows passed as one
//! JSON array (`json_each`). A window is replaced in one write transaction (`BEGIN
//! IMMEDIATE`); a detail is read in one read transaction, which in WAL mode is one
//! snapshot.

mod days;
mod runs;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use pos_common::{
    domain::{Category, StoreId},
    storage::StorageError,
};
use pos_settlement_storage::{
    AggregationRun, Begun, CardFees, DaySales, DaySettlements, Finished, NewRun, ProductSales,
    ProductSalesWindow, Ranking, Replaced, RunFilter, RunId, Settlement, SettlementDetail,
    SettlementStorage, SettlementWindow, StorageResult, Term, Window, store_of, term_name, term_of,
};
use sqlx::{SqliteConnection, SqlitePool, migrate::Migrator};

/// This engine's migrations (tracked per service, in `settlement_migrations`).
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

#[derive(Clone)]
pub struct SqliteSettlementStorage {
    pool: SqlitePool,
    #[cfg(feature = "fault-injection")]
    halfway: Option<pos_settlement_storage::Halfway>,
}

impl SqliteSettlementStorage {
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            #[cfg(feature = "fault-injection")]
            halfway: None,
        }
    }

    /// The transaction that replaces a window (`BEGIN IMMEDIATE`: one writer at a time),
    /// `run`'s lease checked in it; `None` (nothing done) when the run no longer holds it.
    async fn begin_window_write(
        &self,
        run: RunId,
    ) -> StorageResult<Option<sqlx::Transaction<'static, sqlx::Sqlite>>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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

pub(crate) fn json<T: serde::Serialize>(value: &T) -> StorageResult<String> {
    serde_json::to_string(value)
        .map_err(|_| StorageError::Inconsistent("rows do not encode as JSON"))
}

pub(crate) fn day(column: &'static str, stored: &str) -> StorageResult<NaiveDate> {
    stored
        .parse()
        .map_err(|_| StorageError::unknown(column, stored))
}

/// Product sales rows as one JSON array of arrays.
fn sales_json(rows: &[ProductSales]) -> StorageResult<String> {
    let rows: Vec<(i64, i64, &str, &str, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.store_id.get(),
                r.product_id,
                r.product_name.as_str(),
                r.category.as_str(),
                r.sale_count,
                r.sale_amount,
            )
        })
        .collect();
    json(&rows)
}

struct SettlementRow {
    store_id: i64,
    term: String,
    start_date: String,
    end_date: String,
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
                start: day("settlements.start_date", &self.start_date)?,
                end: day("settlements.end_date", &self.end_date)?,
            },
            revenue: self.revenue,
            fee: self.fee,
            trade_count: self.trade_count,
        })
    }
}

/// Whether `run` holds its lease (the write transaction keeps other runs out meanwhile).
async fn holds_lease(db: &mut SqliteConnection, run: RunId) -> StorageResult<bool> {
    let held = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM aggregation_locks WHERE run_id = ?1) AS "held!: bool""#,
        run.0,
    )
    .fetch_one(&mut *db)
    .await?;
    Ok(held)
}

async fn settlement_in(
    db: &mut SqliteConnection,
    store: StoreId,
    term: Term,
    start: NaiveDate,
) -> StorageResult<Option<Settlement>> {
    let (store, term, start) = (store.get(), term_name(term), start.to_string());
    sqlx::query_as!(
        SettlementRow,
        r#"SELECT store_id, term, start_date, end_date, revenue, fee, trade_count
           FROM settlements WHERE store_id = ?1 AND term = ?2 AND start_date = ?3"#,
        store,
        term,
        start,
    )
    .fetch_optional(&mut *db)
    .await?
    .map(SettlementRow::decode)
    .transpose()
}

#[async_trait]
impl SettlementStorage for SqliteSettlementStorage {
    async fn replace_product_sales(
        &self,
        run: RunId,
        window: ProductSalesWindow<'_>,
    ) -> StorageResult<Replaced> {
        window.check()?;
        let term = term_name(window.term);
        let (start, end) = (
            window.window.start.to_string(),
            window.window.end.to_string(),
        );
        let stores = json(&window.stores.iter().map(|s| s.get()).collect::<Vec<_>>())?;
        let rows = sales_json(window.sales)?;
        let Some(mut tx) = self.begin_window_write(run).await? else {
            return Ok(Replaced::LeaseLost);
        };
        sqlx::query!(
            "DELETE FROM product_sales WHERE term = ?1 AND start_date = ?2
               AND store_id IN (SELECT value FROM json_each(?3))",
            term,
            start,
            stores,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM product_sales_windows WHERE term = ?1 AND start_date = ?2
               AND store_id IN (SELECT value FROM json_each(?3))",
            term,
            start,
            stores,
        )
        .execute(&mut *tx)
        .await?;
        self.halfway().await;
        sqlx::query!(
            "INSERT INTO product_sales_windows (store_id, term, start_date, end_date)
             SELECT value, ?2, ?3, ?4 FROM json_each(?1)",
            stores,
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
             SELECT json_extract(value, '$[0]'), ?2, ?3, json_extract(value, '$[1]'),
                    json_extract(value, '$[2]'), json_extract(value, '$[3]'),
                    json_extract(value, '$[4]'), json_extract(value, '$[5]')
             FROM json_each(?1)",
            rows,
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
        let term = term_name(window.term);
        let (start, end) = (
            window.window.start.to_string(),
            window.window.end.to_string(),
        );
        let stores = json(&window.stores.iter().map(|s| s.get()).collect::<Vec<_>>())?;
        let totals = json(
            &window
                .totals
                .iter()
                .map(|t| (t.store_id.get(), t.revenue, t.fee, t.trade_count))
                .collect::<Vec<_>>(),
        )?;
        let fees = json(
            &window
                .card_fees
                .iter()
                .map(|f| {
                    (
                        f.store_id.get(),
                        f.card_company.as_str(),
                        f.payment_count,
                        f.amount,
                        f.fee,
                    )
                })
                .collect::<Vec<_>>(),
        )?;
        let products = sales_json(window.products)?;
        let Some(mut tx) = self.begin_window_write(run).await? else {
            return Ok(Replaced::LeaseLost);
        };
        sqlx::query!(
            "DELETE FROM settlement_products WHERE term = ?1 AND start_date = ?2
               AND store_id IN (SELECT value FROM json_each(?3))",
            term,
            start,
            stores,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM settlement_card_fees WHERE term = ?1 AND start_date = ?2
               AND store_id IN (SELECT value FROM json_each(?3))",
            term,
            start,
            stores,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM settlements WHERE term = ?1 AND start_date = ?2
               AND store_id IN (SELECT value FROM json_each(?3))",
            term,
            start,
            stores,
        )
        .execute(&mut *tx)
        .await?;
        self.halfway().await;
        // Every covered store settles, at zero when it sold nothing.
        let mut written = sqlx::query!(
            "INSERT INTO settlements
               (store_id, term, start_date, end_date, revenue, fee, trade_count)
             SELECT s.value, ?3, ?4, ?5, coalesce(json_extract(t.value, '$[1]'), 0),
                    coalesce(json_extract(t.value, '$[2]'), 0),
                    coalesce(json_extract(t.value, '$[3]'), 0)
             FROM json_each(?1) AS s
             LEFT JOIN json_each(?2) AS t ON json_extract(t.value, '$[0]') = s.value",
            stores,
            totals,
            term,
            start,
            end,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        written += sqlx::query!(
            "INSERT INTO settlement_card_fees
               (store_id, term, start_date, card_company, payment_count, amount, fee)
             SELECT json_extract(value, '$[0]'), ?2, ?3, json_extract(value, '$[1]'),
                    json_extract(value, '$[2]'), json_extract(value, '$[3]'),
                    json_extract(value, '$[4]')
             FROM json_each(?1)",
            fees,
            term,
            start,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        written += sqlx::query!(
            "INSERT INTO settlement_products
               (store_id, term, start_date, product_id, product_name, category, sale_count,
                sale_amount)
             SELECT json_extract(value, '$[0]'), ?2, ?3, json_extract(value, '$[1]'),
                    json_extract(value, '$[2]'), json_extract(value, '$[3]'),
                    json_extract(value, '$[4]'), json_extract(value, '$[5]')
             FROM json_each(?1)",
            products,
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
        days::product_sales(&self.pool, stores, from, to).await
    }

    async fn day_settlements(
        &self,
        stores: &[StoreId],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StorageResult<DaySettlements> {
        days::settlements(&self.pool, stores, from, to).await
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
        let (store, term, start) = (store.get(), term_name(term), start.to_string());
        let (category, by_count, limit) = (
            category.map(Category::as_str),
            ranking == Ranking::Count,
            i64::from(limit),
        );
        let mut tx = self.pool.begin().await?;
        let covered = sqlx::query_scalar!(
            r#"SELECT EXISTS (
                 SELECT 1 FROM product_sales_windows
                 WHERE store_id = ?1 AND term = ?2 AND start_date = ?3
               ) AS "covered!: bool""#,
            store,
            term,
            start,
        )
        .fetch_one(&mut *tx)
        .await?;
        if !covered {
            tx.commit().await?;
            return Ok(None);
        }
        let rows = sqlx::query!(
            r#"SELECT store_id, product_id, product_name, category, sale_count, sale_amount
               FROM product_sales
               WHERE store_id = ?1 AND term = ?2 AND start_date = ?3
                 AND (?4 IS NULL OR category = ?4)
               ORDER BY CASE WHEN ?5 THEN sale_count ELSE sale_amount END DESC,
                        product_name, product_id
               LIMIT ?6"#,
            store,
            term,
            start,
            category,
            by_count,
            limit,
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
        let (store, term) = (store.get(), term_name(term));
        let (from, to) = (from.to_string(), to.to_string());
        sqlx::query_as!(
            SettlementRow,
            r#"SELECT store_id, term, start_date, end_date, revenue, fee, trade_count
               FROM settlements
               WHERE store_id = ?1 AND term = ?2 AND start_date BETWEEN ?3 AND ?4
               ORDER BY start_date"#,
            store,
            term,
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
        let mut tx = self.pool.begin().await?;
        let Some(settlement) = settlement_in(&mut tx, store, term, start).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let (store, term, start) = (store.get(), term_name(term), start.to_string());
        // Categories and companies in the order the API lists them, not alphabetical.
        let products = sqlx::query!(
            r#"SELECT store_id, product_id, product_name, category, sale_count, sale_amount
               FROM settlement_products
               WHERE store_id = ?1 AND term = ?2 AND start_date = ?3
               ORDER BY CASE category WHEN 'MAIN_MENU' THEN 0 WHEN 'SUB_MENU' THEN 1 ELSE 2 END,
                        sale_amount DESC, product_name, product_id"#,
            store,
            term,
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
            r#"SELECT store_id, card_company, payment_count, amount, fee
               FROM settlement_card_fees
               WHERE store_id = ?1 AND term = ?2 AND start_date = ?3
               ORDER BY CASE card_company WHEN 'K' THEN 0 WHEN 'H' THEN 1 ELSE 2 END"#,
            store,
            term,
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
