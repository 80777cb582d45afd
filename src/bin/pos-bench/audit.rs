//! The check after a run, through the public API as each store's owner sees it (the
//! same on both targets, and no reliance on table layouts): the system must agree with
//! what it acknowledged.
//!
//! - **Stock**: each product's stock is its initial stock less the units of the
//!   acknowledged orders (`ListProducts`): nothing lost, nothing oversold, no
//!   reservation left hanging.
//! - **Open bills** (`ListOpenTrades`, then `GetOpenTrade` for each one's orders): each
//!   one's amount is the sum of the acknowledged orders on it, and it holds every one of
//!   them and no other.
//! - **Paid bills** (`ListPayments`; a payment pays a whole bill): each payment is one
//!   the owner was answered, for the sum of the acknowledged orders on its bill.
//! - **Totals**: every bill an acknowledged order went on is open or paid, and the
//!   acknowledged orders add up to the open bills plus the payments.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, bail};
use pos_proto::v1::{
    self as pb, store_service_client::StoreServiceClient, trade_service_client::TradeServiceClient,
};
use tonic::transport::Channel;

use crate::{
    ledger::Ledger,
    setup::{Store, as_owner},
};

/// Page size of the lists read.
const PAGE: i32 = 500;

/// What the audit found.
#[derive(Debug, Default)]
pub struct Audit {
    pub stock_ok: bool,
    pub bills_ok: bool,
    pub payments_ok: bool,
    pub totals_ok: bool,
    pub open_bills: usize,
    pub open_amount: i64,
    pub paid_amount: i64,
    pub payments: usize,
    /// The first few disagreements, to say what went wrong.
    pub problems: Vec<String>,
}

impl Audit {
    pub fn consistent(&self) -> bool {
        self.stock_ok && self.bills_ok && self.payments_ok && self.totals_ok
    }

    fn problem(&mut self, what: String) {
        if self.problems.len() < 10 {
            self.problems.push(what);
        }
    }
}

/// What the system holds for one store.
struct Books {
    stock: HashMap<i64, i64>,
    open: Vec<pb::Trade>,
    payments: Vec<pb::Payment>,
}

async fn books(channel: &Channel, store: &Store) -> anyhow::Result<Books> {
    let mut products = as_owner(channel, store, StoreServiceClient::new);
    let mut stock = HashMap::new();
    let mut token = String::new();
    loop {
        let page = products
            .list_products(pb::ListProductsRequest {
                include_deleted: true,
                page: Some(pb::PageRequest {
                    page_size: PAGE,
                    page_token: token,
                }),
                ..Default::default()
            })
            .await
            .context("ListProducts")?
            .into_inner();
        stock.extend(page.products.iter().map(|p| (p.id, p.stock)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut trades = as_owner(channel, store, TradeServiceClient::new);
    let heads = trades
        .list_open_trades(pb::ListOpenTradesRequest {})
        .await
        .context("ListOpenTrades")?
        .into_inner()
        .trades;
    // The list gives the bills' heads; each bill's orders come with GetOpenTrade.
    let mut open = Vec::with_capacity(heads.len());
    for head in heads {
        let bill = trades
            .get_open_trade(pb::GetOpenTradeRequest {
                device_id: head.device_id,
            })
            .await
            .context("GetOpenTrade")?
            .into_inner()
            .trade
            .context("GetOpenTrade answers the bill")?;
        if bill.id != head.id || bill.amount != head.amount {
            bail!(
                "bill {} of device {} changed while the books were read",
                head.id,
                head.device_id
            );
        }
        open.push(bill);
    }
    let mut payments = Vec::new();
    let mut token = String::new();
    loop {
        // The default range is the last 31 days: the whole run.
        let page = trades
            .list_payments(pb::ListPaymentsRequest {
                page: Some(pb::PageRequest {
                    page_size: PAGE,
                    page_token: token,
                }),
                ..Default::default()
            })
            .await
            .context("ListPayments")?
            .into_inner();
        payments.extend(page.payments);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    Ok(Books {
        stock,
        open,
        payments,
    })
}

/// Reads every store's books through the edge and holds them against `ledger`.
pub async fn audit(channel: &Channel, stores: &[Store], ledger: &Ledger) -> anyhow::Result<Audit> {
    let mut audit = Audit {
        stock_ok: true,
        bills_ok: true,
        payments_ok: true,
        totals_ok: true,
        ..Audit::default()
    };
    let taken = ledger.taken();
    let by_trade = ledger.by_trade();
    let acked_orders = ledger.order_ids();
    let mut orders_by_trade: HashMap<i64, usize> = HashMap::new();
    for order in &ledger.orders {
        *orders_by_trade.entry(order.trade_id).or_default() += 1;
    }
    let acked_payments: HashMap<i64, (i64, i64)> = ledger
        .payments
        .iter()
        .map(|p| (p.id, (p.trade_id, p.amount)))
        .collect();
    let mut seen_trades = HashSet::new();
    let mut seen_payments = 0usize;

    for store in stores {
        let books = books(channel, store).await?;
        for product in &store.products {
            let expected = product.base_stock - taken.get(&product.id).copied().unwrap_or(0);
            let actual = books.stock.get(&product.id).copied();
            if actual != Some(expected) {
                audit.stock_ok = false;
                audit.problem(format!(
                    "product {}: stock {actual:?}, expected {expected}",
                    product.id
                ));
            }
        }
        for bill in &books.open {
            seen_trades.insert(bill.id);
            audit.open_bills += 1;
            audit.open_amount += bill.amount;
            let expected = by_trade.get(&bill.id).copied().unwrap_or(0);
            if bill.amount != expected {
                audit.bills_ok = false;
                audit.problem(format!(
                    "open bill {}: amount {}, acknowledged orders {expected}",
                    bill.id, bill.amount
                ));
            }
            if let Some(stray) = bill
                .orders
                .iter()
                .find(|o| !acked_orders.contains(o.id.as_str()))
            {
                audit.bills_ok = false;
                audit.problem(format!(
                    "open bill {} holds order {}, never acknowledged",
                    bill.id, stray.id
                ));
            }
        }
        for payment in &books.payments {
            seen_trades.insert(payment.trade_id);
            audit.payments += 1;
            audit.paid_amount += payment.amount;
            let expected = by_trade.get(&payment.trade_id).copied().unwrap_or(0);
            let acked = acked_payments.get(&payment.id).copied();
            if acked.is_some() {
                seen_payments += 1;
            }
            if payment.amount != expected || acked != Some((payment.trade_id, payment.amount)) {
                audit.payments_ok = false;
                audit.problem(format!(
                    "payment {} of bill {}: {}, acknowledged (bill, amount) {acked:?}, orders {expected}",
                    payment.id, payment.trade_id, payment.amount
                ));
            }
        }
    }
    if seen_payments != ledger.payments.len() {
        audit.payments_ok = false;
        audit.problem(format!(
            "{} payments acknowledged, {seen_payments} of them listed",
            ledger.payments.len()
        ));
    }
    if let Some(lost) = by_trade.keys().find(|t| !seen_trades.contains(t)) {
        audit.totals_ok = false;
        audit.problem(format!("bill {lost} is neither open nor paid"));
    }
    let ordered = ledger.ordered_amount();
    if ordered != audit.open_amount + audit.paid_amount {
        audit.totals_ok = false;
        audit.problem(format!(
            "orders came to {ordered}; open bills {} + payments {}",
            audit.open_amount, audit.paid_amount
        ));
    }
    Ok(audit)
}
