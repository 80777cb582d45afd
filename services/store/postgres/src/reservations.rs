//! Stock reservations on PostgreSQL. Reserving an order is four statements whatever its
//! size: claim the order id, lock and read its products in id order, take the stock and
//! record the lines (one statement over `unnest`ed arrays), commit.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use pos_common::{domain::StoreId, storage::StorageError};
use pos_store_storage::{
    Confirmed, ConfirmedMany, OrderId, OrderLines, Released, Reservation, ReservationStatus,
    Reserved, StorageResult,
    stored::{self, StoredLine},
};
use sqlx::{PgConnection, PgPool};

pub async fn reserve(
    pool: &PgPool,
    now: DateTime<Utc>,
    order: &OrderId,
    store: StoreId,
    lines: &OrderLines,
) -> StorageResult<Reserved> {
    let mut tx = pool.begin().await?;
    // Claim the order id first: a concurrent duplicate waits on it, then finds this one.
    let claimed = sqlx::query!(
        "INSERT INTO stock_reservations (order_id, store_id, status, created_at, updated_at)
         VALUES ($1, $2, 'RESERVED', $3, $3) ON CONFLICT (order_id) DO NOTHING",
        order.as_str(),
        store.get(),
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

    let ids: Vec<i64> = lines.lines().iter().map(|l| l.product_id.get()).collect();
    let counts: Vec<i64> = lines.lines().iter().map(|l| l.count).collect();
    let on_shelf: HashMap<i64, (i64, bool)> = sqlx::query!(
        r#"SELECT id, stock, deleted_at IS NOT NULL AS "deleted!" FROM products
           WHERE id = ANY($1) AND store_id = $2 ORDER BY id FOR UPDATE"#,
        &ids,
        store.get(),
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

    let taken = sqlx::query!(
        r#"WITH wanted AS (
             SELECT * FROM unnest($2::bigint[], $3::bigint[]) AS w (product_id, count)
           ), taken AS (
             UPDATE products p SET stock = p.stock - w.count
             FROM wanted w
             WHERE p.id = w.product_id AND p.store_id = $4
             RETURNING p.id, p.name, p.category, p.price, w.count
           )
           INSERT INTO stock_reservation_lines
             (order_id, product_id, product_name, category, unit_price, count)
           SELECT $1, id, name, category, price, count FROM taken
           RETURNING product_id, product_name, category::text AS "category!", unit_price,
                     count"#,
        order.as_str(),
        &ids,
        &counts,
        store.get(),
    )
    .fetch_all(&mut *tx)
    .await?;
    if taken.len() != ids.len() {
        return Err(StorageError::Inconsistent(
            "locked products changed before their stock was taken",
        ));
    }
    let lines = taken.into_iter().map(|row| StoredLine {
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
        now,
        lines,
    )?;
    tx.commit().await?;
    Ok(Reserved::Taken(reservation))
}

pub async fn confirm(
    pool: &PgPool,
    now: DateTime<Utc>,
    order: &OrderId,
) -> StorageResult<Confirmed> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "UPDATE stock_reservations SET status = 'CONFIRMED', updated_at = $2
         WHERE order_id = $1 AND status = 'RESERVED'",
        order.as_str(),
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
/// them; only the ids it did not confirm are read again, to say why.
pub async fn confirm_many(
    pool: &PgPool,
    now: DateTime<Utc>,
    orders: &[OrderId],
) -> StorageResult<ConfirmedMany> {
    let mut ids: Vec<String> = orders.iter().map(|o| o.as_str().to_string()).collect();
    // Rows locked in one order by every batch, so two batches cannot deadlock.
    ids.sort_unstable();
    ids.dedup();
    let confirmed: HashSet<String> = sqlx::query_scalar!(
        "UPDATE stock_reservations r SET status = 'CONFIRMED', updated_at = $2
         FROM (SELECT order_id FROM stock_reservations
               WHERE order_id = ANY($1) AND status = 'RESERVED'
               ORDER BY order_id FOR NO KEY UPDATE) held
         WHERE r.order_id = held.order_id AND r.status = 'RESERVED'
         RETURNING r.order_id",
        &ids,
        now,
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    if confirmed.len() == ids.len() {
        return Ok(ConfirmedMany::default());
    }
    let rest: Vec<String> = ids
        .into_iter()
        .filter(|id| !confirmed.contains(id))
        .collect();
    let statuses: HashMap<String, String> = sqlx::query!(
        r#"SELECT order_id, status::text AS "status!" FROM stock_reservations
           WHERE order_id = ANY($1)"#,
        &rest,
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| (row.order_id, row.status))
    .collect();
    stored::confirmed_many(orders, &confirmed, &statuses)
}

pub async fn release(
    pool: &PgPool,
    now: DateTime<Utc>,
    order: &OrderId,
) -> StorageResult<Released> {
    let mut tx = pool.begin().await?;
    // A tombstone unless the order id has a reservation. If its reservation is still
    // being made, this waits for it and then releases it below.
    let tombstone = sqlx::query!(
        "INSERT INTO stock_reservations (order_id, store_id, status, created_at, updated_at)
         VALUES ($1, NULL, 'RELEASED', $2, $2) ON CONFLICT (order_id) DO NOTHING",
        order.as_str(),
        now,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !tombstone {
        let status = sqlx::query_scalar!(
            r#"SELECT status::text AS "status!" FROM stock_reservations
               WHERE order_id = $1 FOR UPDATE"#,
            order.as_str(),
        )
        .fetch_one(&mut *tx)
        .await?;
        if status == ReservationStatus::Reserved.as_str() {
            give_back(&mut tx, now, order).await?;
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

/// Marks a held reservation released and returns its stock (deleted products included:
/// the books stay balanced), locking the products in id order like reservations do.
async fn give_back(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    order: &OrderId,
) -> StorageResult<()> {
    sqlx::query!(
        "UPDATE stock_reservations SET status = 'RELEASED', updated_at = $2 WHERE order_id = $1",
        order.as_str(),
        now,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "SELECT p.id FROM products p JOIN stock_reservation_lines l ON l.product_id = p.id
         WHERE l.order_id = $1 ORDER BY p.id FOR UPDATE OF p",
        order.as_str(),
    )
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE products p SET stock = p.stock + l.count
         FROM stock_reservation_lines l
         WHERE l.order_id = $1 AND p.id = l.product_id",
        order.as_str(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A reservation and its lines in one statement (one snapshot).
pub async fn read(conn: &mut PgConnection, order: &OrderId) -> StorageResult<Option<Reservation>> {
    let rows = sqlx::query!(
        r#"SELECT r.store_id, r.status::text AS "status!", r.created_at,
                  l.product_id AS "product_id?", l.product_name AS "product_name?",
                  l.category::text AS "category?", l.unit_price AS "unit_price?",
                  l.count AS "count?"
           FROM stock_reservations r
           LEFT JOIN stock_reservation_lines l ON l.order_id = r.order_id
           WHERE r.order_id = $1
           ORDER BY l.product_id"#,
        order.as_str(),
    )
    .fetch_all(&mut *conn)
    .await?;
    let Some(head) = rows.first() else {
        return Ok(None);
    };
    let (store_id, status, created_at) = (
        head.store_id.map(StoreId::from_stored),
        head.status.clone(),
        head.created_at,
    );
    let lines = rows.into_iter().map(|row| StoredLine {
        product_id: row.product_id,
        product_name: row.product_name,
        category: row.category,
        unit_price: row.unit_price,
        count: row.count,
    });
    stored::reservation(order, store_id, &status, created_at, lines).map(Some)
}
