//! Resolves stock reservations nobody confirmed or released: the trade role reserves
//! stock, commits the order, then confirms; if it dies or loses its connection between
//! those steps, the reservation would hold stock forever. Every reservation still
//! unconfirmed after the reservation timeout is settled by asking the trade role whether
//! the order was committed: yes → confirm (the stock is sold), no → release (the stock
//! goes back), no answer → leave it and ask again next round.
//!
//! Several store replicas may run this at once. Confirm and release are conditional
//! transitions of one row, so each reservation is resolved exactly once whoever gets
//! there first, and a committed order's stock is never given back: a `false` from the
//! ledger must be final (the trade role fences the order id off before answering, so a
//! commit still in flight fails instead of landing after its stock went back).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use pos_common::{clock::SharedClock, peer::Peer, stopping::Stopping, storage::StorageError};
use pos_proto::v1::{
    CheckOrderExistsRequest, trade_internal_service_client::TradeInternalServiceClient,
};
use pos_store_storage::{Confirmed, OrderId, Released, StoreStorage};

/// How long a reservation may stay unconfirmed before it is resolved.
pub const DEFAULT_RESERVATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Reservations resolved per round at most; the next round takes the rest.
const BATCH: i64 = 200;

/// How long the trade role has to answer about one order before it counts as unreachable.
const LEDGER_DEADLINE: Duration = Duration::from_secs(5);

/// The ledger could not say whether an order was committed.
#[derive(Debug, thiserror::Error)]
#[error("cannot learn whether order {order} was committed")]
pub struct LedgerUnreachable {
    pub order: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Where committed orders are known: the trade role.
#[async_trait]
pub trait OrderLedger: Send + Sync + 'static {
    /// Whether `order` was committed. `false` is final: the order can never be committed
    /// after this answer.
    async fn order_exists(&self, order: &OrderId) -> Result<bool, LedgerUnreachable>;
}

/// The trade role's `CheckOrderExists`, called with this role's service token.
pub struct TradeLedger {
    client: TradeInternalServiceClient<Peer>,
}

impl TradeLedger {
    /// `trade` must already carry the store role's service token.
    pub fn new(trade: Peer) -> Self {
        Self {
            client: TradeInternalServiceClient::new(trade),
        }
    }
}

#[async_trait]
impl OrderLedger for TradeLedger {
    async fn order_exists(&self, order: &OrderId) -> Result<bool, LedgerUnreachable> {
        self.client
            .clone()
            .check_order_exists(CheckOrderExistsRequest {
                order_id: order.as_str().to_string(),
            })
            .await
            .map(|answer| answer.into_inner().exists)
            .map_err(|status| LedgerUnreachable {
                order: order.as_str().to_string(),
                source: Box::new(status),
            })
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Orders found committed whose reservations this round confirmed.
    pub confirmed: usize,
    /// Orders never committed whose reservations this round found released: it gave
    /// their stock back (or a replica racing it did, once).
    pub released: usize,
    /// Reservations left for a later round: the ledger did not answer.
    pub deferred: usize,
    /// Reservations another replica (or the trade role) resolved meanwhile.
    pub resolved_elsewhere: usize,
}

pub struct Reconciler {
    storage: Arc<dyn StoreStorage>,
    ledger: Arc<dyn OrderLedger>,
    clock: SharedClock,
    timeout: Duration,
}

impl Reconciler {
    pub fn new(
        storage: Arc<dyn StoreStorage>,
        ledger: Arc<dyn OrderLedger>,
        clock: SharedClock,
        timeout: Duration,
    ) -> Self {
        Self {
            storage,
            ledger,
            clock,
            timeout,
        }
    }

    /// Resolves the reservations that are stale now.
    pub async fn round(&self) -> Result<Round, StorageError> {
        let timeout = chrono::Duration::from_std(self.timeout).unwrap_or(chrono::Duration::MAX);
        let made_before = self
            .clock
            .now()
            .checked_sub_signed(timeout)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let stale = self.storage.stale_reservations(made_before, BATCH).await?;
        let mut round = Round::default();
        for order in stale {
            // A trade role that hangs must not hold the round (and every later one).
            let answer = tokio::time::timeout(LEDGER_DEADLINE, self.ledger.order_exists(&order))
                .await
                .unwrap_or_else(|elapsed| {
                    Err(LedgerUnreachable {
                        order: order.as_str().to_string(),
                        source: Box::new(elapsed),
                    })
                });
            match answer {
                Ok(true) => match self.storage.confirm(&order).await? {
                    Confirmed::Confirmed(_) => round.confirmed += 1,
                    Confirmed::AlreadyReleased(_) => {
                        // Only a ledger whose "no" was not final can lead here.
                        tracing::error!(
                            order = order.as_str(),
                            "a committed order's reservation was already released"
                        );
                        round.resolved_elsewhere += 1;
                    }
                    Confirmed::NotFound => round.resolved_elsewhere += 1,
                },
                Ok(false) => match self.storage.release(&order).await? {
                    Released::Released(_) => round.released += 1,
                    Released::AlreadyConfirmed(_) => round.resolved_elsewhere += 1,
                },
                Err(err) => {
                    tracing::warn!(error = %err, source = %err.source, "reservation left for the next round");
                    round.deferred += 1;
                }
            }
        }
        Ok(round)
    }

    /// Runs a round every `every` until the process stops; a failed round is logged and
    /// the next one tries again. A round cut short by the stop leaves no step half-done
    /// (each is one store transaction or one question to trade); what it did not reach,
    /// a later round does.
    pub async fn run(self, every: Duration, stopping: Stopping) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stopping.stopped() => return,
                _ = ticks.tick() => {}
            }
            let round = tokio::select! {
                () = stopping.stopped() => return,
                round = self.round() => round,
            };
            match round {
                Ok(round) if round != Round::default() => {
                    tracing::info!(?round, "stale reservations resolved");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "reservation round failed"),
            }
        }
    }
}
