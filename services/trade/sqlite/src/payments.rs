//! Paying a bill on SQLite: one writer at a time (`BEGIN IMMEDIATE`), so the bill read
//! is the bill paid — no order or other payment can slip in between.

use pos_common::storage::{StorageError, to_millis};
use pos_trade_storage::{NewPayment, Paid, StorageResult, stored};
use sqlx::SqlitePool;

use crate::rows::{PaymentRow, TradeRow};

pub async fn pay(
    pool: &SqlitePool,
    now: impl Fn() -> chrono::DateTime<chrono::Utc>,
    payment: &NewPayment,
) -> StorageResult<Paid> {
    let (store_id, device_id) = (payment.store_id.get(), payment.device_id.get());
    let key = payment.idempotency_key.as_str();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let earlier = sqlx::query_as!(
        PaymentRow,
        r#"SELECT id AS "id!", trade_id, store_id, device_id, method, card_company, amount,
                  card_fee, fingerprint, paid_at
           FROM trade_payments WHERE store_id = ?1 AND idempotency_key = ?2"#,
        store_id,
        key,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(earlier) = earlier {
        let trade = sqlx::query_as!(
            TradeRow,
            r#"SELECT id AS "id!", store_id, device_id, amount, status, opened_at, paid_at
               FROM trades WHERE id = ?1"#,
            earlier.trade_id,
        )
        .fetch_one(&mut *tx)
        .await?
        .decode()?;
        tx.rollback().await?;
        return stored::earlier_payment(payment, earlier.stored()?, trade);
    }
    let open = sqlx::query_as!(
        TradeRow,
        r#"SELECT id AS "id!", store_id, device_id, amount, status, opened_at, paid_at
           FROM trades WHERE device_id = ?1 AND store_id = ?2 AND status = 'OPEN'"#,
        device_id,
        store_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(open) = open else {
        tx.rollback().await?;
        return Ok(Paid::NoOpenTrade);
    };
    if payment
        .expected_amount
        .is_some_and(|expected| expected != open.amount)
    {
        tx.rollback().await?;
        return Ok(Paid::AmountChanged {
            actual: open.amount,
        });
    }
    let at = to_millis(now());
    let fee = payment.method.fee(open.amount);
    let (method, company) = (payment.method.method_name(), payment.method.company_name());
    let fingerprint = payment.fingerprint.as_str();
    let inserted = sqlx::query_as!(
        PaymentRow,
        r#"INSERT INTO trade_payments
             (trade_id, store_id, device_id, method, card_company, amount, card_fee,
              idempotency_key, fingerprint, paid_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
           RETURNING id AS "id!", trade_id AS "trade_id!", store_id AS "store_id!",
                     device_id AS "device_id!", method AS "method!", card_company,
                     amount AS "amount!", card_fee AS "card_fee!",
                     fingerprint AS "fingerprint!", paid_at AS "paid_at!""#,
        open.id,
        store_id,
        device_id,
        method,
        company,
        open.amount,
        fee,
        key,
        fingerprint,
        at,
    )
    .fetch_one(&mut *tx)
    .await?;
    let trade = sqlx::query_as!(
        TradeRow,
        r#"UPDATE trades SET status = 'PAID', paid_at = ?2 WHERE id = ?1 AND status = 'OPEN'
           RETURNING id AS "id!", store_id AS "store_id!", device_id AS "device_id!",
                     amount AS "amount!", status AS "status!", opened_at AS "opened_at!",
                     paid_at"#,
        open.id,
        at,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StorageError::Inconsistent(
        "an open bill was closed under the write lock",
    ))?
    .decode()?;
    tx.commit().await?;
    Ok(Paid::Paid {
        payment: inserted.decode()?,
        trade,
    })
}
