//! Calls of any RPC with a raw body, and the table of a real body for every public RPC
//! with what a caller its policy allows must get.

use std::str::FromStr;

use pos_common::auth::TokenType;
use pos_edge::policy::POLICY;
use pos_proto::v1 as pb;
use prost::{
    Message,
    bytes::{Buf, BufMut},
};
use tonic::{
    Code, Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

use super::world::{INTRUDER, World};
use crate::support::stack::{REDIRECT_URI, TestStack};

/// Request and response bodies as raw bytes: one codec for every RPC of the table.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// One unary call of `path` with `body`; streams answer with their first message.
pub async fn call(
    channel: Channel,
    path: &str,
    body: Vec<u8>,
    token: Option<String>,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_str(path).map_err(|_| Status::internal("path"))?;
    let mut request = Request::new(body);
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("header"))?;
        request.metadata_mut().insert("authorization", value);
    }
    let streaming = POLICY
        .iter()
        .any(|(method, rule)| *method == path.as_str() && rule.streaming);
    if streaming {
        let mut stream = grpc
            .server_streaming(request, path, Raw)
            .await?
            .into_inner();
        stream.message().await.map(|_| ())
    } else {
        grpc.unary(request, path, Raw).await.map(|_| ())
    }
}

/// What an allowed caller must get.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    Ok,
    Refused(Code, &'static str),
}

/// Every public RPC with a real body aimed at owner A, and what a caller its policy
/// allows gets (owner B for owner RPCs, tablet A for device RPCs, anyone for public).
pub fn table(stack: &TestStack, world: &World) -> Vec<(&'static str, Vec<u8>, Expect)> {
    let product = world.product_a.id;
    let device = world.device_a;
    let not_found = |reason| Expect::Refused(Code::NotFound, reason);
    // A validly signed refresh token of a login that does not exist.
    let mut unknown_login = stack.issuer.claims("1", TokenType::Refresh, 600);
    unknown_login.fam = Some("no-such-login".into());
    let lines = vec![pb::OrderLineInput {
        product_id: product,
        count: 1,
    }];
    vec![
        (
            "/pos.v1.UserService/StartOAuthLogin",
            pb::StartOAuthLoginRequest {
                provider: "kakao".into(),
                redirect_uri: REDIRECT_URI.into(),
            }
            .encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.UserService/CompleteOAuthLogin",
            pb::CompleteOAuthLoginRequest {
                provider: "kakao".into(),
                code: "code".into(),
                state: "state".into(),
                login_session: "session".into(),
            }
            .encode_to_vec(),
            Expect::Refused(Code::InvalidArgument, "INVALID_ARGUMENT"),
        ),
        (
            "/pos.v1.UserService/LoginWithProviderToken",
            pb::LoginWithProviderTokenRequest {
                provider_token: Some(pb::ProviderToken {
                    provider: "dev".into(),
                    access_token: "a@example.com".into(),
                }),
            }
            .encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.UserService/SignUp",
            pb::SignUpRequest {
                identity: Some(pb::sign_up_request::Identity::ProviderToken(
                    pb::ProviderToken {
                        provider: "dev".into(),
                        access_token: INTRUDER.into(),
                    },
                )),
                store_name: "Intruder".into(),
                pos_grade: pb::PosGrade::Gold as i32,
                settlement_day: 10,
            }
            .encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.UserService/RefreshTokens",
            pb::RefreshTokensRequest {
                refresh_token: stack.issuer.sign(&unknown_login),
            }
            .encode_to_vec(),
            Expect::Refused(Code::Unauthenticated, "TOKEN_REVOKED"),
        ),
        (
            "/pos.v1.UserService/Logout",
            pb::LogoutRequest {
                refresh_token: world.owner_a.refresh_token.clone(),
            }
            .encode_to_vec(),
            Expect::Refused(Code::InvalidArgument, "INVALID_ARGUMENT"),
        ),
        (
            "/pos.v1.UserService/GetMe",
            pb::GetMeRequest {}.encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.UserService/GetJwks",
            pb::GetJwksRequest {}.encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.StoreService/GetMyStore",
            pb::GetMyStoreRequest {}.encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.StoreService/ListDevices",
            pb::ListDevicesRequest::default().encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.StoreService/IssueDeviceToken",
            pb::IssueDeviceTokenRequest { device_id: device }.encode_to_vec(),
            not_found("DEVICE_NOT_FOUND"),
        ),
        (
            "/pos.v1.StoreService/RevokeDevice",
            pb::RevokeDeviceRequest { device_id: device }.encode_to_vec(),
            not_found("DEVICE_NOT_FOUND"),
        ),
        (
            "/pos.v1.StoreService/CreateProduct",
            pb::CreateProductRequest {
                name: "Planted".into(),
                category: pb::ProductCategory::Drink as i32,
                price: 1,
                base_stock: 1,
            }
            .encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.StoreService/UpdateProduct",
            pb::UpdateProductRequest {
                product_id: product,
                price: Some(1),
                base_stock: Some(0),
            }
            .encode_to_vec(),
            not_found("PRODUCT_NOT_FOUND"),
        ),
        (
            "/pos.v1.StoreService/DeleteProduct",
            pb::DeleteProductRequest {
                product_id: product,
            }
            .encode_to_vec(),
            not_found("PRODUCT_NOT_FOUND"),
        ),
        (
            "/pos.v1.StoreService/Restock",
            pb::RestockRequest {}.encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.StoreService/ListProductHistory",
            pb::ListProductHistoryRequest {
                product_id: product,
                page: None,
            }
            .encode_to_vec(),
            not_found("PRODUCT_NOT_FOUND"),
        ),
        (
            "/pos.v1.StoreService/ListProducts",
            pb::ListProductsRequest::default().encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.TradeService/PlaceOrder",
            pb::PlaceOrderRequest {
                lines: lines.clone(),
                idempotency_key: "k".into(),
            }
            .encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.TradeService/GetCurrentTrade",
            pb::GetCurrentTradeRequest {}.encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.TradeService/WatchCurrentTrade",
            pb::WatchCurrentTradeRequest {}.encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.TradeService/ListOpenTrades",
            pb::ListOpenTradesRequest {}.encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.TradeService/GetOpenTrade",
            pb::GetOpenTradeRequest { device_id: device }.encode_to_vec(),
            not_found("DEVICE_NOT_FOUND"),
        ),
        (
            "/pos.v1.TradeService/PayCash",
            pb::PayCashRequest {
                device_id: device,
                expected_amount: None,
                idempotency_key: "k".into(),
            }
            .encode_to_vec(),
            not_found("DEVICE_NOT_FOUND"),
        ),
        (
            "/pos.v1.TradeService/PayCard",
            pb::PayCardRequest {
                device_id: device,
                card_company: pb::CardCompany::H as i32,
                expected_amount: None,
                idempotency_key: "k".into(),
            }
            .encode_to_vec(),
            not_found("DEVICE_NOT_FOUND"),
        ),
        (
            "/pos.v1.TradeService/ListPayments",
            pb::ListPaymentsRequest::default().encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.TradeService/WatchOpenTrades",
            pb::WatchOpenTradesRequest {}.encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.SettlementService/GetProductSales",
            pb::GetProductSalesRequest {
                term: pb::Term::Day as i32,
                start_date: "2024-12-01".into(),
                ..Default::default()
            }
            .encode_to_vec(),
            Expect::Refused(Code::NotFound, "NOT_AGGREGATED"),
        ),
        (
            "/pos.v1.SettlementService/GetSettlement",
            pb::GetSettlementRequest {
                term: pb::Term::Day as i32,
                start_date: "2024-12-01".into(),
            }
            .encode_to_vec(),
            Expect::Refused(Code::NotFound, "NOT_AGGREGATED"),
        ),
        (
            "/pos.v1.SettlementService/ListSettlements",
            pb::ListSettlementsRequest {
                term: pb::Term::Day as i32,
                from_date: "2024-12-01".into(),
                to_date: "2024-12-31".into(),
            }
            .encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.SettlementService/GetSettlementDetail",
            pb::GetSettlementDetailRequest::default().encode_to_vec(),
            Expect::Refused(Code::InvalidArgument, "INVALID_ARGUMENT"),
        ),
        (
            "/pos.v1.SettlementService/ListAggregationRuns",
            pb::ListAggregationRunsRequest::default().encode_to_vec(),
            Expect::Ok,
        ),
        (
            "/pos.v1.SettlementService/RunAggregation",
            pb::RunAggregationRequest::default().encode_to_vec(),
            Expect::Refused(Code::InvalidArgument, "INVALID_ARGUMENT"),
        ),
    ]
}
