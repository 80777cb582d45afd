//! Summing DAY rows into a WEEK or MONTH. Sums compose over whole days, so a longer
//! window is the sum of its days: product sales per product (named as on the last day it
//! sold), settlements per store, card fees per store and company. Also what a run does
//! about days that were never aggregated, and the differences `verify` names between a
//! rollup and the same window computed from the paid trades.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::NaiveDate;
use pos_common::{
    aggregation::Window, domain::CardCompany, domain::StoreId, storage::StorageError,
};
use pos_settlement_storage::{CardFees, DaySettlements, ProductSales, StoreTotals};

/// What a window's settlement is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub totals: Vec<StoreTotals>,
    pub card_fees: Vec<CardFees>,
    pub products: Vec<ProductSales>,
}

impl Settled {
    pub fn rows(&self) -> usize {
        self.totals.len() + self.card_fees.len() + self.products.len()
    }
}

/// The days of `window` some of `stores` lack, each with the stores lacking it: a rollup
/// aggregates them first, each a DAY run of its own, so that the window is always the
/// sum of its DAY rows.
pub fn missing_days(
    window: Window,
    stores: &[StoreId],
    covered: impl IntoIterator<Item = (StoreId, NaiveDate)>,
) -> Vec<(Window, Vec<StoreId>)> {
    let covered: HashSet<(StoreId, NaiveDate)> = covered.into_iter().collect();
    let mut missing = Vec::new();
    let mut day = window.start;
    while day < window.end {
        let next = day.succ_opt().unwrap_or(window.end);
        let lacking: Vec<StoreId> = stores
            .iter()
            .copied()
            .filter(|store| !covered.contains(&(*store, day)))
            .collect();
        if !lacking.is_empty() {
            missing.push((
                Window {
                    start: day,
                    end: next,
                },
                lacking,
            ));
        }
        day = next;
    }
    missing
}

fn add(a: i64, b: i64) -> Result<i64, StorageError> {
    a.checked_add(b)
        .ok_or(StorageError::Inconsistent("sums past what an i64 holds"))
}

/// DAY product sales (ordered by store, product and day) summed per product, named as on
/// the last day it sold.
pub fn sum_products(
    days: Vec<(NaiveDate, ProductSales)>,
) -> Result<Vec<ProductSales>, StorageError> {
    let mut summed: Vec<ProductSales> = Vec::new();
    for (_, row) in days {
        match summed.last_mut() {
            Some(last) if last.store_id == row.store_id && last.product_id == row.product_id => {
                last.sale_count = add(last.sale_count, row.sale_count)?;
                last.sale_amount = add(last.sale_amount, row.sale_amount)?;
                last.product_name = row.product_name;
                last.category = row.category;
            }
            _ => summed.push(row),
        }
    }
    Ok(summed)
}

/// DAY settlements summed per store (totals), per store and company (card fees) and per
/// product.
pub fn sum_settlements(days: DaySettlements) -> Result<Settled, StorageError> {
    let mut totals: Vec<StoreTotals> = Vec::new();
    for (_, row) in days.totals {
        match totals.last_mut() {
            Some(last) if last.store_id == row.store_id => {
                last.revenue = add(last.revenue, row.revenue)?;
                last.fee = add(last.fee, row.fee)?;
                last.trade_count = add(last.trade_count, row.trade_count)?;
            }
            _ => totals.push(row),
        }
    }
    let mut card_fees: Vec<CardFees> = Vec::new();
    for (_, row) in days.card_fees {
        match card_fees.last_mut() {
            Some(last)
                if last.store_id == row.store_id && last.card_company == row.card_company =>
            {
                last.payment_count = add(last.payment_count, row.payment_count)?;
                last.amount = add(last.amount, row.amount)?;
                last.fee = add(last.fee, row.fee)?;
            }
            _ => card_fees.push(row),
        }
    }
    Ok(Settled {
        totals,
        card_fees,
        products: sum_products(days.products)?,
    })
}

/// Per key, the values two sides disagree on, as "KEY: rolled up A, from trades B".
fn disagreements<K: Ord + Clone, V: PartialEq>(
    rolled: &BTreeMap<K, V>,
    raw: &BTreeMap<K, V>,
    name: impl Fn(&K) -> String,
    show: impl Fn(&V) -> String,
) -> Vec<String> {
    let keys: BTreeSet<&K> = rolled.keys().chain(raw.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (rolled.get(k), raw.get(k));
            (a != b).then(|| {
                let show = |v: Option<&V>| v.map_or("none".to_string(), &show);
                format!(
                    "{}: rolled up {}, from trades {}",
                    name(k),
                    show(a),
                    show(b)
                )
            })
        })
        .collect()
}

type ProductKey = (StoreId, i64);

fn by_product(rows: &[ProductSales]) -> BTreeMap<ProductKey, (i64, i64)> {
    rows.iter()
        .map(|p| ((p.store_id, p.product_id), (p.sale_count, p.sale_amount)))
        .collect()
}

fn product_name(k: &ProductKey) -> String {
    format!("store {} product {}", k.0.get(), k.1)
}

fn sold(v: &(i64, i64)) -> String {
    format!("{} sold for {}", v.0, v.1)
}

/// What differs between rolled-up product sales and the same window from the trades.
pub fn product_differences(rolled: &[ProductSales], raw: &[ProductSales]) -> Vec<String> {
    disagreements(&by_product(rolled), &by_product(raw), product_name, sold)
}

/// What differs between a rolled-up settlement and the same window from the trades:
/// totals per store, card fees per store and company, sales per product.
pub fn settlement_differences(rolled: &Settled, raw: &Settled) -> Vec<String> {
    let totals = |s: &Settled| -> BTreeMap<StoreId, (i64, i64, i64)> {
        s.totals
            .iter()
            .map(|t| (t.store_id, (t.revenue, t.fee, t.trade_count)))
            .collect()
    };
    let fees = |s: &Settled| -> BTreeMap<(StoreId, &'static str), (i64, i64, i64)> {
        s.card_fees
            .iter()
            .map(|f| {
                (
                    (f.store_id, CardCompany::as_str(f.card_company)),
                    (f.payment_count, f.amount, f.fee),
                )
            })
            .collect()
    };
    let mut differences = disagreements(
        &totals(rolled),
        &totals(raw),
        |store| format!("store {}", store.get()),
        |(revenue, fee, trades)| format!("revenue {revenue}, fee {fee}, {trades} trades"),
    );
    differences.extend(disagreements(
        &fees(rolled),
        &fees(raw),
        |(store, company)| format!("store {} card {company}", store.get()),
        |(payments, amount, fee)| format!("{payments} payments of {amount}, fee {fee}"),
    ));
    differences.extend(product_differences(&rolled.products, &raw.products));
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, day).expect("a date")
    }

    #[test]
    fn the_days_some_store_lacks_are_named_with_the_stores() {
        let (a, b) = (StoreId::from_stored(1), StoreId::from_stored(2));
        let week = Window {
            start: date(3),
            end: date(10),
        };
        let every_day = (3..10).flat_map(|d| [(a, date(d)), (b, date(d))]);
        assert_eq!(missing_days(week, &[a, b], every_day.clone()), vec![]);
        let but_two: Vec<_> = every_day
            .clone()
            .filter(|&(s, d)| !(s == b && d == date(4)) && d != date(9))
            .collect();
        let missing: Vec<(NaiveDate, Vec<StoreId>)> = missing_days(week, &[a, b], but_two)
            .into_iter()
            .map(|(w, s)| (w.start, s))
            .collect();
        assert_eq!(missing, [(date(4), vec![b]), (date(9), vec![a, b])]);
        let from_the_sixth = every_day.filter(|&(_, d)| d > date(5));
        assert_eq!(missing_days(week, &[a, b], from_the_sixth).len(), 3);
    }
}
