//! A trade role that dies between reserving an order's stock and committing it (stopped
//! there by the test-only `fault-injection` hook), reached through an edge of its own:
//! the stock stays held by a pending reservation; a retry reaching a healthy trade role
//! in time places the order once; without a retry the store's reconciler gives the
//! stock back, and the order can never be placed from that reservation afterwards.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use pos_common::{
    clock,
    peer::{Peer, ServiceCredential, with_service_token},
    role::{PeerRole, Served},
};
use pos_proto::v1::{
    self as pb, trade_internal_service_client::TradeInternalServiceClient,
    trade_service_client::TradeServiceClient,
};
use pos_store::{
    reconciler::{Reconciler, Round, TradeLedger},
    storage::ReservationStatus,
};
use pos_trade::faults::OrderFaults;
use pos_trade_storage::OrderId;
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

use super::{Shop, TradeClient, current, order};
use crate::support::{
    Engine, assert_error, bearer,
    stack::{StackOptions, TestStack},
};

crate::on_both_engines!(trade_a_crash_after_reserving_leaves_stock_for_the_reconciler);

/// Stops every order right after its reservation, and remembers which.
#[derive(Default)]
struct CrashAfterReserve {
    crashed: Mutex<Vec<OrderId>>,
}

impl CrashAfterReserve {
    fn crashed(&self) -> Vec<OrderId> {
        self.crashed.lock().expect("not poisoned").clone()
    }
}

impl OrderFaults for CrashAfterReserve {
    fn crash_after_reserve(&self, order: &OrderId) -> bool {
        self.crashed
            .lock()
            .expect("not poisoned")
            .push(order.clone());
        true
    }
}

/// A trade role built with `faults`, sharing the stack's database and store role, behind
/// an edge of its own; the stack's edge and trade role stay healthy.
async fn faulty_edge(stack: &TestStack, faults: Arc<dyn OrderFaults>) -> pos::startup::Running {
    let peers = &stack.stack.peers;
    let context = stack
        .context("trade", HashMap::from([("store", peers["store"].clone())]))
        .await;
    let Served::Grpc { services, auth } =
        pos_trade::TradeRole::build_with_faults(context, faults).expect("a faulty trade role")
    else {
        panic!("the trade role serves gRPC");
    };
    let trade = PeerRole {
        services: peers["trade"].services,
        peer: pos::startup::in_process(services, auth),
    };
    let edge_peers = HashMap::from([
        ("store", peers["store"].clone()),
        ("user", peers["user"].clone()),
        ("trade", trade),
    ]);
    let context = stack.context("edge", edge_peers).await;
    let flags = pos::up::matches(&["--rate-limit-per-minute", "100000"]).expect("flags");
    let served = pos::registry::role("edge")
        .expect("the edge role")
        .build(&flags, context)
        .await
        .expect("an edge in front of it");
    pos::startup::serve("127.0.0.1:0".parse().expect("addr"), served)
        .await
        .expect("serve the edge")
}

/// What the store's reconciler does in a round once every reservation is stale, asking
/// the stack's trade role as the running reconciler would.
async fn reconcile_now(stack: &TestStack) -> Round {
    let credential = ServiceCredential::new(stack.issuer.clone(), "store", clock::system());
    let trade = Peer::new(with_service_token(
        stack.stack.peers["trade"].peer.clone(),
        &credential,
    ));
    Reconciler::new(
        stack.store_storage.clone(),
        Arc::new(TradeLedger::new(trade)),
        clock::system(),
        Duration::ZERO,
    )
    .round()
    .await
    .expect("a reconciler round")
}

async fn reservation(stack: &TestStack, order: &OrderId) -> ReservationStatus {
    let id = pos_store::storage::OrderId::parse(order.as_str()).expect("an order id");
    stack
        .store_storage
        .reservation(&id)
        .await
        .expect("read")
        .expect("a reservation")
        .status
}

async fn order_exists(stack: &TestStack, order: &OrderId) -> bool {
    TradeInternalServiceClient::new(stack.stack.peers["trade"].peer.clone())
        .check_order_exists(crate::support::with_bearer(
            pb::CheckOrderExistsRequest {
                order_id: order.as_str().into(),
            },
            &stack.issuer.service("store"),
        ))
        .await
        .expect("check")
        .into_inner()
        .exists
}

async fn trade_a_crash_after_reserving_leaves_stock_for_the_reconciler(engine: Engine) {
    // The stack's own reconciler waits an hour: this test runs its rounds when it wants.
    let stack = TestStack::start_with(
        engine,
        StackOptions {
            flags: [
                "--rate-limit-per-minute",
                "100000",
                "--reservation-timeout",
                "3600",
            ]
            .map(String::from)
            .to_vec(),
            ..StackOptions::default()
        },
    )
    .await;
    let shop = Shop::open(&stack, "crash@example.com", &[("Rice", 1_000, 10)], 1).await;
    let rice = shop.products[0];
    let faults = Arc::new(CrashAfterReserve::default());
    let faulty = faulty_edge(&stack, faults.clone()).await;
    let channel = Channel::from_shared(format!("http://{}", faulty.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut doomed: TradeClient =
        TradeServiceClient::with_interceptor(channel, bearer(&shop.tablets[0].1));
    let mut healthy = shop.tablet(&stack, 0);

    // Two orders die half-way: stock is held, nothing is on a bill.
    for (key, count) in [("lost", 4), ("retried", 3)] {
        let status = doomed
            .place_order(order(&[(rice, count)], key))
            .await
            .expect_err("the trade role died");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    let [lost, retried] = <[OrderId; 2]>::try_from(faults.crashed()).expect("two crashes");
    for id in [&lost, &retried] {
        assert_eq!(reservation(&stack, id).await, ReservationStatus::Reserved);
    }
    assert_eq!(shop.stock(&stack, rice).await, 3, "7 held for the two");
    assert_eq!(current(&mut healthy).await, None);

    // A retry reaching a healthy trade role in time places its order, taking no more.
    let placed = healthy
        .place_order(order(&[(rice, 3)], "retried"))
        .await
        .expect("the retry is placed")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(placed.id, retried.as_str());
    // Its stock is confirmed behind the answer.
    let confirmed = async {
        while reservation(&stack, &retried).await != ReservationStatus::Confirmed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), confirmed)
        .await
        .expect("the retried order's stock is confirmed within 5 s");
    assert_eq!(shop.stock(&stack, rice).await, 3);

    // Nobody retries the other: the reconciler asks the trade role and gives it back.
    assert_eq!(
        reconcile_now(&stack).await,
        Round {
            released: 1,
            ..Round::default()
        }
    );
    assert_eq!(
        reservation(&stack, &lost).await,
        ReservationStatus::Released
    );
    assert_eq!(shop.stock(&stack, rice).await, 7, "the 4 came back");
    assert!(!order_exists(&stack, &lost).await);
    assert!(order_exists(&stack, &retried).await);
    let bill = current(&mut healthy)
        .await
        .expect("the retried order's bill");
    assert_eq!(bill.orders, [placed]);

    // A late retry of the lost order is told it was given up, and orders nothing.
    let status = assert_error(
        healthy.place_order(order(&[(rice, 4)], "lost")).await,
        Code::FailedPrecondition,
        "RESERVATION_CLOSED",
    );
    let given_up = status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("order_id").cloned());
    assert_eq!(given_up.as_deref(), Some(lost.as_str()));
    assert_eq!(
        reservation(&stack, &lost).await,
        ReservationStatus::Released
    );
    assert_eq!(shop.stock(&stack, rice).await, 7);
    assert_eq!(current(&mut healthy).await.expect("bill").orders.len(), 1);
    // A new key orders as usual.
    healthy
        .place_order(order(&[(rice, 4)], "lost-again"))
        .await
        .expect("a fresh order");
    assert_eq!(shop.stock(&stack, rice).await, 3);

    faulty.stop(Duration::from_secs(5)).await.expect("stop");
    stack.stop().await;
}
