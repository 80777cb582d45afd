//! Reserving many orders in one transaction on PostgreSQL: five statements for the lot,
//! however many orders — begin, claim every order id, lock the products they ask for (in
//! id order), take the stock and record the lines (one statement over `unnest`ed arrays),
//! commit; a sixth gives back the claims of orders that cannot be reserved together. The
//! trade role sends the orders its tablets place at the same time together, so the round
//! trips and the commit's WAL flush are shared.
//!
//! Only plain orders are done together: order ids not seen before, whose products are on
//! the store's menu with enough stock left by the orders before them in the batch. The
//! others give their claim back within the transaction: a short or unknown product is
//! refused as at its turn (the stock the orders before it left), and a retry or a reused
//! key, or a duplicate within the batch, is answered afterwards by the one-order path
//! ([`reservations::reserve`]); a statement that fails rolls the whole batch back, and
//! every order goes that way.
//!
//! Deadlock-free with single reservations and releases: everyone claims order ids
//! before locking products, claims in one statement in order id order, and locks products
//! in id order.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use pos_store_storage::{
    ReservationStatus, Reserved, StockRequest, StorageResult,
    stored::{self, StoredLine},
};
use sqlx::PgPool;

use crate::reservations;

/// A locked product as the batch sees it: its stock goes down as orders take it.
struct Shelf {
    store: i64,
    stock: i64,
    deleted: bool,
}

pub async fn reserve_many(
    pool: &PgPool,
    now: DateTime<Utc>,
    requests: &[StockRequest],
) -> Vec<StorageResult<Reserved>> {
    // The first request of each order id goes into the batch; a repeat of an id within
    // the batch is answered after it, one by one (as a retry of the first).
    let mut seen = HashSet::new();
    let batched: Vec<usize> = (0..requests.len())
        .filter(|&i| seen.insert(requests[i].order.as_str()))
        .collect();
    let mut outcomes: Vec<Option<StorageResult<Reserved>>> =
        requests.iter().map(|_| None).collect();
    match together(pool, now, requests, &batched).await {
        Ok(taken) => {
            for (i, reserved) in taken {
                outcomes[i] = Some(Ok(reserved));
            }
        }
        Err(err) => tracing::warn!(
            error = %err,
            orders = batched.len(),
            "reserving a batch together failed; reserving its orders one by one"
        ),
    }
    let mut answers = Vec::with_capacity(requests.len());
    for (request, outcome) in requests.iter().zip(outcomes) {
        answers.push(match outcome {
            Some(answer) => answer,
            None => {
                reservations::reserve(pool, now, &request.order, request.store, &request.lines)
                    .await
            }
        });
    }
    answers
}

/// Reserves the batched requests in one transaction, in request order: answers, by
/// request index, `Taken` for each order whose stock was there and the refusal of each
/// whose was not. Ids that were claimed already are left out, answered one by one.
async fn together(
    pool: &PgPool,
    now: DateTime<Utc>,
    requests: &[StockRequest],
    batched: &[usize],
) -> StorageResult<Vec<(usize, Reserved)>> {
    let mut tx = pool.begin().await?;
    let ids: Vec<String> = batched
        .iter()
        .map(|&i| requests[i].order.as_str().to_string())
        .collect();
    let stores: Vec<i64> = batched.iter().map(|&i| requests[i].store.get()).collect();
    // Claimed in order id order, so two batches claiming the same ids wait, not deadlock.
    let claimed: HashSet<String> = sqlx::query_scalar!(
        "INSERT INTO stock_reservations (order_id, store_id, status, created_at, updated_at)
         SELECT c.order_id, c.store_id, 'RESERVED', $3, $3
         FROM unnest($1::text[], $2::bigint[]) AS c (order_id, store_id)
         ORDER BY c.order_id
         ON CONFLICT (order_id) DO NOTHING
         RETURNING order_id",
        &ids,
        &stores,
        now,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let claimed_requests: Vec<usize> = batched
        .iter()
        .copied()
        .filter(|&i| claimed.contains(requests[i].order.as_str()))
        .collect();
    if claimed_requests.is_empty() {
        tx.rollback().await?;
        return Ok(Vec::new());
    }

    // Every product the claimed orders name on their own store's menu, locked in id
    // order: an order naming another store's product must not hold that store's rows.
    let mut wanted: Vec<(i64, i64)> = claimed_requests
        .iter()
        .flat_map(|&i| {
            let store = requests[i].store.get();
            requests[i]
                .lines
                .lines()
                .iter()
                .map(move |l| (l.product_id.get(), store))
        })
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let (product_ids, product_stores): (Vec<i64>, Vec<i64>) = wanted.into_iter().unzip();
    let mut on_shelf: HashMap<i64, Shelf> = sqlx::query!(
        r#"SELECT p.id, p.store_id, p.stock, p.deleted_at IS NOT NULL AS "deleted!"
           FROM products p
           JOIN unnest($1::bigint[], $2::bigint[]) AS w (id, store_id)
             ON p.id = w.id AND p.store_id = w.store_id
           ORDER BY p.id FOR UPDATE OF p"#,
        &product_ids,
        &product_stores,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| {
        let shelf = Shelf {
            store: row.store_id,
            stock: row.stock,
            deleted: row.deleted,
        };
        (row.id, shelf)
    })
    .collect();

    // In request order, as reserving them in turn would: an order takes its stock when
    // all of it is there; one that cannot (short, unknown, deleted, another store's) takes
    // nothing, gives its claim back and is answered by the one-order path.
    let (mut placed, mut left, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    let (mut line_orders, mut line_products, mut line_counts) =
        (Vec::new(), Vec::new(), Vec::new());
    for &i in &claimed_requests {
        let request = &requests[i];
        let fits = request.lines.lines().iter().all(|line| {
            on_shelf.get(&line.product_id.get()).is_some_and(|shelf| {
                shelf.store == request.store.get() && !shelf.deleted && shelf.stock >= line.count
            })
        });
        if !fits {
            // Refused as reserving it alone at its turn would: with the stock as the
            // orders before it left it.
            let view: HashMap<i64, (i64, bool)> = on_shelf
                .iter()
                .filter(|(_, shelf)| shelf.store == request.store.get())
                .map(|(id, shelf)| (*id, (shelf.stock, shelf.deleted)))
                .collect();
            if let Some(refusal) = stored::refusal(&request.lines, &view) {
                refused.push((i, refusal));
            }
            left.push(request.order.as_str().to_string());
            continue;
        }
        for line in request.lines.lines() {
            if let Some(shelf) = on_shelf.get_mut(&line.product_id.get()) {
                shelf.stock -= line.count;
            }
            line_orders.push(request.order.as_str().to_string());
            line_products.push(line.product_id.get());
            line_counts.push(line.count);
        }
        placed.push(i);
    }
    if !left.is_empty() {
        sqlx::query!(
            "DELETE FROM stock_reservations WHERE order_id = ANY($1)",
            &left,
        )
        .execute(&mut *tx)
        .await?;
    }
    if placed.is_empty() {
        tx.rollback().await?;
        return Ok(refused);
    }
    let claimed_requests = placed;

    let taken = sqlx::query!(
        r#"WITH wanted AS (
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
               AS w (order_id, product_id, count)
           ), taken AS (
             UPDATE products p SET stock = p.stock - t.total
             FROM (SELECT product_id, sum(count)::bigint AS total FROM wanted
                   GROUP BY product_id) t
             WHERE p.id = t.product_id
             RETURNING p.id, p.name, p.category, p.price
           )
           INSERT INTO stock_reservation_lines
             (order_id, product_id, product_name, category, unit_price, count)
           SELECT w.order_id, t.id, t.name, t.category, t.price, w.count
           FROM wanted w JOIN taken t ON t.id = w.product_id
           RETURNING order_id, product_id, product_name, category::text AS "category!",
                     unit_price, count"#,
        &line_orders,
        &line_products,
        &line_counts,
    )
    .fetch_all(&mut *tx)
    .await?;
    if taken.len() != line_orders.len() {
        return Err(pos_common::storage::StorageError::Inconsistent(
            "locked products changed before their stock was taken",
        ));
    }
    let mut lines_of: HashMap<String, Vec<StoredLine>> = HashMap::new();
    for row in taken {
        lines_of.entry(row.order_id).or_default().push(StoredLine {
            product_id: Some(row.product_id),
            product_name: Some(row.product_name),
            category: Some(row.category),
            unit_price: Some(row.unit_price),
            count: Some(row.count),
        });
    }
    let mut answers = refused;
    for &i in &claimed_requests {
        let request = &requests[i];
        let lines = lines_of.remove(request.order.as_str()).unwrap_or_default();
        let reservation = stored::reservation(
            &request.order,
            Some(request.store),
            ReservationStatus::Reserved.as_str(),
            now,
            lines,
        )?;
        answers.push((i, Reserved::Taken(reservation)));
    }
    tx.commit().await?;
    Ok(answers)
}
