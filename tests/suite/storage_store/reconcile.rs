//! The reservation reconciler over each engine's storage: stale reservations of committed
//! orders are confirmed, of orders never committed released, and left alone while the
//! ledger cannot answer; two reconcilers at once resolve each reservation once.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use pos_common::clock::ManualClock;
use pos_store::{
    reconciler::{LedgerUnreachable, OrderLedger, Reconciler, Round},
    storage::{Category, OrderId, ReservationStatus, Reserved},
};

use super::{Fixture, lines, order};
use crate::support::Engine;

crate::on_both_engines!(
    stale_reservations_are_confirmed_released_or_left_by_the_ledgers_answer,
    two_reconcilers_at_once_give_stock_back_once,
);

const TIMEOUT: Duration = Duration::from_secs(30);

/// What the trade role would answer, per order id; an order it does not know is absent,
/// and the ones in `unreachable` get no answer.
#[derive(Default)]
struct Ledger {
    committed: Mutex<HashSet<String>>,
    unreachable: Mutex<HashSet<String>>,
    asked: Mutex<HashMap<String, usize>>,
}

#[async_trait]
impl OrderLedger for Ledger {
    async fn order_exists(&self, order: &OrderId) -> Result<bool, LedgerUnreachable> {
        let id = order.as_str().to_string();
        *self
            .asked
            .lock()
            .expect("lock")
            .entry(id.clone())
            .or_default() += 1;
        if self.unreachable.lock().expect("lock").contains(&id) {
            return Err(LedgerUnreachable {
                order: id,
                source: "trade is down".into(),
            });
        }
        Ok(self.committed.lock().expect("lock").contains(&id))
    }
}

fn clock() -> Arc<ManualClock> {
    ManualClock::new(chrono::Utc::now())
}

async fn status(fixture: &Fixture, id: &str) -> ReservationStatus {
    fixture
        .storage
        .reservation(&order(id))
        .await
        .expect("read")
        .expect("reservation")
        .status
}

async fn stale_reservations_are_confirmed_released_or_left_by_the_ledgers_answer(engine: Engine) {
    let clock = clock();
    let fixture = Fixture::with_clock(engine, clock.clone()).await;
    let store = fixture.store(1).await.id;
    let rice = fixture
        .product(store, "Rice", Category::MainMenu, 1_000, 100)
        .await;
    for (id, count) in [("committed", 3), ("abandoned", 2), ("unknown", 1)] {
        let reserved = fixture
            .storage
            .reserve(&order(id), store, &lines(&[(rice, count)]))
            .await
            .expect("reserve");
        assert!(matches!(reserved, Reserved::Taken(_)), "{reserved:?}");
    }
    let ledger = Arc::new(Ledger::default());
    ledger
        .committed
        .lock()
        .expect("lock")
        .insert("committed".into());
    ledger
        .unreachable
        .lock()
        .expect("lock")
        .insert("unknown".into());
    let reconciler = Reconciler::new(
        fixture.storage.clone(),
        ledger.clone(),
        clock.clone(),
        TIMEOUT,
    );

    // Young reservations are none of its business.
    assert_eq!(reconciler.round().await.expect("round"), Round::default());
    assert!(ledger.asked.lock().expect("lock").is_empty());

    clock.advance(TIMEOUT + Duration::from_secs(1));
    let fresh = fixture
        .storage
        .reserve(&order("fresh"), store, &lines(&[(rice, 4)]))
        .await
        .expect("reserve");
    assert!(matches!(fresh, Reserved::Taken(_)));
    assert_eq!(
        reconciler.round().await.expect("round"),
        Round {
            confirmed: 1,
            released: 1,
            deferred: 1,
            resolved_elsewhere: 0
        }
    );
    assert_eq!(
        status(&fixture, "committed").await,
        ReservationStatus::Confirmed
    );
    assert_eq!(
        status(&fixture, "abandoned").await,
        ReservationStatus::Released
    );
    assert_eq!(
        status(&fixture, "unknown").await,
        ReservationStatus::Reserved
    );
    assert_eq!(status(&fixture, "fresh").await, ReservationStatus::Reserved);
    // 100 − 3 (sold) − 1 (still held) − 4 (fresh); the abandoned 2 came back.
    assert_eq!(fixture.stock(store, rice).await, 92);

    // Once trade answers again, the order it never committed is released.
    ledger.unreachable.lock().expect("lock").clear();
    assert_eq!(
        reconciler.round().await.expect("round"),
        Round {
            released: 1,
            ..Round::default()
        }
    );
    assert_eq!(
        status(&fixture, "unknown").await,
        ReservationStatus::Released
    );
    assert_eq!(fixture.stock(store, rice).await, 93);
    assert_eq!(
        ledger.asked.lock().expect("lock").get("committed"),
        Some(&1),
        "a resolved reservation is not asked about again"
    );
    fixture.finish().await;
}

async fn two_reconcilers_at_once_give_stock_back_once(engine: Engine) {
    let clock = clock();
    let fixture = Fixture::with_clock(engine, clock.clone()).await;
    let store = fixture.store(1).await.id;
    let rice = fixture
        .product(store, "Rice", Category::MainMenu, 1_000, 1_000)
        .await;
    for n in 0..20 {
        fixture
            .storage
            .reserve(&order(&format!("o-{n}")), store, &lines(&[(rice, 7)]))
            .await
            .expect("reserve");
    }
    assert_eq!(fixture.stock(store, rice).await, 1_000 - 20 * 7);
    clock.advance(TIMEOUT + Duration::from_secs(1));
    let ledger = Arc::new(Ledger::default());
    let replica = || {
        Reconciler::new(
            fixture.storage.clone(),
            ledger.clone(),
            clock.clone(),
            TIMEOUT,
        )
    };
    let (a, b) = (replica(), replica());
    let (first, second) = tokio::join!(a.round(), b.round());
    let (first, second) = (first.expect("round"), second.expect("round"));
    assert_eq!(first.deferred + second.deferred, 0);
    assert_eq!(
        fixture.stock(store, rice).await,
        1_000,
        "every unit back, once"
    );
    for n in 0..20 {
        assert_eq!(
            status(&fixture, &format!("o-{n}")).await,
            ReservationStatus::Released
        );
    }
    assert_eq!(a.round().await.expect("round"), Round::default());
    fixture.finish().await;
}
