//! The store role's stock, as the trade role moves it: reserve an order's lines, then
//! confirm or release the reservation, over `StoreInternalService` with the trade role's
//! service token.

use pos_common::{
    ApiError, Reason,
    peer::{Peer, ServiceCredential, WithServiceToken, call_failure, with_service_token},
};
use pos_proto::v1::{
    self as pb, ReservationStatus, store_internal_service_client::StoreInternalServiceClient,
};
use pos_trade_storage::OrderId;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Reasons of the store's refusals a tablet is told as they are: they are about its
/// order (what is short, which product is unknown) or its credential, not about the mesh.
const REFUSALS_FOR_THE_CALLER: [Reason; 3] = [
    Reason::OutOfStock,
    Reason::ProductNotFound,
    Reason::TokenRevoked,
];

/// Why the store did not reserve.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// The store refused the order itself (short, unknown product): the store's status,
    /// passed through to the tablet.
    #[error("the store refused the order: {0}")]
    Refused(Status),
    /// The order id holds another request's reservation.
    #[error("the order id holds another request's reservation")]
    KeyReused,
    /// The store could not be asked, or answered something unexpected.
    #[error("the store could not reserve: {0}")]
    Failed(#[source] ApiError),
}

/// The largest answer taken from the store: a ReserveStocks batch of up to 200 large
/// orders (the store role encodes up to as much).
const MAX_STORE_ANSWER_BYTES: usize = 32 * 1024 * 1024;

#[derive(Clone)]
pub struct StoreStock {
    client: StoreInternalServiceClient<WithServiceToken<Peer>>,
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// One order's answer in a ReserveStocks call, as ReserveStock would have answered it.
fn outcome(answer: pb::ReserveStockOutcome) -> Result<pb::Reservation, ReserveError> {
    match answer.outcome {
        Some(pb::reserve_stock_outcome::Outcome::Reservation(reservation)) => Ok(reservation),
        Some(pb::reserve_stock_outcome::Outcome::Refusal(refusal)) => {
            Err(refused(Status::with_details(
                Code::from_i32(refusal.code),
                refusal.message,
                refusal.details.into(),
            )))
        }
        None => Err(ReserveError::Failed(ApiError::internal(
            "the store answered neither a reservation nor a refusal",
        ))),
    }
}

/// Sorts a refusal of the store: passed on, a reused key, or the store's failure.
fn refused(status: Status) -> ReserveError {
    let why = reason(&status);
    if REFUSALS_FOR_THE_CALLER
        .iter()
        .any(|refusal| refusal.as_str() == why)
    {
        ReserveError::Refused(status)
    } else if why == Reason::IdempotencyKeyReused.as_str() {
        ReserveError::KeyReused
    } else {
        ReserveError::Failed(call_failure("store", status))
    }
}

impl StoreStock {
    pub fn new(store: Peer, credential: &ServiceCredential) -> Self {
        Self {
            client: StoreInternalServiceClient::new(with_service_token(store, credential))
                .max_decoding_message_size(MAX_STORE_ANSWER_BYTES),
        }
    }

    /// Takes the stock of each order's lines (merged, in product id order) in one call:
    /// one answer per order, in order. A call that fails as a whole fails every order —
    /// after one more try when the store was unreachable: reserving is idempotent per
    /// order id, and a lost answer would otherwise hold a whole batch's stock until the
    /// reconciler gives it back.
    pub async fn reserve_many(
        &self,
        orders: Vec<pb::ReserveStockRequest>,
    ) -> Vec<Result<pb::Reservation, ReserveError>> {
        let count = orders.len();
        let request = pb::ReserveStocksRequest { orders };
        let mut answer = self.client.clone().reserve_stocks(request.clone()).await;
        if matches!(&answer, Err(status) if status.code() == tonic::Code::Unavailable) {
            answer = self.client.clone().reserve_stocks(request).await;
        }
        let outcomes = match answer {
            Ok(response) => response.into_inner().outcomes,
            Err(status) => {
                return (0..count)
                    .map(|_| Err(ReserveError::Failed(call_failure("store", status.clone()))))
                    .collect();
            }
        };
        if outcomes.len() != count {
            return (0..count)
                .map(|_| {
                    Err(ReserveError::Failed(ApiError::internal(
                        "the store answered another number of reservations than it was asked",
                    )))
                })
                .collect();
        }
        outcomes.into_iter().map(outcome).collect()
    }

    /// Makes many orders' reservations final at once; the answer names those that could
    /// not be (released, or never reserved).
    pub async fn confirm_many(
        &self,
        orders: &[OrderId],
    ) -> Result<pb::ConfirmStocksResponse, Status> {
        self.client
            .clone()
            .confirm_stocks(pb::ConfirmStocksRequest {
                order_ids: orders.iter().map(|o| o.as_str().to_string()).collect(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Gives the order's reserved stock back.
    pub async fn release(&self, order: &OrderId) -> Result<(), Status> {
        self.client
            .clone()
            .release_stock(pb::ReleaseStockRequest {
                order_id: order.as_str().to_string(),
            })
            .await
            .map(drop)
    }
}

/// Whether a reservation still holds (or has sold) its stock: a released one, or a
/// tombstone left by a release that came first, must never back an order.
pub fn holds_stock(reservation: &pb::Reservation) -> bool {
    matches!(
        ReservationStatus::try_from(reservation.status),
        Ok(ReservationStatus::Reserved | ReservationStatus::Confirmed)
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use pos_common::{
        auth::{SigningKey, TokenIssuer},
        clock,
        peer::in_process,
    };
    use tonic::{body::Body, codegen::http};

    use super::*;

    /// A store that fails every call with `code`, counting the calls.
    fn store_failing_with(code: Code, calls: Arc<AtomicUsize>) -> StoreStock {
        let store = in_process(tower::service_fn(move |_: http::Request<Body>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let answer = Status::new(code, "as the test says").into_http::<Body>();
            async move { Ok::<_, std::convert::Infallible>(answer) }
        }));
        let issuer = TokenIssuer::new(Arc::new(SigningKey::generate()), "i", "a");
        StoreStock::new(
            store,
            &ServiceCredential::new(issuer, "trade", clock::system()),
        )
    }

    fn an_order(id: &str) -> pb::ReserveStockRequest {
        pb::ReserveStockRequest {
            order_id: id.into(),
            store_id: 1,
            lines: vec![pb::StockRequestLine {
                product_id: 1,
                count: 1,
            }],
            tablet: None,
        }
    }

    #[tokio::test]
    async fn a_batch_the_store_could_not_be_reached_for_is_sent_once_more() {
        let calls = Arc::new(AtomicUsize::new(0));
        let stock = store_failing_with(Code::Unavailable, calls.clone());
        let answers = stock.reserve_many(vec![an_order("a"), an_order("b")]).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one more try");
        assert_eq!(answers.len(), 2);
        assert!(
            answers
                .iter()
                .all(|answer| matches!(answer, Err(ReserveError::Failed(_))))
        );
    }

    #[tokio::test]
    async fn a_batch_the_store_refused_as_a_whole_is_not_sent_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let stock = store_failing_with(Code::InvalidArgument, calls.clone());
        let answers = stock.reserve_many(vec![an_order("a")]).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no second try");
        assert!(matches!(answers[..], [Err(ReserveError::Failed(_))]));
    }
}
