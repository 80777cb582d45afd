//! Stock reservations on SQLite. Reserving an order is five statements whatever its size:
//! claim the order id (which takes the write lock), read its products, record the lines
//! and take the stock (each one statement over the lines as a JSON array), commit.

use std::collections::{HashMap, HashSet};

use pos_common::{
    domain::StoreId,
    storage::{StorageError, from_millis},
};
use pos_store_storage::{
    Confirmed, ConfirmedMany, OrderId, OrderLines, Released, Reservation, ReservationStatus,
    Reserved, StockRequest, StorageResult,
    stored::{self, StoredLine},
};
use sqlx::{Connection, SqliteConnection, SqlitePool};

/// Store id of a tombstone (a release recorded before any reservation of its order id).
const TOMBSTONE_STORE: i64 = 0;

pub async fn reserve(
    pool: &SqlitePool,
    now: i64,
    order: &OrderId,
    store: StoreId,
    lines: &OrderLines,
) -> StorageResult<Reserved> {
    let mut conn = pool.acquire().await?;
    reserve_on(&mut conn, now, order, store, lines).await
}

/// Many orders in one write transaction, each in a savepoint of its own (so a refused
/// order changes nothing), in turn: one commit for the lot instead of one per order. A
/// failure (not a refusal) anywhere rolls the lot back and the orders are reserved one
/// by one, each answered on its own.
pub async fn reserve_many(
    pool: &SqlitePool,
    now: i64,
    requests: &[StockRequest],
) -> Vec<StorageResult<Reserved>> {
    match together(pool, now, requests).await {
        Ok(answers) => answers.into_iter().map(Ok).collect(),
        Err(err) => {
            tracing::debug!(
                error = %err,
                orders = requests.len(),
                "reserving a batch together failed; reserving its orders one by one"
            );
            let mut answers = Vec::with_capacity(requests.len());
            for request in requests {
                answers
                    .push(reserve(pool, now, &request.order, request.store, &request.lines).await);
            }
            answers
        }
    }
}

async fn together(
    pool: &SqlitePool,
    now: i64,
    requests: &[StockRequest],
) -> StorageResult<Vec<Reserved>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        answers
            .push(reserve_on(&mut tx, now, &request.order, request.store, &request.lines).await?);
    }
    tx.commit().await?;
    Ok(answers)
}

/// One order's reservation in a transaction of its own — a savepoint when `conn` is
/// already in one.
async fn reserve_on(
    conn: &mut SqliteConnection,
    now: i64,
    order: &OrderId,
    store: StoreId,
    lines: &OrderLines,
) -> StorageResult<Reserved> {
    let order_id = order.as_str();
    let store_id = store.get();
    let mut tx = conn.begin().await?;
    let claimed = sqlx::query!(
        "INSERT INTO stock_reservations (order_id, store_id, status, created_at, updated_at)
         VALUES (?1, ?2, 'RESERVED', ?3, ?3) ON CONFLICT (order_id) DO NOTHING",
        order_id,
        store_id,
        now,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        let existing = read(&mut tx, order)
            .await?
            .ok_or(StorageError::Inconsistent(
                "a reservation conflicted on its order id but cannot be read",
            ))?;
        tx.rollback().await?;
        return Ok(if existing.answers(store, lines) {
            Reserved::Existing(existing)
        } else {
            Reserved::KeyReused
        });
    }

    let wanted = serde_json::to_string(
        &lines
            .lines()
            .iter()
            .map(|l| [l.product_id.get(), l.count])
            .collect::<Vec<_>>(),
    )
    .map_err(|_| StorageError::Inconsistent("order lines do not encode as JSON"))?;
    let on_shelf: HashMap<i64, (i64, bool)> = sqlx::query!(
        r#"SELECT id AS "id!", stock, deleted_at IS NOT NULL AS "deleted!: bool"
           FROM products
           WHERE store_id = ?1 AND id IN (SELECT json_extract(value, '$[0]') FROM json_each(?2))"#,
        store_id,
        wanted,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| (row.id, (row.stock, row.deleted)))
    .collect();
    if let Some(refusal) = stored::refusal(lines, &on_shelf) {
        tx.rollback().await?;
        return Ok(refusal);
    }

    // The lines keep the products as they are now; then the stock they name is taken.
    let recorded = sqlx::query!(
        r#"INSERT INTO stock_reservation_lines
             (order_id, product_id, product_name, category, unit_price, count)
           SELECT ?1, p.id, p.name, p.category, p.price, json_extract(w.value, '$[1]')
           FROM json_each(?2) AS w
           JOIN products p ON p.id = json_extract(w.value, '$[0]') AND p.store_id = ?3
           RETURNING product_id AS "product_id!", product_name AS "product_name!",
                     category AS "category!", unit_price AS "unit_price!", count AS "count!""#,
        order_id,
        wanted,
        store_id,
    )
    .fetch_all(&mut *tx)
    .await?;
    let taken = sqlx::query!(
        "UPDATE products
         SET stock = stock - (SELECT l.count FROM stock_reservation_lines l
                              WHERE l.order_id = ?1 AND l.product_id = products.id)
         WHERE id IN (SELECT product_id FROM stock_reservation_lines WHERE order_id = ?1)",
        order_id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if recorded.len() != lines.lines().len() || taken != lines.lines().len() as u64 {
        return Err(StorageError::Inconsistent(
            "products changed between reading and taking their stock",
        ));
    }
    let lines = recorded.into_iter().map(|row| StoredLine {
        product_id: Some(row.product_id),
        product_name: Some(row.product_name),
        category: Some(row.category),
        unit_price: Some(row.unit_price),
        count: Some(row.count),
    });
    let reservation = stored::reservation(
        order,
        Some(store),
        ReservationStatus::Reserved.as_str(),
        from_millis("stock_reservations.created_at", now)?,
        lines,
    )?;
    tx.commit().await?;
    Ok(Reserved::Taken(reservation))
}

pub async fn confirm(pool: &SqlitePool, now: i64, order: &OrderId) -> StorageResult<Confirmed> {
    let order_id = order.as_str();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "UPDATE stock_reservations SET status = 'CONFIRMED', updated_at = ?2
         WHERE order_id = ?1 AND status = 'RESERVED'",
        order_id,
        now,
    )
    .execute(&mut *tx)
    .await?;
    let record = read(&mut tx, order).await?;
    tx.commit().await?;
    Ok(match record {
        None => Confirmed::NotFound,
        Some(r) if r.status == ReservationStatus::Released => Confirmed::AlreadyReleased(r),
        Some(r) => Confirmed::Confirmed(r),
    })
}

/// One statement when every reservation is held (the usual case): the update confirms
/// them; only the ids it did not confirm are read again, to say why. The write lock makes
/// the two one moment.
pub async fn confirm_many(
    pool: &SqlitePool,
    now: i64,
    orders: &[OrderId],
) -> StorageResult<ConfirmedMany> {
    let ids: Vec<&str> = orders.iter().map(OrderId::as_str).collect();
    let wanted = serde_json::to_string(&ids)
        .map_err(|_| StorageError::Inconsistent("order ids do not encode as JSON"))?;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let confirmed: HashSet<String> = sqlx::query_scalar!(
        r#"UPDATE stock_reservations SET status = 'CONFIRMED', updated_at = ?2
           WHERE order_id IN (SELECT value FROM json_each(?1)) AND status = 'RESERVED'
           RETURNING order_id AS "order_id!""#,
        wanted,
        now,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let mut statuses = HashMap::new();
    if ids.iter().any(|id| !confirmed.contains(*id)) {
        statuses = sqlx::query!(
            r#"SELECT order_id AS "order_id!", status FROM stock_reservations
               WHERE order_id IN (SELECT value FROM json_each(?1))"#,
            wanted,
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|row| (row.order_id, row.status))
        .collect();
    }
    tx.commit().await?;
    stored::confirmed_many(orders, &confirmed, &statuses)
}

pub async fn release(pool: &SqlitePool, now: i64, order: &OrderId) -> StorageResult<Released> {
    let order_id = order.as_str();
    let mut tx = pool.begin().await?;
    let tombstone = sqlx::query!(
        "INSERT INTO stock_reservations (order_id, store_id, status, created_at, updated_at)
         VALUES (?1, ?2, 'RELEASED', ?3, ?3) ON CONFLICT (order_id) DO NOTHING",
        order_id,
        TOMBSTONE_STORE,
        now,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !tombstone {
        let released = sqlx::query!(
            "UPDATE stock_reservations SET status = 'RELEASED', updated_at = ?2
             WHERE order_id = ?1 AND status = 'RESERVED'",
            order_id,
            now,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if released {
            // Deleted products get their stock back too: the books stay balanced.
            sqlx::query!(
                "UPDATE products
                 SET stock = stock + (SELECT l.count FROM stock_reservation_lines l
                                      WHERE l.order_id = ?1 AND l.product_id = products.id)
                 WHERE id IN (SELECT product_id FROM stock_reservation_lines WHERE order_id = ?1)",
                order_id,
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    let record = read(&mut tx, order)
        .await?
        .ok_or(StorageError::Inconsistent(
            "a released reservation cannot be read",
        ))?;
    tx.commit().await?;
    Ok(match record.status {
        ReservationStatus::Confirmed => Released::AlreadyConfirmed(record),
        _ => Released::Released(record),
    })
}

/// A reservation and its lines in one statement (one snapshot).
pub async fn read(
    conn: &mut SqliteConnection,
    order: &OrderId,
) -> StorageResult<Option<Reservation>> {
    let order_id = order.as_str();
    let rows = sqlx::query!(
        r#"SELECT r.store_id AS "store_id!", r.status AS "status!", r.created_at AS "created_at!",
                  l.product_id AS "product_id?: i64", l.product_name AS "product_name?: String",
                  l.category AS "category?: String", l.unit_price AS "unit_price?: i64",
                  l.count AS "count?: i64"
           FROM stock_reservations r
           LEFT JOIN stock_reservation_lines l ON l.order_id = r.order_id
           WHERE r.order_id = ?1
           ORDER BY l.product_id"#,
        order_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    let Some(head) = rows.first() else {
        return Ok(None);
    };
    let store_id = (head.store_id != TOMBSTONE_STORE).then(|| StoreId::from_stored(head.store_id));
    let status = head.status.clone();
    let created_at = from_millis("stock_reservations.created_at", head.created_at)?;
    let lines = rows.into_iter().map(|row| StoredLine {
        product_id: row.product_id,
        product_name: row.product_name,
        category: row.category,
        unit_price: row.unit_price,
        count: row.count,
    });
    stored::reservation(order, store_id, &status, created_at, lines).map(Some)
}
