//! Stores, tablets and menus.

use pos_common::{
    domain::{DeviceId, Grade, SettlementDay, UserId},
    storage::{Database, StorageError},
};
use pos_store::storage::{Amount, Category, Page, ProductChange, ProductFilter};
use sqlx::Executor;

use super::{Fixture, request};
use crate::support::Engine;

crate::on_both_engines!(
    a_store_is_created_once_per_owner_with_its_grades_tablets,
    products_change_price_and_base_stock_only_and_keep_history,
    listing_filters_by_category_and_deletion_within_one_store,
    tablet_credentials_rotate_and_revoke,
    stores_are_listed_by_settlement_day_in_pages,
    unknown_stored_values_are_errors_not_defaults,
);

async fn a_store_is_created_once_per_owner_with_its_grades_tablets(engine: Engine) {
    let f = Fixture::new(engine).await;
    for (owner, grade, tablets) in [
        (1, Grade::Bronze, 30),
        (2, Grade::Silver, 50),
        (3, Grade::Gold, 100),
    ] {
        let (store, created) = f
            .storage
            .create_store_for_owner(UserId::from_stored(owner), &request("Cafe", grade, 25))
            .await
            .expect("create");
        assert!(created);
        assert_eq!((store.grade, store.settlement_day.get()), (grade, 25));
        let devices = f.storage.devices_of_store(store.id).await.expect("devices");
        assert_eq!(devices.len(), tablets);
        assert_eq!(devices[0].label, "table 1");
        assert_eq!(devices[tablets - 1].label, format!("table {tablets}"));
        assert!(
            devices
                .iter()
                .all(|d| d.credential_version == 1 && d.revoked_at.is_none())
        );
    }
    // The same owner again, even concurrently: one store, created once.
    let owner = UserId::from_stored(4);
    let attempts = (0..8).map(|_| {
        let storage = f.storage.clone();
        tokio::spawn(async move {
            storage
                .create_store_for_owner(owner, &request("Twin", Grade::Bronze, 1))
                .await
                .expect("create")
        })
    });
    let mut stores = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        stores.push(attempt.await.expect("task"));
    }
    assert_eq!(stores.iter().filter(|(_, created)| *created).count(), 1);
    assert!(stores.windows(2).all(|w| w[0].0 == w[1].0));
    let again = f
        .storage
        .create_store_for_owner(owner, &request("Other", Grade::Gold, 5))
        .await
        .expect("retry");
    assert_eq!(
        (again.0.name.as_str(), again.0.grade, again.1),
        ("Twin", Grade::Bronze, false)
    );
    assert_eq!(
        f.storage
            .devices_of_store(again.0.id)
            .await
            .expect("devices")
            .len(),
        30
    );
    assert_eq!(
        f.storage.store_of_owner(owner).await.expect("read"),
        Some(again.0)
    );
    assert_eq!(
        f.storage
            .store_of_owner(UserId::from_stored(99))
            .await
            .expect("read"),
        None
    );
    f.finish().await;
}

async fn products_change_price_and_base_stock_only_and_keep_history(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let other = f.store(2).await.id;
    let id = f.product(store, "Sikhye", Category::Drink, 300, 20).await;
    let change = |price: Option<i64>, base: Option<i64>| {
        ProductChange::new(
            price.map(|p| Amount::parse(p).expect("price")),
            base.map(|b| Amount::parse(b).expect("base")),
        )
        .expect("change")
    };
    let updated = f
        .storage
        .update_product(store, id, &change(Some(350), None))
        .await
        .expect("update")
        .expect("product");
    assert_eq!(
        (updated.price.get(), updated.base_stock.get(), updated.stock),
        (350, 20, 20)
    );
    let updated = f
        .storage
        .update_product(store, id, &change(None, Some(50)))
        .await
        .expect("update")
        .expect("product");
    assert_eq!(
        (updated.price.get(), updated.base_stock.get(), updated.stock),
        (350, 50, 20)
    );
    // Another store's product is not there to change.
    assert_eq!(
        f.storage
            .update_product(other, id, &change(Some(1), None))
            .await
            .expect("update"),
        None
    );
    assert_eq!(
        f.storage.delete_product(other, id).await.expect("delete"),
        None
    );
    let history: Vec<(i64, i64)> = f
        .storage
        .product_history(store, id, Page::first(100))
        .await
        .expect("history")
        .expect("product")
        .into_iter()
        .map(|h| (h.price.get(), h.base_stock.get()))
        .collect();
    assert_eq!(history, [(300, 20), (350, 20), (350, 50)]);
    assert_eq!(
        f.storage
            .product_history(other, id, Page::first(100))
            .await
            .expect("history"),
        None
    );

    let deleted = f
        .storage
        .delete_product(store, id)
        .await
        .expect("delete")
        .expect("product");
    assert!(deleted.deleted_at.is_some());
    assert_eq!(
        f.storage.delete_product(store, id).await.expect("delete"),
        None
    );
    assert_eq!(
        f.storage
            .update_product(store, id, &change(Some(1), None))
            .await
            .expect("update"),
        None,
        "a deleted product cannot change"
    );
    assert_eq!(
        f.storage
            .product_history(store, id, Page::first(100))
            .await
            .expect("history")
            .map(|h| h.len()),
        Some(3),
        "its history stays for the books"
    );
    f.finish().await;
}

async fn listing_filters_by_category_and_deletion_within_one_store(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let other = f.store(2).await.id;
    let main = f
        .product(store, "Bibimbap", Category::MainMenu, 1000, 1)
        .await;
    let drink = f.product(store, "Sikhye", Category::Drink, 300, 1).await;
    let gone = f.product(store, "Japchae", Category::SubMenu, 700, 1).await;
    f.product(other, "Elsewhere", Category::Drink, 1, 1).await;
    f.storage.delete_product(store, gone).await.expect("delete");
    let ids = |products: Vec<pos_store::storage::Product>| {
        products.into_iter().map(|p| p.id).collect::<Vec<_>>()
    };
    let list = |category, include_deleted| {
        f.all_products(
            store,
            ProductFilter {
                category,
                include_deleted,
            },
        )
    };
    assert_eq!(ids(list(None, false).await), [main, drink]);
    assert_eq!(ids(list(None, true).await), [main, drink, gone]);
    assert_eq!(ids(list(Some(Category::Drink), false).await), [drink]);
    assert_eq!(ids(list(Some(Category::SubMenu), false).await), []);
    assert_eq!(ids(list(Some(Category::SubMenu), true).await), [gone]);
    f.finish().await;
}

async fn tablet_credentials_rotate_and_revoke(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let other = f.store(2).await.id;
    let device = f.storage.devices_of_store(store).await.expect("devices")[0].id;
    let issued = f
        .storage
        .rotate_device_credential(store, device, false)
        .await
        .expect("rotate")
        .expect("device");
    assert_eq!((issued.credential_version, issued.revoked_at), (2, None));
    let revoked = f
        .storage
        .rotate_device_credential(store, device, true)
        .await
        .expect("revoke")
        .expect("device");
    assert_eq!(revoked.credential_version, 3);
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        f.storage.device(store, device).await.expect("read"),
        Some(revoked)
    );
    // Another store's tablet is neither found nor touched.
    assert_eq!(f.storage.device(other, device).await.expect("read"), None);
    assert_eq!(
        f.storage
            .rotate_device_credential(other, device, true)
            .await
            .expect("rotate"),
        None
    );
    assert_eq!(
        f.storage
            .device(store, DeviceId::from_stored(999_999))
            .await
            .expect("read"),
        None
    );
    f.finish().await;
}

async fn stores_are_listed_by_settlement_day_in_pages(engine: Engine) {
    let f = Fixture::new(engine).await;
    for owner in 1..=5 {
        let day = if owner % 2 == 0 { 5 } else { 25 };
        f.storage
            .create_store_for_owner(
                UserId::from_stored(owner),
                &request("S", Grade::Bronze, day),
            )
            .await
            .expect("create");
    }
    let day = SettlementDay::parse(25).expect("day");
    let first = f
        .storage
        .stores_by_settlement_day(day, 0, 2)
        .await
        .expect("page");
    let after = first.last().expect("a first page").id.get();
    let second = f
        .storage
        .stores_by_settlement_day(day, after, 2)
        .await
        .expect("page");
    let owners: Vec<i64> = first.iter().chain(&second).map(|s| s.owner.get()).collect();
    assert_eq!(owners, [1, 3, 5]);
    f.finish().await;
}

async fn unknown_stored_values_are_errors_not_defaults(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let p = f.product(store, "P", Category::MainMenu, 100, 10).await;
    // A value this build does not know, as a newer release could have written it.
    match &f.database {
        Database::Postgres(pool) => {
            pool.execute("ALTER TYPE store_product_category ADD VALUE 'DESSERT'")
                .await
                .expect("new enum value");
            sqlx::query("UPDATE products SET category = 'DESSERT' WHERE id = $1")
                .bind(p.get())
                .execute(pool)
                .await
                .expect("update");
        }
        Database::Sqlite(pool) => {
            let mut conn = pool.acquire().await.expect("connection");
            conn.execute("PRAGMA ignore_check_constraints = ON")
                .await
                .expect("pragma");
            sqlx::query("UPDATE products SET category = 'DESSERT' WHERE id = ?1")
                .bind(p.get())
                .execute(&mut *conn)
                .await
                .expect("update");
            conn.execute("PRAGMA ignore_check_constraints = OFF")
                .await
                .expect("pragma");
        }
    }
    let err = f
        .storage
        .product(store, p)
        .await
        .expect_err("an unknown category");
    assert!(
        matches!(&err, StorageError::UnknownValue { value, .. } if value == "DESSERT"),
        "{err:?}"
    );
    assert!(
        f.storage
            .list_products(store, ProductFilter::default(), Page::first(100))
            .await
            .is_err()
    );
    f.finish().await;
}
