//! The run records and window leases of `SettlementStorage`, on both engines: one run
//! holds a window at a time, an expired lease is taken over and its holder recorded as
//! failed, runs starting at once get one lease, runs are listed newest first to the stores
//! they covered, and a run whose lease was taken over writes nothing.

use pos_common::domain::{Category, StoreId};
use pos_settlement_storage::{
    Begun, Finished, ProductSales, ProductSalesWindow, Ranking, Replaced, RunFilter, RunId,
    RunScope, RunStatus, Term,
};

use super::{Fixture, at, day_run, december_first, sold, started, stores};
use crate::support::Engine;

crate::on_both_engines!(
    a_window_is_leased_to_one_run_at_a_time,
    an_expired_lease_is_taken_over_and_its_holder_recorded_as_failed,
    runs_starting_at_once_get_one_lease,
    runs_are_listed_newest_first_to_the_stores_they_cover,
    a_run_whose_lease_was_taken_over_writes_nothing,
);

async fn a_window_is_leased_to_one_run_at_a_time(engine: Engine) {
    let f = Fixture::new(engine).await;
    let first = started(
        f.storage
            .begin_run(&day_run(RunScope::ALL, "2024-12-02T00:10:00Z"))
            .await
            .expect("begin"),
    );
    let second = f
        .storage
        .begin_run(&day_run(RunScope::ALL, "2024-12-02T00:10:30Z"))
        .await
        .expect("begin");
    let Begun::Busy {
        refused,
        holder,
        until,
    } = second
    else {
        panic!("the window is held: {second:?}");
    };
    assert_eq!((holder, until), (first, at("2024-12-02T00:11:00Z")));
    // Another shard of the same window is another lease.
    let shard = RunScope {
        shard_index: 1,
        shard_count: 3,
        store: None,
    };
    let sharded = started(
        f.storage
            .begin_run(&day_run(shard, "2024-12-02T00:10:40Z"))
            .await
            .expect("begin"),
    );
    assert!(
        f.storage
            .renew_lease(first, at("2024-12-02T00:12:00Z"))
            .await
            .expect("renew")
    );
    f.storage
        .finish_run(
            first,
            &Finished::Succeeded {
                rows_read: 12,
                rows_written: 3,
                at: at("2024-12-02T00:10:50Z"),
            },
        )
        .await
        .expect("finish");
    assert!(
        !f.storage
            .renew_lease(first, at("2024-12-02T00:13:00Z"))
            .await
            .expect("renew"),
        "a finished run holds no lease"
    );
    let third = started(
        f.storage
            .begin_run(&day_run(RunScope::ALL, "2024-12-02T00:11:00Z"))
            .await
            .expect("the lease is free again"),
    );
    let runs = f.storage.runs(&RunFilter::latest(10)).await.expect("runs");
    let status: Vec<(RunId, RunStatus)> = runs.iter().map(|r| (r.id, r.status)).collect();
    assert_eq!(
        status,
        [
            (third, RunStatus::Running),
            (sharded, RunStatus::Running),
            (refused, RunStatus::Failed),
            (first, RunStatus::Succeeded),
        ]
    );
    let refused_run = &runs[2];
    assert!(
        refused_run
            .error
            .as_deref()
            .is_some_and(|error| error.contains("busy")),
        "{refused_run:?}"
    );
    let done = &runs[3];
    assert_eq!((done.rows_read, done.rows_written), (12, 3));
    assert_eq!(done.finished_at, Some(at("2024-12-02T00:10:50Z")));
    assert_eq!(done.window, december_first());
    f.finish().await;
}

async fn an_expired_lease_is_taken_over_and_its_holder_recorded_as_failed(engine: Engine) {
    let f = Fixture::new(engine).await;
    let crashed = started(
        f.storage
            .begin_run(&day_run(RunScope::ALL, "2024-12-02T00:10:00Z"))
            .await
            .expect("begin"),
    );
    // Its lease ran out a minute later, and it never finished.
    let next = started(
        f.storage
            .begin_run(&day_run(RunScope::ALL, "2024-12-02T00:11:00Z"))
            .await
            .expect("begin"),
    );
    assert!(
        !f.storage
            .renew_lease(crashed, at("2024-12-02T00:12:00Z"))
            .await
            .expect("renew"),
        "the lease is the new run's"
    );
    let runs = f.storage.runs(&RunFilter::latest(10)).await.expect("runs");
    assert_eq!(runs[0].id, next);
    assert_eq!((runs[1].id, runs[1].status), (crashed, RunStatus::Failed));
    assert!(
        runs[1]
            .error
            .as_deref()
            .is_some_and(|error| error.contains("expired"))
    );
    f.finish().await;
}

async fn runs_starting_at_once_get_one_lease(engine: Engine) {
    let f = Fixture::new(engine).await;
    let starts = (0..8).map(|_| {
        let storage = f.storage.clone();
        async move {
            storage
                .begin_run(&day_run(RunScope::ALL, "2024-12-02T00:10:00Z"))
                .await
                .expect("begin")
        }
    });
    let begun = futures::future::join_all(starts).await;
    let leased = begun
        .iter()
        .filter(|b| matches!(b, Begun::Started(_)))
        .count();
    assert_eq!(leased, 1, "{begun:?}");
    f.finish().await;
}

async fn runs_are_listed_newest_first_to_the_stores_they_cover(engine: Engine) {
    let f = Fixture::new(engine).await;
    let owners = |store| RunScope {
        shard_index: 0,
        shard_count: 1,
        store: Some(StoreId::from_stored(store)),
    };
    let everyone = started(
        f.storage
            .begin_run(&day_run(RunScope::ALL, "2024-12-02T00:10:00Z"))
            .await
            .expect("begin"),
    );
    let fives = started(
        f.storage
            .begin_run(&day_run(owners(5), "2024-12-02T09:00:00Z"))
            .await
            .expect("begin"),
    );
    let sixes = started(
        f.storage
            .begin_run(&day_run(owners(6), "2024-12-02T10:00:00Z"))
            .await
            .expect("begin"),
    );
    let ids = |runs: Vec<pos_settlement_storage::AggregationRun>| -> Vec<RunId> {
        runs.into_iter().map(|r| r.id).collect()
    };
    let of = async |store| {
        f.storage
            .runs(&RunFilter {
                store: Some(StoreId::from_stored(store)),
                ..RunFilter::latest(10)
            })
            .await
    };
    assert_eq!(ids(of(5).await.expect("runs")), [fives, everyone]);
    assert_eq!(ids(of(6).await.expect("runs")), [sixes, everyone]);
    assert_eq!(
        ids(f.storage.runs(&RunFilter::latest(2)).await.expect("runs")),
        [sixes, fives]
    );
    let listed = f
        .storage
        .runs(&RunFilter {
            store: Some(StoreId::from_stored(5)),
            ..RunFilter::latest(1)
        })
        .await
        .expect("runs");
    assert_eq!(listed[0].scope, owners(5));
    // A shard's run is listed to the stores of its shard only.
    let shard = RunScope {
        shard_index: 2,
        shard_count: 3,
        store: None,
    };
    let sharded = started(
        f.storage
            .begin_run(&day_run(shard, "2024-12-02T11:00:00Z"))
            .await
            .expect("begin"),
    );
    assert_eq!(ids(of(5).await.expect("runs")), [sharded, fives, everyone]);
    assert_eq!(ids(of(6).await.expect("runs")), [sixes, everyone]);
    f.finish().await;
}

/// A run that stalled past its lease while another run took the window over: its late
/// write is refused and the newer run's rows stand.
async fn a_run_whose_lease_was_taken_over_writes_nothing(engine: Engine) {
    let f = Fixture::new(engine).await;
    let stalled = started(
        f.storage
            .begin_run(&day_run(RunScope::ALL, "2024-12-02T00:10:00Z"))
            .await
            .expect("begin"),
    );
    let newer = started(
        f.storage
            .begin_run(&day_run(RunScope::ALL, "2024-12-02T00:12:00Z"))
            .await
            .expect("the expired lease is taken over"),
    );
    let write = |run, sales: Vec<ProductSales>| {
        let storage = f.storage.clone();
        async move {
            storage
                .replace_product_sales(
                    run,
                    ProductSalesWindow {
                        term: Term::Day,
                        window: december_first(),
                        stores: &stores(&[1]),
                        sales: &sales,
                    },
                )
                .await
                .expect("write")
        }
    };
    let fresh = vec![sold(1, 1, "Fresh", Category::MainMenu, 2, 2_000)];
    assert_eq!(write(newer, fresh).await, Replaced::Written(1));
    let stale = vec![sold(1, 1, "Stale", Category::MainMenu, 1, 1_000)];
    assert_eq!(write(stalled, stale).await, Replaced::LeaseLost);
    assert_eq!(f.top(1, Ranking::Count).await, Some(vec![(1, 2, 2_000)]));
    f.finish().await;
}
