//! Owner A with a product and tablets, owner B, a logged-out login, and what refused
//! calls must leave unchanged.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use pos_common::domain::StoreId;
use pos_proto::v1::{
    self as pb, store_service_client::StoreServiceClient, user_service_client::UserServiceClient,
};
use pos_store::storage::ProductFilter;
use pos_user::storage::Email;

use crate::support::{bearer, stack::TestStack};

/// Owner A (with a product and tablets), owner B, and a login that was logged out.
pub struct World {
    pub owner_a: pb::TokenPair,
    pub owner_b: pb::TokenPair,
    pub logged_out: pb::TokenPair,
    pub store_a: pb::Store,
    pub product_a: pb::Product,
    pub device_a: i64,
    pub tablet_a: String,
    pub revoked_tablet_a: String,
}

async fn sign_up(stack: &TestStack, email: &str) -> (pb::TokenPair, pb::Store) {
    let signed = crate::support::dev_signup(
        stack.channel(),
        email,
        &format!("Shop {}", &email[..1]),
        pb::PosGrade::Bronze,
    )
    .await;
    (signed.tokens.expect("tokens"), signed.store.expect("store"))
}

pub async fn world(stack: &TestStack) -> World {
    let (owner_a, store_a) = sign_up(stack, "a@example.com").await;
    let (owner_b, _) = sign_up(stack, "b@example.com").await;
    let (logged_out, _) = sign_up(stack, "c@example.com").await;
    UserServiceClient::with_interceptor(stack.channel(), bearer(&logged_out.access_token))
        .logout(pb::LogoutRequest {
            refresh_token: logged_out.refresh_token.clone(),
        })
        .await
        .expect("logout");
    let mut store =
        StoreServiceClient::with_interceptor(stack.channel(), bearer(&owner_a.access_token));
    let product_a = store
        .create_product(pb::CreateProductRequest {
            name: "Bibimbap".into(),
            category: pb::ProductCategory::MainMenu as i32,
            price: 1000,
            base_stock: 10,
        })
        .await
        .expect("create")
        .into_inner()
        .product
        .expect("product");
    let device_a = store
        .list_devices(pb::ListDevicesRequest::default())
        .await
        .expect("devices")
        .into_inner()
        .devices[0]
        .id;
    let issue = || {
        let mut store = store.clone();
        async move {
            store
                .issue_device_token(pb::IssueDeviceTokenRequest {
                    device_id: device_a,
                })
                .await
                .expect("issue")
                .into_inner()
                .device_token
        }
    };
    let revoked_tablet_a = issue().await;
    let tablet_a = issue().await;
    World {
        owner_a,
        owner_b,
        logged_out,
        store_a,
        product_a,
        device_a,
        tablet_a,
        revoked_tablet_a,
    }
}

pub const INTRUDER: &str = "intruder@example.com";

/// What refused calls must leave as it was: owner A's products and tablets, the users,
/// and that nobody signed up the intruder.
pub async fn snapshot(stack: &TestStack, world: &World) -> String {
    let store = StoreId::from_stored(world.store_a.id);
    let products = stack
        .store_storage
        .list_products(
            store,
            ProductFilter {
                category: None,
                include_deleted: true,
            },
            pos_store::storage::Page::first(10_000),
        )
        .await
        .expect("products");
    let devices = stack
        .store_storage
        .devices_of_store(store)
        .await
        .expect("devices");
    let mut users = Vec::new();
    for email in ["a@example.com", "b@example.com", INTRUDER] {
        let user = stack
            .user_storage
            .by_email(&Email::parse(email).expect("email"))
            .await
            .expect("user");
        users.push(user.map(|u| (u.id, u.store_id)));
    }
    let bills = pos_trade::open_storage(&stack.database, pos_common::clock::system())
        .open_trades(store)
        .await
        .expect("bills");
    format!(
        "{:?}|{:?}|{users:?}|{bills:?}",
        products
            .iter()
            .map(|p| (p.id, p.price, p.stock, p.base_stock, p.deleted_at))
            .collect::<Vec<_>>(),
        devices
            .iter()
            .map(|d| (d.id, d.credential_version, d.revoked_at))
            .collect::<Vec<_>>(),
    )
}

pub fn tampered(token: &str) -> String {
    let (head, signature) = token.rsplit_once('.').expect("jwt");
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("signature");
    bytes[0] ^= 0xff;
    format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn unsigned(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload");
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{payload}.")
}
