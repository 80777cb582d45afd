//! The store role alone over real gRPC on loopback, on SQLite and PostgreSQL: validation,
//! object-level authorization, tablets, and the internal API — who may call which RPC,
//! and what each answer looks like on the wire.

mod catalog;
mod internal;
mod names;
mod pages;

use pos_proto::v1 as pb;

use crate::support::app::TestApp;

pub fn line(product_id: i64, count: i64) -> pb::StockRequestLine {
    pb::StockRequestLine { product_id, count }
}

pub async fn product_names(app: &TestApp, token: &str, include_deleted: bool) -> Vec<String> {
    app.store(Some(token))
        .list_products(pb::ListProductsRequest {
            category: 0,
            include_deleted,
            page: None,
        })
        .await
        .expect("list")
        .into_inner()
        .products
        .into_iter()
        .map(|p| p.name)
        .collect()
}

pub async fn reserve(
    app: &TestApp,
    order_id: &str,
    store_id: i64,
    lines: Vec<pb::StockRequestLine>,
) -> Result<pb::Reservation, tonic::Status> {
    app.trade()
        .reserve_stock(pb::ReserveStockRequest {
            order_id: order_id.to_string(),
            store_id,
            lines,
        })
        .await
        .map(|r| r.into_inner().reservation.expect("reservation"))
}
