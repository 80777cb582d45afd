//! The store role alone over real gRPC on loopback, on SQLite and PostgreSQL: validation,
//! object-level authorization, tablets, and the internal API — who may call which RPC,
//! and what each answer looks like on the wire.

mod catalog;
mod internal;
mod names;
mod pages;
mod reserve_stocks;

use pos_proto::v1 as pb;

use crate::support::app::TestApp;

/// (product, name, category, unit price, count) of each reserved line.
pub fn reserved_lines(reservation: &pb::Reservation) -> Vec<(i64, &str, i32, i64, i64)> {
    reservation
        .lines
        .iter()
        .map(|l| {
            (
                l.product_id,
                l.product_name.as_str(),
                l.category,
                l.unit_price,
                l.count,
            )
        })
        .collect()
}

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
            tablet: None,
            order_id: order_id.to_string(),
            store_id,
            lines,
        })
        .await
        .map(|r| r.into_inner().reservation.expect("reservation"))
}
