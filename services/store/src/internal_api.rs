//! `pos.v1.StoreInternalService`: what other roles call (signup, ordering, tablet checks,
//! settlement). Each RPC names the roles whose service tokens may call it; the edge never
//! forwards these.

use std::sync::Arc;

use pos_common::{
    ApiError, ApiResult, Reason,
    auth::{Principal, internal_only},
    domain::{DeviceId, Grade, SettlementDay, StoreId, StoreName, StoreRequest, UserId},
    error::Violations,
};
use pos_proto::v1::{self as pb, store_internal_service_server::StoreInternalService};
use pos_store_storage::{
    Confirmed, OrderId, OrderLines, Released, Reserved, Shortage, StoreStorage,
};
use tonic::{Request, Response, Status};

use crate::convert;

/// Who may call what: signup creates stores, trade moves stock, whoever serves tablets
/// checks their credentials, settlement lists stores by settlement day.
const CREATES_STORES: &[&str] = &["user"];
const MOVES_STOCK: &[&str] = &["trade"];
const CHECKS_TABLETS: &[&str] = &["edge", "trade"];
const SETTLES: &[&str] = &["settlement"];

const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;

#[derive(Clone)]
pub struct StoreInternalApi {
    storage: Arc<dyn StoreStorage>,
}

impl StoreInternalApi {
    pub fn new(storage: Arc<dyn StoreStorage>) -> Self {
        Self { storage }
    }
}

fn caller<T>(request: &Request<T>, allowed: &[&str]) -> ApiResult<()> {
    Principal::of(request)
        .map_err(|_| internal_only())?
        .require_service(allowed)
}

fn order_id(raw: &str) -> ApiResult<OrderId> {
    OrderId::parse(raw).map_err(|why| ApiError::invalid("order_id", why))
}

fn reservation_closed(message: &str) -> ApiError {
    ApiError::new(Reason::ReservationClosed, message)
}

/// OUT_OF_STOCK naming each short product and what is available (`product_<id>` keys,
/// and `available` as `id:count,...`).
fn out_of_stock(short: &[Shortage]) -> ApiError {
    let listing: Vec<String> = short
        .iter()
        .map(|s| format!("{}:{}", s.product_id, s.available))
        .collect();
    let mut err = ApiError::new(
        Reason::OutOfStock,
        format!(
            "not enough stock (product:available) {}",
            listing.join(", ")
        ),
    )
    .with_metadata("available", listing.join(","));
    for shortage in short {
        err = err.with_metadata(
            format!("product_{}", shortage.product_id),
            shortage.available,
        );
    }
    err
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl StoreInternalService for StoreInternalApi {
    async fn create_store_for_owner(
        &self,
        request: Request<pb::CreateStoreForOwnerRequest>,
    ) -> RpcResult<pb::CreateStoreForOwnerResponse> {
        caller(&request, CREATES_STORES)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let owner = violations.check("owner_user_id", UserId::parse(body.owner_user_id));
        let name = violations.check("store_name", StoreName::parse(&body.store_name));
        let grade = violations.check("pos_grade", Grade::parse(body.pos_grade));
        let day = violations.check("settlement_day", SettlementDay::parse(body.settlement_day));
        let (owner, wanted) = violations.finish(|| {
            Some((
                owner?,
                StoreRequest {
                    name: name?,
                    grade: grade?,
                    settlement_day: day?,
                },
            ))
        })?;
        let (store, created) = self.storage.create_store_for_owner(owner, &wanted).await?;
        Ok(Response::new(pb::CreateStoreForOwnerResponse {
            store: Some(convert::store(store)),
            created,
        }))
    }

    async fn reserve_stock(
        &self,
        request: Request<pb::ReserveStockRequest>,
    ) -> RpcResult<pb::ReserveStockResponse> {
        caller(&request, MOVES_STOCK)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let order = violations.check("order_id", OrderId::parse(&body.order_id));
        let store = violations.check("store_id", StoreId::parse(body.store_id));
        let raw: Vec<(i64, i64)> = body.lines.iter().map(|l| (l.product_id, l.count)).collect();
        let lines = OrderLines::parse(&raw, &mut violations);
        let (order, store, lines) = violations.finish(|| Some((order?, store?, lines?)))?;
        let record = match self.storage.reserve(&order, store, &lines).await? {
            Reserved::Taken(record) | Reserved::Existing(record) => record,
            Reserved::KeyReused => {
                return Err(ApiError::new(
                    Reason::IdempotencyKeyReused,
                    "this order id was already used for a different reservation",
                )
                .with_metadata("order_id", order.as_str())
                .into());
            }
            Reserved::OutOfStock(short) => return Err(out_of_stock(&short).into()),
            Reserved::ProductNotFound(product_id) => {
                return Err(ApiError::new(
                    Reason::ProductNotFound,
                    format!("product {product_id} not found in this store"),
                )
                .with_metadata("product_id", product_id)
                .into());
            }
        };
        Ok(Response::new(pb::ReserveStockResponse {
            reservation: Some(convert::reservation(record)),
        }))
    }

    async fn confirm_stock(
        &self,
        request: Request<pb::ConfirmStockRequest>,
    ) -> RpcResult<pb::ConfirmStockResponse> {
        caller(&request, MOVES_STOCK)?;
        let order = order_id(&request.get_ref().order_id)?;
        let record = match self.storage.confirm(&order).await? {
            Confirmed::Confirmed(record) => record,
            Confirmed::AlreadyReleased(_) => {
                return Err(reservation_closed(
                    "the reservation was released and cannot be confirmed",
                )
                .into());
            }
            Confirmed::NotFound => {
                return Err(ApiError::new(
                    Reason::ReservationNotFound,
                    "no reservation for this order id",
                )
                .into());
            }
        };
        Ok(Response::new(pb::ConfirmStockResponse {
            reservation: Some(convert::reservation(record)),
        }))
    }

    async fn release_stock(
        &self,
        request: Request<pb::ReleaseStockRequest>,
    ) -> RpcResult<pb::ReleaseStockResponse> {
        caller(&request, MOVES_STOCK)?;
        let order = order_id(&request.get_ref().order_id)?;
        let record = match self.storage.release(&order).await? {
            Released::Released(record) => record,
            Released::AlreadyConfirmed(_) => {
                return Err(reservation_closed(
                    "the reservation was confirmed and cannot be released",
                )
                .into());
            }
        };
        Ok(Response::new(pb::ReleaseStockResponse {
            reservation: Some(convert::reservation(record)),
        }))
    }

    async fn get_device_credential(
        &self,
        request: Request<pb::GetDeviceCredentialRequest>,
    ) -> RpcResult<pb::GetDeviceCredentialResponse> {
        caller(&request, CHECKS_TABLETS)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let store = violations.check("store_id", StoreId::parse(body.store_id));
        let device = violations.check("device_id", DeviceId::parse(body.device_id));
        let (store, device) = violations.finish(|| Some((store?, device?)))?;
        let device =
            self.storage.device(store, device).await?.ok_or_else(|| {
                ApiError::new(Reason::DeviceNotFound, "no such device in this store")
            })?;
        Ok(Response::new(pb::GetDeviceCredentialResponse {
            credential_version: device.credential_version,
            revoked: device.revoked_at.is_some(),
        }))
    }

    async fn list_stores_by_settlement_day(
        &self,
        request: Request<pb::ListStoresBySettlementDayRequest>,
    ) -> RpcResult<pb::ListStoresBySettlementDayResponse> {
        caller(&request, SETTLES)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let day = violations.check("settlement_day", SettlementDay::parse(body.settlement_day));
        let page = body.page.clone().unwrap_or_default();
        let limit = match i64::from(page.page_size) {
            0 => Some(DEFAULT_PAGE),
            n if (1..=MAX_PAGE).contains(&n) => Some(n),
            _ => {
                violations.add(
                    "page.page_size",
                    format!("must be between 0 and {MAX_PAGE}"),
                );
                None
            }
        };
        let after_id = if page.page_token.is_empty() {
            Some(0)
        } else {
            page.page_token.parse::<i64>().ok().or_else(|| {
                violations.add("page.page_token", "not a token from a previous page");
                None
            })
        };
        let (day, limit, after_id) = violations.finish(|| Some((day?, limit?, after_id?)))?;
        let stores = self
            .storage
            .stores_by_settlement_day(day, after_id, limit)
            .await?;
        let next_page_token = match stores.last() {
            Some(last) if stores.len() as i64 == limit => last.id.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListStoresBySettlementDayResponse {
            stores: stores.into_iter().map(convert::store).collect(),
            next_page_token,
        }))
    }
}
