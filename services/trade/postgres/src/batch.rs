//! Committing many orders together on PostgreSQL: one READ COMMITTED transaction of five
//! or six statements for the whole batch's plain orders, instead of as many per order.
//!
//! An order is plain when no other order of the batch has its device or its order id:
//! then nothing else in the batch touches its bill, key or id, and committing it before,
//! after or beside the others answers the same as committing them in the slice's order.
//! Orders that share a device or an id, and those the batch finds committed before (a
//! retry or a reused key, answered by reading the earlier order) or whose device's bill
//! a racer opened meanwhile, are left to the caller to commit one by one afterwards, in
//! the slice's order, through the single-order path.
//!
//! The statements:
//! 1. every plain order id's advisory lock (as a single commit and `settle_order` take
//!    it), in one statement, in ascending order of the lock key;
//! 2. per order, in one statement whose snapshot follows those locks: whether its id was
//!    given up, an earlier commit of its (device, key) or id, and its device's open bill,
//!    locked `FOR UPDATE` in device id order;
//! 3. (bills for the devices that have none, opened in device id order;)
//! 4. the orders, their lines and the bills' new totals and line counts, in one statement;
//! 5. COMMIT — besides BEGIN: six round trips at most, whatever the batch's size.
//!
//! Why batches cannot deadlock with each other, with single commits, settlements or
//! payments: every transaction takes its locks in one global order — order ids' advisory
//! locks (by key), then open bills' row locks (by device id), then new bills (by device
//! id, where a racing opener of the same device is waited for), then orders — and takes
//! nothing of an earlier kind once it holds one of a later kind. A single commit is a
//! batch of one; a settlement takes one advisory lock only; a payment locks one bill and
//! then only waits for payments. Waits on an order's unique keys cannot form a cycle
//! either: a racer on the same id holds the same advisory lock, and a racer on the same
//! (device, key) needs the same bill, so one of them has finished before the other
//! inserts. Should PostgreSQL still pick the batch as a deadlock victim, the batch fails
//! and its orders are committed one by one.
//!
//! Any failure — a racer's commit of the same key under another id found only at the
//! unique index, a deadlock, a lost connection — rolls the whole batch back and leaves
//! every order to the one-by-one path, which has its own race retries: an order is never
//! answered with an error the single-order path could have avoided.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use pos_common::storage::StorageError;
use pos_trade_storage::{Committed, NewOrder, Order, StorageResult, stored};
use sqlx::{PgConnection, PgPool};

use crate::{orders::READ_COMMITTED, rows::TradeRow};

/// What the batch answered for each order of the slice; `None` for those left to be
/// committed one by one.
pub type Answers = Vec<Option<Committed>>;

/// Fewer plain orders than this are left to the single-order path: one order alone
/// saves nothing by the batch's statements.
const WORTH_BATCHING: usize = 2;

/// A plain order going onto its device's bill.
struct Placement<Bill> {
    /// Where it is in the slice.
    index: usize,
    total: i64,
    /// Its device's open bill: `Option<i64>` until one is opened for the devices without.
    trade_id: Bill,
}

/// Commits the batch's plain orders in one transaction; the rest (or all of them,
/// should the transaction fail) are `None`, to be committed one by one afterwards.
pub async fn commit_together(
    pool: &PgPool,
    now: impl Fn() -> DateTime<Utc>,
    orders: &[NewOrder],
) -> Answers {
    let plain = plain_orders(orders);
    if plain.len() < WORTH_BATCHING {
        return vec![None; orders.len()];
    }
    let mut answers = vec![None; orders.len()];
    match try_together(pool, now, orders, &plain).await {
        Ok(answered) => {
            for (index, committed) in answered {
                answers[index] = Some(committed);
            }
        }
        // Rolled back when the transaction was dropped: nothing of the batch stays, and
        // every order goes one by one. A lost race is to be expected now and then;
        // anything else is worth a look.
        Err(err) if is_race(&err) => {
            tracing::debug!(error = %err, "a batch of orders lost a race; one by one instead");
        }
        Err(err) => {
            tracing::warn!(error = %err, "a batch of orders failed; one by one instead");
        }
    }
    answers
}

/// A racer won at a unique index, or PostgreSQL broke a deadlock by failing the batch.
fn is_race(err: &StorageError) -> bool {
    match err {
        StorageError::Query(err) => crate::is_unique_violation(err),
        StorageError::Contention(_) => true,
        _ => false,
    }
}

/// The indexes of the orders whose device and order id no other order of the batch has.
fn plain_orders(orders: &[NewOrder]) -> Vec<usize> {
    let mut devices: HashMap<i64, usize> = HashMap::new();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for order in orders {
        *devices.entry(order.device_id.get()).or_default() += 1;
        *ids.entry(order.order_id.as_str()).or_default() += 1;
    }
    (0..orders.len())
        .filter(|&i| {
            devices[&orders[i].device_id.get()] == 1 && ids[orders[i].order_id.as_str()] == 1
        })
        .collect()
}

/// The batch's transaction: the answers it reached, by slice index, once committed.
async fn try_together(
    pool: &PgPool,
    now: impl Fn() -> DateTime<Utc>,
    orders: &[NewOrder],
    plain: &[usize],
) -> StorageResult<Vec<(usize, Committed)>> {
    let mut tx = pool.begin_with(READ_COMMITTED).await?;
    lock_order_ids(&mut tx, orders, plain).await?;
    let (mut answered, placements) = look_up(&mut tx, orders, plain).await?;
    let at = now();
    let placements = open_bills(&mut tx, orders, placements, at).await?;
    answered.extend(place(&mut tx, orders, &placements, at).await?);
    tx.commit().await?;
    Ok(answered)
}

/// Takes the advisory lock of every plain order id in one statement, in ascending order
/// of the lock key, so two batches wait for each other instead of deadlocking. The
/// outer query sorts, and PostgreSQL evaluates a target list's volatile function after
/// the sort when the function is not itself a sort key.
async fn lock_order_ids(
    conn: &mut PgConnection,
    orders: &[NewOrder],
    plain: &[usize],
) -> StorageResult<()> {
    let ids: Vec<String> = plain
        .iter()
        .map(|&i| orders[i].order_id.as_str().to_owned())
        .collect();
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(key)
         FROM (SELECT DISTINCT hashtextextended(id, 0) AS key
               FROM unnest($1::text[]) AS id) AS keys
         ORDER BY key",
        &ids,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What the batch reads of each plain order, in one statement after the locks: the
/// answers it settles already (given up, refused by its bill, overflowing), and the
/// orders to place. Orders committed before are left out of both, for one by one.
async fn look_up(
    conn: &mut PgConnection,
    orders: &[NewOrder],
    plain: &[usize],
) -> StorageResult<(Vec<(usize, Committed)>, Vec<Placement<Option<i64>>>)> {
    let devices: Vec<i64> = plain.iter().map(|&i| orders[i].device_id.get()).collect();
    let keys: Vec<String> = plain
        .iter()
        .map(|&i| orders[i].idempotency_key.as_str().to_owned())
        .collect();
    let ids: Vec<String> = plain
        .iter()
        .map(|&i| orders[i].order_id.as_str().to_owned())
        .collect();
    // The open bills are locked in device id order (the lock is taken above the sort),
    // and all of them: a scalar subquery reads all of its rows (to refuse a second one).
    // No joins, so what sqlx infers of the columns does not depend on the plan.
    let rows = sqlx::query!(
        r#"WITH open AS MATERIALIZED (
             SELECT id, device_id, amount, line_count FROM trades
             WHERE device_id = ANY($1::bigint[]) AND status = 'OPEN'
             ORDER BY device_id
             FOR UPDATE
           )
           SELECT b.n AS "n!",
                  EXISTS (SELECT 1 FROM trade_abandoned_orders a WHERE a.order_id = b.id)
                    AS "abandoned!",
                  EXISTS (SELECT 1 FROM trade_orders e
                          WHERE (e.device_id = b.device_id
                                 AND e.idempotency_key = b.idempotency_key)
                             OR e.id = b.id)
                    AS "committed_before!",
                  (SELECT o.id FROM open o WHERE o.device_id = b.device_id) AS "open_id?",
                  (SELECT o.amount FROM open o WHERE o.device_id = b.device_id)
                    AS "open_amount?",
                  (SELECT o.line_count FROM open o WHERE o.device_id = b.device_id)
                    AS "open_line_count?"
           FROM unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY
                  AS b (device_id, idempotency_key, id, n)
           ORDER BY b.n"#,
        &devices,
        &keys,
        &ids,
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() != plain.len() {
        return Err(StorageError::Inconsistent(
            "a batch's look-up lost or added orders",
        ));
    }
    let mut answered = Vec::new();
    let mut placements = Vec::new();
    for (&index, row) in plain.iter().zip(rows) {
        let order = &orders[index];
        if row.abandoned {
            // Final: the order id's lock is held, and a given-up id stays given up.
            answered.push((index, Committed::Abandoned));
            continue;
        }
        if row.committed_before {
            // A retry or a reused key: the single-order path reads the earlier order.
            continue;
        }
        let Some(total) = order.total() else {
            answered.push((index, Committed::Overflow));
            continue;
        };
        let trade_id = match (row.open_id, row.open_amount, row.open_line_count) {
            (Some(id), Some(amount), Some(line_count)) => {
                let lines = i64::from(line_count);
                if let Some(refused) = stored::open_bill_refuses(amount, lines, order, total) {
                    answered.push((index, refused));
                    continue;
                }
                Some(id)
            }
            _ => None,
        };
        placements.push(Placement {
            index,
            total,
            trade_id,
        });
    }
    Ok((answered, placements))
}

/// Opens, in one statement and in device id order, a bill for each placement whose
/// device has none. A device whose bill a racer opened meanwhile gets none here: its
/// order is dropped from the placements, for one by one.
async fn open_bills(
    conn: &mut PgConnection,
    orders: &[NewOrder],
    placements: Vec<Placement<Option<i64>>>,
    at: DateTime<Utc>,
) -> StorageResult<Vec<Placement<i64>>> {
    let (stores, devices): (Vec<i64>, Vec<i64>) = placements
        .iter()
        .filter(|p| p.trade_id.is_none())
        .map(|p| {
            (
                orders[p.index].store_id.get(),
                orders[p.index].device_id.get(),
            )
        })
        .unzip();
    let opened: HashMap<i64, i64> = if devices.is_empty() {
        HashMap::new()
    } else {
        sqlx::query!(
            "INSERT INTO trades (store_id, device_id, amount, status, opened_at)
             SELECT n.store_id, n.device_id, 0, 'OPEN', $3
             FROM unnest($1::bigint[], $2::bigint[]) AS n (store_id, device_id)
             ORDER BY n.device_id
             ON CONFLICT (device_id) WHERE status = 'OPEN' DO NOTHING
             RETURNING id, device_id",
            &stores,
            &devices,
            at,
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| (r.device_id, r.id))
        .collect()
    };
    Ok(placements
        .into_iter()
        .filter_map(|p| {
            let trade_id = p
                .trade_id
                .or_else(|| opened.get(&orders[p.index].device_id.get()).copied())?;
            Some(Placement {
                index: p.index,
                total: p.total,
                trade_id,
            })
        })
        .collect())
}

/// Records every placement's order and lines and adds each to its bill, in one
/// statement. Devices are distinct, so each bill takes one order and is returned once,
/// as it stands after that order: what the single-order path answers.
async fn place(
    conn: &mut PgConnection,
    orders: &[NewOrder],
    placements: &[Placement<i64>],
    at: DateTime<Utc>,
) -> StorageResult<Vec<(usize, Committed)>> {
    if placements.is_empty() {
        return Ok(Vec::new());
    }
    let placed: Vec<(&NewOrder, &Placement<i64>)> =
        placements.iter().map(|p| (&orders[p.index], p)).collect();
    let ids: Vec<String> = placed
        .iter()
        .map(|(o, _)| o.order_id.as_str().to_owned())
        .collect();
    let trade_ids: Vec<i64> = placed.iter().map(|(_, p)| p.trade_id).collect();
    let stores: Vec<i64> = placed.iter().map(|(o, _)| o.store_id.get()).collect();
    let devices: Vec<i64> = placed.iter().map(|(o, _)| o.device_id.get()).collect();
    let totals: Vec<i64> = placed.iter().map(|(_, p)| p.total).collect();
    let keys: Vec<String> = placed
        .iter()
        .map(|(o, _)| o.idempotency_key.as_str().to_owned())
        .collect();
    let fingerprints: Vec<String> = placed.iter().map(|(o, _)| o.fingerprint.clone()).collect();
    let line_counts: Vec<i32> = placed.iter().map(|(o, _)| o.lines().len() as i32).collect();
    let lines = Lines::of(placed.iter().map(|(o, _)| *o));
    let rows = sqlx::query!(
        r#"WITH placed AS (
             INSERT INTO trade_orders
               (id, trade_id, store_id, device_id, amount, idempotency_key, fingerprint,
                created_at)
             SELECT o.id, o.trade_id, o.store_id, o.device_id, o.amount, o.idempotency_key,
                    o.fingerprint, $8
             FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
                         $6::text[], $7::text[])
                    AS o (id, trade_id, store_id, device_id, amount, idempotency_key,
                          fingerprint)
             RETURNING id, trade_id, amount
           ), lines AS (
             INSERT INTO trade_order_lines
               (order_id, product_id, product_name, category, unit_price, count, amount)
             SELECT placed.id, l.product_id, l.product_name,
                    l.category::trade_product_category, l.unit_price, l.count, l.amount
             FROM unnest($9::text[], $10::bigint[], $11::text[], $12::text[], $13::bigint[],
                         $14::bigint[], $15::bigint[])
                    AS l (order_id, product_id, product_name, category, unit_price, count,
                          amount)
             JOIN placed ON placed.id = l.order_id
           )
           UPDATE trades t
           SET amount = t.amount + p.amount, line_count = t.line_count + c.line_count
           FROM placed p
           JOIN unnest($1::text[], $16::int[]) AS c (order_id, line_count)
             ON c.order_id = p.id
           WHERE t.id = p.trade_id
           RETURNING p.id AS "order_id!", t.id, t.store_id, t.device_id, t.amount,
                     t.status::text AS "status!", t.opened_at, t.paid_at"#,
        &ids,
        &trade_ids,
        &stores,
        &devices,
        &totals,
        &keys,
        &fingerprints,
        at,
        &lines.order_ids,
        &lines.product_ids,
        &lines.names,
        &lines.categories,
        &lines.unit_prices,
        &lines.counts,
        &lines.amounts,
        &line_counts,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut bills: HashMap<String, TradeRow> = rows
        .into_iter()
        .map(|r| {
            let trade = TradeRow {
                id: r.id,
                store_id: r.store_id,
                device_id: r.device_id,
                amount: r.amount,
                status: r.status,
                opened_at: r.opened_at,
                paid_at: r.paid_at,
            };
            (r.order_id, trade)
        })
        .collect();
    let mut answered = Vec::with_capacity(placed.len());
    let mut seen_bills = HashSet::new();
    for (order, placement) in placed {
        let Some(trade) = bills.remove(order.order_id.as_str()) else {
            return Err(StorageError::Inconsistent(
                "a batch's order was not added to its bill",
            ));
        };
        if !seen_bills.insert(trade.id) {
            return Err(StorageError::Inconsistent(
                "two orders of a batch went onto one bill",
            ));
        }
        let trade = trade.decode()?;
        let committed = Order {
            id: order.order_id.clone(),
            trade_id: trade.id,
            store_id: order.store_id,
            device_id: order.device_id,
            amount: placement.total,
            created_at: at,
            lines: order.lines().to_vec(),
        };
        answered.push((
            placement.index,
            Committed::Placed {
                order: committed,
                trade,
            },
        ));
    }
    Ok(answered)
}

/// Every line of a batch's orders as parallel arrays, each line naming its order.
#[derive(Default)]
struct Lines {
    order_ids: Vec<String>,
    product_ids: Vec<i64>,
    names: Vec<String>,
    categories: Vec<String>,
    unit_prices: Vec<i64>,
    counts: Vec<i64>,
    amounts: Vec<i64>,
}

impl Lines {
    fn of<'a>(orders: impl Iterator<Item = &'a NewOrder>) -> Self {
        let mut lines = Self::default();
        for order in orders {
            for line in order.lines() {
                lines.order_ids.push(order.order_id.as_str().to_owned());
                lines.product_ids.push(line.product_id.get());
                lines.names.push(line.product_name.clone());
                lines.categories.push(line.category.as_str().to_owned());
                lines.unit_prices.push(line.unit_price);
                lines.counts.push(line.count);
                lines.amounts.push(line.amount);
            }
        }
        lines
    }
}
