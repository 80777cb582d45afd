//! The real `pos` binary in its Kubernetes roles, on SQLite and PostgreSQL: `pos migrate`
//! is repeatable, `pos serve store` verifies tokens from a JWKS file, serves the public
//! and internal store APIs, signs tablet credentials, and stops on SIGTERM.

use std::sync::Arc;

use crate::support::{
    Engine, TestDb, bearer,
    process::{PosProcess, output, pos},
};
use pos_common::{
    auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, SigningKey, TokenIssuer},
    domain::{StoreId, UserId},
};
use pos_proto::v1::{
    self as pb, PosGrade, ProductCategory,
    store_internal_service_client::StoreInternalServiceClient,
    store_service_client::StoreServiceClient,
};
use tonic::transport::Channel;

crate::on_both_engines!(migrate_then_serve_store_role);

async fn migrate_then_serve_store_role(engine: Engine) {
    let (test_db, db) = TestDb::create(engine).await;
    let url = test_db.url();
    for _ in 0..2 {
        let mut migrate = pos();
        migrate.args(["migrate", "--database-url", &url]);
        let (status, stdout, stderr) = output(migrate).await;
        assert!(status.success(), "{stderr}");
        assert!(stdout.contains("migrations applied"));
    }

    let files = tempfile::tempdir().expect("temp dir");
    let (issuer, key_file, jwks_file) = crate::support::key_files(files.path());

    // Without the keys that verify tokens it refuses to start, and says why.
    let mut refused = pos();
    refused
        .args([
            "serve",
            "store",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &url,
        ])
        .env_remove("POS_JWKS_FILE")
        .env_remove("POS_USER_ADDR");
    let (status, _, stderr) = output(refused).await;
    assert!(!status.success());
    assert!(stderr.contains("POS_JWKS_FILE"), "{stderr}");
    // Flags of other roles are refused: each role takes only its own.
    let mut foreign = pos();
    foreign.args([
        "serve",
        "store",
        "--database-url",
        &url,
        "--redis-url",
        "redis://x",
        "--rate-limit-per-minute",
        "5",
    ]);
    let (status, _, stderr) = output(foreign).await;
    assert!(!status.success());
    assert!(stderr.contains("--rate-limit-per-minute"), "{stderr}");

    let mut command = pos();
    command
        .args([
            "serve",
            "store",
            "--listen",
            "127.0.0.1:0",
            "--shutdown-grace-secs",
            "2",
        ])
        .env("POS_DATABASE_URL", &url)
        .env("POS_JWKS_FILE", &jwks_file)
        .env("POS_SIGNING_KEY_FILE", &key_file)
        .env("POS_LOG_FORMAT", "json");
    let served = PosProcess::spawn("serve store", command).await;
    let channel = Channel::from_shared(format!("http://{}", served.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");

    let store = StoreInternalServiceClient::with_interceptor(
        channel.clone(),
        bearer(&issuer.service("user")),
    )
    .create_store_for_owner(pb::CreateStoreForOwnerRequest {
        owner_user_id: 42,
        store_name: "Served".into(),
        pos_grade: PosGrade::Silver as i32,
        settlement_day: 15,
    })
    .await
    .expect("internal create store")
    .into_inner()
    .store
    .expect("store");
    let owner = issuer.owner_access(
        UserId::from_stored(42),
        Some(StoreId::from_stored(store.id)),
        600,
    );
    let mut as_owner = StoreServiceClient::with_interceptor(channel.clone(), bearer(&owner));
    as_owner
        .create_product(pb::CreateProductRequest {
            name: "Soup".into(),
            category: ProductCategory::MainMenu as i32,
            price: 8000,
            base_stock: 3,
        })
        .await
        .expect("create product");
    let devices = as_owner
        .list_devices(pb::ListDevicesRequest::default())
        .await
        .expect("devices")
        .into_inner()
        .devices;
    assert_eq!(devices.len(), 50);
    let tablet = as_owner
        .issue_device_token(pb::IssueDeviceTokenRequest {
            device_id: devices[0].id,
        })
        .await
        .expect("issue")
        .into_inner()
        .device_token;
    let menu = StoreServiceClient::with_interceptor(channel.clone(), bearer(&tablet))
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("tablet menu")
        .into_inner()
        .products;
    assert_eq!(menu.len(), 1);

    // A token signed by any other key is refused.
    let stranger = TokenIssuer::new(
        Arc::new(SigningKey::generate()),
        DEFAULT_ISSUER,
        DEFAULT_AUDIENCE,
    );
    let status = StoreServiceClient::with_interceptor(
        channel,
        bearer(&stranger.owner_access(
            UserId::from_stored(42),
            Some(StoreId::from_stored(store.id)),
            600,
        )),
    )
    .list_products(pb::ListProductsRequest::default())
    .await
    .expect_err("foreign key");
    assert_eq!(crate::support::reason(&status), "TOKEN_INVALID");

    served.stop_with_sigterm().await;
    db.close().await;
    test_db.drop_database().await;
}
