//! Rows as SQLite returns them (instants in UTC Unix milliseconds), turned into the
//! shared stored forms.

use pos_common::storage::from_millis;
use pos_trade_storage::{
    Payment, StorageResult, Trade,
    stored::{StoredBillRow, StoredPayment, StoredTrade},
};

pub struct TradeRow {
    pub id: i64,
    pub store_id: i64,
    pub device_id: i64,
    pub amount: i64,
    pub status: String,
    pub opened_at: i64,
    pub paid_at: Option<i64>,
}

impl TradeRow {
    fn stored(self) -> StorageResult<StoredTrade> {
        Ok(StoredTrade {
            id: self.id,
            store_id: self.store_id,
            device_id: self.device_id,
            amount: self.amount,
            status: self.status,
            opened_at: from_millis("trades.opened_at", self.opened_at)?,
            paid_at: self
                .paid_at
                .map(|at| from_millis("trades.paid_at", at))
                .transpose()?,
        })
    }

    pub fn decode(self) -> StorageResult<Trade> {
        self.stored()?.decode()
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
    pub opened_at: i64,
    pub paid_at: Option<i64>,
    pub order_id: Option<String>,
    pub order_amount: Option<i64>,
    pub order_created_at: Option<i64>,
    pub product_id: Option<i64>,
    pub product_name: Option<String>,
    pub category: Option<String>,
    pub unit_price: Option<i64>,
    pub count: Option<i64>,
    pub line_amount: Option<i64>,
}

impl BillRow {
    pub fn stored(self) -> StorageResult<StoredBillRow> {
        Ok(StoredBillRow {
            trade: TradeRow {
                id: self.id,
                store_id: self.store_id,
                device_id: self.device_id,
                amount: self.amount,
                status: self.status,
                opened_at: self.opened_at,
                paid_at: self.paid_at,
            }
            .stored()?,
            order_id: self.order_id,
            order_amount: self.order_amount,
            order_created_at: self
                .order_created_at
                .map(|at| from_millis("trade_orders.created_at", at))
                .transpose()?,
            product_id: self.product_id,
            product_name: self.product_name,
            category: self.category,
            unit_price: self.unit_price,
            count: self.count,
            line_amount: self.line_amount,
        })
    }
}

pub struct PaymentRow {
    pub id: i64,
    pub trade_id: i64,
    pub store_id: i64,
    pub device_id: i64,
    pub method: String,
    pub card_company: Option<String>,
    pub amount: i64,
    pub card_fee: i64,
    pub fingerprint: String,
    pub paid_at: i64,
}

impl PaymentRow {
    pub fn stored(self) -> StorageResult<StoredPayment> {
        Ok(StoredPayment {
            id: self.id,
            trade_id: self.trade_id,
            store_id: self.store_id,
            device_id: self.device_id,
            method: self.method,
            card_company: self.card_company,
            amount: self.amount,
            card_fee: self.card_fee,
            fingerprint: self.fingerprint,
            paid_at: from_millis("trade_payments.paid_at", self.paid_at)?,
        })
    }

    pub fn decode(self) -> StorageResult<Payment> {
        self.stored()?.decode()
    }
}
