//! The store role's reconciler in the running stack: a reservation nobody confirmed is
//! settled by asking the trade role in the same process (bound after the store was
//! built), on both engines. An order committed without its confirmation keeps its
//! stock; an order that never came gives it back, and its id can never be committed.

use std::time::Duration;

use pos_common::{
    clock,
    domain::{DeviceId, StoreId},
};
use pos_proto::v1::{self as pb, store_internal_service_client::StoreInternalServiceClient};
use pos_store::storage::ReservationStatus;
use pos_trade_storage::{Category, Committed, IdempotencyKey, NewOrder, OrderId, SnapshotLine};

use super::{Shop, order};
use crate::support::{
    Engine,
    stack::{StackOptions, TestStack},
};

crate::on_both_engines!(stale_reservations_are_settled_with_the_trade_role);

async fn status(stack: &TestStack, id: &str) -> ReservationStatus {
    stack
        .store_storage
        .reservation(&pos_store::storage::OrderId::parse(id).expect("id"))
        .await
        .expect("read")
        .expect("a reservation")
        .status
}

async fn stale_reservations_are_settled_with_the_trade_role(engine: Engine) {
    let stack = TestStack::start_with(
        engine,
        StackOptions {
            flags: [
                "--rate-limit-per-minute",
                "100000",
                "--reservation-timeout",
                "1",
            ]
            .map(String::from)
            .to_vec(),
            ..StackOptions::default()
        },
    )
    .await;
    let shop = Shop::open(&stack, "late@example.com", &[("Rice", 1_000, 10)], 1).await;
    let rice = shop.products[0];
    // The trade role's first step for two orders, as if it died right after each.
    let mut store = StoreInternalServiceClient::new(stack.stack.peers["store"].peer.clone());
    for (id, count) in [("never-committed", 4), ("committed", 3)] {
        store
            .reserve_stock(crate::support::with_bearer(
                pb::ReserveStockRequest {
                    tablet: None,
                    order_id: id.into(),
                    store_id: shop.store_id,
                    lines: vec![pb::StockRequestLine {
                        product_id: rice,
                        count,
                    }],
                },
                &stack.issuer.service("trade"),
            ))
            .await
            .expect("reserve");
    }
    // Its second step happened for one of them: the order is on the bill.
    let trades = pos_trade::open_storage(&stack.database, clock::system());
    let committed = trades
        .commit_order(
            &NewOrder::new(
                OrderId::parse("committed").expect("id"),
                StoreId::from_stored(shop.store_id),
                DeviceId::from_stored(shop.device(0)),
                IdempotencyKey::parse("k-committed").expect("key"),
                "rice:3".into(),
                vec![SnapshotLine {
                    product_id: pos_common::domain::ProductId::from_stored(rice),
                    product_name: "Rice".into(),
                    category: Category::MainMenu,
                    unit_price: 1_000,
                    count: 3,
                }],
            )
            .expect("order"),
        )
        .await
        .expect("commit");
    assert!(
        matches!(committed, Committed::Placed { .. }),
        "{committed:?}"
    );
    assert_eq!(shop.stock(&stack, rice).await, 3);

    // Within a few rounds (timeout 1 s, a round every second) both are settled.
    let settled = async {
        loop {
            let statuses = (
                status(&stack, "never-committed").await,
                status(&stack, "committed").await,
            );
            if statuses == (ReservationStatus::Released, ReservationStatus::Confirmed) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), settled)
        .await
        .expect("the reconciler settles both within 15 s");
    assert_eq!(
        shop.stock(&stack, rice).await,
        7,
        "the 4 never ordered came back"
    );

    // The order that never came cannot come now: its late commit changes nothing.
    let late = trades
        .commit_order(
            &NewOrder::new(
                OrderId::parse("never-committed").expect("id"),
                StoreId::from_stored(shop.store_id),
                DeviceId::from_stored(shop.device(0)),
                IdempotencyKey::parse("k-never").expect("key"),
                "rice:4".into(),
                vec![SnapshotLine {
                    product_id: pos_common::domain::ProductId::from_stored(rice),
                    product_name: "Rice".into(),
                    category: Category::MainMenu,
                    unit_price: 1_000,
                    count: 4,
                }],
            )
            .expect("order"),
        )
        .await
        .expect("commit");
    assert_eq!(late, Committed::Abandoned);
    assert_eq!(shop.stock(&stack, rice).await, 7);
    // And ordering goes on as usual.
    shop.tablet(&stack, 0)
        .place_order(order(&[(rice, 2)], "after"))
        .await
        .expect("order");
    assert_eq!(shop.stock(&stack, rice).await, 5);
    stack.stop().await;
}
