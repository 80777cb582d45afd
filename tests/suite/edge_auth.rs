//! The authentication matrix through the edge, on SQLite (+ in-memory state) and
//! PostgreSQL (+ Redis). Every public RPC is called with a real request body — one that
//! would change owner A's store if it got through — and every kind of bad or wrong
//! credential: each is refused with the exact status and reason, and nothing changes.
//! Then each RPC is called by a caller its policy allows and must get exactly the
//! service's answer; last, the same bodies with owner A's own token do change the store,
//! which proves the refused calls carried something that could have.

use std::str::FromStr;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use pos_common::{
    auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, SigningKey, TokenIssuer, TokenType},
    domain::{ProductId, StoreId, UserId},
};
use pos_edge::policy::{Access, POLICY};
use pos_proto::v1::{
    self as pb, store_service_client::StoreServiceClient, user_service_client::UserServiceClient,
};
use pos_store::storage::ProductFilter;
use pos_user::storage::Email;
use prost::{
    Message,
    bytes::{Buf, BufMut},
};
use tonic::{
    Code, Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

use crate::support::{
    Engine, bearer, reason,
    stack::{REDIRECT_URI, TestStack},
};

crate::on_both_engines!(
    every_rpc_refuses_every_bad_credential_and_changes_nothing,
    owners_cannot_reach_another_stores_rows_through_the_edge,
    internal_and_unknown_methods_are_never_forwarded,
);

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
async fn call(
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

/// Owner A (with a product and tablets), owner B, and a login that was logged out.
struct World {
    owner_a: pb::TokenPair,
    owner_b: pb::TokenPair,
    logged_out: pb::TokenPair,
    store_a: pb::Store,
    product_a: pb::Product,
    device_a: i64,
    tablet_a: String,
    revoked_tablet_a: String,
}

async fn sign_up(stack: &TestStack, email: &str) -> (pb::TokenPair, pb::Store) {
    let signed = crate::support::dev_signup(
        stack.channel(),
        email,
        &format!("Shop {}", &email[..1]),
        pb::PosGrade::Bronze,
    )
    .await;
    (signed.tokens.expect("tokens"), signed.store.expect("store"))
}

async fn world(stack: &TestStack) -> World {
    let (owner_a, store_a) = sign_up(stack, "a@example.com").await;
    let (owner_b, _) = sign_up(stack, "b@example.com").await;
    let (logged_out, _) = sign_up(stack, "c@example.com").await;
    UserServiceClient::with_interceptor(stack.channel(), bearer(&logged_out.access_token))
        .logout(pb::LogoutRequest {
            refresh_token: logged_out.refresh_token.clone(),
        })
        .await
        .expect("logout");
    let mut store =
        StoreServiceClient::with_interceptor(stack.channel(), bearer(&owner_a.access_token));
    let product_a = store
        .create_product(pb::CreateProductRequest {
            name: "Bibimbap".into(),
            category: pb::ProductCategory::MainMenu as i32,
            price: 1000,
            base_stock: 10,
        })
        .await
        .expect("create")
        .into_inner()
        .product
        .expect("product");
    let device_a = store
        .list_devices(pb::ListDevicesRequest {})
        .await
        .expect("devices")
        .into_inner()
        .devices[0]
        .id;
    let issue = || {
        let mut store = store.clone();
        async move {
            store
                .issue_device_token(pb::IssueDeviceTokenRequest {
                    device_id: device_a,
                })
                .await
                .expect("issue")
                .into_inner()
                .device_token
        }
    };
    let revoked_tablet_a = issue().await;
    let tablet_a = issue().await;
    World {
        owner_a,
        owner_b,
        logged_out,
        store_a,
        product_a,
        device_a,
        tablet_a,
        revoked_tablet_a,
    }
}

const INTRUDER: &str = "intruder@example.com";

/// What an allowed caller must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Ok,
    Refused(Code, &'static str),
    /// No role of the registry serves this service yet.
    NotDeployed,
}

/// Every public RPC with a real body aimed at owner A, and what a caller its policy
/// allows gets (owner B for owner RPCs, tablet A for device RPCs, anyone for public).
fn table(stack: &TestStack, world: &World) -> Vec<(&'static str, Vec<u8>, Expect)> {
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
            pb::ListDevicesRequest {}.encode_to_vec(),
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
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.TradeService/GetCurrentTrade",
            pb::GetCurrentTradeRequest {}.encode_to_vec(),
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.TradeService/WatchCurrentTrade",
            pb::WatchCurrentTradeRequest {}.encode_to_vec(),
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.TradeService/ListOpenTrades",
            pb::ListOpenTradesRequest {}.encode_to_vec(),
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.TradeService/GetOpenTrade",
            pb::GetOpenTradeRequest { device_id: device }.encode_to_vec(),
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.TradeService/PayCash",
            pb::PayCashRequest {
                device_id: device,
                expected_amount: None,
                idempotency_key: "k".into(),
            }
            .encode_to_vec(),
            Expect::NotDeployed,
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
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.TradeService/ListPayments",
            pb::ListPaymentsRequest::default().encode_to_vec(),
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.SettlementService/GetProductSales",
            pb::GetProductSalesRequest::default().encode_to_vec(),
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.SettlementService/GetSettlement",
            pb::GetSettlementRequest::default().encode_to_vec(),
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.SettlementService/ListSettlements",
            pb::ListSettlementsRequest::default().encode_to_vec(),
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.SettlementService/GetSettlementDetail",
            pb::GetSettlementDetailRequest::default().encode_to_vec(),
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.SettlementService/ListAggregationRuns",
            pb::ListAggregationRunsRequest::default().encode_to_vec(),
            Expect::NotDeployed,
        ),
        (
            "/pos.v1.SettlementService/RunAggregation",
            pb::RunAggregationRequest::default().encode_to_vec(),
            Expect::NotDeployed,
        ),
    ]
}

/// What refused calls must leave as it was: owner A's products and tablets, the users,
/// and that nobody signed up the intruder.
async fn snapshot(stack: &TestStack, world: &World) -> String {
    let store = StoreId::from_stored(world.store_a.id);
    let products = stack
        .store_storage
        .list_products(
            store,
            ProductFilter {
                category: None,
                include_deleted: true,
            },
        )
        .await
        .expect("products");
    let devices = stack
        .store_storage
        .devices_of_store(store)
        .await
        .expect("devices");
    let mut users = Vec::new();
    for email in ["a@example.com", "b@example.com", INTRUDER] {
        let user = stack
            .user_storage
            .by_email(&Email::parse(email).expect("email"))
            .await
            .expect("user");
        users.push(user.map(|u| (u.id, u.store_id)));
    }
    format!(
        "{:?}|{:?}|{users:?}",
        products
            .iter()
            .map(|p| (p.id, p.price, p.stock, p.base_stock, p.deleted_at))
            .collect::<Vec<_>>(),
        devices
            .iter()
            .map(|d| (d.id, d.credential_version, d.revoked_at))
            .collect::<Vec<_>>(),
    )
}

fn tampered(token: &str) -> String {
    let (head, signature) = token.rsplit_once('.').expect("jwt");
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("signature");
    bytes[0] ^= 0xff;
    format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn unsigned(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload");
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{payload}.")
}

#[track_caller]
fn expect_refused(result: Result<(), Status>, code: Code, expected: &str, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (code, expected),
        "{what}: {status:?}"
    );
}

/// Whether a role of the registry serves the service of `path`.
fn deployed(path: &str) -> bool {
    let service = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    pos::registry::ROLES
        .iter()
        .any(|role| role.services().contains(&service))
}

#[track_caller]
fn expect_answer(result: Result<(), Status>, expect: Expect, path: &str, who: &str) {
    let what = format!("{path} as {who}");
    match expect {
        Expect::Ok => {
            if let Err(status) = result {
                panic!("{what}: {status:?}");
            }
        }
        Expect::Refused(code, expected) => expect_refused(result, code, expected, &what),
        Expect::NotDeployed => {
            assert!(
                !deployed(path),
                "{what}: a role serves it now; give it a real expectation"
            );
            let status = result.expect_err(&what);
            assert_eq!(status.code(), Code::Unimplemented, "{what}: {status:?}");
        }
    }
}

async fn every_rpc_refuses_every_bad_credential_and_changes_nothing(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let world = world(&stack).await;
    let table = table(&stack, &world);
    let paths: Vec<&str> = table.iter().map(|(path, _, _)| *path).collect();
    let policy: Vec<&str> = POLICY.iter().map(|(path, _)| *path).collect();
    assert_eq!(
        paths, policy,
        "one real body per public RPC, in policy order"
    );

    let stranger = TokenIssuer::new(
        std::sync::Arc::new(SigningKey::generate()),
        DEFAULT_ISSUER,
        DEFAULT_AUDIENCE,
    );
    let owner = UserId::from_stored(world.store_a.owner_user_id);
    let store = Some(StoreId::from_stored(world.store_a.id));
    let expired = stack.issuer.owner_access(owner, store, -120);
    let refresh = stack.issuer.sign(&stack.issuer.claims(
        &owner.to_string(),
        TokenType::Refresh,
        600,
    ));
    let foreign = stranger.owner_access(owner, store, 600);
    let forged = tampered(&world.owner_a.access_token);
    let alg_none = unsigned(&world.owner_a.access_token);
    let bad: [(&str, &str, Code, &str); 7] = [
        (
            "malformed",
            "not-a-jwt",
            Code::Unauthenticated,
            "TOKEN_INVALID",
        ),
        (
            "wrong signature",
            &foreign,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        ),
        ("tampered", &forged, Code::Unauthenticated, "TOKEN_INVALID"),
        (
            "alg none",
            &alg_none,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        ),
        ("expired", &expired, Code::Unauthenticated, "TOKEN_EXPIRED"),
        (
            "refresh as bearer",
            &refresh,
            Code::Unauthenticated,
            "WRONG_TOKEN_TYPE",
        ),
        (
            "logged out",
            &world.logged_out.access_token,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        ),
    ];

    // Refused: bad credentials everywhere, missing or wrong roles where one is needed.
    let before = snapshot(&stack, &world).await;
    for ((path, rule), (_, body, _)) in POLICY.iter().zip(&table) {
        let call = |token: Option<&str>| {
            call(
                stack.channel(),
                path,
                body.clone(),
                token.map(str::to_owned),
            )
        };
        for (what, token, code, expected) in bad {
            expect_refused(
                call(Some(token)).await,
                code,
                expected,
                &format!("{path} {what}"),
            );
        }
        let (wrong, revoked): (Vec<&str>, _) = match rule.access {
            Access::Public => continue,
            Access::Owner => (
                vec![world.tablet_a.as_str()],
                (Code::PermissionDenied, "ROLE_NOT_ALLOWED"),
            ),
            Access::Device => (
                vec![
                    world.owner_b.access_token.as_str(),
                    world.owner_a.access_token.as_str(),
                ],
                (Code::Unauthenticated, "TOKEN_REVOKED"),
            ),
            Access::OwnerOrDevice => (vec![], (Code::Unauthenticated, "TOKEN_REVOKED")),
        };
        expect_refused(
            call(None).await,
            Code::Unauthenticated,
            "TOKEN_MISSING",
            path,
        );
        for token in wrong {
            expect_refused(
                call(Some(token)).await,
                Code::PermissionDenied,
                "ROLE_NOT_ALLOWED",
                path,
            );
        }
        expect_refused(
            call(Some(&world.revoked_tablet_a)).await,
            revoked.0,
            revoked.1,
            &format!("{path} revoked tablet"),
        );
    }
    assert_eq!(
        snapshot(&stack, &world).await,
        before,
        "refused calls changed nothing"
    );

    // Let through: a caller the policy allows gets exactly the service's answer.
    for ((path, rule), (_, body, expect)) in POLICY.iter().zip(&table) {
        let call = |token: Option<&str>| {
            call(
                stack.channel(),
                path,
                body.clone(),
                token.map(str::to_owned),
            )
        };
        let callers: Vec<(&str, Option<&str>)> = match rule.access {
            Access::Public => vec![
                ("anonymous", None),
                ("a tablet", Some(&world.tablet_a)),
                ("owner B", Some(&world.owner_b.access_token)),
            ],
            Access::Owner => vec![("owner B", Some(&world.owner_b.access_token))],
            Access::Device => vec![("tablet A", Some(&world.tablet_a))],
            Access::OwnerOrDevice => vec![
                ("owner B", Some(&world.owner_b.access_token)),
                ("tablet A", Some(&world.tablet_a)),
            ],
        };
        for (who, token) in callers {
            expect_answer(call(token).await, *expect, path, who);
        }
    }

    // The same bodies from owner A change A's store: they were real all along.
    let mine = Some(world.owner_a.access_token.as_str());
    for path in [
        "/pos.v1.StoreService/UpdateProduct",
        "/pos.v1.StoreService/RevokeDevice",
        "/pos.v1.StoreService/DeleteProduct",
    ] {
        let (_, body, _) = table.iter().find(|(p, _, _)| *p == path).expect("row");
        call(stack.channel(), path, body.clone(), mine.map(str::to_owned))
            .await
            .unwrap_or_else(|status| panic!("{path} as owner A: {status:?}"));
    }
    let product = stack
        .store_storage
        .product(
            StoreId::from_stored(world.store_a.id),
            ProductId::from_stored(world.product_a.id),
        )
        .await
        .expect("read")
        .expect("product");
    assert_eq!((product.price.get(), product.base_stock.get()), (1, 0));
    assert!(product.deleted_at.is_some());
    assert_ne!(snapshot(&stack, &world).await, before);
    stack.stop().await;
}

async fn owners_cannot_reach_another_stores_rows_through_the_edge(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let world = world(&stack).await;
    let before = snapshot(&stack, &world).await;
    let mut intruder =
        StoreServiceClient::with_interceptor(stack.channel(), bearer(&world.owner_b.access_token));
    let product_id = world.product_a.id;
    let device_id = world.device_a;
    let results = [
        (
            intruder
                .update_product(pb::UpdateProductRequest {
                    product_id,
                    price: Some(1),
                    base_stock: None,
                })
                .await
                .map(|_| ()),
            "PRODUCT_NOT_FOUND",
        ),
        (
            intruder
                .delete_product(pb::DeleteProductRequest { product_id })
                .await
                .map(|_| ()),
            "PRODUCT_NOT_FOUND",
        ),
        (
            intruder
                .list_product_history(pb::ListProductHistoryRequest { product_id })
                .await
                .map(|_| ()),
            "PRODUCT_NOT_FOUND",
        ),
        (
            intruder
                .issue_device_token(pb::IssueDeviceTokenRequest { device_id })
                .await
                .map(|_| ()),
            "DEVICE_NOT_FOUND",
        ),
        (
            intruder
                .revoke_device(pb::RevokeDeviceRequest { device_id })
                .await
                .map(|_| ()),
            "DEVICE_NOT_FOUND",
        ),
    ];
    for (result, expected) in results {
        expect_refused(result, Code::NotFound, expected, expected);
    }
    // B's view of the menu holds none of A's products.
    let menu = intruder
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .products;
    assert!(menu.is_empty());
    assert_eq!(snapshot(&stack, &world).await, before);
    stack.stop().await;
}

async fn internal_and_unknown_methods_are_never_forwarded(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let world = world(&stack).await;
    let before = snapshot(&stack, &world).await;
    let service = stack.issuer.service("user");
    let trade = stack.issuer.service("trade");
    let internal = [
        (
            "/pos.v1.StoreInternalService/CreateStoreForOwner",
            pb::CreateStoreForOwnerRequest {
                owner_user_id: 424_242,
                store_name: "Smuggled".into(),
                pos_grade: pb::PosGrade::Gold as i32,
                settlement_day: 1,
            }
            .encode_to_vec(),
        ),
        (
            "/pos.v1.StoreInternalService/ReserveStock",
            pb::ReserveStockRequest {
                order_id: "smuggled".into(),
                store_id: world.store_a.id,
                lines: vec![pb::StockRequestLine {
                    product_id: world.product_a.id,
                    count: 10,
                }],
            }
            .encode_to_vec(),
        ),
        (
            "/pos.v1.StoreInternalService/GetDeviceCredential",
            pb::GetDeviceCredentialRequest {
                store_id: world.store_a.id,
                device_id: world.device_a,
            }
            .encode_to_vec(),
        ),
        ("/pos.v1.TradeInternalService/CheckOrderExists", Vec::new()),
    ];
    for (method, body) in &internal {
        for token in [None, Some(service.clone()), Some(trade.clone())] {
            expect_refused(
                call(stack.channel(), method, body.clone(), token).await,
                Code::PermissionDenied,
                "INTERNAL_ONLY",
                method,
            );
        }
    }
    assert_eq!(
        stack
            .store_storage
            .store_of_owner(UserId::from_stored(424_242))
            .await
            .expect("read"),
        None,
        "no store was smuggled in"
    );
    assert_eq!(snapshot(&stack, &world).await, before, "no stock was taken");
    for method in [
        "/pos.v1.StoreService/DropAllTables",
        "/evil.Service/Call",
        "/pos.v1.StoreService",
    ] {
        let status = call(stack.channel(), method, Vec::new(), None)
            .await
            .expect_err(method);
        assert_eq!(status.code(), Code::Unimplemented, "{method}: {status:?}");
    }
    stack.stop().await;
}
