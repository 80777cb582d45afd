//! What paid trades add up to, on PostgreSQL: one `GROUP BY` statement per kind of total,
//! every total attributed to its trade's `paid_at`, sums checked (`sum` of bigints is
//! numeric, and casting it back fails rather than wraps). A settlement's three reads
//! share one REPEATABLE READ snapshot, so its parts agree however trades are being paid
//! meanwhile.
//!
//! The store conditions are written so that the planner, which sees the parameters'
//! values, folds away the ones a selection does not use: a bare `store_id % $4 = $5`
//! would stay in every plan with a guessed selectivity of 1/200, and the planner would
//! then expect a few hundred trades where a month holds a million, and join them to
//! their lines by a nested loop of index probes (seconds, where a parallel hash join
//! takes well under one).

use async_trait::async_trait;
use pos_trade_storage::{
    StorageResult,
    sales::{
        CardFeeTotal, NamedSales, PaidBetween, ProductSaleTotal, SalesSource, SettlementSource,
        StoreSelection, StoreTotal, category_of, merge_names, store_of,
    },
};
use sqlx::{PgConnection, PgPool};

/// Reads paid trades from the trade database (or a replica of it).
#[derive(Clone)]
pub struct PgSalesSource {
    pool: PgPool,
}

impl PgSalesSource {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

async fn product_sales(
    db: &mut PgConnection,
    paid: PaidBetween,
    stores: &StoreSelection,
) -> StorageResult<Vec<ProductSaleTotal>> {
    let (only, shards, shard) = stores.as_params();
    let rows = sqlx::query!(
        r#"SELECT t.store_id, l.product_id, l.product_name, l.category::text AS "category!",
                  sum(l.count)::bigint AS "sale_count!", sum(l.amount)::bigint AS "sale_amount!",
                  max(t.paid_at) AS "last_sold!", max(o.created_at) AS "last_ordered!"
           FROM trades t
           JOIN trade_orders o ON o.trade_id = t.id
           JOIN trade_order_lines l ON l.order_id = o.id
           WHERE t.status = 'PAID' AND t.paid_at >= $1 AND t.paid_at < $2
             AND ($3::bigint[] IS NULL OR t.store_id = ANY($3))
             AND ($4::bigint = 1 OR t.store_id % $4 = $5)
           GROUP BY t.store_id, l.product_id, l.product_name, l.category"#,
        paid.from,
        paid.to,
        only.as_deref(),
        shards,
        shard,
    )
    .fetch_all(&mut *db)
    .await?;
    let named = rows
        .into_iter()
        .map(|row| {
            Ok(NamedSales {
                store_id: store_of(row.store_id)?,
                product_id: row.product_id,
                category: category_of(&row.category)?,
                product_name: row.product_name,
                sale_count: row.sale_count,
                sale_amount: row.sale_amount,
                last_sold: row.last_sold,
                last_ordered: row.last_ordered,
            })
        })
        .collect::<StorageResult<Vec<_>>>()?;
    merge_names(named)
}

async fn store_totals(
    db: &mut PgConnection,
    paid: PaidBetween,
    stores: &StoreSelection,
) -> StorageResult<Vec<StoreTotal>> {
    let (only, shards, shard) = stores.as_params();
    sqlx::query!(
        r#"SELECT t.store_id, sum(p.amount)::bigint AS "revenue!",
                  sum(p.card_fee)::bigint AS "fee!", count(*) AS "trade_count!"
           FROM trades t
           JOIN trade_payments p ON p.trade_id = t.id
           WHERE t.status = 'PAID' AND t.paid_at >= $1 AND t.paid_at < $2
             AND ($3::bigint[] IS NULL OR t.store_id = ANY($3))
             AND ($4::bigint = 1 OR t.store_id % $4 = $5)
           GROUP BY t.store_id
           ORDER BY t.store_id"#,
        paid.from,
        paid.to,
        only.as_deref(),
        shards,
        shard,
    )
    .fetch_all(&mut *db)
    .await?
    .into_iter()
    .map(|row| StoreTotal::decode(row.store_id, row.revenue, row.fee, row.trade_count))
    .collect()
}

async fn card_fees(
    db: &mut PgConnection,
    paid: PaidBetween,
    stores: &StoreSelection,
) -> StorageResult<Vec<CardFeeTotal>> {
    let (only, shards, shard) = stores.as_params();
    sqlx::query!(
        r#"SELECT t.store_id, p.card_company::text AS "card_company!",
                  count(*) AS "payment_count!", sum(p.amount)::bigint AS "amount!",
                  sum(p.card_fee)::bigint AS "fee!"
           FROM trades t
           JOIN trade_payments p ON p.trade_id = t.id
           WHERE t.status = 'PAID' AND t.paid_at >= $1 AND t.paid_at < $2
             AND p.method = 'CARD'
             AND ($3::bigint[] IS NULL OR t.store_id = ANY($3))
             AND ($4::bigint = 1 OR t.store_id % $4 = $5)
           GROUP BY t.store_id, p.card_company
           ORDER BY t.store_id, p.card_company"#,
        paid.from,
        paid.to,
        only.as_deref(),
        shards,
        shard,
    )
    .fetch_all(&mut *db)
    .await?
    .into_iter()
    .map(|row| {
        CardFeeTotal::decode(
            row.store_id,
            &row.card_company,
            row.payment_count,
            row.amount,
            row.fee,
        )
    })
    .collect()
}

#[async_trait]
impl SalesSource for PgSalesSource {
    async fn product_sales(
        &self,
        paid: PaidBetween,
        stores: &StoreSelection,
    ) -> StorageResult<Vec<ProductSaleTotal>> {
        let mut db = self.pool.acquire().await?;
        product_sales(&mut db, paid, stores).await
    }

    async fn settlement(
        &self,
        paid: PaidBetween,
        stores: &StoreSelection,
    ) -> StorageResult<SettlementSource> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let source = SettlementSource {
            stores: store_totals(&mut tx, paid, stores).await?,
            card_fees: card_fees(&mut tx, paid, stores).await?,
            products: product_sales(&mut tx, paid, stores).await?,
        };
        tx.commit().await?;
        Ok(source)
    }
}
