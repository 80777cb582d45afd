//! Paying bills: the whole open bill, once, for the amount the payer saw; retries are
//! answered, reused keys refused; payments racing each other or racing orders never
//! pay a bill twice nor leave an order on a paid bill.

use std::collections::HashMap;

use chrono::Utc;
use pos_trade_storage::{
    CardCompany, Committed, Paid, PaymentMethod, PaymentPage, TradeId, TradeStatus,
};

use super::{CARD_H, Fixture, STORE_ID, device, store};
use crate::support::Engine;

crate::on_both_engines!(
    paying_closes_the_bill_and_the_next_order_opens_a_new_one,
    each_card_company_takes_its_own_fee,
    two_concurrent_payments_of_one_bill_make_one_payment,
    orders_racing_payments_never_land_on_a_paid_bill,
);

async fn paying_closes_the_bill_and_the_next_order_opens_a_new_one(engine: Engine) {
    let f = Fixture::new(engine).await;
    let table = device(1);
    assert_eq!(f.pay(table, "p-0", CARD_H, None).await, Paid::NoOpenTrade);
    let Committed::Placed { trade: open, .. } =
        f.order(table, "o-1", "k-1", &[(1, "A", 1_300, 3)]).await
    else {
        panic!("placed");
    };
    // The payer saw another amount: nothing is paid.
    assert_eq!(
        f.pay(table, "p-1", CARD_H, Some(3_000)).await,
        Paid::AmountChanged { actual: 3_900 }
    );
    assert_eq!(f.open_bill(table).await.expect("still open").trade, open);
    let payment_of = |store_id: i64| {
        let storage = f.storage.clone();
        async move {
            storage
                .trade_payment(store(store_id), open.id)
                .await
                .expect("read")
        }
    };
    assert_eq!(payment_of(STORE_ID).await, None, "an open bill has none");

    let Paid::Paid { payment, trade } = f.pay(table, "p-1", CARD_H, Some(3_900)).await else {
        panic!("paid");
    };
    assert_eq!(trade.id, open.id);
    assert_eq!(trade.status, TradeStatus::Paid);
    assert_eq!(trade.paid_at, Some(payment.paid_at));
    assert_eq!(
        (payment.trade_id, payment.amount, payment.card_fee),
        (open.id, 3_900, 23)
    );
    assert_eq!(payment.method, PaymentMethod::Card(CardCompany::H));
    assert_eq!(f.open_bill(table).await, None);
    let stored = f
        .storage
        .trade(store(STORE_ID), open.id)
        .await
        .expect("read")
        .expect("bill");
    assert_eq!(stored.trade, trade);
    assert_eq!(payment_of(STORE_ID).await, Some(payment.clone()));
    assert_eq!(payment_of(STORE_ID + 1).await, None, "another store's bill");

    // The same payment again: answered; the key for another request: refused.
    assert_eq!(
        f.pay(table, "p-1", CARD_H, Some(3_900)).await,
        Paid::Existing {
            payment: payment.clone(),
            trade: trade.clone()
        }
    );
    assert_eq!(
        f.pay(table, "p-1", PaymentMethod::Cash, Some(3_900)).await,
        Paid::KeyReused
    );
    assert_eq!(f.pay(table, "p-2", CARD_H, None).await, Paid::NoOpenTrade);

    // The next order opens a new bill; the paid one stays as it was.
    let Committed::Placed { trade: next, .. } =
        f.order(table, "o-2", "k-2", &[(1, "A", 1_300, 1)]).await
    else {
        panic!("placed");
    };
    assert_ne!(next.id, open.id);
    assert_eq!((next.status, next.amount), (TradeStatus::Open, 1_300));
    assert_eq!(
        f.storage
            .trade(store(STORE_ID), open.id)
            .await
            .expect("read")
            .expect("bill")
            .trade,
        trade
    );
    // Another store's bill is not this store's.
    assert_eq!(
        f.storage.trade(store(2), open.id).await.expect("read"),
        None
    );
    f.finish().await;
}

async fn each_card_company_takes_its_own_fee(engine: Engine) {
    let f = Fixture::new(engine).await;
    let methods = [
        (PaymentMethod::Card(CardCompany::K), 15),
        (PaymentMethod::Card(CardCompany::H), 23),
        (PaymentMethod::Card(CardCompany::S), 31),
        (PaymentMethod::Cash, 0),
    ];
    for (i, (method, fee)) in (1..).zip(methods) {
        f.order(device(i), &format!("o-{i}"), "k", &[(1, "A", 3_900, 1)])
            .await;
        let Paid::Paid { payment, .. } = f.pay(device(i), &format!("p-{i}"), method, None).await
        else {
            panic!("paid");
        };
        assert_eq!(
            (payment.method, payment.amount, payment.card_fee),
            (method, 3_900, fee)
        );
    }
    f.finish().await;
}

async fn two_concurrent_payments_of_one_bill_make_one_payment(engine: Engine) {
    let f = Fixture::new(engine).await;
    for (round, same_key) in [(1, false), (2, true)] {
        let table = device(round);
        f.order(table, &format!("o-{round}"), "k", &[(1, "A", 1_000, 1)])
            .await;
        let pays = (0..2).map(|i| {
            let storage = f.storage.clone();
            let key = if same_key {
                "p".to_string()
            } else {
                format!("p-{round}-{i}")
            };
            tokio::spawn(async move {
                let payment = super::new_payment(store(STORE_ID), table, &key, CARD_H, Some(1_000));
                storage.pay(&payment).await.expect("pay")
            })
        });
        let outcomes = futures::future::try_join_all(pays).await.expect("join");
        let paid: Vec<_> = outcomes
            .iter()
            .filter(|o| matches!(o, Paid::Paid { .. }))
            .collect();
        assert_eq!(paid.len(), 1, "{outcomes:?}");
        let other = outcomes
            .iter()
            .find(|o| !matches!(o, Paid::Paid { .. }))
            .expect("the other");
        match (same_key, other) {
            (false, Paid::NoOpenTrade) => {}
            (true, Paid::Existing { .. }) => {}
            _ => panic!("round {round}: {outcomes:?}"),
        }
    }
    let from = Utc::now() - chrono::Duration::hours(1);
    let to = Utc::now() + chrono::Duration::hours(1);
    let payments = f
        .storage
        .payments(store(STORE_ID), from, to, PaymentPage::first(10))
        .await
        .expect("list");
    assert_eq!(payments.len(), 2);
    f.finish().await;
}

/// Each round a tablet orders while the counter pays what it last saw; whatever wins,
/// every paid bill's amount is its payment's and the sum of its orders.
async fn orders_racing_payments_never_land_on_a_paid_bill(engine: Engine) {
    let f = Fixture::new(engine).await;
    let table = device(1);
    f.order(table, "o-start", "k-start", &[(1, "A", 100, 1)])
        .await;
    for round in 0..25 {
        let seen = f.open_bill(table).await.map(|bill| bill.trade.amount);
        let storage = f.storage.clone();
        let order = tokio::spawn(async move {
            let order = super::new_order(
                store(STORE_ID),
                table,
                &format!("o-{round}"),
                &format!("k-{round}"),
                &[(1, "A", 100, 1 + round % 3)],
            );
            storage.commit_order(&order).await.expect("commit")
        });
        let storage = f.storage.clone();
        let pay = tokio::spawn(async move {
            let payment = super::new_payment(
                store(STORE_ID),
                table,
                &format!("p-{round}"),
                PaymentMethod::Cash,
                seen,
            );
            storage.pay(&payment).await.expect("pay")
        });
        let (ordered, paid) = (order.await.expect("join"), pay.await.expect("join"));
        assert!(matches!(ordered, Committed::Placed { .. }), "{ordered:?}");
        assert!(
            matches!(
                paid,
                Paid::Paid { .. } | Paid::AmountChanged { .. } | Paid::NoOpenTrade
            ),
            "{paid:?}"
        );
    }
    let from = Utc::now() - chrono::Duration::hours(1);
    let to = Utc::now() + chrono::Duration::hours(1);
    let payments = f
        .storage
        .payments(store(STORE_ID), from, to, PaymentPage::first(100))
        .await
        .expect("list");
    assert!(!payments.is_empty(), "some payment won a race");
    let mut paid_bills: HashMap<TradeId, i64> = HashMap::new();
    let mut orders_on_paid_bills = 0;
    for payment in &payments {
        let bill = f
            .storage
            .trade(store(STORE_ID), payment.trade_id)
            .await
            .expect("read")
            .expect("bill");
        assert_eq!(bill.trade.status, TradeStatus::Paid);
        assert_eq!(bill.trade.amount, payment.amount);
        assert_eq!(
            bill.orders.iter().map(|o| o.amount).sum::<i64>(),
            payment.amount
        );
        assert!(
            bill.orders
                .iter()
                .all(|o| Some(o.created_at) <= bill.trade.paid_at),
            "no order after the payment"
        );
        assert!(
            paid_bills
                .insert(payment.trade_id, payment.amount)
                .is_none()
        );
        orders_on_paid_bills += bill.orders.len();
    }
    // Every order is on exactly one bill: a paid one or the open one.
    let open = f.open_bill(table).await.map_or(0, |bill| bill.orders.len());
    assert_eq!(orders_on_paid_bills + open, 26);
    f.finish().await;
}
