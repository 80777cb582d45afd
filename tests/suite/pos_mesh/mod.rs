//! The Kubernetes shape on one machine: `pos serve store`, `pos serve user`, `pos serve
//! trade` and `pos serve edge` as separate processes over one database and Redis. Here an
//! owner goes from signup to a tablet's menu through the edge; [`trade_crash`] kills the
//! trade role in the middle of a burst of orders.

mod trade_crash;

use crate::support::{
    Engine, TestDb, bearer,
    process::{PosProcess, migrate, pos},
};
use pos_common::domain::UserId;
use pos_proto::v1::{
    self as pb, store_service_client::StoreServiceClient, user_service_client::UserServiceClient,
};
use tonic::transport::Channel;

crate::on_both_engines!(three_roles_serve_a_signup_through_the_edge);

/// Starts `pos serve <name>` on `listen` (port 0: any free port) with `envs`.
async fn role(name: &str, listen: &str, envs: &[(&str, String)]) -> PosProcess {
    let mut command = pos();
    command.args([
        "serve",
        name,
        "--listen",
        listen,
        "--shutdown-grace-secs",
        "2",
    ]);
    for (key, value) in envs {
        command.env(key, value);
    }
    PosProcess::spawn(name, command).await
}

/// What every role of one mesh shares: JSON logs, and Redis under a key prefix of its
/// own (separate processes share logins, limits and bill events through it).
fn shared_settings() -> Vec<(&'static str, String)> {
    vec![
        ("POS_LOG_FORMAT", "json".to_string()),
        ("POS_REDIS_URL", crate::support::redis_url()),
        ("POS_REDIS_KEY_PREFIX", crate::support::redis_prefix()),
    ]
}

/// `shared` followed by `extra`.
fn settings(
    shared: &[(&'static str, String)],
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    shared.iter().chain(extra).cloned().collect()
}

/// A channel to the edge at `addr`.
async fn connect(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

async fn three_roles_serve_a_signup_through_the_edge(engine: Engine) {
    let (test_db, db) = TestDb::create(engine).await;
    let url = test_db.url();
    migrate(&url, "all").await;

    let files = tempfile::tempdir().expect("dir");
    let (_, key_file, jwks_file) = crate::support::key_files(files.path());
    // A key retired from signing: tokens it signed stay valid while it is published.
    let retired_dir = tempfile::tempdir().expect("dir");
    let (retired, _, retired_jwks) = crate::support::key_files(retired_dir.path());
    // Service tokens get a key of their own, so the edge holds no signing key.
    let service_dir = tempfile::tempdir().expect("dir");
    let (_, service_key, service_jwks) = crate::support::key_files(service_dir.path());
    let shared = shared_settings();
    let with = |extra: &[(&'static str, String)]| settings(&shared, extra);

    let store = role(
        "store",
        "127.0.0.1:0",
        &with(&[
            ("POS_DATABASE_URL", url.clone()),
            ("POS_JWKS_FILE", jwks_file.display().to_string()),
            ("POS_SIGNING_KEY_FILE", key_file.display().to_string()),
            ("POS_SERVICE_JWKS_FILE", service_jwks.display().to_string()),
        ]),
    )
    .await;
    let user = role(
        "user",
        "127.0.0.1:0",
        &with(&[
            ("POS_DATABASE_URL", url.clone()),
            ("POS_STORE_ADDR", format!("http://{}", store.addr)),
            ("POS_DEV_PROVIDER", "true".into()),
            ("POS_PREVIOUS_JWKS_FILE", retired_jwks.display().to_string()),
            ("POS_SIGNING_KEY_FILE", key_file.display().to_string()),
            ("POS_SERVICE_KEY_FILE", service_key.display().to_string()),
        ]),
    )
    .await;
    let edge = role(
        "edge",
        "127.0.0.1:0",
        &with(&[
            ("POS_STORE_ADDR", format!("http://{}", store.addr)),
            ("POS_USER_ADDR", format!("http://{}", user.addr)),
            // No signing key on the internet-facing role: only the service key.
            ("POS_SERVICE_KEY_FILE", service_key.display().to_string()),
        ]),
    )
    .await;

    let channel = connect(&edge.addr).await;
    let mut users = UserServiceClient::new(channel.clone());
    let signed = crate::support::dev_signup(
        channel.clone(),
        "mesh@example.com",
        "Mesh Diner",
        pb::PosGrade::Gold,
    )
    .await;
    let tokens = signed.tokens.expect("tokens");
    let mut owner =
        StoreServiceClient::with_interceptor(channel.clone(), bearer(&tokens.access_token));
    let devices = owner
        .list_devices(pb::ListDevicesRequest::default())
        .await
        .expect("devices")
        .into_inner()
        .devices;
    assert_eq!(devices.len(), 100);
    owner
        .create_product(pb::CreateProductRequest {
            name: "Naengmyeon".into(),
            category: pb::ProductCategory::MainMenu as i32,
            price: 9000,
            base_stock: 20,
        })
        .await
        .expect("product");
    let tablet = owner
        .issue_device_token(pb::IssueDeviceTokenRequest {
            device_id: devices[3].id,
        })
        .await
        .expect("tablet token")
        .into_inner()
        .device_token;
    let menu = StoreServiceClient::with_interceptor(channel.clone(), bearer(&tablet))
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("tablet menu")
        .into_inner()
        .products;
    assert_eq!(menu.len(), 1);
    owner
        .revoke_device(pb::RevokeDeviceRequest {
            device_id: devices[3].id,
        })
        .await
        .expect("revoke");
    let status = StoreServiceClient::with_interceptor(channel.clone(), bearer(&tablet))
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect_err("revoked");
    assert_eq!(crate::support::reason(&status), "TOKEN_REVOKED");
    users
        .refresh_tokens(pb::RefreshTokensRequest {
            refresh_token: tokens.refresh_token,
        })
        .await
        .expect("refresh through the edge");

    let published = users
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner()
        .keys;
    assert_eq!(published.len(), 2, "current and retired keys are published");
    let user_id = signed.user.expect("user").id;
    let old_token = retired.owner_access(UserId::from_stored(user_id), None, 600);
    let me = UserServiceClient::with_interceptor(channel.clone(), bearer(&old_token))
        .get_me(pb::GetMeRequest {})
        .await
        .expect("a token of the retired key still works through the edge")
        .into_inner();
    assert_eq!(me.user.expect("user").id, user_id);

    edge.stop_with_sigterm().await;
    user.stop_with_sigterm().await;
    store.stop_with_sigterm().await;
    db.close().await;
    test_db.drop_database().await;
}
