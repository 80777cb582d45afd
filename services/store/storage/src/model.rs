//! The store catalog's values, parsed once from requests so storage and handlers only
//! ever see valid ones (parse, don't validate), and the records storage hands back.

use chrono::{DateTime, Utc};
pub use pos_common::domain::Category;
use pos_common::domain::{
    DeviceId, Grade, Invalid, ProductId, SettlementDay, StoreId, StoreName, UserId, one_line_name,
};

/// Largest price and base stock a product may have.
pub const MAX_AMOUNT: i64 = 10_000_000;

/// A product's name: 1-255 characters after trimming, on one line (the rule of every
/// name shown on a menu or a receipt: [`one_line_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub const MAX_CHARS: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        one_line_name(raw, Self::MAX_CHARS).map(Self)
    }

    /// A name the database kept, as it was kept: it passed the rule of the build that
    /// wrote it, which may have been looser than today's, and it must stay readable.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A price or a base stock: whole won / units in 0..=10,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(i64);

impl Amount {
    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        if (0..=MAX_AMOUNT).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(Invalid::new(format!("must be between 0 and {MAX_AMOUNT}")))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub id: StoreId,
    pub owner: UserId,
    pub name: StoreName,
    pub grade: Grade,
    pub settlement_day: SettlementDay,
    pub created_at: DateTime<Utc>,
}

/// An ordering tablet. Tokens carry its credential version; bumping the version revokes
/// every token issued before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: DeviceId,
    pub store_id: StoreId,
    pub label: String,
    pub credential_version: i64,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A product of a store's menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub store_id: StoreId,
    pub name: ProductName,
    pub category: Category,
    pub price: Amount,
    pub stock: i64,
    pub base_stock: Amount,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated product to create; its stock starts at its base stock.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: ProductName,
    pub category: Category,
    pub price: Amount,
    pub base_stock: Amount,
}

/// A validated update: price and/or base stock, at least one of them.
#[derive(Debug, Clone, Copy)]
pub struct ProductChange {
    price: Option<Amount>,
    base_stock: Option<Amount>,
}

impl ProductChange {
    pub fn new(price: Option<Amount>, base_stock: Option<Amount>) -> Result<Self, Invalid> {
        if price.is_none() && base_stock.is_none() {
            return Err(Invalid::new("set price and/or base_stock"));
        }
        Ok(Self { price, base_stock })
    }

    pub fn price(&self) -> Option<Amount> {
        self.price
    }

    pub fn base_stock(&self) -> Option<Amount> {
        self.base_stock
    }
}

/// Which of a store's products to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProductFilter {
    pub category: Option<Category>,
    pub include_deleted: bool,
}

/// A product's price and base stock from some moment on (recorded on create and update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The entry's place in the product's history (ascending in commit order).
    pub seq: i64,
    pub product_id: ProductId,
    pub price: Amount,
    pub base_stock: Amount,
    pub at: DateTime<Utc>,
}

/// One page of a list by id (keyset pagination): the rows whose id is greater than
/// `after` (0 for the first page), at most `limit` of them, in id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub after: i64,
    pub limit: i64,
}

impl Page {
    /// The first `limit` rows.
    pub fn first(limit: i64) -> Self {
        Self { after: 0, limit }
    }
}

/// How many live (not deleted) products one store may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductLimit(i64);

impl ProductLimit {
    /// The limit of a store's products when none is configured.
    pub const DEFAULT: i64 = 1_000;

    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        if raw > 0 {
            Ok(Self(raw))
        } else {
            Err(Invalid::new("must be at least 1"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl Default for ProductLimit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// What creating a product came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Product(Product),
    /// The store already has as many live products as the limit allows; nothing changed.
    StoreFull,
}
