//! The authentication matrix through the edge, on SQLite (+ in-memory state) and
//! PostgreSQL (+ Redis). Every public RPC is called with a real request body — one that
//! would change owner A's store if it got through — and every kind of bad or wrong
//! credential: each is refused with the exact status and reason, and nothing changes.
//! Then each RPC is called by a caller its policy allows and must get exactly the
//! service's answer; last, the same bodies with owner A's own token do change the store,
//! which proves the refused calls carried something that could have.

mod calls;
mod world;

use pos_common::{
    auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, SigningKey, TokenIssuer, TokenType},
    domain::{ProductId, StoreId, UserId},
};
use pos_edge::policy::{Access, POLICY};
use pos_proto::v1::{self as pb, store_service_client::StoreServiceClient};
use prost::Message;
use tonic::{Code, Status};

use calls::{Expect, call, table};
use world::{snapshot, tampered, unsigned, world};

use crate::support::{Engine, bearer, reason, stack::TestStack};

crate::on_both_engines!(
    every_rpc_refuses_every_bad_credential_and_changes_nothing,
    owners_cannot_reach_another_stores_rows_through_the_edge,
    internal_and_unknown_methods_are_never_forwarded,
);

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
fn expect_answer(result: Result<(), Status>, expect: Expect, path: &str, who: &str) {
    let what = format!("{path} as {who}");
    match expect {
        Expect::Ok => {
            if let Err(status) = result {
                panic!("{what}: {status:?}");
            }
        }
        Expect::Refused(code, expected) => expect_refused(result, code, expected, &what),
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
            Access::Public => {
                // A token that is sent must be good, a tablet's credential too.
                expect_refused(
                    call(Some(&world.revoked_tablet_a)).await,
                    Code::Unauthenticated,
                    "TOKEN_REVOKED",
                    &format!("{path} revoked tablet"),
                );
                continue;
            }
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
        // Pays the bill tablet A's let-through order opened.
        "/pos.v1.TradeService/PayCash",
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
                .list_product_history(pb::ListProductHistoryRequest {
                    product_id,
                    page: None,
                })
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
                tablet: None,
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
