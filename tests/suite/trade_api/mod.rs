//! The trade role over real gRPC, through the edge of the whole `pos up` stack: tablets
//! order (stock moving in the store role), owners read and pay bills, and the internal
//! API answers only the store.

mod access;
mod consistency;
mod faults;
mod ordering;
mod paying;
mod racing;
mod reconciling;
mod watching;

use std::collections::HashMap;

use pos::startup::{self, Running};
use pos_proto::v1::{
    self as pb, PosGrade, ProductCategory, store_service_client::StoreServiceClient,
    trade_service_client::TradeServiceClient,
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::support::{Bearer, bearer, dev_signup, stack::TestStack};

pub type TradeClient = TradeServiceClient<InterceptedService<Channel, Bearer>>;
pub type StoreClient = StoreServiceClient<InterceptedService<Channel, Bearer>>;

/// An owner's store with products and tablet tokens, reached through the edge.
pub struct Shop {
    pub owner: String,
    pub store_id: i64,
    /// Product ids, in the order they were asked for.
    pub products: Vec<i64>,
    /// (device id, tablet token) of the first tablets.
    pub tablets: Vec<(i64, String)>,
}

impl Shop {
    /// Signs `email` up and adds `products` (name, price, stock) and tokens for
    /// `tablets` tablets.
    pub async fn open(
        stack: &TestStack,
        email: &str,
        products: &[(&str, i64, i64)],
        tablets: usize,
    ) -> Self {
        Self::open_through(stack.channel(), email, products, tablets).await
    }

    /// [`Shop::open`] through any edge: `channel` reaches it.
    pub async fn open_through(
        channel: Channel,
        email: &str,
        products: &[(&str, i64, i64)],
        tablets: usize,
    ) -> Self {
        let signed_up = dev_signup(channel.clone(), email, "Shop", PosGrade::Bronze).await;
        let owner = signed_up.tokens.expect("tokens").access_token;
        let store_id = signed_up.store.expect("store").id;
        let mut store = StoreServiceClient::with_interceptor(channel, bearer(&owner));
        let mut ids = Vec::new();
        for &(name, price, stock) in products {
            let created = store
                .create_product(pb::CreateProductRequest {
                    name: name.into(),
                    category: ProductCategory::MainMenu as i32,
                    price,
                    base_stock: stock,
                })
                .await
                .expect("product")
                .into_inner()
                .product
                .expect("product");
            ids.push(created.id);
        }
        let devices = store
            .list_devices(pb::ListDevicesRequest::default())
            .await
            .expect("devices")
            .into_inner()
            .devices;
        let mut tokens = Vec::new();
        for device in devices.iter().take(tablets) {
            let token = store
                .issue_device_token(pb::IssueDeviceTokenRequest {
                    device_id: device.id,
                })
                .await
                .expect("tablet token")
                .into_inner()
                .device_token;
            tokens.push((device.id, token));
        }
        Self {
            owner,
            store_id,
            products: ids,
            tablets: tokens,
        }
    }

    pub fn tablet(&self, stack: &TestStack, index: usize) -> TradeClient {
        trade_client(stack, &self.tablets[index].1)
    }

    pub fn device(&self, index: usize) -> i64 {
        self.tablets[index].0
    }

    pub fn as_owner(&self, stack: &TestStack) -> TradeClient {
        trade_client(stack, &self.owner)
    }

    /// The product's stock as the owner sees it.
    pub async fn stock(&self, stack: &TestStack, product_id: i64) -> i64 {
        self.stock_through(stack.channel(), product_id).await
    }

    /// [`Shop::stock`] through any edge: `channel` reaches it.
    pub async fn stock_through(&self, channel: Channel, product_id: i64) -> i64 {
        let products = StoreServiceClient::with_interceptor(channel, bearer(&self.owner))
            .list_products(pb::ListProductsRequest {
                include_deleted: true,
                ..Default::default()
            })
            .await
            .expect("products")
            .into_inner()
            .products;
        products
            .iter()
            .find(|p| p.id == product_id)
            .map(|p| p.stock)
            .expect("the product")
    }
}

pub fn trade_client(stack: &TestStack, token: &str) -> TradeClient {
    TradeServiceClient::with_interceptor(stack.channel(), bearer(token))
}

pub fn store_client(stack: &TestStack, token: &str) -> StoreClient {
    StoreServiceClient::with_interceptor(stack.channel(), bearer(token))
}

/// A PlaceOrder request of (product id, count) lines.
pub fn order(lines: &[(i64, i64)], key: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        lines: lines
            .iter()
            .map(|&(product_id, count)| pb::OrderLineInput { product_id, count })
            .collect(),
        idempotency_key: key.into(),
    }
}

/// The tablet's open bill, if any.
pub async fn current(client: &mut TradeClient) -> Option<pb::Trade> {
    client
        .get_current_trade(pb::GetCurrentTradeRequest {})
        .await
        .expect("current trade")
        .into_inner()
        .trade
}

/// Another trade replica beside the stack's, sharing its database, store role and event
/// bus (Redis on PostgreSQL), on a port of its own.
pub async fn trade_replica(stack: &TestStack) -> Running {
    let store = stack
        .stack
        .peers
        .get("store")
        .expect("the store role")
        .clone();
    let context = stack
        .context("trade", HashMap::from([("store", store)]))
        .await;
    let role = pos::registry::role("trade").expect("the trade role");
    let served = role
        .build(&pos::up::matches(&[]).expect("flags"), context)
        .await
        .expect("build the trade role");
    startup::serve("127.0.0.1:0".parse().expect("addr"), served)
        .await
        .expect("serve the trade role")
}
