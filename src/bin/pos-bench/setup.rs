//! Setting up the stores the benchmark orders in, through the edge like real users: each
//! owner signs up with the development identity provider, adds a menu with known stock,
//! and issues credentials to the tablets the benchmark plays.

use anyhow::{Context, bail};
use pos_proto::v1::{
    self as pb, login_result, store_service_client::StoreServiceClient,
    user_service_client::UserServiceClient,
};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// Tablets a GOLD store has: the most one store can take part with.
pub const TABLETS_PER_GOLD_STORE: usize = 100;

/// The categories the menu cycles through.
const CATEGORIES: [pb::ProductCategory; 3] = [
    pb::ProductCategory::MainMenu,
    pb::ProductCategory::SubMenu,
    pb::ProductCategory::Drink,
];

/// `authorization: Bearer <token>` on every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    pub fn new(token: &str) -> anyhow::Result<Self> {
        Ok(Self(
            format!("Bearer {token}")
                .parse()
                .context("a token is a header value")?,
        ))
    }
}

impl Interceptor for Bearer {
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

pub type Authorized = InterceptedService<Channel, Bearer>;

/// A product of a store's menu as it was created.
#[derive(Debug, Clone)]
pub struct Product {
    pub id: i64,
    pub base_stock: i64,
}

/// A tablet the benchmark plays.
#[derive(Debug, Clone)]
pub struct Tablet {
    pub device_id: i64,
    pub token: String,
}

/// A store ready for ordering.
#[derive(Clone)]
pub struct Store {
    pub owner: Bearer,
    pub products: Vec<Product>,
    pub tablets: Vec<Tablet>,
}

/// What to create.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub stores: usize,
    pub tablets: usize,
    pub products_per_store: usize,
    pub stock_per_product: i64,
}

impl Plan {
    /// Tablets of store `s` (0-based): the tablets spread as evenly as they go.
    fn tablets_of(&self, s: usize) -> usize {
        self.tablets / self.stores + usize::from(s < self.tablets % self.stores)
    }
}

/// Signs the owners up and sets their stores up, through the edge at `channel`.
pub async fn stores(channel: &Channel, plan: Plan) -> anyhow::Result<Vec<Store>> {
    if plan.stores == 0 || plan.tablets < plan.stores {
        bail!("every store needs a tablet: at least as many tablets as stores");
    }
    if plan.tablets_of(0) > TABLETS_PER_GOLD_STORE {
        bail!("at most {TABLETS_PER_GOLD_STORE} tablets per store: add stores");
    }
    let mut stores = Vec::with_capacity(plan.stores);
    for s in 0..plan.stores {
        stores.push(
            store(channel, &plan, s)
                .await
                .with_context(|| format!("store {s}"))?,
        );
    }
    Ok(stores)
}

async fn store(channel: &Channel, plan: &Plan, s: usize) -> anyhow::Result<Store> {
    let mut users = UserServiceClient::new(channel.clone());
    let login = users
        .login_with_provider_token(pb::LoginWithProviderTokenRequest {
            provider_token: Some(pb::ProviderToken {
                provider: "dev".into(),
                access_token: format!("bench-owner-{s}@example.com"),
            }),
        })
        .await
        .context("owner login (is the dev provider on?)")?
        .into_inner();
    let Some(login_result::Result::SignupTicket(ticket)) = login.result.and_then(|r| r.result)
    else {
        bail!("a new owner gets a signup ticket");
    };
    let signed = users
        .sign_up(pb::SignUpRequest {
            identity: Some(pb::sign_up_request::Identity::SignupTicket(ticket.ticket)),
            store_name: format!("Bench Diner {s}"),
            pos_grade: pb::PosGrade::Gold as i32,
            settlement_day: 10,
        })
        .await
        .context("sign up")?
        .into_inner();
    anyhow::ensure!(signed.store.is_some(), "signup answers the store");
    let owner = Bearer::new(&signed.tokens.context("signup answers tokens")?.access_token)?;
    let mut client = StoreServiceClient::with_interceptor(channel.clone(), owner.clone());

    let mut products = Vec::with_capacity(plan.products_per_store);
    for p in 0..plan.products_per_store {
        let created = client
            .create_product(pb::CreateProductRequest {
                name: format!("Dish {p}"),
                category: CATEGORIES[p % CATEGORIES.len()] as i32,
                price: 1_000 + 500 * (p as i64 % 7),
                base_stock: plan.stock_per_product,
            })
            .await
            .context("create product")?
            .into_inner()
            .product
            .context("CreateProduct answers the product")?;
        products.push(Product {
            id: created.id,
            base_stock: created.stock,
        });
    }

    let devices = client
        .list_devices(pb::ListDevicesRequest {
            page: Some(pb::PageRequest {
                page_size: TABLETS_PER_GOLD_STORE as i32,
                page_token: String::new(),
            }),
        })
        .await
        .context("list devices")?
        .into_inner()
        .devices;
    let wanted = plan.tablets_of(s);
    if devices.len() < wanted {
        bail!("the store has {} tablets, {wanted} wanted", devices.len());
    }
    let mut tablets = Vec::with_capacity(wanted);
    for device in &devices[..wanted] {
        let token = client
            .issue_device_token(pb::IssueDeviceTokenRequest {
                device_id: device.id,
            })
            .await
            .context("issue device token")?
            .into_inner()
            .device_token;
        tablets.push(Tablet {
            device_id: device.id,
            token,
        });
    }
    Ok(Store {
        owner,
        products,
        tablets,
    })
}

/// A client of `service` as the owner of `store`.
pub fn as_owner<C>(channel: &Channel, store: &Store, new: impl FnOnce(Authorized) -> C) -> C {
    new(InterceptedService::new(
        channel.clone(),
        store.owner.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::Plan;

    #[test]
    fn tablets_spread_evenly_over_stores() {
        let plan = Plan {
            stores: 3,
            tablets: 8,
            products_per_store: 1,
            stock_per_product: 1,
        };
        let spread: Vec<usize> = (0..3).map(|s| plan.tablets_of(s)).collect();
        assert_eq!(spread, [3, 3, 2]);
    }
}
