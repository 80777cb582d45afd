//! The internal API: who may call which RPC, and reservations on the wire.

use pos_common::domain::UserId;
use pos_proto::v1::{self as pb, PosGrade, ProductCategory, ReservationStatus};
use tonic::Code;

use super::{line, reserve, reserved_lines};
use crate::support::{Engine, app::TestApp, assert_error, violated_fields};

crate::on_both_engines!(
    internal_rpcs_answer_only_the_roles_named_for_them,
    stores_are_listed_by_settlement_day_in_pages,
    reservations_on_the_wire,
    a_replayed_order_id_with_other_lines_is_refused,
    bad_reservation_requests_name_the_field,
);

/// Each internal RPC names the roles that may call it: an owner or anonymous caller is
/// INTERNAL_ONLY, another role ROLE_NOT_ALLOWED, and nothing changes.
async fn internal_rpcs_answer_only_the_roles_named_for_them(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let p = app
        .new_product(&owner, "P", ProductCategory::MainMenu, 100, 10)
        .await;
    let reserve_request = || pb::ReserveStockRequest {
        tablet: None,
        order_id: "o".into(),
        store_id: store.id,
        lines: vec![line(p.id, 1)],
    };
    let create_request = || pb::CreateStoreForOwnerRequest {
        owner_user_id: 9,
        store_name: "Nope".into(),
        pos_grade: PosGrade::Bronze as i32,
        settlement_day: 1,
    };
    let owner_value = format!("Bearer {owner}").parse().expect("ascii");
    let callers = [
        (
            "an owner",
            Some(owner_value),
            Code::PermissionDenied,
            "INTERNAL_ONLY",
        ),
        ("anonymous", None, Code::PermissionDenied, "INTERNAL_ONLY"),
    ];
    for (who, value, code, reason) in callers {
        let mut client =
            pos_proto::v1::store_internal_service_client::StoreInternalServiceClient::with_interceptor(
                app.channel(),
                crate::support::Bearer(value),
            );
        let refused = |result: Result<(), tonic::Status>, rpc: &str| {
            let status = result.expect_err(&format!("{rpc} as {who}"));
            assert_eq!(
                (status.code(), crate::support::reason(&status).as_str()),
                (code, reason),
                "{rpc} as {who}: {status:?}"
            );
        };
        refused(
            client.reserve_stock(reserve_request()).await.map(|_| ()),
            "ReserveStock",
        );
        refused(
            client
                .create_store_for_owner(create_request())
                .await
                .map(|_| ()),
            "CreateStoreForOwner",
        );
        refused(
            client
                .get_device_credential(pb::GetDeviceCredentialRequest {
                    store_id: store.id,
                    device_id: 1,
                })
                .await
                .map(|_| ()),
            "GetDeviceCredential",
        );
    }
    // Only the trade role moves stock; only the user role creates stores; only the
    // settlement role lists stores by settlement day; the edge checks tablets.
    for role in ["user", "edge", "settlement", "store"] {
        let mut client = app.internal_as(role);
        assert_error(
            client.reserve_stock(reserve_request()).await,
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
        );
        assert_error(
            client
                .confirm_stock(pb::ConfirmStockRequest {
                    order_id: "o".into(),
                })
                .await,
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
        );
        assert_error(
            client
                .release_stock(pb::ReleaseStockRequest {
                    order_id: "o".into(),
                })
                .await,
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
        );
        assert_error(
            client
                .confirm_stocks(pb::ConfirmStocksRequest {
                    order_ids: vec!["o".into()],
                })
                .await,
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
        );
    }
    for role in ["trade", "edge", "settlement"] {
        assert_error(
            app.internal_as(role)
                .create_store_for_owner(create_request())
                .await,
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
        );
    }
    for role in ["user", "trade", "edge"] {
        assert_error(
            app.internal_as(role)
                .list_stores_by_settlement_day(pb::ListStoresBySettlementDayRequest {
                    settlement_day: 10,
                    page: None,
                })
                .await,
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
        );
    }
    assert_error(
        app.internal_as("user")
            .get_device_credential(pb::GetDeviceCredentialRequest {
                store_id: store.id,
                device_id: 1,
            })
            .await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );
    assert_eq!(
        app.stock(store.id, p.id).await,
        10,
        "no refused call took stock"
    );
    assert!(
        app.storage
            .reservation(&pos_store::storage::OrderId::parse("o").expect("id"))
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        app.storage
            .store_of_owner(UserId::from_stored(9))
            .await
            .expect("read")
            .is_none()
    );
    // The roles named for them succeed.
    reserve(&app, "o", store.id, vec![line(p.id, 1)])
        .await
        .expect("trade reserves");
    let credential = app
        .internal_as("edge")
        .get_device_credential(pb::GetDeviceCredentialRequest {
            store_id: store.id,
            device_id: app.devices(store.id).await[0].id.get(),
        })
        .await
        .expect("the edge checks tablets")
        .into_inner();
    assert_eq!(
        (credential.credential_version, credential.revoked),
        (1, false)
    );
    app.stop().await;
}

async fn stores_are_listed_by_settlement_day_in_pages(engine: Engine) {
    let app = TestApp::start(engine).await;
    for owner in 1..=5 {
        app.internal_as("user")
            .create_store_for_owner(pb::CreateStoreForOwnerRequest {
                owner_user_id: owner,
                store_name: format!("S{owner}"),
                pos_grade: PosGrade::Bronze as i32,
                settlement_day: if owner % 2 == 0 { 5 } else { 25 },
            })
            .await
            .expect("create");
    }
    let mut settlement = app.internal_as("settlement");
    let page = |token: String| pb::ListStoresBySettlementDayRequest {
        settlement_day: 25,
        page: Some(pb::PageRequest {
            page_size: 2,
            page_token: token,
        }),
    };
    let first = settlement
        .list_stores_by_settlement_day(page(String::new()))
        .await
        .expect("page 1")
        .into_inner();
    let second = settlement
        .list_stores_by_settlement_day(page(first.next_page_token.clone()))
        .await
        .expect("page 2")
        .into_inner();
    let owners: Vec<i64> = first
        .stores
        .iter()
        .chain(&second.stores)
        .map(|s| s.owner_user_id)
        .collect();
    assert_eq!(owners, [1, 3, 5]);
    assert!(second.next_page_token.is_empty());
    let status = assert_error(
        settlement
            .list_stores_by_settlement_day(pb::ListStoresBySettlementDayRequest {
                settlement_day: 7,
                page: Some(pb::PageRequest {
                    page_size: 5000,
                    page_token: "x".into(),
                }),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        violated_fields(&status),
        ["settlement_day", "page.page_size", "page.page_token"]
    );
    app.stop().await;
}

async fn reservations_on_the_wire(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let plenty = app
        .new_product(&owner, "Plenty", ProductCategory::MainMenu, 100, 10)
        .await;
    let scarce = app
        .new_product(&owner, "Scarce", ProductCategory::Drink, 50, 2)
        .await;
    let status = assert_error(
        reserve(
            &app,
            "greedy",
            store.id,
            vec![line(plenty.id, 5), line(scarce.id, 3)],
        )
        .await,
        Code::FailedPrecondition,
        "OUT_OF_STOCK",
    );
    let details = tonic_types::StatusExt::get_error_details(&status);
    let info = details.error_info().expect("error info");
    assert_eq!(
        info.metadata
            .get(&format!("product_{}", scarce.id))
            .map(String::as_str),
        Some("2")
    );
    assert!(
        !info
            .metadata
            .contains_key(&format!("product_{}", plenty.id))
    );
    assert_eq!(
        info.metadata.get("available").map(String::as_str),
        Some(format!("{}:2", scarce.id).as_str())
    );

    let first = reserve(
        &app,
        "o-1",
        store.id,
        vec![line(plenty.id, 2), line(scarce.id, 1), line(plenty.id, 1)],
    )
    .await
    .expect("reserve");
    assert_eq!(first.status, ReservationStatus::Reserved as i32);
    assert_eq!(
        reserved_lines(&first),
        [
            (
                plenty.id,
                "Plenty",
                ProductCategory::MainMenu as i32,
                100,
                3
            ),
            (scarce.id, "Scarce", ProductCategory::Drink as i32, 50, 1)
        ]
    );
    let again = reserve(
        &app,
        "o-1",
        store.id,
        vec![line(plenty.id, 3), line(scarce.id, 1)],
    )
    .await
    .expect("retry");
    assert_eq!(again, first, "a retry answers the same reservation");

    let mut trade = app.trade();
    let confirmed = trade
        .confirm_stock(pb::ConfirmStockRequest {
            order_id: "o-1".into(),
        })
        .await
        .expect("confirm")
        .into_inner()
        .reservation
        .expect("reservation");
    assert_eq!(confirmed.status, ReservationStatus::Confirmed as i32);
    assert_error(
        trade
            .release_stock(pb::ReleaseStockRequest {
                order_id: "o-1".into(),
            })
            .await,
        Code::FailedPrecondition,
        "RESERVATION_CLOSED",
    );
    assert_error(
        trade
            .confirm_stock(pb::ConfirmStockRequest {
                order_id: "never".into(),
            })
            .await,
        Code::NotFound,
        "RESERVATION_NOT_FOUND",
    );
    // A release before any reservation leaves a tombstone of no store.
    let tombstone = trade
        .release_stock(pb::ReleaseStockRequest {
            order_id: "late".into(),
        })
        .await
        .expect("release")
        .into_inner()
        .reservation
        .expect("tombstone");
    assert_eq!(
        (tombstone.status, tombstone.store_id),
        (ReservationStatus::Released as i32, 0)
    );
    assert_error(
        trade
            .confirm_stock(pb::ConfirmStockRequest {
                order_id: "late".into(),
            })
            .await,
        Code::FailedPrecondition,
        "RESERVATION_CLOSED",
    );

    // Many at once: each as ConfirmStock would, the answer naming what could not be.
    reserve(&app, "o-2", store.id, vec![line(plenty.id, 1)])
        .await
        .expect("reserve");
    let many = trade
        .confirm_stocks(pb::ConfirmStocksRequest {
            order_ids: ["o-2", "late", "never", "o-1"].map(String::from).to_vec(),
        })
        .await
        .expect("confirm many")
        .into_inner();
    assert_eq!(
        (many.released_order_ids, many.unknown_order_ids),
        (vec!["late".to_string()], vec!["never".to_string()])
    );
    let o2 = app
        .storage
        .reservation(&pos_store::storage::OrderId::parse("o-2").expect("id"))
        .await
        .expect("read")
        .expect("reservation");
    assert_eq!(o2.status, pos_store::storage::ReservationStatus::Confirmed);
    for (ids, field) in [
        (vec![], "order_ids"),
        (vec!["o-2".to_string(); 1_001], "order_ids"),
        (vec!["o-2".to_string(), String::new()], "order_ids[1]"),
    ] {
        let status = assert_error(
            trade
                .confirm_stocks(pb::ConfirmStocksRequest { order_ids: ids })
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), [field]);
    }
    app.stop().await;
}

async fn a_replayed_order_id_with_other_lines_is_refused(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let (other, _) = app.new_store(2, PosGrade::Bronze).await;
    let p = app
        .new_product(&owner, "P", ProductCategory::MainMenu, 100, 10)
        .await;
    reserve(&app, "o", store.id, vec![line(p.id, 1)])
        .await
        .expect("first");
    for (store_id, lines) in [
        (store.id, vec![line(p.id, 5)]),
        (other.id, vec![line(p.id, 1)]),
    ] {
        let status = assert_error(
            reserve(&app, "o", store_id, lines).await,
            Code::FailedPrecondition,
            "IDEMPOTENCY_KEY_REUSED",
        );
        assert!(status.message().contains("order id"), "{status:?}");
    }
    assert_eq!(app.stock(store.id, p.id).await, 9);
    app.stop().await;
}

async fn bad_reservation_requests_name_the_field(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let p = app
        .new_product(&owner, "P", ProductCategory::MainMenu, 100, 10)
        .await;
    let cases: Vec<(&str, i64, Vec<pb::StockRequestLine>, Vec<&str>)> = vec![
        ("empty", store.id, vec![], vec!["lines"]),
        (
            "zero",
            store.id,
            vec![line(p.id, 0)],
            vec!["lines[0].count"],
        ),
        (
            "huge",
            store.id,
            vec![line(p.id, 10_000_001)],
            vec!["lines[0].count"],
        ),
        (
            "no-product",
            store.id,
            vec![line(0, 1)],
            vec!["lines[0].product_id"],
        ),
        (
            "too-many",
            store.id,
            (0..101).map(|_| line(p.id, 1)).collect(),
            vec!["lines"],
        ),
        ("", store.id, vec![line(p.id, 1)], vec!["order_id"]),
        ("no-store", 0, vec![line(p.id, 1)], vec!["store_id"]),
        (
            "all-bad",
            -1,
            vec![line(-1, -1)],
            vec!["store_id", "lines[0].product_id", "lines[0].count"],
        ),
    ];
    for (order_id, store_id, lines, fields) in cases {
        let status = assert_error(
            reserve(&app, order_id, store_id, lines).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), fields, "case {order_id:?}");
    }
    assert_eq!(app.stock(store.id, p.id).await, 10);
    app.stop().await;
}
