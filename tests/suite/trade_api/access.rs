//! Who may call what: owners only reach their own store's bills, tablets and owners each
//! only their own RPCs (at the edge and at the role itself), and CheckOrderExists only
//! the store role, which fences an order id off for good when it was not committed.

use pos_common::{
    auth::DeviceCaller,
    domain::{DeviceId, StoreId},
};
use pos_proto::v1::{
    self as pb, trade_internal_service_client::TradeInternalServiceClient,
    trade_service_client::TradeServiceClient,
};
use pos_trade::ordering::OrderRequest;
use tonic::Code;

use super::{Shop, current, order, store_client, trade_client};
use crate::support::{Engine, assert_error, stack::TestStack};

crate::on_both_engines!(
    trade_owners_reach_only_their_own_stores_bills,
    trade_tablets_and_owners_call_only_their_own_rpcs,
    trade_only_the_store_may_check_orders_and_checking_fences_them,
    trade_a_replaced_or_revoked_tablet_places_no_order,
);

async fn trade_owners_reach_only_their_own_stores_bills(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let a = Shop::open(&stack, "a@example.com", &[("Tea", 1000, 10)], 1).await;
    let b = Shop::open(&stack, "b@example.com", &[("Tea", 1000, 10)], 1).await;
    let mut tablet = a.tablet(&stack, 0);
    tablet
        .place_order(order(&[(a.products[0], 1)], "a1"))
        .await
        .expect("order");
    let mut owner_b = b.as_owner(&stack);
    assert_error(
        owner_b
            .get_open_trade(pb::GetOpenTradeRequest {
                device_id: a.device(0),
            })
            .await,
        Code::NotFound,
        "DEVICE_NOT_FOUND",
    );
    assert_error(
        owner_b
            .pay_cash(pb::PayCashRequest {
                device_id: a.device(0),
                expected_amount: None,
                idempotency_key: "steal".into(),
            })
            .await,
        Code::NotFound,
        "DEVICE_NOT_FOUND",
    );
    let theirs = owner_b
        .list_open_trades(pb::ListOpenTradesRequest {})
        .await
        .expect("list")
        .into_inner()
        .trades;
    assert!(theirs.is_empty(), "{theirs:?}");
    let mine = a
        .as_owner(&stack)
        .list_open_trades(pb::ListOpenTradesRequest {})
        .await
        .expect("list")
        .into_inner()
        .trades;
    assert_eq!(mine.len(), 1);
    // The list carries each bill's head, the tablet's bill without its orders.
    let still_open = current(&mut tablet).await.map(|bill| pb::Trade {
        orders: Vec::new(),
        ..bill
    });
    assert_eq!(still_open, mine.into_iter().next(), "still open");
    stack.stop().await;
}

async fn trade_tablets_and_owners_call_only_their_own_rpcs(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "roles@example.com", &[("Tea", 1000, 10)], 1).await;
    let tablet_token = shop.tablets[0].1.clone();
    let mut as_tablet = trade_client(&stack, &tablet_token);
    let mut as_owner = shop.as_owner(&stack);
    assert_error(
        as_tablet
            .list_open_trades(pb::ListOpenTradesRequest {})
            .await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );
    assert_error(
        as_tablet
            .pay_cash(pb::PayCashRequest {
                device_id: shop.device(0),
                expected_amount: None,
                idempotency_key: "k".into(),
            })
            .await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );
    assert_error(
        as_owner
            .place_order(order(&[(shop.products[0], 1)], "k"))
            .await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );
    assert_error(
        as_owner
            .get_current_trade(pb::GetCurrentTradeRequest {})
            .await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );

    // Straight at the trade role, not through the edge, the role checks the same, and
    // asks the store whether a tablet's credential is still current.
    let mut direct = TradeServiceClient::new(stack.stack.peers["trade"].peer.clone());
    let refused = direct
        .list_open_trades(crate::support::with_bearer(
            pb::ListOpenTradesRequest {},
            &tablet_token,
        ))
        .await;
    assert_error(refused, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    direct
        .place_order(crate::support::with_bearer(
            order(&[(shop.products[0], 1)], "direct"),
            &tablet_token,
        ))
        .await
        .expect("a current tablet orders straight at the role");
    // A new credential for the tablet retires the old token, there too.
    super::store_client(&stack, &shop.owner)
        .issue_device_token(pb::IssueDeviceTokenRequest {
            device_id: shop.device(0),
        })
        .await
        .expect("new credential");
    assert_error(
        direct
            .get_current_trade(crate::support::with_bearer(
                pb::GetCurrentTradeRequest {},
                &tablet_token,
            ))
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    stack.stop().await;
}

async fn trade_only_the_store_may_check_orders_and_checking_fences_them(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "check@example.com", &[("Tea", 1000, 10)], 1).await;
    let tea = shop.products[0];
    let placed = shop
        .tablet(&stack, 0)
        .place_order(order(&[(tea, 1)], "placed"))
        .await
        .expect("order")
        .into_inner()
        .order
        .expect("order");
    let check = |order_id: &str| pb::CheckOrderExistsRequest {
        order_id: order_id.into(),
    };
    let mut internal = TradeInternalServiceClient::new(stack.stack.peers["trade"].peer.clone());

    for (who, token, code, reason) in [
        (
            "the user role",
            stack.issuer.service("user"),
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
        ),
        (
            "the edge",
            stack.issuer.service("edge"),
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
        ),
        (
            "the trade role",
            stack.issuer.service("trade"),
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
        ),
        (
            "an owner",
            shop.owner.clone(),
            Code::PermissionDenied,
            "INTERNAL_ONLY",
        ),
        (
            "a tablet",
            shop.tablets[0].1.clone(),
            Code::PermissionDenied,
            "INTERNAL_ONLY",
        ),
    ] {
        let status = internal
            .check_order_exists(crate::support::with_bearer(check(&placed.id), &token))
            .await
            .expect_err(who);
        assert_eq!(
            (status.code(), crate::support::reason(&status).as_str()),
            (code, reason),
            "{who}: {status:?}"
        );
    }
    // Through the edge it is not even routed.
    let status = TradeInternalServiceClient::with_interceptor(
        stack.channel(),
        crate::support::bearer(&stack.issuer.service("store")),
    )
    .check_order_exists(check(&placed.id))
    .await
    .expect_err("never routed");
    assert_eq!(
        crate::support::reason(&status),
        "INTERNAL_ONLY",
        "{status:?}"
    );

    let store = stack.issuer.service("store");
    let exists = |id: String| {
        let mut internal = internal.clone();
        let store = store.clone();
        async move {
            internal
                .check_order_exists(crate::support::with_bearer(check(&id), &store))
                .await
                .expect("the store may ask")
                .into_inner()
                .exists
        }
    };
    assert!(exists(placed.id.clone()).await, "a committed order exists");
    assert!(!exists("never-placed".into()).await);

    // The order id this tablet's next request will use, fenced off before it is placed:
    // the order is refused and its stock goes back.
    let request = order(&[(tea, 2)], "fenced");
    let tablet = DeviceCaller {
        store_id: StoreId::from_stored(shop.store_id),
        device_id: DeviceId::from_stored(shop.device(0)),
        credential_version: 0,
    };
    let fenced = OrderRequest::parse(&request)
        .expect("valid")
        .order_id(&tablet);
    assert!(!exists(fenced.as_str().to_string()).await);
    assert_error(
        shop.tablet(&stack, 0).place_order(request).await,
        Code::FailedPrecondition,
        "RESERVATION_CLOSED",
    );
    assert_eq!(
        shop.stock(&stack, tea).await,
        9,
        "only the placed order's stock is taken"
    );
    let bill = current(&mut shop.tablet(&stack, 0)).await.expect("bill");
    assert_eq!(bill.orders.len(), 1);
    assert!(
        !exists(fenced.as_str().to_string()).await,
        "and never will be"
    );
    stack.stop().await;
}

/// The device ids of the store's open bills, as its owner lists them.
async fn open_bills(shop: &Shop, stack: &TestStack) -> Vec<i64> {
    let mut devices: Vec<i64> = shop
        .as_owner(stack)
        .list_open_trades(pb::ListOpenTradesRequest {})
        .await
        .expect("list")
        .into_inner()
        .trades
        .iter()
        .map(|trade| trade.device_id)
        .collect();
    devices.sort_unstable();
    devices
}

/// PlaceOrder's tablet check is left by the edge to the store's reservation: a token
/// whose credential was replaced (IssueDeviceToken again) or revoked (RevokeDevice) is
/// still refused TOKEN_REVOKED, through the edge and straight at the trade role, taking
/// no stock and opening no bill; the new token orders.
async fn trade_a_replaced_or_revoked_tablet_places_no_order(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "gone@example.com", &[("Tea", 1000, 10)], 2).await;
    let tea = shop.products[0];
    let mut old = shop.tablet(&stack, 0);
    old.place_order(order(&[(tea, 1)], "before"))
        .await
        .expect("order");
    let mut owner = store_client(&stack, &shop.owner);
    let renewed = owner
        .issue_device_token(pb::IssueDeviceTokenRequest {
            device_id: shop.device(0),
        })
        .await
        .expect("a new credential")
        .into_inner()
        .device_token;
    let mut direct = TradeServiceClient::new(stack.stack.peers["trade"].peer.clone());
    for (key, count) in [("after", 2), ("before", 1)] {
        assert_error(
            old.place_order(order(&[(tea, count)], key)).await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
        assert_error(
            direct
                .place_order(crate::support::with_bearer(
                    order(&[(tea, count)], key),
                    &shop.tablets[0].1,
                ))
                .await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
    }
    assert_eq!(shop.stock(&stack, tea).await, 9, "no stock taken");
    let mut renewed = trade_client(&stack, &renewed);
    assert_eq!(
        current(&mut renewed).await.expect("the bill").orders.len(),
        1,
        "nothing added to the bill"
    );
    renewed
        .place_order(order(&[(tea, 2)], "after"))
        .await
        .expect("the new token orders");
    assert_eq!(shop.stock(&stack, tea).await, 7);
    assert_eq!(
        current(&mut renewed).await.expect("the bill").orders.len(),
        2
    );

    // A tablet revoked before its first order opens no bill.
    owner
        .revoke_device(pb::RevokeDeviceRequest {
            device_id: shop.device(1),
        })
        .await
        .expect("revoke");
    assert_error(
        shop.tablet(&stack, 1)
            .place_order(order(&[(tea, 1)], "revoked"))
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_error(
        direct
            .place_order(crate::support::with_bearer(
                order(&[(tea, 1)], "revoked"),
                &shop.tablets[1].1,
            ))
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_eq!(shop.stock(&stack, tea).await, 7, "no stock taken");
    assert_eq!(open_bills(&shop, &stack).await, [shop.device(0)]);
    let reissued = owner
        .issue_device_token(pb::IssueDeviceTokenRequest {
            device_id: shop.device(1),
        })
        .await
        .expect("a new credential")
        .into_inner()
        .device_token;
    trade_client(&stack, &reissued)
        .place_order(order(&[(tea, 1)], "revoked"))
        .await
        .expect("the reissued tablet orders");
    assert_eq!(shop.stock(&stack, tea).await, 6);
    assert_eq!(
        open_bills(&shop, &stack).await,
        [shop.device(0), shop.device(1)]
    );
    stack.stop().await;
}
