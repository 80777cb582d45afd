//! Committing many orders at once (`commit_orders`): each order is answered as
//! `commit_order` would have answered it, the orders committed one after another in the
//! slice's order — shown by committing the same orders one by one on a twin database
//! with the same standing clock — and batches racing each other and payments keep
//! every order on exactly one bill and every bill the sum of its orders.

use std::collections::{HashMap, HashSet};

use chrono::{TimeZone, Utc};
use pos_common::clock::ManualClock;
use pos_trade_storage::{
    Bill, Committed, MAX_BILL_LINES, NewOrder, OrderId, Paid, PaymentMethod, TradeId, TradeStatus,
};

use super::{Fixture, STORE_ID, device, new_order, new_payment, store};
use crate::support::Engine;

crate::on_both_engines!(
    fresh_orders_of_several_devices_are_placed_as_one_by_one,
    a_batch_answers_retries_refusals_and_repeats_as_one_by_one,
    concurrent_batches_and_payments_keep_every_bill_whole,
);

type Lines<'a> = &'a [(i64, &'a str, i64, i64)];

/// The same scenario on two databases of one engine under one standing clock: `batch`
/// commits through `commit_orders`, `single` through `commit_order`, one at a time.
struct Twins {
    batch: Fixture,
    single: Fixture,
}

impl Twins {
    async fn new(engine: Engine) -> Self {
        let start = Utc
            .with_ymd_and_hms(2026, 5, 1, 12, 0, 0)
            .single()
            .expect("instant");
        let clock = ManualClock::new(start);
        Self {
            batch: Fixture::with_clock(engine, clock.clone()).await,
            single: Fixture::with_clock(engine, clock).await,
        }
    }

    /// Commits an order on both databases alike, before the batch.
    async fn order(&self, table: i64, id: &str, key: &str, lines: Lines<'_>) -> Committed {
        let on_batch = self.batch.order(device(table), id, key, lines).await;
        let on_single = self.single.order(device(table), id, key, lines).await;
        assert_eq!(without_bill_ids(&on_batch), without_bill_ids(&on_single));
        on_batch
    }

    async fn settle(&self, id: &str) {
        let id = OrderId::parse(id).expect("id");
        for f in [&self.batch, &self.single] {
            assert!(!f.storage.settle_order(&id).await.expect("settle"));
        }
    }

    /// Commits `orders` both ways; asserts the answers and the open bills are the same
    /// (but for the bills' ids, which depend on the order bills were opened in), and
    /// returns the batch's answers.
    async fn commit(&self, orders: &[NewOrder]) -> Vec<Committed> {
        let batch: Vec<Committed> = self
            .batch
            .storage
            .commit_orders(orders)
            .await
            .into_iter()
            .map(|answer| answer.expect("commit"))
            .collect();
        let mut single = Vec::new();
        for order in orders {
            single.push(
                self.single
                    .storage
                    .commit_order(order)
                    .await
                    .expect("commit"),
            );
        }
        assert_eq!(batch.len(), orders.len());
        for (n, (batched, one_by_one)) in batch.iter().zip(&single).enumerate() {
            assert_eq!(
                without_bill_ids(batched),
                without_bill_ids(one_by_one),
                "order #{n}"
            );
        }
        let open = |f: &Fixture| {
            let storage = f.storage.clone();
            async move {
                let bills = storage.open_trades(store(STORE_ID)).await.expect("read");
                bills.iter().map(bill_without_ids).collect::<Vec<_>>()
            }
        };
        assert_eq!(open(&self.batch).await, open(&self.single).await);
        batch
    }

    async fn finish(self) {
        self.batch.finish().await;
        self.single.finish().await;
    }
}

fn order(table: i64, id: &str, key: &str, lines: Lines<'_>) -> NewOrder {
    new_order(store(STORE_ID), device(table), id, key, lines)
}

/// What stands for a bill's id where the twins' ids may differ.
fn no_bill() -> TradeId {
    TradeId::from_stored(0)
}

fn without_bill_ids(committed: &Committed) -> Committed {
    match committed.clone() {
        Committed::Placed {
            mut order,
            mut trade,
        } => {
            (order.trade_id, trade.id) = (no_bill(), no_bill());
            Committed::Placed { order, trade }
        }
        Committed::Existing {
            mut order,
            mut trade,
        } => {
            (order.trade_id, trade.id) = (no_bill(), no_bill());
            Committed::Existing { order, trade }
        }
        other => other,
    }
}

fn bill_without_ids(bill: &Bill) -> Bill {
    let mut bill = bill.clone();
    bill.trade.id = no_bill();
    for order in &mut bill.orders {
        order.trade_id = no_bill();
    }
    bill
}

fn line_count(bill: &Bill) -> i64 {
    bill.orders.iter().map(|o| o.lines.len() as i64).sum()
}

async fn fresh_orders_of_several_devices_are_placed_as_one_by_one(engine: Engine) {
    let t = Twins::new(engine).await;
    // Devices 1 and 2 have open bills; 3, 4 and 5 have none.
    let Committed::Placed { trade: bill_1, .. } =
        t.order(1, "a-1", "k-1", &[(1, "A", 100, 2)]).await
    else {
        panic!("placed");
    };
    let Committed::Placed { trade: bill_2, .. } = t
        .order(2, "a-2", "k-2", &[(1, "A", 100, 1), (2, "B", 50, 1)])
        .await
    else {
        panic!("placed");
    };
    let batch = [
        order(3, "b-3", "k-3", &[(1, "A", 100, 1)]),
        order(1, "b-1", "k-1b", &[(2, "B", 50, 3), (3, "C", 70, 1)]),
        order(
            4,
            "b-4",
            "k-4",
            &[(3, "C", 70, 2), (1, "A", 100, 1), (2, "B", 50, 1)],
        ),
        order(2, "b-2", "k-2b", &[(1, "A", 100, 5)]),
        order(5, "b-5", "k-5", &[(2, "B", 50, 1)]),
    ];
    let answers = t.commit(&batch).await;
    let before: HashMap<i64, (TradeId, i64)> =
        HashMap::from([(1, (bill_1.id, 200)), (2, (bill_2.id, 150))]);
    let mut bills = HashSet::new();
    for (new, answer) in batch.iter().zip(&answers) {
        let Committed::Placed { order, trade } = answer else {
            panic!("{} placed: {answer:?}", new.order_id.as_str());
        };
        let total = new.total().expect("total");
        assert_eq!((&order.id, order.amount), (&new.order_id, total));
        assert_eq!(order.lines, new.lines());
        assert_eq!((order.trade_id, trade.device_id), (trade.id, new.device_id));
        assert_eq!(trade.status, TradeStatus::Open);
        match before.get(&new.device_id.get()) {
            Some(&(id, amount)) => assert_eq!((trade.id, trade.amount), (id, amount + total)),
            None => assert_eq!((trade.amount, trade.opened_at), (total, order.created_at)),
        }
        assert!(bills.insert(trade.id), "one bill per device");
        // The bill read back is the one answered, this order its last.
        let bill = t.batch.open_bill(new.device_id).await.expect("open bill");
        assert_eq!(&bill.trade, trade);
        assert_eq!(bill.orders.last(), Some(order));
        assert_eq!(
            bill.orders.iter().map(|o| o.amount).sum::<i64>(),
            trade.amount
        );
    }
    // Each bill counts the lines the batch added: device 1's (3 lines) takes exactly
    // what is left up to the limit, and not one line more.
    let bill = t.batch.open_bill(device(1)).await.expect("bill");
    assert_eq!(line_count(&bill), 3);
    let rest = MAX_BILL_LINES - line_count(&bill);
    let fill: Vec<(i64, &str, i64, i64)> = (1..=rest).map(|p| (p, "T", 1, 1)).collect();
    let filled = t.batch.order(device(1), "fill", "fill", &fill).await;
    assert!(matches!(filled, Committed::Placed { .. }), "{filled:?}");
    assert_eq!(
        t.batch
            .order(device(1), "more", "more", &[(1, "T", 1, 1)])
            .await,
        Committed::BillFull
    );
    t.finish().await;
}

async fn a_batch_answers_retries_refusals_and_repeats_as_one_by_one(engine: Engine) {
    let t = Twins::new(engine).await;
    let a: Lines = &[(1, "A", 100, 2)];
    let Committed::Placed { order: first, .. } = t.order(1, "o-1", "k-1", a).await else {
        panic!("placed");
    };
    t.order(2, "o-2", "k-2", a).await;
    t.settle("o-3").await;
    t.order(
        4,
        "o-4",
        "k-4",
        &[(1, "Gold", 4_000_000_000_000_000_000, 2)],
    )
    .await;
    let almost_full: Vec<(i64, &str, i64, i64)> =
        (1..MAX_BILL_LINES).map(|p| (p, "T", 1, 1)).collect();
    t.order(5, "o-5", "k-5", &almost_full).await;
    t.order(8, "o-8", "k-8", a).await;
    let before = |table: i64| t.batch.open_bill(device(table));
    let (bill_4, bill_5) = (before(4).await, before(5).await);

    let gold: Lines = &[(1, "Gold", 2_000_000_000_000_000_000, 1)];
    let two: Lines = &[(1, "T", 1, 1), (2, "T", 1, 1)];
    let batch = [
        // A retry under a new order id, and a key reused for another request.
        order(1, "o-1-retry", "k-1", a),
        order(2, "o-2b", "k-2", &[(2, "B", 100, 1)]),
        // Given up before; past the largest amount; past the line limit.
        order(3, "o-3", "k-3", a),
        order(4, "o-4b", "k-4b", gold),
        order(5, "o-5b", "k-5b", two),
        // Two orders of one device, around orders of others.
        order(6, "o-6a", "k-6a", &[(1, "A", 100, 1)]),
        order(7, "o-7", "k-7", &[(2, "B", 300, 1)]),
        order(6, "o-6b", "k-6b", &[(2, "B", 300, 2)]),
        order(8, "o-8b", "k-8b", &[(3, "C", 10, 1)]),
        // The same order twice in the batch.
        order(9, "o-9", "k-9", a),
        order(9, "o-9", "k-9", a),
        // An order overflowing on its own; another device's order id.
        order(10, "o-10", "k-10", &[(1, "Gold", i64::MAX, 2)]),
        order(11, "o-1", "k-1", a),
    ];
    let answers = t.commit(&batch).await;
    let placed = |n: usize| match &answers[n] {
        Committed::Placed { order, trade } => (order.clone(), trade.clone()),
        other => panic!("#{n} placed: {other:?}"),
    };
    let Committed::Existing { order: retried, .. } = &answers[0] else {
        panic!("a retry: {:?}", answers[0]);
    };
    assert_eq!(retried, &first);
    let refused = [
        (1, Committed::KeyReused),
        (2, Committed::Abandoned),
        (3, Committed::Overflow),
        (4, Committed::BillFull),
        (11, Committed::Overflow),
        (12, Committed::KeyReused),
    ];
    for (n, answer) in refused {
        assert_eq!(answers[n], answer, "#{n}");
    }
    // Refused orders changed nothing.
    assert_eq!(before(4).await, bill_4);
    assert_eq!(before(5).await, bill_5);
    assert_eq!(before(3).await, None);
    assert_eq!(before(10).await, None);
    assert_eq!(before(11).await, None);
    t.settle("o-3").await;
    // Device 6's orders went onto one bill in the slice's order.
    let ((a6, bill_a6), (b6, bill_b6)) = (placed(5), placed(7));
    assert_eq!(bill_a6.id, bill_b6.id);
    assert_eq!((bill_a6.amount, bill_b6.amount), (100, 700));
    assert_eq!(before(6).await.expect("bill").orders, [a6, b6]);
    assert_eq!(placed(6).1.amount, 300);
    assert_eq!(placed(8).1.amount, 210);
    // The repeat is answered with the first.
    let (o9, bill_9) = placed(9);
    assert_eq!(
        answers[10],
        Committed::Existing {
            order: o9,
            trade: bill_9
        }
    );
    t.finish().await;
}

/// Tablets' batches race each other (overlapping devices, some devices twice in one
/// batch, one key sent by every tablet under its own order id) and the counter's
/// payments: nothing fails, every order placed is on exactly one bill, each bill is the
/// sum of its orders, and each paid bill was paid its amount.
async fn concurrent_batches_and_payments_keep_every_bill_whole(engine: Engine) {
    const TABLETS: i64 = 4;
    const ROUNDS: i64 = 5;
    const DEVICES: i64 = 12;
    let f = Fixture::new(engine).await;
    let batches = (0..TABLETS).map(|tablet| {
        let storage = f.storage.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for round in 0..ROUNDS {
                // Seven devices in a row, tablets' rows overlapping; every other round
                // the first device orders twice.
                let first = tablet * 3 + round * 5;
                let devices = (0..7)
                    .map(|i| first + i)
                    .chain((round % 2 == 0).then_some(first));
                let mut batch: Vec<NewOrder> = (0..)
                    .zip(devices)
                    .map(|(i, d)| {
                        let id = format!("t{tablet}-r{round}-{i}");
                        let lines = [(1 + i, "P", 10 * (1 + i), 1 + round)];
                        order(1 + d % DEVICES, &id, &id, &lines)
                    })
                    .collect();
                let shared = format!("shared-{round}");
                let id = format!("{shared}-t{tablet}");
                batch.push(order(1 + round % DEVICES, &id, &shared, &[(9, "S", 5, 1)]));
                let committed = storage.commit_orders(&batch).await;
                for (new, answer) in batch.into_iter().zip(committed) {
                    answers.push((new, answer.expect("commit")));
                }
            }
            answers
        })
    });
    let payments = (0..2).map(|counter| {
        let storage = f.storage.clone();
        tokio::spawn(async move {
            let mut paid = Vec::new();
            for n in 0..12 {
                let table = device(1 + (n * 2 + counter) % DEVICES);
                let key = format!("pay-{counter}-{n}");
                let payment = new_payment(store(STORE_ID), table, &key, PaymentMethod::Cash, None);
                match storage.pay(&payment).await.expect("pay") {
                    Paid::Paid { payment, trade } => paid.push((payment, trade)),
                    Paid::NoOpenTrade => {}
                    other => panic!("{other:?}"),
                }
                tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            }
            paid
        })
    });
    let (committed, paid) = futures::future::join(
        futures::future::try_join_all(batches),
        futures::future::try_join_all(payments),
    )
    .await;
    let committed: Vec<_> = committed.expect("join").into_iter().flatten().collect();
    let paid: Vec<_> = paid.expect("join").into_iter().flatten().collect();

    // Each tablet's own orders are placed; of each shared key, one order is, and the
    // other tablets' are answered with it.
    let mut placed: HashMap<OrderId, TradeId> = HashMap::new();
    let mut shared: HashMap<String, Vec<Committed>> = HashMap::new();
    for (new, answer) in &committed {
        let key = new.idempotency_key.as_str();
        if key.starts_with("shared-") {
            shared
                .entry(key.to_owned())
                .or_default()
                .push(answer.clone());
        } else {
            assert!(matches!(answer, Committed::Placed { .. }), "{answer:?}");
        }
        if let Committed::Placed { order, trade } = answer {
            assert_eq!(order.trade_id, trade.id);
            assert!(placed.insert(order.id.clone(), trade.id).is_none());
        }
    }
    for (key, answers) in &shared {
        let winners: Vec<_> = answers
            .iter()
            .filter_map(|a| match a {
                Committed::Placed { order, .. } => Some(order),
                _ => None,
            })
            .collect();
        assert_eq!(winners.len(), 1, "{key}: {answers:?}");
        for answer in answers {
            match answer {
                Committed::Placed { .. } => {}
                Committed::Existing { order, .. } => assert_eq!(order, winners[0]),
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    // Every bill any order went onto, read back whole.
    let bill_ids: HashSet<TradeId> = placed.values().copied().collect();
    let mut on_bills: HashMap<OrderId, TradeId> = HashMap::new();
    for id in &bill_ids {
        let bill = f
            .storage
            .trade(store(STORE_ID), *id)
            .await
            .expect("read")
            .expect("bill");
        assert_eq!(
            bill.orders.iter().map(|o| o.amount).sum::<i64>(),
            bill.trade.amount,
            "a bill is the sum of its orders"
        );
        for order in &bill.orders {
            assert!(on_bills.insert(order.id.clone(), *id).is_none());
        }
        let payment = f
            .storage
            .trade_payment(store(STORE_ID), *id)
            .await
            .expect("read");
        match (bill.trade.status, payment) {
            (TradeStatus::Open, None) => {}
            (TradeStatus::Paid, Some(payment)) => {
                assert_eq!(payment.amount, bill.trade.amount, "paid its amount");
                assert!(
                    bill.orders
                        .iter()
                        .all(|o| Some(o.created_at) <= bill.trade.paid_at),
                    "no order after the payment"
                );
            }
            (status, payment) => panic!("{status:?} with {payment:?}"),
        }
    }
    assert_eq!(
        on_bills, placed,
        "every order placed is on its bill, and only those"
    );
    for (payment, trade) in &paid {
        assert_eq!(payment.amount, trade.amount);
        assert!(bill_ids.contains(&trade.id));
    }
    f.finish().await;
}
