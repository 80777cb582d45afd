//! Reading bills and payments: a store's open bills with their orders, and its payments
//! in a time range, newest first, in pages.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pos_common::clock::ManualClock;
use pos_trade_storage::{Committed, Paid, PaymentCursor, PaymentMethod, PaymentPage};

use super::{CARD_H, Fixture, STORE_ID, device, new_order, new_payment, store};
use crate::support::Engine;

crate::on_both_engines!(
    open_trades_lists_only_the_stores_open_bills_with_their_orders_or_heads,
    payments_are_listed_in_their_range_newest_first_in_pages,
);

async fn open_trades_lists_only_the_stores_open_bills_with_their_orders_or_heads(engine: Engine) {
    let f = Fixture::new(engine).await;
    // Device 3 orders twice, device 2 once, device 1 orders and pays; device 9 is
    // another store's.
    for (dev, id) in [(3, "o-1"), (2, "o-2"), (3, "o-3"), (1, "o-4")] {
        f.order(device(dev), id, id, &[(1, "A", 100, 1), (2, "B", 50, 2)])
            .await;
    }
    let Paid::Paid { .. } = f.pay(device(1), "p", PaymentMethod::Cash, None).await else {
        panic!("paid");
    };
    let Committed::Placed { .. } = f
        .storage
        .commit_order(&new_order(
            store(2),
            device(9),
            "o-5",
            "k",
            &[(1, "A", 100, 1)],
        ))
        .await
        .expect("commit")
    else {
        panic!("placed");
    };
    let open = f.storage.open_trades(store(STORE_ID)).await.expect("open");
    let listed: Vec<(i64, Vec<&str>, i64)> = open
        .iter()
        .map(|bill| {
            (
                bill.trade.device_id.get(),
                bill.orders.iter().map(|o| o.id.as_str()).collect(),
                bill.trade.amount,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [(2, vec!["o-2"], 200), (3, vec!["o-1", "o-3"], 400)]
    );
    assert!(
        open.iter()
            .all(|b| b.orders.iter().all(|o| o.lines.len() == 2))
    );
    // The heads are the same bills without their orders.
    let heads = f
        .storage
        .open_trade_heads(store(STORE_ID))
        .await
        .expect("heads");
    let bills: Vec<_> = open.iter().map(|bill| bill.trade.clone()).collect();
    assert_eq!(heads, bills);
    assert_eq!(f.open_bill(device(1)).await, None);
    assert_eq!(
        f.storage.open_trades(store(3)).await.expect("none"),
        Vec::new()
    );
    assert_eq!(
        f.storage.open_trade_heads(store(3)).await.expect("none"),
        Vec::new()
    );
    f.finish().await;
}

async fn payments_are_listed_in_their_range_newest_first_in_pages(engine: Engine) {
    let start: DateTime<Utc> = "2025-03-01T09:00:00Z".parse().expect("instant");
    let clock = ManualClock::new(start);
    let f = Fixture::with_clock(engine, clock.clone()).await;
    let mut paid = Vec::new();
    for i in 1..=5 {
        f.order(device(i), &format!("o-{i}"), "k", &[(1, "A", 1_000 * i, 1)])
            .await;
        let Paid::Paid { payment, .. } = f.pay(device(i), &format!("p-{i}"), CARD_H, None).await
        else {
            panic!("paid");
        };
        paid.push(payment);
        clock.advance(Duration::from_secs(60));
    }
    // Another store's payment in the same minutes is not listed.
    f.storage
        .commit_order(&new_order(
            store(2),
            device(9),
            "o-x",
            "k",
            &[(1, "A", 1, 1)],
        ))
        .await
        .expect("commit");
    f.storage
        .pay(&new_payment(store(2), device(9), "p", CARD_H, None))
        .await
        .expect("pay");

    // [the second payment's minute, the fifth's): the 4th, 3rd and 2nd, newest first.
    let (from, to) = (paid[1].paid_at, paid[4].paid_at);
    let first = f
        .storage
        .payments(store(STORE_ID), from, to, PaymentPage::first(2))
        .await
        .expect("page");
    assert_eq!(first, [paid[3].clone(), paid[2].clone()]);
    let after = first.last().map(PaymentCursor::from);
    let second = f
        .storage
        .payments(store(STORE_ID), from, to, PaymentPage { after, limit: 2 })
        .await
        .expect("page");
    assert_eq!(second, [paid[1].clone()]);
    let after = second.last().map(PaymentCursor::from);
    let third = f
        .storage
        .payments(store(STORE_ID), from, to, PaymentPage { after, limit: 2 })
        .await
        .expect("page");
    assert_eq!(third, []);
    f.finish().await;
}
