//! What the engine implementations share: turning what a database stored into the
//! domain — a value this build does not know is an error naming its column, never a
//! default — and the verdicts a commit or a payment reaches on what it found.

use chrono::{DateTime, Utc};
use pos_common::{
    domain::{DeviceId, ProductId, StoreId},
    storage::StorageError,
};

use crate::{
    Bill, CardCompany, Category, Committed, MAX_BILL_LINES, NewOrder, NewPayment, Order, OrderId,
    OrderLine, Paid, Payment, PaymentMethod, StorageResult, Trade, TradeId, TradeStatus,
};

fn unknown(column: &'static str, value: impl std::fmt::Display) -> StorageError {
    StorageError::unknown(column, value)
}

/// A trade row, its instants already decoded by the engine.
pub struct StoredTrade {
    pub id: i64,
    pub store_id: i64,
    pub device_id: i64,
    pub amount: i64,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

impl StoredTrade {
    pub fn decode(self) -> StorageResult<Trade> {
        Ok(Trade {
            id: TradeId::from_stored(self.id),
            store_id: StoreId::from_stored(self.store_id),
            device_id: DeviceId::from_stored(self.device_id),
            amount: self.amount,
            status: TradeStatus::from_name(&self.status)
                .ok_or_else(|| unknown("trades.status", &self.status))?,
            opened_at: self.opened_at,
            paid_at: self.paid_at,
        })
    }
}

/// One row of a bill read whole: a trade joined to its orders and their lines. The
/// order and line columns are all `None` on the one row of a bill without orders.
pub struct StoredBillRow {
    pub trade: StoredTrade,
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

/// Bills from their rows, which come grouped by trade, then by order, in the order the
/// bills and orders are to be listed.
pub fn bills(rows: impl IntoIterator<Item = StoredBillRow>) -> StorageResult<Vec<Bill>> {
    let mut bills: Vec<Bill> = Vec::new();
    for row in rows {
        let trade_id = TradeId::from_stored(row.trade.id);
        if bills.last().is_none_or(|bill| bill.trade.id != trade_id) {
            bills.push(Bill {
                trade: row.trade.decode()?,
                orders: Vec::new(),
            });
        }
        let Some(bill) = bills.last_mut() else {
            continue;
        };
        let (Some(order_id), Some(order_amount), Some(created_at)) =
            (row.order_id, row.order_amount, row.order_created_at)
        else {
            continue;
        };
        let order_id = OrderId::from_stored(order_id);
        if bill.orders.last().is_none_or(|order| order.id != order_id) {
            bill.orders.push(Order {
                id: order_id,
                trade_id,
                store_id: bill.trade.store_id,
                device_id: bill.trade.device_id,
                amount: order_amount,
                created_at,
                lines: Vec::new(),
            });
        }
        let (
            Some(order),
            Some(product_id),
            Some(product_name),
            Some(category),
            Some(unit_price),
            Some(count),
            Some(amount),
        ) = (
            bill.orders.last_mut(),
            row.product_id,
            row.product_name,
            row.category,
            row.unit_price,
            row.count,
            row.line_amount,
        )
        else {
            return Err(StorageError::Inconsistent(
                "an order has a line without values",
            ));
        };
        order.lines.push(OrderLine {
            product_id: ProductId::from_stored(product_id),
            product_name,
            category: Category::from_name(&category)
                .ok_or_else(|| unknown("trade_order_lines.category", &category))?,
            unit_price,
            count,
            amount,
        });
    }
    Ok(bills)
}

/// The one order of rows read for one order (its bill joined in), with its bill's head.
pub fn order_with_trade(
    rows: impl IntoIterator<Item = StoredBillRow>,
) -> StorageResult<Option<(Order, Trade)>> {
    let Some(bill) = bills(rows)?.into_iter().next() else {
        return Ok(None);
    };
    let Some(order) = bill.orders.into_iter().next() else {
        return Err(StorageError::Inconsistent(
            "an order read without its lines",
        ));
    };
    Ok(Some((order, bill.trade)))
}

/// A payment row, its instant already decoded by the engine.
pub struct StoredPayment {
    pub id: i64,
    pub trade_id: i64,
    pub store_id: i64,
    pub device_id: i64,
    pub method: String,
    pub card_company: Option<String>,
    pub amount: i64,
    pub card_fee: i64,
    pub fingerprint: String,
    pub paid_at: DateTime<Utc>,
}

impl StoredPayment {
    pub fn decode(self) -> StorageResult<Payment> {
        let method = match (self.method.as_str(), self.card_company.as_deref()) {
            ("CASH", None) => PaymentMethod::Cash,
            ("CARD", Some(company)) => PaymentMethod::Card(
                CardCompany::from_name(company)
                    .ok_or_else(|| unknown("trade_payments.card_company", company))?,
            ),
            (method, _) => return Err(unknown("trade_payments.method", method)),
        };
        Ok(Payment {
            id: self.id,
            trade_id: TradeId::from_stored(self.trade_id),
            store_id: StoreId::from_stored(self.store_id),
            device_id: DeviceId::from_stored(self.device_id),
            method,
            amount: self.amount,
            card_fee: self.card_fee,
            paid_at: self.paid_at,
        })
    }
}

/// Whether an order found under the new order's key or id is this same request again
/// (a retry to answer with it) rather than another one reusing the key (refused).
pub fn is_retry(order: &NewOrder, earlier_device_id: i64, earlier_fingerprint: &str) -> bool {
    earlier_device_id == order.device_id.get() && earlier_fingerprint == order.fingerprint
}

/// Why the device's open bill cannot take `order` (of `total`), if it cannot: its total
/// would pass the largest amount kept, or its lines [`MAX_BILL_LINES`]. A refusal changes
/// nothing; both engines ask this under the bill's lock.
pub fn open_bill_refuses(
    open_amount: i64,
    open_lines: i64,
    order: &NewOrder,
    total: i64,
) -> Option<Committed> {
    if open_amount.checked_add(total).is_none() {
        return Some(Committed::Overflow);
    }
    if open_lines + order.lines().len() as i64 > MAX_BILL_LINES {
        return Some(Committed::BillFull);
    }
    None
}

/// The answer to a payment whose key was used before in its store.
pub fn earlier_payment(
    payment: &NewPayment,
    earlier: StoredPayment,
    trade: Trade,
) -> StorageResult<Paid> {
    if earlier.fingerprint != payment.fingerprint {
        return Ok(Paid::KeyReused);
    }
    Ok(Paid::Existing {
        payment: earlier.decode()?,
        trade,
    })
}
