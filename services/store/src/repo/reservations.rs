//! Stock reservations for orders (Try-Confirm-Cancel). Reserving takes stock at once with
//! a guarded `UPDATE ... WHERE stock >= count`, so concurrent reservations can never drive
//! stock negative; the reservation row, keyed by order id, makes every step idempotent.

use std::collections::BTreeMap;

use pos_common::{ApiError, ApiResult, Reason, time::now_millis};

use super::{ReservationLineRow, ReservationRecord, StoreRepo};

/// One product to reserve; lines of the same product are merged before reserving.
#[derive(Debug, Clone, Copy)]
pub struct ReserveLine {
    pub product_id: i64,
    pub count: i64,
}

const RESERVED: &str = "RESERVED";
const CONFIRMED: &str = "CONFIRMED";
const RELEASED: &str = "RELEASED";
/// The store id of a release recorded before any reservation for its order id.
pub const TOMBSTONE_STORE_ID: i64 = 0;

/// Sums counts per product, in product id order (a fixed lock order avoids deadlocks).
pub fn merge_lines(lines: &[ReserveLine]) -> ApiResult<Vec<ReserveLine>> {
    let mut merged: BTreeMap<i64, i64> = BTreeMap::new();
    for line in lines {
        let total = merged.entry(line.product_id).or_insert(0);
        *total = total.checked_add(line.count).ok_or_else(|| {
            ApiError::invalid("lines.count", "total count of a product overflows")
        })?;
    }
    Ok(merged
        .into_iter()
        .map(|(product_id, count)| ReserveLine { product_id, count })
        .collect())
}

/// Records `order_id` with `status` unless it is already recorded; true when this call did.
async fn claim(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    order_id: &str,
    store_id: i64,
    status: &str,
    now: i64,
) -> ApiResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO stock_reservations (order_id, store_id, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(store_id)
    .bind(status)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

impl StoreRepo {
    /// Takes stock for every line of `order_id`, all or nothing. When the order id already
    /// has a reservation (in whatever state) nothing changes and that one is returned.
    pub async fn reserve(
        &self,
        order_id: &str,
        store_id: i64,
        lines: &[ReserveLine],
    ) -> ApiResult<ReservationRecord> {
        let lines = merge_lines(lines)?;
        let now = now_millis();
        let mut tx = self.db.pool().begin().await?;
        // Claim the order id first: it is a write, so SQLite takes its write lock at the
        // start of the transaction, and a concurrent duplicate waits for this one.
        if !claim(&mut tx, order_id, store_id, RESERVED, now).await? {
            tx.rollback().await?;
            let existing = self
                .reservation(order_id)
                .await?
                .ok_or_else(|| ApiError::internal("reservation vanished after conflict"))?;
            // Store 0 marks a tombstone left by a release that overtook its reservation.
            if existing.store_id != store_id && existing.store_id != TOMBSTONE_STORE_ID {
                return Err(ApiError::invalid(
                    "order_id",
                    "already used by another store",
                ));
            }
            return Ok(existing);
        }

        let mut reserved = Vec::with_capacity(lines.len());
        for line in &lines {
            let taken: Option<(String, String, i64)> = sqlx::query_as(
                "UPDATE products SET stock = stock - $1 \
                 WHERE id = $2 AND store_id = $3 AND deleted_at IS NULL AND stock >= $1 \
                 RETURNING name, category, price",
            )
            .bind(line.count)
            .bind(line.product_id)
            .bind(store_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((product_name, category, unit_price)) = taken else {
                tx.rollback().await?;
                return Err(self.why_not_reservable(store_id, &lines).await?);
            };
            reserved.push(ReservationLineRow {
                product_id: line.product_id,
                product_name,
                category,
                unit_price,
                count: line.count,
            });
        }
        for line in &reserved {
            sqlx::query(
                "INSERT INTO stock_reservation_lines \
                 (order_id, product_id, product_name, category, unit_price, count) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(order_id)
            .bind(line.product_id)
            .bind(&line.product_name)
            .bind(&line.category)
            .bind(line.unit_price)
            .bind(line.count)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ReservationRecord {
            order_id: order_id.to_string(),
            store_id,
            status: RESERVED.to_string(),
            created_at: now,
            lines: reserved,
        })
    }

    /// After a failed reservation: NOT_FOUND for a missing, deleted or foreign product,
    /// else OUT_OF_STOCK listing each short product with its available stock.
    async fn why_not_reservable(
        &self,
        store_id: i64,
        lines: &[ReserveLine],
    ) -> ApiResult<ApiError> {
        let mut short = Vec::new();
        for line in lines {
            let available: Option<(i64, Option<i64>)> = sqlx::query_as(
                "SELECT stock, deleted_at FROM products WHERE id = $1 AND store_id = $2",
            )
            .bind(line.product_id)
            .bind(store_id)
            .fetch_optional(self.db.pool())
            .await?;
            match available {
                Some((stock, None)) if stock < line.count => short.push((line.product_id, stock)),
                Some((_, None)) => {}
                _ => {
                    return Ok(ApiError::new(
                        Reason::ProductNotFound,
                        format!("product {} not found in this store", line.product_id),
                    )
                    .with_metadata("product_id", line.product_id));
                }
            }
        }
        if short.is_empty() {
            // Stock came back between the failed update and this read: ask to retry.
            return Ok(ApiError::unavailable(
                "stock",
                "stock changed during reservation",
            ));
        }
        let listing: Vec<String> = short
            .iter()
            .map(|(id, stock)| format!("{id}:{stock}"))
            .collect();
        let mut err = ApiError::new(
            Reason::OutOfStock,
            format!(
                "not enough stock (product:available) {}",
                listing.join(", ")
            ),
        )
        .with_metadata("available", listing.join(","));
        for (id, stock) in short {
            err = err.with_metadata(format!("product_{id}"), stock);
        }
        Ok(err)
    }

    /// Makes a reservation final. Confirming twice is fine; a released one cannot be.
    pub async fn confirm(&self, order_id: &str) -> ApiResult<ReservationRecord> {
        let now = now_millis();
        sqlx::query(
            "UPDATE stock_reservations SET status = $1, updated_at = $2 \
             WHERE order_id = $3 AND status = $4",
        )
        .bind(CONFIRMED)
        .bind(now)
        .bind(order_id)
        .bind(RESERVED)
        .execute(self.db.pool())
        .await?;
        let record = self.reservation(order_id).await?.ok_or_else(|| {
            ApiError::new(
                Reason::ReservationNotFound,
                "no reservation for this order id",
            )
        })?;
        if record.status == RELEASED {
            return Err(ApiError::new(
                Reason::ReservationClosed,
                "the reservation was released and cannot be confirmed",
            ));
        }
        Ok(record)
    }

    /// Gives reserved stock back. Releasing twice is fine; a confirmed reservation is
    /// never released. An unknown order id is recorded as released, so a reservation
    /// that arrives late for it takes no stock.
    pub async fn release(&self, order_id: &str) -> ApiResult<ReservationRecord> {
        let now = now_millis();
        let mut tx = self.db.pool().begin().await?;
        let released = sqlx::query(
            "UPDATE stock_reservations SET status = $1, updated_at = $2 \
             WHERE order_id = $3 AND status = $4",
        )
        .bind(RELEASED)
        .bind(now)
        .bind(order_id)
        .bind(RESERVED)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if released {
            // Deleted products get their stock back too: a later undelete is not possible,
            // but the books stay balanced.
            // One product at a time in id order, the order reservations lock them in, so a
            // release and a reservation can never deadlock.
            let lines: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT product_id, count FROM stock_reservation_lines \
                 WHERE order_id = $1 ORDER BY product_id",
            )
            .bind(order_id)
            .fetch_all(&mut *tx)
            .await?;
            for (product_id, count) in lines {
                sqlx::query("UPDATE products SET stock = stock + $1 WHERE id = $2")
                    .bind(count)
                    .bind(product_id)
                    .execute(&mut *tx)
                    .await?;
            }
        } else {
            claim(&mut tx, order_id, TOMBSTONE_STORE_ID, RELEASED, now).await?;
        }
        tx.commit().await?;
        let record = self
            .reservation(order_id)
            .await?
            .ok_or_else(|| ApiError::internal("reservation vanished after release"))?;
        if record.status == CONFIRMED {
            return Err(ApiError::new(
                Reason::ReservationClosed,
                "the reservation was confirmed and cannot be released",
            ));
        }
        Ok(record)
    }

    pub async fn reservation(&self, order_id: &str) -> ApiResult<Option<ReservationRecord>> {
        let head: Option<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT order_id, store_id, status, created_at FROM stock_reservations WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some((order_id, store_id, status, created_at)) = head else {
            return Ok(None);
        };
        let lines: Vec<ReservationLineRow> = sqlx::query_as(
            "SELECT product_id, product_name, category, unit_price, count \
             FROM stock_reservation_lines WHERE order_id = $1 ORDER BY product_id",
        )
        .bind(&order_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(Some(ReservationRecord {
            order_id,
            store_id,
            status,
            created_at,
            lines,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_duplicates_in_id_order() {
        let merged = merge_lines(&[
            ReserveLine {
                product_id: 4,
                count: 2,
            },
            ReserveLine {
                product_id: 2,
                count: 4,
            },
            ReserveLine {
                product_id: 4,
                count: 3,
            },
        ])
        .expect("merge");
        let pairs: Vec<(i64, i64)> = merged.iter().map(|l| (l.product_id, l.count)).collect();
        assert_eq!(pairs, vec![(2, 4), (4, 5)]);
        assert!(
            merge_lines(&[
                ReserveLine {
                    product_id: 1,
                    count: i64::MAX
                },
                ReserveLine {
                    product_id: 1,
                    count: 1
                },
            ])
            .is_err()
        );
    }
}
