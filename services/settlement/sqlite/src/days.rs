//! DAY rows over a range of days, read for rolling days up into a WEEK or MONTH: each
//! read is one read transaction (one snapshot in WAL mode), so the rows are those of the
//! windows it says were aggregated. The stores are passed as one JSON array; the rows
//! come ordered as the rollup sums them (by store, then product or company, then day).

use chrono::NaiveDate;
use pos_common::domain::StoreId;
use pos_settlement_storage::{
    CardFees, DaySales, DaySettlements, ProductSales, StorageResult, StoreTotals, store_of,
};
use sqlx::SqlitePool;

use crate::{day, json};

fn ids(stores: &[StoreId]) -> StorageResult<String> {
    json(&stores.iter().map(|s| s.get()).collect::<Vec<_>>())
}

/// DAY product sales of `stores` from `from` to `to` (exclusive), and which (store, day)
/// windows were aggregated.
pub async fn product_sales(
    pool: &SqlitePool,
    stores: &[StoreId],
    from: NaiveDate,
    to: NaiveDate,
) -> StorageResult<DaySales> {
    let ids = ids(stores)?;
    let (from, to) = (from.to_string(), to.to_string());
    let mut tx = pool.begin().await?;
    let covered = sqlx::query!(
        "SELECT store_id, start_date FROM product_sales_windows
         WHERE term = 'DAY' AND store_id IN (SELECT value FROM json_each(?1))
           AND start_date >= ?2 AND start_date < ?3
         ORDER BY store_id, start_date",
        ids,
        from,
        to,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| {
        Ok((
            store_of("product_sales_windows.store_id", row.store_id)?,
            day("product_sales_windows.start_date", &row.start_date)?,
        ))
    })
    .collect::<StorageResult<Vec<_>>>()?;
    let sales = sqlx::query!(
        r#"SELECT start_date, store_id, product_id, product_name, category, sale_count,
                  sale_amount
           FROM product_sales
           WHERE term = 'DAY' AND store_id IN (SELECT value FROM json_each(?1))
             AND start_date >= ?2 AND start_date < ?3
           ORDER BY store_id, product_id, start_date"#,
        ids,
        from,
        to,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        let sales = ProductSales::decode(
            r.store_id,
            r.product_id,
            r.product_name,
            &r.category,
            r.sale_count,
            r.sale_amount,
        )?;
        Ok((day("product_sales.start_date", &r.start_date)?, sales))
    })
    .collect::<StorageResult<Vec<_>>>()?;
    tx.commit().await?;
    Ok(DaySales { covered, sales })
}

/// DAY settlements of `stores` from `from` to `to` (exclusive): totals, card fees and
/// product sales.
pub async fn settlements(
    pool: &SqlitePool,
    stores: &[StoreId],
    from: NaiveDate,
    to: NaiveDate,
) -> StorageResult<DaySettlements> {
    let ids = ids(stores)?;
    let (from, to) = (from.to_string(), to.to_string());
    let mut tx = pool.begin().await?;
    let totals = sqlx::query!(
        "SELECT start_date, store_id, revenue, fee, trade_count FROM settlements
         WHERE term = 'DAY' AND store_id IN (SELECT value FROM json_each(?1))
           AND start_date >= ?2 AND start_date < ?3
         ORDER BY store_id, start_date",
        ids,
        from,
        to,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        let totals = StoreTotals::decode(r.store_id, r.revenue, r.fee, r.trade_count)?;
        Ok((day("settlements.start_date", &r.start_date)?, totals))
    })
    .collect::<StorageResult<Vec<_>>>()?;
    let card_fees = sqlx::query!(
        "SELECT start_date, store_id, card_company, payment_count, amount, fee
         FROM settlement_card_fees
         WHERE term = 'DAY' AND store_id IN (SELECT value FROM json_each(?1))
           AND start_date >= ?2 AND start_date < ?3
         ORDER BY store_id, card_company, start_date",
        ids,
        from,
        to,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        let fees = CardFees::decode(
            r.store_id,
            &r.card_company,
            r.payment_count,
            r.amount,
            r.fee,
        )?;
        Ok((day("settlement_card_fees.start_date", &r.start_date)?, fees))
    })
    .collect::<StorageResult<Vec<_>>>()?;
    let products = sqlx::query!(
        "SELECT start_date, store_id, product_id, product_name, category, sale_count,
                sale_amount
         FROM settlement_products
         WHERE term = 'DAY' AND store_id IN (SELECT value FROM json_each(?1))
           AND start_date >= ?2 AND start_date < ?3
         ORDER BY store_id, product_id, start_date",
        ids,
        from,
        to,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        let sales = ProductSales::decode(
            r.store_id,
            r.product_id,
            r.product_name,
            &r.category,
            r.sale_count,
            r.sale_amount,
        )?;
        Ok((day("settlement_products.start_date", &r.start_date)?, sales))
    })
    .collect::<StorageResult<Vec<_>>>()?;
    tx.commit().await?;
    Ok(DaySettlements {
        totals,
        card_fees,
        products,
    })
}
