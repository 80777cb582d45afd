//! What the engine implementations share: turning what a database stored into the
//! domain — a value this build does not know is an error naming its column, never a
//! default — and the verdict a reservation reaches on the products it locked.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use pos_common::{
    domain::{Grade, ProductId, SettlementDay, StoreId, StoreName, UserId},
    storage::StorageError,
};

use crate::{
    Amount, Category, ConfirmedMany, HistoryEntry, OrderId, OrderLines, Product, ProductName,
    Reservation, ReservationStatus, Reserved, ReservedLine, Shortage, StorageResult, Store,
};

fn unknown(column: &'static str, value: impl std::fmt::Display) -> StorageError {
    StorageError::unknown(column, value)
}

/// A store row, its instant already decoded by the engine.
pub struct StoredStore {
    pub id: i64,
    pub owner_user_id: i64,
    pub name: String,
    pub pos_grade: String,
    pub settlement_day: i32,
    pub created_at: DateTime<Utc>,
}

impl StoredStore {
    pub fn decode(self) -> StorageResult<Store> {
        Ok(Store {
            id: StoreId::from_stored(self.id),
            owner: UserId::from_stored(self.owner_user_id),
            name: StoreName::from_stored(self.name),
            grade: Grade::from_name(&self.pos_grade)
                .ok_or_else(|| unknown("stores.pos_grade", &self.pos_grade))?,
            settlement_day: SettlementDay::parse(self.settlement_day)
                .map_err(|_| unknown("stores.settlement_day", self.settlement_day))?,
            created_at: self.created_at,
        })
    }
}

/// A product row, its instants already decoded by the engine.
pub struct StoredProduct {
    pub id: i64,
    pub store_id: i64,
    pub name: String,
    pub category: String,
    pub price: i64,
    pub stock: i64,
    pub base_stock: i64,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StoredProduct {
    pub fn decode(self) -> StorageResult<Product> {
        Ok(Product {
            id: ProductId::from_stored(self.id),
            store_id: StoreId::from_stored(self.store_id),
            name: ProductName::from_stored(self.name),
            category: category(&self.category)?,
            price: amount("products.price", self.price)?,
            stock: self.stock,
            base_stock: amount("products.base_stock", self.base_stock)?,
            deleted_at: self.deleted_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A product history row, its instant already decoded by the engine.
pub struct StoredHistory {
    pub id: i64,
    pub product_id: i64,
    pub price: i64,
    pub base_stock: i64,
    pub at: DateTime<Utc>,
}

impl StoredHistory {
    pub fn decode(self) -> StorageResult<HistoryEntry> {
        Ok(HistoryEntry {
            seq: self.id,
            product_id: ProductId::from_stored(self.product_id),
            price: amount("product_history.price", self.price)?,
            base_stock: amount("product_history.base_stock", self.base_stock)?,
            at: self.at,
        })
    }
}

pub fn category(stored: &str) -> StorageResult<Category> {
    Category::from_name(stored).ok_or_else(|| unknown("category", stored))
}

fn amount(column: &'static str, stored: i64) -> StorageResult<Amount> {
    Amount::parse(stored).map_err(|_| unknown(column, stored))
}

/// A line of a reservation as one row of a reservation joined to its lines: all `None`
/// on the one row of a reservation without lines (a tombstone).
pub struct StoredLine {
    pub product_id: Option<i64>,
    pub product_name: Option<String>,
    pub category: Option<String>,
    pub unit_price: Option<i64>,
    pub count: Option<i64>,
}

/// A reservation from its head and the rows of its lines, lines in product id order.
pub fn reservation(
    order: &OrderId,
    store_id: Option<StoreId>,
    status: &str,
    created_at: DateTime<Utc>,
    lines: impl IntoIterator<Item = StoredLine>,
) -> StorageResult<Reservation> {
    let mut reserved = Vec::new();
    for line in lines {
        let (
            Some(product_id),
            Some(product_name),
            Some(stored_category),
            Some(unit_price),
            Some(count),
        ) = (
            line.product_id,
            line.product_name,
            line.category,
            line.unit_price,
            line.count,
        )
        else {
            continue;
        };
        reserved.push(ReservedLine {
            product_id: ProductId::from_stored(product_id),
            product_name,
            category: category(&stored_category)?,
            unit_price,
            count,
        });
    }
    reserved.sort_by_key(|line| line.product_id);
    Ok(Reservation {
        order_id: order.clone(),
        store_id,
        status: ReservationStatus::from_name(status)
            .ok_or_else(|| unknown("stock_reservations.status", status))?,
        created_at,
        lines: reserved,
    })
}

/// What `confirm_many` answers: the ids asked for (`wanted`) less those its update
/// confirmed now, sorted by the stored status of each (`rest`; absent: no reservation). A
/// reservation confirmed before counts as confirmed. One still RESERVED was made after
/// the update looked: it was not there to be confirmed, so it is reported as unknown.
pub fn confirmed_many(
    wanted: &[OrderId],
    confirmed_now: &HashSet<String>,
    rest: &HashMap<String, String>,
) -> StorageResult<ConfirmedMany> {
    let mut outcome = ConfirmedMany::default();
    let mut seen = HashSet::new();
    for order in wanted {
        if confirmed_now.contains(order.as_str()) || !seen.insert(order.as_str()) {
            continue;
        }
        let status = rest
            .get(order.as_str())
            .map(|stored| {
                ReservationStatus::from_name(stored)
                    .ok_or_else(|| unknown("stock_reservations.status", stored))
            })
            .transpose()?;
        match status {
            None | Some(ReservationStatus::Reserved) => outcome.unknown.push(order.clone()),
            Some(ReservationStatus::Released) => outcome.released.push(order.clone()),
            Some(ReservationStatus::Confirmed) => {}
        }
    }
    Ok(outcome)
}

/// What the products an order asks for, as locked (product id → stock, deleted), say:
/// `Some` refusal when one is missing, deleted or short, `None` when every line fits.
pub fn refusal(lines: &OrderLines, on_shelf: &HashMap<i64, (i64, bool)>) -> Option<Reserved> {
    let mut short = Vec::new();
    for line in lines.lines() {
        match on_shelf.get(&line.product_id.get()) {
            None | Some((_, true)) => return Some(Reserved::ProductNotFound(line.product_id)),
            Some((stock, false)) if *stock < line.count => short.push(Shortage {
                product_id: line.product_id,
                available: *stock,
            }),
            Some(_) => {}
        }
    }
    (!short.is_empty()).then_some(Reserved::OutOfStock(short))
}
