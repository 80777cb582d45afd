//! The contract of `SettlementStorage`: the same cases against the PostgreSQL and the
//! SQLite implementation, straight through the trait. A run replaces its window whole
//! for the stores it covers (never duplicating, never touching other stores, and all or
//! nothing); a covered store that sold nothing reads as zero, an uncovered one as not
//! aggregated; top products rank by count or amount with ties by name; a settlement's
//! detail adds up to it.

use std::sync::Arc;

use chrono::TimeDelta;
use pos_common::{
    domain::{CardCompany, Category, StoreId},
    storage::Database,
};
use pos_settlement_storage::{
    Begun, CardFees, Job, NewRun, ProductSales, ProductSalesWindow, Ranking, Replaced, RunId,
    RunScope, Settlement, SettlementStorage, SettlementWindow, StoreTotals, Term, Window,
};

use crate::support::{Engine, TestDb, at, date};

crate::on_both_engines!(
    a_run_replaces_its_window_for_the_stores_it_covers,
    top_products_rank_by_count_or_amount_with_ties_by_name,
    a_failed_run_leaves_the_previous_rows,
    settlements_are_replaced_whole_and_their_detail_adds_up,
);

mod days;
mod runs;

pub(crate) struct Fixture {
    test_db: TestDb,
    database: Database,
    pub(crate) storage: Arc<dyn SettlementStorage>,
    leases: std::sync::atomic::AtomicI64,
}

impl Fixture {
    pub(crate) async fn new(engine: Engine) -> Self {
        let (test_db, database) = TestDb::create(engine).await;
        database
            .migrate(&pos_settlement::MIGRATIONS)
            .await
            .expect("migrate");
        let storage = pos_settlement::open_storage(&database);
        Self {
            test_db,
            database,
            storage,
            leases: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// A run holding a lease of its own (a scope no other run of the test uses), for a
    /// write: writes happen only under a lease.
    pub(crate) async fn lease(&self) -> RunId {
        let n = self
            .leases
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let scope = RunScope {
            shard_index: 0,
            shard_count: 1,
            store: Some(StoreId::from_stored(1_000_000 + n)),
        };
        let started_at = at("2024-12-02T00:00:00Z");
        let begun = self
            .storage
            .begin_run(&NewRun {
                job: Job::ProductSales,
                term: Term::Day,
                window: december_first(),
                scope,
                started_at,
                lease_until: started_at + TimeDelta::hours(1),
            })
            .await
            .expect("begin");
        started(begun)
    }

    async fn top(&self, store: i64, ranking: Ranking) -> Option<Vec<(i64, i64, i64)>> {
        self.storage
            .top_products(
                StoreId::from_stored(store),
                Term::Day,
                date("2024-12-01"),
                None,
                ranking,
                100,
            )
            .await
            .expect("read")
            .map(|rows| {
                rows.iter()
                    .map(|r| (r.product_id, r.sale_count, r.sale_amount))
                    .collect()
            })
    }

    pub(crate) async fn finish(self) {
        self.database.close().await;
        self.test_db.drop_database().await;
    }
}

fn december_first() -> Window {
    Window {
        start: date("2024-12-01"),
        end: date("2024-12-02"),
    }
}

pub(crate) fn stores(ids: &[i64]) -> Vec<StoreId> {
    ids.iter().map(|&id| StoreId::from_stored(id)).collect()
}

pub(crate) fn sold(
    store: i64,
    product: i64,
    name: &str,
    category: Category,
    count: i64,
    amount: i64,
) -> ProductSales {
    ProductSales {
        store_id: StoreId::from_stored(store),
        product_id: product,
        product_name: name.to_string(),
        category,
        sale_count: count,
        sale_amount: amount,
    }
}

async fn write_sales(f: &Fixture, covered: &[i64], sales: &[ProductSales]) -> Replaced {
    f.storage
        .replace_product_sales(
            f.lease().await,
            ProductSalesWindow {
                term: Term::Day,
                window: december_first(),
                stores: &stores(covered),
                sales,
            },
        )
        .await
        .expect("write")
}

async fn a_run_replaces_its_window_for_the_stores_it_covers(engine: Engine) {
    let f = Fixture::new(engine).await;
    let first = [
        sold(1, 10, "Bibimbap", Category::MainMenu, 3, 30_000),
        sold(3, 30, "Cola", Category::Drink, 1, 300),
    ];
    assert_eq!(
        write_sales(&f, &[1, 2, 3], &first).await,
        Replaced::Written(2)
    );
    assert_eq!(f.top(1, Ranking::Count).await, Some(vec![(10, 3, 30_000)]));
    assert_eq!(
        f.top(2, Ranking::Count).await,
        Some(vec![]),
        "covered, sold nothing"
    );
    assert_eq!(f.top(4, Ranking::Count).await, None, "not aggregated");

    // A re-run for stores 1 and 2 replaces their rows, leaves store 3's.
    let again = [
        sold(1, 11, "Mandu", Category::SubMenu, 2, 12_000),
        sold(2, 20, "Tea", Category::Drink, 5, 5_000),
    ];
    assert_eq!(write_sales(&f, &[1, 2], &again).await, Replaced::Written(2));
    assert_eq!(f.top(1, Ranking::Count).await, Some(vec![(11, 2, 12_000)]));
    assert_eq!(f.top(2, Ranking::Count).await, Some(vec![(20, 5, 5_000)]));
    assert_eq!(f.top(3, Ranking::Count).await, Some(vec![(30, 1, 300)]));
    // The same run again: the same rows, not twice as many.
    write_sales(&f, &[1, 2], &again).await;
    assert_eq!(f.top(1, Ranking::Count).await, Some(vec![(11, 2, 12_000)]));
    f.finish().await;
}

async fn top_products_rank_by_count_or_amount_with_ties_by_name(engine: Engine) {
    let f = Fixture::new(engine).await;
    let sales = [
        sold(1, 1, "Kimbap", Category::MainMenu, 5, 15_000),
        sold(1, 2, "Bibimbap", Category::MainMenu, 5, 40_000),
        sold(1, 3, "Cola", Category::Drink, 9, 2_700),
        sold(1, 4, "Amazake", Category::Drink, 9, 2_700),
    ];
    write_sales(&f, &[1], &sales).await;
    assert_eq!(
        f.top(1, Ranking::Count).await,
        Some(vec![
            (4, 9, 2_700),
            (3, 9, 2_700),
            (2, 5, 40_000),
            (1, 5, 15_000)
        ])
    );
    assert_eq!(
        f.top(1, Ranking::Amount).await,
        Some(vec![
            (2, 5, 40_000),
            (1, 5, 15_000),
            (4, 9, 2_700),
            (3, 9, 2_700)
        ])
    );
    let drinks = f
        .storage
        .top_products(
            StoreId::from_stored(1),
            Term::Day,
            date("2024-12-01"),
            Some(Category::Drink),
            Ranking::Amount,
            1,
        )
        .await
        .expect("read")
        .expect("aggregated");
    assert_eq!(drinks, [sold(1, 4, "Amazake", Category::Drink, 9, 2_700)]);
    f.finish().await;
}

async fn a_failed_run_leaves_the_previous_rows(engine: Engine) {
    let f = Fixture::new(engine).await;
    write_sales(
        &f,
        &[1],
        &[sold(1, 1, "Kimbap", Category::MainMenu, 1, 3_000)],
    )
    .await;
    write_sales(&f, &[9], &[sold(9, 5, "Before", Category::Drink, 2, 20)]).await;
    // A row of a store the run does not cover fails the whole run.
    let refused = f
        .storage
        .replace_product_sales(
            f.lease().await,
            ProductSalesWindow {
                term: Term::Day,
                window: december_first(),
                stores: &stores(&[1]),
                sales: &[
                    sold(1, 2, "Mandu", Category::SubMenu, 1, 6_000),
                    sold(9, 3, "Stray", Category::Drink, 1, 1),
                ],
            },
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(f.top(1, Ranking::Count).await, Some(vec![(1, 1, 3_000)]));
    assert_eq!(
        f.top(9, Ranking::Count).await,
        Some(vec![(5, 2, 20)]),
        "store 9's window, covered by an earlier run, is untouched"
    );
    // Likewise a settlement of a store the run does not cover.
    let stray = [StoreTotals {
        store_id: StoreId::from_stored(9),
        revenue: 1,
        fee: 0,
        trade_count: 1,
    }];
    let refused = f
        .storage
        .replace_settlements(
            f.lease().await,
            SettlementWindow {
                term: Term::Day,
                window: december_first(),
                stores: &stores(&[1]),
                totals: &stray,
                card_fees: &[],
                products: &[],
            },
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        f.storage
            .settlement(StoreId::from_stored(1), Term::Day, date("2024-12-01"))
            .await
            .expect("read"),
        None,
        "nothing written"
    );
    f.finish().await;
}

async fn settlements_are_replaced_whole_and_their_detail_adds_up(engine: Engine) {
    let f = Fixture::new(engine).await;
    let window = december_first();
    let totals = [StoreTotals {
        store_id: StoreId::from_stored(1),
        revenue: 7_500,
        fee: 23,
        trade_count: 2,
    }];
    let card_fees = [CardFees {
        store_id: StoreId::from_stored(1),
        card_company: CardCompany::H,
        payment_count: 1,
        amount: 3_900,
        fee: 23,
    }];
    let products = [
        sold(1, 4, "Cola", Category::Drink, 5, 1_500),
        sold(1, 2, "Sikhye", Category::SubMenu, 12, 6_000),
    ];
    let written = f
        .storage
        .replace_settlements(
            f.lease().await,
            SettlementWindow {
                term: Term::Day,
                window,
                stores: &stores(&[1, 2]),
                totals: &totals,
                card_fees: &card_fees,
                products: &products,
            },
        )
        .await
        .expect("write");
    assert_eq!(written, Replaced::Written(2 + 1 + 2));
    let settlement = |store: i64, revenue, fee, trade_count| Settlement {
        store_id: StoreId::from_stored(store),
        term: Term::Day,
        window,
        revenue,
        fee,
        trade_count,
    };
    let one = f
        .storage
        .settlement(StoreId::from_stored(1), Term::Day, window.start)
        .await
        .expect("read");
    assert_eq!(one, Some(settlement(1, 7_500, 23, 2)));
    assert_eq!(one.map(|s| s.operating_profit()), Some(7_477));
    assert_eq!(
        f.storage
            .settlement(StoreId::from_stored(2), Term::Day, window.start)
            .await
            .expect("read"),
        Some(settlement(2, 0, 0, 0)),
        "covered, sold nothing: a zero settlement"
    );
    assert_eq!(
        f.storage
            .settlement(StoreId::from_stored(3), Term::Day, window.start)
            .await
            .expect("read"),
        None
    );
    let detail = f
        .storage
        .settlement_detail(StoreId::from_stored(1), Term::Day, window.start)
        .await
        .expect("read")
        .expect("aggregated");
    assert_eq!(detail.settlement, settlement(1, 7_500, 23, 2));
    // Categories in menu order (sub menu before drinks), companies as paid.
    assert_eq!(
        detail.products,
        [
            sold(1, 2, "Sikhye", Category::SubMenu, 12, 6_000),
            sold(1, 4, "Cola", Category::Drink, 5, 1_500),
        ]
    );
    assert_eq!(detail.card_fees, card_fees);
    assert_eq!(
        detail.products.iter().map(|p| p.sale_amount).sum::<i64>(),
        detail.settlement.revenue
    );
    assert_eq!(
        detail.card_fees.iter().map(|c| c.fee).sum::<i64>(),
        detail.settlement.fee
    );

    // Run again with nothing sold: the window is replaced, details and all.
    f.storage
        .replace_settlements(
            f.lease().await,
            SettlementWindow {
                term: Term::Day,
                window,
                stores: &stores(&[1]),
                totals: &[],
                card_fees: &[],
                products: &[],
            },
        )
        .await
        .expect("write");
    let detail = f
        .storage
        .settlement_detail(StoreId::from_stored(1), Term::Day, window.start)
        .await
        .expect("read")
        .expect("aggregated");
    assert_eq!(detail.settlement, settlement(1, 0, 0, 0));
    assert!(detail.products.is_empty() && detail.card_fees.is_empty());
    let listed = f
        .storage
        .settlements(
            StoreId::from_stored(1),
            Term::Day,
            date("2024-11-01"),
            date("2024-12-31"),
        )
        .await
        .expect("list");
    assert_eq!(listed, [settlement(1, 0, 0, 0)]);
    f.finish().await;
}

/// A DAY product-sales run of 2024-12-01 starting at `started` with a one-minute lease.
fn day_run(scope: RunScope, started: &str) -> NewRun {
    let started_at = at(started);
    NewRun {
        job: Job::ProductSales,
        term: Term::Day,
        window: december_first(),
        scope,
        started_at,
        lease_until: started_at + TimeDelta::minutes(1),
    }
}

#[track_caller]
fn started(begun: Begun) -> RunId {
    match begun {
        Begun::Started(id) => id,
        busy => panic!("expected the lease, got {busy:?}"),
    }
}
