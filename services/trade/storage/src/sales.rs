//! What paid trades add up to, read for the aggregation batch ([`SalesSource`]). A sale
//! happens when its trade is paid: lines and payments count only for PAID trades, and by
//! the instant they were paid, so product sales and settlements always agree — for any
//! stores and window, Σ product sale amounts = Σ payment amounts = revenue, and Σ card
//! fees by company = the fee.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pos_common::{domain::StoreId, storage::StorageError};

use crate::{CardCompany, Category, StorageResult};

/// Trades paid at `from` or later and before `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidBetween {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Whose trades are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSelection {
    All,
    /// These stores only (an empty list reads nothing).
    Only(Vec<StoreId>),
    /// The stores whose id leaves `index` when divided by `count`: `count` shards
    /// together read every store exactly once.
    Shard {
        index: u32,
        count: u32,
    },
}

impl StoreSelection {
    /// The selection as SQL parameters: (only these ids, or all when `None`; shard count
    /// and index, 1 and 0 for all).
    pub fn as_params(&self) -> (Option<Vec<i64>>, i64, i64) {
        match self {
            Self::All => (None, 1, 0),
            Self::Only(stores) => (Some(stores.iter().map(|s| s.get()).collect()), 1, 0),
            Self::Shard { index, count } => (None, i64::from(*count), i64::from(*index)),
        }
    }
}

/// One product's sales in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSaleTotal {
    pub store_id: StoreId,
    pub product_id: i64,
    /// As it was ordered the last time it was sold in the window (a product may be
    /// renamed or deleted since).
    pub product_name: String,
    pub category: Category,
    pub sale_count: i64,
    pub sale_amount: i64,
}

/// A store's paid trades: what they came to and what card companies kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreTotal {
    pub store_id: StoreId,
    pub revenue: i64,
    pub fee: i64,
    pub trade_count: i64,
}

/// A store's card payments with one company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardFeeTotal {
    pub store_id: StoreId,
    pub card_company: CardCompany,
    pub payment_count: i64,
    pub amount: i64,
    pub fee: i64,
}

/// A paying store's id as stored.
pub fn store_of(stored: i64) -> StorageResult<StoreId> {
    StoreId::parse(stored).map_err(|_| StorageError::unknown("trades.store_id", stored))
}

/// An order line's category as stored.
pub fn category_of(stored: &str) -> StorageResult<Category> {
    Category::from_name(stored)
        .ok_or_else(|| StorageError::unknown("trade_order_lines.category", stored))
}

impl StoreTotal {
    /// A row as both engines read it.
    pub fn decode(store_id: i64, revenue: i64, fee: i64, trade_count: i64) -> StorageResult<Self> {
        Ok(Self {
            store_id: store_of(store_id)?,
            revenue,
            fee,
            trade_count,
        })
    }
}

impl CardFeeTotal {
    /// A row as both engines read it.
    pub fn decode(
        store_id: i64,
        card_company: &str,
        payment_count: i64,
        amount: i64,
        fee: i64,
    ) -> StorageResult<Self> {
        Ok(Self {
            store_id: store_of(store_id)?,
            card_company: CardCompany::from_name(card_company).ok_or_else(|| {
                StorageError::unknown("trade_payments.card_company", card_company)
            })?,
            payment_count,
            amount,
            fee,
        })
    }
}

/// A product's sales under one name and category, as a database groups them; several of
/// them for one product (renamed, or moved to another category, within the window) are
/// merged by [`merge_names`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSales {
    pub store_id: StoreId,
    pub product_id: i64,
    pub product_name: String,
    pub category: Category,
    pub sale_count: i64,
    pub sale_amount: i64,
    /// When the product's last trade under this name was paid, and its last order under
    /// this name placed: the orders of one bill are all paid at once.
    pub last_sold: DateTime<Utc>,
    pub last_ordered: DateTime<Utc>,
}

/// One total per product, named as it was last sold; sums checked.
pub fn merge_names(mut rows: Vec<NamedSales>) -> StorageResult<Vec<ProductSaleTotal>> {
    // By product, the latest name first (the name breaks a tie only when one order
    // named the product twice, which an order cannot).
    rows.sort_by(|a, b| {
        (a.store_id, a.product_id)
            .cmp(&(b.store_id, b.product_id))
            .then_with(|| (b.last_sold, b.last_ordered).cmp(&(a.last_sold, a.last_ordered)))
            .then_with(|| b.product_name.cmp(&a.product_name))
    });
    let mut merged: Vec<ProductSaleTotal> = Vec::with_capacity(rows.len());
    for row in rows {
        match merged.last_mut() {
            Some(last) if last.store_id == row.store_id && last.product_id == row.product_id => {
                last.sale_count = checked_add(last.sale_count, row.sale_count)?;
                last.sale_amount = checked_add(last.sale_amount, row.sale_amount)?;
            }
            _ => merged.push(ProductSaleTotal {
                store_id: row.store_id,
                product_id: row.product_id,
                product_name: row.product_name,
                category: row.category,
                sale_count: row.sale_count,
                sale_amount: row.sale_amount,
            }),
        }
    }
    Ok(merged)
}

fn checked_add(a: i64, b: i64) -> StorageResult<i64> {
    a.checked_add(b).ok_or(StorageError::Inconsistent(
        "sales past the largest amount an i64 holds",
    ))
}

/// What a settlement is made of, read from one snapshot so that its parts agree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettlementSource {
    pub stores: Vec<StoreTotal>,
    pub card_fees: Vec<CardFeeTotal>,
    pub products: Vec<ProductSaleTotal>,
}

/// Reads what paid trades add up to, each call from one consistent snapshot; rows come
/// ordered by store, then product or card company.
#[async_trait]
pub trait SalesSource: Send + Sync + 'static {
    /// Units and amounts sold per product.
    async fn product_sales(
        &self,
        paid: PaidBetween,
        stores: &StoreSelection,
    ) -> StorageResult<Vec<ProductSaleTotal>>;

    /// Revenue, fees and trades per store (from the payments), card payments per store
    /// and company, and sales per product.
    async fn settlement(
        &self,
        paid: PaidBetween,
        stores: &StoreSelection,
    ) -> StorageResult<SettlementSource>;
}
