//! Domain records to protobuf messages.

use pos_common::time::to_timestamp;
use pos_proto::v1::{self as pb, ReservationStatus as PbStatus};
use pos_store_storage::{Device, HistoryEntry, Product, Reservation, ReservationStatus, Store};

pub fn store(store: Store) -> pb::Store {
    pb::Store {
        id: store.id.get(),
        owner_user_id: store.owner.get(),
        name: store.name.as_str().to_string(),
        pos_grade: store.grade.to_proto() as i32,
        settlement_day: store.settlement_day.get(),
        created_at: Some(to_timestamp(store.created_at)),
    }
}

pub fn device(device: Device) -> pb::Device {
    pb::Device {
        id: device.id.get(),
        store_id: device.store_id.get(),
        label: device.label,
        credential_version: device.credential_version,
        revoked: device.revoked_at.is_some(),
        created_at: Some(to_timestamp(device.created_at)),
    }
}

pub fn product(product: Product) -> pb::Product {
    pb::Product {
        id: product.id.get(),
        store_id: product.store_id.get(),
        name: product.name.into_string(),
        category: product.category.to_proto() as i32,
        price: product.price.get(),
        stock: product.stock,
        base_stock: product.base_stock.get(),
        deleted: product.deleted_at.is_some(),
        created_at: Some(to_timestamp(product.created_at)),
        updated_at: Some(to_timestamp(product.updated_at)),
    }
}

pub fn history(entry: HistoryEntry) -> pb::ProductHistoryEntry {
    pb::ProductHistoryEntry {
        product_id: entry.product_id.get(),
        price: entry.price.get(),
        base_stock: entry.base_stock.get(),
        at: Some(to_timestamp(entry.at)),
    }
}

pub fn reservation(record: Reservation) -> pb::Reservation {
    let status = match record.status {
        ReservationStatus::Reserved => PbStatus::Reserved,
        ReservationStatus::Confirmed => PbStatus::Confirmed,
        ReservationStatus::Released => PbStatus::Released,
    };
    pb::Reservation {
        order_id: record.order_id.as_str().to_string(),
        // A tombstone belongs to no store.
        store_id: record.store_id.map_or(0, |id| id.get()),
        status: status as i32,
        lines: record
            .lines
            .into_iter()
            .map(|line| pb::ReservedLine {
                product_id: line.product_id.get(),
                product_name: line.product_name,
                category: line.category.to_proto() as i32,
                unit_price: line.unit_price,
                count: line.count,
            })
            .collect(),
        created_at: Some(to_timestamp(record.created_at)),
    }
}
