//! ReserveStocks on the wire: each order of a batch answered as ReserveStock would answer
//! it alone (its reservation, or the very status ReserveStock fails with), 1 to 1,000
//! orders a call, only the trade role calling; and an order naming its tablet reserved
//! only with that tablet's current credential, in one call or in a batch.

use std::collections::BTreeMap;

use pos_proto::v1::{
    self as pb, PosGrade, ProductCategory, ReservationStatus,
    store_internal_service_client::StoreInternalServiceClient,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::{line, reserved_lines};
use crate::support::{Bearer, Engine, app::TestApp, assert_error, violated_fields};

crate::on_both_engines!(
    each_order_of_a_batch_is_answered_as_reserve_stock_would_answer_it,
    a_batch_holds_one_to_a_thousand_orders,
    only_the_trade_role_reserves_batches,
    an_order_is_reserved_only_with_its_tablets_current_credential,
);

fn wanted(
    order_id: &str,
    store_id: i64,
    lines: Vec<pb::StockRequestLine>,
    tablet: Option<(i64, i64)>,
) -> pb::ReserveStockRequest {
    pb::ReserveStockRequest {
        order_id: order_id.into(),
        store_id,
        lines,
        tablet: tablet.map(|(device_id, credential_version)| pb::OrderingTablet {
            device_id,
            credential_version,
        }),
    }
}

/// Each order's answer: its reservation, or its refusal as the status it carries.
async fn reserve_batch(
    app: &TestApp,
    orders: Vec<pb::ReserveStockRequest>,
) -> Vec<Result<pb::Reservation, Status>> {
    let asked = orders.len();
    let outcomes = app
        .trade()
        .reserve_stocks(pb::ReserveStocksRequest { orders })
        .await
        .expect("the batch is answered")
        .into_inner()
        .outcomes;
    assert_eq!(outcomes.len(), asked, "one outcome per order");
    outcomes
        .into_iter()
        .map(|outcome| match outcome.outcome.expect("an outcome") {
            pb::reserve_stock_outcome::Outcome::Reservation(reservation) => Ok(reservation),
            pb::reserve_stock_outcome::Outcome::Refusal(refusal) => Err(Status::with_details(
                Code::from_i32(refusal.code),
                refusal.message,
                refusal.details.into(),
            )),
        })
        .collect()
}

/// ReserveStock as the trade role calls it.
async fn reserve_one(
    app: &TestApp,
    order: pb::ReserveStockRequest,
) -> Result<pb::Reservation, Status> {
    app.trade()
        .reserve_stock(order)
        .await
        .map(|r| r.into_inner().reservation.expect("reservation"))
}

/// Everything a refusal says: its code and message, and its details decoded (the reason
/// and metadata, and the fields named).
#[derive(Debug, PartialEq, Eq)]
struct Said {
    code: Code,
    message: String,
    reason: String,
    domain: String,
    metadata: BTreeMap<String, String>,
    violations: Vec<(String, String)>,
}

fn said(status: &Status) -> Said {
    let details = status.get_error_details();
    let info = details.error_info();
    Said {
        code: status.code(),
        message: status.message().to_string(),
        reason: info.map(|i| i.reason.clone()).unwrap_or_default(),
        domain: info.map(|i| i.domain.clone()).unwrap_or_default(),
        metadata: info
            .map(|i| i.metadata.clone().into_iter().collect())
            .unwrap_or_default(),
        violations: details
            .bad_request()
            .map(|bad| {
                bad.field_violations
                    .iter()
                    .map(|v| (v.field.clone(), v.description.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[track_caller]
fn refusal(answer: &Result<pb::Reservation, Status>) -> &Status {
    answer.as_ref().expect_err("a refusal")
}

async fn each_order_of_a_batch_is_answered_as_reserve_stock_would_answer_it(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let (other, other_owner) = app.new_store(2, PosGrade::Bronze).await;
    let plenty = app
        .new_product(&owner, "Plenty", ProductCategory::MainMenu, 100, 10)
        .await;
    let scarce = app
        .new_product(&owner, "Scarce", ProductCategory::Drink, 50, 2)
        .await;
    let rare = app
        .new_product(&owner, "Rare", ProductCategory::MainMenu, 10, 3)
        .await;
    let foreign = app
        .new_product(&other_owner, "Foreign", ProductCategory::Drink, 1, 5)
        .await;
    let batch = vec![
        wanted(
            "w-1",
            store.id,
            vec![line(plenty.id, 2), line(scarce.id, 1), line(plenty.id, 1)],
            None,
        ),
        wanted("", store.id, vec![line(plenty.id, 0)], None),
        wanted(
            "w-short",
            store.id,
            vec![line(plenty.id, 1), line(rare.id, 5)],
            None,
        ),
        wanted("w-missing", store.id, vec![line(999_999, 1)], None),
        wanted("w-foreign", store.id, vec![line(foreign.id, 1)], None),
        wanted(
            "w-1",
            store.id,
            vec![line(plenty.id, 3), line(scarce.id, 1)],
            None,
        ),
        wanted("w-1", store.id, vec![line(plenty.id, 1)], None),
        wanted("w-2", store.id, vec![line(plenty.id, 1)], None),
        wanted(
            "w-bad-tablet",
            store.id,
            vec![line(plenty.id, 1)],
            Some((0, 1)),
        ),
    ];
    let answers = reserve_batch(&app, batch.clone()).await;

    let first = answers[0].as_ref().expect("reserved");
    assert_eq!(
        (first.order_id.as_str(), first.store_id, first.status),
        ("w-1", store.id, ReservationStatus::Reserved as i32)
    );
    assert_eq!(
        reserved_lines(first),
        [
            (
                plenty.id,
                "Plenty",
                ProductCategory::MainMenu as i32,
                100,
                3
            ),
            (scarce.id, "Scarce", ProductCategory::Drink as i32, 50, 1),
        ]
    );
    assert_eq!(
        answers[5].as_ref().expect("the retry"),
        first,
        "a repeat within the batch answers the same reservation"
    );
    let second = answers[7].as_ref().expect("reserved");
    assert_eq!((second.order_id.as_str(), second.lines.len()), ("w-2", 1));

    let bad = refusal(&answers[1]);
    assert_eq!(
        (bad.code(), crate::support::reason(bad).as_str()),
        (Code::InvalidArgument, "INVALID_ARGUMENT")
    );
    assert_eq!(violated_fields(bad), ["order_id", "lines[0].count"]);
    let bad_tablet = refusal(&answers[8]);
    assert_eq!(bad_tablet.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(bad_tablet), ["tablet.device_id"]);

    let short = said(refusal(&answers[2]));
    assert_eq!(
        (short.code, short.reason.as_str()),
        (Code::FailedPrecondition, "OUT_OF_STOCK")
    );
    assert_eq!(
        short.metadata,
        BTreeMap::from([
            ("available".to_string(), format!("{}:3", rare.id)),
            (format!("product_{}", rare.id), "3".to_string()),
        ])
    );
    for (at, product) in [(3, 999_999), (4, foreign.id)] {
        let missing = said(refusal(&answers[at]));
        assert_eq!(
            (missing.code, missing.reason.as_str()),
            (Code::NotFound, "PRODUCT_NOT_FOUND"),
            "order {at}"
        );
        assert_eq!(
            missing.metadata.get("product_id"),
            Some(&product.to_string())
        );
    }
    let reused = said(refusal(&answers[6]));
    assert_eq!(
        (reused.code, reused.reason.as_str()),
        (Code::FailedPrecondition, "IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(reused.metadata.get("order_id"), Some(&"w-1".to_string()));

    assert_eq!(
        (
            app.stock(store.id, plenty.id).await,
            app.stock(store.id, scarce.id).await,
            app.stock(store.id, rare.id).await,
            app.stock(other.id, foreign.id).await,
        ),
        (6, 1, 3, 5),
        "only the two reserved orders took stock"
    );

    // ReserveStock, asked each order alone now, answers it the same: the reservations
    // (as retries), and exactly the same statuses (none of them took stock).
    for (at, order) in batch.into_iter().enumerate() {
        let alone = reserve_one(&app, order).await;
        match (&answers[at], alone) {
            (Ok(in_batch), Ok(alone)) => assert_eq!(in_batch, &alone, "order {at}"),
            (Err(in_batch), Err(alone)) => {
                assert_eq!(said(in_batch), said(&alone), "order {at}")
            }
            (in_batch, alone) => panic!("order {at}: {in_batch:?} in the batch, {alone:?} alone"),
        }
    }
    assert_eq!(app.stock(store.id, plenty.id).await, 6);
    app.stop().await;
}

async fn a_batch_holds_one_to_a_thousand_orders(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let p = app
        .new_product(&owner, "P", ProductCategory::MainMenu, 100, 1_000)
        .await;
    let orders = |count: usize| -> Vec<pb::ReserveStockRequest> {
        (0..count)
            .map(|i| wanted(&format!("n-{i}"), store.id, vec![line(p.id, 1)], None))
            .collect()
    };
    for count in [0, 1_001] {
        let status = assert_error(
            app.trade()
                .reserve_stocks(pb::ReserveStocksRequest {
                    orders: orders(count),
                })
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["orders"], "{count} orders");
    }
    assert_eq!(app.stock(store.id, p.id).await, 1_000, "nothing reserved");
    assert!(
        app.storage
            .reservation(&pos_store::storage::OrderId::parse("n-0").expect("id"))
            .await
            .expect("read")
            .is_none()
    );

    let answers = reserve_batch(&app, orders(1_000)).await;
    for (i, answer) in answers.iter().enumerate() {
        let reservation = answer.as_ref().expect("reserved");
        assert_eq!(reservation.order_id, format!("n-{i}"), "in request order");
    }
    assert_eq!(app.stock(store.id, p.id).await, 0);
    app.stop().await;
}

/// ReserveStocks names the same roles as ReserveStock: an owner, a tablet or anonymous
/// caller is INTERNAL_ONLY, any role but the trade role ROLE_NOT_ALLOWED; nothing moves.
async fn only_the_trade_role_reserves_batches(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let p = app
        .new_product(&owner, "P", ProductCategory::MainMenu, 100, 10)
        .await;
    let device = app.devices(store.id).await[0].clone();
    let tablet = app.device_token(&owner, device.id.get()).await;
    let request = || pb::ReserveStocksRequest {
        orders: vec![wanted("o", store.id, vec![line(p.id, 1)], None)],
    };
    for (who, token) in [
        ("an owner", Some(owner.as_str())),
        ("a tablet", Some(tablet.as_str())),
        ("anonymous", None),
    ] {
        let value = token.map(|t| format!("Bearer {t}").parse().expect("ascii"));
        let status = StoreInternalServiceClient::with_interceptor(app.channel(), Bearer(value))
            .reserve_stocks(request())
            .await
            .expect_err(who);
        assert_eq!(
            (status.code(), crate::support::reason(&status).as_str()),
            (Code::PermissionDenied, "INTERNAL_ONLY"),
            "{who}: {status:?}"
        );
    }
    for role in ["user", "edge", "settlement", "store"] {
        assert_error(
            app.internal_as(role).reserve_stocks(request()).await,
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
        );
    }
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
    let answers = reserve_batch(&app, request().orders).await;
    answers[0].as_ref().expect("the trade role reserves");
    assert_eq!(app.stock(store.id, p.id).await, 9);
    app.stop().await;
}

/// An order naming its tablet is reserved only while that is the current, unrevoked
/// credential of a tablet of the order's store: a replaced credential, a revoked tablet,
/// another store's tablet or no tablet at all is TOKEN_REVOKED and takes nothing, in a
/// batch (beside orders that are reserved) as in ReserveStock, retries included.
async fn an_order_is_reserved_only_with_its_tablets_current_credential(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let (other, other_owner) = app.new_store(2, PosGrade::Bronze).await;
    let p = app
        .new_product(&owner, "P", ProductCategory::MainMenu, 100, 10)
        .await;
    let theirs = app
        .new_product(&other_owner, "Theirs", ProductCategory::MainMenu, 100, 10)
        .await;
    let devices = app.devices(store.id).await;
    let (d0, d1) = (devices[0].id.get(), devices[1].id.get());
    app.device_token(&owner, d0).await;
    app.device_token(&owner, d1).await;
    app.store(Some(&owner))
        .revoke_device(pb::RevokeDeviceRequest { device_id: d1 })
        .await
        .expect("revoke");
    let version_of = |devices: &[pos_store::storage::Device], id: i64| {
        devices
            .iter()
            .find(|d| d.id.get() == id)
            .expect("the tablet")
            .credential_version
    };
    let devices = app.devices(store.id).await;
    let (v0, v1) = (version_of(&devices, d0), version_of(&devices, d1));
    let e0 = app.devices(other.id).await[0].clone();
    let (e0, e0_version) = (e0.id.get(), e0.credential_version);

    let order =
        |id: &str, tablet: Option<(i64, i64)>| wanted(id, store.id, vec![line(p.id, 1)], tablet);
    let refused = [
        order("stale", Some((d0, v0 - 1))),
        order("revoked", Some((d1, v1))),
        order("revoked-token", Some((d1, v1 - 1))),
        order("their-tablet", Some((e0, e0_version))),
        order("no-such-tablet", Some((999_999, 1))),
    ];
    let mut batch = vec![order("current", Some((d0, v0)))];
    batch.extend(refused.iter().cloned());
    batch.push(order("untold", None));
    batch.push(order("current", Some((d0, v0))));
    let answers = reserve_batch(&app, batch).await;
    let current = answers[0].as_ref().expect("the current tablet orders");
    assert_eq!(current.order_id, "current");
    for (at, asked) in refused.iter().enumerate() {
        let status = refusal(&answers[at + 1]);
        assert_eq!(
            (status.code(), crate::support::reason(status).as_str()),
            (Code::Unauthenticated, "TOKEN_REVOKED"),
            "{}: {status:?}",
            asked.order_id
        );
    }
    answers[6].as_ref().expect("an order naming no tablet");
    assert_eq!(answers[7].as_ref().expect("the retry"), current);
    assert_eq!(
        app.stock(store.id, p.id).await,
        8,
        "only the current tablet's order and the one naming none took stock"
    );

    // ReserveStock checks the same, with the same refusal.
    for (at, asked) in refused.iter().enumerate() {
        let alone = reserve_one(&app, asked.clone()).await;
        assert_eq!(
            said(&alone.expect_err(&asked.order_id)),
            said(refusal(&answers[at + 1])),
            "{}",
            asked.order_id
        );
    }
    reserve_one(&app, order("current-alone", Some((d0, v0))))
        .await
        .expect("the current tablet orders alone");
    assert_eq!(app.stock(store.id, p.id).await, 7);
    for asked in &refused {
        assert!(
            app.storage
                .reservation(&pos_store::storage::OrderId::parse(&asked.order_id).expect("id"))
                .await
                .expect("read")
                .is_none(),
            "{} left no reservation",
            asked.order_id
        );
    }

    // Once the tablet has a new credential, the old one cannot even retry an order it
    // placed; the new one can, and the other store's tablet orders in its own store.
    app.device_token(&owner, d0).await;
    let renewed = version_of(&app.devices(store.id).await, d0);
    assert_eq!(renewed, v0 + 1);
    let answers = reserve_batch(
        &app,
        vec![
            order("current", Some((d0, v0))),
            order("current", Some((d0, renewed))),
            wanted(
                "their-own",
                other.id,
                vec![line(theirs.id, 1)],
                Some((e0, e0_version)),
            ),
        ],
    )
    .await;
    assert_eq!(
        crate::support::reason(refusal(&answers[0])),
        "TOKEN_REVOKED"
    );
    assert_eq!(answers[1].as_ref().expect("retried"), current);
    answers[2]
        .as_ref()
        .expect("a tablet orders in its own store");
    assert_error(
        reserve_one(&app, order("current", Some((d0, v0)))).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_eq!(
        (
            app.stock(store.id, p.id).await,
            app.stock(other.id, theirs.id).await
        ),
        (7, 9)
    );
    app.stop().await;
}
