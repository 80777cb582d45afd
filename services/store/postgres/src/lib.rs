//! The store service's storage on PostgreSQL (production): compile-time checked queries
//! (`sqlx::query!`, offline data in `.sqlx/`), `timestamptz` instants, enum types, and
//! set-based statements — an order's lines are reserved, and a store's tablets created,
//! by a constant number of statements however many rows they touch.
//!
//! Locking: stock changes lock product rows in id order (`SELECT ... ORDER BY id FOR
//! UPDATE`) before changing them, so reservations, releases and restocks never deadlock
//! each other; the `stock >= 0` check is the last guard against overselling.
//!
//! Enum columns are read as text and decoded by the domain's own names, so a value this
//! build does not know (one added by a newer migration) is an error, never a default.

mod reservations;
mod reserve_batch;
mod rows;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use pos_common::{
    clock::SharedClock,
    domain::{DeviceId, ProductId, SettlementDay, StoreId, StoreRequest, UserId},
    storage::StorageError,
};
use pos_store_storage::{
    Created, Device, HistoryEntry, NewProduct, Page, Product, ProductChange, ProductFilter,
    ProductLimit, StorageResult, Store, StoreStorage,
};
use sqlx::{PgPool, migrate::Migrator};

use pos_store_storage::stored::{StoredHistory, StoredProduct, StoredStore};
use rows::{DeviceRow, decode_all};

/// This engine's migrations (tracked per service; see `pos_store::MIGRATIONS`).
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

#[derive(Clone)]
pub struct PgStoreStorage {
    pool: PgPool,
    clock: SharedClock,
}

impl PgStoreStorage {
    pub fn new(pool: PgPool, clock: SharedClock) -> Self {
        Self { pool, clock }
    }

    /// Now, at the microseconds `timestamptz` keeps, so what a call returns equals what
    /// a later read returns.
    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }
}

#[async_trait]
impl StoreStorage for PgStoreStorage {
    async fn create_store_for_owner(
        &self,
        owner: UserId,
        request: &StoreRequest,
    ) -> StorageResult<(Store, bool)> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_as!(
            StoredStore,
            r#"INSERT INTO stores (owner_user_id, name, pos_grade, settlement_day, created_at)
               VALUES ($1, $2, $3::text::store_pos_grade, $4, $5)
               ON CONFLICT (owner_user_id) DO NOTHING
               RETURNING id, owner_user_id, name, pos_grade::text AS "pos_grade!",
                         settlement_day, created_at"#,
            owner.get(),
            request.name.as_str(),
            request.grade.as_str(),
            request.settlement_day.get(),
            now,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(store) = inserted else {
            // Another call created it first (it committed before our insert gave way).
            tx.rollback().await?;
            let existing = self.store_of_owner(owner).await?;
            return existing
                .map(|store| (store, false))
                .ok_or(StorageError::Inconsistent(
                    "a store conflicted on its owner but cannot be read",
                ));
        };
        sqlx::query!(
            "INSERT INTO devices (store_id, label, credential_version, created_at)
             SELECT $1, 'table ' || n, 1, $2 FROM generate_series(1, $3::int) AS n",
            store.id,
            now,
            request.grade.device_count(),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((store.decode()?, true))
    }

    async fn store_of_owner(&self, owner: UserId) -> StorageResult<Option<Store>> {
        sqlx::query_as!(
            StoredStore,
            r#"SELECT id, owner_user_id, name, pos_grade::text AS "pos_grade!", settlement_day,
                      created_at
               FROM stores WHERE owner_user_id = $1"#,
            owner.get(),
        )
        .fetch_optional(&self.pool)
        .await?
        .map(StoredStore::decode)
        .transpose()
    }

    async fn stores_by_settlement_day(
        &self,
        day: SettlementDay,
        after: i64,
        limit: i64,
    ) -> StorageResult<Vec<Store>> {
        let rows = sqlx::query_as!(
            StoredStore,
            r#"SELECT id, owner_user_id, name, pos_grade::text AS "pos_grade!", settlement_day,
                      created_at
               FROM stores WHERE settlement_day = $1 AND id > $2 ORDER BY id LIMIT $3"#,
            day.get(),
            after,
            limit,
        )
        .fetch_all(&self.pool)
        .await?;
        decode_all(rows, StoredStore::decode)
    }

    async fn devices_of_store(&self, store: StoreId) -> StorageResult<Vec<Device>> {
        let rows = sqlx::query_as!(
            DeviceRow,
            "SELECT id, store_id, label, credential_version, revoked_at, created_at
             FROM devices WHERE store_id = $1 ORDER BY id",
            store.get(),
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(DeviceRow::decode).collect())
    }

    async fn devices_page(&self, store: StoreId, page: Page) -> StorageResult<Vec<Device>> {
        let rows = sqlx::query_as!(
            DeviceRow,
            "SELECT id, store_id, label, credential_version, revoked_at, created_at
             FROM devices WHERE store_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            store.get(),
            page.after,
            page.limit,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(DeviceRow::decode).collect())
    }

    async fn device(&self, store: StoreId, device: DeviceId) -> StorageResult<Option<Device>> {
        Ok(sqlx::query_as!(
            DeviceRow,
            "SELECT id, store_id, label, credential_version, revoked_at, created_at
             FROM devices WHERE id = $1 AND store_id = $2",
            device.get(),
            store.get(),
        )
        .fetch_optional(&self.pool)
        .await?
        .map(DeviceRow::decode))
    }

    async fn devices_by_id(&self, devices: &[DeviceId]) -> StorageResult<Vec<Device>> {
        let ids: Vec<i64> = devices.iter().map(|id| id.get()).collect();
        Ok(sqlx::query_as!(
            DeviceRow,
            "SELECT id, store_id, label, credential_version, revoked_at, created_at
             FROM devices WHERE id = ANY($1)",
            &ids,
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(DeviceRow::decode)
        .collect())
    }

    async fn rotate_device_credential(
        &self,
        store: StoreId,
        device: DeviceId,
        revoke: bool,
    ) -> StorageResult<Option<Device>> {
        Ok(sqlx::query_as!(
            DeviceRow,
            "UPDATE devices SET credential_version = credential_version + 1, revoked_at = $1
             WHERE id = $2 AND store_id = $3
             RETURNING id, store_id, label, credential_version, revoked_at, created_at",
            revoke.then(|| self.now()),
            device.get(),
            store.get(),
        )
        .fetch_optional(&self.pool)
        .await?
        .map(DeviceRow::decode))
    }

    async fn create_product(
        &self,
        store: StoreId,
        product: &NewProduct,
        limit: ProductLimit,
    ) -> StorageResult<Created> {
        let mut tx = self.pool.begin().await?;
        // Creates in one store queue on its row (NO KEY UPDATE: the products' foreign key
        // checks still pass), so the count below sees every create committed before.
        sqlx::query!(
            "SELECT id FROM stores WHERE id = $1 FOR NO KEY UPDATE",
            store.get()
        )
        .fetch_optional(&mut *tx)
        .await?;
        // The product and its first history entry in one statement, when there is room.
        let row = sqlx::query_as!(
            StoredProduct,
            r#"WITH created AS (
                 INSERT INTO products
                   (store_id, name, category, price, stock, base_stock, created_at, updated_at)
                 SELECT $1, $2, $3::text::store_product_category, $4, $5, $5, $6, $6
                 WHERE (SELECT count(*) FROM products
                        WHERE store_id = $1 AND deleted_at IS NULL) < $7
                 RETURNING *
               ), history AS (
                 INSERT INTO product_history (product_id, price, base_stock, at)
                 SELECT id, price, base_stock, created_at FROM created
               )
               SELECT id AS "id!", store_id AS "store_id!", name AS "name!",
                      category::text AS "category!", price AS "price!", stock AS "stock!",
                      base_stock AS "base_stock!", deleted_at, created_at AS "created_at!",
                      updated_at AS "updated_at!"
               FROM created"#,
            store.get(),
            product.name.as_str(),
            product.category.as_str(),
            product.price.get(),
            product.base_stock.get(),
            self.now(),
            limit.get(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match row {
            Some(row) => row.decode().map(Created::Product),
            None => Ok(Created::StoreFull),
        }
    }

    async fn update_product(
        &self,
        store: StoreId,
        product: ProductId,
        change: &ProductChange,
    ) -> StorageResult<Option<Product>> {
        let mut tx = self.pool.begin().await?;
        // Hold the product before reading the clock: an updater that waited for the lock
        // reads a later instant than the one it waited for, so history is in commit order.
        let live = sqlx::query_scalar!(
            "SELECT id FROM products WHERE id = $1 AND store_id = $2 AND deleted_at IS NULL
             FOR UPDATE",
            product.get(),
            store.get(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        // GREATEST: even a wall clock stepped back never writes an entry older than the
        // last one.
        let row = sqlx::query_as!(
            StoredProduct,
            r#"WITH changed AS (
                 UPDATE products SET price = COALESCE($1, price),
                                     base_stock = COALESCE($2, base_stock),
                                     updated_at = GREATEST($3, updated_at)
                 WHERE id = $4 AND store_id = $5 AND deleted_at IS NULL
                 RETURNING *
               ), history AS (
                 INSERT INTO product_history (product_id, price, base_stock, at)
                 SELECT id, price, base_stock, updated_at FROM changed
               )
               SELECT id AS "id!", store_id AS "store_id!", name AS "name!",
                      category::text AS "category!", price AS "price!", stock AS "stock!",
                      base_stock AS "base_stock!", deleted_at, created_at AS "created_at!",
                      updated_at AS "updated_at!"
               FROM changed"#,
            change.price().map(|p| p.get()),
            change.base_stock().map(|b| b.get()),
            self.now(),
            product.get(),
            store.get(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(StoredProduct::decode).transpose()
    }

    async fn delete_product(
        &self,
        store: StoreId,
        product: ProductId,
    ) -> StorageResult<Option<Product>> {
        sqlx::query_as!(
            StoredProduct,
            r#"UPDATE products SET deleted_at = $1, updated_at = $1
               WHERE id = $2 AND store_id = $3 AND deleted_at IS NULL
               RETURNING id, store_id, name, category::text AS "category!", price, stock,
                         base_stock, deleted_at, created_at, updated_at"#,
            self.now(),
            product.get(),
            store.get(),
        )
        .fetch_optional(&self.pool)
        .await?
        .map(StoredProduct::decode)
        .transpose()
    }

    async fn restock(&self, store: StoreId) -> StorageResult<u64> {
        let mut tx = self.pool.begin().await?;
        // Lock the rows first, in id order. The UPDATE below is then a new statement with
        // a new snapshot: every reservation or release that held one of these rows has
        // committed and is counted, and none can change them until we commit.
        sqlx::query!(
            "SELECT id FROM products WHERE store_id = $1 AND deleted_at IS NULL
             ORDER BY id FOR UPDATE",
            store.get(),
        )
        .fetch_all(&mut *tx)
        .await?;
        let restocked = sqlx::query!(
            r#"WITH held AS (
                 SELECT l.product_id, SUM(l.count)::bigint AS count
                 FROM stock_reservations r
                 JOIN stock_reservation_lines l ON l.order_id = r.order_id
                 WHERE r.status = 'RESERVED' AND r.store_id = $1
                 GROUP BY l.product_id
               )
               UPDATE products p
               SET stock = GREATEST(
                     p.base_stock
                     - COALESCE((SELECT held.count FROM held WHERE held.product_id = p.id), 0),
                     0),
                   updated_at = $2
               WHERE p.store_id = $1 AND p.deleted_at IS NULL"#,
            store.get(),
            self.now(),
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(restocked)
    }

    async fn product(&self, store: StoreId, product: ProductId) -> StorageResult<Option<Product>> {
        sqlx::query_as!(
            StoredProduct,
            r#"SELECT id, store_id, name, category::text AS "category!", price, stock, base_stock,
                      deleted_at, created_at, updated_at
               FROM products WHERE id = $1 AND store_id = $2"#,
            product.get(),
            store.get(),
        )
        .fetch_optional(&self.pool)
        .await?
        .map(StoredProduct::decode)
        .transpose()
    }

    async fn list_products(
        &self,
        store: StoreId,
        filter: ProductFilter,
        page: Page,
    ) -> StorageResult<Vec<Product>> {
        let rows = sqlx::query_as!(
            StoredProduct,
            r#"SELECT id, store_id, name, category::text AS "category!", price, stock, base_stock,
                      deleted_at, created_at, updated_at
               FROM products
               WHERE store_id = $1
                 AND ($2::text IS NULL OR category = $2::text::store_product_category)
                 AND ($3 OR deleted_at IS NULL)
                 AND id > $4
               ORDER BY id
               LIMIT $5"#,
            store.get(),
            filter.category.map(|c| c.as_str()),
            filter.include_deleted,
            page.after,
            page.limit,
        )
        .fetch_all(&self.pool)
        .await?;
        decode_all(rows, StoredProduct::decode)
    }

    async fn product_history(
        &self,
        store: StoreId,
        product: ProductId,
        page: Page,
    ) -> StorageResult<Option<Vec<HistoryEntry>>> {
        let rows = sqlx::query_as!(
            StoredHistory,
            "SELECT h.id, h.product_id, h.price, h.base_stock, h.at
             FROM products p JOIN product_history h ON h.product_id = p.id
             WHERE p.id = $1 AND p.store_id = $2 AND h.id > $3
             ORDER BY h.id
             LIMIT $4",
            product.get(),
            store.get(),
            page.after,
            page.limit,
        )
        .fetch_all(&self.pool)
        .await?;
        // An empty page is the end of a product's history, or no such product here.
        if rows.is_empty() && self.product(store, product).await?.is_none() {
            return Ok(None);
        }
        decode_all(rows, StoredHistory::decode).map(Some)
    }

    async fn reserve(
        &self,
        order: &pos_store_storage::OrderId,
        store: StoreId,
        lines: &pos_store_storage::OrderLines,
    ) -> StorageResult<pos_store_storage::Reserved> {
        reservations::reserve(&self.pool, self.now(), order, store, lines).await
    }

    async fn reserve_many(
        &self,
        requests: &[pos_store_storage::StockRequest],
    ) -> Vec<StorageResult<pos_store_storage::Reserved>> {
        reserve_batch::reserve_many(&self.pool, self.now(), requests).await
    }

    async fn confirm(
        &self,
        order: &pos_store_storage::OrderId,
    ) -> StorageResult<pos_store_storage::Confirmed> {
        reservations::confirm(&self.pool, self.now(), order).await
    }

    async fn confirm_many(
        &self,
        orders: &[pos_store_storage::OrderId],
    ) -> StorageResult<pos_store_storage::ConfirmedMany> {
        reservations::confirm_many(&self.pool, self.now(), orders).await
    }

    async fn release(
        &self,
        order: &pos_store_storage::OrderId,
    ) -> StorageResult<pos_store_storage::Released> {
        reservations::release(&self.pool, self.now(), order).await
    }

    async fn reservation(
        &self,
        order: &pos_store_storage::OrderId,
    ) -> StorageResult<Option<pos_store_storage::Reservation>> {
        let mut conn = self.pool.acquire().await?;
        reservations::read(&mut conn, order).await
    }

    async fn stale_reservations(
        &self,
        made_before: DateTime<Utc>,
        limit: i64,
    ) -> StorageResult<Vec<pos_store_storage::OrderId>> {
        let rows = sqlx::query_scalar!(
            "SELECT order_id FROM stock_reservations
             WHERE status = 'RESERVED' AND created_at < $1
             ORDER BY created_at, order_id
             LIMIT $2",
            made_before,
            limit,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|raw| {
                pos_store_storage::OrderId::parse(raw)
                    .map_err(|_| StorageError::unknown("stock_reservations.order_id", raw))
            })
            .collect()
    }
}
