//! Rows to protobuf messages.

use pos_common::time::timestamp_from_millis;
use pos_proto::v1::{self as pb, ReservationStatus};

use crate::{
    domain::{Category, Grade},
    repo::{DeviceRow, HistoryRow, ProductRow, ReservationRecord, StoreRow},
};

pub fn store(row: StoreRow) -> pb::Store {
    pb::Store {
        id: row.id,
        owner_user_id: row.owner_user_id,
        name: row.name,
        pos_grade: Grade::proto_from_db(&row.pos_grade) as i32,
        settlement_day: i32::try_from(row.settlement_day).unwrap_or_default(),
        created_at: Some(timestamp_from_millis(row.created_at)),
    }
}

pub fn device(row: DeviceRow) -> pb::Device {
    pb::Device {
        id: row.id,
        store_id: row.store_id,
        label: row.label,
        credential_version: row.credential_version,
        revoked: row.revoked_at.is_some(),
        created_at: Some(timestamp_from_millis(row.created_at)),
    }
}

pub fn product(row: ProductRow) -> pb::Product {
    pb::Product {
        id: row.id,
        store_id: row.store_id,
        name: row.name,
        category: Category::proto_from_db(&row.category) as i32,
        price: row.price,
        stock: row.stock,
        base_stock: row.base_stock,
        deleted: row.deleted_at.is_some(),
        created_at: Some(timestamp_from_millis(row.created_at)),
        updated_at: Some(timestamp_from_millis(row.updated_at)),
    }
}

pub fn history(row: HistoryRow) -> pb::ProductHistoryEntry {
    pb::ProductHistoryEntry {
        product_id: row.product_id,
        price: row.price,
        base_stock: row.base_stock,
        at: Some(timestamp_from_millis(row.at)),
    }
}

pub fn reservation(record: ReservationRecord) -> pb::Reservation {
    let status = match record.status.as_str() {
        "RESERVED" => ReservationStatus::Reserved,
        "CONFIRMED" => ReservationStatus::Confirmed,
        "RELEASED" => ReservationStatus::Released,
        _ => ReservationStatus::Unspecified,
    };
    pb::Reservation {
        order_id: record.order_id,
        store_id: record.store_id,
        status: status as i32,
        lines: record
            .lines
            .into_iter()
            .map(|line| pb::ReservedLine {
                product_id: line.product_id,
                product_name: line.product_name,
                category: Category::proto_from_db(&line.category) as i32,
                unit_price: line.unit_price,
                count: line.count,
            })
            .collect(),
        created_at: Some(timestamp_from_millis(record.created_at)),
    }
}
