//! Running a window of a job, from a trade database into a settlement database of its
//! own (as `POS_SOURCE_DATABASE_URL` and `POS_DATABASE_URL` may be): the reference's
//! worked example settles to its published figures; product sales add up to revenue and
//! card fees to the fee for every store of a random data set; a re-run replaces, a busy
//! window is refused and recorded; a run stopped half way through its write (as a
//! killed pod would stop) leaves the previous results, and the next run completes.

use std::sync::Arc;

use pos_batch::{Aggregator, RunError, TimeZone, WindowRun};
use pos_common::{
    aggregation::{Job, Term, Window},
    clock::{ManualClock, SharedClock},
    domain::{CardCompany, Category, DeviceId, ProductId, StoreId},
    storage::Database,
};
use pos_settlement_storage::{
    Begun, NewRun, Ranking, RunFilter, RunScope, RunStatus, SettlementDetail, SettlementStorage,
};
use pos_trade_storage::{
    IdempotencyKey, NewOrder, NewPayment, OrderId, PaymentMethod, SnapshotLine, TradeStorage,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::support::{Engine, TestDb, at, date};

crate::on_both_engines!(
    the_reference_example_settles_as_published,
    sales_add_up_to_revenue_and_fees_for_every_store,
    a_rerun_replaces_and_a_busy_window_is_refused,
    a_week_rolls_up_from_its_days_aggregating_missing_days_first,
    a_week_without_day_rows_aggregates_every_day_first,
    verifying_a_rollup_names_what_disagrees_with_the_trades,
);

mod runs;
mod settlement_months;

fn december_first() -> Window {
    Window {
        start: date("2024-12-01"),
        end: date("2024-12-02"),
    }
}

/// A trade database and a settlement database, and the aggregator between them.
struct Books {
    trade_db: (TestDb, Database),
    settlement_db: (TestDb, Database),
    trades: Arc<dyn TradeStorage>,
    settlements: Arc<dyn SettlementStorage>,
    aggregator: Aggregator,
    clock: Arc<ManualClock>,
    keys: usize,
}

impl Books {
    async fn open(engine: Engine) -> Self {
        Self::open_in(engine, TimeZone::default()).await
    }

    async fn open_in(engine: Engine, zone: TimeZone) -> Self {
        let clock = ManualClock::new(at("2024-12-01T03:00:00Z"));
        let shared: SharedClock = clock.clone();
        let trade_db = TestDb::create(engine).await;
        trade_db
            .1
            .migrate(&pos_trade::MIGRATIONS)
            .await
            .expect("migrate trade");
        let settlement_db = TestDb::create(engine).await;
        settlement_db
            .1
            .migrate(&pos_settlement::MIGRATIONS)
            .await
            .expect("migrate settlement");
        let trades = pos_trade::open_storage(&trade_db.1, shared.clone());
        let settlements = pos_settlement::open_storage(&settlement_db.1);
        let aggregator = Aggregator::new(
            pos_trade::open_sales_source(&trade_db.1),
            settlements.clone(),
            zone,
            shared,
        );
        Self {
            trade_db,
            settlement_db,
            trades,
            settlements,
            aggregator,
            clock,
            keys: 0,
        }
    }

    fn key(&mut self) -> usize {
        self.keys += 1;
        self.keys
    }

    async fn order(&mut self, store: i64, tablet: i64, lines: &[(i64, Category, i64, i64)]) {
        let n = self.key();
        let lines = lines
            .iter()
            .map(|&(product, category, unit_price, count)| SnapshotLine {
                product_id: ProductId::from_stored(product),
                product_name: format!("Product {product}"),
                category,
                unit_price,
                count,
            })
            .collect();
        let order = NewOrder::new(
            OrderId::parse(&format!("o-{n}")).expect("order id"),
            StoreId::from_stored(store),
            DeviceId::from_stored(tablet),
            IdempotencyKey::parse(&format!("k-{n}")).expect("key"),
            format!("order {n}"),
            lines,
        )
        .expect("an order");
        self.trades.commit_order(&order).await.expect("commit");
    }

    async fn pay(&mut self, store: i64, tablet: i64, method: PaymentMethod) {
        let n = self.key();
        self.trades
            .pay(&NewPayment {
                store_id: StoreId::from_stored(store),
                device_id: DeviceId::from_stored(tablet),
                method,
                expected_amount: None,
                idempotency_key: IdempotencyKey::parse(&format!("p-{n}")).expect("key"),
                fingerprint: format!("payment {n}"),
            })
            .await
            .expect("pay");
    }

    async fn run(&self, job: Job, stores: &[i64]) -> Result<pos_batch::Report, RunError> {
        let stores: Vec<StoreId> = stores.iter().map(|&s| StoreId::from_stored(s)).collect();
        self.aggregator
            .run(WindowRun {
                job,
                term: Term::Day,
                window: december_first(),
                scope: RunScope::ALL,
                stores: &stores,
                verify: false,
                from_raw: false,
            })
            .await
    }

    async fn detail(&self, store: i64) -> Option<SettlementDetail> {
        self.settlements
            .settlement_detail(StoreId::from_stored(store), Term::Day, date("2024-12-01"))
            .await
            .expect("read")
    }

    async fn finish(self) {
        for (test_db, database) in [self.trade_db, self.settlement_db] {
            database.close().await;
            test_db.drop_database().await;
        }
    }
}

const CARD_H: PaymentMethod = PaymentMethod::Card(CardCompany::H);

/// Table 1: 4 × product 2 (SUB_MENU 500) + 2 × product 4 (DRINK 300), then 2 × product
/// 2, paid 3,600 in cash; table 2: 6 × product 2 + 3 × product 4, paid 3,900 by card H.
async fn the_reference_example_settles_as_published(engine: Engine) {
    let mut books = Books::open(engine).await;
    let (sub, drink) = (Category::SubMenu, Category::Drink);
    books
        .order(1, 1, &[(2, sub, 500, 4), (4, drink, 300, 2)])
        .await;
    books.order(1, 1, &[(2, sub, 500, 2)]).await;
    books.pay(1, 1, PaymentMethod::Cash).await;
    books
        .order(1, 2, &[(2, sub, 500, 6), (4, drink, 300, 3)])
        .await;
    books.pay(1, 2, CARD_H).await;
    books.clock.set(at("2024-12-01T15:10:00Z"));

    let settled = books.run(Job::Settlement, &[1, 2]).await.expect("run");
    assert_eq!((settled.rows_read, settled.rows_written), (4, 5));
    let detail = books.detail(1).await.expect("settled");
    let s = detail.settlement;
    assert_eq!(
        (s.revenue, s.fee, s.operating_profit(), s.trade_count),
        (7_500, 23, 7_477, 2)
    );
    let by_product: Vec<(i64, Category, i64, i64)> = detail
        .products
        .iter()
        .map(|p| (p.product_id, p.category, p.sale_count, p.sale_amount))
        .collect();
    assert_eq!(by_product, [(2, sub, 12, 6_000), (4, drink, 5, 1_500)]);
    let fees: Vec<(CardCompany, i64)> = detail
        .card_fees
        .iter()
        .map(|f| (f.card_company, f.fee))
        .collect();
    assert_eq!(fees, [(CardCompany::H, 23)]);
    let idle = books.detail(2).await.expect("covered").settlement;
    assert_eq!((idle.revenue, idle.fee, idle.trade_count), (0, 0, 0));

    books.run(Job::ProductSales, &[1, 2]).await.expect("run");
    let top = books
        .settlements
        .top_products(
            StoreId::from_stored(1),
            Term::Day,
            date("2024-12-01"),
            None,
            Ranking::Amount,
            5,
        )
        .await
        .expect("read")
        .expect("aggregated");
    let top: Vec<(i64, i64)> = top.iter().map(|p| (p.product_id, p.sale_amount)).collect();
    assert_eq!(top, [(2, 6_000), (4, 1_500)]);
    books.finish().await;
}

/// Random bills over four stores, paid by cash or any card company, some left open: for
/// every store, the products' sales add up to its revenue and the card companies' fees
/// to its fee.
async fn sales_add_up_to_revenue_and_fees_for_every_store(engine: Engine) {
    let mut books = Books::open(engine).await;
    let mut rng = StdRng::seed_from_u64(20241201);
    let categories = [Category::MainMenu, Category::SubMenu, Category::Drink];
    for tablet in 1..=24 {
        let store = 1 + tablet % 4;
        for _ in 0..rng.gen_range(1..4) {
            let lines: Vec<(i64, Category, i64, i64)> = (0..rng.gen_range(1..4))
                .map(|i| {
                    let product = store * 100 + i;
                    let price = 100 * (1 + product % 7);
                    (
                        product,
                        categories[(product % 3) as usize],
                        price,
                        rng.gen_range(1..9),
                    )
                })
                .collect();
            books.order(store, tablet, &lines).await;
        }
        match rng.gen_range(0..5usize) {
            0 => {} // left open
            1 => books.pay(store, tablet, PaymentMethod::Cash).await,
            n => {
                let company = CardCompany::ALL[n - 2];
                books.pay(store, tablet, PaymentMethod::Card(company)).await;
            }
        }
    }
    books
        .run(Job::Settlement, &[1, 2, 3, 4])
        .await
        .expect("run");
    for store in 1..=4 {
        let detail = books.detail(store).await.expect("settled");
        assert_eq!(
            detail.products.iter().map(|p| p.sale_amount).sum::<i64>(),
            detail.settlement.revenue,
            "store {store}"
        );
        assert_eq!(
            detail.card_fees.iter().map(|f| f.fee).sum::<i64>(),
            detail.settlement.fee,
            "store {store}"
        );
        assert!(
            detail.settlement.revenue > 0,
            "store {store} sold something"
        );
    }
    books.finish().await;
}

async fn a_rerun_replaces_and_a_busy_window_is_refused(engine: Engine) {
    let mut books = Books::open(engine).await;
    books.order(1, 1, &[(2, Category::SubMenu, 500, 2)]).await;
    books.pay(1, 1, PaymentMethod::Cash).await;
    books.clock.set(at("2024-12-01T15:10:00Z"));
    books.run(Job::Settlement, &[1]).await.expect("run");
    // A bill paid late in the day, committed after the first run: the re-run takes it in.
    books.clock.set(at("2024-12-01T14:59:00Z"));
    books.order(1, 2, &[(3, Category::Drink, 300, 1)]).await;
    books.pay(1, 2, PaymentMethod::Cash).await;
    books.clock.set(at("2024-12-01T15:20:00Z"));
    books
        .run(Job::Settlement, &[1, 1])
        .await
        .expect("run again");
    let settled = books.detail(1).await.expect("settled");
    assert_eq!(
        (
            settled.settlement.revenue,
            settled.settlement.trade_count,
            settled.products.len()
        ),
        (1_300, 2, 2),
        "replaced with the late bill, not doubled"
    );
    // A window that is not a day is not a DAY window.
    let stores = [StoreId::from_stored(1)];
    let week = books
        .aggregator
        .run(WindowRun {
            job: Job::Settlement,
            term: Term::Day,
            window: Window {
                start: date("2024-12-01"),
                end: date("2024-12-08"),
            },
            scope: RunScope::ALL,
            stores: &stores,
            verify: false,
            from_raw: false,
        })
        .await;
    assert!(matches!(week, Err(RunError::Window(_))), "{week:?}");

    // Another run holds the window's lease.
    books.clock.set(at("2024-12-01T15:30:00Z"));
    let holder = books
        .settlements
        .begin_run(&NewRun {
            job: Job::Settlement,
            term: Term::Day,
            window: december_first(),
            scope: RunScope::ALL,
            started_at: at("2024-12-01T15:29:00Z"),
            lease_until: at("2024-12-01T15:35:00Z"),
        })
        .await
        .expect("begin");
    let Begun::Started(holder) = holder else {
        panic!("the window was free: {holder:?}");
    };
    let refused = books.run(Job::Settlement, &[1]).await;
    let Err(RunError::Busy {
        holder: busy_with, ..
    }) = &refused
    else {
        panic!("expected a busy window, got {refused:?}");
    };
    assert_eq!(*busy_with, holder);
    assert!(
        refused
            .as_ref()
            .expect_err("busy")
            .to_string()
            .contains("busy")
    );
    let statuses: Vec<RunStatus> = books
        .settlements
        .runs(&RunFilter::latest(10))
        .await
        .expect("runs")
        .iter()
        .map(|run| run.status)
        .collect();
    assert_eq!(
        statuses,
        [
            RunStatus::Failed,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Succeeded
        ]
    );
    books.finish().await;
}

/// The week of Monday 2024-11-25 in Seoul: a bill paid each day at 13:00 local, product
/// 1 on even days and product 2 on odd ones, one more unit each day.
async fn a_week_of_bills(books: &mut Books) {
    for (offset, day) in (25..=30)
        .map(|d| format!("2024-11-{d}"))
        .chain(["2024-12-01".into()])
        .enumerate()
    {
        let offset = i64::try_from(offset).expect("a day");
        let product = 1 + offset % 2;
        books
            .order(1, 1, &[(product, Category::MainMenu, 1_000, 1 + offset)])
            .await;
        books.clock.set(at(&format!("{day}T04:00:00Z")));
        books.pay(1, 1, PaymentMethod::Cash).await;
    }
    books.clock.set(at("2024-12-01T15:30:00Z"));
}

async fn run_window(
    books: &Books,
    job: Job,
    term: Term,
    window: Window,
    verify: bool,
) -> Result<pos_batch::Report, RunError> {
    let stores = [StoreId::from_stored(1)];
    books
        .aggregator
        .run(WindowRun {
            job,
            term,
            window,
            scope: RunScope::ALL,
            stores: &stores,
            verify,
            from_raw: false,
        })
        .await
}

async fn run_week(books: &Books, verify: bool) -> Result<pos_batch::Report, RunError> {
    let week = Window {
        start: date("2024-11-25"),
        end: date("2024-12-02"),
    };
    run_window(books, Job::ProductSales, Term::Week, week, verify).await
}

/// Store 1's products of the week of 2024-11-25 by count: (id, count, amount).
async fn week_top(books: &Books) -> Vec<(i64, i64, i64)> {
    books
        .settlements
        .top_products(
            StoreId::from_stored(1),
            Term::Week,
            date("2024-11-25"),
            None,
            Ranking::Count,
            5,
        )
        .await
        .expect("read")
        .expect("aggregated")
        .iter()
        .map(|p| (p.product_id, p.sale_count, p.sale_amount))
        .collect()
}

async fn a_week_rolls_up_from_its_days_aggregating_missing_days_first(engine: Engine) {
    let mut books = Books::open(engine).await;
    a_week_of_bills(&mut books).await;
    // The daily runs did all but the last two days.
    for day in 25..=29 {
        let start = date(&format!("2024-11-{day}"));
        let window = Window {
            start,
            end: start.succ_opt().expect("a day"),
        };
        run_window(&books, Job::ProductSales, Term::Day, window, false)
            .await
            .expect("a day");
    }
    let week = run_week(&books, true)
        .await
        .expect("rolled up and verified");
    assert_eq!(week.rows_read, 7, "one DAY row per day");
    // Product 1 on days 1, 3, 5, 7 (1+3+5+7 units), product 2 on days 2, 4, 6 (2+4+6).
    assert_eq!(week_top(&books).await, [(1, 16, 16_000), (2, 12, 12_000)]);
    // The two missing days were aggregated first, each as a run of its own.
    let runs = books
        .settlements
        .runs(&RunFilter::latest(20))
        .await
        .expect("runs");
    let days = runs.iter().filter(|r| r.term == Term::Day).count();
    assert_eq!((runs.len(), days), (8, 7));
    assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded));
    books.finish().await;
}

/// A week none of whose days was aggregated (a first run, a backfill): every day is
/// aggregated first, then summed.
async fn a_week_without_day_rows_aggregates_every_day_first(engine: Engine) {
    let mut books = Books::open(engine).await;
    a_week_of_bills(&mut books).await;
    let week = run_week(&books, true).await.expect("aggregated");
    assert_eq!(week.rows_read, 7, "one DAY row per day");
    assert_eq!(week_top(&books).await, [(1, 16, 16_000), (2, 12, 12_000)]);
    let runs = books
        .settlements
        .runs(&RunFilter::latest(20))
        .await
        .expect("runs");
    let days = runs.iter().filter(|r| r.term == Term::Day).count();
    assert_eq!((runs.len(), days), (8, 7), "{runs:?}");
    books.finish().await;
}

async fn verifying_a_rollup_names_what_disagrees_with_the_trades(engine: Engine) {
    let mut books = Books::open(engine).await;
    a_week_of_bills(&mut books).await;
    for day in 25..=30 {
        let start = date(&format!("2024-11-{day}"));
        let window = Window {
            start,
            end: start.succ_opt().expect("a day"),
        };
        run_window(&books, Job::ProductSales, Term::Day, window, false)
            .await
            .expect("a day");
    }
    run_week(&books, false).await.expect("rolled up");
    // A DAY row that no longer matches the trades (a run of an old build, a hand edit).
    let tamper = books
        .settlements
        .begin_run(&NewRun {
            job: Job::ProductSales,
            term: Term::Day,
            window: Window {
                start: date("2024-11-26"),
                end: date("2024-11-27"),
            },
            scope: RunScope::ALL,
            started_at: at("2024-12-01T15:40:00Z"),
            lease_until: at("2024-12-01T15:45:00Z"),
        })
        .await
        .expect("begin");
    let Begun::Started(tamper) = tamper else {
        panic!("the day was free: {tamper:?}");
    };
    let wrong = [pos_settlement_storage::ProductSales {
        store_id: StoreId::from_stored(1),
        product_id: 2,
        product_name: "Product 2".into(),
        category: Category::MainMenu,
        sale_count: 99,
        sale_amount: 99_000,
    }];
    books
        .settlements
        .replace_product_sales(
            tamper,
            pos_settlement_storage::ProductSalesWindow {
                term: Term::Day,
                window: Window {
                    start: date("2024-11-26"),
                    end: date("2024-11-27"),
                },
                stores: &[StoreId::from_stored(1)],
                sales: &wrong,
            },
        )
        .await
        .expect("write");
    books
        .settlements
        .finish_run(
            tamper,
            &pos_settlement_storage::Finished::Succeeded {
                rows_read: 0,
                rows_written: 1,
                at: at("2024-12-01T15:41:00Z"),
            },
        )
        .await
        .expect("finish");
    let verified = run_week(&books, true).await;
    let Err(RunError::Verify(differences)) = &verified else {
        panic!("expected the rollup to disagree, got {verified:?}");
    };
    assert!(
        differences.contains(
            "store 1 product 2: rolled up 109 sold for 109000, from trades 12 sold for 12000"
        ),
        "{differences}"
    );
    assert!(!differences.contains("product 1"), "{differences}");
    books.finish().await;
}
