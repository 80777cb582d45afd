//! Live bills: WatchCurrentTrade (a tablet's bill) and WatchOpenTrades (a store's open
//! bills). Whichever replica commits an order or a payment announces it on the event bus
//! (`bill:<device id>` and `store:<store id>`); every watcher hears it, wherever it is
//! connected, and reads again from storage: a tablet's watcher its one bill, a counter's
//! watcher the bill the event names (every open bill of the store when it may have
//! missed events, and every 30 s in any case). The events only ever prompt a read, so a
//! lost or late one costs at most a stale moment (30 s at worst), never a wrong bill: a
//! watcher that fell behind reads everything again, and one whose subscription is lost
//! (its Redis connection) ends with UNAVAILABLE so its client reconnects and reads
//! afresh. When the server stops, every
//! stream ends with UNAVAILABLE (`SERVER_STOPPING`) instead of holding the shutdown.
//!
//! A watcher sends a bill only when it differs from what it last sent, so retries and
//! duplicate events cost nothing on the wire. The caller's token is checked again on
//! every event and every [`CREDENTIAL_RECHECK`] as a new call's would be, so a stream
//! ends even when its bills are quiet: `TOKEN_REVOKED` for a revoked tablet or an owner
//! who logged out, `TOKEN_EXPIRED` once the token expires.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use pos_common::{
    ApiError, ApiResult, Reason,
    auth::{Authenticator, CLOCK_LEEWAY_SECS, Claims, Principal},
    clock::SharedClock,
    domain::{DeviceId, StoreId},
    events::{Event, EventError, Events, SharedEventBus},
    stopping::Stopping,
};
use pos_proto::v1 as pb;
use pos_trade_storage::{Bill, TradeId, TradeStatus, TradeStorage};
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Status, codegen::BoxStream};

use crate::{announcing::Announcements, convert};

/// How often an idle watcher checks that its caller's token would still be let in.
pub const CREDENTIAL_RECHECK: Duration = Duration::from_secs(3);

/// How long a credential check may take before it is put off to the next one.
const CHECK_DEADLINE: Duration = Duration::from_secs(5);

/// Every this many quiet checks ([`CREDENTIAL_RECHECK`] apart, so 30 s) a watcher reads
/// everything again, whatever the events said.
const RESYNC_EVERY_CHECKS: u32 = 10;

/// Messages a watcher may have ready before it waits for its client to take them.
const BUFFERED_MESSAGES: usize = 16;

/// The topic of one tablet's bill.
pub fn bill_topic(device: DeviceId) -> String {
    format!("bill:{device}")
}

/// The topic of every bill of one store.
pub fn store_topic(store: StoreId) -> String {
    format!("store:{store}")
}

/// Who called a watch, as their token said when the stream began: checked again while
/// it lasts.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub claims: Claims,
}

impl Caller {
    pub fn of<T>(request: &tonic::Request<T>) -> ApiResult<Self> {
        Ok(Self {
            principal: Principal::of(request)?.clone(),
            claims: Claims::of(request)?.clone(),
        })
    }
}

/// Announces changed bills and serves the streams that follow them.
#[derive(Clone)]
pub struct Watches {
    storage: Arc<dyn TradeStorage>,
    bus: SharedEventBus,
    auth: Authenticator,
    clock: SharedClock,
    stopping: Stopping,
    announcements: Announcements,
}

impl Watches {
    pub fn new(
        storage: Arc<dyn TradeStorage>,
        bus: SharedEventBus,
        auth: Authenticator,
        clock: SharedClock,
        stopping: Stopping,
    ) -> Self {
        Self {
            storage,
            announcements: Announcements::start(bus.clone()),
            bus,
            auth,
            clock,
            stopping,
        }
    }

    /// Tells every watcher of the tablet's bill and of its store that the bill changed
    /// (behind the caller's answer, see [`Announcements`]).
    pub fn announce(&self, store: StoreId, device: DeviceId, trade: TradeId) {
        self.announcements.bill_changed(store, device, trade);
    }

    /// The tablet's bill now, then after every change.
    pub async fn current_trade(
        &self,
        caller: Caller,
        store: StoreId,
        device: DeviceId,
    ) -> ApiResult<BoxStream<pb::WatchCurrentTradeResponse>> {
        // Subscribed before the first read, so no change slips between the two.
        let events = self.bus.subscribe(&bill_topic(device)).await?;
        let view = CurrentBill {
            storage: self.storage.clone(),
            store,
            device,
            started: false,
            shown: None,
        };
        Ok(self.follow(view, events, caller))
    }

    /// Every open bill of the store now, then each bill of the store as it changes.
    pub async fn open_trades(
        &self,
        caller: Caller,
        store: StoreId,
    ) -> ApiResult<BoxStream<pb::WatchOpenTradesResponse>> {
        let events = self.bus.subscribe(&store_topic(store)).await?;
        let view = OpenBills {
            storage: self.storage.clone(),
            store,
            started: false,
            shown: BTreeMap::new(),
        };
        Ok(self.follow(view, events, caller))
    }

    /// Runs `view` in a task of its own until the client goes away or the stream must end.
    fn follow<V: View>(&self, view: V, events: Events, caller: Caller) -> BoxStream<V::Message> {
        let (sender, receiver) = mpsc::channel(BUFFERED_MESSAGES);
        let watcher = Watcher {
            auth: self.auth.clone(),
            clock: self.clock.clone(),
            caller,
            sender,
            stopping: self.stopping.clone(),
        };
        tokio::spawn(watcher.run(view, events));
        Box::pin(ReceiverStream::new(receiver))
    }
}

/// What may have changed since a view was last brought up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Changed {
    /// Anything: the stream just started, or events were missed.
    Anything,
    /// This bill (an order was placed on it, or it was paid).
    Bill(TradeId),
}

impl Changed {
    /// What an event says changed: announcements carry the bill's id.
    fn of(event: &Event) -> Self {
        match event {
            Event::Published(payload) => std::str::from_utf8(payload)
                .ok()
                .and_then(|id| id.parse::<i64>().ok())
                .and_then(|id| TradeId::parse(id).ok())
                .map_or(Self::Anything, Self::Bill),
            Event::Missed => Self::Anything,
        }
    }
}

/// What a stream shows, read again whenever something may have changed.
#[async_trait]
trait View: Send + 'static {
    type Message: Send + 'static;

    /// The messages that bring the client up to date with storage after `changed`.
    async fn refresh(&mut self, changed: Changed) -> ApiResult<Vec<Self::Message>>;
}

struct Watcher<M> {
    auth: Authenticator,
    clock: SharedClock,
    caller: Caller,
    sender: mpsc::Sender<Result<M, Status>>,
    stopping: Stopping,
}

impl<M: Send + 'static> Watcher<M> {
    async fn run<V: View<Message = M>>(self, mut view: V, mut events: Events) {
        let mut recheck =
            tokio::time::interval_at(Instant::now() + CREDENTIAL_RECHECK, CREDENTIAL_RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut changed = Changed::Anything;
        let mut quiet_checks = 0u32;
        loop {
            match view.refresh(changed).await {
                Ok(messages) => {
                    for message in messages {
                        if self.sender.send(Ok(message)).await.is_err() {
                            return; // The client went away.
                        }
                    }
                }
                Err(err) => return self.end(err.into()).await,
            }
            // Wait for a reason to read again; an event that was missed is one too.
            loop {
                tokio::select! {
                    () = self.sender.closed() => return,
                    // Ends now rather than hold the server's shutdown until its grace
                    // runs out; the client reconnects to a replica that stays.
                    () = self.stopping.stopped() => return self.end(stopping().into()).await,
                    event = events.next() => match event {
                        Some(event) => {
                            changed = Changed::of(&event);
                            break;
                        }
                        None => return self.end(ApiError::from(EventError::Ended).into()).await,
                    },
                    _ = recheck.tick() => {
                        if let Err(err) = self.still_allowed().await {
                            return self.end(err.into()).await;
                        }
                        // An announcement that was never published (the bus was down
                        // when the change committed) is caught up with here.
                        quiet_checks += 1;
                        if quiet_checks.is_multiple_of(RESYNC_EVERY_CHECKS) {
                            changed = Changed::Anything;
                            break;
                        }
                    }
                }
            }
            if let Err(err) = self.still_allowed().await {
                return self.end(err.into()).await;
            }
        }
    }

    /// [`Watcher::allowed`] within [`CHECK_DEADLINE`]. A check that could not be made
    /// (the store role down or slow) does not end the stream: the next one asks again.
    async fn still_allowed(&self) -> ApiResult<()> {
        match tokio::time::timeout(CHECK_DEADLINE, self.allowed()).await {
            Ok(Err(err)) if err.reason() == Reason::DependencyUnavailable => {
                tracing::debug!(error = %err, "a watcher's credential check was put off");
                Ok(())
            }
            Ok(checked) => checked,
            Err(_) => {
                tracing::debug!("a watcher's credential check timed out; put off");
                Ok(())
            }
        }
    }

    /// Whether a new call with the caller's token would still be let in: not expired,
    /// its login not logged out or revoked, a tablet's credential still current.
    async fn allowed(&self) -> ApiResult<()> {
        let now = self.clock.now().timestamp();
        if now
            > self
                .caller
                .claims
                .exp
                .saturating_add(CLOCK_LEEWAY_SECS.cast_signed())
        {
            return Err(ApiError::new(
                Reason::TokenExpired,
                "the token expired; watch again with a fresh one",
            ));
        }
        self.auth.check_revocation(&self.caller.claims).await?;
        self.auth.check_device(&self.caller.principal).await
    }

    async fn end(self, status: Status) {
        // The client may be gone already, or not reading; then nobody needs to hear why.
        let _ = tokio::time::timeout(CHECK_DEADLINE, self.sender.send(Err(status))).await;
    }
}

fn stopping() -> ApiError {
    ApiError::new(
        Reason::ServerStopping,
        "this server is stopping; watch again to reach another",
    )
}

/// One tablet's bill: absent when it has none; when the bill it showed was paid, that
/// bill once more as PAID, then the next one (or none).
struct CurrentBill {
    storage: Arc<dyn TradeStorage>,
    store: StoreId,
    device: DeviceId,
    started: bool,
    shown: Option<(TradeId, pb::Trade)>,
}

#[async_trait]
impl View for CurrentBill {
    type Message = pb::WatchCurrentTradeResponse;

    async fn refresh(&mut self, _changed: Changed) -> ApiResult<Vec<Self::Message>> {
        // One bill is all this view reads, whatever changed.
        let open = self
            .storage
            .open_trade(self.store, self.device)
            .await?
            .map(|bill| (bill.trade.id, convert::bill(bill, None)));
        let mut messages = Vec::new();
        if let Some((shown_id, _)) = &self.shown
            && open.as_ref().map(|(id, _)| id) != Some(shown_id)
            && let Some(paid) = paid_bill(self.storage.as_ref(), self.store, *shown_id).await?
        {
            messages.push(pb::WatchCurrentTradeResponse { trade: Some(paid) });
        }
        let current = open.as_ref().map(|(_, trade)| trade);
        if !self.started || current != self.shown.as_ref().map(|(_, trade)| trade) {
            messages.push(pb::WatchCurrentTradeResponse {
                trade: current.cloned(),
            });
        }
        self.started = true;
        self.shown = open;
        Ok(messages)
    }
}

/// A store's open bills: each once at the start and then a message without a bill (the
/// client now knows them all, even when there are none), then whichever changed, and a
/// bill that was paid once more as PAID.
struct OpenBills {
    storage: Arc<dyn TradeStorage>,
    store: StoreId,
    started: bool,
    shown: BTreeMap<TradeId, pb::Trade>,
}

#[async_trait]
impl View for OpenBills {
    type Message = pb::WatchOpenTradesResponse;

    async fn refresh(&mut self, changed: Changed) -> ApiResult<Vec<Self::Message>> {
        match changed {
            // One bill changed: read that one rather than the whole store.
            Changed::Bill(id) if self.started => self.refresh_bill(id).await,
            _ => self.refresh_all().await,
        }
    }
}

impl OpenBills {
    async fn refresh_all(&mut self) -> ApiResult<Vec<pb::WatchOpenTradesResponse>> {
        let open: BTreeMap<TradeId, Bill> = self
            .storage
            .open_trades(self.store)
            .await?
            .into_iter()
            .map(|bill| (bill.trade.id, bill))
            .collect();
        let mut messages = Vec::new();
        let closed: Vec<TradeId> = self
            .shown
            .keys()
            .filter(|id| !open.contains_key(id))
            .copied()
            .collect();
        for id in closed {
            self.shown.remove(&id);
            if let Some(paid) = paid_bill(self.storage.as_ref(), self.store, id).await? {
                messages.push(pb::WatchOpenTradesResponse { trade: Some(paid) });
            }
        }
        for (id, bill) in open {
            let trade = convert::bill(bill, None);
            if self.shown.get(&id) != Some(&trade) {
                self.shown.insert(id, trade.clone());
                messages.push(pb::WatchOpenTradesResponse { trade: Some(trade) });
            }
        }
        if !self.started {
            self.started = true;
            messages.push(pb::WatchOpenTradesResponse { trade: None });
        }
        Ok(messages)
    }

    async fn refresh_bill(&mut self, id: TradeId) -> ApiResult<Vec<pb::WatchOpenTradesResponse>> {
        let Some(bill) = self.storage.trade(self.store, id).await? else {
            return Ok(Vec::new());
        };
        let trade = match bill.trade.status {
            TradeStatus::Open => convert::bill(bill, None),
            // Shown once more as paid, if it was shown open at all.
            TradeStatus::Paid if self.shown.remove(&id).is_some() => {
                let payment = self.storage.trade_payment(self.store, id).await?;
                return Ok(vec![pb::WatchOpenTradesResponse {
                    trade: Some(convert::bill(bill, payment)),
                }]);
            }
            TradeStatus::Paid => return Ok(Vec::new()),
        };
        if self.shown.get(&id) == Some(&trade) {
            return Ok(Vec::new());
        }
        self.shown.insert(id, trade.clone());
        Ok(vec![pb::WatchOpenTradesResponse { trade: Some(trade) }])
    }
}

/// The bill as paid, with its payment, when it was paid.
async fn paid_bill(
    storage: &dyn TradeStorage,
    store: StoreId,
    trade: TradeId,
) -> ApiResult<Option<pb::Trade>> {
    let Some(bill) = storage
        .trade(store, trade)
        .await?
        .filter(|bill| bill.trade.status == TradeStatus::Paid)
    else {
        return Ok(None);
    };
    let payment = storage.trade_payment(store, trade).await?;
    Ok(Some(convert::bill(bill, payment)))
}
