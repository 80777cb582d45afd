//! Owners paying bills: whole and at the amount they saw, once however often they ask,
//! with the card company's fee, and the store's payments in pages.

use pos_proto::v1::{self as pb, CardCompany, PaymentMethod, TradeStatus};
use tonic::Code;
use tonic_types::StatusExt;

use super::{Shop, current, order};
use crate::support::{Engine, assert_error, stack::TestStack, violated_fields};

crate::on_both_engines!(
    trade_owners_pay_whole_bills_at_the_amount_they_saw,
    trade_bad_payments_name_their_fields,
);

fn cash(device_id: i64, expected: Option<i64>, key: &str) -> pb::PayCashRequest {
    pb::PayCashRequest {
        device_id,
        expected_amount: expected,
        idempotency_key: key.into(),
    }
}

async fn trade_owners_pay_whole_bills_at_the_amount_they_saw(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(
        &stack,
        "pay@example.com",
        &[("Tea", 1000, 100), ("Set", 3900, 100)],
        2,
    )
    .await;
    let (tea, set) = (shop.products[0], shop.products[1]);
    let mut owner = shop.as_owner(&stack);
    let mut tablet = shop.tablet(&stack, 0);
    let first = tablet
        .place_order(order(&[(tea, 2)], "t1"))
        .await
        .expect("order")
        .into_inner()
        .trade
        .expect("bill");

    let status = assert_error(
        owner.pay_cash(cash(shop.device(0), Some(1999), "p1")).await,
        Code::FailedPrecondition,
        "AMOUNT_CHANGED",
    );
    let info = status.get_error_details();
    let actual = info
        .error_info()
        .and_then(|i| i.metadata.get("actual_amount").cloned());
    assert_eq!(actual.as_deref(), Some("2000"));
    let open = owner
        .get_open_trade(pb::GetOpenTradeRequest {
            device_id: shop.device(0),
        })
        .await
        .expect("still open")
        .into_inner()
        .trade
        .expect("bill");
    assert_eq!(
        pb::Trade {
            orders: Vec::new(),
            ..open
        },
        first,
        "nothing changed"
    );

    let paid = owner
        .pay_cash(cash(shop.device(0), Some(2000), "p1"))
        .await
        .expect("paid")
        .into_inner();
    let payment = paid.payment.expect("payment");
    assert_eq!(
        (
            payment.method,
            payment.amount,
            payment.card_fee,
            payment.trade_id
        ),
        (PaymentMethod::Cash as i32, 2000, 0, first.id)
    );
    let bill = paid.trade.expect("bill");
    assert_eq!(bill.status, TradeStatus::Paid as i32);
    assert_eq!(bill.payment.as_ref().map(|p| p.id), Some(payment.id));
    assert_eq!(bill.orders.len(), 1);
    assert_eq!(
        current(&mut tablet).await,
        None,
        "a paid bill is no longer current"
    );
    let again = owner
        .pay_cash(cash(shop.device(0), Some(2000), "p1"))
        .await
        .expect("a retry answers the payment")
        .into_inner();
    assert_eq!(again.payment.expect("payment").id, payment.id);

    // The next order opens a new bill.
    let next = tablet
        .place_order(order(&[(tea, 1)], "t2"))
        .await
        .expect("order")
        .into_inner()
        .trade
        .expect("bill");
    assert_ne!(next.id, first.id);
    assert_eq!((next.amount, next.status), (1000, TradeStatus::Open as i32));

    // A card payment pays the company's fee, rounded down: 3,900 by H (6 per mille) is 23.
    shop.tablet(&stack, 1)
        .place_order(order(&[(set, 1)], "s1"))
        .await
        .expect("order");
    let card = owner
        .pay_card(pb::PayCardRequest {
            device_id: shop.device(1),
            card_company: CardCompany::H as i32,
            expected_amount: Some(3900),
            idempotency_key: "c1".into(),
        })
        .await
        .expect("card")
        .into_inner()
        .payment
        .expect("payment");
    assert_eq!(
        (card.method, card.card_company, card.amount, card.card_fee),
        (PaymentMethod::Card as i32, CardCompany::H as i32, 3900, 23)
    );

    // Two payments of one bill at once: one pays, the other finds no open bill.
    let racing = ["r1", "r2"].map(|key| {
        let mut owner = shop.as_owner(&stack);
        let request = cash(shop.device(0), None, key);
        async move { owner.pay_cash(request).await }
    });
    let answers = futures::future::join_all(racing).await;
    let paid: Vec<_> = answers.iter().filter(|a| a.is_ok()).collect();
    assert_eq!(paid.len(), 1, "{answers:?}");
    for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!(crate::support::reason(refused), "OPEN_TRADE_NOT_FOUND");
    }

    // Three payments, newest first, a page at a time.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = owner
            .list_payments(pb::ListPaymentsRequest {
                page: Some(pb::PageRequest {
                    page_size: 1,
                    page_token: token.clone(),
                }),
                ..Default::default()
            })
            .await
            .expect("payments")
            .into_inner();
        seen.extend(page.payments.iter().map(|p| (p.id, p.amount)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[2], (payment.id, 2000), "the oldest last");
    assert!(
        owner
            .list_open_trades(pb::ListOpenTradesRequest {})
            .await
            .expect("open trades")
            .into_inner()
            .trades
            .is_empty()
    );
    stack.stop().await;
}

async fn trade_bad_payments_name_their_fields(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "badpay@example.com", &[("Tea", 1000, 10)], 1).await;
    let mut owner = shop.as_owner(&stack);
    shop.tablet(&stack, 0)
        .place_order(order(&[(shop.products[0], 1)], "t"))
        .await
        .expect("order");
    let status = assert_error(
        owner.pay_cash(cash(0, Some(-1), "")).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        violated_fields(&status),
        ["device_id", "expected_amount", "idempotency_key"]
    );
    let status = assert_error(
        owner
            .pay_card(pb::PayCardRequest {
                device_id: shop.device(0),
                card_company: CardCompany::Unspecified as i32,
                expected_amount: None,
                idempotency_key: "k".into(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["card_company"]);
    let at = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
    let status = assert_error(
        owner
            .list_payments(pb::ListPaymentsRequest {
                from: Some(at(2_000)),
                to: Some(at(1_000)),
                page: Some(pb::PageRequest {
                    page_size: 501,
                    page_token: "nope".into(),
                }),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        violated_fields(&status),
        ["page.page_size", "page.page_token", "from"]
    );
    let status = assert_error(
        owner
            .get_open_trade(pb::GetOpenTradeRequest { device_id: -3 })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["device_id"]);
    // The bill is untouched by all of it.
    let mut tablet = shop.tablet(&stack, 0);
    assert_eq!(
        current(&mut tablet).await.expect("bill").status,
        TradeStatus::Open as i32
    );
    stack.stop().await;
}
