//! Stock reservations (Try-Confirm-Cancel) over the internal API, on SQLite and
//! PostgreSQL: idempotency, all-or-nothing, snapshots, and no oversell under concurrency.

mod support;

use pos_proto::v1::{self as pb, PosGrade, ProductCategory, ReservationStatus};
use support::{Backend, TestApp, assert_error, violated_fields};
use tonic::Code;

on_both_backends!(
    reserving_is_idempotent_and_merges_duplicate_lines,
    release_gives_stock_back_once_and_confirmed_is_final,
    a_release_that_overtakes_its_reservation_blocks_it,
    out_of_stock_takes_nothing_and_says_what_is_available,
    reservations_keep_the_product_as_ordered,
    bad_reservation_requests_name_the_field,
    fifty_concurrent_reservations_never_oversell,
    restocks_racing_reservations_and_releases_never_deadlock,
);

fn line(product_id: i64, count: i64) -> pb::StockRequestLine {
    pb::StockRequestLine { product_id, count }
}

async fn stock_of(app: &TestApp, store_id: i64, product_id: i64) -> i64 {
    app.repo
        .product(store_id, product_id)
        .await
        .expect("read")
        .expect("product")
        .stock
}

async fn reserve(
    app: &TestApp,
    order_id: &str,
    store_id: i64,
    lines: Vec<pb::StockRequestLine>,
) -> Result<pb::Reservation, tonic::Status> {
    app.internal()
        .reserve_stock(pb::ReserveStockRequest {
            order_id: order_id.to_string(),
            store_id,
            lines,
        })
        .await
        .map(|r| r.into_inner().reservation.expect("reservation"))
}

async fn reserving_is_idempotent_and_merges_duplicate_lines(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let p = app
        .new_product(&owner, "Kimchi", ProductCategory::SubMenu, 500, 10)
        .await;

    let first = reserve(
        &app,
        "order-1",
        store.id,
        vec![line(p.id, 2), line(p.id, 3)],
    )
    .await
    .expect("reserve");
    assert_eq!(first.status, ReservationStatus::Reserved as i32);
    assert_eq!(first.lines.len(), 1);
    assert_eq!(first.lines[0].count, 5);
    assert_eq!(stock_of(&app, store.id, p.id).await, 5);

    let again = reserve(
        &app,
        "order-1",
        store.id,
        vec![line(p.id, 2), line(p.id, 3)],
    )
    .await
    .expect("retry");
    assert_eq!(again, first, "a retry returns the same reservation");
    assert_eq!(
        stock_of(&app, store.id, p.id).await,
        5,
        "and takes nothing more"
    );

    let mut internal = app.internal();
    for _ in 0..2 {
        let confirmed = internal
            .confirm_stock(pb::ConfirmStockRequest {
                order_id: "order-1".into(),
            })
            .await
            .expect("confirm")
            .into_inner()
            .reservation
            .expect("reservation");
        assert_eq!(confirmed.status, ReservationStatus::Confirmed as i32);
    }
    assert_eq!(stock_of(&app, store.id, p.id).await, 5);
    // Another store cannot reuse the order id.
    let (other, _) = app.new_store(2, PosGrade::Bronze).await;
    let status = assert_error(
        reserve(&app, "order-1", other.id, vec![line(p.id, 1)]).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["order_id"]);
    app.stop().await;
}

async fn release_gives_stock_back_once_and_confirmed_is_final(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let a = app
        .new_product(&owner, "A", ProductCategory::MainMenu, 100, 10)
        .await;
    let b = app
        .new_product(&owner, "B", ProductCategory::Drink, 100, 10)
        .await;
    let mut internal = app.internal();

    reserve(
        &app,
        "to-release",
        store.id,
        vec![line(a.id, 4), line(b.id, 1)],
    )
    .await
    .expect("reserve");
    for _ in 0..2 {
        let released = internal
            .release_stock(pb::ReleaseStockRequest {
                order_id: "to-release".into(),
            })
            .await
            .expect("release")
            .into_inner()
            .reservation
            .expect("reservation");
        assert_eq!(released.status, ReservationStatus::Released as i32);
        assert_eq!(stock_of(&app, store.id, a.id).await, 10);
        assert_eq!(stock_of(&app, store.id, b.id).await, 10);
    }
    assert_error(
        internal
            .confirm_stock(pb::ConfirmStockRequest {
                order_id: "to-release".into(),
            })
            .await,
        Code::FailedPrecondition,
        "RESERVATION_CLOSED",
    );

    reserve(&app, "to-confirm", store.id, vec![line(a.id, 3)])
        .await
        .expect("reserve");
    internal
        .confirm_stock(pb::ConfirmStockRequest {
            order_id: "to-confirm".into(),
        })
        .await
        .expect("confirm");
    assert_error(
        internal
            .release_stock(pb::ReleaseStockRequest {
                order_id: "to-confirm".into(),
            })
            .await,
        Code::FailedPrecondition,
        "RESERVATION_CLOSED",
    );
    assert_eq!(stock_of(&app, store.id, a.id).await, 7);
    assert_error(
        internal
            .confirm_stock(pb::ConfirmStockRequest {
                order_id: "never-reserved".into(),
            })
            .await,
        Code::NotFound,
        "RESERVATION_NOT_FOUND",
    );
    app.stop().await;
}

async fn a_release_that_overtakes_its_reservation_blocks_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let p = app
        .new_product(&owner, "P", ProductCategory::MainMenu, 100, 10)
        .await;
    let released = app
        .internal()
        .release_stock(pb::ReleaseStockRequest {
            order_id: "late".into(),
        })
        .await
        .expect("release unknown")
        .into_inner()
        .reservation
        .expect("tombstone");
    assert_eq!(released.status, ReservationStatus::Released as i32);
    let late = reserve(&app, "late", store.id, vec![line(p.id, 3)])
        .await
        .expect("late reserve");
    assert_eq!(late.status, ReservationStatus::Released as i32);
    assert_eq!(
        stock_of(&app, store.id, p.id).await,
        10,
        "a cancelled order takes no stock"
    );
    app.stop().await;
}

async fn out_of_stock_takes_nothing_and_says_what_is_available(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let plenty = app
        .new_product(&owner, "Plenty", ProductCategory::MainMenu, 100, 10)
        .await;
    let scarce = app
        .new_product(&owner, "Scarce", ProductCategory::Drink, 100, 2)
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
    assert_eq!(stock_of(&app, store.id, plenty.id).await, 10);
    assert_eq!(stock_of(&app, store.id, scarce.id).await, 2);
    assert!(
        app.repo
            .reservation("greedy")
            .await
            .expect("read")
            .is_none()
    );

    // A product of another store is not found, and nothing is taken.
    let (_, other_owner) = app.new_store(2, PosGrade::Bronze).await;
    let foreign = app
        .new_product(&other_owner, "Foreign", ProductCategory::Drink, 1, 5)
        .await;
    assert_error(
        reserve(
            &app,
            "foreign",
            store.id,
            vec![line(plenty.id, 1), line(foreign.id, 1)],
        )
        .await,
        Code::NotFound,
        "PRODUCT_NOT_FOUND",
    );
    assert_eq!(stock_of(&app, store.id, plenty.id).await, 10);
    app.stop().await;
}

async fn reservations_keep_the_product_as_ordered(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let p = app
        .new_product(&owner, "Kimchi", ProductCategory::SubMenu, 500, 10)
        .await;
    let reserved = reserve(&app, "snap", store.id, vec![line(p.id, 2)])
        .await
        .expect("reserve");
    app.store(Some(&owner))
        .update_product(pb::UpdateProductRequest {
            product_id: p.id,
            price: Some(900),
            base_stock: None,
        })
        .await
        .expect("reprice");
    let record = app
        .repo
        .reservation("snap")
        .await
        .expect("read")
        .expect("row");
    let line = &reserved.lines[0];
    assert_eq!(
        (line.product_name.as_str(), line.category, line.unit_price),
        ("Kimchi", ProductCategory::SubMenu as i32, 500)
    );
    assert_eq!(
        record.lines[0].unit_price, 500,
        "the stored snapshot keeps the old price"
    );
    app.stop().await;
}

async fn bad_reservation_requests_name_the_field(backend: Backend) {
    let app = TestApp::start(backend).await;
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
    ];
    for (order_id, store_id, lines, fields) in cases {
        let status = assert_error(
            reserve(&app, order_id, store_id, lines).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), fields, "case {order_id:?}");
    }
    assert_eq!(stock_of(&app, store.id, p.id).await, 10);
    app.stop().await;
}

async fn fifty_concurrent_reservations_never_oversell(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let p = app
        .new_product(&owner, "Hot item", ProductCategory::MainMenu, 100, 10)
        .await;
    let attempts = (0..50).map(|i| {
        let mut client = app.internal();
        let request = pb::ReserveStockRequest {
            order_id: format!("rush-{i}"),
            store_id: store.id,
            lines: vec![line(p.id, 1)],
        };
        tokio::spawn(async move { client.reserve_stock(request).await })
    });
    let mut succeeded = 0;
    let mut out_of_stock = 0;
    for handle in attempts.collect::<Vec<_>>() {
        match handle.await.expect("task") {
            Ok(_) => succeeded += 1,
            Err(status) => {
                assert_eq!(support::reason(&status), "OUT_OF_STOCK", "{status:?}");
                out_of_stock += 1;
            }
        }
    }
    assert_eq!((succeeded, out_of_stock), (10, 40));
    assert_eq!(stock_of(&app, store.id, p.id).await, 0);
    app.stop().await;
}

async fn restocks_racing_reservations_and_releases_never_deadlock(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let mut products = Vec::new();
    for name in ["P1", "P2", "P3"] {
        products.push(
            app.new_product(&owner, name, ProductCategory::MainMenu, 100, 1000)
                .await
                .id,
        );
    }
    // Touch rows so PostgreSQL's heap order no longer matches id order.
    for id in products.iter().rev() {
        app.store(Some(&owner))
            .update_product(pb::UpdateProductRequest {
                product_id: *id,
                price: Some(101),
                base_stock: None,
            })
            .await
            .expect("update");
    }
    let mut tasks = Vec::new();
    for i in 0..30 {
        let mut internal = app.internal();
        let lines = products.iter().map(|id| line(*id, 1)).collect();
        let store_id = store.id;
        tasks.push(tokio::spawn(async move {
            let order_id = format!("race-{i}");
            internal
                .reserve_stock(pb::ReserveStockRequest {
                    order_id: order_id.clone(),
                    store_id,
                    lines,
                })
                .await?;
            if i % 2 == 0 {
                internal
                    .release_stock(pb::ReleaseStockRequest { order_id })
                    .await?;
            } else {
                internal
                    .confirm_stock(pb::ConfirmStockRequest { order_id })
                    .await?;
            }
            Ok::<(), tonic::Status>(())
        }));
    }
    for _ in 0..6 {
        let mut client = app.store(Some(&owner));
        tasks.push(tokio::spawn(async move {
            client.restock(pb::RestockRequest {}).await.map(|_| ())
        }));
    }
    for task in tasks {
        task.await
            .expect("task")
            .expect("no call fails, deadlocks included");
    }
    // Whatever the interleaving, nothing reserved is left, so the shelf is full or less
    // exactly what the 15 confirmed orders took after the last restock.
    for id in products {
        let stock = stock_of(&app, store.id, id).await;
        assert!((985..=1000).contains(&stock), "stock {stock}");
    }
    app.stop().await;
}
