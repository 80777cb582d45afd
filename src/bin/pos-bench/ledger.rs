//! What the system acknowledged during a run, as the tablets and owners heard it: every
//! order (its bill, amount and lines) and every payment. The audit holds the system's
//! stock and bills against it.

use std::collections::{HashMap, HashSet};

/// An order the system answered with success.
#[derive(Debug, Clone)]
pub struct AckedOrder {
    pub id: String,
    pub trade_id: i64,
    pub amount: i64,
    /// (product id, count) per line.
    pub lines: Vec<(i64, i64)>,
}

/// A payment the system answered with success.
#[derive(Debug, Clone)]
pub struct AckedPayment {
    pub id: i64,
    pub trade_id: i64,
    pub amount: i64,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub orders: Vec<AckedOrder>,
    pub payments: Vec<AckedPayment>,
}

impl Ledger {
    pub fn merge(&mut self, other: Ledger) {
        self.orders.extend(other.orders);
        self.payments.extend(other.payments);
    }

    /// Units of each product the acknowledged orders took.
    pub fn taken(&self) -> HashMap<i64, i64> {
        let mut taken = HashMap::new();
        for (product, count) in self.orders.iter().flat_map(|o| o.lines.iter()) {
            *taken.entry(*product).or_insert(0) += count;
        }
        taken
    }

    /// What the acknowledged orders put on each bill.
    pub fn by_trade(&self) -> HashMap<i64, i64> {
        let mut bills = HashMap::new();
        for order in &self.orders {
            *bills.entry(order.trade_id).or_insert(0) += order.amount;
        }
        bills
    }

    pub fn order_ids(&self) -> HashSet<&str> {
        self.orders.iter().map(|o| o.id.as_str()).collect()
    }

    pub fn ordered_amount(&self) -> i64 {
        self.orders.iter().map(|o| o.amount).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_by_product_and_by_bill() {
        let order = |id: &str, trade_id, lines: Vec<(i64, i64)>| AckedOrder {
            id: id.into(),
            trade_id,
            amount: lines.iter().map(|(_, c)| c * 100).sum(),
            lines,
        };
        let mut ledger = Ledger::default();
        ledger.orders.push(order("a", 1, vec![(7, 2), (8, 1)]));
        let mut other = Ledger::default();
        other.orders.push(order("b", 2, vec![(7, 3)]));
        ledger.merge(other);
        assert_eq!(ledger.taken(), HashMap::from([(7, 5), (8, 1)]));
        assert_eq!(ledger.by_trade(), HashMap::from([(1, 300), (2, 300)]));
        assert_eq!(ledger.ordered_amount(), 600);
        assert_eq!(ledger.order_ids().len(), 2);
    }
}
