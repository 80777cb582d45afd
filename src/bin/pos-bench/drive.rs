//! The load: simulated tablets placing orders through the edge for a fixed time, and
//! their owners paying the bills.
//!
//! Each tablet keeps **one** order in flight, as a table's tablet does (the next order
//! is entered after the last one is answered); the load comes from many tablets at once,
//! multiplexed over a handful of HTTP/2 connections. One order at a time also makes the
//! bill's amount exact after each answer, so the owner can pay with `expected_amount`.
//! An order has 1-3 lines of distinct products of the tablet's store, 1-3 of each, and a
//! fresh idempotency key; a call that fails in a way worth retrying (UNAVAILABLE, a
//! deadline, a reset connection) is sent again with the same key, as a real tablet would,
//! so its outcome is known either way. Every failed attempt counts as an error; the
//! store refusing an order (OUT_OF_STOCK) is counted apart, as a refusal.
//!
//! Bills are capped, so the tablet also plays its owner: after every `pay_every` orders
//! the owner pays the tablet's bill in cash, naming the amount the last order's answer
//! showed.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::Context;
use hdrhistogram::Histogram;
use pos_proto::v1::{self as pb, trade_service_client::TradeServiceClient};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

use crate::{
    ledger::{AckedOrder, AckedPayment, Ledger},
    setup::{Authorized, Bearer, Store, Tablet},
};

/// Attempts per request (the first and the retries) before it is given up.
const ATTEMPTS: usize = 4;
/// The longest a single call may take before the tablet gives up on it and retries.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How many error messages are kept to show what went wrong.
const ERROR_SAMPLES: usize = 5;

/// How the tablets behave.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub duration: Duration,
    pub connections: usize,
    pub pay_every: u32,
}

/// What the tablets saw.
pub struct Outcome {
    pub ledger: Ledger,
    /// Microseconds from sending an order to its answer (retries included).
    pub order_latency: Histogram<u64>,
    pub payment_latency: Histogram<u64>,
    pub refused: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// From the first order sent to the last answer received.
    pub elapsed: Duration,
    /// CPU time the system's processes (and the benchmark) used meanwhile, by process.
    pub cpu: Vec<(String, Duration)>,
    /// Each role's peak resident memory over its life, in KiB.
    pub peak_memory: Vec<(String, u64)>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

impl Outcome {
    fn new() -> Self {
        Self {
            ledger: Ledger::default(),
            order_latency: histogram(),
            payment_latency: histogram(),
            refused: 0,
            errors: 0,
            error_samples: Vec::new(),
            elapsed: Duration::ZERO,
            cpu: Vec::new(),
            peak_memory: Vec::new(),
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.ledger.merge(other.ledger);
        // Same bounds on both sides: adding cannot fail.
        let _ = self.order_latency.add(&other.order_latency);
        let _ = self.payment_latency.add(&other.payment_latency);
        self.refused += other.refused;
        self.errors += other.errors;
        for sample in other.error_samples {
            if self.error_samples.len() < ERROR_SAMPLES {
                self.error_samples.push(sample);
            }
        }
    }

    fn error(&mut self, what: &str, status: &Status) {
        self.errors += 1;
        if self.error_samples.len() < ERROR_SAMPLES {
            self.error_samples.push(format!(
                "{what}: {:?} {} {}",
                status.code(),
                reason(status),
                status.message()
            ));
        }
    }

    fn record(histogram: &mut Histogram<u64>, since: Instant) {
        let micros = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        histogram.saturating_record(micros.max(1));
    }
}

/// The `ErrorInfo` reason of a status, empty when it has none.
pub fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// Failures a tablet sends again with the same key: the outcome is unknown or the
/// system asks for a retry.
fn worth_retrying(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
    )
}

fn with_timeout<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    request
}

/// Runs the tablets of every store against the edge at `edge` for `load.duration`.
pub async fn run(edge: SocketAddr, stores: &[Store], load: Load) -> anyhow::Result<Outcome> {
    let mut channels = Vec::with_capacity(load.connections.max(1));
    for _ in 0..load.connections.max(1) {
        channels.push(
            Channel::from_shared(format!("http://{edge}"))?
                .tcp_nodelay(true)
                .connect()
                .await
                .context("connect to the edge")?,
        );
    }
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut tasks = Vec::new();
    let tablets = stores
        .iter()
        .flat_map(|store| store.tablets.iter().map(move |tablet| (store, tablet)));
    for (n, (store, tablet)) in tablets.enumerate() {
        let channel = channels[n % channels.len()].clone();
        let player = Player::new(channel, store, tablet, n as u64)?;
        tasks.push(tokio::spawn(player.play(deadline, load.pay_every)));
    }
    let mut outcome = Outcome::new();
    for task in tasks {
        outcome.merge(task.await.context("a tablet's task failed")?);
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// One tablet, and its owner when the bill is to be paid.
struct Player {
    tablet: TradeServiceClient<Authorized>,
    owner: TradeServiceClient<Authorized>,
    device_id: i64,
    products: Vec<i64>,
    /// Makes this tablet's keys unique in the run.
    name: u64,
    rng: StdRng,
    outcome: Outcome,
}

impl Player {
    fn new(channel: Channel, store: &Store, tablet: &Tablet, name: u64) -> anyhow::Result<Self> {
        Ok(Self {
            tablet: TradeServiceClient::with_interceptor(
                channel.clone(),
                Bearer::new(&tablet.token)?,
            ),
            owner: TradeServiceClient::with_interceptor(channel, store.owner.clone()),
            device_id: tablet.device_id,
            products: store.products.iter().map(|p| p.id).collect(),
            name,
            rng: StdRng::seed_from_u64(name),
            outcome: Outcome::new(),
        })
    }

    async fn play(mut self, deadline: Instant, pay_every: u32) -> Outcome {
        let (mut placed, mut paid) = (0u64, 0u64);
        let mut on_bill = 0u32;
        let mut bill_amount = 0i64;
        while Instant::now() < deadline {
            let key = format!("bench-{}-o{placed}", self.name);
            placed += 1;
            if let Some(bill) = self.order(key).await {
                on_bill += 1;
                bill_amount = bill;
            }
            if on_bill >= pay_every {
                let key = format!("bench-{}-p{paid}", self.name);
                paid += 1;
                if self.pay(key, bill_amount).await {
                    on_bill = 0;
                }
            }
        }
        self.outcome
    }

    /// 1-3 lines of distinct products, 1-3 of each.
    fn lines(&mut self) -> Vec<pb::OrderLineInput> {
        let n = self.rng.gen_range(1..=3).min(self.products.len());
        let chosen: Vec<i64> = self
            .products
            .choose_multiple(&mut self.rng, n)
            .copied()
            .collect();
        chosen
            .into_iter()
            .map(|product_id| pb::OrderLineInput {
                product_id,
                count: self.rng.gen_range(1..=3),
            })
            .collect()
    }

    /// Places one order; the bill's amount after it, when it was placed.
    async fn order(&mut self, key: String) -> Option<i64> {
        let request = pb::PlaceOrderRequest {
            lines: self.lines(),
            idempotency_key: key,
        };
        let sent = Instant::now();
        for _ in 0..ATTEMPTS {
            match self.tablet.place_order(with_timeout(request.clone())).await {
                Ok(answer) => {
                    Outcome::record(&mut self.outcome.order_latency, sent);
                    let answer = answer.into_inner();
                    let (Some(order), Some(trade)) = (answer.order, answer.trade) else {
                        self.outcome
                            .error("PlaceOrder", &Status::internal("no order or bill"));
                        return None;
                    };
                    self.outcome.ledger.orders.push(AckedOrder {
                        id: order.id,
                        trade_id: order.trade_id,
                        amount: order.amount,
                        lines: order
                            .lines
                            .iter()
                            .map(|l| (l.product_id, l.count))
                            .collect(),
                    });
                    return Some(trade.amount);
                }
                Err(status) if reason(&status) == "OUT_OF_STOCK" => {
                    self.outcome.refused += 1;
                    return None;
                }
                Err(status) => {
                    self.outcome.error("PlaceOrder", &status);
                    if !worth_retrying(&status) {
                        return None;
                    }
                }
            }
        }
        None
    }

    /// Pays the tablet's bill as its owner; whether it was paid.
    async fn pay(&mut self, key: String, expected: i64) -> bool {
        let request = pb::PayCashRequest {
            device_id: self.device_id,
            expected_amount: Some(expected),
            idempotency_key: key,
        };
        let sent = Instant::now();
        for _ in 0..ATTEMPTS {
            match self.owner.pay_cash(with_timeout(request.clone())).await {
                Ok(answer) => {
                    Outcome::record(&mut self.outcome.payment_latency, sent);
                    let Some(payment) = answer.into_inner().payment else {
                        self.outcome
                            .error("PayCash", &Status::internal("no payment in the answer"));
                        return false;
                    };
                    if payment.amount != expected {
                        let why = format!("paid {} instead of {expected}", payment.amount);
                        self.outcome.error("PayCash", &Status::internal(why));
                    }
                    self.outcome.ledger.payments.push(AckedPayment {
                        id: payment.id,
                        trade_id: payment.trade_id,
                        amount: payment.amount,
                    });
                    return true;
                }
                Err(status) => {
                    self.outcome.error("PayCash", &status);
                    if !worth_retrying(&status) {
                        return false;
                    }
                }
            }
        }
        false
    }
}
