//! `pos.v1.StoreInternalService`: what other roles call (signup, ordering, tablet checks,
//! settlement). Each RPC names the roles whose service tokens may call it; the edge never
//! forwards these.

use std::{collections::HashMap, sync::Arc};

use pos_common::{
    ApiError, ApiResult, Reason,
    auth::{DeviceCaller, DeviceCredential, Principal, internal_only, is_current},
    domain::{DeviceId, Grade, SettlementDay, StoreId, StoreName, StoreRequest, UserId},
    error::Violations,
};
use pos_proto::v1::{self as pb, store_internal_service_server::StoreInternalService};
use pos_store_storage::{
    Confirmed, MAX_CONFIRM_BATCH, MAX_RESERVE_BATCH, OrderId, OrderLines, Released, Reserved,
    Shortage, StockRequest, StoreStorage,
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

impl StoreInternalApi {
    /// Refuses (`TOKEN_REVOKED`) each order whose tablet's credential is not current:
    /// one read for all of them.
    async fn with_current_tablets(
        &self,
        orders: Vec<ApiResult<Wanted>>,
    ) -> ApiResult<Vec<ApiResult<Wanted>>> {
        let ids: Vec<DeviceId> = orders
            .iter()
            .filter_map(|wanted| wanted.as_ref().ok()?.tablet.as_ref())
            .map(|tablet| tablet.device_id)
            .collect();
        if ids.is_empty() {
            return Ok(orders);
        }
        let current: HashMap<(DeviceId, StoreId), DeviceCredential> = self
            .storage
            .devices_by_id(&ids)
            .await?
            .into_iter()
            .map(|device| {
                let credential = DeviceCredential {
                    version: device.credential_version,
                    revoked: device.revoked_at.is_some(),
                };
                ((device.id, device.store_id), credential)
            })
            .collect();
        Ok(orders
            .into_iter()
            .map(|wanted| {
                let wanted = wanted?;
                if let Some(tablet) = &wanted.tablet {
                    let credential = current.get(&(tablet.device_id, tablet.store_id)).copied();
                    is_current(credential, tablet)?;
                }
                Ok(wanted)
            })
            .collect())
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

/// A ReserveStock request, checked: every bad field named at once.
#[derive(Debug, Clone)]
struct Wanted {
    stock: StockRequest,
    /// The ordering tablet, whose credential must be current.
    tablet: Option<DeviceCaller>,
}

fn stock_request(body: &pb::ReserveStockRequest) -> ApiResult<Wanted> {
    let mut violations = Violations::new();
    let order = violations.check("order_id", OrderId::parse(&body.order_id));
    let store = violations.check("store_id", StoreId::parse(body.store_id));
    let raw: Vec<(i64, i64)> = body.lines.iter().map(|l| (l.product_id, l.count)).collect();
    let lines = OrderLines::parse(&raw, &mut violations);
    let tablet = body
        .tablet
        .as_ref()
        .map(|tablet| violations.check("tablet.device_id", DeviceId::parse(tablet.device_id)));
    violations.finish(|| {
        let store = store?;
        let tablet = match (tablet, &body.tablet) {
            (Some(device), Some(given)) => Some(DeviceCaller {
                store_id: store,
                device_id: device?,
                credential_version: given.credential_version,
            }),
            _ => None,
        };
        Some(Wanted {
            stock: StockRequest {
                order: order?,
                store,
                lines: lines?,
            },
            tablet,
        })
    })
}

/// The reservation ReserveStock answers, or the refusal it fails with.
fn reservation_of(order: &OrderId, reserved: Reserved) -> ApiResult<pb::Reservation> {
    let record = match reserved {
        Reserved::Taken(record) | Reserved::Existing(record) => record,
        Reserved::KeyReused => {
            return Err(ApiError::new(
                Reason::IdempotencyKeyReused,
                "this order id was already used for a different reservation",
            )
            .with_metadata("order_id", order.as_str()));
        }
        Reserved::OutOfStock(short) => return Err(out_of_stock(&short)),
        Reserved::ProductNotFound(product_id) => {
            return Err(ApiError::new(
                Reason::ProductNotFound,
                format!("product {product_id} not found in this store"),
            )
            .with_metadata("product_id", product_id));
        }
    };
    Ok(convert::reservation(record))
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
        let wanted = stock_request(request.get_ref())?;
        let wanted = self
            .with_current_tablets(vec![Ok(wanted)])
            .await?
            .pop()
            .ok_or(ApiError::internal("a checked order went missing"))??;
        let stock = &wanted.stock;
        let reserved = self
            .storage
            .reserve(&stock.order, stock.store, &stock.lines)
            .await?;
        Ok(Response::new(pb::ReserveStockResponse {
            reservation: Some(reservation_of(&stock.order, reserved)?),
        }))
    }

    async fn reserve_stocks(
        &self,
        request: Request<pb::ReserveStocksRequest>,
    ) -> RpcResult<pb::ReserveStocksResponse> {
        caller(&request, MOVES_STOCK)?;
        let orders = &request.get_ref().orders;
        if orders.is_empty() || orders.len() > MAX_RESERVE_BATCH {
            return Err(ApiError::invalid(
                "orders",
                format!("must hold 1 to {MAX_RESERVE_BATCH} orders"),
            )
            .into());
        }
        // Each order is answered on its own: a bad one is refused as ReserveStock would
        // refuse it, and the others are reserved.
        let parsed: Vec<ApiResult<Wanted>> = orders.iter().map(stock_request).collect();
        let parsed = self.with_current_tablets(parsed).await?;
        let valid: Vec<StockRequest> = parsed
            .iter()
            .filter_map(|wanted| wanted.as_ref().ok().map(|wanted| wanted.stock.clone()))
            .collect();
        let mut reserved = self.storage.reserve_many(&valid).await.into_iter();
        let outcomes = parsed
            .into_iter()
            .map(|wanted| {
                let answer = wanted.and_then(|wanted| {
                    let outcome = reserved.next().ok_or(ApiError::internal(
                        "the storage answered fewer reservations than it was asked",
                    ))?;
                    reservation_of(&wanted.stock.order, outcome?)
                });
                pb::ReserveStockOutcome {
                    outcome: Some(match answer {
                        Ok(reservation) => {
                            pb::reserve_stock_outcome::Outcome::Reservation(reservation)
                        }
                        Err(refused) => {
                            let status = Status::from(refused);
                            pb::reserve_stock_outcome::Outcome::Refusal(pb::ReserveStockRefusal {
                                code: status.code() as i32,
                                message: status.message().to_string(),
                                details: status.details().to_vec(),
                            })
                        }
                    }),
                }
            })
            .collect();
        Ok(Response::new(pb::ReserveStocksResponse { outcomes }))
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

    async fn confirm_stocks(
        &self,
        request: Request<pb::ConfirmStocksRequest>,
    ) -> RpcResult<pb::ConfirmStocksResponse> {
        caller(&request, MOVES_STOCK)?;
        let ids = &request.get_ref().order_ids;
        let mut violations = Violations::new();
        if ids.is_empty() || ids.len() > MAX_CONFIRM_BATCH {
            violations.add(
                "order_ids",
                format!("must hold 1 to {MAX_CONFIRM_BATCH} order ids"),
            );
        }
        let orders: Vec<Option<OrderId>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| violations.check(&format!("order_ids[{i}]"), OrderId::parse(id)))
            .collect();
        let orders = violations.finish(|| orders.into_iter().collect::<Option<Vec<_>>>())?;
        let outcome = self.storage.confirm_many(&orders).await?;
        let names = |ids: Vec<OrderId>| ids.iter().map(|id| id.as_str().to_string()).collect();
        Ok(Response::new(pb::ConfirmStocksResponse {
            released_order_ids: names(outcome.released),
            unknown_order_ids: names(outcome.unknown),
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
