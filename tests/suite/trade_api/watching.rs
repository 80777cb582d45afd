//! Live bills through the edge: a tablet watching its bill and an owner watching the
//! store's open bills see every order and payment within a second, from whichever trade
//! replica made it; a revoked tablet's or logged-out owner's stream ends, a quiet stream outlives the edge's
//! idle timeout, and every stream ends when the server stops.

use std::time::Duration;

use pos_proto::v1::{self as pb, TradeStatus};
use tonic::{Code, Status, Streaming, transport::Channel};

use super::{Shop, TradeClient, order, store_client};
use crate::support::{
    Engine, assert_error, bearer,
    stack::{StackOptions, TestStack},
};

crate::on_both_engines!(
    trade_watch_current_trade_follows_the_tablets_bill,
    trade_watch_open_trades_follows_the_stores_bills_only,
    trade_watch_hears_changes_made_by_another_replica,
    trade_watch_ends_when_the_tablet_is_revoked,
    trade_an_owners_watch_ends_at_logout,
    trade_watch_outlives_the_edges_idle_timeout,
    trade_watches_end_when_the_server_stops,
);

/// How soon a change must reach a watcher.
const PROMPTLY: Duration = Duration::from_secs(1);

/// The next message of `stream`, which must come within `within`.
async fn next_within<T>(stream: &mut Streaming<T>, within: Duration) -> Result<T, Status> {
    tokio::time::timeout(within, stream.message())
        .await
        .expect("a message in time")
        .and_then(|message| message.ok_or_else(|| Status::internal("the stream ended")))
}

/// The next bill of a tablet's watch (absent when it has none).
async fn next_bill(stream: &mut Streaming<pb::WatchCurrentTradeResponse>) -> Option<pb::Trade> {
    next_within(stream, PROMPTLY)
        .await
        .expect("a message")
        .trade
}

/// The next bill of an owner's watch.
async fn next_store_bill(stream: &mut Streaming<pb::WatchOpenTradesResponse>) -> pb::Trade {
    next_within(stream, PROMPTLY)
        .await
        .expect("a message")
        .trade
        .expect("a bill")
}

async fn nothing_within<T: std::fmt::Debug>(stream: &mut Streaming<T>, wait: Duration) {
    if let Ok(message) = tokio::time::timeout(wait, stream.message()).await {
        panic!("unexpected {message:?}");
    }
}

async fn watch(client: &mut TradeClient) -> Streaming<pb::WatchCurrentTradeResponse> {
    client
        .watch_current_trade(pb::WatchCurrentTradeRequest {})
        .await
        .expect("watch")
        .into_inner()
}

fn cash(device_id: i64, expected: i64, key: &str) -> pb::PayCashRequest {
    pb::PayCashRequest {
        device_id,
        expected_amount: Some(expected),
        idempotency_key: key.into(),
    }
}

async fn trade_watch_current_trade_follows_the_tablets_bill(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "watch@example.com", &[("Tea", 1000, 100)], 1).await;
    let tea = shop.products[0];
    let mut tablet = shop.tablet(&stack, 0);
    let mut bills = watch(&mut tablet).await;
    assert_eq!(
        next_bill(&mut bills).await,
        None,
        "no bill yet, said at once"
    );

    tablet
        .place_order(order(&[(tea, 2)], "w1"))
        .await
        .expect("order");
    let first = next_bill(&mut bills).await.expect("the new bill");
    assert_eq!((first.amount, first.orders.len()), (2000, 1));
    assert_eq!(first.status, TradeStatus::Open as i32);

    tablet
        .place_order(order(&[(tea, 1)], "w2"))
        .await
        .expect("order");
    let second = next_bill(&mut bills).await.expect("the bill");
    assert_eq!((second.id, second.amount), (first.id, 3000));
    assert_eq!(second.orders.len(), 2);

    shop.as_owner(&stack)
        .pay_cash(cash(shop.device(0), 3000, "p1"))
        .await
        .expect("pay");
    let paid = next_bill(&mut bills).await.expect("the paid bill");
    assert_eq!((paid.id, paid.amount), (first.id, 3000));
    assert_eq!(paid.status, TradeStatus::Paid as i32);
    let payment = paid.payment.expect("the paid bill shows its payment");
    assert_eq!((payment.trade_id, payment.amount), (first.id, 3000));
    assert_eq!(
        next_bill(&mut bills).await,
        None,
        "no open bill after payment"
    );
    nothing_within(&mut bills, Duration::from_millis(300)).await;

    tablet
        .place_order(order(&[(tea, 1)], "w3"))
        .await
        .expect("order");
    let next = next_bill(&mut bills).await.expect("a new bill");
    assert_ne!(next.id, first.id);
    assert_eq!((next.amount, next.status), (1000, TradeStatus::Open as i32));
    drop(bills);
    stack.stop().await;
}

async fn trade_watch_open_trades_follows_the_stores_bills_only(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "owner-a@example.com", &[("Tea", 1000, 100)], 2).await;
    let other = Shop::open(&stack, "owner-b@example.com", &[("Cake", 500, 100)], 1).await;
    let tea = shop.products[0];
    let (mut table_one, mut table_two) = (shop.tablet(&stack, 0), shop.tablet(&stack, 1));
    table_one
        .place_order(order(&[(tea, 1)], "a1"))
        .await
        .expect("order");
    let mut owner = shop.as_owner(&stack);
    let mut bills = owner
        .watch_open_trades(pb::WatchOpenTradesRequest {})
        .await
        .expect("watch")
        .into_inner();
    let open = next_store_bill(&mut bills).await;
    assert_eq!((open.device_id, open.amount), (shop.device(0), 1000));
    let listed = next_within(&mut bills, PROMPTLY).await.expect("a message");
    assert_eq!(listed.trade, None, "every open bill was sent");

    table_two
        .place_order(order(&[(tea, 3)], "b1"))
        .await
        .expect("order");
    let second = next_store_bill(&mut bills).await;
    assert_eq!((second.device_id, second.amount), (shop.device(1), 3000));

    // Another store's bill is not this owner's business.
    other
        .tablet(&stack, 0)
        .place_order(order(&[(other.products[0], 1)], "c1"))
        .await
        .expect("order");
    nothing_within(&mut bills, Duration::from_millis(500)).await;

    table_one
        .place_order(order(&[(tea, 1)], "a2"))
        .await
        .expect("order");
    let grown = next_store_bill(&mut bills).await;
    assert_eq!((grown.id, grown.amount), (open.id, 2000));
    assert_eq!(grown.orders.len(), 2, "a changed bill comes whole");

    owner
        .pay_cash(cash(shop.device(0), 2000, "p1"))
        .await
        .expect("pay");
    let paid = next_store_bill(&mut bills).await;
    assert_eq!((paid.id, paid.status), (open.id, TradeStatus::Paid as i32));
    assert_eq!(paid.orders.len(), 2);
    let payment = paid.payment.expect("the paid bill shows its payment");
    assert_eq!((payment.trade_id, payment.amount), (open.id, 2000));
    nothing_within(&mut bills, Duration::from_millis(300)).await;
    drop(bills);
    stack.stop().await;
}

async fn trade_watch_hears_changes_made_by_another_replica(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "replicas@example.com", &[("Tea", 1000, 100)], 1).await;
    let tea = shop.products[0];
    let replica = super::trade_replica(&stack).await;
    let channel = Channel::from_shared(format!("http://{}", replica.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let token = &shop.tablets[0].1;
    let mut on_replica =
        pb::trade_service_client::TradeServiceClient::with_interceptor(channel, bearer(token));
    let mut through_edge = shop.tablet(&stack, 0);

    // Watching the second replica, ordering through the first.
    let mut bills = watch(&mut on_replica).await;
    assert_eq!(next_bill(&mut bills).await, None);
    through_edge
        .place_order(order(&[(tea, 1)], "r1"))
        .await
        .expect("order");
    let bill = next_bill(&mut bills).await.expect("the bill");
    assert_eq!(bill.amount, 1000);

    // And the other way round.
    let mut edge_bills = watch(&mut through_edge).await;
    assert_eq!(
        next_bill(&mut edge_bills).await.map(|b| b.id),
        Some(bill.id)
    );
    on_replica
        .place_order(order(&[(tea, 2)], "r2"))
        .await
        .expect("order on the replica");
    let grown = next_bill(&mut edge_bills).await.expect("the bill");
    assert_eq!((grown.id, grown.amount), (bill.id, 3000));
    assert_eq!(next_bill(&mut bills).await.map(|b| b.amount), Some(3000));

    drop((bills, edge_bills));
    replica.stop(Duration::from_secs(5)).await.expect("stop");
    stack.stop().await;
}

async fn trade_watch_ends_when_the_tablet_is_revoked(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "revoked@example.com", &[("Tea", 1000, 100)], 1).await;
    let mut bills = watch(&mut shop.tablet(&stack, 0)).await;
    assert_eq!(next_bill(&mut bills).await, None);
    store_client(&stack, &shop.owner)
        .revoke_device(pb::RevokeDeviceRequest {
            device_id: shop.device(0),
        })
        .await
        .expect("revoke");
    // Checked again within a few seconds even though the bill is quiet.
    let ended = next_within(&mut bills, Duration::from_secs(8)).await;
    assert_error(ended, Code::Unauthenticated, "TOKEN_REVOKED");
    stack.stop().await;
}

async fn trade_an_owners_watch_ends_at_logout(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let signed = crate::support::dev_signup(
        stack.channel(),
        "logout@example.com",
        "Counter",
        pb::PosGrade::Bronze,
    )
    .await;
    let tokens = signed.tokens.expect("tokens");
    let mut counter = super::trade_client(&stack, &tokens.access_token)
        .watch_open_trades(pb::WatchOpenTradesRequest {})
        .await
        .expect("watch")
        .into_inner();
    let listed = next_within(&mut counter, PROMPTLY).await.expect("listed");
    assert_eq!(listed.trade, None);
    pos_proto::v1::user_service_client::UserServiceClient::with_interceptor(
        stack.channel(),
        bearer(&tokens.access_token),
    )
    .logout(pb::LogoutRequest {
        refresh_token: tokens.refresh_token,
    })
    .await
    .expect("logout");
    // Checked again within a few seconds even though no bill changes.
    let ended = next_within(&mut counter, Duration::from_secs(8)).await;
    assert_error(ended, Code::Unauthenticated, "TOKEN_REVOKED");
    stack.stop().await;
}

/// Not about storage: on SQLite only.
#[tokio::test]
async fn trade_a_watch_ends_when_its_token_expires() {
    let stack = TestStack::start(Engine::Sqlite).await;
    let shop = Shop::open(&stack, "expiry@example.com", &[("Tea", 1000, 100)], 0).await;
    let me = pos_proto::v1::user_service_client::UserServiceClient::with_interceptor(
        stack.channel(),
        bearer(&shop.owner),
    )
    .get_me(pb::GetMeRequest {})
    .await
    .expect("me")
    .into_inner()
    .user
    .expect("user");
    let short_lived = stack.issuer.owner_access(
        pos_common::domain::UserId::from_stored(me.id),
        Some(pos_common::domain::StoreId::from_stored(shop.store_id)),
        1,
    );
    let mut counter = super::trade_client(&stack, &short_lived)
        .watch_open_trades(pb::WatchOpenTradesRequest {})
        .await
        .expect("watch")
        .into_inner();
    let listed = next_within(&mut counter, PROMPTLY).await.expect("listed");
    assert_eq!(listed.trade, None);
    // Past its expiry and the clock leeway (5 s), the next check ends the stream.
    let ended = next_within(&mut counter, Duration::from_secs(15)).await;
    assert_error(ended, Code::Unauthenticated, "TOKEN_EXPIRED");
    stack.stop().await;
}

async fn trade_watch_outlives_the_edges_idle_timeout(engine: Engine) {
    let mut options = StackOptions::default();
    options
        .flags
        .extend(["--idle-timeout-secs".to_string(), "1".to_string()]);
    let stack = TestStack::start_with(engine, options).await;
    let shop = Shop::open(&stack, "idle@example.com", &[("Tea", 1000, 100)], 1).await;
    let mut tablet = shop.tablet(&stack, 0);
    let mut bills = watch(&mut tablet).await;
    assert_eq!(next_bill(&mut bills).await, None);
    // Three idle timeouts with nothing to say: the stream in flight keeps it open.
    nothing_within(&mut bills, Duration::from_secs(3)).await;
    tablet
        .place_order(order(&[(shop.products[0], 1)], "i1"))
        .await
        .expect("order");
    let bill = next_bill(&mut bills).await.expect("still delivered");
    assert_eq!(bill.amount, 1000);
    drop(bills);
    stack.stop().await;
}

async fn trade_watches_end_when_the_server_stops(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let shop = Shop::open(&stack, "stopping@example.com", &[("Tea", 1000, 100)], 1).await;
    let mut bills = watch(&mut shop.tablet(&stack, 0)).await;
    assert_eq!(next_bill(&mut bills).await, None);
    let mut counter = shop
        .as_owner(&stack)
        .watch_open_trades(pb::WatchOpenTradesRequest {})
        .await
        .expect("watch")
        .into_inner();
    let listed = next_within(&mut counter, PROMPTLY).await.expect("listed");
    assert_eq!(listed.trade, None);
    // The streams are told, rather than held until the shutdown's grace runs out and
    // then cut: their clients know to reconnect elsewhere.
    let stopping = tokio::spawn(stack.stop());
    for ended in [
        next_within(&mut bills, Duration::from_secs(4))
            .await
            .map(|_| ()),
        next_within(&mut counter, Duration::from_secs(4))
            .await
            .map(|_| ()),
    ] {
        assert_error(ended, Code::Unavailable, "SERVER_STOPPING");
    }
    stopping.await.expect("stopped");
}
