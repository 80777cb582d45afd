//! Stock reservations for orders (Try-Confirm-Cancel): the values a reservation is asked
//! with, the record storage keeps, and the outcomes of each step.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
pub use pos_common::domain::{MAX_LINE_COUNT, MAX_ORDER_LINES, OrderId};
use pos_common::{
    domain::{Category, ProductId, StoreId},
    error::Violations,
};

/// One product and how many of it an order takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub count: i64,
}

/// An order's lines: 1-100 lines of counts 1-10,000,000, lines of the same product
/// merged (stock is checked on the total), in product id order — the order rows are
/// locked in, so concurrent reservations never deadlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLines(Vec<OrderLine>);

impl OrderLines {
    /// Parses `(product_id, count)` pairs as a request sent them, recording a violation
    /// per bad field (`lines`, `lines[i].product_id`, `lines[i].count`).
    pub fn parse(raw: &[(i64, i64)], violations: &mut Violations) -> Option<Self> {
        let mut valid = true;
        if raw.is_empty() {
            violations.add("lines", "at least one line is required");
            valid = false;
        }
        if raw.len() > MAX_ORDER_LINES {
            violations.add("lines", format!("at most {MAX_ORDER_LINES} lines"));
            valid = false;
        }
        let mut merged: BTreeMap<ProductId, i64> = BTreeMap::new();
        for (i, &(product_id, count)) in raw.iter().enumerate() {
            let product = violations.check(
                &format!("lines[{i}].product_id"),
                ProductId::parse(product_id),
            );
            if !(1..=MAX_LINE_COUNT).contains(&count) {
                violations.add(
                    &format!("lines[{i}].count"),
                    format!("must be between 1 and {MAX_LINE_COUNT}"),
                );
                valid = false;
            }
            match product {
                // At most 100 lines of at most 10^7 each: the sum cannot overflow.
                Some(product) => *merged.entry(product).or_insert(0) += count,
                None => valid = false,
            }
        }
        valid.then(|| {
            Self(
                merged
                    .into_iter()
                    .map(|(product_id, count)| OrderLine { product_id, count })
                    .collect(),
            )
        })
    }

    pub fn lines(&self) -> &[OrderLine] {
        &self.0
    }

    /// Whether a stored reservation holds exactly these lines.
    pub fn matches(&self, reserved: &[ReservedLine]) -> bool {
        self.0.len() == reserved.len()
            && self
                .0
                .iter()
                .zip(reserved)
                .all(|(want, have)| want.product_id == have.product_id && want.count == have.count)
    }
}

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
            Some(store) => store == store_id && lines.matches(&self.lines),
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

/// How a release went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// Released now or before (or recorded as a tombstone, for an unknown order id).
    Released(Reservation),
    /// It was confirmed: its stock is sold and is never given back.
    AlreadyConfirmed(Reservation),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_merge_in_product_order_and_name_every_bad_field() {
        let mut violations = Violations::new();
        let lines = OrderLines::parse(&[(4, 2), (2, 4), (4, 3)], &mut violations).expect("valid");
        let pairs: Vec<(i64, i64)> = lines
            .lines()
            .iter()
            .map(|l| (l.product_id.get(), l.count))
            .collect();
        assert_eq!(pairs, vec![(2, 4), (4, 5)]);
        assert!(violations.into_result().is_ok());

        let mut violations = Violations::new();
        assert!(
            OrderLines::parse(&[(0, 1), (1, 0), (1, MAX_LINE_COUNT + 1)], &mut violations)
                .is_none()
        );
        let err = violations.into_result().unwrap_err();
        assert!(err.message().contains("lines[0].product_id"));
        assert!(err.message().contains("lines[1].count"));
        assert!(err.message().contains("lines[2].count"));
    }

    #[test]
    fn order_ids_are_bounded_visible_ascii() {
        assert!(OrderId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "has space", "ünï", &"a".repeat(65)] {
            assert!(OrderId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
