//! DAY rows over a range of days, read for rolling days up into a WEEK or MONTH: each
//! read is one REPEATABLE READ snapshot, so the rows are those of the windows it says
//! were aggregated, however runs replace them meanwhile. The rows come ordered as the
//! rollup sums them (by store, then product or company, then day).

use chrono::NaiveDate;
use pos_settlement_storage::{
    CardFees, DaySales, DaySettlements, ProductSales, StorageResult, StoreTotals, store_of,
};
use sqlx::{PgPool, Postgres, Transaction};

async fn snapshot(pool: &PgPool) -> StorageResult<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// DAY product sales of `stores` from `from` to `to` (exclusive), and which (store, day)
/// windows were aggregated.
pub async fn product_sales(
    pool: &PgPool,
    stores: &[i64],
    from: NaiveDate,
    to: NaiveDate,
) -> StorageResult<DaySales> {
    let mut tx = snapshot(pool).await?;
    let covered = sqlx::query!(
        "SELECT store_id, start_date FROM product_sales_windows
         WHERE term = 'DAY' AND store_id = ANY($1) AND start_date >= $2 AND start_date < $3
         ORDER BY store_id, start_date",
        stores,
        from,
        to,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| {
        Ok((
            store_of("product_sales_windows.store_id", row.store_id)?,
            row.start_date,
        ))
    })
    .collect::<StorageResult<Vec<_>>>()?;
    let sales = sqlx::query!(
        r#"SELECT start_date, store_id, product_id, product_name,
                  category::text AS "category!", sale_count, sale_amount
           FROM product_sales
           WHERE term = 'DAY' AND store_id = ANY($1) AND start_date >= $2
             AND start_date < $3
           ORDER BY store_id, product_id, start_date"#,
        stores,
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
        Ok((r.start_date, sales))
    })
    .collect::<StorageResult<Vec<_>>>()?;
    tx.commit().await?;
    Ok(DaySales { covered, sales })
}

/// DAY settlements of `stores` from `from` to `to` (exclusive): totals, card fees and
/// product sales.
pub async fn settlements(
    pool: &PgPool,
    stores: &[i64],
    from: NaiveDate,
    to: NaiveDate,
) -> StorageResult<DaySettlements> {
    let mut tx = snapshot(pool).await?;
    let totals = sqlx::query!(
        "SELECT start_date, store_id, revenue, fee, trade_count FROM settlements
         WHERE term = 'DAY' AND store_id = ANY($1) AND start_date >= $2 AND start_date < $3
         ORDER BY store_id, start_date",
        stores,
        from,
        to,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        let totals = StoreTotals::decode(r.store_id, r.revenue, r.fee, r.trade_count)?;
        Ok((r.start_date, totals))
    })
    .collect::<StorageResult<Vec<_>>>()?;
    let card_fees = sqlx::query!(
        r#"SELECT start_date, store_id, card_company::text AS "card_company!", payment_count,
                  amount, fee
           FROM settlement_card_fees
           WHERE term = 'DAY' AND store_id = ANY($1) AND start_date >= $2
             AND start_date < $3
           ORDER BY store_id, card_company, start_date"#,
        stores,
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
        Ok((r.start_date, fees))
    })
    .collect::<StorageResult<Vec<_>>>()?;
    let products = sqlx::query!(
        r#"SELECT start_date, store_id, product_id, product_name,
                  category::text AS "category!", sale_count, sale_amount
           FROM settlement_products
           WHERE term = 'DAY' AND store_id = ANY($1) AND start_date >= $2
             AND start_date < $3
           ORDER BY store_id, product_id, start_date"#,
        stores,
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
        Ok((r.start_date, sales))
    })
    .collect::<StorageResult<Vec<_>>>()?;
    tx.commit().await?;
    Ok(DaySettlements {
        totals,
        card_fees,
        products,
    })
}
