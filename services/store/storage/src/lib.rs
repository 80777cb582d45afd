//! What the store service keeps — stores, their tablets, menus with price history, and
//! stock reservations — as one trait, [`StoreStorage`], in the service's own terms. Each
//! database engine implements it in its own crate (`pos-store-postgres`,
//! `pos-store-sqlite`), and one contract test suite runs against both.
//!
//! Promises every implementation keeps:
//! - every method is atomic: it changes everything it says or nothing;
//! - stock never goes below zero, however many reservations race;
//! - reserve, confirm and release are idempotent on the order id, and a confirmed
//!   reservation's stock is never given back;
//! - products are locked in id order, so no two stock changes deadlock each other;
//! - a stored value this build does not know is an error, never a default;
//! - lists come in pages by id (keyset: `id > after ORDER BY id LIMIT n`), and what a
//!   write returns is bounded (one row, or a count), never a whole catalog;
//! - a store never has more live products than its limit, however many creates race;
//! - a product's history is in commit order: its instants never go backwards.

pub mod model;
pub mod reservations;
pub mod stored;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pos_common::{
    domain::{DeviceId, ProductId, SettlementDay, StoreId, StoreRequest, UserId},
    storage::StorageError,
};

pub use model::{
    Amount, Category, Created, Device, HistoryEntry, NewProduct, Page, Product, ProductChange,
    ProductFilter, ProductLimit, ProductName, Store,
};
pub use reservations::{
    Confirmed, ConfirmedMany, MAX_CONFIRM_BATCH, MAX_RESERVE_BATCH, OrderId, OrderLine, OrderLines,
    Released, Reservation, ReservationStatus, Reserved, ReservedLine, Shortage, StockRequest,
};

pub type StorageResult<T> = Result<T, StorageError>;

/// The store service's storage.
#[async_trait]
pub trait StoreStorage: Send + Sync + 'static {
    /// Creates the owner's store with its grade's number of tablets ("table 1", ...).
    /// When the owner already has a store it is returned unchanged with `false`: a
    /// retried signup completes instead of failing or duplicating.
    async fn create_store_for_owner(
        &self,
        owner: UserId,
        request: &StoreRequest,
    ) -> StorageResult<(Store, bool)>;

    async fn store_of_owner(&self, owner: UserId) -> StorageResult<Option<Store>>;

    /// Stores closing their month on `day`, by id, after `after`, at most `limit`.
    async fn stores_by_settlement_day(
        &self,
        day: SettlementDay,
        after: i64,
        limit: i64,
    ) -> StorageResult<Vec<Store>>;

    /// Every tablet of the store, by id: at most its grade's number (100).
    async fn devices_of_store(&self, store: StoreId) -> StorageResult<Vec<Device>>;

    /// A page of the store's tablets, by id.
    async fn devices_page(&self, store: StoreId, page: Page) -> StorageResult<Vec<Device>>;

    async fn device(&self, store: StoreId, device: DeviceId) -> StorageResult<Option<Device>>;

    /// The tablets with these ids, whatever their store, in one read (ids not found are
    /// left out): the credentials of a batch of orders' tablets.
    async fn devices_by_id(&self, devices: &[DeviceId]) -> StorageResult<Vec<Device>>;

    /// Bumps the tablet's credential version so every token issued before stops
    /// working; `revoke` leaves it revoked until the next rotation.
    async fn rotate_device_credential(
        &self,
        store: StoreId,
        device: DeviceId,
        revoke: bool,
    ) -> StorageResult<Option<Device>>;

    /// Creates a product with stock = base stock, and its first history entry, unless the
    /// store already has `limit` live products ([`Created::StoreFull`]). Concurrent
    /// creates in one store are serialized, so together they never pass the limit.
    async fn create_product(
        &self,
        store: StoreId,
        product: &NewProduct,
        limit: ProductLimit,
    ) -> StorageResult<Created>;

    /// Changes a live product's price and/or base stock (never its stock), recording
    /// history. `None` when the store has no such live product.
    async fn update_product(
        &self,
        store: StoreId,
        product: ProductId,
        change: &ProductChange,
    ) -> StorageResult<Option<Product>>;

    /// Soft-deletes a live product. `None` when the store has no such live product.
    async fn delete_product(
        &self,
        store: StoreId,
        product: ProductId,
    ) -> StorageResult<Option<Product>>;

    /// Sets every live product's stock to its base stock less what unconfirmed
    /// reservations hold (those are sold or given back soon, and either way the shelf
    /// then holds exactly the base stock). Returns how many products it restocked.
    async fn restock(&self, store: StoreId) -> StorageResult<u64>;

    /// A product of the store, deleted or not.
    async fn product(&self, store: StoreId, product: ProductId) -> StorageResult<Option<Product>>;

    /// A page of the store's products that pass `filter`, by id.
    async fn list_products(
        &self,
        store: StoreId,
        filter: ProductFilter,
        page: Page,
    ) -> StorageResult<Vec<Product>>;

    /// A page of a product's history, oldest first (`page.after` is an entry's
    /// [`seq`](HistoryEntry::seq)); `None` when the store has no such product (deleted
    /// ones included).
    async fn product_history(
        &self,
        store: StoreId,
        product: ProductId,
        page: Page,
    ) -> StorageResult<Option<Vec<HistoryEntry>>>;

    /// Takes stock for every line, all or nothing, recording each product as it is now.
    async fn reserve(
        &self,
        order: &OrderId,
        store: StoreId,
        lines: &OrderLines,
    ) -> StorageResult<Reserved>;

    /// Reserves many orders, answering for each what [`reserve`](Self::reserve) would,
    /// called for each in turn: each order all or nothing on its own, one order's refusal
    /// or failure changing nothing of another's. An engine may reserve them together (a
    /// constant number of statements and one commit for the lot); this default reserves
    /// them one by one. At most [`MAX_RESERVE_BATCH`] (a caller's promise).
    async fn reserve_many(&self, requests: &[StockRequest]) -> Vec<StorageResult<Reserved>> {
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            outcomes.push(
                self.reserve(&request.order, request.store, &request.lines)
                    .await,
            );
        }
        outcomes
    }

    /// Makes a reservation final.
    async fn confirm(&self, order: &OrderId) -> StorageResult<Confirmed>;

    /// Makes many reservations final at once (each as [`confirm`](Self::confirm) would),
    /// a constant number of statements however many: one when all are confirmed. At most
    /// [`MAX_CONFIRM_BATCH`] ids (a caller's promise); duplicates are fine.
    async fn confirm_many(&self, orders: &[OrderId]) -> StorageResult<ConfirmedMany>;

    /// Gives reserved stock back. For an unknown order id it records a tombstone, so a
    /// reservation that arrives late takes nothing.
    async fn release(&self, order: &OrderId) -> StorageResult<Released>;

    /// A reservation with its lines, read in one consistent statement.
    async fn reservation(&self, order: &OrderId) -> StorageResult<Option<Reservation>>;

    /// Order ids of reservations still unconfirmed that were made before `made_before`,
    /// oldest first, at most `limit`: what the reconciler must resolve.
    async fn stale_reservations(
        &self,
        made_before: DateTime<Utc>,
        limit: i64,
    ) -> StorageResult<Vec<OrderId>>;
}
