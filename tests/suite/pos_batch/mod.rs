//! `pos batch` as a CronJob runs it: a separate process reading paid bills from the trade
//! database and writing a different settlement database, asking a real `pos serve store`
//! which stores exist. Checked here: day boundaries in the stores' zone, shards that add
//! up to the unsharded result (from `--shard` and from an Indexed Job's completion
//! index), a rollup verified against the bills, exit codes, two runs of one window at
//! once, and metrics read back from a real Prometheus Pushgateway.

use std::{collections::BTreeMap, sync::Arc};

use pos_common::{
    clock::{ManualClock, SharedClock},
    domain::{
        CardCompany, Category, DeviceId, Grade, ProductId, SettlementDay, StoreId, StoreName,
        StoreRequest, UserId,
    },
    storage::Database,
};
use pos_settlement_storage::{SettlementStorage, Term};
use pos_trade_storage::{
    IdempotencyKey, NewOrder, NewPayment, OrderId, PaymentMethod, SnapshotLine, TradeStorage,
};
use tokio::process::Command;

use crate::support::{
    Engine, TestDb, at, date,
    process::{PosProcess, migrate, output, pos},
};

mod metrics;

crate::on_both_engines!(
    a_batch_process_aggregates_what_the_schedule_covers,
    shards_add_up_to_the_whole_window,
    two_runs_of_one_window_at_once_leave_correct_results,
);

/// The stores' settlement days: store i (from 1) settles on the i-th.
const DAYS: [i32; 6] = [1, 5, 10, 15, 20, 25];

/// A trade database with stores and paid bills, its store role, and a settlement
/// database of its own.
struct Books {
    trade_db: (TestDb, Database),
    settlement_db: (TestDb, Database),
    trades: Arc<dyn TradeStorage>,
    clock: Arc<ManualClock>,
    /// Absent once stopped.
    store: Option<PosProcess>,
    store_addr: String,
    key_file: std::path::PathBuf,
    _files: tempfile::TempDir,
    keys: usize,
}

impl Books {
    async fn open(engine: Engine) -> Self {
        let clock = ManualClock::new(at("2024-12-01T03:00:00Z"));
        let shared: SharedClock = clock.clone();
        let trade_db = TestDb::create(engine).await;
        let settlement_db = TestDb::create(engine).await;
        for role in ["store", "trade"] {
            migrate(&trade_db.0.url(), role).await;
        }
        migrate(&settlement_db.0.url(), "settlement").await;
        let stores = pos_store::open_storage(&trade_db.1, shared.clone());
        for (owner, day) in (1..).zip(DAYS) {
            stores
                .create_store_for_owner(
                    UserId::from_stored(owner),
                    &StoreRequest {
                        name: StoreName::parse(&format!("Store {owner}")).expect("name"),
                        grade: Grade::Gold,
                        settlement_day: SettlementDay::parse(day).expect("day"),
                    },
                )
                .await
                .expect("store");
        }
        let files = tempfile::tempdir().expect("dir");
        let (_, key_file, jwks_file) = crate::support::key_files(files.path());
        let mut command = pos();
        command
            .args(["serve", "store", "--listen", "127.0.0.1:0"])
            .env("POS_DATABASE_URL", trade_db.0.url())
            .env("POS_JWKS_FILE", &jwks_file)
            .env("POS_SIGNING_KEY_FILE", &key_file);
        let store = PosProcess::spawn("store", command).await;
        Self {
            store_addr: store.addr.clone(),
            store: Some(store),
            trades: pos_trade::open_storage(&trade_db.1, shared),
            trade_db,
            settlement_db,
            clock,
            key_file,
            _files: files,
            keys: 0,
        }
    }

    /// One bill of `store`'s tablet `tablet`: (product, count) lines at 100 per unit of
    /// product id, paid at `paid_at` by `method`.
    async fn paid_bill(
        &mut self,
        store: i64,
        tablet: i64,
        lines: &[(i64, i64)],
        paid_at: &str,
        method: PaymentMethod,
    ) {
        self.keys += 1;
        let n = self.keys;
        let lines = lines
            .iter()
            .map(|&(product, count)| SnapshotLine {
                product_id: ProductId::from_stored(product),
                product_name: format!("Product {product}"),
                category: if product % 2 == 0 {
                    Category::Drink
                } else {
                    Category::MainMenu
                },
                unit_price: 100 * product,
                count,
            })
            .collect();
        self.clock.set(at(paid_at));
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

    /// Bills of every store on 2024-11-30 and 2024-12-01 (Seoul), two of them a
    /// millisecond either side of midnight, and an open bill that must not count.
    async fn two_days(&mut self) {
        let card = PaymentMethod::Card(CardCompany::S);
        for store in 1..=6 {
            self.paid_bill(
                store,
                1,
                &[(1, store), (2, 1)],
                "2024-11-30T03:00:00Z",
                card,
            )
            .await;
            self.paid_bill(
                store,
                2,
                &[(3, 2)],
                "2024-12-01T05:00:00Z",
                PaymentMethod::Cash,
            )
            .await;
        }
        // 23:59:59.999 on the 30th and 00:00:00 on the 1st, Seoul time (UTC+9).
        self.paid_bill(
            1,
            3,
            &[(5, 1)],
            "2024-11-30T14:59:59.999Z",
            PaymentMethod::Cash,
        )
        .await;
        self.paid_bill(1, 4, &[(7, 1)], "2024-11-30T15:00:00Z", PaymentMethod::Cash)
            .await;
        // Ordered, never paid.
        self.keys += 1;
        let order = NewOrder::new(
            OrderId::parse("open-bill").expect("id"),
            StoreId::from_stored(2),
            DeviceId::from_stored(9),
            IdempotencyKey::parse("open-bill").expect("key"),
            "open".into(),
            vec![SnapshotLine {
                product_id: ProductId::from_stored(1),
                product_name: "Product 1".into(),
                category: Category::MainMenu,
                unit_price: 100,
                count: 50,
            }],
        )
        .expect("an order");
        self.trades.commit_order(&order).await.expect("commit");
    }

    /// `pos batch <args>` against these databases and store role, with `envs`.
    fn batch(&self, settlement_url: &str, args: &[&str], envs: &[(&str, String)]) -> Command {
        let mut command = pos();
        command
            .arg("batch")
            .args(args)
            .env("POS_DATABASE_URL", settlement_url)
            .env("POS_SOURCE_DATABASE_URL", self.trade_db.0.url())
            .env("POS_STORE_ADDR", format!("http://{}", self.store_addr))
            .env("POS_SIGNING_KEY_FILE", &self.key_file);
        for (key, value) in envs {
            command.env(key, value);
        }
        command
    }

    async fn run_ok(&self, settlement_url: &str, args: &[&str], envs: &[(&str, String)]) -> String {
        let (status, stdout, stderr) = output(self.batch(settlement_url, args, envs)).await;
        assert!(
            status.success(),
            "pos batch {args:?} failed:\n{stdout}\n{stderr}"
        );
        stdout
    }

    async fn stop_store(&mut self) {
        if let Some(store) = self.store.take() {
            store.stop_with_sigterm().await;
        }
    }

    async fn finish(mut self) {
        self.stop_store().await;
        for (test_db, database) in [self.trade_db, self.settlement_db] {
            database.close().await;
            test_db.drop_database().await;
        }
    }
}

/// Every DAY settlement of the six stores on `day`: store → (revenue, fee, trades).
async fn day_settlements(
    storage: &Arc<dyn SettlementStorage>,
    day: &str,
) -> BTreeMap<i64, (i64, i64, i64)> {
    let mut found = BTreeMap::new();
    for store in 1..=6 {
        if let Some(s) = storage
            .settlement(StoreId::from_stored(store), Term::Day, date(day))
            .await
            .expect("read")
        {
            found.insert(store, (s.revenue, s.fee, s.trade_count));
        }
    }
    found
}

/// Every DAY product sales row of the six stores on both days.
async fn day_sales(storage: &Arc<dyn SettlementStorage>) -> Vec<(i64, i64, String, i64, i64)> {
    let stores: Vec<StoreId> = (1..=6).map(StoreId::from_stored).collect();
    let days = storage
        .day_product_sales(&stores, date("2024-11-30"), date("2024-12-02"))
        .await
        .expect("read");
    let mut rows: Vec<_> = days
        .sales
        .into_iter()
        .map(|(day, s)| {
            (
                s.store_id.get(),
                s.product_id,
                day.to_string(),
                s.sale_count,
                s.sale_amount,
            )
        })
        .collect();
    rows.sort();
    rows
}

async fn a_batch_process_aggregates_what_the_schedule_covers(engine: Engine) {
    let mut books = Books::open(engine).await;
    books.two_days().await;
    let url = books.settlement_db.0.url();
    // Run on the 2nd: the 1st, and the 30th again for late payments.
    let printed = books
        .run_ok(
            &url,
            &[
                "run",
                "--job",
                "settlement",
                "--term",
                "day",
                "--date",
                "2024-12-02",
            ],
            &[],
        )
        .await;
    assert_eq!(printed.lines().count(), 2, "{printed}");
    let storage = pos_settlement::open_storage(&books.settlement_db.1);
    let first = day_settlements(&storage, "2024-12-01").await;
    let thirtieth = day_settlements(&storage, "2024-11-30").await;
    // Every store: 2 × product 3 in cash on the 1st; on the 30th store × product 1 + 1 ×
    // product 2 by card S (8‰). Store 1 also has 700 at 00:00 on the 1st and 500 at
    // 23:59:59.999 on the 30th; store 2's open bill counts nowhere.
    for store in 1..=6 {
        let (midnight, before_midnight) = if store == 1 { (700, 500) } else { (0, 0) };
        let card = 100 * store + 200;
        assert_eq!(
            first[&store],
            (600 + midnight, 0, 1 + i64::from(store == 1))
        );
        assert_eq!(
            thirtieth[&store],
            (
                card + before_midnight,
                card * 8 / 1000,
                1 + i64::from(store == 1)
            )
        );
    }

    // A rolled-up week, verified against the bills (the days are there now).
    books
        .run_ok(
            &url,
            &[
                "run",
                "--job",
                "product-sales",
                "--term",
                "day",
                "--date",
                "2024-12-02",
            ],
            &[],
        )
        .await;
    books
        .run_ok(
            &url,
            &[
                "run",
                "--job",
                "product-sales",
                "--term",
                "week",
                "--date",
                "2024-12-02",
                "--verify",
            ],
            &[],
        )
        .await;
    let week = storage
        .top_products(
            StoreId::from_stored(1),
            Term::Week,
            date("2024-11-25"),
            None,
            pos_settlement_storage::Ranking::Amount,
            10,
        )
        .await
        .expect("read")
        .expect("the week was aggregated");
    let week_total: i64 = week.iter().map(|p| p.sale_amount).sum();
    assert_eq!(week_total, 600 + 700 + 300 + 500);

    // A monthly settlement on the 10th covers the store settling on the 10th only.
    books
        .run_ok(
            &url,
            &[
                "run",
                "--job",
                "settlement",
                "--term",
                "month",
                "--date",
                "2024-12-10",
            ],
            &[],
        )
        .await;
    let month = |store| {
        let storage = storage.clone();
        async move {
            storage
                .settlement(StoreId::from_stored(store), Term::Month, date("2024-11-10"))
                .await
                .expect("read")
        }
    };
    let third = month(3).await.expect("store 3 settles on the 10th");
    assert_eq!(third.revenue, 600 + 300 + 200);
    assert_eq!(month(1).await, None);

    // A store the store role does not know, or a bad window: non-zero, saying why.
    let (status, _, stderr) = output(books.batch(
        &url,
        &[
            "run",
            "--job",
            "settlement",
            "--term",
            "day",
            "--date",
            "2024-12-02",
            "--store",
            "99",
        ],
        &[],
    ))
    .await;
    assert!(!status.success());
    assert!(stderr.contains("store 99"), "{stderr}");
    let (status, _, stderr) = output(books.batch(
        &url,
        &[
            "run",
            "--job",
            "settlement",
            "--term",
            "week",
            "--date",
            "2024-12-02",
        ],
        &[],
    ))
    .await;
    assert!(!status.success());
    assert!(stderr.contains("no week term"), "{stderr}");
    books.finish().await;
}

async fn shards_add_up_to_the_whole_window(engine: Engine) {
    let mut books = Books::open(engine).await;
    books.two_days().await;
    let sharded = books.settlement_db.0.url();
    let run = [
        "run",
        "--job",
        "product-sales",
        "--term",
        "day",
        "--date",
        "2024-12-02",
    ];
    for shard in ["1/3", "2/3"] {
        books
            .run_ok(&sharded, &[&run[..], &["--shard", shard]].concat(), &[])
            .await;
    }
    // The third as an Indexed Job's pod finds it.
    books
        .run_ok(
            &sharded,
            &run,
            &[
                ("JOB_COMPLETION_INDEX", "2".into()),
                ("POS_SHARD_COUNT", "3".into()),
            ],
        )
        .await;
    let whole = TestDb::create(engine).await;
    migrate(&whole.0.url(), "settlement").await;
    books.run_ok(&whole.0.url(), &run, &[]).await;
    let from_shards = day_sales(&pos_settlement::open_storage(&books.settlement_db.1)).await;
    let unsharded = day_sales(&pos_settlement::open_storage(&whole.1)).await;
    assert!(!unsharded.is_empty());
    assert_eq!(from_shards, unsharded);
    let runs = pos_settlement::open_storage(&books.settlement_db.1)
        .runs(&pos_settlement_storage::RunFilter::latest(10))
        .await
        .expect("runs");
    let mut shards: Vec<(u32, u32)> = runs
        .iter()
        .map(|r| (r.scope.shard_index, r.scope.shard_count))
        .collect();
    shards.sort();
    shards.dedup();
    assert_eq!(shards, vec![(0, 3), (1, 3), (2, 3)]);
    whole.1.close().await;
    whole.0.drop_database().await;
    books.finish().await;
}

async fn two_runs_of_one_window_at_once_leave_correct_results(engine: Engine) {
    let mut books = Books::open(engine).await;
    books.two_days().await;
    let url = books.settlement_db.0.url();
    let args = [
        "run",
        "--job",
        "settlement",
        "--term",
        "day",
        "--date",
        "2024-12-02",
    ];
    let (one, two) = tokio::join!(
        output(books.batch(&url, &args, &[])),
        output(books.batch(&url, &args, &[]))
    );
    // Each window ran once at a time: a run that found it held says so and fails (the
    // two windows of a DAY run may each go to a different process).
    for (status, stdout, stderr) in [&one, &two] {
        for line in stdout.lines().filter(|line| line.contains("FAILED")) {
            assert!(
                line.contains("the window is busy"),
                "a clear refusal: {line}"
            );
        }
        assert_eq!(
            status.success(),
            !stdout.contains("FAILED"),
            "{stdout}\n{stderr}"
        );
    }
    let storage = pos_settlement::open_storage(&books.settlement_db.1);
    for day in ["2024-11-30", "2024-12-01"] {
        let runs = storage
            .runs(&pos_settlement_storage::RunFilter::latest(10))
            .await
            .expect("runs");
        assert!(
            runs.iter().any(|r| r.window.start == date(day)
                && r.status == pos_settlement_storage::RunStatus::Succeeded),
            "{day} was aggregated once: {runs:?}"
        );
    }
    let first = day_settlements(&storage, "2024-12-01").await;
    assert_eq!(first.len(), 6);
    assert_eq!(first[&2], (600, 0, 1));
    assert_eq!(first[&1], (1300, 0, 2));
    books.finish().await;
}
