//! The store service's storage on SQLite (`pos up`): compile-time checked queries
//! (`sqlx::query!`, offline data in `.sqlx/`) over SQLite's own idioms — instants as UTC
//! Unix milliseconds (SQLite has no timestamp type), closed sets as checked text, and
//! multi-row statements over a JSON array (`json_each`), SQLite's way to pass a list.
//!
//! SQLite runs one writer at a time: every writing transaction starts with a write, so
//! it takes the database's write lock at once and concurrent writers queue behind it
//! (within the busy timeout) instead of failing to upgrade a read lock.

mod reservations;
mod rows;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pos_common::{
    clock::SharedClock,
    domain::{DeviceId, ProductId, SettlementDay, StoreId, StoreRequest, UserId},
    storage::{StorageError, to_millis},
};
use pos_store_storage::{
    Confirmed, ConfirmedMany, Created, Device, HistoryEntry, NewProduct, OrderId, OrderLines, Page,
    Product, ProductChange, ProductFilter, ProductLimit, Released, Reservation, Reserved,
    StockRequest, StorageResult, Store, StoreStorage,
};
use sqlx::{SqlitePool, migrate::Migrator};

use rows::{DeviceRow, HistoryRow, ProductRow, StoreRow, decode_all};

/// This engine's migrations (tracked per service; see `pos_store::MIGRATIONS`).
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

#[derive(Clone)]
pub struct SqliteStoreStorage {
    pool: SqlitePool,
    clock: SharedClock,
}

impl SqliteStoreStorage {
    pub fn new(pool: SqlitePool, clock: SharedClock) -> Self {
        Self { pool, clock }
    }

    fn now(&self) -> i64 {
        to_millis(self.clock.now())
    }
}

#[async_trait]
impl StoreStorage for SqliteStoreStorage {
    async fn create_store_for_owner(
        &self,
        owner: UserId,
        request: &StoreRequest,
    ) -> StorageResult<(Store, bool)> {
        let now = self.now();
        let owner_id = owner.get();
        let name = request.name.as_str();
        let grade = request.grade.as_str();
        let day = request.settlement_day.get();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_as!(
            StoreRow,
            r#"INSERT INTO stores (owner_user_id, name, pos_grade, settlement_day, created_at)
               VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (owner_user_id) DO NOTHING
               RETURNING id AS "id!", owner_user_id AS "owner_user_id!", name AS "name!",
                         pos_grade AS "pos_grade!", settlement_day AS "settlement_day!: i64",
                         created_at AS "created_at!""#,
            owner_id,
            name,
            grade,
            day,
            now,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(store) = inserted else {
            tx.rollback().await?;
            let existing = self.store_of_owner(owner).await?;
            return existing
                .map(|store| (store, false))
                .ok_or(StorageError::Inconsistent(
                    "a store conflicted on its owner but cannot be read",
                ));
        };
        let devices = request.grade.device_count();
        sqlx::query!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
             INSERT INTO devices (store_id, label, credential_version, created_at)
             SELECT ?1, 'table ' || i, 1, ?2 FROM n",
            store.id,
            now,
            devices,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((store.decode()?, true))
    }

    async fn store_of_owner(&self, owner: UserId) -> StorageResult<Option<Store>> {
        let owner_id = owner.get();
        sqlx::query_as!(
            StoreRow,
            r#"SELECT id, owner_user_id, name, pos_grade, settlement_day AS "settlement_day: i64",
                      created_at
               FROM stores WHERE owner_user_id = ?1"#,
            owner_id,
        )
        .fetch_optional(&self.pool)
        .await?
        .map(StoreRow::decode)
        .transpose()
    }

    async fn stores_by_settlement_day(
        &self,
        day: SettlementDay,
        after: i64,
        limit: i64,
    ) -> StorageResult<Vec<Store>> {
        let day = day.get();
        let rows = sqlx::query_as!(
            StoreRow,
            r#"SELECT id, owner_user_id, name, pos_grade, settlement_day AS "settlement_day: i64",
                      created_at
               FROM stores WHERE settlement_day = ?1 AND id > ?2 ORDER BY id LIMIT ?3"#,
            day,
            after,
            limit,
        )
        .fetch_all(&self.pool)
        .await?;
        decode_all(rows, StoreRow::decode)
    }

    async fn devices_of_store(&self, store: StoreId) -> StorageResult<Vec<Device>> {
        let store_id = store.get();
        let rows = sqlx::query_as!(
            DeviceRow,
            "SELECT id, store_id, label, credential_version, revoked_at, created_at
             FROM devices WHERE store_id = ?1 ORDER BY id",
            store_id,
        )
        .fetch_all(&self.pool)
        .await?;
        decode_all(rows, DeviceRow::decode)
    }

    async fn devices_page(&self, store: StoreId, page: Page) -> StorageResult<Vec<Device>> {
        let store_id = store.get();
        let rows = sqlx::query_as!(
            DeviceRow,
            "SELECT id, store_id, label, credential_version, revoked_at, created_at
             FROM devices WHERE store_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            store_id,
            page.after,
            page.limit,
        )
        .fetch_all(&self.pool)
        .await?;
        decode_all(rows, DeviceRow::decode)
    }

    async fn device(&self, store: StoreId, device: DeviceId) -> StorageResult<Option<Device>> {
        let (store_id, device_id) = (store.get(), device.get());
        sqlx::query_as!(
            DeviceRow,
            "SELECT id, store_id, label, credential_version, revoked_at, created_at
             FROM devices WHERE id = ?1 AND store_id = ?2",
            device_id,
            store_id,
        )
        .fetch_optional(&self.pool)
        .await?
        .map(DeviceRow::decode)
        .transpose()
    }

    async fn devices_by_id(&self, devices: &[DeviceId]) -> StorageResult<Vec<Device>> {
        let ids = serde_json::to_string(&devices.iter().map(|id| id.get()).collect::<Vec<_>>())
            .map_err(|_| StorageError::Inconsistent("device ids do not encode as JSON"))?;
        sqlx::query_as!(
            DeviceRow,
            "SELECT id, store_id, label, credential_version, revoked_at, created_at
             FROM devices WHERE id IN (SELECT value FROM json_each(?1))",
            ids,
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(DeviceRow::decode)
        .collect()
    }

    async fn rotate_device_credential(
        &self,
        store: StoreId,
        device: DeviceId,
        revoke: bool,
    ) -> StorageResult<Option<Device>> {
        let (store_id, device_id) = (store.get(), device.get());
        let revoked_at = revoke.then(|| self.now());
        sqlx::query_as!(
            DeviceRow,
            r#"UPDATE devices SET credential_version = credential_version + 1, revoked_at = ?1
               WHERE id = ?2 AND store_id = ?3
               RETURNING id AS "id!", store_id AS "store_id!", label AS "label!",
                         credential_version AS "credential_version!", revoked_at,
                         created_at AS "created_at!""#,
            revoked_at,
            device_id,
            store_id,
        )
        .fetch_optional(&self.pool)
        .await?
        .map(DeviceRow::decode)
        .transpose()
    }

    async fn create_product(
        &self,
        store: StoreId,
        product: &NewProduct,
        limit: ProductLimit,
    ) -> StorageResult<Created> {
        let store_id = store.get();
        let (name, category) = (product.name.as_str(), product.category.as_str());
        let (price, base_stock) = (product.price.get(), product.base_stock.get());
        let limit = limit.get();
        // The write lock first: creates are serialized, so the count sees every one before.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = self.now();
        let row = sqlx::query_as!(
            ProductRow,
            r#"INSERT INTO products
                 (store_id, name, category, price, stock, base_stock, created_at, updated_at)
               SELECT ?1, ?2, ?3, ?4, ?5, ?5, ?6, ?6
               WHERE (SELECT COUNT(*) FROM products
                      WHERE store_id = ?1 AND deleted_at IS NULL) < ?7
               RETURNING id AS "id!", store_id AS "store_id!", name AS "name!",
                         category AS "category!", price AS "price!", stock AS "stock!",
                         base_stock AS "base_stock!", deleted_at, created_at AS "created_at!",
                         updated_at AS "updated_at!""#,
            store_id,
            name,
            category,
            price,
            base_stock,
            now,
            limit,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(Created::StoreFull);
        };
        record_history(&mut tx, &row, now).await?;
        tx.commit().await?;
        row.decode().map(Created::Product)
    }

    async fn update_product(
        &self,
        store: StoreId,
        product: ProductId,
        change: &ProductChange,
    ) -> StorageResult<Option<Product>> {
        let (store_id, product_id) = (store.get(), product.get());
        let price = change.price().map(|p| p.get());
        let base_stock = change.base_stock().map(|b| b.get());
        // The write lock first, then the clock: writers are serialized, so each reads a
        // later instant than the one before it committed, and history is in commit order.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = self.now();
        // MAX: even a wall clock stepped back never writes an entry older than the last.
        let row = sqlx::query_as!(
            ProductRow,
            r#"UPDATE products SET price = COALESCE(?1, price),
                                   base_stock = COALESCE(?2, base_stock),
                                   updated_at = MAX(?3, updated_at)
               WHERE id = ?4 AND store_id = ?5 AND deleted_at IS NULL
               RETURNING id AS "id!", store_id AS "store_id!", name AS "name!",
                         category AS "category!", price AS "price!", stock AS "stock!",
                         base_stock AS "base_stock!", deleted_at, created_at AS "created_at!",
                         updated_at AS "updated_at!: i64""#,
            price,
            base_stock,
            now,
            product_id,
            store_id,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        record_history(&mut tx, &row, row.updated_at).await?;
        tx.commit().await?;
        row.decode().map(Some)
    }

    async fn delete_product(
        &self,
        store: StoreId,
        product: ProductId,
    ) -> StorageResult<Option<Product>> {
        let now = self.now();
        let (store_id, product_id) = (store.get(), product.get());
        sqlx::query_as!(
            ProductRow,
            r#"UPDATE products SET deleted_at = ?1, updated_at = ?1
               WHERE id = ?2 AND store_id = ?3 AND deleted_at IS NULL
               RETURNING id AS "id!", store_id AS "store_id!", name AS "name!",
                         category AS "category!", price AS "price!", stock AS "stock!",
                         base_stock AS "base_stock!", deleted_at, created_at AS "created_at!",
                         updated_at AS "updated_at!""#,
            now,
            product_id,
            store_id,
        )
        .fetch_optional(&self.pool)
        .await?
        .map(ProductRow::decode)
        .transpose()
    }

    async fn restock(&self, store: StoreId) -> StorageResult<u64> {
        let now = self.now();
        let store_id = store.get();
        // One statement under SQLite's single writer: nothing can reserve in between.
        let restocked = sqlx::query!(
            r#"UPDATE products
               SET stock = MAX(base_stock - COALESCE((
                     SELECT SUM(l.count)
                     FROM stock_reservations r
                     JOIN stock_reservation_lines l ON l.order_id = r.order_id
                     WHERE r.status = 'RESERVED' AND r.store_id = ?1
                       AND l.product_id = products.id), 0), 0),
                   updated_at = ?2
               WHERE store_id = ?1 AND deleted_at IS NULL"#,
            store_id,
            now,
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(restocked)
    }

    async fn product(&self, store: StoreId, product: ProductId) -> StorageResult<Option<Product>> {
        let (store_id, product_id) = (store.get(), product.get());
        sqlx::query_as!(
            ProductRow,
            "SELECT id, store_id, name, category, price, stock, base_stock, deleted_at,
                    created_at, updated_at
             FROM products WHERE id = ?1 AND store_id = ?2",
            product_id,
            store_id,
        )
        .fetch_optional(&self.pool)
        .await?
        .map(ProductRow::decode)
        .transpose()
    }

    async fn list_products(
        &self,
        store: StoreId,
        filter: ProductFilter,
        page: Page,
    ) -> StorageResult<Vec<Product>> {
        let store_id = store.get();
        let category = filter.category.map(|c| c.as_str());
        let include_deleted = filter.include_deleted;
        let rows = sqlx::query_as!(
            ProductRow,
            "SELECT id, store_id, name, category, price, stock, base_stock, deleted_at,
                    created_at, updated_at
             FROM products
             WHERE store_id = ?1 AND (?2 IS NULL OR category = ?2)
               AND (?3 OR deleted_at IS NULL)
               AND id > ?4
             ORDER BY id
             LIMIT ?5",
            store_id,
            category,
            include_deleted,
            page.after,
            page.limit,
        )
        .fetch_all(&self.pool)
        .await?;
        decode_all(rows, ProductRow::decode)
    }

    async fn product_history(
        &self,
        store: StoreId,
        product: ProductId,
        page: Page,
    ) -> StorageResult<Option<Vec<HistoryEntry>>> {
        let (store_id, product_id) = (store.get(), product.get());
        let rows = sqlx::query_as!(
            HistoryRow,
            "SELECT h.id, h.product_id, h.price, h.base_stock, h.at
             FROM products p JOIN product_history h ON h.product_id = p.id
             WHERE p.id = ?1 AND p.store_id = ?2 AND h.id > ?3
             ORDER BY h.id
             LIMIT ?4",
            product_id,
            store_id,
            page.after,
            page.limit,
        )
        .fetch_all(&self.pool)
        .await?;
        // An empty page is the end of a product's history, or no such product here.
        if rows.is_empty() && self.product(store, product).await?.is_none() {
            return Ok(None);
        }
        decode_all(rows, HistoryRow::decode).map(Some)
    }

    async fn reserve(
        &self,
        order: &OrderId,
        store: StoreId,
        lines: &OrderLines,
    ) -> StorageResult<Reserved> {
        reservations::reserve(&self.pool, self.now(), order, store, lines).await
    }

    async fn reserve_many(&self, requests: &[StockRequest]) -> Vec<StorageResult<Reserved>> {
        reservations::reserve_many(&self.pool, self.now(), requests).await
    }

    async fn confirm(&self, order: &OrderId) -> StorageResult<Confirmed> {
        reservations::confirm(&self.pool, self.now(), order).await
    }

    async fn confirm_many(&self, orders: &[OrderId]) -> StorageResult<ConfirmedMany> {
        reservations::confirm_many(&self.pool, self.now(), orders).await
    }

    async fn release(&self, order: &OrderId) -> StorageResult<Released> {
        reservations::release(&self.pool, self.now(), order).await
    }

    async fn reservation(&self, order: &OrderId) -> StorageResult<Option<Reservation>> {
        let mut conn = self.pool.acquire().await?;
        reservations::read(&mut conn, order).await
    }

    async fn stale_reservations(
        &self,
        made_before: DateTime<Utc>,
        limit: i64,
    ) -> StorageResult<Vec<OrderId>> {
        let before = to_millis(made_before);
        let rows = sqlx::query_scalar!(
            r#"SELECT order_id AS "order_id!" FROM stock_reservations
             WHERE status = 'RESERVED' AND created_at < ?1
             ORDER BY created_at, order_id
             LIMIT ?2"#,
            before,
            limit,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|raw| {
                OrderId::parse(raw)
                    .map_err(|_| StorageError::unknown("stock_reservations.order_id", raw))
            })
            .collect()
    }
}

async fn record_history(
    conn: &mut sqlx::SqliteConnection,
    product: &ProductRow,
    at: i64,
) -> StorageResult<()> {
    sqlx::query!(
        "INSERT INTO product_history (product_id, price, base_stock, at) VALUES (?1, ?2, ?3, ?4)",
        product.id,
        product.price,
        product.base_stock,
        at,
    )
    .execute(conn)
    .await?;
    Ok(())
}
