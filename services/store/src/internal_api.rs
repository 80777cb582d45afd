//! `pos.v1.StoreInternalService`: what other services call (signup, ordering, batch).
//! Every call must come from a service principal; the edge never forwards these.

use pos_common::{ApiError, ApiResult, auth::Principal, error::Violations};
use pos_proto::v1::{self as pb, store_internal_service_server::StoreInternalService};
use tonic::{Request, Response, Status};

use crate::{
    convert,
    domain::{Grade, SettlementDay, StoreName, parse_id, parse_order_id},
    repo::{ReserveLine, StoreRepo},
};

/// Most lines one order may have (SPEC: ordering).
pub const MAX_ORDER_LINES: usize = 100;
/// Most of one product one line may ask for.
pub const MAX_LINE_COUNT: i64 = 10_000_000;
const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;

#[derive(Clone)]
pub struct StoreInternalApi {
    repo: StoreRepo,
}

impl StoreInternalApi {
    pub fn new(repo: StoreRepo) -> Self {
        Self { repo }
    }
}

fn require_service<T>(request: &Request<T>) -> ApiResult<()> {
    Principal::of(request)
        .map_err(|_| {
            ApiError::new(
                pos_common::Reason::InternalOnly,
                "this API is internal to the system",
            )
        })?
        .require_service()
}

fn order_id(raw: &str) -> ApiResult<String> {
    parse_order_id(raw).map_err(|why| ApiError::invalid("order_id", why))
}

/// Validates reservation lines: 1-100 lines, counts 1-10,000,000, positive product ids.
fn reserve_lines(lines: &[pb::StockRequestLine]) -> ApiResult<Vec<ReserveLine>> {
    let mut violations = Violations::new();
    if lines.is_empty() {
        violations.add("lines", "at least one line is required");
    }
    if lines.len() > MAX_ORDER_LINES {
        violations.add("lines", format!("at most {MAX_ORDER_LINES} lines"));
    }
    for (i, line) in lines.iter().enumerate() {
        if line.product_id <= 0 {
            violations.add(&format!("lines[{i}].product_id"), "must be a positive id");
        }
        if !(1..=MAX_LINE_COUNT).contains(&line.count) {
            violations.add(
                &format!("lines[{i}].count"),
                format!("must be between 1 and {MAX_LINE_COUNT}"),
            );
        }
    }
    violations.into_result()?;
    Ok(lines
        .iter()
        .map(|l| ReserveLine {
            product_id: l.product_id,
            count: l.count,
        })
        .collect())
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl StoreInternalService for StoreInternalApi {
    async fn create_store_for_owner(
        &self,
        request: Request<pb::CreateStoreForOwnerRequest>,
    ) -> RpcResult<pb::CreateStoreForOwnerResponse> {
        require_service(&request)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let owner = violations.check("owner_user_id", parse_id(body.owner_user_id));
        let name = violations.check("store_name", StoreName::parse(&body.store_name));
        let grade = violations.check("pos_grade", Grade::parse(body.pos_grade));
        let day = violations.check("settlement_day", SettlementDay::parse(body.settlement_day));
        violations.into_result()?;
        let (Some(owner), Some(name), Some(grade), Some(day)) = (owner, name, grade, day) else {
            return Err(ApiError::internal("validated fields missing").into());
        };
        let (store, created) = self
            .repo
            .create_store_for_owner(owner, &name, grade, day)
            .await?;
        Ok(Response::new(pb::CreateStoreForOwnerResponse {
            store: Some(convert::store(store)),
            created,
        }))
    }

    async fn reserve_stock(
        &self,
        request: Request<pb::ReserveStockRequest>,
    ) -> RpcResult<pb::ReserveStockResponse> {
        require_service(&request)?;
        let body = request.get_ref();
        let order_id = order_id(&body.order_id)?;
        let store_id = parse_id(body.store_id).map_err(|why| ApiError::invalid("store_id", why))?;
        let lines = reserve_lines(&body.lines)?;
        let record = self.repo.reserve(&order_id, store_id, &lines).await?;
        Ok(Response::new(pb::ReserveStockResponse {
            reservation: Some(convert::reservation(record)),
        }))
    }

    async fn confirm_stock(
        &self,
        request: Request<pb::ConfirmStockRequest>,
    ) -> RpcResult<pb::ConfirmStockResponse> {
        require_service(&request)?;
        let order_id = order_id(&request.get_ref().order_id)?;
        let record = self.repo.confirm(&order_id).await?;
        Ok(Response::new(pb::ConfirmStockResponse {
            reservation: Some(convert::reservation(record)),
        }))
    }

    async fn release_stock(
        &self,
        request: Request<pb::ReleaseStockRequest>,
    ) -> RpcResult<pb::ReleaseStockResponse> {
        require_service(&request)?;
        let order_id = order_id(&request.get_ref().order_id)?;
        let record = self.repo.release(&order_id).await?;
        Ok(Response::new(pb::ReleaseStockResponse {
            reservation: Some(convert::reservation(record)),
        }))
    }

    async fn get_device_credential(
        &self,
        request: Request<pb::GetDeviceCredentialRequest>,
    ) -> RpcResult<pb::GetDeviceCredentialResponse> {
        require_service(&request)?;
        let body = request.get_ref();
        let device = self
            .repo
            .device(body.store_id, body.device_id)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    pos_common::Reason::DeviceNotFound,
                    "no such device in this store",
                )
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
        require_service(&request)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let day = violations.check("settlement_day", SettlementDay::parse(body.settlement_day));
        let page = body.page.clone().unwrap_or_default();
        let limit = match i64::from(page.page_size) {
            0 => DEFAULT_PAGE,
            n if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                violations.add(
                    "page.page_size",
                    format!("must be between 0 and {MAX_PAGE}"),
                );
                DEFAULT_PAGE
            }
        };
        let after_id = if page.page_token.is_empty() {
            Some(0)
        } else {
            violations.check(
                "page.page_token",
                page.page_token
                    .parse::<i64>()
                    .map_err(|_| "not a token from a previous page".to_string()),
            )
        };
        violations.into_result()?;
        let (Some(day), Some(after_id)) = (day, after_id) else {
            return Err(ApiError::internal("validated fields missing").into());
        };
        let stores = self
            .repo
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
