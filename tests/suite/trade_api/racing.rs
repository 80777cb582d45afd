//! An order racing the payment of its bill, over gRPC through the edge, round after
//! round: the owner pays the amount they saw while the tablet orders once more. Either
//! the order lands first (the payment is refused AMOUNT_CHANGED and the bill stays open
//! with both) or the payment does (the order opens a new bill). A bill is never paid at
//! an amount other than its own.

use std::time::Duration;

use pos_common::{clock, domain::StoreId};
use pos_proto::v1::{self as pb, TradeStatus};
use pos_trade_storage::{TradeId, TradeStatus as StoredStatus};
use tonic::Code;

use super::{Shop, current, order};
use crate::support::{Engine, reason, stack::TestStack};

crate::on_both_engines!(trade_an_order_racing_a_payment_never_lands_on_a_paid_bill);

const ROUNDS: u64 = 30;

fn cash(device_id: i64, expected: i64, key: String) -> pb::PayCashRequest {
    pb::PayCashRequest {
        device_id,
        expected_amount: Some(expected),
        idempotency_key: key,
    }
}

/// Every payment of the owner's store.
async fn all_payments(owner: &mut super::TradeClient) -> Vec<pb::Payment> {
    let mut payments = Vec::new();
    let mut token = String::new();
    loop {
        let page = owner
            .list_payments(pb::ListPaymentsRequest {
                page: Some(pb::PageRequest {
                    page_size: 100,
                    page_token: token,
                }),
                ..Default::default()
            })
            .await
            .expect("payments")
            .into_inner();
        payments.extend(page.payments);
        if page.next_page_token.is_empty() {
            return payments;
        }
        token = page.next_page_token;
    }
}

async fn trade_an_order_racing_a_payment_never_lands_on_a_paid_bill(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(
        &stack,
        "race@example.com",
        &[("Tea", 1_000, 10_000), ("Cake", 2_500, 10_000)],
        1,
    )
    .await;
    let (tea, cake) = (shop.products[0], shop.products[1]);
    let device = shop.device(0);
    let mut tablet = shop.tablet(&stack, 0);
    let mut owner = shop.as_owner(&stack);
    let (mut order_first, mut payment_first) = (0, 0);

    for round in 0..ROUNDS {
        // The bill the owner looks at; the last round's payment may have closed it.
        let seen = match current(&mut tablet).await {
            Some(bill) => bill,
            None => {
                tablet
                    .place_order(order(&[(tea, 1)], &format!("open-{round}")))
                    .await
                    .expect("an order opens a bill");
                current(&mut tablet).await.expect("the new bill")
            }
        };

        let mut racing_tablet = shop.tablet(&stack, 0);
        let ordering = racing_tablet.place_order(order(&[(cake, 1)], &format!("race-{round}")));
        let mut racing_owner = shop.as_owner(&stack);
        let paying = async {
            // A head start of 0-15 ms for the order, so both outcomes come up; nothing
            // below depends on which one does.
            tokio::time::sleep(Duration::from_millis(round % 6 * 3)).await;
            racing_owner
                .pay_cash(cash(device, seen.amount, format!("pay-{round}")))
                .await
        };
        let (ordered, paid) = tokio::join!(ordering, paying);
        let placed = ordered
            .expect("the order is placed either way")
            .into_inner()
            .order
            .expect("order");

        match paid {
            Ok(paid) => {
                payment_first += 1;
                let paid = paid.into_inner();
                let payment = paid.payment.expect("payment");
                let bill = paid.trade.expect("the paid bill");
                assert_eq!(
                    (payment.trade_id, payment.amount),
                    (seen.id, seen.amount),
                    "round {round}: the bill paid at the amount seen"
                );
                assert_eq!(
                    (bill.id, bill.amount, bill.status),
                    (seen.id, seen.amount, TradeStatus::Paid as i32),
                    "round {round}"
                );
                assert_ne!(placed.trade_id, seen.id, "round {round}: on a new bill");
                let next = current(&mut tablet).await.expect("the order's new bill");
                assert_eq!(
                    (next.id, next.amount, next.status),
                    (placed.trade_id, placed.amount, TradeStatus::Open as i32),
                    "round {round}"
                );
                assert_eq!(next.orders, [placed], "round {round}");
            }
            Err(refused) => {
                order_first += 1;
                assert_eq!(
                    (refused.code(), reason(&refused).as_str()),
                    (Code::FailedPrecondition, "AMOUNT_CHANGED"),
                    "round {round}: {refused:?}"
                );
                assert_eq!(placed.trade_id, seen.id, "round {round}: on the seen bill");
                let open = owner
                    .get_open_trade(pb::GetOpenTradeRequest { device_id: device })
                    .await
                    .expect("the bill is still open")
                    .into_inner()
                    .trade
                    .expect("bill");
                assert_eq!(
                    (open.id, open.amount, open.status),
                    (
                        seen.id,
                        seen.amount + placed.amount,
                        TradeStatus::Open as i32
                    ),
                    "round {round}"
                );
                assert_eq!(open.orders.last(), Some(&placed), "round {round}");
            }
        }
    }
    eprintln!("{engine:?}: the order came first {order_first} times, the payment {payment_first}");

    // Every paid bill, read from the trade's own tables: paid whole, at its amount.
    let payments = all_payments(&mut owner).await;
    assert_eq!(payments.len(), payment_first);
    let trades = pos_trade::open_storage(&stack.database, clock::system());
    for payment in &payments {
        let bill = trades
            .trade(
                StoreId::from_stored(shop.store_id),
                TradeId::from_stored(payment.trade_id),
            )
            .await
            .expect("read")
            .expect("the paid bill");
        let orders_total: i64 = bill.orders.iter().map(|order| order.amount).sum();
        assert_eq!(bill.trade.status, StoredStatus::Paid);
        assert_eq!(
            (bill.trade.amount, orders_total),
            (payment.amount, payment.amount),
            "payment {}",
            payment.id
        );
    }
    stack.stop().await;
}
