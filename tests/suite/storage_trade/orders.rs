//! Committing orders: the first opens the device's bill, later ones add to it, retries
//! are answered, reused keys refused, overflowing bills refused, and racing commits
//! settle on one bill and one order per key.

use pos_trade_storage::{
    Category, Committed, IdempotencyKey, MAX_BILL_LINES, OrderId, Paid, PaymentMethod, TradeStatus,
};

use super::{Fixture, device};
use crate::support::Engine;

crate::on_both_engines!(
    the_first_order_opens_a_bill_and_later_ones_add_to_it,
    a_retry_answers_the_first_commit_and_a_reused_key_is_refused,
    ten_concurrent_commits_of_one_key_make_one_order,
    twenty_concurrent_orders_of_one_device_share_one_bill,
    an_order_past_the_largest_amount_changes_nothing,
    a_bill_takes_at_most_its_line_limit_and_a_paid_one_makes_room,
    settling_an_order_id_says_whether_it_was_committed_and_fences_it_off,
    commits_racing_settlements_agree_on_every_order_id,
);

async fn the_first_order_opens_a_bill_and_later_ones_add_to_it(engine: Engine) {
    let f = Fixture::new(engine).await;
    let table = device(7);
    assert_eq!(f.open_bill(table).await, None);
    let Committed::Placed { order, trade } = f
        .order(
            table,
            "o-1",
            "k-1",
            &[(2, "Kimchi", 500, 3), (1, "Bibimbap", 9_000, 1)],
        )
        .await
    else {
        panic!("placed");
    };
    assert_eq!((trade.status, trade.amount), (TradeStatus::Open, 10_500));
    assert_eq!(order.amount, 10_500);
    assert_eq!(trade.paid_at, None);
    // Lines come in product id order, each with its amount.
    let lines: Vec<(i64, &str, i64, i64, i64)> = order
        .lines
        .iter()
        .map(|l| {
            (
                l.product_id.get(),
                l.product_name.as_str(),
                l.unit_price,
                l.count,
                l.amount,
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (1, "Bibimbap", 9_000, 1, 9_000),
            (2, "Kimchi", 500, 3, 1_500)
        ]
    );
    assert!(order.lines.iter().all(|l| l.category == Category::MainMenu));

    let Committed::Placed {
        order: second,
        trade: same,
    } = f.order(table, "o-2", "k-2", &[(3, "Sikhye", 300, 2)]).await
    else {
        panic!("placed");
    };
    assert_eq!(same.id, trade.id);
    assert_eq!(same.amount, 11_100);
    // The bill read back is what the commits returned, orders oldest first.
    let bill = f.open_bill(table).await.expect("open bill");
    assert_eq!(bill.trade, same);
    assert_eq!(bill.orders, [order.clone(), second]);
    assert_eq!(
        bill.orders.iter().map(|o| o.amount).sum::<i64>(),
        bill.trade.amount
    );
    // Another device has a bill of its own.
    let Committed::Placed { trade: other, .. } = f
        .order(device(8), "o-3", "k-1", &[(1, "Bibimbap", 9_000, 1)])
        .await
    else {
        panic!("placed");
    };
    assert_ne!(other.id, trade.id);
    f.finish().await;
}

async fn a_retry_answers_the_first_commit_and_a_reused_key_is_refused(engine: Engine) {
    let f = Fixture::new(engine).await;
    let table = device(1);
    let Committed::Placed { order, trade } = f.order(table, "o-1", "k", &[(1, "A", 100, 2)]).await
    else {
        panic!("placed");
    };
    // The same key and request (even under a new order id): the first commit.
    assert_eq!(
        f.order(table, "o-1-retry", "k", &[(1, "A", 100, 2)]).await,
        Committed::Existing {
            order: order.clone(),
            trade: trade.clone()
        }
    );
    // The same order id and request under another key: the first commit too.
    assert_eq!(
        f.order(table, "o-1", "k-other", &[(1, "A", 100, 2)]).await,
        Committed::Existing {
            order: order.clone(),
            trade: trade.clone()
        }
    );
    // The key, or the order id, for another request: refused.
    assert_eq!(
        f.order(table, "o-2", "k", &[(1, "A", 100, 3)]).await,
        Committed::KeyReused
    );
    assert_eq!(
        f.order(table, "o-1", "k-2", &[(2, "B", 100, 1)]).await,
        Committed::KeyReused
    );
    // Another device's order id is not this device's to answer.
    assert_eq!(
        f.order(device(2), "o-1", "k", &[(1, "A", 100, 2)]).await,
        Committed::KeyReused
    );
    // Nothing changed.
    let bill = f.open_bill(table).await.expect("bill");
    assert_eq!(bill.trade, trade);
    assert_eq!(bill.orders, std::slice::from_ref(&order));
    assert_eq!(f.open_bill(device(2)).await, None);
    let key = IdempotencyKey::parse("k").expect("key");
    assert_eq!(
        f.storage.order_by_key(table, &key).await.expect("read"),
        Some((order, trade))
    );
    assert_eq!(
        f.storage.order_by_key(device(2), &key).await.expect("read"),
        None
    );
    f.finish().await;
}

async fn ten_concurrent_commits_of_one_key_make_one_order(engine: Engine) {
    let f = Fixture::new(engine).await;
    let table = device(1);
    let commits = (0..10).map(|i| {
        let storage = f.storage.clone();
        tokio::spawn(async move {
            let order = super::new_order(
                super::store(super::STORE_ID),
                table,
                &format!("o-{i}"),
                "same-key",
                &[(1, "A", 100, 1)],
            );
            storage.commit_order(&order).await.expect("commit")
        })
    });
    let outcomes: Vec<Committed> = futures::future::try_join_all(commits).await.expect("join");
    let placed: Vec<_> = outcomes
        .iter()
        .filter_map(|c| match c {
            Committed::Placed { order, .. } => Some(order.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(placed.len(), 1, "{outcomes:?}");
    for outcome in &outcomes {
        match outcome {
            Committed::Placed { .. } => {}
            Committed::Existing { order, .. } => assert_eq!(order, &placed[0]),
            other => panic!("unexpected {other:?}"),
        }
    }
    let bill = f.open_bill(table).await.expect("bill");
    assert_eq!(bill.orders, placed);
    assert_eq!(bill.trade.amount, 100);
    f.finish().await;
}

async fn twenty_concurrent_orders_of_one_device_share_one_bill(engine: Engine) {
    let f = Fixture::new(engine).await;
    let table = device(1);
    let commits = (1..=20).map(|i| {
        let storage = f.storage.clone();
        tokio::spawn(async move {
            let order = super::new_order(
                super::store(super::STORE_ID),
                table,
                &format!("o-{i}"),
                &format!("k-{i}"),
                &[(i, "P", 100 * i, 1)],
            );
            storage.commit_order(&order).await.expect("commit")
        })
    });
    let outcomes = futures::future::try_join_all(commits).await.expect("join");
    let mut trades = Vec::new();
    for outcome in outcomes {
        let Committed::Placed { trade, .. } = outcome else {
            panic!("every order is placed: {outcome:?}");
        };
        trades.push(trade.id);
    }
    trades.dedup();
    assert_eq!(trades.len(), 1, "one bill: {trades:?}");
    let open = f
        .storage
        .open_trades(super::store(super::STORE_ID))
        .await
        .expect("open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].orders.len(), 20);
    assert_eq!(open[0].trade.amount, (1..=20).map(|i| 100 * i).sum::<i64>());
    f.finish().await;
}

async fn an_order_past_the_largest_amount_changes_nothing(engine: Engine) {
    let f = Fixture::new(engine).await;
    let table = device(1);
    let Committed::Placed { trade, order } = f
        .order(
            table,
            "o-1",
            "k-1",
            &[(1, "Gold", 4_000_000_000_000_000_000, 2)],
        )
        .await
    else {
        panic!("8e18 still fits");
    };
    // The bill would pass i64::MAX.
    assert_eq!(
        f.order(
            table,
            "o-2",
            "k-2",
            &[(1, "Gold", 2_000_000_000_000_000_000, 1)]
        )
        .await,
        Committed::Overflow
    );
    // An order that overflows on its own, on another device's (empty) bill.
    assert_eq!(
        f.order(device(2), "o-3", "k-3", &[(1, "Gold", i64::MAX, 2)])
            .await,
        Committed::Overflow
    );
    let bill = f.open_bill(table).await.expect("bill");
    assert_eq!(bill.trade, trade);
    assert_eq!(bill.orders, [order]);
    assert_eq!(f.open_bill(device(2)).await, None);
    for id in ["o-2", "o-3"] {
        let id = OrderId::parse(id).expect("id");
        assert!(!f.storage.settle_order(&id).await.expect("settle"));
    }
    f.finish().await;
}

async fn a_bill_takes_at_most_its_line_limit_and_a_paid_one_makes_room(engine: Engine) {
    let f = Fixture::new(engine).await;
    let table = device(1);
    // Orders of 100 lines fill the bill to one line short of the limit...
    let full_orders = (MAX_BILL_LINES - 1) / 100;
    let lines: Vec<(i64, &str, i64, i64)> = (1..=100).map(|p| (p, "Tteok", 10, 1)).collect();
    for i in 0..full_orders {
        let id = format!("o-{i}");
        let placed = f.order(table, &id, &id, &lines).await;
        assert!(matches!(placed, Committed::Placed { .. }), "{placed:?}");
    }
    let short = MAX_BILL_LINES - 1 - full_orders * 100;
    let rest: Vec<(i64, &str, i64, i64)> = (1..=short).map(|p| (p, "Tteok", 10, 1)).collect();
    if !rest.is_empty() {
        let placed = f.order(table, "o-rest", "o-rest", &rest).await;
        assert!(matches!(placed, Committed::Placed { .. }), "{placed:?}");
    }
    // ...one more line fits, two do not, and a refused order changes nothing.
    let before = f.open_bill(table).await.expect("bill");
    let two = [(1, "Tteok", 10, 1), (2, "Tteok", 10, 1)];
    assert_eq!(
        f.order(table, "o-two", "o-two", &two).await,
        Committed::BillFull
    );
    assert_eq!(f.open_bill(table).await.as_ref(), Some(&before));
    let one = [(1, "Tteok", 10, 1)];
    let Committed::Placed { trade, .. } = f.order(table, "o-one", "o-one", &one).await else {
        panic!("the last line fits");
    };
    let lines_on_bill = |bill: &pos_trade_storage::Bill| -> i64 {
        bill.orders.iter().map(|o| o.lines.len() as i64).sum()
    };
    let bill = f.open_bill(table).await.expect("bill");
    assert_eq!(lines_on_bill(&bill), MAX_BILL_LINES);
    assert_eq!(trade.amount, MAX_BILL_LINES * 10);
    assert_eq!(
        f.order(table, "o-more", "o-more", &one).await,
        Committed::BillFull
    );
    // Paying it makes room: the next order opens a new bill.
    let paid = f
        .pay(table, "pay", PaymentMethod::Cash, Some(MAX_BILL_LINES * 10))
        .await;
    assert!(matches!(paid, Paid::Paid { .. }), "{paid:?}");
    let Committed::Placed { trade: next, .. } = f.order(table, "o-next", "o-next", &two).await
    else {
        panic!("a new bill");
    };
    assert_ne!(next.id, trade.id);
    assert_eq!(next.amount, 20);
    // Refused orders were never committed: their ids can be given up.
    let refused = OrderId::parse("o-two").expect("id");
    assert!(!f.storage.settle_order(&refused).await.expect("settle"));
    f.finish().await;
}

async fn settling_an_order_id_says_whether_it_was_committed_and_fences_it_off(engine: Engine) {
    let f = Fixture::new(engine).await;
    let committed = OrderId::parse("o-1").expect("id");
    f.order(device(1), "o-1", "k-1", &[(1, "A", 100, 1)]).await;
    assert!(f.storage.settle_order(&committed).await.expect("settle"));
    // Settled again, or committed again (a retry), it stays committed.
    assert!(f.storage.settle_order(&committed).await.expect("settle"));
    assert!(matches!(
        f.order(device(1), "o-1", "k-1", &[(1, "A", 100, 1)]).await,
        Committed::Existing { .. }
    ));

    // An order id settled before its commit is given up: the late commit changes nothing.
    let late = OrderId::parse("o-2").expect("id");
    assert!(!f.storage.settle_order(&late).await.expect("settle"));
    assert!(!f.storage.settle_order(&late).await.expect("settle"));
    assert_eq!(
        f.order(device(1), "o-2", "k-2", &[(1, "A", 100, 5)]).await,
        Committed::Abandoned
    );
    let bill = f.open_bill(device(1)).await.expect("bill");
    assert_eq!((bill.trade.amount, bill.orders.len()), (100, 1));
    assert!(!f.storage.settle_order(&late).await.expect("settle"));
    f.finish().await;
}

/// Commits and settlements of the same ids racing: every id ends either committed and
/// settled as such, or given up and never committed — never both, never neither.
async fn commits_racing_settlements_agree_on_every_order_id(engine: Engine) {
    let f = Fixture::new(engine).await;
    let ids: Vec<String> = (0..30).map(|n| format!("race-{n}")).collect();
    let commits = ids.iter().enumerate().map(|(n, id)| {
        let f = &f;
        async move {
            let key = format!("k-{n}");
            f.order(device(1), id, &key, &[(1, "A", 10, 1)]).await
        }
    });
    let settlements = ids.iter().map(|id| {
        let f = &f;
        async move {
            f.storage
                .settle_order(&OrderId::parse(id).expect("id"))
                .await
                .expect("settle")
        }
    });
    let (committed, settled) = futures::future::join(
        futures::future::join_all(commits),
        futures::future::join_all(settlements),
    )
    .await;
    let mut placed = 0;
    for ((id, commit), exists) in ids.iter().zip(&committed).zip(&settled) {
        match commit {
            Committed::Placed { .. } => {
                assert!(*exists, "{id}: committed, yet settled as missing");
                placed += 1;
            }
            Committed::Abandoned => assert!(!*exists, "{id}: given up, yet settled as there"),
            other => panic!("{id}: {other:?}"),
        }
    }
    let bill_amount = f.open_bill(device(1)).await.map_or(0, |b| b.trade.amount);
    assert_eq!(bill_amount, placed * 10);
    f.finish().await;
}
