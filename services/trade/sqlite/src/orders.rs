//! Committing an order on SQLite: a constant number of statements whatever its size —
//! the order's lines go in as one JSON array (`json_each`). The transaction takes the
//! write lock first (`BEGIN IMMEDIATE`), so commits and payments run one at a time and
//! each sees every one before it whole.

use pos_common::storage::{StorageError, from_millis, to_millis};
use pos_trade_storage::{
    Committed, NewOrder, Order, OrderId, StorageResult, Trade,
    stored::{self, order_with_trade},
};
use sqlx::{SqliteConnection, SqlitePool};

use crate::rows::{BillRow, TradeRow};

/// Commits one order in a write transaction of its own.
pub async fn commit(
    pool: &SqlitePool,
    now: impl Fn() -> chrono::DateTime<chrono::Utc>,
    order: &NewOrder,
) -> StorageResult<Committed> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let committed = commit_in(&mut tx, now, order).await?;
    if matches!(committed, Committed::Placed { .. }) {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(committed)
}

/// Commits one order inside the write transaction `conn` holds (`BEGIN IMMEDIATE`), which
/// the caller commits when the order is placed and rolls back otherwise: every other
/// answer is reached before anything is written.
pub async fn commit_in(
    conn: &mut SqliteConnection,
    now: impl Fn() -> chrono::DateTime<chrono::Utc>,
    order: &NewOrder,
) -> StorageResult<Committed> {
    let (device_id, store_id) = (order.device_id.get(), order.store_id.get());
    let (key, order_id) = (order.idempotency_key.as_str(), order.order_id.as_str());
    // Given up for good, or committed before: the key's own commit first (a retry may
    // bring a new order id), then the order id's. One statement.
    let seen = sqlx::query!(
        r#"SELECT EXISTS (SELECT 1 FROM trade_abandoned_orders WHERE order_id = ?3)
                    AS "abandoned!: bool",
                  e.id AS "id?: String", e.device_id AS "device_id?: i64",
                  e.fingerprint AS "fingerprint?: String"
           FROM (SELECT 1) AS one
           LEFT JOIN (
             SELECT id, device_id, fingerprint FROM trade_orders
             WHERE (device_id = ?1 AND idempotency_key = ?2) OR id = ?3
             ORDER BY (device_id = ?1 AND idempotency_key = ?2) DESC
             LIMIT 1
           ) AS e ON 1"#,
        device_id,
        key,
        order_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    if seen.abandoned {
        return Ok(Committed::Abandoned);
    }
    if let (Some(earlier_id), Some(earlier_device), Some(fingerprint)) =
        (seen.id, seen.device_id, seen.fingerprint)
    {
        let verdict = if stored::is_retry(order, earlier_device, &fingerprint) {
            match read_order(&mut *conn, &OrderId::from_stored(earlier_id)).await? {
                Some((order, trade)) => Committed::Existing { order, trade },
                None => Committed::KeyReused,
            }
        } else {
            Committed::KeyReused
        };
        return Ok(verdict);
    }
    let Some(total) = order.total() else {
        return Ok(Committed::Overflow);
    };
    let open = sqlx::query!(
        "SELECT id, amount, line_count FROM trades WHERE device_id = ?1 AND status = 'OPEN'",
        device_id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let at = now();
    let at_millis = to_millis(at);
    let line_count = order.lines().len() as i64;
    let trade_id = match open {
        Some(open) => {
            if let Some(refused) =
                stored::open_bill_refuses(open.amount, open.line_count, order, total)
            {
                return Ok(refused);
            }
            open.id
        }
        None => {
            sqlx::query_scalar!(
                r#"INSERT INTO trades (store_id, device_id, amount, status, opened_at)
                   VALUES (?1, ?2, 0, 'OPEN', ?3)
                   RETURNING id AS "id!""#,
                store_id,
                device_id,
                at_millis,
            )
            .fetch_one(&mut *conn)
            .await?
        }
    };
    let fingerprint = order.fingerprint.as_str();
    sqlx::query!(
        "INSERT INTO trade_orders
           (id, trade_id, store_id, device_id, amount, idempotency_key, fingerprint, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        order_id,
        trade_id,
        store_id,
        device_id,
        total,
        key,
        fingerprint,
        at_millis,
    )
    .execute(&mut *conn)
    .await?;
    let lines = serde_json::to_string(
        &order
            .lines()
            .iter()
            .map(|l| {
                serde_json::json!([
                    l.product_id.get(),
                    l.product_name,
                    l.category.as_str(),
                    l.unit_price,
                    l.count,
                    l.amount
                ])
            })
            .collect::<Vec<_>>(),
    )
    .map_err(|_| StorageError::Inconsistent("order lines do not encode as JSON"))?;
    let recorded = sqlx::query!(
        "INSERT INTO trade_order_lines
           (order_id, product_id, product_name, category, unit_price, count, amount)
         SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                json_extract(value, '$[2]'), json_extract(value, '$[3]'),
                json_extract(value, '$[4]'), json_extract(value, '$[5]')
         FROM json_each(?2)",
        order_id,
        lines,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if recorded != order.lines().len() as u64 {
        return Err(StorageError::Inconsistent(
            "not every order line was recorded",
        ));
    }
    let trade = sqlx::query_as!(
        TradeRow,
        r#"UPDATE trades SET amount = amount + ?2, line_count = line_count + ?3 WHERE id = ?1
           RETURNING id AS "id!", store_id AS "store_id!", device_id AS "device_id!",
                     amount AS "amount!", status AS "status!", opened_at AS "opened_at!",
                     paid_at"#,
        trade_id,
        total,
        line_count,
    )
    .fetch_one(&mut *conn)
    .await?
    .decode()?;
    Ok(Committed::Placed {
        order: Order {
            id: order.order_id.clone(),
            trade_id: trade.id,
            store_id: order.store_id,
            device_id: order.device_id,
            amount: total,
            created_at: from_millis("trade_orders.created_at", at_millis)?,
            lines: order.lines().to_vec(),
        },
        trade,
    })
}

/// An order with its lines and its bill's head, in one statement.
pub async fn read_order(
    conn: &mut SqliteConnection,
    order: &OrderId,
) -> StorageResult<Option<(Order, Trade)>> {
    let order_id = order.as_str();
    let rows = sqlx::query_as!(
        BillRow,
        r#"SELECT t.id, t.store_id, t.device_id, t.amount, t.status, t.opened_at, t.paid_at,
                  o.id AS "order_id?: String", o.amount AS "order_amount?: i64",
                  o.created_at AS "order_created_at?: i64",
                  l.product_id AS "product_id?: i64", l.product_name AS "product_name?: String",
                  l.category AS "category?: String", l.unit_price AS "unit_price?: i64",
                  l.count AS "count?: i64", l.amount AS "line_amount?: i64"
           FROM trade_orders o
           JOIN trades t ON t.id = o.trade_id
           JOIN trade_order_lines l ON l.order_id = o.id
           WHERE o.id = ?1
           ORDER BY l.product_id"#,
        order_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    let rows = rows
        .into_iter()
        .map(BillRow::stored)
        .collect::<StorageResult<Vec<_>>>()?;
    order_with_trade(rows)
}

/// Whether `order` was committed; if not, gives its id up for good (see
/// `TradeStorage::settle_order`). The write lock orders it with every commit.
pub async fn settle(
    pool: &SqlitePool,
    at: chrono::DateTime<chrono::Utc>,
    order: &OrderId,
) -> StorageResult<bool> {
    let order_id = order.as_str();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM trade_orders WHERE id = ?1) AS "exists!: bool""#,
        order_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        let at = to_millis(at);
        sqlx::query!(
            "INSERT INTO trade_abandoned_orders (order_id, abandoned_at) VALUES (?1, ?2)
             ON CONFLICT (order_id) DO NOTHING",
            order_id,
            at,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(exists)
}
