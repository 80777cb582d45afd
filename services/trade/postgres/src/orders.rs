//! Committing an order on PostgreSQL: three statements whatever its size (four for a
//! bill's first order) — lock the order id against settling; in one statement check that
//! it was not given up, look for an earlier commit of its key or id and lock the device's
//! open bill; (open a bill when there is none;) then record the order, its lines
//! (`unnest`ed arrays) and the bill's new total in one statement.
//!
//! Races end at a unique index: a concurrent opener of the same bill, or a concurrent
//! commit of the same key or order id, fails on it and the whole transaction is tried
//! again, when it finds what the winner committed.

use chrono::{DateTime, Utc};
use pos_trade_storage::{
    Committed, NewOrder, Order, OrderId, StorageResult,
    stored::{self, order_with_trade},
};
use sqlx::{PgConnection, PgPool};

use crate::rows::{BillRow, TradeRow};

/// Committing and settling an order id take its advisory lock first, then read whether
/// the other happened: that read must see what committed while the lock was awaited,
/// which READ COMMITTED guarantees and a snapshot taken earlier (REPEATABLE READ or
/// SERIALIZABLE, were either the database's default) would not.
pub(crate) const READ_COMMITTED: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// What one try at committing came to: `None` when it lost a race and must be tried again.
type Attempt = Option<Committed>;

/// The device's open bill, held for the order.
struct OpenBill {
    id: i64,
    amount: i64,
    line_count: i32,
}

pub async fn commit_once(
    pool: &PgPool,
    now: impl Fn() -> DateTime<Utc>,
    order: &NewOrder,
) -> StorageResult<Attempt> {
    let mut tx = pool.begin_with(READ_COMMITTED).await?;
    // One at a time with settling this order id, so a commit and a "no such order" can
    // never both happen.
    lock_order_id(&mut tx, &order.order_id).await?;
    // Given up for good (the reconciler or a failed attempt settled it), or committed
    // before — the key's own commit first (a retry may bring a new order id), then the
    // order id's — and the device's open bill, held: a payment of it waits for this
    // order, or this order waits for the payment and then finds no open bill and opens a
    // new one. One statement, after the lock above was granted.
    let seen = sqlx::query!(
        r#"WITH open AS MATERIALIZED (
             SELECT id, amount, line_count FROM trades
             WHERE device_id = $1 AND status = 'OPEN' FOR UPDATE
           )
           SELECT EXISTS (SELECT 1 FROM trade_abandoned_orders WHERE order_id = $3)
                    AS "abandoned!",
                  e.id AS "id?", e.device_id AS "device_id?", e.fingerprint AS "fingerprint?",
                  o.id AS "open_id?", o.amount AS "open_amount?",
                  o.line_count AS "open_line_count?"
           FROM (SELECT 1) AS one
           LEFT JOIN LATERAL (
             SELECT id, device_id, fingerprint FROM trade_orders
             WHERE (device_id = $1 AND idempotency_key = $2) OR id = $3
             ORDER BY (device_id = $1 AND idempotency_key = $2) DESC
             LIMIT 1
           ) AS e ON true
           LEFT JOIN open AS o ON true"#,
        order.device_id.get(),
        order.idempotency_key.as_str(),
        order.order_id.as_str(),
    )
    .fetch_one(&mut *tx)
    .await?;
    if seen.abandoned {
        tx.rollback().await?;
        return Ok(Some(Committed::Abandoned));
    }
    let earlier = match (seen.id, seen.device_id, seen.fingerprint) {
        (Some(id), Some(device_id), Some(fingerprint)) => Some((id, device_id, fingerprint)),
        _ => None,
    };
    if let Some((earlier_id, earlier_device, fingerprint)) = earlier {
        let verdict = if stored::is_retry(order, earlier_device, &fingerprint) {
            let id = OrderId::from_stored(earlier_id);
            match read_order(&mut tx, &id).await? {
                Some((order, trade)) => Committed::Existing { order, trade },
                None => Committed::KeyReused,
            }
        } else {
            Committed::KeyReused
        };
        tx.rollback().await?;
        return Ok(Some(verdict));
    }
    let Some(total) = order.total() else {
        tx.rollback().await?;
        return Ok(Some(Committed::Overflow));
    };
    let open = match (seen.open_id, seen.open_amount, seen.open_line_count) {
        (Some(id), Some(amount), Some(line_count)) => Some(OpenBill {
            id,
            amount,
            line_count,
        }),
        _ => None,
    };
    let at = now();
    let line_count = order.lines().len() as i64;
    let trade_id = match open {
        Some(open) => {
            let lines = i64::from(open.line_count);
            if let Some(refused) = stored::open_bill_refuses(open.amount, lines, order, total) {
                tx.rollback().await?;
                return Ok(Some(refused));
            }
            open.id
        }
        None => {
            let opened = sqlx::query_scalar!(
                "INSERT INTO trades (store_id, device_id, amount, status, opened_at)
                 VALUES ($1, $2, 0, 'OPEN', $3)
                 ON CONFLICT (device_id) WHERE status = 'OPEN' DO NOTHING
                 RETURNING id",
                order.store_id.get(),
                order.device_id.get(),
                at,
            )
            .fetch_optional(&mut *tx)
            .await?;
            match opened {
                Some(id) => id,
                // Another first order opened it; try again to join that bill.
                None => return Ok(None),
            }
        }
    };

    let lines = order.lines();
    let product_ids: Vec<i64> = lines.iter().map(|l| l.product_id.get()).collect();
    let names: Vec<String> = lines.iter().map(|l| l.product_name.clone()).collect();
    let categories: Vec<String> = lines.iter().map(|l| l.category.as_str().into()).collect();
    let unit_prices: Vec<i64> = lines.iter().map(|l| l.unit_price).collect();
    let counts: Vec<i64> = lines.iter().map(|l| l.count).collect();
    let amounts: Vec<i64> = lines.iter().map(|l| l.amount).collect();
    let placed = sqlx::query_as!(
        TradeRow,
        r#"WITH placed AS (
             INSERT INTO trade_orders
               (id, trade_id, store_id, device_id, amount, idempotency_key, fingerprint,
                created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING id
           ), lines AS (
             INSERT INTO trade_order_lines
               (order_id, product_id, product_name, category, unit_price, count, amount)
             SELECT placed.id, l.product_id, l.product_name,
                    l.category::trade_product_category, l.unit_price, l.count, l.amount
             FROM placed,
                  unnest($9::bigint[], $10::text[], $11::text[], $12::bigint[], $13::bigint[],
                         $14::bigint[])
                    AS l (product_id, product_name, category, unit_price, count, amount)
           )
           UPDATE trades SET amount = amount + $5, line_count = line_count + $15
           WHERE id = $2 AND EXISTS (SELECT 1 FROM placed)
           RETURNING id, store_id, device_id, amount, status::text AS "status!", opened_at,
                     paid_at"#,
        order.order_id.as_str(),
        trade_id,
        order.store_id.get(),
        order.device_id.get(),
        total,
        order.idempotency_key.as_str(),
        order.fingerprint,
        at,
        &product_ids,
        &names,
        &categories,
        &unit_prices,
        &counts,
        &amounts,
        line_count as i32,
    )
    .fetch_optional(&mut *tx)
    .await;
    let trade = match placed {
        Ok(Some(trade)) => trade.decode()?,
        Ok(None) => {
            return Err(pos_common::storage::StorageError::Inconsistent(
                "a locked open bill vanished before its order was added",
            ));
        }
        Err(err) if crate::is_unique_violation(&err) => return Ok(None),
        Err(err) if crate::is_numeric_overflow(&err) => return Ok(Some(Committed::Overflow)),
        Err(err) => return Err(err.into()),
    };
    tx.commit().await?;
    let order = Order {
        id: order.order_id.clone(),
        trade_id: trade.id,
        store_id: order.store_id,
        device_id: order.device_id,
        amount: total,
        created_at: at,
        lines: lines.to_vec(),
    };
    Ok(Some(Committed::Placed { order, trade }))
}

/// Whether `order` was committed; if not, gives its id up for good (see
/// `TradeStorage::settle_order`), under the same lock as committing it.
pub async fn settle(pool: &PgPool, at: DateTime<Utc>, order: &OrderId) -> StorageResult<bool> {
    let mut tx = pool.begin_with(READ_COMMITTED).await?;
    lock_order_id(&mut tx, order).await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM trade_orders WHERE id = $1) AS "exists!""#,
        order.as_str(),
    )
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        sqlx::query!(
            "INSERT INTO trade_abandoned_orders (order_id, abandoned_at) VALUES ($1, $2)
             ON CONFLICT (order_id) DO NOTHING",
            order.as_str(),
            at,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(exists)
}

/// Serializes committing and settling one order id until the transaction ends. The
/// order row itself cannot be locked before it exists, hence an advisory lock on the
/// id's hash (a collision only makes two ids wait for each other).
async fn lock_order_id(conn: &mut PgConnection, order: &OrderId) -> StorageResult<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        order.as_str()
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An order with its lines and its bill's head, in one statement.
pub async fn read_order(
    conn: &mut PgConnection,
    order: &OrderId,
) -> StorageResult<Option<(Order, pos_trade_storage::Trade)>> {
    let rows = sqlx::query_as!(
        BillRow,
        r#"SELECT t.id, t.store_id, t.device_id, t.amount, t.status::text AS "status!",
                  t.opened_at, t.paid_at,
                  o.id AS "order_id?", o.amount AS "order_amount?",
                  o.created_at AS "order_created_at?", l.product_id AS "product_id?",
                  l.product_name AS "product_name?", l.category::text AS "category?",
                  l.unit_price AS "unit_price?", l.count AS "count?",
                  l.amount AS "line_amount?"
           FROM trade_orders o
           JOIN trades t ON t.id = o.trade_id
           JOIN trade_order_lines l ON l.order_id = o.id
           WHERE o.id = $1
           ORDER BY l.product_id"#,
        order.as_str(),
    )
    .fetch_all(&mut *conn)
    .await?;
    order_with_trade(rows.into_iter().map(BillRow::stored))
}
