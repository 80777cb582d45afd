//! The contract of `SettlementStorage::day_settlements`, on both engines: a range of DAY settlements reads
//! the totals, card fees and products of the given stores on the days `[from, to)`, every
//! settled (store, day) with its totals — at zero when it sold nothing — ordered as a
//! rollup sums them, and nothing of other stores, days or terms.

use chrono::NaiveDate;
use pos_common::domain::{CardCompany, Category, StoreId};
use pos_settlement_storage::{CardFees, ProductSales, SettlementWindow, StoreTotals, Term, Window};

use super::{Fixture, date, sold, stores};
use crate::support::Engine;

crate::on_both_engines!(a_range_of_day_settlements_reads_what_each_day_settled);

fn totals(store: i64, revenue: i64, fee: i64, trade_count: i64) -> StoreTotals {
    StoreTotals {
        store_id: StoreId::from_stored(store),
        revenue,
        fee,
        trade_count,
    }
}

fn fees(store: i64, company: CardCompany, amount: i64, fee: i64) -> CardFees {
    CardFees {
        store_id: StoreId::from_stored(store),
        card_company: company,
        payment_count: 1,
        amount,
        fee,
    }
}

/// Writes one window's settlements of `covered`.
async fn settle(
    f: &Fixture,
    term: Term,
    window: Window,
    covered: &[i64],
    rows: (&[StoreTotals], &[CardFees], &[ProductSales]),
) {
    f.storage
        .replace_settlements(
            f.lease().await,
            SettlementWindow {
                term,
                window,
                stores: &stores(covered),
                totals: rows.0,
                card_fees: rows.1,
                products: rows.2,
            },
        )
        .await
        .expect("write");
}

fn day(text: &str) -> Window {
    let start = date(text);
    Window {
        start,
        end: start.succ_opt().expect("a next day"),
    }
}

async fn a_range_of_day_settlements_reads_what_each_day_settled(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (k, h) = (CardCompany::K, CardCompany::H);
    let cola = |store, count| sold(store, 4, "Cola", Category::Drink, count, 1_000 * count);
    // Dec 1: store 1 sold, store 2 covered at zero, store 3 sold (not asked for).
    settle(
        &f,
        Term::Day,
        day("2024-12-01"),
        &[1, 2, 3],
        (
            &[totals(1, 3_000, 12, 2), totals(3, 1_000, 4, 1)],
            &[
                fees(1, k, 2_000, 8),
                fees(1, h, 1_000, 6),
                fees(3, k, 1_000, 4),
            ],
            &[cola(1, 3), cola(3, 1)],
        ),
    )
    .await;
    // Dec 2: both sold; product 4 renamed.
    let renamed = sold(1, 4, "Coke", Category::Drink, 1, 1_000);
    settle(
        &f,
        Term::Day,
        day("2024-12-02"),
        &[1, 2],
        (
            &[totals(1, 1_000, 4, 1), totals(2, 2_000, 0, 1)],
            &[fees(1, k, 1_000, 4)],
            &[renamed.clone(), cola(2, 2)],
        ),
    )
    .await;
    // Dec 3 is past the range; a MONTH window is not a DAY.
    settle(
        &f,
        Term::Day,
        day("2024-12-03"),
        &[1],
        (&[totals(1, 1_000, 4, 1)], &[], &[cola(1, 1)]),
    )
    .await;
    let month = Window {
        start: date("2024-12-01"),
        end: date("2025-01-01"),
    };
    settle(&f, Term::Month, month, &[1], (&[], &[], &[])).await;

    let days = f
        .storage
        .day_settlements(&stores(&[2, 1]), date("2024-12-01"), date("2024-12-03"))
        .await
        .expect("read");
    let on = |text: &str| -> NaiveDate { date(text) };
    assert_eq!(
        days.totals,
        [
            (on("2024-12-01"), totals(1, 3_000, 12, 2)),
            (on("2024-12-02"), totals(1, 1_000, 4, 1)),
            (on("2024-12-01"), totals(2, 0, 0, 0)),
            (on("2024-12-02"), totals(2, 2_000, 0, 1)),
        ]
    );
    let covered: Vec<(i64, NaiveDate)> = days.covered().map(|(s, d)| (s.get(), d)).collect();
    assert_eq!(
        covered,
        [
            (1, on("2024-12-01")),
            (1, on("2024-12-02")),
            (2, on("2024-12-01")),
            (2, on("2024-12-02")),
        ]
    );
    // A store's fees with one company are together, by day (companies in either order).
    let mut card_fees = days.card_fees.clone();
    card_fees.sort_by_key(|(d, f)| (f.store_id, f.card_company.as_str(), *d));
    assert_eq!(
        card_fees,
        [
            (on("2024-12-01"), fees(1, h, 1_000, 6)),
            (on("2024-12-01"), fees(1, k, 2_000, 8)),
            (on("2024-12-02"), fees(1, k, 1_000, 4)),
        ]
    );
    let companies: Vec<&str> = days
        .card_fees
        .iter()
        .map(|(_, f)| f.card_company.as_str())
        .collect();
    assert!(
        companies == ["K", "K", "H"] || companies == ["H", "K", "K"],
        "{companies:?}"
    );
    assert_eq!(
        days.products,
        [
            (on("2024-12-01"), cola(1, 3)),
            (on("2024-12-02"), renamed),
            (on("2024-12-02"), cola(2, 2)),
        ]
    );
    let none = f
        .storage
        .day_settlements(&[], date("2024-12-01"), date("2024-12-03"))
        .await
        .expect("read");
    assert_eq!(none, Default::default(), "no stores, no rows");
    f.finish().await;
}
