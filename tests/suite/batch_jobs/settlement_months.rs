//! MONTH settlements rolled up from DAY settlements: on random bills over a settlement
//! month, the rollup (two missing days aggregated first) agrees with the paid trades —
//! `verify` passes, and revenue, fees and products add up to what was paid — and a DAY
//! settlement that no longer matches the trades is named by `verify`.

use pos_batch::{Job, Term, Window};
use pos_common::domain::{CardCompany, Category, StoreId};
use pos_settlement_storage::{
    Begun, Finished, NewRun, RunFilter, RunScope, RunStatus, SettlementWindow, StoreTotals,
};
use pos_trade_storage::PaymentMethod;
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::{Books, at, date};
use crate::support::Engine;

crate::on_both_engines!(
    a_settlement_month_rolls_up_to_what_the_trades_add_up_to,
    verifying_a_settlement_month_names_a_day_that_disagrees,
);

const STORES: [i64; 3] = [1, 2, 3];

/// The settlement month of stores settling on the 5th: [Nov 5, Dec 5).
fn month() -> Window {
    Window {
        start: date("2024-11-05"),
        end: date("2024-12-05"),
    }
}

fn days() -> Vec<Window> {
    let mut days = Vec::new();
    let mut day = month().start;
    while day < month().end {
        let next = day.succ_opt().expect("a day");
        days.push(Window {
            start: day,
            end: next,
        });
        day = next;
    }
    days
}

async fn run(
    books: &Books,
    term: Term,
    window: Window,
    verify: bool,
) -> Result<pos_batch::Report, pos_batch::RunError> {
    let stores: Vec<StoreId> = STORES.iter().map(|&s| StoreId::from_stored(s)).collect();
    books
        .aggregator
        .run(pos_batch::WindowRun {
            job: Job::Settlement,
            term,
            window,
            scope: RunScope::ALL,
            stores: &stores,
            verify,
            from_raw: false,
        })
        .await
}

/// Random bills on random days of the month (a few left open); what each store was
/// paid, in total.
async fn random_bills(books: &mut Books) -> [i64; 3] {
    let mut rng = StdRng::seed_from_u64(20241105);
    let categories = [Category::MainMenu, Category::SubMenu, Category::Drink];
    let days = days();
    let mut paid = [0; 3];
    for tablet in 1..=40i64 {
        let store = STORES[tablet as usize % 3];
        let day = days[rng.gen_range(0..days.len())].start;
        books.clock.set(at(&format!("{day}T03:00:00Z")));
        let mut amount = 0;
        for _ in 0..rng.gen_range(1..3) {
            let lines: Vec<(i64, Category, i64, i64)> = (0..rng.gen_range(1..4))
                .map(|i| {
                    let product = store * 100 + i;
                    let (price, count) = (100 * (1 + product % 7), rng.gen_range(1..5));
                    amount += price * count;
                    (product, categories[(product % 3) as usize], price, count)
                })
                .collect();
            books.order(store, tablet, &lines).await;
        }
        let method = match rng.gen_range(0..5usize) {
            0 => continue, // left open
            1 => PaymentMethod::Cash,
            n => PaymentMethod::Card(CardCompany::ALL[n - 2]),
        };
        books.clock.set(at(&format!("{day}T04:00:00Z")));
        books.pay(store, tablet, method).await;
        paid[tablet as usize % 3] += amount;
    }
    books.clock.set(at("2024-12-05T15:10:00Z"));
    paid
}

/// Every day of the month but two settled by the daily runs.
async fn daily_runs(books: &Books) {
    for (i, day) in days().into_iter().enumerate() {
        if i != 3 && i != 17 {
            run(books, Term::Day, day, false).await.expect("a day");
        }
    }
}

async fn a_settlement_month_rolls_up_to_what_the_trades_add_up_to(engine: Engine) {
    let mut books = Books::open(engine).await;
    let paid = random_bills(&mut books).await;
    daily_runs(&books).await;
    let month_run = run(&books, Term::Month, month(), true)
        .await
        .expect("rolled up and verified");
    assert!(month_run.rows_read > 30, "DAY rows read: {month_run:?}");
    let runs = books
        .settlements
        .runs(&RunFilter::latest(100))
        .await
        .expect("runs");
    assert_eq!(
        runs.len(),
        28 + 2 + 1,
        "the two missing days were settled first"
    );
    assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded));
    for (i, store) in STORES.into_iter().enumerate() {
        let detail = books
            .settlements
            .settlement_detail(StoreId::from_stored(store), Term::Month, month().start)
            .await
            .expect("read")
            .expect("settled");
        let s = detail.settlement;
        assert_eq!(s.window, month());
        assert_eq!(s.revenue, paid[i], "store {store}");
        assert_eq!(
            detail.products.iter().map(|p| p.sale_amount).sum::<i64>(),
            s.revenue
        );
        assert_eq!(detail.card_fees.iter().map(|f| f.fee).sum::<i64>(), s.fee);
    }
    books.finish().await;
}

async fn verifying_a_settlement_month_names_a_day_that_disagrees(engine: Engine) {
    let mut books = Books::open(engine).await;
    random_bills(&mut books).await;
    daily_runs(&books).await;
    run(&books, Term::Month, month(), true)
        .await
        .expect("agrees");
    // Store 2's settlement of one day, rewritten wrong (an old build, a hand edit).
    let day = days()[10];
    let begun = books
        .settlements
        .begin_run(&NewRun {
            job: Job::Settlement,
            term: Term::Day,
            window: day,
            scope: RunScope::ALL,
            started_at: at("2024-12-05T15:20:00Z"),
            lease_until: at("2024-12-05T15:25:00Z"),
        })
        .await
        .expect("begin");
    let Begun::Started(tamper) = begun else {
        panic!("the day was free: {begun:?}");
    };
    let before = books
        .settlements
        .day_settlements(&[StoreId::from_stored(2)], day.start, day.end)
        .await
        .expect("read");
    let (revenue, fee, trades) = before
        .totals
        .first()
        .map_or((0, 0, 0), |(_, t)| (t.revenue, t.fee, t.trade_count));
    let wrong = [StoreTotals {
        store_id: StoreId::from_stored(2),
        revenue: revenue + 1_000,
        fee,
        trade_count: trades + 1,
    }];
    books
        .settlements
        .replace_settlements(
            tamper,
            SettlementWindow {
                term: Term::Day,
                window: day,
                stores: &[StoreId::from_stored(2)],
                totals: &wrong,
                card_fees: &before.card_fees.iter().map(|(_, f)| *f).collect::<Vec<_>>(),
                products: &before
                    .products
                    .iter()
                    .map(|(_, p)| p.clone())
                    .collect::<Vec<_>>(),
            },
        )
        .await
        .expect("write");
    books
        .settlements
        .finish_run(
            tamper,
            &Finished::Succeeded {
                rows_read: 0,
                rows_written: 1,
                at: at("2024-12-05T15:21:00Z"),
            },
        )
        .await
        .expect("finish");
    let verified = run(&books, Term::Month, month(), true).await;
    let Err(pos_batch::RunError::Verify(differences)) = &verified else {
        panic!("expected the rollup to disagree, got {verified:?}");
    };
    assert!(
        differences.starts_with("store 2: rolled up revenue "),
        "{differences}"
    );
    assert!(!differences.contains("store 1"), "{differences}");
    assert!(!differences.contains("store 3"), "{differences}");
    books.finish().await;
}
