//! Paying a bill on PostgreSQL: lock the device's open bill, look for an earlier payment
//! of the key, then record the payment and close the bill — five statements.
//!
//! Two payments of one bill queue on its row lock: the second finds the bill paid (no
//! open bill), or, with the same key, the first one's payment. An order racing the
//! payment queues on the same lock, so it lands on the bill before it is paid (and a
//! payment expecting the old amount is refused) or on a new bill after.

use chrono::{DateTime, Utc};
use pos_common::storage::StorageError;
use pos_trade_storage::{
    NewPayment, Paid, StorageResult,
    stored::{self, StoredPayment},
};
use sqlx::PgPool;

use crate::rows::TradeRow;

/// What one try at paying came to: `None` when it lost a race and must be tried again.
type Attempt = Option<Paid>;

pub async fn pay_once(
    pool: &PgPool,
    now: impl Fn() -> DateTime<Utc>,
    payment: &NewPayment,
) -> StorageResult<Attempt> {
    let mut tx = pool.begin().await?;
    let open = sqlx::query_as!(
        TradeRow,
        r#"SELECT id, store_id, device_id, amount, status::text AS "status!", opened_at, paid_at
           FROM trades WHERE device_id = $1 AND store_id = $2 AND status = 'OPEN'
           FOR UPDATE"#,
        payment.device_id.get(),
        payment.store_id.get(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    // Read after the lock: a payment of the same key that held it has committed by now.
    let earlier = sqlx::query_as!(
        StoredPayment,
        r#"SELECT id, trade_id, store_id, device_id, method::text AS "method!",
                  card_company::text AS card_company, amount, card_fee, fingerprint, paid_at
           FROM trade_payments WHERE store_id = $1 AND idempotency_key = $2"#,
        payment.store_id.get(),
        payment.idempotency_key.as_str(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(earlier) = earlier {
        let trade = sqlx::query_as!(
            TradeRow,
            r#"SELECT id, store_id, device_id, amount, status::text AS "status!", opened_at,
                      paid_at
               FROM trades WHERE id = $1"#,
            earlier.trade_id,
        )
        .fetch_one(&mut *tx)
        .await?
        .decode()?;
        tx.rollback().await?;
        return stored::earlier_payment(payment, earlier, trade).map(Some);
    }
    let Some(open) = open else {
        tx.rollback().await?;
        return Ok(Some(Paid::NoOpenTrade));
    };
    if payment
        .expected_amount
        .is_some_and(|expected| expected != open.amount)
    {
        tx.rollback().await?;
        return Ok(Some(Paid::AmountChanged {
            actual: open.amount,
        }));
    }
    let at = now();
    let fee = payment.method.fee(open.amount);
    let inserted = sqlx::query_as!(
        StoredPayment,
        r#"INSERT INTO trade_payments
             (trade_id, store_id, device_id, method, card_company, amount, card_fee,
              idempotency_key, fingerprint, paid_at)
           VALUES ($1, $2, $3, $4::text::trade_payment_method,
                   $5::text::trade_card_company, $6, $7, $8, $9, $10)
           RETURNING id, trade_id, store_id, device_id, method::text AS "method!",
                     card_company::text AS card_company, amount, card_fee, fingerprint,
                     paid_at"#,
        open.id,
        payment.store_id.get(),
        payment.device_id.get(),
        payment.method.method_name(),
        payment.method.company_name(),
        open.amount,
        fee,
        payment.idempotency_key.as_str(),
        payment.fingerprint,
        at,
    )
    .fetch_one(&mut *tx)
    .await;
    let inserted = match inserted {
        Ok(inserted) => inserted,
        // The same key paid another bill of the store meanwhile: try again to answer it.
        Err(err) if crate::is_unique_violation(&err) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let trade = sqlx::query_as!(
        TradeRow,
        r#"UPDATE trades SET status = 'PAID', paid_at = $2 WHERE id = $1 AND status = 'OPEN'
           RETURNING id, store_id, device_id, amount, status::text AS "status!", opened_at,
                     paid_at"#,
        open.id,
        at,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StorageError::Inconsistent(
        "a locked open bill was closed by someone else",
    ))?
    .decode()?;
    tx.commit().await?;
    Ok(Some(Paid::Paid {
        payment: inserted.decode()?,
        trade,
    }))
}
