//! The trade service's values — ids and keys parsed once (parse, don't validate), the
//! closed sets it stores as names, and the records storage hands back: bills (trades),
//! the orders on them with their lines as ordered, and payments.

use chrono::{DateTime, Utc};
pub use pos_common::domain::{CardCompany, Category, OrderId, TradeId};
use pos_common::domain::{DeviceId, Invalid, ProductId, StoreId, visible_ascii};

/// A client's key for one request, so a retry is answered instead of done twice:
/// 1-128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        visible_ascii(raw, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a bill still takes orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeStatus {
    Open,
    Paid,
}

impl TradeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Paid => "PAID",
        }
    }

    pub fn from_name(stored: &str) -> Option<Self> {
        [Self::Open, Self::Paid]
            .into_iter()
            .find(|s| s.as_str() == stored)
    }
}

/// How a bill is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMethod {
    Cash,
    Card(CardCompany),
}

impl PaymentMethod {
    /// The stored method name (`CASH` or `CARD`).
    pub fn method_name(self) -> &'static str {
        match self {
            Self::Cash => "CASH",
            Self::Card(_) => "CARD",
        }
    }

    /// The stored card company: only cards have one.
    pub fn company_name(self) -> Option<&'static str> {
        match self {
            Self::Cash => None,
            Self::Card(company) => Some(company.as_str()),
        }
    }

    /// The fee the payment's processor takes of `amount`.
    pub fn fee(self, amount: i64) -> i64 {
        match self {
            Self::Cash => 0,
            Self::Card(company) => crate::fee::card_fee(amount, company),
        }
    }
}

/// A line as the trade role ordered it: the product as it was at the moment of ordering
/// (name, category, price), so a later menu change does not rewrite the bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLine {
    pub product_id: ProductId,
    pub product_name: String,
    pub category: Category,
    pub unit_price: i64,
    pub count: i64,
}

/// A line of a committed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub product_name: String,
    pub category: Category,
    pub unit_price: i64,
    pub count: i64,
    /// `unit_price × count`.
    pub amount: i64,
}

/// An order to commit: one or more lines of distinct products, prices at least 0 and
/// counts at least 1. Its total may still overflow: committing it then answers
/// [`Committed::Overflow`].
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order_id: OrderId,
    pub store_id: StoreId,
    pub device_id: DeviceId,
    pub idempotency_key: IdempotencyKey,
    /// What the request asked for, condensed: a retry carries the same, a reuse of the
    /// key for another request does not.
    pub fingerprint: String,
    lines: Vec<OrderLine>,
    total: Option<i64>,
}

impl NewOrder {
    pub fn new(
        order_id: OrderId,
        store_id: StoreId,
        device_id: DeviceId,
        idempotency_key: IdempotencyKey,
        fingerprint: String,
        mut lines: Vec<SnapshotLine>,
    ) -> Result<Self, Invalid> {
        if lines.is_empty() {
            return Err(Invalid::new("an order needs at least one line"));
        }
        lines.sort_by_key(|line| line.product_id);
        if lines.windows(2).any(|w| w[0].product_id == w[1].product_id) {
            return Err(Invalid::new("an order names each product once"));
        }
        if lines.iter().any(|l| l.unit_price < 0 || l.count < 1) {
            return Err(Invalid::new("prices are at least 0 and counts at least 1"));
        }
        let lines: Vec<(SnapshotLine, Option<i64>)> = lines
            .into_iter()
            .map(|line| {
                let amount = line.unit_price.checked_mul(line.count);
                (line, amount)
            })
            .collect();
        let total = lines
            .iter()
            .try_fold(0i64, |sum, (_, amount)| sum.checked_add((*amount)?));
        let lines = lines
            .into_iter()
            .map(|(line, amount)| OrderLine {
                product_id: line.product_id,
                product_name: line.product_name,
                category: line.category,
                unit_price: line.unit_price,
                count: line.count,
                // Only read when the total exists, and then every amount does.
                amount: amount.unwrap_or(i64::MAX),
            })
            .collect();
        Ok(Self {
            order_id,
            store_id,
            device_id,
            idempotency_key,
            fingerprint,
            lines,
            total,
        })
    }

    /// The lines in product id order, each with its amount.
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }

    /// The order's total, `None` when it does not fit in an i64.
    pub fn total(&self) -> Option<i64> {
        self.total
    }
}

/// A committed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub trade_id: TradeId,
    pub store_id: StoreId,
    pub device_id: DeviceId,
    pub amount: i64,
    pub created_at: DateTime<Utc>,
    /// In product id order.
    pub lines: Vec<OrderLine>,
}

/// A table's bill: opened by the device's first order, paid once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub id: TradeId,
    pub store_id: StoreId,
    pub device_id: DeviceId,
    /// The sum of its orders.
    pub amount: i64,
    pub status: TradeStatus,
    pub opened_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// A bill with its orders (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    pub trade: Trade,
    pub orders: Vec<Order>,
}

/// A payment to make: the device's open bill, whole.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub store_id: StoreId,
    pub device_id: DeviceId,
    pub method: PaymentMethod,
    /// The amount the payer saw; when the bill no longer comes to it, nothing is paid.
    pub expected_amount: Option<i64>,
    pub idempotency_key: IdempotencyKey,
    pub fingerprint: String,
}

/// A paid bill's payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: i64,
    pub trade_id: TradeId,
    pub store_id: StoreId,
    pub device_id: DeviceId,
    pub method: PaymentMethod,
    /// The bill's amount.
    pub amount: i64,
    pub card_fee: i64,
    pub paid_at: DateTime<Utc>,
}

/// The most order lines one bill holds. A bill is read and sent whole (to the tablet,
/// the counter screen and every watcher), so it must stay well inside one gRPC message
/// (4 MiB) even with the longest product names; a table that orders more pays first.
pub const MAX_BILL_LINES: i64 = 2_000;

/// What committing an order came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// On the device's open bill (opened for it when there was none).
    Placed { order: Order, trade: Trade },
    /// Committed before: the same key and request, or the same order id from the same
    /// device and request. The bill is as it is now.
    Existing { order: Order, trade: Trade },
    /// The key (or the order id) was used for another request; nothing changed.
    KeyReused,
    /// The bill would pass the largest amount kept; nothing changed.
    Overflow,
    /// The bill would pass [`MAX_BILL_LINES`]; nothing changed.
    BillFull,
    /// The order id was given up (its stock went back); nothing changed.
    Abandoned,
}

/// What paying came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paid {
    Paid {
        payment: Payment,
        trade: Trade,
    },
    /// Paid before with the same key and request.
    Existing {
        payment: Payment,
        trade: Trade,
    },
    /// The key was used for another request; nothing changed.
    KeyReused,
    /// The device has no open bill.
    NoOpenTrade,
    /// The bill no longer comes to the expected amount; nothing changed.
    AmountChanged {
        actual: i64,
    },
}

/// Where a page of payments starts: after this one, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentCursor {
    pub paid_at: DateTime<Utc>,
    pub id: i64,
}

impl From<&Payment> for PaymentCursor {
    fn from(payment: &Payment) -> Self {
        Self {
            paid_at: payment.paid_at,
            id: payment.id,
        }
    }
}

/// One page of payments, newest first (keyset on paid_at, then id, both descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentPage {
    /// `None` for the first page.
    pub after: Option<PaymentCursor>,
    pub limit: i64,
}

impl PaymentPage {
    pub fn first(limit: i64) -> Self {
        Self { after: None, limit }
    }
}
