//! What paid trades add up to, on SQLite: one `GROUP BY` statement per kind of total,
//! every total attributed to its trade's `paid_at` (Unix milliseconds); `sum` fails on
//! overflow rather than wraps. A settlement's three reads share one read transaction,
//! which in WAL mode is one snapshot.

use async_trait::async_trait;
use pos_common::storage::{StorageError, from_millis, to_millis};
use pos_trade_storage::{
    StorageResult,
    sales::{
        CardFeeTotal, NamedSales, PaidBetween, ProductSaleTotal, SalesSource, SettlementSource,
        StoreSelection, StoreTotal, category_of, merge_names, store_of,
    },
};
use sqlx::{SqliteConnection, SqlitePool};

/// Reads paid trades from the trade database.
#[derive(Clone)]
pub struct SqliteSalesSource {
    pool: SqlitePool,
}

impl SqliteSalesSource {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

/// The selection as parameters: a JSON array of store ids or NULL, shard count, index.
fn params(stores: &StoreSelection) -> StorageResult<(Option<String>, i64, i64)> {
    let (only, shards, shard) = stores.as_params();
    let only = only
        .map(|ids| serde_json::to_string(&ids))
        .transpose()
        .map_err(|_| StorageError::Inconsistent("store ids do not encode as JSON"))?;
    Ok((only, shards, shard))
}

async fn product_sales(
    db: &mut SqliteConnection,
    paid: PaidBetween,
    stores: &StoreSelection,
) -> StorageResult<Vec<ProductSaleTotal>> {
    let (only, shards, shard) = params(stores)?;
    let (from, to) = (to_millis(paid.from), to_millis(paid.to));
    let rows = sqlx::query!(
        r#"SELECT t.store_id AS "store_id!", l.product_id AS "product_id!",
                  l.product_name AS "product_name!", l.category AS "category!",
                  sum(l.count) AS "sale_count!: i64", sum(l.amount) AS "sale_amount!: i64",
                  max(t.paid_at) AS "last_sold!: i64",
                  max(o.created_at) AS "last_ordered!: i64"
           FROM trades t
           JOIN trade_orders o ON o.trade_id = t.id
           JOIN trade_order_lines l ON l.order_id = o.id
           WHERE t.status = 'PAID' AND t.paid_at >= ?1 AND t.paid_at < ?2
             AND (?3 IS NULL OR t.store_id IN (SELECT value FROM json_each(?3)))
             AND t.store_id % ?4 = ?5
           GROUP BY t.store_id, l.product_id, l.product_name, l.category"#,
        from,
        to,
        only,
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
                last_sold: from_millis("trades.paid_at", row.last_sold)?,
                last_ordered: from_millis("trade_orders.created_at", row.last_ordered)?,
            })
        })
        .collect::<StorageResult<Vec<_>>>()?;
    merge_names(named)
}

async fn store_totals(
    db: &mut SqliteConnection,
    paid: PaidBetween,
    stores: &StoreSelection,
) -> StorageResult<Vec<StoreTotal>> {
    let (only, shards, shard) = params(stores)?;
    let (from, to) = (to_millis(paid.from), to_millis(paid.to));
    sqlx::query!(
        r#"SELECT t.store_id AS "store_id!", sum(p.amount) AS "revenue!: i64",
                  sum(p.card_fee) AS "fee!: i64",
                  count(*) AS "trade_count!: i64"
           FROM trades t
           JOIN trade_payments p ON p.trade_id = t.id
           WHERE t.status = 'PAID' AND t.paid_at >= ?1 AND t.paid_at < ?2
             AND (?3 IS NULL OR t.store_id IN (SELECT value FROM json_each(?3)))
             AND t.store_id % ?4 = ?5
           GROUP BY t.store_id
           ORDER BY t.store_id"#,
        from,
        to,
        only,
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
    db: &mut SqliteConnection,
    paid: PaidBetween,
    stores: &StoreSelection,
) -> StorageResult<Vec<CardFeeTotal>> {
    let (only, shards, shard) = params(stores)?;
    let (from, to) = (to_millis(paid.from), to_millis(paid.to));
    sqlx::query!(
        r#"SELECT t.store_id AS "store_id!", p.card_company AS "card_company!",
                  count(*) AS "payment_count!: i64", sum(p.amount) AS "amount!: i64",
                  sum(p.card_fee) AS "fee!: i64"
           FROM trades t
           JOIN trade_payments p ON p.trade_id = t.id
           WHERE t.status = 'PAID' AND t.paid_at >= ?1 AND t.paid_at < ?2
             AND p.method = 'CARD'
             AND (?3 IS NULL OR t.store_id IN (SELECT value FROM json_each(?3)))
             AND t.store_id % ?4 = ?5
           GROUP BY t.store_id, p.card_company
           ORDER BY t.store_id,
                    CASE p.card_company WHEN 'K' THEN 0 WHEN 'H' THEN 1 ELSE 2 END"#,
        from,
        to,
        only,
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
impl SalesSource for SqliteSalesSource {
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
        let source = SettlementSource {
            stores: store_totals(&mut tx, paid, stores).await?,
            card_fees: card_fees(&mut tx, paid, stores).await?,
            products: product_sales(&mut tx, paid, stores).await?,
        };
        tx.commit().await?;
        Ok(source)
    }
}
