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
use tonic::Status;
use tonic_types::StatusExt;

/// Reasons of the store's refusals a tablet is told as they are: they are about its
/// order (what is short, which product is unknown), not about the mesh.
const REFUSALS_FOR_THE_CALLER: [Reason; 2] = [Reason::OutOfStock, Reason::ProductNotFound];

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

impl StoreStock {
    pub fn new(store: Peer, credential: &ServiceCredential) -> Self {
        Self {
            client: StoreInternalServiceClient::new(with_service_token(store, credential)),
        }
    }

    /// Takes the stock of `lines` (merged, in product id order) for the order.
    pub async fn reserve(
        &self,
        order: &OrderId,
        store_id: i64,
        lines: &[(i64, i64)],
    ) -> Result<pb::Reservation, ReserveError> {
        let answer = self
            .client
            .clone()
            .reserve_stock(pb::ReserveStockRequest {
                order_id: order.as_str().to_string(),
                store_id,
                lines: lines
                    .iter()
                    .map(|&(product_id, count)| pb::StockRequestLine { product_id, count })
                    .collect(),
            })
            .await;
        match answer {
            Ok(response) => response.into_inner().reservation.ok_or_else(|| {
                ReserveError::Failed(ApiError::internal("the store answered no reservation"))
            }),
            Err(status) => {
                let why = reason(&status);
                if REFUSALS_FOR_THE_CALLER
                    .iter()
                    .any(|refusal| refusal.as_str() == why)
                {
                    Err(ReserveError::Refused(status))
                } else if why == Reason::IdempotencyKeyReused.as_str() {
                    Err(ReserveError::KeyReused)
                } else {
                    Err(ReserveError::Failed(call_failure("store", status)))
                }
            }
        }
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
