//! Products, their price history and restocking.

use pos_common::{ApiResult, storage::Backend, time::now_millis};

use super::{HistoryRow, ProductRow, StoreRepo, product_columns};
use crate::domain::{Bounded, Category, ProductName};

/// How many of this product unconfirmed reservations hold.
macro_rules! reserved_count {
    () => {
        "COALESCE((SELECT SUM(l.count) FROM stock_reservation_lines l \
         JOIN stock_reservations r ON r.order_id = l.order_id \
         WHERE r.status = 'RESERVED' AND l.product_id = products.id), 0)"
    };
}

/// base_stock less what unconfirmed reservations hold, never below 0 (portable SQL).
macro_rules! restocked_level {
    () => {
        concat!(
            "CASE WHEN base_stock > ",
            reserved_count!(),
            " THEN base_stock - ",
            reserved_count!(),
            " ELSE 0 END"
        )
    };
}

/// A validated product to create.
pub struct NewProduct {
    pub name: ProductName,
    pub category: Category,
    pub price: Bounded,
    pub base_stock: Bounded,
}

/// A validated update: only price and base stock may change.
pub struct ProductChange {
    pub price: Option<Bounded>,
    pub base_stock: Option<Bounded>,
}

impl StoreRepo {
    /// Creates a product with stock = base stock and its first history row.
    pub async fn create_product(&self, store_id: i64, new: &NewProduct) -> ApiResult<ProductRow> {
        let now = now_millis();
        let mut tx = self.db.pool().begin().await?;
        let product: ProductRow = sqlx::query_as(concat!(
            "INSERT INTO products \
             (store_id, name, category, price, stock, base_stock, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $6) RETURNING ",
            product_columns!(),
            ""
        ))
        .bind(store_id)
        .bind(new.name.as_str())
        .bind(new.category.as_db())
        .bind(new.price.get())
        .bind(new.base_stock.get())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        insert_history(&mut tx, &product, now).await?;
        tx.commit().await?;
        Ok(product)
    }

    /// Changes price and/or base stock of a live product of the store, recording history.
    /// `None` when no such live product exists in this store.
    pub async fn update_product(
        &self,
        store_id: i64,
        product_id: i64,
        change: &ProductChange,
    ) -> ApiResult<Option<ProductRow>> {
        let now = now_millis();
        let mut tx = self.db.pool().begin().await?;
        let updated: Option<ProductRow> = sqlx::query_as(concat!(
            "UPDATE products SET price = COALESCE($1, price), \
             base_stock = COALESCE($2, base_stock), updated_at = $3 \
             WHERE id = $4 AND store_id = $5 AND deleted_at IS NULL RETURNING ",
            product_columns!(),
            ""
        ))
        .bind(change.price.map(Bounded::get))
        .bind(change.base_stock.map(Bounded::get))
        .bind(now)
        .bind(product_id)
        .bind(store_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(product) = updated else {
            tx.rollback().await?;
            return Ok(None);
        };
        insert_history(&mut tx, &product, now).await?;
        tx.commit().await?;
        Ok(Some(product))
    }

    /// Soft-deletes a live product of the store. `None` when there is none.
    pub async fn delete_product(
        &self,
        store_id: i64,
        product_id: i64,
    ) -> ApiResult<Option<ProductRow>> {
        let now = now_millis();
        Ok(sqlx::query_as(concat!(
            "UPDATE products SET deleted_at = $1, updated_at = $1 \
             WHERE id = $2 AND store_id = $3 AND deleted_at IS NULL RETURNING ",
            product_columns!(),
            ""
        ))
        .bind(now)
        .bind(product_id)
        .bind(store_id)
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// Sets stock = base stock for every live product of the store, less what in-flight
    /// orders hold reserved: those are either confirmed (sold) or released (given back)
    /// soon, and either way the shelf then holds exactly the base stock.
    pub async fn restock(&self, store_id: i64) -> ApiResult<Vec<ProductRow>> {
        let now = now_millis();
        let mut tx = self.db.pool().begin().await?;
        if self.db.backend() == Backend::Postgres {
            // Lock the rows first, in id order (the order reservations and releases take
            // them in, so nothing deadlocks). The UPDATE below is then a new statement with
            // a new snapshot: every reservation or release that held one of these rows has
            // committed and is counted, and none can start changing them until we commit.
            // (SQLite runs one writer at a time, so it needs neither.)
            sqlx::query(
                "SELECT id FROM products WHERE store_id = $1 AND deleted_at IS NULL \
                 ORDER BY id FOR UPDATE",
            )
            .bind(store_id)
            .execute(&mut *tx)
            .await?;
        }
        let mut products: Vec<ProductRow> = sqlx::query_as(concat!(
            "UPDATE products SET stock = ",
            restocked_level!(),
            ", updated_at = $1 WHERE store_id = $2 AND deleted_at IS NULL RETURNING ",
            product_columns!()
        ))
        .bind(now)
        .bind(store_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        products.sort_by_key(|p| p.id);
        Ok(products)
    }

    /// A product of the store, deleted or not.
    pub async fn product(&self, store_id: i64, product_id: i64) -> ApiResult<Option<ProductRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            product_columns!(),
            " FROM products WHERE id = $1 AND store_id = $2"
        ))
        .bind(product_id)
        .bind(store_id)
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// The store's products by id, optionally of one category and with deleted ones.
    pub async fn list_products(
        &self,
        store_id: i64,
        category: Option<Category>,
        include_deleted: bool,
    ) -> ApiResult<Vec<ProductRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            product_columns!(),
            " FROM products WHERE store_id = $1 \
             AND ($2 IS NULL OR category = $2) AND ($3 = 1 OR deleted_at IS NULL) ORDER BY id"
        ))
        .bind(store_id)
        .bind(category.map(Category::as_db))
        .bind(i64::from(include_deleted))
        .fetch_all(self.db.pool())
        .await?)
    }

    pub async fn product_history(&self, product_id: i64) -> ApiResult<Vec<HistoryRow>> {
        Ok(sqlx::query_as(
            "SELECT product_id, price, base_stock, at FROM product_history \
             WHERE product_id = $1 ORDER BY id",
        )
        .bind(product_id)
        .fetch_all(self.db.pool())
        .await?)
    }
}

async fn insert_history(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    product: &ProductRow,
    at: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO product_history (product_id, price, base_stock, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(product.id)
    .bind(product.price)
    .bind(product.base_stock)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
