//! `pos up --demo`: a ready-made owner, store, menu and tablets with tokens, so a
//! newcomer can call the API at once. Seeding is idempotent; tokens are re-issued on
//! every start (which retires the previous run's tablet tokens).

use pos_common::{ApiError, ApiResult, auth::TokenIssuer};
use pos_store::{
    StoreRepo,
    domain::{Bounded, Category, Grade, ProductName, SettlementDay, StoreName},
    repo::NewProduct,
};
use pos_user::{
    UserRepo,
    provider::{DevProvider, IdentityProvider},
    repo::{StoreRequest, UserRow},
};
use serde::Serialize;

/// The demo owner's e-mail; they log in through the development provider with it.
pub const DEMO_OWNER_EMAIL: &str = "demo-owner@example.com";
/// How many tablets get a token in demo.json.
pub const DEMO_DEVICE_TOKENS: usize = 4;
/// The demo owner token lives longer than a normal access token so a session of trying
/// things out is not interrupted; it is still a plain owner access token.
pub const DEMO_OWNER_TOKEN_TTL_SECS: i64 = 24 * 3600;

/// What demo.json holds.
#[derive(Debug, Serialize)]
pub struct DemoCredentials {
    pub store_id: i64,
    pub owner_token: String,
    pub device_tokens: Vec<String>,
    pub device_ids: Vec<i64>,
}

/// The menu of SPEC section 3's worked example; product 3 is deleted.
const MENU: [(&str, Category, i64, bool); 4] = [
    ("Bibimbap", Category::MainMenu, 1_000, false),
    ("Kimchi", Category::SubMenu, 500, false),
    ("Japchae", Category::SubMenu, 700, true),
    ("Sikhye", Category::Drink, 300, false),
];

/// The demo owner as a real user (signed up through the development provider), so
/// GetMe, login and refresh work for them like for anyone.
async fn demo_owner(users: &UserRepo) -> ApiResult<UserRow> {
    if let Some(user) = users.by_email(DEMO_OWNER_EMAIL).await? {
        return Ok(user);
    }
    let profile = DevProvider.profile(DEMO_OWNER_EMAIL).await?;
    let request = StoreRequest {
        store_name: "Demo Bistro".into(),
        pos_grade: pos_proto::v1::PosGrade::Bronze as i32,
        settlement_day: 1,
    };
    users.insert_pending(&profile, &request).await?;
    users
        .by_email(DEMO_OWNER_EMAIL)
        .await?
        .ok_or_else(|| ApiError::internal("demo owner vanished"))
}

pub async fn seed(
    repo: &StoreRepo,
    users: &UserRepo,
    issuer: &TokenIssuer,
) -> ApiResult<DemoCredentials> {
    let owner = demo_owner(users).await?;
    let name = StoreName::parse("Demo Bistro").map_err(ApiError::internal)?;
    let day = SettlementDay::parse(1).map_err(ApiError::internal)?;
    let (store, created) = repo
        .create_store_for_owner(owner.id, &name, Grade::Bronze, day)
        .await?;
    if owner.store_id != Some(store.id) {
        users.complete_store(owner.id, store.id).await?;
    }
    if created {
        for (name, category, price, deleted) in MENU {
            let product = repo
                .create_product(
                    store.id,
                    &NewProduct {
                        name: ProductName::parse(name).map_err(ApiError::internal)?,
                        category,
                        price: Bounded::parse(price).map_err(ApiError::internal)?,
                        base_stock: Bounded::parse(100).map_err(ApiError::internal)?,
                    },
                )
                .await?;
            if deleted {
                repo.delete_product(store.id, product.id).await?;
            }
        }
    }
    let mut device_tokens = Vec::new();
    let mut device_ids = Vec::new();
    for device in repo
        .devices_of_store(store.id)
        .await?
        .into_iter()
        .take(DEMO_DEVICE_TOKENS)
    {
        if let Some(device) = repo
            .rotate_device_credential(store.id, device.id, false)
            .await?
        {
            device_tokens.push(issuer.device(store.id, device.id, device.credential_version));
            device_ids.push(device.id);
        }
    }
    Ok(DemoCredentials {
        store_id: store.id,
        owner_token: issuer.owner_access(owner.id, Some(store.id), DEMO_OWNER_TOKEN_TTL_SECS),
        device_tokens,
        device_ids,
    })
}
