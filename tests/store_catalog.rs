//! StoreService over real gRPC on loopback, on SQLite and PostgreSQL: validation,
//! object-level authorization, soft delete, history, restock and the tablet menu.

mod support;

use pos_proto::v1::{self as pb, PosGrade, ProductCategory};
use support::{Backend, TestApp, assert_error, violated_fields};
use tonic::Code;

on_both_backends!(
    validation_names_every_bad_field_and_changes_nothing,
    owners_cannot_touch_another_stores_products,
    soft_deleted_products_leave_menus_but_not_history,
    history_rows_on_create_and_every_update,
    restock_resets_live_products_to_base_stock,
    tablets_see_only_their_stores_live_menu,
    device_credentials_rotate_and_revoke,
    devices_are_created_by_grade_and_store_creation_is_idempotent,
    internal_api_refuses_non_service_callers,
    stores_are_listed_by_settlement_day_in_pages,
);

async fn product_names(app: &TestApp, token: &str, include_deleted: bool) -> Vec<String> {
    app.store(Some(token))
        .list_products(pb::ListProductsRequest {
            category: 0,
            include_deleted,
        })
        .await
        .expect("list")
        .into_inner()
        .products
        .into_iter()
        .map(|p| p.name)
        .collect()
}

async fn validation_names_every_bad_field_and_changes_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, owner) = app.new_store(1, PosGrade::Bronze).await;
    let mut client = app.store(Some(&owner));

    let status = assert_error(
        client
            .create_product(pb::CreateProductRequest {
                name: "  ".into(),
                category: 0,
                price: -1,
                base_stock: 10_000_001,
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        violated_fields(&status),
        ["name", "category", "price", "base_stock"]
    );
    let status = assert_error(
        client
            .create_product(pb::CreateProductRequest {
                name: "x".repeat(256),
                category: 42,
                price: 100,
                base_stock: 1,
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["name", "category"]);
    assert!(product_names(&app, &owner, true).await.is_empty());

    let product = app
        .new_product(&owner, "Kimchi", ProductCategory::SubMenu, 500, 10)
        .await;
    let status = assert_error(
        client
            .update_product(pb::UpdateProductRequest {
                product_id: product.id,
                price: Some(10_000_001),
                base_stock: Some(-5),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["price", "base_stock"]);
    let status = assert_error(
        client
            .update_product(pb::UpdateProductRequest {
                product_id: product.id,
                price: None,
                base_stock: None,
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["price"]);
    let status = assert_error(
        client
            .delete_product(pb::DeleteProductRequest { product_id: 0 })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["product_id"]);

    let history = client
        .list_product_history(pb::ListProductHistoryRequest {
            product_id: product.id,
        })
        .await
        .expect("history")
        .into_inner()
        .entries;
    assert_eq!(history.len(), 1, "failed updates wrote no history");
    assert_eq!(
        app.repo
            .product(product.store_id, product.id)
            .await
            .expect("read")
            .expect("row")
            .price,
        500
    );

    let status = assert_error(
        app.internal()
            .create_store_for_owner(pb::CreateStoreForOwnerRequest {
                owner_user_id: 2,
                store_name: "line\nbreak".into(),
                pos_grade: 0,
                settlement_day: 3,
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        violated_fields(&status),
        ["store_name", "pos_grade", "settlement_day"]
    );
    assert!(app.repo.store_of_owner(2).await.expect("read").is_none());
    app.stop().await;
}

async fn owners_cannot_touch_another_stores_products(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store_a, owner_a) = app.new_store(1, PosGrade::Bronze).await;
    let (store_b, owner_b) = app.new_store(2, PosGrade::Bronze).await;
    let product = app
        .new_product(&owner_a, "Bibimbap", ProductCategory::MainMenu, 1000, 5)
        .await;
    let mut intruder = app.store(Some(&owner_b));

    assert_error(
        intruder
            .update_product(pb::UpdateProductRequest {
                product_id: product.id,
                price: Some(1),
                base_stock: None,
            })
            .await,
        Code::NotFound,
        "PRODUCT_NOT_FOUND",
    );
    assert_error(
        intruder
            .delete_product(pb::DeleteProductRequest {
                product_id: product.id,
            })
            .await,
        Code::NotFound,
        "PRODUCT_NOT_FOUND",
    );
    assert_error(
        intruder
            .list_product_history(pb::ListProductHistoryRequest {
                product_id: product.id,
            })
            .await,
        Code::NotFound,
        "PRODUCT_NOT_FOUND",
    );
    assert!(product_names(&app, &owner_b, true).await.is_empty());

    // A token claiming another owner's store is refused, not trusted.
    let forged = app.owner_token(2, Some(store_a.id));
    assert_error(
        app.store(Some(&forged))
            .list_products(pb::ListProductsRequest::default())
            .await,
        Code::PermissionDenied,
        "NOT_YOUR_STORE",
    );
    // A tablet of store B cannot read store A's menu by claiming store A.
    let device_b = app
        .repo
        .devices_of_store(store_b.id)
        .await
        .expect("devices")[0]
        .clone();
    let forged_device = app
        .issuer
        .device(store_a.id, device_b.id, device_b.credential_version);
    assert_error(
        app.store(Some(&forged_device))
            .list_products(pb::ListProductsRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    // Nor can owner B revoke store A's tablets.
    let device_a = app
        .repo
        .devices_of_store(store_a.id)
        .await
        .expect("devices")[0]
        .clone();
    assert_error(
        intruder
            .revoke_device(pb::RevokeDeviceRequest {
                device_id: device_a.id,
            })
            .await,
        Code::NotFound,
        "DEVICE_NOT_FOUND",
    );

    let unchanged = app
        .repo
        .product(store_a.id, product.id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!((unchanged.price, unchanged.deleted_at), (1000, None));
    assert_eq!(
        app.repo
            .product_history(product.id)
            .await
            .expect("history")
            .len(),
        1
    );
    let device_a_after = app
        .repo
        .device(store_a.id, device_a.id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        device_a_after.credential_version,
        device_a.credential_version
    );
    assert_eq!(device_a_after.revoked_at, None);
    app.stop().await;
}

async fn soft_deleted_products_leave_menus_but_not_history(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let keep = app
        .new_product(&owner, "Kimchi", ProductCategory::SubMenu, 500, 10)
        .await;
    let gone = app
        .new_product(&owner, "Japchae", ProductCategory::SubMenu, 700, 10)
        .await;
    let mut client = app.store(Some(&owner));
    let deleted = client
        .delete_product(pb::DeleteProductRequest {
            product_id: gone.id,
        })
        .await
        .expect("delete")
        .into_inner()
        .product
        .expect("product");
    assert!(deleted.deleted);

    assert_eq!(product_names(&app, &owner, false).await, ["Kimchi"]);
    assert_eq!(
        product_names(&app, &owner, true).await,
        ["Kimchi", "Japchae"]
    );
    let device = app.repo.devices_of_store(store.id).await.expect("devices")[0].id;
    let tablet = app.device_token(&owner, device).await;
    assert_eq!(product_names(&app, &tablet, false).await, ["Kimchi"]);
    assert_error(
        app.store(Some(&tablet))
            .list_products(pb::ListProductsRequest {
                category: 0,
                include_deleted: true,
            })
            .await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );

    for result in [
        client
            .update_product(pb::UpdateProductRequest {
                product_id: gone.id,
                price: Some(1),
                base_stock: None,
            })
            .await
            .map(|_| ()),
        client
            .delete_product(pb::DeleteProductRequest {
                product_id: gone.id,
            })
            .await
            .map(|_| ()),
    ] {
        assert_error(result, Code::NotFound, "PRODUCT_NOT_FOUND");
    }
    let restocked = client
        .restock(pb::RestockRequest {})
        .await
        .expect("restock")
        .into_inner()
        .products;
    assert_eq!(
        restocked.iter().map(|p| p.id).collect::<Vec<_>>(),
        [keep.id]
    );
    // Ordering a deleted product is refused at reservation.
    assert_error(
        app.internal()
            .reserve_stock(pb::ReserveStockRequest {
                order_id: "order-deleted".into(),
                store_id: store.id,
                lines: vec![pb::StockRequestLine {
                    product_id: gone.id,
                    count: 1,
                }],
            })
            .await,
        Code::NotFound,
        "PRODUCT_NOT_FOUND",
    );
    // The history of a deleted product stays readable for the books.
    let history = client
        .list_product_history(pb::ListProductHistoryRequest {
            product_id: gone.id,
        })
        .await
        .expect("history")
        .into_inner()
        .entries;
    assert_eq!(history.len(), 1);
    app.stop().await;
}

async fn history_rows_on_create_and_every_update(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, owner) = app.new_store(1, PosGrade::Bronze).await;
    let product = app
        .new_product(&owner, "Sikhye", ProductCategory::Drink, 300, 20)
        .await;
    assert_eq!((product.stock, product.base_stock), (20, 20));
    let mut client = app.store(Some(&owner));
    let updated = client
        .update_product(pb::UpdateProductRequest {
            product_id: product.id,
            price: Some(350),
            base_stock: None,
        })
        .await
        .expect("update price")
        .into_inner()
        .product
        .expect("product");
    assert_eq!(
        (updated.price, updated.base_stock, updated.stock),
        (350, 20, 20)
    );
    let updated = client
        .update_product(pb::UpdateProductRequest {
            product_id: product.id,
            price: None,
            base_stock: Some(50),
        })
        .await
        .expect("update base stock")
        .into_inner()
        .product
        .expect("product");
    assert_eq!(
        (updated.price, updated.base_stock, updated.stock),
        (350, 50, 20),
        "stock untouched"
    );

    let history: Vec<(i64, i64)> = client
        .list_product_history(pb::ListProductHistoryRequest {
            product_id: product.id,
        })
        .await
        .expect("history")
        .into_inner()
        .entries
        .into_iter()
        .map(|e| (e.price, e.base_stock))
        .collect();
    assert_eq!(history, [(300, 20), (350, 20), (350, 50)]);
    app.stop().await;
}

async fn restock_resets_live_products_to_base_stock(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let a = app
        .new_product(&owner, "A", ProductCategory::MainMenu, 100, 10)
        .await;
    let b = app
        .new_product(&owner, "B", ProductCategory::Drink, 100, 5)
        .await;
    let reserve = |order_id: &str, lines: Vec<pb::StockRequestLine>| {
        let mut internal = app.internal();
        let request = pb::ReserveStockRequest {
            order_id: order_id.into(),
            store_id: store.id,
            lines,
        };
        async move { internal.reserve_stock(request).await.expect("reserve") }
    };
    // A sold order (confirmed), and one still in flight (reserved, not yet confirmed).
    reserve(
        "sold",
        vec![
            pb::StockRequestLine {
                product_id: a.id,
                count: 7,
            },
            pb::StockRequestLine {
                product_id: b.id,
                count: 5,
            },
        ],
    )
    .await;
    app.internal()
        .confirm_stock(pb::ConfirmStockRequest {
            order_id: "sold".into(),
        })
        .await
        .expect("confirm");
    reserve(
        "in-flight",
        vec![pb::StockRequestLine {
            product_id: a.id,
            count: 2,
        }],
    )
    .await;
    let mut client = app.store(Some(&owner));
    client
        .update_product(pb::UpdateProductRequest {
            product_id: b.id,
            price: None,
            base_stock: Some(8),
        })
        .await
        .expect("update");
    let stocks = |products: Vec<pb::Product>| -> Vec<(i64, i64)> {
        products.into_iter().map(|p| (p.id, p.stock)).collect()
    };
    let before = client
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .products;
    assert_eq!(stocks(before), [(a.id, 1), (b.id, 0)]);
    let after = client
        .restock(pb::RestockRequest {})
        .await
        .expect("restock")
        .into_inner()
        .products;
    // The in-flight order keeps its 2 of A out of the restocked shelf...
    assert_eq!(stocks(after), [(a.id, 8), (b.id, 8)]);
    // ...and when it is cancelled the shelf holds exactly the base stock.
    app.internal()
        .release_stock(pb::ReleaseStockRequest {
            order_id: "in-flight".into(),
        })
        .await
        .expect("release");
    assert_eq!(
        app.repo
            .product(store.id, a.id)
            .await
            .expect("read")
            .expect("row")
            .stock,
        10
    );
    app.stop().await;
}

async fn tablets_see_only_their_stores_live_menu(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let (_, other_owner) = app.new_store(2, PosGrade::Bronze).await;
    app.new_product(&owner, "Bibimbap", ProductCategory::MainMenu, 1000, 10)
        .await;
    app.new_product(&owner, "Sikhye", ProductCategory::Drink, 300, 10)
        .await;
    app.new_product(&other_owner, "Elsewhere", ProductCategory::Drink, 1, 1)
        .await;
    let device = app.repo.devices_of_store(store.id).await.expect("devices")[0].id;
    let tablet = app.device_token(&owner, device).await;

    assert_eq!(
        product_names(&app, &tablet, false).await,
        ["Bibimbap", "Sikhye"]
    );
    let drinks: Vec<String> = app
        .store(Some(&tablet))
        .list_products(pb::ListProductsRequest {
            category: ProductCategory::Drink as i32,
            include_deleted: false,
        })
        .await
        .expect("list")
        .into_inner()
        .products
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(drinks, ["Sikhye"]);

    // Owner-only RPCs refuse tablets, and every RPC refuses anonymous callers.
    assert_error(
        app.store(Some(&tablet))
            .create_product(pb::CreateProductRequest {
                name: "Sneaky".into(),
                category: ProductCategory::Drink as i32,
                price: 1,
                base_stock: 1,
            })
            .await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );
    assert_error(
        app.store(None)
            .list_products(pb::ListProductsRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
    );
    assert_error(
        app.store(Some("not-a-jwt"))
            .list_products(pb::ListProductsRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    assert_eq!(
        product_names(&app, &owner, true).await,
        ["Bibimbap", "Sikhye"]
    );
    app.stop().await;
}

async fn device_credentials_rotate_and_revoke(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let device = app.repo.devices_of_store(store.id).await.expect("devices")[1].id;
    let first = app.device_token(&owner, device).await;
    assert!(product_names(&app, &first, false).await.is_empty());
    let second = app.device_token(&owner, device).await;
    assert_error(
        app.store(Some(&first))
            .list_products(pb::ListProductsRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert!(product_names(&app, &second, false).await.is_empty());
    let revoked = app
        .store(Some(&owner))
        .revoke_device(pb::RevokeDeviceRequest { device_id: device })
        .await
        .expect("revoke")
        .into_inner()
        .device
        .expect("device");
    assert!(revoked.revoked);
    assert_error(
        app.store(Some(&second))
            .list_products(pb::ListProductsRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_error(
        app.store(Some(&owner))
            .issue_device_token(pb::IssueDeviceTokenRequest { device_id: 999_999 })
            .await,
        Code::NotFound,
        "DEVICE_NOT_FOUND",
    );
    app.stop().await;
}

async fn devices_are_created_by_grade_and_store_creation_is_idempotent(backend: Backend) {
    let app = TestApp::start(backend).await;
    for (owner, grade, expected) in [
        (1, PosGrade::Bronze, 30),
        (2, PosGrade::Silver, 50),
        (3, PosGrade::Gold, 100),
    ] {
        let (store, token) = app.new_store(owner, grade).await;
        let devices = app
            .store(Some(&token))
            .list_devices(pb::ListDevicesRequest {})
            .await
            .expect("devices")
            .into_inner()
            .devices;
        assert_eq!(devices.len(), expected);
        assert_eq!(devices[0].label, "table 1");
        assert_eq!(devices[expected - 1].label, format!("table {expected}"));
        assert!(devices.iter().all(|d| d.store_id == store.id && !d.revoked));
    }
    // A retried signup returns the same store and creates nothing more.
    let retry = app
        .internal()
        .create_store_for_owner(pb::CreateStoreForOwnerRequest {
            owner_user_id: 1,
            store_name: "Another name".into(),
            pos_grade: PosGrade::Gold as i32,
            settlement_day: 25,
        })
        .await
        .expect("retry")
        .into_inner();
    assert!(!retry.created);
    let store = retry.store.expect("store");
    assert_eq!(
        (store.name.as_str(), store.pos_grade),
        ("Store 1", PosGrade::Bronze as i32)
    );
    assert_eq!(
        app.repo
            .devices_of_store(store.id)
            .await
            .expect("devices")
            .len(),
        30
    );
    let me = app
        .store(Some(&app.owner_token(1, None)))
        .get_my_store(pb::GetMyStoreRequest {})
        .await
        .expect("my store")
        .into_inner()
        .store
        .expect("store");
    assert_eq!(me.id, store.id);
    assert_error(
        app.store(Some(&app.owner_token(77, None)))
            .get_my_store(pb::GetMyStoreRequest {})
            .await,
        Code::NotFound,
        "STORE_NOT_FOUND",
    );
    app.stop().await;
}

async fn internal_api_refuses_non_service_callers(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let value = format!("Bearer {owner}").parse().expect("ascii");
    let mut as_owner =
        pos_proto::v1::store_internal_service_client::StoreInternalServiceClient::with_interceptor(
            app.channel(),
            support::Bearer(Some(value)),
        );
    let mut anonymous =
        pos_proto::v1::store_internal_service_client::StoreInternalServiceClient::with_interceptor(
            app.channel(),
            support::Bearer(None),
        );
    let request = || pb::CreateStoreForOwnerRequest {
        owner_user_id: 9,
        store_name: "Nope".into(),
        pos_grade: PosGrade::Bronze as i32,
        settlement_day: 1,
    };
    assert_error(
        as_owner.create_store_for_owner(request()).await,
        Code::PermissionDenied,
        "INTERNAL_ONLY",
    );
    assert_error(
        anonymous.create_store_for_owner(request()).await,
        Code::PermissionDenied,
        "INTERNAL_ONLY",
    );
    assert_error(
        as_owner
            .release_stock(pb::ReleaseStockRequest {
                order_id: "x".into(),
            })
            .await,
        Code::PermissionDenied,
        "INTERNAL_ONLY",
    );
    assert!(app.repo.store_of_owner(9).await.expect("read").is_none());
    assert!(app.repo.reservation("x").await.expect("read").is_none());
    let _ = store;
    app.stop().await;
}

async fn stores_are_listed_by_settlement_day_in_pages(backend: Backend) {
    let app = TestApp::start(backend).await;
    for owner in 1..=5 {
        app.internal()
            .create_store_for_owner(pb::CreateStoreForOwnerRequest {
                owner_user_id: owner,
                store_name: format!("S{owner}"),
                pos_grade: PosGrade::Bronze as i32,
                settlement_day: if owner % 2 == 0 { 5 } else { 25 },
            })
            .await
            .expect("create");
    }
    let mut internal = app.internal();
    let page = |token: String| pb::ListStoresBySettlementDayRequest {
        settlement_day: 25,
        page: Some(pb::PageRequest {
            page_size: 2,
            page_token: token,
        }),
    };
    let first = internal
        .list_stores_by_settlement_day(page(String::new()))
        .await
        .expect("page 1")
        .into_inner();
    let second = internal
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
        internal
            .list_stores_by_settlement_day(pb::ListStoresBySettlementDayRequest {
                settlement_day: 7,
                page: None,
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["settlement_day"]);
    app.stop().await;
}
