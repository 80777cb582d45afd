//! Many tablets ordering at once against scarce stock, over gRPC through the edge: 20
//! tablets of one store, 25 orders each, all 500 in flight together. Afterwards the store
//! and the bills agree: no product below zero, every acknowledged order on its tablet's
//! bill with its lines, refused orders nowhere, the money on the bills exactly the stock
//! that left the store at its price, and no reservation left pending.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use pos_proto::v1::{self as pb, trade_service_client::TradeServiceClient};
use tonic::{Code, transport::Channel};

use super::{Shop, TradeClient, current, order};
use crate::support::{Engine, bearer, reason, stack::TestStack};

crate::on_both_engines!(trade_concurrent_orders_keep_stock_and_bills_in_agreement);

const TABLETS: usize = 20;
const ORDERS_PER_TABLET: usize = 25;

/// (name, price, stock). The 500 orders ask for about 310 of each product, several
/// times what there is: the first orders always fit, later ones run out.
const MENU: [(&str, i64, i64); 4] = [
    ("Bibimbap", 9_000, 120),
    ("Bulgogi", 12_000, 100),
    ("Kimchi", 500, 150),
    ("Soju", 4_000, 80),
];

/// How often one request is sent again after a retryable failure (a busy database, a
/// deadline) before the test gives up on it.
const MAX_ATTEMPTS: usize = 30;

/// What became of one order, once it was answered for good.
enum Outcome {
    Placed(pb::Order),
    OutOfStock,
    /// RESERVATION_CLOSED: it took so long that the store's reconciler gave it up;
    /// nothing was ordered.
    GivenUp,
}

/// Tablet `tablet`'s order number `index`: one or two lines over the menu, so orders
/// compete for every product and two-line orders are taken all or nothing.
fn lines(products: &[i64], tablet: usize, index: usize) -> Vec<(i64, i64)> {
    let first = products[(tablet + index) % products.len()];
    let count = 1 + (index % 3) as i64;
    if index.is_multiple_of(2) {
        let second = products[(tablet + index + 1) % products.len()];
        vec![(first, count), (second, 1)]
    } else {
        vec![(first, count)]
    }
}

/// Sends the order, and again with the same key while the answer says "retry", as a
/// tablet does.
async fn place_until_answered(
    mut client: TradeClient,
    request: pb::PlaceOrderRequest,
) -> (Outcome, usize) {
    for retries in 0..MAX_ATTEMPTS {
        match client.place_order(request.clone()).await {
            Ok(answer) => {
                let placed = answer.into_inner().order.expect("the placed order");
                return (Outcome::Placed(placed), retries);
            }
            Err(status) if reason(&status) == "OUT_OF_STOCK" => {
                return (Outcome::OutOfStock, retries);
            }
            Err(status) if reason(&status) == "RESERVATION_CLOSED" => {
                return (Outcome::GivenUp, retries);
            }
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::DeadlineExceeded | Code::Aborted
                ) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("order {}: {status:?}", request.idempotency_key),
        }
    }
    panic!(
        "order {} still not answered after {MAX_ATTEMPTS} attempts",
        request.idempotency_key
    )
}

/// A connection of its own for each tablet, as real tablets have.
async fn tablet_client(stack: &TestStack, token: &str) -> TradeClient {
    let channel = Channel::from_shared(format!("http://{}", stack.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    TradeServiceClient::with_interceptor(channel, bearer(token))
}

/// Waits until the store holds no reservation unconfirmed: the trade role confirms as
/// it answers, and the reconciler settles any confirmation that failed.
async fn wait_for_no_pending_reservation(stack: &TestStack) {
    let settled = async {
        loop {
            let far_future = chrono::Utc::now() + chrono::Duration::days(1);
            let pending = stack
                .store_storage
                .stale_reservations(far_future, 1_000)
                .await
                .expect("read reservations");
            if pending.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    // The default reservation timeout is 30 s, with a round every 15 s.
    tokio::time::timeout(Duration::from_secs(120), settled)
        .await
        .expect("no reservation is left pending");
}

async fn trade_concurrent_orders_keep_stock_and_bills_in_agreement(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "rush@example.com", &MENU, TABLETS).await;
    assert_eq!(
        shop.tablets.len(),
        TABLETS,
        "a bronze store has enough tablets"
    );
    let mut clients = Vec::new();
    for (_, token) in &shop.tablets {
        clients.push(tablet_client(&stack, token).await);
    }

    let mut requests = Vec::new();
    for (tablet, client) in clients.iter().enumerate() {
        for index in 0..ORDERS_PER_TABLET {
            let request = order(
                &lines(&shop.products, tablet, index),
                &format!("t{tablet}-o{index}"),
            );
            let client = client.clone();
            requests.push(async move { (tablet, place_until_answered(client, request).await) });
        }
    }
    let answers = futures::future::join_all(requests).await;

    let mut placed: BTreeMap<usize, Vec<pb::Order>> = BTreeMap::new();
    let (mut out_of_stock, mut given_up, mut retries) = (0, 0, 0);
    for (tablet, (outcome, retried)) in answers {
        retries += retried;
        match outcome {
            Outcome::Placed(order) => placed.entry(tablet).or_default().push(order),
            Outcome::OutOfStock => out_of_stock += 1,
            Outcome::GivenUp => given_up += 1,
        }
    }
    let acknowledged: usize = placed.values().map(Vec::len).sum();
    eprintln!(
        "{engine:?}: {acknowledged} placed, {out_of_stock} out of stock, {given_up} given up, \
         {retries} retries"
    );
    assert!(acknowledged > 0, "the first orders fit the stock");
    assert!(out_of_stock > 0, "the later ones do not");
    assert_eq!(
        acknowledged + out_of_stock + given_up,
        TABLETS * ORDERS_PER_TABLET
    );

    wait_for_no_pending_reservation(&stack).await;

    // Each tablet's bill holds exactly its acknowledged orders, as they were answered.
    let mut billed = 0;
    let mut sold_on_bills: BTreeMap<i64, i64> = BTreeMap::new();
    let mut bill_ids = BTreeSet::new();
    for (tablet, client) in clients.iter_mut().enumerate() {
        let bill = current(client).await;
        let Some(bill) = bill else {
            assert!(!placed.contains_key(&tablet), "tablet {tablet} has no bill");
            continue;
        };
        let mut expected = placed.remove(&tablet).unwrap_or_default();
        expected.sort_by(|a, b| a.id.cmp(&b.id));
        let mut on_bill = bill.orders.clone();
        on_bill.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(on_bill, expected, "tablet {tablet}'s bill");
        let lines_total: i64 = on_bill
            .iter()
            .flat_map(|order| &order.lines)
            .map(|line| {
                assert_eq!(line.amount, line.unit_price * line.count);
                *sold_on_bills.entry(line.product_id).or_default() += line.count;
                line.amount
            })
            .sum();
        let orders_total: i64 = on_bill.iter().map(|order| order.amount).sum();
        assert_eq!((bill.amount, orders_total), (lines_total, lines_total));
        billed += bill.amount;
        bill_ids.insert(bill.id);
    }
    assert!(placed.is_empty(), "orders on no bill: {placed:?}");

    // The owner sees the same bills.
    let open = shop
        .as_owner(&stack)
        .list_open_trades(pb::ListOpenTradesRequest {})
        .await
        .expect("open trades")
        .into_inner()
        .trades;
    let owner_ids: BTreeSet<i64> = open.iter().map(|bill| bill.id).collect();
    assert_eq!(owner_ids, bill_ids);
    assert_eq!(open.iter().map(|bill| bill.amount).sum::<i64>(), billed);

    // What left the store is what the bills hold, product by product and in money.
    let mut taken_in_money = 0;
    for (&product, &(name, price, initial)) in shop.products.iter().zip(MENU.iter()) {
        let now = shop.stock(&stack, product).await;
        assert!(now >= 0, "{name} went below zero: {now}");
        let sold = sold_on_bills.get(&product).copied().unwrap_or_default();
        assert_eq!(
            initial - now,
            sold,
            "{name}: stock taken vs counts on the bills"
        );
        taken_in_money += (initial - now) * price;
    }
    assert_eq!(billed, taken_in_money);
    stack.stop().await;
}
