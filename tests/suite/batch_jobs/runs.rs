//! How runs end and meet: a run stopped half way through its write (as a killed pod
//! stops) leaves the previous results; days follow a zone with daylight-saving time; runs
//! of overlapping scopes at once both complete.

use std::sync::Arc;

use pos_batch::{Aggregator, RunError, TimeZone, WindowRun};
use pos_common::{
    aggregation::{Job, Term, Window},
    domain::{Category, StoreId},
    storage::Database,
};
use pos_settlement_storage::{RunFilter, RunScope, RunStatus, SettlementStorage};
use pos_trade_storage::PaymentMethod;

use super::{Books, CARD_H, at, date, december_first};
use crate::support::Engine;

crate::on_both_engines!(
    a_run_stopped_half_way_leaves_the_previous_results,
    days_follow_a_zone_with_daylight_saving_time,
    runs_of_overlapping_scopes_at_once_both_complete,
);

/// The settlement storage of `books` with a hook half way through each write that says
/// it was reached and then waits forever (until its run is dropped, as a kill ends it).
fn stopping_half_way(
    database: &Database,
    reached: Arc<tokio::sync::Notify>,
) -> Arc<dyn SettlementStorage> {
    let halfway: pos_settlement_storage::Halfway = Arc::new(move || {
        let reached = reached.clone();
        Box::pin(async move {
            reached.notify_one();
            std::future::pending::<()>().await;
        })
    });
    match database {
        Database::Postgres(pool) => Arc::new(
            pos_settlement_postgres::PgSettlementStorage::new(pool.clone()).with_halfway(halfway),
        ),
        Database::Sqlite(pool) => Arc::new(
            pos_settlement_sqlite::SqliteSettlementStorage::new(pool.clone()).with_halfway(halfway),
        ),
    }
}

async fn a_run_stopped_half_way_leaves_the_previous_results(engine: Engine) {
    let mut books = Books::open(engine).await;
    books.order(1, 1, &[(2, Category::SubMenu, 500, 4)]).await;
    books.pay(1, 1, PaymentMethod::Cash).await;
    books
        .run(Job::Settlement, &[1])
        .await
        .expect("the first run");
    let before = books.detail(1).await.expect("settled");
    assert_eq!(before.settlement.revenue, 2_000);

    // A late payment, then a run that is stopped inside its write transaction.
    books.order(1, 2, &[(4, Category::Drink, 300, 1)]).await;
    books.pay(1, 2, CARD_H).await;
    let reached = Arc::new(tokio::sync::Notify::new());
    let doomed = Aggregator::new(
        pos_trade::open_sales_source(&books.trade_db.1),
        stopping_half_way(&books.settlement_db.1, reached.clone()),
        TimeZone::default(),
        books.clock.clone(),
    );
    let stores = [StoreId::from_stored(1)];
    let run = tokio::spawn(async move {
        doomed
            .run(WindowRun {
                job: Job::Settlement,
                term: Term::Day,
                window: december_first(),
                scope: RunScope::ALL,
                stores: &stores,
                verify: false,
                from_raw: false,
            })
            .await
    });
    tokio::time::timeout(std::time::Duration::from_secs(10), reached.notified())
        .await
        .expect("the run reached half way");
    run.abort();
    assert!(run.await.expect_err("stopped").is_cancelled());

    // Its transaction never committed: the previous results stand, whole.
    assert_eq!(books.detail(1).await, Some(before));
    // Its lease outlives it; once the lease expires, the next run completes.
    match books.run(Job::Settlement, &[1]).await {
        Err(RunError::Busy { .. }) => {}
        other => panic!("the stopped run still holds the window: {other:?}"),
    }
    books.clock.advance(std::time::Duration::from_secs(61));
    books
        .run(Job::Settlement, &[1])
        .await
        .expect("the next run");
    let after = books.detail(1).await.expect("settled").settlement;
    assert_eq!((after.revenue, after.fee, after.trade_count), (2_300, 1, 2));
    let runs = books
        .settlements
        .runs(&RunFilter::latest(10))
        .await
        .expect("runs");
    let stopped = runs
        .iter()
        .find(|r| {
            r.status == RunStatus::Failed && r.error.as_deref().is_some_and(|e| e.contains("lease"))
        })
        .or_else(|| runs.iter().find(|r| r.status == RunStatus::Running));
    assert!(stopped.is_some(), "the stopped run is on record: {runs:?}");
    books.finish().await;
}

/// Berlin moves its clocks forward at 02:00 on 2024-03-31, a 23-hour day: bills paid a
/// millisecond before and at each local midnight around it land on their own local days.
async fn days_follow_a_zone_with_daylight_saving_time(engine: Engine) {
    let berlin: TimeZone = "Europe/Berlin".parse().expect("a zone");
    let mut books = Books::open_in(engine, berlin).await;
    let paid = [
        // 23:59:59.999 on the 30th (UTC+1), then midnight starting the 31st.
        ("2024-03-30T22:59:59.999Z", 1),
        ("2024-03-30T23:00:00Z", 10),
        // 23:59:59.999 on the 31st (now UTC+2), then midnight starting April.
        ("2024-03-31T21:59:59.999Z", 100),
        ("2024-03-31T22:00:00Z", 1000),
    ];
    for (tablet, (instant, count)) in (1..).zip(paid) {
        books.clock.set(at(instant));
        books
            .order(1, tablet, &[(1, Category::MainMenu, 1, count)])
            .await;
        books.pay(1, tablet, PaymentMethod::Cash).await;
    }
    let stores = [StoreId::from_stored(1)];
    let mut revenue = Vec::new();
    for (start, end) in [
        ("2024-03-30", "2024-03-31"),
        ("2024-03-31", "2024-04-01"),
        ("2024-04-01", "2024-04-02"),
    ] {
        books
            .aggregator
            .run(WindowRun {
                job: Job::Settlement,
                term: Term::Day,
                window: Window {
                    start: date(start),
                    end: date(end),
                },
                scope: RunScope::ALL,
                stores: &stores,
                verify: false,
                from_raw: false,
            })
            .await
            .expect("run");
        let settled = books
            .settlements
            .settlement(StoreId::from_stored(1), Term::Day, date(start))
            .await
            .expect("read")
            .expect("settled");
        revenue.push(settled.revenue);
    }
    assert_eq!(revenue, [1, 110, 1000]);
    books.finish().await;
}

/// An owner's run of their store and a run of every store, of one window at once (their
/// leases differ): both complete, whichever writes last, and the figures are right.
async fn runs_of_overlapping_scopes_at_once_both_complete(engine: Engine) {
    let mut books = Books::open(engine).await;
    for store in 1..=3 {
        books
            .order(store, 1, &[(1, Category::MainMenu, 100, store)])
            .await;
        books.pay(store, 1, PaymentMethod::Cash).await;
    }
    let all: Vec<StoreId> = (1..=3).map(StoreId::from_stored).collect();
    let mine = [StoreId::from_stored(2)];
    let run = |job, scope, stores| {
        books.aggregator.run(WindowRun {
            job,
            term: Term::Day,
            window: december_first(),
            scope,
            stores,
            verify: false,
            from_raw: false,
        })
    };
    let owner = RunScope {
        store: Some(StoreId::from_stored(2)),
        ..RunScope::ALL
    };
    for _ in 0..5 {
        for job in [Job::Settlement, Job::ProductSales] {
            let (everyone, one) =
                tokio::join!(run(job, RunScope::ALL, &all), run(job, owner, &mine));
            everyone.expect("the run of every store");
            one.expect("the owner's run");
        }
    }
    let two = books.detail(2).await.expect("settled").settlement;
    assert_eq!((two.revenue, two.trade_count), (200, 1));
    books.finish().await;
}
