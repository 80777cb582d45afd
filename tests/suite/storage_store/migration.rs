//! The move of PostgreSQL's tables to native types keeps existing rows.

use pos_common::{
    clock,
    domain::{Grade, ProductId, UserId},
    storage::Database,
};
use pos_store::storage::{Category, ReservationStatus};

use super::order;
use crate::support::{Engine, TestDb};

/// PostgreSQL databases made before the native types keep every row through the
/// migration that brings them: instants, enums, and a tombstone's missing store.
#[tokio::test]
async fn postgres_rows_of_the_first_schema_survive_the_move_to_native_types() {
    let (test_db, database) = TestDb::create(Engine::Postgres).await;
    let Database::Postgres(pool) = &database else {
        panic!("a PostgreSQL database");
    };
    let mut first = (pos_store::MIGRATIONS.postgres)();
    first.dangerous_set_table_name(pos_store::MIGRATIONS.table);
    first.run_to(1, pool).await.expect("the first migration");
    for statement in [
        "INSERT INTO stores (owner_user_id, name, pos_grade, settlement_day, created_at)
         VALUES (7, 'Old Cafe', 'SILVER', 15, 1733011200123)",
        "INSERT INTO devices (store_id, label, credential_version, revoked_at, created_at)
         VALUES (1, 'table 1', 3, 1733011300000, 1733011200123)",
        "INSERT INTO products (store_id, name, category, price, stock, base_stock, deleted_at,
                               created_at, updated_at)
         VALUES (1, 'Kimchi', 'SUB_MENU', 500, 8, 10, NULL, 1733011200123, 1733011200456)",
        "INSERT INTO product_history (product_id, price, base_stock, at)
         VALUES (1, 500, 10, 1733011200123)",
        "INSERT INTO stock_reservations (order_id, store_id, status, created_at, updated_at)
         VALUES ('held', 1, 'RESERVED', 1733011200123, 1733011200123),
                ('tombstone', 0, 'RELEASED', 1733011200123, 1733011200123)",
        "INSERT INTO stock_reservation_lines (order_id, product_id, product_name, category,
                                              unit_price, count)
         VALUES ('held', 1, 'Kimchi', 'SUB_MENU', 500, 2)",
    ] {
        sqlx::query(statement)
            .execute(pool)
            .await
            .expect("an old row");
    }
    database
        .migrate(&pos_store::MIGRATIONS)
        .await
        .expect("the rest");

    let storage = pos_store::open_storage(&database, clock::system());
    let at = |millis| chrono::DateTime::from_timestamp_millis(millis).expect("instant");
    let store = storage
        .store_of_owner(UserId::from_stored(7))
        .await
        .expect("read")
        .expect("store");
    assert_eq!(
        (
            store.name.as_str(),
            store.grade,
            store.settlement_day.get(),
            store.created_at
        ),
        ("Old Cafe", Grade::Silver, 15, at(1_733_011_200_123))
    );
    let device = storage
        .devices_of_store(store.id)
        .await
        .expect("devices")
        .remove(0);
    assert_eq!(
        (device.credential_version, device.revoked_at),
        (3, Some(at(1_733_011_300_000)))
    );
    let product = storage
        .product(store.id, ProductId::from_stored(1))
        .await
        .expect("read")
        .expect("product");
    assert_eq!(
        (product.category, product.stock, product.updated_at),
        (Category::SubMenu, 8, at(1_733_011_200_456))
    );
    let held = storage
        .reservation(&order("held"))
        .await
        .expect("read")
        .expect("held");
    assert_eq!(
        (held.store_id, held.status, held.lines[0].category),
        (
            Some(store.id),
            ReservationStatus::Reserved,
            Category::SubMenu
        )
    );
    let tombstone = storage
        .reservation(&order("tombstone"))
        .await
        .expect("read")
        .expect("tombstone");
    assert_eq!(
        (tombstone.store_id, tombstone.status),
        (None, ReservationStatus::Released)
    );
    // And the held stock still goes back on release.
    storage.release(&order("held")).await.expect("release");
    assert_eq!(
        storage
            .product(store.id, ProductId::from_stored(1))
            .await
            .expect("read")
            .expect("product")
            .stock,
        10
    );
    database.close().await;
    test_db.drop_database().await;
}
