//! Committing many orders together on SQLite: one write transaction (`BEGIN IMMEDIATE`,
//! one commit of the WAL) for the whole batch instead of one per order. Each order runs
//! the single-order commit inside a savepoint of its own, released when the order is
//! placed and rolled back when it is refused, so an order changes all it says or
//! nothing; and since SQLite runs one writer at a time, committing the orders one after
//! another in the slice's order inside the transaction is exactly committing them one
//! by one.
//!
//! Should anything fail (the write lock not granted within the busy timeout, a
//! statement or the commit failing), the whole transaction is rolled back and every
//! order is committed one by one in a transaction of its own instead, so an order is
//! answered with an error only when its own commit fails.

use chrono::{DateTime, Utc};
use pos_trade_storage::{Committed, NewOrder, StorageResult};
use sqlx::{Connection, SqlitePool};

use crate::orders;

/// Commits `orders` in the slice's order, each as `orders::commit` would have.
pub async fn commit_all(
    pool: &SqlitePool,
    now: impl Fn() -> DateTime<Utc>,
    orders: &[NewOrder],
) -> Vec<StorageResult<Committed>> {
    match commit_together(pool, &now, orders).await {
        Ok(answers) => answers.into_iter().map(Ok).collect(),
        // The transaction was rolled back when dropped: nothing of the batch stays.
        Err(err) => {
            tracing::warn!(error = %err, "a batch of orders failed; one by one instead");
            let mut answers = Vec::with_capacity(orders.len());
            for order in orders {
                answers.push(orders::commit(pool, &now, order).await);
            }
            answers
        }
    }
}

/// The batch's write transaction, each order in a savepoint of its own.
async fn commit_together(
    pool: &SqlitePool,
    now: &impl Fn() -> DateTime<Utc>,
    orders: &[NewOrder],
) -> StorageResult<Vec<Committed>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut answers = Vec::with_capacity(orders.len());
    for order in orders {
        let mut savepoint = tx.begin().await?;
        let committed = orders::commit_in(&mut savepoint, now, order).await?;
        if matches!(committed, Committed::Placed { .. }) {
            savepoint.commit().await?;
        } else {
            savepoint.rollback().await?;
        }
        answers.push(committed);
    }
    tx.commit().await?;
    Ok(answers)
}
