//! The trade role crashes in the middle of a burst of orders. Every role is its own `pos`
//! process over one database and Redis; eight tablets order through the edge in a loop
//! while the trade process is killed with SIGKILL, so orders die at every step of
//! Try-Confirm-Cancel: stock reserved but the order not committed, the order committed
//! but its reservation not confirmed. Trade comes back on the same address and the store's
//! reconciler settles what the crash left half done. Then no reservation is pending,
//! every acknowledged order is on its bill with its stock confirmed, and each product's
//! stock is its initial stock less exactly what the bills hold: an order in flight at the
//! kill may exist or not, but stock agrees with whichever it is.

use std::{
    collections::BTreeMap,
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use pos_common::clock;
use pos_proto::v1::{self as pb, trade_service_client::TradeServiceClient};
use pos_store::storage::{ReservationStatus, StoreStorage};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use super::{connect, migrate, role, settings, shared_settings};
use crate::{
    support::{Engine, TestDb, bearer},
    trade_api::{Shop, TradeClient, order},
};

crate::on_both_engines!(trade_killed_mid_burst_leaves_stock_and_bills_agreeing);

/// Tablets ordering at once.
const TABLETS: usize = 8;
/// Each product's stock: more than the burst can order, so no order is refused for it.
const INITIAL_STOCK: i64 = 100_000;
/// Seconds a reservation may stay unconfirmed before the store's reconciler asks trade.
const RESERVATION_TIMEOUT_SECS: u64 = 2;
/// Orders acknowledged before the kill (the burst is well under way) ...
const ACKED_BEFORE_KILL: usize = 3 * TABLETS;
/// ... and after trade is back (the mesh serves orders again).
const ACKED_AFTER_RESTART: usize = 2 * TABLETS;
/// Kills in a row that may each miss every order mid-flight before the test gives up.
/// A kill misses when the reservations seen pending are all confirmed in the moment
/// between the look and the signal and no new one is taken meanwhile: on a loaded machine
/// that happens now and then (CI once saw three misses in a row), so the test tries often.
const MAX_KILLS: usize = 10;
/// How long trade stays dead: the burst's calls meanwhile fail.
const DOWNTIME: Duration = Duration::from_millis(500);
/// A bound on each tablet's loop, far above what the test waits for, so that no bill
/// comes near its line limit.
const MAX_ORDERS_PER_TABLET: usize = 150;
/// How long any phase may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// An order the edge acknowledged: the tablet was told it is placed.
#[derive(Debug, Clone)]
struct Acked {
    device: i64,
    order_id: String,
    lines: Vec<(i64, i64)>,
}

/// What the burst's tablets report, shared while they run.
#[derive(Default)]
struct BurstLog {
    stop: AtomicBool,
    acked: Mutex<Vec<Acked>>,
    failed: AtomicUsize,
}

impl BurstLog {
    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }
}

/// Tablet `tablet`'s `n`th order: one or two products, changing from order to order.
fn lines_of(tablet: usize, n: usize, products: &[i64]) -> Vec<(i64, i64)> {
    let first = products[(tablet + n) % products.len()];
    let count = 1 + (n % 3) as i64;
    if n.is_multiple_of(2) {
        vec![(first, count)]
    } else {
        let second = products[(tablet + n + 1) % products.len()];
        vec![(first, count), (second, 1)]
    }
}

/// One tablet ordering in a loop, each order with a new key, until told to stop.
async fn order_in_a_loop(
    tablet: usize,
    device: i64,
    mut client: TradeClient,
    products: Vec<i64>,
    log: Arc<BurstLog>,
) {
    for n in 0..MAX_ORDERS_PER_TABLET {
        if log.stop.load(Ordering::SeqCst) {
            return;
        }
        let lines = lines_of(tablet, n, &products);
        match client
            .place_order(order(&lines, &format!("burst-{tablet}-{n}")))
            .await
        {
            Ok(answer) => {
                let placed = answer.into_inner().order.expect("the placed order");
                log.acked.lock().expect("lock").push(Acked {
                    device,
                    order_id: placed.id,
                    lines,
                });
            }
            Err(_) => {
                log.failed.fetch_add(1, Ordering::SeqCst);
                // Trade is down: a tablet would not hammer it either.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Waits until `done` holds, checking every 20 ms, for at most [`PATIENCE`].
async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < PATIENCE, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Order ids of the store's reservations that are neither confirmed nor released.
async fn pending_reservations(store: &dyn StoreStorage) -> Vec<String> {
    let any_time = chrono::Utc::now() + chrono::Duration::hours(1);
    store
        .stale_reservations(any_time, 10_000)
        .await
        .expect("read reservations")
        .iter()
        .map(|id| id.as_str().to_string())
        .collect()
}

/// A free loopback address, so a role can be started again where its peers expect it.
/// Its port lies below the kernel's range of ports for outgoing connections (32768 and
/// up by default), so while the role is down no connection takes it as its own end: not
/// even a peer's reconnection to it, which could otherwise connect to itself. (Another
/// test could bind it in between: the role would then fail to start, loudly.)
fn free_loopback_addr() -> String {
    const PORTS: std::ops::Range<u16> = 20_000..32_000;
    let span = u128::from(PORTS.end - PORTS.start);
    let first = uuid::Uuid::new_v4().as_u128() % span;
    (0..span)
        .map(|offset| PORTS.start + ((first + offset) % span) as u16)
        .find_map(|port| TcpListener::bind(("127.0.0.1", port)).ok())
        .and_then(|listener| listener.local_addr().ok())
        .expect("a free loopback port")
        .to_string()
}

async fn trade_killed_mid_burst_leaves_stock_and_bills_agreeing(engine: Engine) {
    let started = Instant::now();
    let (test_db, db) = TestDb::create(engine).await;
    let url = test_db.url();
    migrate(&url, "all").await;
    let store_storage = pos_store::open_storage(&db, clock::system());

    let files = tempfile::tempdir().expect("dir");
    let (_, key_file, jwks_file) = crate::support::key_files(files.path());
    // Store and trade call each other with service tokens of this key, and accept them
    // from it only.
    let service_dir = tempfile::tempdir().expect("dir");
    let (_, service_key, service_jwks) = crate::support::key_files(service_dir.path());
    let shared = settings(
        &shared_settings(),
        &[
            ("POS_JWKS_FILE", jwks_file.display().to_string()),
            ("POS_SERVICE_KEY_FILE", service_key.display().to_string()),
        ],
    );
    let with = |extra: &[(&'static str, String)]| settings(&shared, extra);
    let service_jwks = service_jwks.display().to_string();
    // Store and trade each need the other's address: trade's is chosen up front, and it
    // comes back on it after the crash.
    let trade_addr = free_loopback_addr();

    let store = role(
        "store",
        "127.0.0.1:0",
        &with(&[
            ("POS_DATABASE_URL", url.clone()),
            ("POS_SIGNING_KEY_FILE", key_file.display().to_string()),
            ("POS_SERVICE_JWKS_FILE", service_jwks.clone()),
            ("POS_TRADE_ADDR", format!("http://{trade_addr}")),
            (
                "POS_RESERVATION_TIMEOUT",
                RESERVATION_TIMEOUT_SECS.to_string(),
            ),
        ]),
    )
    .await;
    let trade_settings = with(&[
        ("POS_DATABASE_URL", url.clone()),
        ("POS_SERVICE_JWKS_FILE", service_jwks.clone()),
        ("POS_STORE_ADDR", format!("http://{}", store.addr)),
    ]);
    let mut trade = role("trade", &trade_addr, &trade_settings).await;
    let user = role(
        "user",
        "127.0.0.1:0",
        &with(&[
            ("POS_DATABASE_URL", url.clone()),
            ("POS_STORE_ADDR", format!("http://{}", store.addr)),
            ("POS_DEV_PROVIDER", "true".into()),
            ("POS_SIGNING_KEY_FILE", key_file.display().to_string()),
            ("POS_SERVICE_JWKS_FILE", service_jwks.clone()),
        ]),
    )
    .await;
    let edge = role(
        "edge",
        "127.0.0.1:0",
        &with(&[
            ("POS_STORE_ADDR", format!("http://{}", store.addr)),
            ("POS_USER_ADDR", format!("http://{}", user.addr)),
            ("POS_TRADE_ADDR", format!("http://{trade_addr}")),
            // The burst is far over a tablet's default limit; limits are tested elsewhere.
            ("POS_RATE_LIMIT_PER_MINUTE", "1000000".into()),
        ]),
    )
    .await;
    let channel = connect(&edge.addr).await;
    let products = [("Naengmyeon", 9_000), ("Mandu", 6_000), ("Sikhye", 2_000)]
        .map(|(name, price)| (name, price, INITIAL_STOCK));
    let shop = Shop::open_through(channel.clone(), "crash@example.com", &products, TABLETS).await;
    let set_up = started.elapsed();

    // The burst: every tablet on a connection of its own to the edge.
    let log = Arc::new(BurstLog::default());
    let mut tablets = JoinSet::new();
    for (tablet, (device, token)) in shop.tablets.iter().enumerate() {
        let connection = Channel::from_shared(format!("http://{}", edge.addr))
            .expect("uri")
            .connect_lazy();
        let client = TradeServiceClient::with_interceptor(connection, bearer(token));
        tablets.spawn(order_in_a_loop(
            tablet,
            *device,
            client,
            shop.products.clone(),
            log.clone(),
        ));
    }
    let burst_started = Instant::now();
    wait_until("the burst is under way", async || {
        log.acked() >= ACKED_BEFORE_KILL
    })
    .await;
    // Killed while some order holds a reservation, so one is caught mid-flight. The
    // reservation seen may be confirmed in the moment before the signal lands; then
    // trade comes back and is killed again.
    let mut kills = 0;
    let pending_at_kill = loop {
        wait_until("an order holds a reservation", async || {
            !pending_reservations(store_storage.as_ref())
                .await
                .is_empty()
        })
        .await;
        trade.kill().await;
        kills += 1;
        let pending = pending_reservations(store_storage.as_ref()).await;
        if !pending.is_empty() {
            break pending;
        }
        assert!(
            kills < MAX_KILLS,
            "{kills} kills in a row left no order half done"
        );
        trade = role("trade", &trade_addr, &trade_settings).await;
        // Hunt again only once the burst is back in full swing: right after the restart
        // the tablets trickle back from their failures, and a lone order's reservation is
        // confirmed too soon to be caught.
        let acked_at_restart = log.acked();
        wait_until("orders are placed again after a missed kill", async || {
            log.acked() >= acked_at_restart + TABLETS
        })
        .await;
    };
    let acked_before_kill = log.acked();
    let failed_before_kill = log.failed.load(Ordering::SeqCst);
    tokio::time::sleep(DOWNTIME).await;
    let failed_while_down = log.failed.load(Ordering::SeqCst) - failed_before_kill;
    assert!(
        failed_while_down > 0,
        "the tablets' orders fail while trade is down"
    );

    let restarted = Instant::now();
    let trade = role("trade", &trade_addr, &trade_settings).await;
    assert_eq!(trade.addr, trade_addr);
    let back_up = restarted.elapsed();
    let acked_at_restart = log.acked();
    wait_until("orders are placed again", async || {
        log.acked() >= acked_at_restart + ACKED_AFTER_RESTART
    })
    .await;
    log.stop.store(true, Ordering::SeqCst);
    while let Some(tablet) = tablets.join_next().await {
        tablet.expect("a tablet's loop");
    }
    let burst = burst_started.elapsed();

    // The reconciler asks the restarted trade role about what the crash left pending.
    let settled_in = wait_until("no reservation is pending", async || {
        pending_reservations(store_storage.as_ref())
            .await
            .is_empty()
    })
    .await;

    // The counter's overview names the open bills; each bill's orders are read whole.
    let mut owner = TradeServiceClient::with_interceptor(channel.clone(), bearer(&shop.owner));
    let heads = owner
        .list_open_trades(pb::ListOpenTradesRequest {})
        .await
        .expect("open bills")
        .into_inner()
        .trades;
    // Every order on a bill: its tablet and lines.
    let mut on_bills: BTreeMap<String, (i64, Vec<(i64, i64)>)> = BTreeMap::new();
    for head in &heads {
        let bill = owner
            .get_open_trade(pb::GetOpenTradeRequest {
                device_id: head.device_id,
            })
            .await
            .expect("a bill")
            .into_inner()
            .trade
            .expect("the bill");
        assert_eq!(
            bill.amount,
            bill.orders.iter().map(|placed| placed.amount).sum::<i64>(),
            "bill {} comes to what its orders do",
            bill.id
        );
        for placed in &bill.orders {
            let lines = placed
                .lines
                .iter()
                .map(|line| (line.product_id, line.count))
                .collect();
            on_bills.insert(placed.id.clone(), (bill.device_id, lines));
        }
    }
    let acked = log.acked.lock().expect("lock").clone();
    for order in &acked {
        let mut lines = order.lines.clone();
        lines.sort_unstable();
        assert_eq!(
            on_bills.get(&order.order_id),
            Some(&(order.device, lines)),
            "acknowledged order {} is on its tablet's bill as ordered",
            order.order_id
        );
    }
    for id in on_bills.keys() {
        let reservation = store_storage
            .reservation(&pos_store::storage::OrderId::parse(id).expect("an order id"))
            .await
            .expect("read reservation")
            .unwrap_or_else(|| panic!("order {id} on a bill has a reservation"));
        assert_eq!(
            reservation.status,
            ReservationStatus::Confirmed,
            "the stock of order {id} on a bill is sold"
        );
    }
    for &product in &shop.products {
        let ordered: i64 = on_bills
            .values()
            .flat_map(|(_, lines)| lines)
            .filter(|(id, _)| *id == product)
            .map(|(_, count)| count)
            .sum();
        assert_eq!(
            shop.stock_through(channel.clone(), product).await,
            INITIAL_STOCK - ordered,
            "product {product}'s stock is its initial stock less what the bills hold"
        );
    }
    let in_flight_committed = on_bills.len().saturating_sub(acked.len());
    eprintln!(
        "{engine:?}: set up in {set_up:?}; burst of {burst:?}: {acked_before_kill} orders \
         acknowledged before the kill, {} in all, {} calls failed ({failed_while_down} while \
         trade was down for {DOWNTIME:?}); {} reservations pending at the kill (kill {kills}); trade back in \
         {back_up:?}; reservations settled {settled_in:?} after the burst; {} orders on bills \
         ({in_flight_committed} of them unacknowledged); {:?} in all",
        acked.len(),
        log.failed.load(Ordering::SeqCst),
        pending_at_kill.len(),
        on_bills.len(),
        started.elapsed(),
    );

    drop(channel);
    edge.stop_with_sigterm().await;
    user.stop_with_sigterm().await;
    trade.stop_with_sigterm().await;
    store.stop_with_sigterm().await;
    db.close().await;
    test_db.drop_database().await;
}
