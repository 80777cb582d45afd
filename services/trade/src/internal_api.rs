//! `pos.v1.TradeInternalService`: what other roles call. The store's reconciler asks
//! whether an order was committed before it gives the order's stock back; only the
//! store role's service token may ask, and the edge never forwards this.

use std::sync::Arc;

use pos_common::{
    ApiError,
    auth::{Principal, internal_only},
};
use pos_proto::v1::{self as pb, trade_internal_service_server::TradeInternalService};
use pos_trade_storage::{OrderId, TradeStorage};
use tonic::{Request, Response, Status};

/// Who may call what: the store's reconciler settles reservations.
const SETTLES_RESERVATIONS: &[&str] = &["store"];

#[derive(Clone)]
pub struct TradeInternalApi {
    storage: Arc<dyn TradeStorage>,
}

impl TradeInternalApi {
    pub fn new(storage: Arc<dyn TradeStorage>) -> Self {
        Self { storage }
    }
}

#[tonic::async_trait]
impl TradeInternalService for TradeInternalApi {
    /// Whether the order was committed. When it was not, asking gives its id up for
    /// good (a commit still in flight is abandoned), so the answer never changes and the
    /// caller may release the stock.
    async fn check_order_exists(
        &self,
        request: Request<pb::CheckOrderExistsRequest>,
    ) -> Result<Response<pb::CheckOrderExistsResponse>, Status> {
        Principal::of(&request)
            .map_err(|_| internal_only())?
            .require_service(SETTLES_RESERVATIONS)?;
        let order = OrderId::parse(&request.get_ref().order_id)
            .map_err(|why| ApiError::invalid("order_id", why))?;
        let exists = self.storage.settle_order(&order).await?;
        Ok(Response::new(pb::CheckOrderExistsResponse { exists }))
    }
}
