//! Every list of the store service in pages on the wire: walks see every row once, page
//! sizes and tokens are checked, a store's products are capped, and a catalog larger than
//! a message (4,200 products with 255-character names) is served and restocked.

use pos_common::domain::StoreId;
use pos_common::storage::Database;
use pos_proto::v1::{self as pb, PosGrade, ProductCategory};
use pos_store::StoreArgs;
use tonic::Code;

use crate::support::{Engine, app::StoreClient, app::TestApp, assert_error, violated_fields};

crate::on_both_engines!(
    list_rpcs_walk_every_page_once,
    bad_page_sizes_and_tokens_name_the_field,
    a_store_refuses_products_past_its_limit,
    a_catalog_larger_than_a_message_is_served_in_pages_and_restocked,
);

fn page(page_size: i32, page_token: &str) -> Option<pb::PageRequest> {
    Some(pb::PageRequest {
        page_size,
        page_token: page_token.to_string(),
    })
}

/// Every product a caller sees, walking pages of `size`; checks each page's bound.
async fn walk_products(client: &mut StoreClient, size: i32, include_deleted: bool) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let answer = client
            .list_products(pb::ListProductsRequest {
                include_deleted,
                page: page(size, &token),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        let bound = if size == 0 { 100 } else { size as usize };
        assert!(answer.products.len() <= bound);
        ids.extend(answer.products.iter().map(|p| p.id));
        if answer.next_page_token.is_empty() {
            return ids;
        }
        token = answer.next_page_token;
    }
}

async fn list_rpcs_walk_every_page_once(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    let mut client = app.store(Some(&owner));
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            app.new_product(&owner, &format!("P{i}"), ProductCategory::Drink, 100, 1)
                .await
                .id,
        );
    }
    client
        .delete_product(pb::DeleteProductRequest { product_id: ids[3] })
        .await
        .expect("delete");
    let live: Vec<i64> = ids.iter().copied().filter(|id| *id != ids[3]).collect();
    for size in [1, 3, 7, 0] {
        assert_eq!(walk_products(&mut client, size, true).await, ids, "{size}");
    }
    let device = app.devices(store.id).await[0].id.get();
    let tablet = app.device_token(&owner, device).await;
    let mut tablet_client = app.store(Some(&tablet));
    assert_eq!(walk_products(&mut tablet_client, 2, false).await, live);

    // Tablets: 30, in pages of 7.
    let mut devices = Vec::new();
    let mut token = String::new();
    loop {
        let answer = client
            .list_devices(pb::ListDevicesRequest {
                page: page(7, &token),
            })
            .await
            .expect("devices")
            .into_inner();
        assert!(answer.devices.len() <= 7);
        devices.extend(answer.devices.into_iter().map(|d| d.id));
        if answer.next_page_token.is_empty() {
            break;
        }
        token = answer.next_page_token;
    }
    let expected: Vec<i64> = app
        .devices(store.id)
        .await
        .into_iter()
        .map(|d| d.id.get())
        .collect();
    assert_eq!(devices, expected);
    assert_eq!(devices.len(), 30);

    // History: five entries in pages of two.
    for price in 1..=4 {
        client
            .update_product(pb::UpdateProductRequest {
                product_id: ids[0],
                price: Some(price),
                base_stock: None,
            })
            .await
            .expect("update");
    }
    let mut prices = Vec::new();
    let mut token = String::new();
    loop {
        let answer = client
            .list_product_history(pb::ListProductHistoryRequest {
                product_id: ids[0],
                page: page(2, &token),
            })
            .await
            .expect("history")
            .into_inner();
        assert!(answer.entries.len() <= 2);
        prices.extend(answer.entries.iter().map(|e| e.price));
        if answer.next_page_token.is_empty() {
            break;
        }
        token = answer.next_page_token;
    }
    assert_eq!(prices, [100, 1, 2, 3, 4]);
    app.stop().await;
}

async fn bad_page_sizes_and_tokens_name_the_field(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (_, owner) = app.new_store(1, PosGrade::Bronze).await;
    let mut client = app.store(Some(&owner));
    let product = app
        .new_product(&owner, "P", ProductCategory::Drink, 1, 1)
        .await;
    // A real token of another list.
    let devices_token = client
        .list_devices(pb::ListDevicesRequest { page: page(1, "") })
        .await
        .expect("devices")
        .into_inner()
        .next_page_token;
    assert!(!devices_token.is_empty());
    for size in [501, -1, i32::MAX] {
        let status = assert_error(
            client
                .list_products(pb::ListProductsRequest {
                    page: page(size, ""),
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["page.page_size"], "{size}");
    }
    for token in ["garbage", "12", "cHJvZHVjdHM6eA", devices_token.as_str()] {
        let status = assert_error(
            client
                .list_products(pb::ListProductsRequest {
                    page: page(0, token),
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["page.page_token"], "{token}");
    }
    let status = assert_error(
        client
            .list_products(pb::ListProductsRequest {
                category: 42,
                page: page(501, "garbage"),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        violated_fields(&status),
        ["category", "page.page_size", "page.page_token"]
    );
    let status = assert_error(
        client
            .list_devices(pb::ListDevicesRequest {
                page: page(0, "garbage"),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["page.page_token"]);
    let status = assert_error(
        client
            .list_product_history(pb::ListProductHistoryRequest {
                product_id: product.id,
                page: page(1000, ""),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["page.page_size"]);
    app.stop().await;
}

async fn a_store_refuses_products_past_its_limit(engine: Engine) {
    let app = TestApp::start_with(
        engine,
        StoreArgs {
            max_products_per_store: 3,
            ..StoreArgs::default()
        },
    )
    .await;
    let (_, owner) = app.new_store(1, PosGrade::Bronze).await;
    let mut client = app.store(Some(&owner));
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            app.new_product(&owner, &format!("P{i}"), ProductCategory::Drink, 1, 1)
                .await
                .id,
        );
    }
    let request = || pb::CreateProductRequest {
        name: "One too many".into(),
        category: ProductCategory::Drink as i32,
        price: 1,
        base_stock: 1,
    };
    let status = assert_error(
        client.create_product(request()).await,
        Code::FailedPrecondition,
        "PRODUCT_LIMIT_REACHED",
    );
    assert!(status.message().contains('3'), "{status:?}");
    assert_eq!(walk_products(&mut client, 0, true).await, ids);
    client
        .delete_product(pb::DeleteProductRequest { product_id: ids[0] })
        .await
        .expect("delete");
    client.create_product(request()).await.expect("room again");
    app.stop().await;
}

const LARGE_CATALOG: i64 = 4_200;

/// Products as an older build let a store grow them, past today's limit: 255-character
/// names of 4-byte characters, 4,200 of them — more than 4 MiB in one answer.
async fn seed_large_catalog(database: &Database, store: StoreId) {
    let prefix = "😀".repeat(250);
    match database {
        Database::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO products
                   (store_id, name, category, price, stock, base_stock, created_at, updated_at)
                 SELECT $1, $2 || lpad(n::text, 5, '0'), 'MAIN_MENU', 100, 0, 5, now(), now()
                 FROM generate_series(1, $3) AS n",
            )
            .bind(store.get())
            .bind(&prefix)
            .bind(LARGE_CATALOG)
            .execute(pool)
            .await
            .expect("seed");
        }
        Database::Sqlite(pool) => {
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
                 INSERT INTO products
                   (store_id, name, category, price, stock, base_stock, created_at, updated_at)
                 SELECT ?1, ?2 || printf('%05d', i), 'MAIN_MENU', 100, 0, 5, 0, 0 FROM n",
            )
            .bind(store.get())
            .bind(&prefix)
            .bind(LARGE_CATALOG)
            .execute(pool)
            .await
            .expect("seed");
        }
    }
}

async fn a_catalog_larger_than_a_message_is_served_in_pages_and_restocked(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (store, owner) = app.new_store(1, PosGrade::Bronze).await;
    seed_large_catalog(&app.database, StoreId::from_stored(store.id)).await;
    let mut client = app.store(Some(&owner));
    let restocked = client
        .restock(pb::RestockRequest {})
        .await
        .expect("restock answers once it has committed")
        .into_inner();
    assert_eq!(restocked.restocked_count, LARGE_CATALOG);
    #[allow(deprecated)]
    let listed = restocked.products.len();
    assert_eq!(listed, 0, "the catalog is not sent back");

    let ids = walk_products(&mut client, 0, true).await;
    assert_eq!(ids.len() as i64, LARGE_CATALOG);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending, no repeats");
    let biggest = client
        .list_products(pb::ListProductsRequest {
            page: page(500, ""),
            ..Default::default()
        })
        .await
        .expect("the largest page fits a message")
        .into_inner();
    assert_eq!(biggest.products.len(), 500);
    assert!(biggest.products.iter().all(|p| p.stock == 5));

    let device = app.devices(store.id).await[0].id.get();
    let tablet = app.device_token(&owner, device).await;
    let menu = app
        .store(Some(&tablet))
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("the tablets' menu")
        .into_inner();
    assert_eq!(menu.products.len(), 100);
    assert!(!menu.next_page_token.is_empty());
    // Past the limit already: no more products.
    assert_error(
        client
            .create_product(pb::CreateProductRequest {
                name: "More".into(),
                category: ProductCategory::Drink as i32,
                price: 1,
                base_stock: 1,
            })
            .await,
        Code::FailedPrecondition,
        "PRODUCT_LIMIT_REACHED",
    );
    app.stop().await;
}
