//! Trade records to protobuf messages.

use pos_common::time::to_timestamp;
use pos_proto::v1::{self as pb, CardCompany as PbCompany, PaymentMethod as PbMethod};
use pos_trade_storage::{
    Bill, CardCompany, Order, OrderLine, Payment, PaymentMethod, Trade, TradeStatus,
};

fn line(line: OrderLine) -> pb::OrderLine {
    pb::OrderLine {
        product_id: line.product_id.get(),
        product_name: line.product_name,
        category: line.category.to_proto() as i32,
        unit_price: line.unit_price,
        count: line.count,
        amount: line.amount,
    }
}

pub fn order(order: Order) -> pb::Order {
    pb::Order {
        id: order.id.as_str().to_string(),
        trade_id: order.trade_id.get(),
        amount: order.amount,
        lines: order.lines.into_iter().map(line).collect(),
        created_at: Some(to_timestamp(order.created_at)),
    }
}

fn status(status: TradeStatus) -> pb::TradeStatus {
    match status {
        TradeStatus::Open => pb::TradeStatus::Open,
        TradeStatus::Paid => pb::TradeStatus::Paid,
    }
}

fn company(company: CardCompany) -> PbCompany {
    match company {
        CardCompany::K => PbCompany::K,
        CardCompany::H => PbCompany::H,
        CardCompany::S => PbCompany::S,
    }
}

pub fn payment(payment: Payment) -> pb::Payment {
    let (method, card_company) = match payment.method {
        PaymentMethod::Cash => (PbMethod::Cash, PbCompany::Unspecified),
        PaymentMethod::Card(card) => (PbMethod::Card, company(card)),
    };
    pb::Payment {
        id: payment.id,
        trade_id: payment.trade_id.get(),
        store_id: payment.store_id.get(),
        device_id: payment.device_id.get(),
        method: method as i32,
        card_company: card_company as i32,
        amount: payment.amount,
        card_fee: payment.card_fee,
        paid_at: Some(to_timestamp(payment.paid_at)),
    }
}

/// A bill without its orders (and its payment when one is given).
pub fn trade(trade: Trade, paid_with: Option<Payment>) -> pb::Trade {
    pb::Trade {
        id: trade.id.get(),
        store_id: trade.store_id.get(),
        device_id: trade.device_id.get(),
        amount: trade.amount,
        status: status(trade.status) as i32,
        opened_at: Some(to_timestamp(trade.opened_at)),
        paid_at: trade.paid_at.map(to_timestamp),
        orders: Vec::new(),
        payment: paid_with.map(payment),
    }
}

/// A bill with its orders, oldest first.
pub fn bill(bill: Bill, paid_with: Option<Payment>) -> pb::Trade {
    pb::Trade {
        orders: bill.orders.into_iter().map(order).collect(),
        ..trade(bill.trade, paid_with)
    }
}
