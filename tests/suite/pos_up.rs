//! The real `pos` binary: `pos up --demo` serves on one port, its demo.json credentials
//! work, SIGTERM shuts it down cleanly, and a restart keeps the data.

use std::path::Path;

use crate::support::{
    Bearer, bearer,
    process::{PosProcess, pos},
};
use pos_proto::v1::{
    self as pb, store_service_client::StoreServiceClient, user_service_client::UserServiceClient,
};
use tonic::transport::Channel;

async fn start_up(data_dir: &Path) -> PosProcess {
    let mut command = pos();
    command
        .args([
            "up",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--shutdown-grace-secs",
            "2",
        ])
        .arg("--data-dir")
        .arg(data_dir);
    PosProcess::spawn("up", command).await
}

async fn client(
    addr: &str,
    token: &str,
) -> StoreServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    StoreServiceClient::with_interceptor(channel, bearer(token))
}

async fn menu(addr: &str, token: &str, include_deleted: bool) -> Vec<String> {
    client(addr, token)
        .await
        .list_products(pb::ListProductsRequest {
            category: 0,
            include_deleted,
            page: None,
        })
        .await
        .expect("list products")
        .into_inner()
        .products
        .into_iter()
        .map(|p| p.name)
        .collect()
}

fn read_demo(data_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir.join("demo.json")).expect("demo.json");
    serde_json::from_str(&text).expect("demo.json is JSON")
}

#[tokio::test]
async fn pos_up_demo_serves_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let up = start_up(dir.path()).await;
    let demo = read_demo(dir.path());
    let owner = demo["owner_token"]
        .as_str()
        .expect("owner token")
        .to_string();
    let tablets = demo["device_tokens"].as_array().expect("device tokens");
    assert!(!tablets.is_empty());
    let tablet = tablets[0].as_str().expect("token").to_string();
    let store_id = demo["store_id"].as_i64().expect("store id");

    assert_eq!(
        menu(&up.addr, &tablet, false).await,
        ["Bibimbap", "Kimchi", "Sikhye"]
    );
    assert_eq!(
        menu(&up.addr, &owner, true).await,
        ["Bibimbap", "Kimchi", "Japchae", "Sikhye"]
    );
    let devices = client(&up.addr, &owner)
        .await
        .list_devices(pb::ListDevicesRequest::default())
        .await
        .expect("devices")
        .into_inner()
        .devices;
    assert_eq!(devices.len(), 30);
    up.stop_with_sigterm().await;

    // Restarting keeps the store and menu; the new demo.json tokens work and the old
    // tablet token was rotated out.
    let up = start_up(dir.path()).await;
    let demo = read_demo(dir.path());
    assert_eq!(demo["store_id"].as_i64(), Some(store_id));
    let new_tablet = demo["device_tokens"][0]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(menu(&up.addr, &new_tablet, false).await.len(), 3);
    let status = client(&up.addr, &tablet)
        .await
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect_err("rotated token");
    assert_eq!(crate::support::reason(&status), "TOKEN_REVOKED");
    up.stop_with_sigterm().await;
}

/// A logout outlives the process: the deny-list is a file in the data directory. The
/// signing key beside it is a PKCS#8 key OpenSSL reads.
#[tokio::test]
async fn pos_up_remembers_revocations_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let up = start_up(dir.path()).await;
    let channel = Channel::from_shared(format!("http://{}", up.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let tokens = crate::support::dev_signup(
        channel.clone(),
        "restart@example.com",
        "Restart",
        pb::PosGrade::Bronze,
    )
    .await
    .tokens
    .expect("tokens");
    let mut users = UserServiceClient::new(channel.clone());
    let rotated = users
        .refresh_tokens(pb::RefreshTokensRequest {
            refresh_token: tokens.refresh_token.clone(),
        })
        .await
        .expect("rotate")
        .into_inner()
        .tokens
        .expect("tokens");
    UserServiceClient::with_interceptor(channel, bearer(&rotated.access_token))
        .logout(pb::LogoutRequest {
            refresh_token: rotated.refresh_token.clone(),
        })
        .await
        .expect("logout");
    let refused = |addr: String, token: String| async move {
        client(&addr, &token)
            .await
            .get_my_store(pb::GetMyStoreRequest {})
            .await
            .err()
            .map(|status| crate::support::reason(&status))
    };
    for token in [&tokens.access_token, &rotated.access_token] {
        assert_eq!(
            refused(up.addr.clone(), token.clone()).await.as_deref(),
            Some("TOKEN_REVOKED")
        );
    }
    up.stop_with_sigterm().await;

    let up = start_up(dir.path()).await;
    for token in [&tokens.access_token, &rotated.access_token] {
        assert_eq!(
            refused(up.addr.clone(), token.clone()).await.as_deref(),
            Some("TOKEN_REVOKED"),
            "still revoked after the restart"
        );
    }
    let owner = read_demo(dir.path())["owner_token"]
        .as_str()
        .expect("owner token")
        .to_string();
    client(&up.addr, &owner)
        .await
        .get_my_store(pb::GetMyStoreRequest {})
        .await
        .expect("other tokens still work");
    up.stop_with_sigterm().await;

    let key = dir.path().join("signing-key.pem");
    let openssl = std::process::Command::new("openssl")
        .args(["pkey", "-noout", "-text", "-in"])
        .arg(&key)
        .output()
        .expect("openssl (cargo xtask test installs it)");
    assert!(
        openssl.status.success(),
        "OpenSSL cannot read {}: {}",
        key.display(),
        String::from_utf8_lossy(&openssl.stderr)
    );
    assert!(String::from_utf8_lossy(&openssl.stdout).contains("ED25519"));
}
