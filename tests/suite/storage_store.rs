//! The contract of `StoreStorage`: the same cases against the PostgreSQL and the SQLite
//! implementation, straight through the trait.

use std::sync::Arc;

use pos_common::{
    clock,
    domain::{DeviceId, Grade, ProductId, SettlementDay, StoreId, StoreName, StoreRequest, UserId},
    error::Violations,
    storage::{Database, StorageError},
};
use pos_store::storage::{
    Amount, Category, Confirmed, NewProduct, OrderId, OrderLines, ProductChange, ProductFilter,
    ProductName, Released, ReservationStatus, Reserved, Shortage, Store, StoreStorage,
};
use sqlx::Executor;

use crate::support::{Engine, TestDb};

crate::on_both_engines!(
    a_store_is_created_once_per_owner_with_its_grades_tablets,
    products_change_price_and_base_stock_only_and_keep_history,
    listing_filters_by_category_and_deletion_within_one_store,
    tablet_credentials_rotate_and_revoke,
    stores_are_listed_by_settlement_day_in_pages,
    reserving_takes_stock_and_keeps_the_product_as_ordered,
    a_retry_answers_the_same_reservation_and_another_request_is_refused,
    failed_reservations_change_nothing_and_say_why,
    confirm_and_release_are_final_and_idempotent,
    a_release_that_overtakes_its_reservation_blocks_it,
    restock_leaves_out_what_unconfirmed_orders_hold,
    fifty_concurrent_reservations_never_oversell,
    restocks_racing_reservations_and_releases_never_deadlock,
    unknown_stored_values_are_errors_not_defaults,
);

struct Fixture {
    test_db: TestDb,
    database: Database,
    storage: Arc<dyn StoreStorage>,
}

impl Fixture {
    async fn new(engine: Engine) -> Self {
        let (test_db, database) = TestDb::create(engine).await;
        database
            .migrate(&pos_store::MIGRATIONS)
            .await
            .expect("migrate");
        let storage = pos_store::open_storage(&database, clock::system());
        Self {
            test_db,
            database,
            storage,
        }
    }

    async fn store(&self, owner: i64) -> Store {
        self.storage
            .create_store_for_owner(
                UserId::from_stored(owner),
                &request("Cafe", Grade::Bronze, 10),
            )
            .await
            .expect("create store")
            .0
    }

    async fn product(
        &self,
        store: StoreId,
        name: &str,
        category: Category,
        price: i64,
        stock: i64,
    ) -> ProductId {
        self.storage
            .create_product(
                store,
                &NewProduct {
                    name: ProductName::parse(name).expect("name"),
                    category,
                    price: Amount::parse(price).expect("price"),
                    base_stock: Amount::parse(stock).expect("stock"),
                },
            )
            .await
            .expect("create product")
            .id
    }

    async fn stock(&self, store: StoreId, product: ProductId) -> i64 {
        self.storage
            .product(store, product)
            .await
            .expect("read")
            .expect("product")
            .stock
    }

    async fn finish(self) {
        self.database.close().await;
        self.test_db.drop_database().await;
    }
}

fn request(name: &str, grade: Grade, day: i32) -> StoreRequest {
    StoreRequest {
        name: StoreName::parse(name).expect("name"),
        grade,
        settlement_day: SettlementDay::parse(day).expect("day"),
    }
}

fn order(id: &str) -> OrderId {
    OrderId::parse(id).expect("order id")
}

fn lines(raw: &[(ProductId, i64)]) -> OrderLines {
    let pairs: Vec<(i64, i64)> = raw.iter().map(|(p, c)| (p.get(), *c)).collect();
    let mut violations = Violations::new();
    OrderLines::parse(&pairs, &mut violations).expect("valid lines")
}

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
        .product_history(store, id)
        .await
        .expect("history")
        .expect("product")
        .into_iter()
        .map(|h| (h.price.get(), h.base_stock.get()))
        .collect();
    assert_eq!(history, [(300, 20), (350, 20), (350, 50)]);
    assert_eq!(
        f.storage.product_history(other, id).await.expect("history"),
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
            .product_history(store, id)
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
        let storage = f.storage.clone();
        async move {
            storage
                .list_products(
                    store,
                    ProductFilter {
                        category,
                        include_deleted,
                    },
                )
                .await
                .expect("list")
        }
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

async fn reserving_takes_stock_and_keeps_the_product_as_ordered(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let kimchi = f.product(store, "Kimchi", Category::SubMenu, 500, 10).await;
    let sikhye = f.product(store, "Sikhye", Category::Drink, 300, 10).await;
    // Lines of one product are merged; lines come back in product id order.
    let Reserved::Taken(taken) = f
        .storage
        .reserve(
            &order("o-1"),
            store,
            &lines(&[(sikhye, 1), (kimchi, 2), (kimchi, 3)]),
        )
        .await
        .expect("reserve")
    else {
        panic!("stock is there");
    };
    assert_eq!(taken.status, ReservationStatus::Reserved);
    assert_eq!(taken.store_id, Some(store));
    let snapshot: Vec<(ProductId, &str, Category, i64, i64)> = taken
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
        .collect();
    assert_eq!(
        snapshot,
        [
            (kimchi, "Kimchi", Category::SubMenu, 500, 5),
            (sikhye, "Sikhye", Category::Drink, 300, 1)
        ]
    );
    assert_eq!(
        (f.stock(store, kimchi).await, f.stock(store, sikhye).await),
        (5, 9)
    );
    // A later price does not change what was ordered.
    f.storage
        .update_product(
            store,
            kimchi,
            &ProductChange::new(Some(Amount::parse(900).expect("p")), None).expect("c"),
        )
        .await
        .expect("reprice");
    let stored = f
        .storage
        .reservation(&order("o-1"))
        .await
        .expect("read")
        .expect("reservation");
    assert_eq!(stored.lines, taken.lines);
    assert_eq!(stored.status, ReservationStatus::Reserved);
    assert_eq!(
        f.storage.reservation(&order("none")).await.expect("read"),
        None
    );
    f.finish().await;
}

async fn a_retry_answers_the_same_reservation_and_another_request_is_refused(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let other = f.store(2).await.id;
    let p = f.product(store, "P", Category::MainMenu, 100, 10).await;
    let q = f.product(store, "Q", Category::MainMenu, 100, 10).await;
    let Reserved::Taken(first) = f
        .storage
        .reserve(&order("o"), store, &lines(&[(p, 2)]))
        .await
        .expect("reserve")
    else {
        panic!("taken");
    };
    // The same request again: the same reservation, nothing more taken.
    assert_eq!(
        f.storage
            .reserve(&order("o"), store, &lines(&[(p, 1), (p, 1)]))
            .await
            .expect("retry"),
        Reserved::Existing(first)
    );
    assert_eq!(f.stock(store, p).await, 8);
    // The same order id for something else is refused, and changes nothing.
    for (at, wanted) in [
        (store, lines(&[(p, 5)])),
        (store, lines(&[(p, 2), (q, 1)])),
        (store, lines(&[(q, 2)])),
        (other, lines(&[(p, 2)])),
    ] {
        assert_eq!(
            f.storage
                .reserve(&order("o"), at, &wanted)
                .await
                .expect("replay"),
            Reserved::KeyReused
        );
    }
    assert_eq!((f.stock(store, p).await, f.stock(store, q).await), (8, 10));
    f.finish().await;
}

async fn failed_reservations_change_nothing_and_say_why(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let plenty = f
        .product(store, "Plenty", Category::MainMenu, 100, 10)
        .await;
    let scarce = f.product(store, "Scarce", Category::Drink, 100, 2).await;
    let gone = f.product(store, "Gone", Category::Drink, 100, 9).await;
    f.storage.delete_product(store, gone).await.expect("delete");
    let other = f.store(2).await.id;
    let foreign = f.product(other, "Foreign", Category::Drink, 1, 5).await;

    assert_eq!(
        f.storage
            .reserve(&order("greedy"), store, &lines(&[(plenty, 5), (scarce, 3)]))
            .await
            .expect("reserve"),
        Reserved::OutOfStock(vec![Shortage {
            product_id: scarce,
            available: 2
        }])
    );
    for missing in [gone, foreign, ProductId::from_stored(999_999)] {
        assert_eq!(
            f.storage
                .reserve(&order("lost"), store, &lines(&[(plenty, 1), (missing, 1)]))
                .await
                .expect("reserve"),
            Reserved::ProductNotFound(missing)
        );
    }
    assert_eq!(
        (f.stock(store, plenty).await, f.stock(store, scarce).await),
        (10, 2)
    );
    assert_eq!(f.stock(other, foreign).await, 5);
    // A failed reservation leaves no record: the order id is still free.
    assert_eq!(
        f.storage.reservation(&order("greedy")).await.expect("read"),
        None
    );
    assert!(matches!(
        f.storage
            .reserve(&order("greedy"), store, &lines(&[(scarce, 2)]))
            .await
            .expect("reserve"),
        Reserved::Taken(_)
    ));
    f.finish().await;
}

async fn confirm_and_release_are_final_and_idempotent(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let a = f.product(store, "A", Category::MainMenu, 100, 10).await;
    let b = f.product(store, "B", Category::Drink, 100, 10).await;
    f.storage
        .reserve(&order("to-release"), store, &lines(&[(a, 4), (b, 1)]))
        .await
        .expect("reserve");
    for _ in 0..2 {
        let Released::Released(record) = f
            .storage
            .release(&order("to-release"))
            .await
            .expect("release")
        else {
            panic!("released");
        };
        assert_eq!(record.status, ReservationStatus::Released);
        assert_eq!((f.stock(store, a).await, f.stock(store, b).await), (10, 10));
    }
    assert!(matches!(
        f.storage
            .confirm(&order("to-release"))
            .await
            .expect("confirm"),
        Confirmed::AlreadyReleased(_)
    ));

    f.storage
        .reserve(&order("to-confirm"), store, &lines(&[(a, 3)]))
        .await
        .expect("reserve");
    for _ in 0..2 {
        let Confirmed::Confirmed(record) = f
            .storage
            .confirm(&order("to-confirm"))
            .await
            .expect("confirm")
        else {
            panic!("confirmed");
        };
        assert_eq!(record.status, ReservationStatus::Confirmed);
    }
    assert!(matches!(
        f.storage
            .release(&order("to-confirm"))
            .await
            .expect("release"),
        Released::AlreadyConfirmed(_)
    ));
    assert_eq!(
        f.stock(store, a).await,
        7,
        "a confirmed order's stock is never given back"
    );
    assert_eq!(
        f.storage.confirm(&order("never")).await.expect("confirm"),
        Confirmed::NotFound
    );
    f.finish().await;
}

async fn a_release_that_overtakes_its_reservation_blocks_it(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let p = f.product(store, "P", Category::MainMenu, 100, 10).await;
    let Released::Released(tombstone) = f.storage.release(&order("late")).await.expect("release")
    else {
        panic!("a tombstone");
    };
    assert_eq!(
        (tombstone.status, tombstone.store_id),
        (ReservationStatus::Released, None)
    );
    let Reserved::Existing(late) = f
        .storage
        .reserve(&order("late"), store, &lines(&[(p, 3)]))
        .await
        .expect("reserve")
    else {
        panic!("the tombstone answers");
    };
    assert_eq!(
        (late.status, late.lines.len()),
        (ReservationStatus::Released, 0)
    );
    assert_eq!(
        f.stock(store, p).await,
        10,
        "a cancelled order takes no stock"
    );
    f.finish().await;
}

async fn restock_leaves_out_what_unconfirmed_orders_hold(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let a = f.product(store, "A", Category::MainMenu, 100, 10).await;
    let b = f.product(store, "B", Category::Drink, 100, 5).await;
    let gone = f.product(store, "Gone", Category::Drink, 100, 5).await;
    f.storage
        .reserve(&order("sold"), store, &lines(&[(a, 7), (b, 5)]))
        .await
        .expect("reserve");
    f.storage.confirm(&order("sold")).await.expect("confirm");
    f.storage
        .reserve(&order("in-flight"), store, &lines(&[(a, 2)]))
        .await
        .expect("reserve");
    f.storage.delete_product(store, gone).await.expect("delete");
    let restocked: Vec<(ProductId, i64)> = f
        .storage
        .restock(store)
        .await
        .expect("restock")
        .into_iter()
        .map(|p| (p.id, p.stock))
        .collect();
    assert_eq!(
        restocked,
        [(a, 8), (b, 5)],
        "deleted products are not restocked"
    );
    f.storage
        .release(&order("in-flight"))
        .await
        .expect("release");
    assert_eq!(
        f.stock(store, a).await,
        10,
        "then the shelf holds exactly the base stock"
    );
    f.finish().await;
}

async fn fifty_concurrent_reservations_never_oversell(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let p = f
        .product(store, "Hot item", Category::MainMenu, 100, 10)
        .await;
    let attempts = (0..50).map(|i| {
        let storage = f.storage.clone();
        tokio::spawn(async move {
            storage
                .reserve(&order(&format!("rush-{i}")), store, &lines(&[(p, 1)]))
                .await
        })
    });
    let (mut taken, mut short) = (0, 0);
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.expect("task") {
            Ok(Reserved::Taken(_)) => taken += 1,
            Ok(Reserved::OutOfStock(_)) => short += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((taken, short), (10, 40));
    assert_eq!(f.stock(store, p).await, 0);
    f.finish().await;
}

async fn restocks_racing_reservations_and_releases_never_deadlock(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let mut products = Vec::new();
    for name in ["P1", "P2", "P3"] {
        products.push(f.product(store, name, Category::MainMenu, 100, 1000).await);
    }
    // Touch rows in reverse so PostgreSQL's heap order no longer matches id order.
    for id in products.iter().rev() {
        f.storage
            .update_product(
                store,
                *id,
                &ProductChange::new(Some(Amount::parse(101).expect("p")), None).expect("c"),
            )
            .await
            .expect("update");
    }
    let mut tasks = Vec::new();
    for i in 0..30 {
        let storage = f.storage.clone();
        let wanted = lines(&products.iter().map(|id| (*id, 1)).collect::<Vec<_>>());
        tasks.push(tokio::spawn(async move {
            let id = order(&format!("race-{i}"));
            storage.reserve(&id, store, &wanted).await?;
            if i % 2 == 0 {
                storage.release(&id).await.map(|_| ())
            } else {
                storage.confirm(&id).await.map(|_| ())
            }
        }));
    }
    for _ in 0..6 {
        let storage = f.storage.clone();
        tasks.push(tokio::spawn(async move {
            storage.restock(store).await.map(|_| ())
        }));
    }
    for task in tasks {
        task.await
            .expect("task")
            .expect("no step fails, deadlocks included");
    }
    // Whatever the interleaving, nothing reserved is left, so the shelf is full or less
    // exactly what the 15 confirmed orders took after the last restock.
    for id in products {
        let stock = f.stock(store, id).await;
        assert!((985..=1000).contains(&stock), "stock {stock}");
    }
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
            .list_products(store, ProductFilter::default())
            .await
            .is_err()
    );
    f.finish().await;
}

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
