//! Stock reservations for orders (Try-Confirm-Cancel): the values a reservation is asked
//! with, the record storage keeps, and the outcomes of each step.

use chrono::{DateTime, Utc};
use pos_common::domain::{Category, ProductId, StoreId};
pub use pos_common::domain::{MAX_LINE_COUNT, MAX_ORDER_LINES, OrderId, OrderLine, OrderLines};

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    /// Stock is held for an order not yet confirmed.
    Reserved,
    /// The order exists: the stock is sold.
    Confirmed,
    /// The order failed or never came: the stock went back.
    Released,
}

impl ReservationStatus {
    pub const ALL: [ReservationStatus; 3] = [Self::Reserved, Self::Confirmed, Self::Released];

    /// The name stored in databases.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Confirmed => "CONFIRMED",
            Self::Released => "RELEASED",
        }
    }

    pub fn from_name(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == stored)
    }
}

/// A reserved line with the product as it was when reserved: the order keeps this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedLine {
    pub product_id: ProductId,
    pub product_name: String,
    pub category: Category,
    pub unit_price: i64,
    pub count: i64,
}

/// A reservation and its lines, in product id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub order_id: OrderId,
    /// `None` for a tombstone: a release that arrived before any reservation of the
    /// order id, so a late reservation takes nothing.
    pub store_id: Option<StoreId>,
    pub status: ReservationStatus,
    pub created_at: DateTime<Utc>,
    pub lines: Vec<ReservedLine>,
}

impl Reservation {
    /// Whether this reservation answers a retry of (`store_id`, `lines`): a tombstone
    /// answers any, a reservation only the same request.
    pub fn answers(&self, store_id: StoreId, lines: &OrderLines) -> bool {
        match self.store_id {
            None => true,
            Some(store) => {
                store == store_id
                    && lines.matches(self.lines.iter().map(|l| (l.product_id, l.count)))
            }
        }
    }
}

/// A product there is not enough of, and how many are available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortage {
    pub product_id: ProductId,
    pub available: i64,
}

/// How a reservation went. Nothing changed unless it is `Taken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Stock was taken for every line.
    Taken(Reservation),
    /// The order id already has a reservation for this same request (a retry), or a
    /// tombstone; it is returned as it stands.
    Existing(Reservation),
    /// The order id was used for a different request.
    KeyReused,
    /// Some products are short; nothing was taken.
    OutOfStock(Vec<Shortage>),
    /// A product is not on this store's menu (unknown, deleted or another store's).
    ProductNotFound(ProductId),
}

/// How a confirmation went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Confirmed now or before.
    Confirmed(Reservation),
    /// It was released: it can never be confirmed.
    AlreadyReleased(Reservation),
    NotFound,
}

/// One order's stock request, as [`crate::StoreStorage::reserve_many`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockRequest {
    pub order: OrderId,
    pub store: StoreId,
    pub lines: OrderLines,
}

/// The most orders one `reserve_many` (and one ReserveStocks call) reserves.
pub const MAX_RESERVE_BATCH: usize = 1_000;

/// The most reservations one `confirm_many` (and one ConfirmStocks call) confirms.
pub const MAX_CONFIRM_BATCH: usize = 1_000;

/// How confirming many reservations at once went: every id not named here is confirmed
/// (now or before).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfirmedMany {
    /// Released reservations: they can never be confirmed.
    pub released: Vec<OrderId>,
    /// Ids with no reservation.
    pub unknown: Vec<OrderId>,
}

/// How a release went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// Released now or before (or recorded as a tombstone, for an unknown order id).
    Released(Reservation),
    /// It was confirmed: its stock is sold and is never given back.
    AlreadyConfirmed(Reservation),
}
