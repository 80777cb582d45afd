//! Placing an order, Try-Confirm-Cancel across two roles: the store reserves the stock
//! (Try), the order is committed here, and the reservation is confirmed (Confirm; in the
//! background, batched with other orders', see [`crate::confirming`]) — or, when the order
//! cannot be committed, given back (Cancel).
//!
//! The order id is derived from the tablet and its idempotency key, so every retry of a
//! request, even one racing the first attempt, reserves and commits the same id: the
//! store answers the same reservation and storage the same order. Stock is only given
//! back after [`TradeStorage::settle_order`] has fenced the id off, so a commit still in
//! flight can never land on stock that went back; and a reservation that was released
//! never backs an order.

use std::sync::Arc;

use pos_common::{
    ApiError, Reason,
    auth::DeviceCaller,
    domain::{Invalid, OrderLines, ProductId},
    error::Violations,
};
use pos_proto::v1 as pb;
use pos_trade_storage::{
    Category, Committed, IdempotencyKey, MAX_BILL_LINES, NewOrder, Order, OrderId, SnapshotLine,
    StorageResult, Trade, TradeStorage,
};
use tonic::Status;
use uuid::Uuid;

use crate::{
    batching::{BatchLimits, BatchLost, Batcher},
    confirming::Confirmations,
    faults::Faults,
    stock::{ReserveError, StoreStock, holds_stock},
};

/// The namespace of order ids (a fixed random UUID): ids of this system never collide
/// with UUIDs derived for anything else.
const ORDER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_23c4_8e0a_4d5b_9a27_51c3_e8f4_0d6a);

/// A valid PlaceOrder request: its lines merged by product (stock is checked on the
/// total), in product id order, and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub lines: OrderLines,
    pub key: IdempotencyKey,
}

impl OrderRequest {
    /// Every bad field named at once: `lines`, `lines[i].product_id`, `lines[i].count`,
    /// `idempotency_key`.
    pub fn parse(request: &pb::PlaceOrderRequest) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let raw: Vec<(i64, i64)> = request
            .lines
            .iter()
            .map(|line| (line.product_id, line.count))
            .collect();
        let lines = OrderLines::parse(&raw, &mut violations);
        let key = violations.check(
            "idempotency_key",
            IdempotencyKey::parse(&request.idempotency_key),
        );
        violations.finish(|| {
            Some(Self {
                lines: lines?,
                key: key?,
            })
        })
    }

    /// The same for every retry of this request, different for any other: the merged
    /// lines as `product:count,...`.
    pub fn fingerprint(&self) -> String {
        let lines: Vec<String> = self
            .lines
            .lines()
            .iter()
            .map(|line| format!("{}:{}", line.product_id, line.count))
            .collect();
        lines.join(",")
    }

    /// The order id of this tablet's request with this key.
    pub fn order_id(&self, tablet: &DeviceCaller) -> OrderId {
        let name = format!(
            "{}/{}/{}",
            tablet.store_id,
            tablet.device_id,
            self.key.as_str()
        );
        let id = Uuid::new_v5(&ORDER_ID_NAMESPACE, name.as_bytes());
        // A hyphenated UUID is 36 visible ASCII characters: always a valid order id.
        OrderId::from_stored(id.hyphenated().to_string())
    }
}

/// A call whose batch went away: the role is stopping (or the batch failed badly).
fn lost(err: BatchLost) -> Status {
    ApiError::unavailable("this order's batch", err).into()
}

fn key_reused() -> ApiError {
    ApiError::new(
        Reason::IdempotencyKeyReused,
        "this idempotency key was already used for a different order",
    )
}

/// The answer to a request whose order id was given up — by an earlier attempt with its
/// key that was refused, or by the reconciler because it took too long: that key cannot
/// place an order any more.
fn cancelled(order: &OrderId) -> ApiError {
    ApiError::new(
        Reason::ReservationClosed,
        "this order (or an earlier attempt with its idempotency key) failed or took too \
         long and was cancelled; nothing was ordered: place it again with a new idempotency key",
    )
    .with_metadata("order_id", order.as_str())
}

/// The reservation's lines as the order keeps them.
fn snapshot(reservation: &pb::Reservation) -> Result<Vec<SnapshotLine>, Invalid> {
    reservation
        .lines
        .iter()
        .map(|line| {
            Ok(SnapshotLine {
                product_id: ProductId::parse(line.product_id)?,
                product_name: line.product_name.clone(),
                category: Category::parse(line.category)?,
                unit_price: line.unit_price,
                count: line.count,
            })
        })
        .collect()
}

/// Orders placed at the same time are reserved together (one ReserveStocks call) and
/// committed together (one transaction), at most this many at once (a cap of 32 cost a
/// third of the mesh's throughput; the largest answer, 100 lines of 255-character names
/// per order, fits the store's internal answer limit, 32 MiB)...
const MAX_BATCH: usize = 200;
/// ...in this many batches of each kind at once. One: the next batch gathers while one
/// runs, so the busier the role the bigger its batches; two at once made them smaller,
/// and two reservation batches mostly wait for each other's product locks anyway (the
/// mesh measured 2,200 orders/s at two, 2,600/s at one, with less CPU per order).
const BATCHES_IN_FLIGHT: usize = 1;
/// Orders waiting for a batch at most; past it, tablets' calls wait for room.
const BATCH_QUEUE: usize = 4_096;
/// How long a batch may take before its orders fail as unknown (their reservations are
/// then settled by a retry or the store's reconciler): about a unary call's deadline.
const BATCH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

type Reservations = Batcher<pb::ReserveStockRequest, Result<pb::Reservation, ReserveError>>;
type Commits = Batcher<NewOrder, StorageResult<Committed>>;

/// Places tablets' orders.
#[derive(Clone)]
pub struct Ordering {
    storage: Arc<dyn TradeStorage>,
    stock: StoreStock,
    reservations: Reservations,
    commits: Commits,
    confirmations: Confirmations,
    /// Where tests make an order stop half-way (nothing without `fault-injection`).
    faults: Faults,
}

fn limits(name: &'static str) -> BatchLimits {
    BatchLimits {
        name,
        max_batch: MAX_BATCH,
        in_flight: BATCHES_IN_FLIGHT,
        queue: BATCH_QUEUE,
        deadline: BATCH_DEADLINE,
    }
}

impl Ordering {
    /// Must be called within the runtime: it starts batching and confirming in the
    /// background.
    pub fn new(storage: Arc<dyn TradeStorage>, stock: StoreStock, faults: Faults) -> Self {
        let reservations = Batcher::start(limits("reservation"), {
            let stock = stock.clone();
            move |orders| {
                let stock = stock.clone();
                async move { stock.reserve_many(orders).await }
            }
        });
        let commits = Batcher::start(limits("commit"), {
            let storage = storage.clone();
            move |orders: Vec<NewOrder>| {
                let storage = storage.clone();
                async move { storage.commit_orders(&orders).await }
            }
        });
        Self {
            storage,
            confirmations: Confirmations::start(stock.clone()),
            stock,
            reservations,
            commits,
            faults,
        }
    }

    /// Places the order on the tablet's open bill (opening one), or answers the order a
    /// retry of the same request placed. Answers the order and its bill's head (total and
    /// status) as it is now: the bill's orders are not read again for every order.
    pub async fn place(
        &self,
        tablet: DeviceCaller,
        request: &OrderRequest,
    ) -> Result<(Order, Trade), Status> {
        // A retry (or a copy racing the first attempt) takes the same path: the store
        // answers the same reservation and the commit finds the order already placed, or
        // the key used for other lines. No read ahead of the reservation, so an order
        // costs no lookup that only retries need.
        let order_id = request.order_id(&tablet);
        let wanted = pb::ReserveStockRequest {
            order_id: order_id.as_str().to_string(),
            store_id: tablet.store_id.get(),
            lines: request
                .lines
                .lines()
                .iter()
                .map(|line| pb::StockRequestLine {
                    product_id: line.product_id.get(),
                    count: line.count,
                })
                .collect(),
            // The tablet's credential is checked with the reservation (the edge leaves
            // it to this call), so an order costs no lookup of its own for it.
            tablet: Some(pb::OrderingTablet {
                device_id: tablet.device_id.get(),
                credential_version: tablet.credential_version,
            }),
        };
        let reserved = self.reservations.call(wanted).await.map_err(lost)?;
        let reservation = match reserved {
            Ok(reservation) => reservation,
            Err(ReserveError::Refused(status)) => return Err(status),
            Err(ReserveError::KeyReused) => return Err(key_reused().into()),
            Err(ReserveError::Failed(err)) => return Err(err.into()),
        };
        if !holds_stock(&reservation) {
            // Given up by the reconciler or by an earlier attempt of this request.
            return Err(cancelled(&order_id).into());
        }
        self.faults.after_reserve(&order_id)?;
        let new_order = snapshot(&reservation).and_then(|lines| {
            NewOrder::new(
                order_id.clone(),
                tablet.store_id,
                tablet.device_id,
                request.key.clone(),
                request.fingerprint(),
                lines,
            )
        });
        let new_order = match new_order {
            Ok(order) => order,
            Err(why) => {
                self.cancel(&order_id).await;
                return Err(ApiError::internal(format!(
                    "the store's reservation of {} is not an order: {why}",
                    order_id.as_str()
                ))
                .into());
            }
        };
        // Lost with its batch (a panic, its deadline, or the role stopping): whether it
        // committed is unknown, so the reservation stays for a retry (which finds the
        // order if it was committed) or the reconciler to settle.
        let committed = self.commits.call(new_order).await.map_err(lost)?;
        let committed = match committed {
            Ok(committed) => committed,
            // A busy or unreachable database asks for a retry, which must be able to
            // succeed with the same key: the reservation stays for it (or for the
            // reconciler, if no retry comes).
            Err(
                err @ (pos_common::storage::StorageError::Unavailable(_)
                | pos_common::storage::StorageError::Contention(_)),
            ) => return Err(err.into()),
            Err(err) => {
                self.cancel(&order_id).await;
                return Err(err.into());
            }
        };
        let (order, trade) = match committed {
            Committed::Placed { order, trade } | Committed::Existing { order, trade } => {
                (order, trade)
            }
            Committed::KeyReused => {
                self.cancel(&order_id).await;
                return Err(key_reused().into());
            }
            Committed::Overflow => {
                self.cancel(&order_id).await;
                return Err(ApiError::invalid(
                    "lines",
                    "the bill would exceed the largest amount it can hold; pay it first",
                )
                .into());
            }
            Committed::BillFull => {
                self.cancel(&order_id).await;
                return Err(ApiError::invalid(
                    "lines",
                    format!(
                        "the bill would hold more than {MAX_BILL_LINES} order lines; pay it first"
                    ),
                )
                .into());
            }
            Committed::Abandoned => {
                self.cancel(&order_id).await;
                return Err(cancelled(&order_id).into());
            }
        };
        // The order stands whatever the store answers now: its reservation is confirmed
        // in the background (with others committed meanwhile), or by the reconciler.
        self.confirmations.confirm(order_id);
        Ok((order, trade))
    }

    /// Resolves the reservation of an order that was not placed by this call: fences the
    /// order id off first, then gives the stock back — or confirms it, when the order
    /// turns out committed after all (a commit whose answer was lost). Whatever cannot be
    /// done now is left to the store's reconciler, which asks the same question.
    async fn cancel(&self, order: &OrderId) {
        match self.storage.settle_order(order).await {
            Ok(false) => {
                if let Err(status) = self.stock.release(order).await {
                    tracing::warn!(
                        order_id = order.as_str(),
                        %status,
                        "could not release an abandoned order's stock; the reconciler will"
                    );
                }
            }
            Ok(true) => self.confirmations.confirm(order.clone()),
            Err(err) => tracing::warn!(
                order_id = order.as_str(),
                error = %err,
                "could not settle an order that failed; the reconciler will"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use pos_common::domain::{DeviceId, MAX_LINE_COUNT, MAX_ORDER_LINES, StoreId};

    use super::*;

    fn request(lines: &[(i64, i64)], key: &str) -> pb::PlaceOrderRequest {
        pb::PlaceOrderRequest {
            lines: lines
                .iter()
                .map(|&(product_id, count)| pb::OrderLineInput { product_id, count })
                .collect(),
            idempotency_key: key.into(),
        }
    }

    fn fields(err: ApiError) -> Vec<String> {
        err.violations().iter().map(|v| v.field.clone()).collect()
    }

    #[test]
    fn lines_merge_and_every_bad_field_is_named() {
        let parsed = OrderRequest::parse(&request(&[(4, 2), (2, 4), (4, 3)], "k")).expect("ok");
        assert_eq!(parsed.fingerprint(), "2:4,4:5");
        let err = OrderRequest::parse(&request(
            &[(0, 1), (1, 0), (1, MAX_LINE_COUNT + 1)],
            "has space",
        ))
        .expect_err("invalid");
        assert_eq!(
            fields(err),
            [
                "lines[0].product_id",
                "lines[1].count",
                "lines[2].count",
                "idempotency_key"
            ]
        );
        // The limit holds for a product's lines together; huge counts never overflow.
        let err = OrderRequest::parse(&request(&[(1, MAX_LINE_COUNT), (1, 1)], "k"))
            .expect_err("merged over the limit");
        assert_eq!(fields(err), ["lines[1].count"]);
        let err =
            OrderRequest::parse(&request(&[(1, i64::MAX), (1, i64::MAX)], "k")).expect_err("huge");
        assert_eq!(fields(err), ["lines[0].count", "lines[1].count"]);
        let err = OrderRequest::parse(&request(&[], "")).expect_err("empty");
        assert_eq!(fields(err), ["lines", "idempotency_key"]);
        let many = vec![(1, 1); MAX_ORDER_LINES + 1];
        let err = OrderRequest::parse(&request(&many, "k")).expect_err("too many");
        assert_eq!(fields(err), ["lines"]);
        let long = "k".repeat(IdempotencyKey::MAX_LEN + 1);
        let err = OrderRequest::parse(&request(&[(1, 1)], &long)).expect_err("long key");
        assert_eq!(fields(err), ["idempotency_key"]);
    }

    #[test]
    fn order_ids_depend_on_the_tablet_and_the_key_only() {
        let tablet = |device| DeviceCaller {
            store_id: StoreId::from_stored(1),
            device_id: DeviceId::from_stored(device),
            credential_version: 1,
        };
        let a = OrderRequest::parse(&request(&[(1, 1)], "k")).expect("ok");
        let b = OrderRequest::parse(&request(&[(2, 9)], "k")).expect("ok");
        let c = OrderRequest::parse(&request(&[(1, 1)], "other")).expect("ok");
        assert_eq!(a.order_id(&tablet(1)), b.order_id(&tablet(1)));
        assert_ne!(a.order_id(&tablet(1)), a.order_id(&tablet(2)));
        assert_ne!(a.order_id(&tablet(1)), c.order_id(&tablet(1)));
        assert!(OrderId::parse(a.order_id(&tablet(1)).as_str()).is_ok());
    }
}
