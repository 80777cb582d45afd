//! `pos.v1.TradeService`: what tablets and owners call. Tablets order onto their own
//! table's bill and read it; owners read and pay the bills of their own store. The store
//! is the one the verified token names, so another store's tablet is simply not found
//! (nothing leaks, nothing changes). A tablet's credential was checked before the
//! handler runs (by the auth layer, or by the edge).

use std::sync::Arc;

use chrono::Duration;
use pos_common::{
    ApiError, ApiResult, Reason,
    auth::{DeviceCredentials, Principal},
    clock::SharedClock,
    domain::{DeviceId, StoreId},
    error::Violations,
    time::from_timestamp,
};
use pos_proto::v1::{self as pb, CardCompany as PbCompany, trade_service_server::TradeService};
use pos_trade_storage::{
    CardCompany, IdempotencyKey, NewPayment, Paid, Payment, PaymentMethod, TradeStorage,
};
use tonic::{Request, Response, Status, codegen::BoxStream};

use crate::{
    convert,
    ordering::{OrderRequest, Ordering},
    paging::PaymentsPage,
    watch::{Caller, Watches},
};

/// How far back ListPayments looks when the request names no start.
const DEFAULT_PAYMENTS_SPAN_DAYS: i64 = 31;

/// The public trade API over the trade's storage and the store's stock.
#[derive(Clone)]
pub struct TradeApi {
    storage: Arc<dyn TradeStorage>,
    /// The store's tablets: which devices are the owner's, when a bill is not found.
    devices: Arc<dyn DeviceCredentials>,
    ordering: Ordering,
    watches: Watches,
    clock: SharedClock,
}

impl TradeApi {
    pub fn new(
        storage: Arc<dyn TradeStorage>,
        devices: Arc<dyn DeviceCredentials>,
        ordering: Ordering,
        watches: Watches,
        clock: SharedClock,
    ) -> Self {
        Self {
            devices,
            ordering,
            storage,
            watches,
            clock,
        }
    }

    /// Pays the device's open bill with `method`, answering the payment and the paid bill.
    async fn pay(
        &self,
        store_id: StoreId,
        device_id: DeviceId,
        method: PaymentMethod,
        expected_amount: Option<i64>,
        key: IdempotencyKey,
    ) -> ApiResult<(Payment, pb::Trade)> {
        let expected = expected_amount.map_or_else(|| "-".to_string(), |a| a.to_string());
        let company = method.company_name().unwrap_or("-");
        let payment = NewPayment {
            store_id,
            device_id,
            method,
            expected_amount,
            idempotency_key: key,
            fingerprint: format!(
                "device={device_id};method={};company={company};expected={expected}",
                method.method_name()
            ),
        };
        let payment = match self.storage.pay(&payment).await? {
            Paid::Paid { payment, .. } | Paid::Existing { payment, .. } => payment,
            Paid::KeyReused => {
                return Err(ApiError::new(
                    Reason::IdempotencyKeyReused,
                    "this idempotency key was already used for a different payment",
                ));
            }
            Paid::NoOpenTrade => return Err(self.no_open_trade(store_id, device_id).await),
            Paid::AmountChanged { actual } => {
                return Err(ApiError::new(
                    Reason::AmountChanged,
                    format!("the bill now comes to {actual}; nothing was paid"),
                )
                .with_metadata("actual_amount", actual));
            }
        };
        self.watches.announce(store_id, device_id, payment.trade_id);
        let bill = self
            .storage
            .trade(store_id, payment.trade_id)
            .await?
            .ok_or_else(|| ApiError::internal("a paid bill is missing"))?;
        Ok((payment.clone(), convert::bill(bill, Some(payment))))
    }
}

impl TradeApi {
    /// Why the owner's store has no open bill of `device`: the device is not one of the
    /// store's (NOT_FOUND DEVICE_NOT_FOUND), or it has no bill now. Asked of the store only
    /// on this path, so finding a bill costs no call.
    async fn no_open_trade(&self, store: StoreId, device: DeviceId) -> ApiError {
        match self.devices.current(store, device).await {
            Ok(Some(_)) => open_trade_not_found(device),
            Ok(None) => ApiError::new(
                Reason::DeviceNotFound,
                format!("device {device} is not a tablet of your store"),
            )
            .with_metadata("device_id", device),
            Err(err) => err,
        }
    }
}

/// The calling owner's store, as their verified token names it.
fn owner_store(principal: &Principal) -> ApiResult<StoreId> {
    let (_, store) = principal.require_owner()?;
    store.ok_or_else(|| {
        ApiError::new(
            Reason::StoreNotFound,
            "this owner has no store yet; finish signing up",
        )
    })
}

fn open_trade_not_found(device_id: DeviceId) -> ApiError {
    ApiError::new(
        Reason::OpenTradeNotFound,
        format!("device {device_id} of your store has no open bill"),
    )
    .with_metadata("device_id", device_id)
}

fn device_id(raw: i64, violations: &mut Violations) -> Option<DeviceId> {
    violations.check("device_id", DeviceId::parse(raw))
}

fn key(raw: &str, violations: &mut Violations) -> Option<IdempotencyKey> {
    violations.check("idempotency_key", IdempotencyKey::parse(raw))
}

fn expected_amount(raw: Option<i64>, violations: &mut Violations) -> Option<Option<i64>> {
    match raw {
        Some(amount) if amount < 0 => {
            violations.add("expected_amount", "must be at least 0");
            None
        }
        other => Some(other),
    }
}

fn card_company(raw: i32, violations: &mut Violations) -> Option<CardCompany> {
    match PbCompany::try_from(raw) {
        Ok(PbCompany::K) => Some(CardCompany::K),
        Ok(PbCompany::H) => Some(CardCompany::H),
        Ok(PbCompany::S) => Some(CardCompany::S),
        _ => {
            violations.add("card_company", "must be K, H or S");
            None
        }
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl TradeService for TradeApi {
    async fn place_order(
        &self,
        request: Request<pb::PlaceOrderRequest>,
    ) -> RpcResult<pb::PlaceOrderResponse> {
        let tablet = Principal::of(&request)?.require_device()?;
        let wanted = OrderRequest::parse(request.get_ref())?;
        let (order, trade) = self.ordering.place(tablet, &wanted).await?;
        self.watches
            .announce(tablet.store_id, tablet.device_id, trade.id);
        Ok(Response::new(pb::PlaceOrderResponse {
            order: Some(convert::order(order)),
            trade: Some(convert::trade(trade, None)),
        }))
    }

    async fn get_current_trade(
        &self,
        request: Request<pb::GetCurrentTradeRequest>,
    ) -> RpcResult<pb::GetCurrentTradeResponse> {
        let tablet = Principal::of(&request)?.require_device()?;
        let bill = self
            .storage
            .open_trade(tablet.store_id, tablet.device_id)
            .await?;
        Ok(Response::new(pb::GetCurrentTradeResponse {
            trade: bill.map(|bill| convert::bill(bill, None)),
        }))
    }

    type WatchCurrentTradeStream = BoxStream<pb::WatchCurrentTradeResponse>;

    async fn watch_current_trade(
        &self,
        request: Request<pb::WatchCurrentTradeRequest>,
    ) -> RpcResult<Self::WatchCurrentTradeStream> {
        let caller = Caller::of(&request)?;
        let tablet = caller.principal.require_device()?;
        let stream = self
            .watches
            .current_trade(caller, tablet.store_id, tablet.device_id)
            .await?;
        Ok(Response::new(stream))
    }

    async fn list_open_trades(
        &self,
        request: Request<pb::ListOpenTradesRequest>,
    ) -> RpcResult<pb::ListOpenTradesResponse> {
        let store = owner_store(Principal::of(&request)?)?;
        let heads = self.storage.open_trade_heads(store).await?;
        Ok(Response::new(pb::ListOpenTradesResponse {
            trades: heads
                .into_iter()
                .map(|trade| convert::trade(trade, None))
                .collect(),
        }))
    }

    async fn get_open_trade(
        &self,
        request: Request<pb::GetOpenTradeRequest>,
    ) -> RpcResult<pb::GetOpenTradeResponse> {
        let store = owner_store(Principal::of(&request)?)?;
        let mut violations = Violations::new();
        let device = device_id(request.get_ref().device_id, &mut violations);
        let device = violations.finish(|| device)?;
        let Some(bill) = self.storage.open_trade(store, device).await? else {
            return Err(self.no_open_trade(store, device).await.into());
        };
        Ok(Response::new(pb::GetOpenTradeResponse {
            trade: Some(convert::bill(bill, None)),
        }))
    }

    async fn pay_cash(
        &self,
        request: Request<pb::PayCashRequest>,
    ) -> RpcResult<pb::PayCashResponse> {
        let store = owner_store(Principal::of(&request)?)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let device = device_id(body.device_id, &mut violations);
        let expected = expected_amount(body.expected_amount, &mut violations);
        let key = key(&body.idempotency_key, &mut violations);
        let (device, expected, key) = violations.finish(|| Some((device?, expected?, key?)))?;
        let (payment, trade) = self
            .pay(store, device, PaymentMethod::Cash, expected, key)
            .await?;
        Ok(Response::new(pb::PayCashResponse {
            payment: Some(convert::payment(payment)),
            trade: Some(trade),
        }))
    }

    async fn pay_card(
        &self,
        request: Request<pb::PayCardRequest>,
    ) -> RpcResult<pb::PayCardResponse> {
        let store = owner_store(Principal::of(&request)?)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let device = device_id(body.device_id, &mut violations);
        let company = card_company(body.card_company, &mut violations);
        let expected = expected_amount(body.expected_amount, &mut violations);
        let key = key(&body.idempotency_key, &mut violations);
        let (device, company, expected, key) =
            violations.finish(|| Some((device?, company?, expected?, key?)))?;
        let (payment, trade) = self
            .pay(store, device, PaymentMethod::Card(company), expected, key)
            .await?;
        Ok(Response::new(pb::PayCardResponse {
            payment: Some(convert::payment(payment)),
            trade: Some(trade),
        }))
    }

    async fn list_payments(
        &self,
        request: Request<pb::ListPaymentsRequest>,
    ) -> RpcResult<pb::ListPaymentsResponse> {
        let store = owner_store(Principal::of(&request)?)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let instant =
            |field: &str, raw: Option<&prost_types::Timestamp>, v: &mut Violations| match raw
                .map(from_timestamp)
            {
                None => Some(None),
                // Years every database keeps: nothing else reaches a query.
                Some(Some(at)) if (1..=9999).contains(&chrono::Datelike::year(&at)) => {
                    Some(Some(at))
                }
                Some(_) => {
                    v.add(field, "not a valid timestamp of the years 1 to 9999");
                    None
                }
            };
        let to = instant("to", body.to.as_ref(), &mut violations);
        let from = instant("from", body.from.as_ref(), &mut violations);
        let page = PaymentsPage::parse(body.page.as_ref(), &mut violations);
        let range = match (from, to) {
            (Some(from), Some(to)) => {
                let to = to.unwrap_or_else(|| self.clock.now());
                let from = from.unwrap_or_else(|| {
                    to.checked_sub_signed(Duration::days(DEFAULT_PAYMENTS_SPAN_DAYS))
                        .unwrap_or(to)
                });
                if from < to {
                    Some((from, to))
                } else {
                    violations.add("from", "must be before `to`");
                    None
                }
            }
            _ => None,
        };
        let ((from, to), page) = violations.finish(|| Some((range?, page?)))?;
        let payments = self.storage.payments(store, from, to, page.query()).await?;
        let (payments, next_page_token) = page.finish(payments);
        Ok(Response::new(pb::ListPaymentsResponse {
            payments: payments.into_iter().map(convert::payment).collect(),
            next_page_token,
        }))
    }

    type WatchOpenTradesStream = BoxStream<pb::WatchOpenTradesResponse>;

    async fn watch_open_trades(
        &self,
        request: Request<pb::WatchOpenTradesRequest>,
    ) -> RpcResult<Self::WatchOpenTradesStream> {
        let caller = Caller::of(&request)?;
        let store = owner_store(&caller.principal)?;
        let stream = self.watches.open_trades(caller, store).await?;
        Ok(Response::new(stream))
    }
}
