//! Rows as PostgreSQL returns them, turned into the shared stored forms.

use chrono::{DateTime, Utc};
use pos_trade_storage::{
    StorageResult, Trade,
    stored::{StoredBillRow, StoredTrade},
};

pub struct TradeRow {
    pub id: i64,
    pub store_id: i64,
    pub device_id: i64,
    pub amount: i64,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

impl TradeRow {
    pub fn stored(self) -> StoredTrade {
        StoredTrade {
            id: self.id,
            store_id: self.store_id,
            device_id: self.device_id,
            amount: self.amount,
            status: self.status,
            opened_at: self.opened_at,
            paid_at: self.paid_at,
        }
    }

    pub fn decode(self) -> StorageResult<Trade> {
        self.stored().decode()
    }
}

/// A trade joined to one line of one of its orders (order and line columns `None` for a
/// trade without orders).
pub struct BillRow {
    pub id: i64,
    pub store_id: i64,
    pub device_id: i64,
    pub amount: i64,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub order_id: Option<String>,
    pub order_amount: Option<i64>,
    pub order_created_at: Option<DateTime<Utc>>,
    pub product_id: Option<i64>,
    pub product_name: Option<String>,
    pub category: Option<String>,
    pub unit_price: Option<i64>,
    pub count: Option<i64>,
    pub line_amount: Option<i64>,
}

impl BillRow {
    pub fn stored(self) -> StoredBillRow {
        StoredBillRow {
            trade: StoredTrade {
                id: self.id,
                store_id: self.store_id,
                device_id: self.device_id,
                amount: self.amount,
                status: self.status,
                opened_at: self.opened_at,
                paid_at: self.paid_at,
            },
            order_id: self.order_id,
            order_amount: self.order_amount,
            order_created_at: self.order_created_at,
            product_id: self.product_id,
            product_name: self.product_name,
            category: self.category,
            unit_price: self.unit_price,
            count: self.count,
            line_amount: self.line_amount,
        }
    }
}
