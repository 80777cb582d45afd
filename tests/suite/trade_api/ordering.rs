//! Tablets ordering: bills with snapshot lines and totals, stock taken in the store all or
//! nothing, idempotency under concurrency, and the fields of bad requests.

use pos_proto::v1::{self as pb, ProductCategory, TradeStatus};
use tonic::Code;

use super::{Shop, current, order, store_client};
use crate::support::{Engine, assert_error, stack::TestStack, violated_fields};

crate::on_both_engines!(
    trade_a_tablet_orders_twice_onto_one_open_bill,
    trade_refused_orders_change_nothing,
    trade_one_key_places_one_order_however_often_it_is_sent,
    trade_bad_orders_name_their_fields,
    trade_a_full_bill_takes_no_more_orders_until_paid,
);

async fn trade_a_tablet_orders_twice_onto_one_open_bill(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(
        &stack,
        "twice@example.com",
        &[("Bibimbap", 1000, 100), ("Kimchi", 500, 100)],
        1,
    )
    .await;
    let (bibimbap, kimchi) = (shop.products[0], shop.products[1]);
    let mut tablet = shop.tablet(&stack, 0);
    assert_eq!(current(&mut tablet).await, None, "no bill before ordering");

    let first = tablet
        .place_order(order(&[(bibimbap, 2), (kimchi, 1), (bibimbap, 1)], "o1"))
        .await
        .expect("first order")
        .into_inner();
    let placed = first.order.expect("order");
    assert_eq!(placed.amount, 3500);
    let lines: Vec<(i64, &str, i32, i64, i64, i64)> = placed
        .lines
        .iter()
        .map(|l| {
            let name = l.product_name.as_str();
            (
                l.product_id,
                name,
                l.category,
                l.unit_price,
                l.count,
                l.amount,
            )
        })
        .collect();
    let main = ProductCategory::MainMenu as i32;
    assert_eq!(
        lines,
        [
            (bibimbap, "Bibimbap", main, 1000, 3, 3000),
            (kimchi, "Kimchi", main, 500, 1, 500)
        ],
        "lines merged by product, with the product as ordered"
    );
    let first_bill = first.trade.expect("bill");
    let bill = first_bill.clone();
    // The answer carries the bill's head; its orders are read with GetCurrentTrade.
    assert_eq!(
        (bill.amount, bill.status, bill.orders.len()),
        (3500, TradeStatus::Open as i32, 0)
    );
    assert_eq!(
        (bill.store_id, bill.device_id),
        (shop.store_id, shop.device(0))
    );

    // A later price does not rewrite what was ordered.
    store_client(&stack, &shop.owner)
        .update_product(pb::UpdateProductRequest {
            product_id: kimchi,
            price: Some(800),
            ..Default::default()
        })
        .await
        .expect("new price");
    let second = tablet
        .place_order(order(&[(kimchi, 2)], "o2"))
        .await
        .expect("second order")
        .into_inner();
    assert_eq!(second.order.expect("order").amount, 1600);
    let head = second.trade.expect("bill");
    assert_eq!((head.id, head.amount), (first_bill.id, 5100));
    let bill = current(&mut tablet).await.expect("the bill");
    assert_eq!(bill.orders.len(), 2);
    assert_eq!(bill.orders[0].lines[1].unit_price, 500);
    assert_eq!(bill.orders[1].lines[0].unit_price, 800);
    assert_eq!(
        pb::Trade {
            orders: Vec::new(),
            ..bill
        },
        head
    );
    assert_eq!(shop.stock(&stack, bibimbap).await, 97);
    assert_eq!(shop.stock(&stack, kimchi).await, 97);
    stack.stop().await;
}

async fn trade_refused_orders_change_nothing(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(
        &stack,
        "refused@example.com",
        &[("Few", 1000, 2), ("Gone", 100, 5)],
        1,
    )
    .await;
    let other = Shop::open(&stack, "other@example.com", &[("Theirs", 100, 5)], 0).await;
    let (few, gone) = (shop.products[0], shop.products[1]);
    store_client(&stack, &shop.owner)
        .delete_product(pb::DeleteProductRequest { product_id: gone })
        .await
        .expect("delete");
    let mut tablet = shop.tablet(&stack, 0);

    let status = assert_error(
        tablet.place_order(order(&[(few, 3)], "short")).await,
        Code::FailedPrecondition,
        "OUT_OF_STOCK",
    );
    assert!(status.message().contains(&format!("{few}:2")), "{status:?}");
    for (product, key) in [
        (999_999, "unknown"),
        (other.products[0], "theirs"),
        (gone, "deleted"),
    ] {
        assert_error(
            tablet
                .place_order(order(&[(few, 1), (product, 1)], key))
                .await,
            Code::NotFound,
            "PRODUCT_NOT_FOUND",
        );
    }
    assert_eq!(current(&mut tablet).await, None, "no bill was opened");
    assert_eq!(shop.stock(&stack, few).await, 2);
    assert_eq!(other.stock(&stack, other.products[0]).await, 5);
    // The refused keys were never used: the same key orders once stock allows.
    tablet
        .place_order(order(&[(few, 2)], "short"))
        .await
        .expect("order within stock");
    assert_eq!(shop.stock(&stack, few).await, 0);
    stack.stop().await;
}

async fn trade_one_key_places_one_order_however_often_it_is_sent(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "once@example.com", &[("Mandu", 600, 50)], 1).await;
    let mandu = shop.products[0];
    let attempts = (0..10).map(|_| {
        let mut tablet = shop.tablet(&stack, 0);
        async move { tablet.place_order(order(&[(mandu, 3)], "same")).await }
    });
    let answers = futures::future::join_all(attempts).await;
    let mut ids = Vec::new();
    for answer in answers {
        let answer = answer
            .expect("every attempt answers the order")
            .into_inner();
        ids.push(answer.order.expect("order").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one order: {ids:?}");
    assert_eq!(shop.stock(&stack, mandu).await, 47, "stock taken once");
    let mut tablet = shop.tablet(&stack, 0);
    let bill = current(&mut tablet).await.expect("a bill");
    assert_eq!((bill.orders.len(), bill.amount), (1, 1800));

    let retry = tablet
        .place_order(order(&[(mandu, 1), (mandu, 2)], "same"))
        .await
        .expect("a retry of the same lines")
        .into_inner();
    assert_eq!(retry.order.expect("order").id, ids[0]);
    assert_error(
        tablet.place_order(order(&[(mandu, 4)], "same")).await,
        Code::FailedPrecondition,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_eq!(shop.stock(&stack, mandu).await, 47);
    assert_eq!(current(&mut tablet).await.expect("bill").orders.len(), 1);
    stack.stop().await;
}

async fn trade_bad_orders_name_their_fields(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "fields@example.com", &[("P", 100, 5)], 1).await;
    let p = shop.products[0];
    let mut tablet = shop.tablet(&stack, 0);
    let too_many: Vec<(i64, i64)> = vec![(p, 1); 101];
    let long_key = "k".repeat(129);
    let cases: Vec<(pb::PlaceOrderRequest, Vec<&str>)> = vec![
        (order(&[], "k"), vec!["lines"]),
        (order(&too_many, "k"), vec!["lines"]),
        (order(&[(0, 1)], "k"), vec!["lines[0].product_id"]),
        (order(&[(p, 1), (p, 0)], "k"), vec!["lines[1].count"]),
        (order(&[(p, 10_000_001)], "k"), vec!["lines[0].count"]),
        (order(&[(p, 1)], ""), vec!["idempotency_key"]),
        (order(&[(p, 1)], "has space"), vec!["idempotency_key"]),
        (order(&[(p, 1)], &long_key), vec!["idempotency_key"]),
        (
            order(&[(-1, -1)], ""),
            vec!["lines[0].product_id", "lines[0].count", "idempotency_key"],
        ),
    ];
    for (request, fields) in cases {
        let status = assert_error(
            tablet.place_order(request.clone()).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), fields, "{request:?}");
    }
    assert_eq!(shop.stock(&stack, p).await, 5);
    assert_eq!(current(&mut tablet).await, None);
    stack.stop().await;
}

async fn trade_a_full_bill_takes_no_more_orders_until_paid(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let menu: Vec<(String, i64, i64)> = (0..100).map(|i| (format!("Dish {i}"), 10, 100)).collect();
    let menu: Vec<(&str, i64, i64)> = menu.iter().map(|(n, p, s)| (n.as_str(), *p, *s)).collect();
    let shop = Shop::open(&stack, "full@example.com", &menu, 1).await;
    let mut tablet = shop.tablet(&stack, 0);
    // Twenty orders of a hundred lines fill the bill to its 2,000 lines.
    let every_dish: Vec<(i64, i64)> = shop.products.iter().map(|&p| (p, 1)).collect();
    for i in 0..20 {
        tablet
            .place_order(order(&every_dish, &format!("full-{i}")))
            .await
            .expect("fits on the bill");
    }
    let status = assert_error(
        tablet
            .place_order(order(&every_dish[..1], "one-more"))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["lines"]);
    // The refused order took no stock and is not on the bill.
    assert_eq!(shop.stock(&stack, shop.products[0]).await, 80);
    let bill = current(&mut tablet).await.expect("bill");
    assert_eq!((bill.orders.len(), bill.amount), (20, 20_000));
    shop.as_owner(&stack)
        .pay_cash(pb::PayCashRequest {
            device_id: shop.device(0),
            expected_amount: Some(20_000),
            idempotency_key: "pay-full".into(),
        })
        .await
        .expect("paid");
    // A new request (a refused one's key stays refused) goes onto a new bill.
    let next = tablet
        .place_order(order(&every_dish[..1], "after-paying"))
        .await
        .expect("a new bill takes it")
        .into_inner()
        .trade
        .expect("bill");
    assert_ne!(next.id, bill.id);
    assert_eq!(shop.stock(&stack, shop.products[0]).await, 79);
    stack.stop().await;
}
