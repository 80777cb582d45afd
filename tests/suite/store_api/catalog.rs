//! Owners and tablets: validation, object-level authorization, soft deletes, tablets.

use pos_common::domain::{ProductId, StoreId, UserId};
use pos_proto::v1::{self as pb, PosGrade, ProductCategory};
use pos_store::storage::ProductFilter;
use tonic::Code;

use super::{line, product_names, reserve};
use crate::support::{Engine, app::TestApp, assert_error, violated_fields};

crate::on_both_engines!(
    validation_names_every_bad_field_and_changes_nothing,
    owners_cannot_touch_another_stores_products,
    soft_deleted_products_leave_menus_but_not_history,
    tablets_see_only_their_stores_live_menu,
    device_credentials_rotate_and_revoke,
    devices_are_created_by_grade_and_store_creation_is_idempotent,
);

async fn validation_names_every_bad_field_and_changes_nothing(engine: Engine) {
    let app = TestApp::start(engine).await;
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
            page: None,
        })
        .await
        .expect("history")
        .into_inner()
        .entries;
    assert_eq!(history.len(), 1, "failed updates wrote no history");
    let stored = app
        .storage
        .product(
            StoreId::from_stored(product.store_id),
            ProductId::from_stored(product.id),
        )
        .await
        .expect("read")
        .expect("product");
    assert_eq!((stored.price.get(), stored.deleted_at), (500, None));

    let status = assert_error(
        app.internal_as("user")
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
    assert!(
        app.storage
            .store_of_owner(UserId::from_stored(2))
            .await
            .expect("read")
            .is_none()
    );
    app.stop().await;
}

async fn owners_cannot_touch_another_stores_products(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store_a, owner_a) = app.new_store(1, PosGrade::Bronze).await;
    let (store_b, owner_b) = app.new_store(2, PosGrade::Bronze).await;
    let product = app
        .new_product(&owner_a, "Bibimbap", ProductCategory::MainMenu, 1000, 5)
        .await;
    let device_a = app.devices(store_a.id).await[0].clone();
    let before = (
        app.storage
            .list_products(
                StoreId::from_stored(store_a.id),
                ProductFilter {
                    category: None,
                    include_deleted: true,
                },
                pos_store::storage::Page::first(10_000),
            )
            .await
            .expect("products"),
        app.devices(store_a.id).await,
    );
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
                page: None,
            })
            .await,
        Code::NotFound,
        "PRODUCT_NOT_FOUND",
    );
    assert_error(
        intruder
            .revoke_device(pb::RevokeDeviceRequest {
                device_id: device_a.id.get(),
            })
            .await,
        Code::NotFound,
        "DEVICE_NOT_FOUND",
    );
    assert_error(
        intruder
            .issue_device_token(pb::IssueDeviceTokenRequest {
                device_id: device_a.id.get(),
            })
            .await,
        Code::NotFound,
        "DEVICE_NOT_FOUND",
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
    let device_b = app.devices(store_b.id).await[0].clone();
    let forged_device = app.issuer.device(
        StoreId::from_stored(store_a.id),
        device_b.id,
        device_b.credential_version,
    );
    assert_error(
        app.store(Some(&forged_device))
            .list_products(pb::ListProductsRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );

    let after = (
        app.storage
            .list_products(
                StoreId::from_stored(store_a.id),
                ProductFilter {
                    category: None,
                    include_deleted: true,
                },
                pos_store::storage::Page::first(10_000),
            )
            .await
            .expect("products"),
        app.devices(store_a.id).await,
    );
    assert_eq!(after, before, "store A is untouched");
    app.stop().await;
}

async fn soft_deleted_products_leave_menus_but_not_history(engine: Engine) {
    let app = TestApp::start(engine).await;
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
    let device = app.devices(store.id).await[0].id.get();
    let tablet = app.device_token(&owner, device).await;
    assert_eq!(product_names(&app, &tablet, false).await, ["Kimchi"]);
    assert_error(
        app.store(Some(&tablet))
            .list_products(pb::ListProductsRequest {
                category: 0,
                include_deleted: true,
                page: None,
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
        .restocked_count;
    assert_eq!(restocked, 1, "only the live product {}", keep.id);
    assert_error(
        reserve(&app, "order-deleted", store.id, vec![line(gone.id, 1)]).await,
        Code::NotFound,
        "PRODUCT_NOT_FOUND",
    );
    // The history of a deleted product stays readable for the books.
    let history = client
        .list_product_history(pb::ListProductHistoryRequest {
            product_id: gone.id,
            page: None,
        })
        .await
        .expect("history")
        .into_inner()
        .entries;
    assert_eq!(history.len(), 1);
    app.stop().await;
}

async fn tablets_see_only_their_stores_live_menu(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let (_, other_owner) = app.new_store(2, PosGrade::Bronze).await;
    app.new_product(&owner, "Bibimbap", ProductCategory::MainMenu, 1000, 10)
        .await;
    app.new_product(&owner, "Sikhye", ProductCategory::Drink, 300, 10)
        .await;
    app.new_product(&other_owner, "Elsewhere", ProductCategory::Drink, 1, 1)
        .await;
    let device = app.devices(store.id).await[0].id.get();
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
            page: None,
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

async fn device_credentials_rotate_and_revoke(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let device = app.devices(store.id).await[1].id.get();
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

async fn devices_are_created_by_grade_and_store_creation_is_idempotent(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, token) = app.new_store(1, PosGrade::Silver).await;
    let devices = app
        .store(Some(&token))
        .list_devices(pb::ListDevicesRequest::default())
        .await
        .expect("devices")
        .into_inner()
        .devices;
    assert_eq!(devices.len(), 50);
    assert_eq!(
        (devices[0].label.as_str(), devices[49].label.as_str()),
        ("table 1", "table 50")
    );
    assert!(devices.iter().all(|d| d.store_id == store.id && !d.revoked));
    // A retried signup returns the same store and creates nothing more.
    let retry = app
        .internal_as("user")
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
    let again = retry.store.expect("store");
    assert_eq!(
        (again.id, again.name.as_str(), again.pos_grade),
        (store.id, "Store 1", PosGrade::Silver as i32)
    );
    assert_eq!(app.devices(store.id).await.len(), 50);
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
