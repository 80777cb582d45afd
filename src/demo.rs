//! `pos up --demo`: a ready-made owner, store, menu and tablets with tokens, and the
//! worked example's two paid bills (so settlements have something to show), so a
//! newcomer can call the API at once. The demo owner signs up through the public API like
//! anyone (the development provider), so seeding is the same calls a client makes, and
//! is idempotent: a second start logs in, finds the menu, and re-issues the tablet tokens
//! (which retires the previous run's).

use std::net::SocketAddr;

use anyhow::{Context, bail};
use pos_common::{
    auth::TokenIssuer,
    domain::{StoreId, UserId},
};
use pos_proto::v1::{
    self as pb, login_result, store_service_client::StoreServiceClient,
    trade_service_client::TradeServiceClient, user_service_client::UserServiceClient,
};
use serde::Serialize;
use tonic::{
    metadata::MetadataValue, service::interceptor::InterceptedService, transport::Channel,
};

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

/// The worked example's menu: Bibimbap, Kimchi, Japchae (deleted) and Sikhye.
const MENU: [(&str, pb::ProductCategory, i64, bool); 4] = [
    ("Bibimbap", pb::ProductCategory::MainMenu, 1_000, false),
    ("Kimchi", pb::ProductCategory::SubMenu, 500, false),
    ("Japchae", pb::ProductCategory::SubMenu, 700, true),
    ("Sikhye", pb::ProductCategory::Drink, 300, false),
];

type Authorized = InterceptedService<Channel, Bearer>;

#[derive(Clone)]
struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

fn bearer(token: &str) -> anyhow::Result<Bearer> {
    Ok(Bearer(format!("Bearer {token}").parse()?))
}

/// The demo owner's access token: signed up on the first start, logged in after.
async fn owner_access(users: &mut UserServiceClient<Channel>) -> anyhow::Result<String> {
    let login = users
        .login_with_provider_token(pb::LoginWithProviderTokenRequest {
            provider_token: Some(pb::ProviderToken {
                provider: "dev".into(),
                access_token: DEMO_OWNER_EMAIL.into(),
            }),
        })
        .await
        .context("demo owner login")?
        .into_inner();
    let tokens = match login.result.and_then(|r| r.result) {
        Some(login_result::Result::Tokens(tokens)) => tokens,
        Some(login_result::Result::SignupTicket(ticket)) => users
            .sign_up(pb::SignUpRequest {
                identity: Some(pb::sign_up_request::Identity::SignupTicket(ticket.ticket)),
                store_name: "Demo Bistro".into(),
                pos_grade: pb::PosGrade::Bronze as i32,
                settlement_day: 1,
            })
            .await
            .context("demo owner signup")?
            .into_inner()
            .tokens
            .context("signup answered no tokens")?,
        None => bail!("login answered neither tokens nor a signup ticket"),
    };
    Ok(tokens.access_token)
}

async fn seed_menu(store: &mut StoreServiceClient<Authorized>) -> anyhow::Result<()> {
    // One product, deleted or not, says the menu was seeded.
    let existing = store
        .list_products(pb::ListProductsRequest {
            category: 0,
            include_deleted: true,
            page: Some(pb::PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
        })
        .await?
        .into_inner()
        .products;
    if !existing.is_empty() {
        return Ok(());
    }
    for (name, category, price, deleted) in MENU {
        let product = store
            .create_product(pb::CreateProductRequest {
                name: name.into(),
                category: category as i32,
                price,
                base_stock: 100,
            })
            .await?
            .into_inner()
            .product
            .context("created no product")?;
        if deleted {
            store
                .delete_product(pb::DeleteProductRequest {
                    product_id: product.id,
                })
                .await?;
        }
    }
    Ok(())
}

/// One order's (product id, count) lines.
type OrderLines<'a> = &'a [(i64, i64)];

/// The worked example's two paid bills, on the last two demo tablets (the first ones are
/// left free for the README's ordering walk-through): 4 Kimchi + 2 Sikhye, then 2 Kimchi,
/// paid 3,600 in cash; 6 Kimchi + 3 Sikhye paid 3,900 by card H. Every call carries a
/// fixed idempotency key, so a restart answers the first start's orders and payments
/// instead of adding more.
async fn seed_paid_bills(
    channel: &Channel,
    owner: &str,
    menu: &[pb::Product],
    tablets: &[(i64, String)],
) -> anyhow::Result<()> {
    let id_of = |name: &str| {
        menu.iter()
            .find(|product| product.name == name)
            .map(|product| product.id)
            .with_context(|| format!("the demo menu has no {name}"))
    };
    let (kimchi, sikhye) = (id_of("Kimchi")?, id_of("Sikhye")?);
    let [.., (cash_table, cash_tablet), (card_table, card_tablet)] = tablets else {
        bail!("the demo needs two tablets for its paid bills");
    };
    let bills: [(&str, &[OrderLines]); 2] = [
        (cash_tablet, &[&[(kimchi, 4), (sikhye, 2)], &[(kimchi, 2)]]),
        (card_tablet, &[&[(kimchi, 6), (sikhye, 3)]]),
    ];
    for (bill, (tablet, orders)) in bills.into_iter().enumerate() {
        let mut trade = TradeServiceClient::with_interceptor(channel.clone(), bearer(tablet)?);
        for (n, lines) in orders.iter().enumerate() {
            trade
                .place_order(pb::PlaceOrderRequest {
                    lines: lines
                        .iter()
                        .map(|&(product_id, count)| pb::OrderLineInput { product_id, count })
                        .collect(),
                    idempotency_key: format!("demo-bill{bill}-order{n}"),
                })
                .await
                .context("demo order")?;
        }
    }
    let mut counter = TradeServiceClient::with_interceptor(channel.clone(), bearer(owner)?);
    counter
        .pay_cash(pb::PayCashRequest {
            device_id: *cash_table,
            expected_amount: None,
            idempotency_key: "demo-pay-cash".into(),
        })
        .await
        .context("demo cash payment")?;
    counter
        .pay_card(pb::PayCardRequest {
            device_id: *card_table,
            card_company: pb::CardCompany::H as i32,
            expected_amount: None,
            idempotency_key: "demo-pay-card".into(),
        })
        .await
        .context("demo card payment")?;
    Ok(())
}

/// Seeds the demo through the running stack at `addr`.
pub async fn seed(addr: SocketAddr, issuer: &TokenIssuer) -> anyhow::Result<DemoCredentials> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut users = UserServiceClient::new(channel.clone());
    let access = owner_access(&mut users).await?;
    let me = UserServiceClient::with_interceptor(channel.clone(), bearer(&access)?)
        .get_me(pb::GetMeRequest {})
        .await?
        .into_inner();
    let owner = UserId::parse(me.user.context("GetMe answered no user")?.id)?;
    let store_id = StoreId::parse(me.store_id)?;
    let mut store = StoreServiceClient::with_interceptor(channel.clone(), bearer(&access)?);
    seed_menu(&mut store).await?;
    let devices = store
        .list_devices(pb::ListDevicesRequest {
            // The first tablets, by id: all that get a token.
            page: Some(pb::PageRequest {
                page_size: DEMO_DEVICE_TOKENS as i32,
                page_token: String::new(),
            }),
        })
        .await?
        .into_inner()
        .devices;
    let mut device_tokens = Vec::new();
    let mut device_ids = Vec::new();
    for device in devices.into_iter().take(DEMO_DEVICE_TOKENS) {
        let issued = store
            .issue_device_token(pb::IssueDeviceTokenRequest {
                device_id: device.id,
            })
            .await?
            .into_inner();
        device_tokens.push(issued.device_token);
        device_ids.push(device.id);
    }
    let menu = store
        .list_products(pb::ListProductsRequest::default())
        .await?
        .into_inner()
        .products;
    let tablets: Vec<(i64, String)> = device_ids
        .iter()
        .copied()
        .zip(device_tokens.iter().cloned())
        .collect();
    seed_paid_bills(&channel, &access, &menu, &tablets).await?;
    Ok(DemoCredentials {
        store_id: store_id.get(),
        owner_token: issuer.owner_access(owner, Some(store_id), DEMO_OWNER_TOKEN_TTL_SECS),
        device_tokens,
        device_ids,
    })
}
