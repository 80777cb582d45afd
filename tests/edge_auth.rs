//! The authentication matrix through the edge, on SQLite (+ in-memory state) and
//! PostgreSQL (+ Redis): for every public RPC and every kind of bad or wrong credential,
//! the exact status and reason, and nothing changes.

mod support;

use std::str::FromStr;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use pos_common::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, SigningKey, TokenIssuer, TokenType};
use pos_edge::policy::{Access, POLICY};
use pos_proto::v1::{
    self as pb, store_service_client::StoreServiceClient, user_service_client::UserServiceClient,
};
use support::{Backend, bearer, reason, stack::TestStack};
use tonic::{Code, Request, Status, transport::Channel};

on_both_backends!(
    every_rpc_refuses_every_bad_credential_and_changes_nothing,
    owners_cannot_reach_another_stores_rows_through_the_edge,
    internal_and_unknown_methods_are_never_forwarded,
);

/// Any message: requests are sent empty, responses are skipped field by field.
#[derive(Clone, PartialEq, prost::Message)]
struct Anything {}

async fn raw_call(channel: Channel, path: &str, token: Option<String>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = Request::new(Anything {});
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("header"))?;
        request.metadata_mut().insert("authorization", value);
    }
    let path = http::uri::PathAndQuery::from_str(path).map_err(|_| Status::internal("path"))?;
    grpc.unary::<Anything, Anything, _>(request, path, tonic_prost::ProstCodec::default())
        .await
        .map(|_| ())
}

const AUTH_REASONS: [&str; 6] = [
    "TOKEN_MISSING",
    "TOKEN_INVALID",
    "TOKEN_EXPIRED",
    "TOKEN_REVOKED",
    "WRONG_TOKEN_TYPE",
    "ROLE_NOT_ALLOWED",
];

/// Owner A (with a product and tablets) and owner B, signed up through the edge.
struct World {
    owner_a: pb::TokenPair,
    owner_b: pb::TokenPair,
    store_a: pb::Store,
    product_a: pb::Product,
    device_a: i64,
    tablet_a: String,
    revoked_tablet_a: String,
}

async fn sign_up(stack: &TestStack, email: &str) -> (pb::TokenPair, pb::Store) {
    let signed = support::dev_signup(
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
        store_a,
        product_a,
        device_a,
        tablet_a,
        revoked_tablet_a,
    }
}

/// What must stay unchanged by refused calls.
async fn snapshot(stack: &TestStack, world: &World) -> String {
    let products = stack
        .store_repo
        .list_products(world.store_a.id, None, true)
        .await
        .expect("products");
    let devices = stack
        .store_repo
        .devices_of_store(world.store_a.id)
        .await
        .expect("devices");
    let users = [
        stack
            .user_repo
            .by_email("a@example.com")
            .await
            .expect("user"),
        stack
            .user_repo
            .by_email("b@example.com")
            .await
            .expect("user"),
    ];
    format!(
        "{:?}|{:?}|{:?}",
        products
            .iter()
            .map(|p| (p.id, p.price, p.stock, p.base_stock, p.deleted_at))
            .collect::<Vec<_>>(),
        devices
            .iter()
            .map(|d| (d.id, d.credential_version, d.revoked_at))
            .collect::<Vec<_>>(),
        users
            .iter()
            .map(|u| u.as_ref().map(|u| (u.id, u.store_id)))
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

#[track_caller]
fn expect_let_through(result: Result<(), Status>, what: &str) {
    if let Err(status) = result {
        assert!(
            !AUTH_REASONS.contains(&reason(&status).as_str()),
            "{what}: {status:?}"
        );
    }
}

async fn every_rpc_refuses_every_bad_credential_and_changes_nothing(backend: Backend) {
    let stack = TestStack::start(backend).await;
    let world = world(&stack).await;

    // A logged-out access token.
    let (denied, _) = sign_up(&stack, "c@example.com").await;
    UserServiceClient::with_interceptor(stack.channel(), bearer(&denied.access_token))
        .logout(pb::LogoutRequest {
            refresh_token: denied.refresh_token.clone(),
        })
        .await
        .expect("logout");

    let stranger = TokenIssuer::new(
        std::sync::Arc::new(SigningKey::generate()),
        DEFAULT_ISSUER,
        DEFAULT_AUDIENCE,
    );
    let store_id = world.store_a.id;
    let expired = stack.issuer.owner_access(1, Some(store_id), -120);
    let refresh = stack
        .issuer
        .sign(&stack.issuer.claims("1", TokenType::Refresh, 600));
    let foreign = stranger.owner_access(1, Some(store_id), 600);
    let forged = tampered(&world.owner_a.access_token);
    let alg_none = unsigned(&world.owner_a.access_token);

    let before = snapshot(&stack, &world).await;
    let mut checked = 0;
    for (path, rule) in POLICY {
        let call = |token: Option<String>| raw_call(stack.channel(), path, token);
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
                &denied.access_token,
                Code::Unauthenticated,
                "TOKEN_REVOKED",
            ),
        ];
        for (what, token, code, expected) in bad {
            expect_refused(
                call(Some(token.to_string())).await,
                code,
                expected,
                &format!("{path} {what}"),
            );
            checked += 1;
        }
        let no_token = call(None).await;
        let tablet = call(Some(world.tablet_a.clone())).await;
        let revoked_tablet = call(Some(world.revoked_tablet_a.clone())).await;
        let owner = call(Some(world.owner_b.access_token.clone())).await;
        match rule.access {
            Access::Public => {
                expect_let_through(no_token, path);
                expect_let_through(tablet, path);
                expect_let_through(owner, path);
            }
            Access::Owner => {
                expect_refused(no_token, Code::Unauthenticated, "TOKEN_MISSING", path);
                expect_refused(tablet, Code::PermissionDenied, "ROLE_NOT_ALLOWED", path);
                expect_refused(
                    revoked_tablet,
                    Code::PermissionDenied,
                    "ROLE_NOT_ALLOWED",
                    path,
                );
            }
            Access::Device => {
                expect_refused(no_token, Code::Unauthenticated, "TOKEN_MISSING", path);
                expect_refused(owner, Code::PermissionDenied, "ROLE_NOT_ALLOWED", path);
                expect_refused(revoked_tablet, Code::Unauthenticated, "TOKEN_REVOKED", path);
                expect_let_through(tablet, path);
            }
            Access::OwnerOrDevice => {
                expect_refused(no_token, Code::Unauthenticated, "TOKEN_MISSING", path);
                expect_refused(revoked_tablet, Code::Unauthenticated, "TOKEN_REVOKED", path);
                expect_let_through(tablet, path);
                expect_let_through(owner, path);
            }
        }
        checked += 4;
    }
    assert!(checked >= POLICY.len() * 11);
    assert_eq!(
        snapshot(&stack, &world).await,
        before,
        "refused calls changed nothing"
    );
    stack.stop().await;
}

async fn owners_cannot_reach_another_stores_rows_through_the_edge(backend: Backend) {
    let stack = TestStack::start(backend).await;
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

async fn internal_and_unknown_methods_are_never_forwarded(backend: Backend) {
    let stack = TestStack::start(backend).await;
    let service = stack.issuer.service("impostor");
    for method in [
        "/pos.v1.StoreInternalService/CreateStoreForOwner",
        "/pos.v1.StoreInternalService/ReserveStock",
        "/pos.v1.StoreInternalService/GetDeviceCredential",
        "/pos.v1.TradeInternalService/CheckOrderExists",
    ] {
        for token in [None, Some(service.clone())] {
            expect_refused(
                raw_call(stack.channel(), method, token).await,
                Code::PermissionDenied,
                "INTERNAL_ONLY",
                method,
            );
        }
    }
    assert!(
        stack
            .store_repo
            .store_of_owner(0)
            .await
            .expect("read")
            .is_none()
    );
    for method in [
        "/pos.v1.StoreService/DropAllTables",
        "/evil.Service/Call",
        "/pos.v1.StoreService",
    ] {
        let status = raw_call(stack.channel(), method, None)
            .await
            .expect_err(method);
        assert_eq!(status.code(), Code::Unimplemented, "{method}: {status:?}");
    }
    stack.stop().await;
}
