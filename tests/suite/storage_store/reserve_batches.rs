//! Reserving many orders in one call: each order answered as reserving the orders one
//! after the other would answer it, all or nothing on its own, whichever path the
//! engine takes (PostgreSQL reserves a batch's plain orders together and the rest one by
//! one); never an oversell or a failure when batches race single reservations and
//! releases. And the tablets read by id for a batch's credential checks.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use pos_common::domain::{DeviceId, ProductId, StoreId};
use pos_store::storage::{
    Category, Released, Reservation, ReservationStatus, Reserved, Shortage, StockRequest,
};

use super::{Fixture, lines, order, snapshot};
use crate::support::Engine;

crate::on_both_engines!(
    a_mixed_batch_answers_each_order_as_reserving_them_in_turn_would,
    plain_orders_are_taken_together_beside_retries_duplicates_and_tombstones,
    orders_that_fit_alone_but_not_together_are_answered_in_turn,
    racing_batches_reservations_and_releases_never_oversell,
    tablets_are_read_by_id_whatever_their_store,
);

fn ask(id: &str, store: StoreId, wanted: &[(ProductId, i64)]) -> StockRequest {
    StockRequest {
        order: order(id),
        store,
        lines: lines(wanted),
    }
}

#[track_caller]
fn taken(answer: &Reserved) -> &Reservation {
    match answer {
        Reserved::Taken(reservation) => {
            assert_eq!(reservation.status, ReservationStatus::Reserved);
            reservation
        }
        other => panic!("expected Taken, got {other:?}"),
    }
}

/// A store with a menu, and order ids used before the batch: `earlier` reserved (one
/// kimchi), `given-up` released before any reservation (a tombstone), `cancelled`
/// reserved and released (two sikhye, given back).
struct Menu {
    store: StoreId,
    other: StoreId,
    kimchi: ProductId,
    sikhye: ProductId,
    scarce: ProductId,
    gone: ProductId,
    foreign: ProductId,
    earlier: Reservation,
    tombstone: Reservation,
    cancelled: Reservation,
}

impl Menu {
    async fn open(f: &Fixture) -> Self {
        let store = f.store(1).await.id;
        let other = f.store(2).await.id;
        let kimchi = f.product(store, "Kimchi", Category::SubMenu, 500, 10).await;
        let sikhye = f.product(store, "Sikhye", Category::Drink, 300, 10).await;
        let scarce = f.product(store, "Scarce", Category::MainMenu, 100, 2).await;
        let gone = f.product(store, "Gone", Category::Drink, 100, 9).await;
        f.storage.delete_product(store, gone).await.expect("delete");
        let foreign = f.product(other, "Foreign", Category::Drink, 1, 5).await;
        let Reserved::Taken(earlier) = f
            .storage
            .reserve(&order("earlier"), store, &lines(&[(kimchi, 1)]))
            .await
            .expect("reserve")
        else {
            panic!("stock is there");
        };
        let Released::Released(tombstone) = f
            .storage
            .release(&order("given-up"))
            .await
            .expect("release")
        else {
            panic!("a tombstone");
        };
        f.storage
            .reserve(&order("cancelled"), store, &lines(&[(sikhye, 2)]))
            .await
            .expect("reserve");
        let Released::Released(cancelled) = f
            .storage
            .release(&order("cancelled"))
            .await
            .expect("release")
        else {
            panic!("released");
        };
        assert_eq!(
            (f.stock(store, kimchi).await, f.stock(store, sikhye).await),
            (9, 10)
        );
        Self {
            store,
            other,
            kimchi,
            sikhye,
            scarce,
            gone,
            foreign,
            earlier,
            tombstone,
            cancelled,
        }
    }
}

async fn a_mixed_batch_answers_each_order_as_reserving_them_in_turn_would(engine: Engine) {
    let f = Fixture::new(engine).await;
    let m = Menu::open(&f).await;
    let (store, kimchi, sikhye, scarce) = (m.store, m.kimchi, m.sikhye, m.scarce);
    let unknown = ProductId::from_stored(999_999);
    let batch = [
        ask("b-1", store, &[(sikhye, 1), (kimchi, 2)]),
        ask("earlier", store, &[(kimchi, 1)]),
        ask("b-2", store, &[(sikhye, 3)]),
        // The same order again within the batch (its lines merged the same way).
        ask("b-1", store, &[(kimchi, 1), (sikhye, 1), (kimchi, 1)]),
        // The same order id for other lines.
        ask("b-2", store, &[(kimchi, 1)]),
        ask("given-up", store, &[(kimchi, 4)]),
        ask("cancelled", store, &[(sikhye, 2)]),
        ask("short", store, &[(kimchi, 1), (scarce, 3)]),
        ask("unknown", store, &[(kimchi, 1), (unknown, 1)]),
        ask("deleted", store, &[(m.gone, 1)]),
        ask("foreign", store, &[(m.foreign, 1)]),
        ask("b-3", store, &[(scarce, 2)]),
        ask("earlier", m.other, &[(kimchi, 1)]),
    ];
    let answers: Vec<Reserved> = f
        .storage
        .reserve_many(&batch)
        .await
        .into_iter()
        .map(|answer| answer.expect("no order fails"))
        .collect();
    assert_eq!(answers.len(), batch.len(), "{answers:#?}");

    let b1 = taken(&answers[0]);
    assert_eq!(b1.store_id, Some(store));
    assert_eq!(
        snapshot(b1),
        [
            (kimchi, "Kimchi", Category::SubMenu, 500, 2),
            (sikhye, "Sikhye", Category::Drink, 300, 1),
        ]
    );
    assert_eq!(
        snapshot(taken(&answers[2])),
        [(sikhye, "Sikhye", Category::Drink, 300, 3)]
    );
    assert_eq!(
        snapshot(taken(&answers[11])),
        [(scarce, "Scarce", Category::MainMenu, 100, 2)]
    );
    let expected_rest = [
        (1, Reserved::Existing(m.earlier.clone())),
        (3, Reserved::Existing(b1.clone())),
        (4, Reserved::KeyReused),
        (5, Reserved::Existing(m.tombstone.clone())),
        (6, Reserved::Existing(m.cancelled.clone())),
        (
            7,
            Reserved::OutOfStock(vec![Shortage {
                product_id: scarce,
                available: 2,
            }]),
        ),
        (8, Reserved::ProductNotFound(unknown)),
        (9, Reserved::ProductNotFound(m.gone)),
        (10, Reserved::ProductNotFound(m.foreign)),
        (12, Reserved::KeyReused),
    ];
    for (at, expected) in expected_rest {
        assert_eq!(answers[at], expected, "order {at}: {:?}", batch[at]);
    }
    assert_eq!(m.tombstone.store_id, None);
    assert_eq!(m.cancelled.status, ReservationStatus::Released);

    // Exactly what the three taken orders asked for, nothing for the others.
    assert_eq!(
        (
            f.stock(store, kimchi).await,
            f.stock(store, sikhye).await,
            f.stock(store, scarce).await
        ),
        (7, 6, 0)
    );
    assert_eq!(f.stock(m.other, m.foreign).await, 5);
    for (id, answer) in [("b-1", 0), ("b-2", 2), ("b-3", 11)] {
        let stored = f
            .storage
            .reservation(&order(id))
            .await
            .expect("read")
            .expect("kept");
        assert_eq!(&stored, taken(&answers[answer]), "{id}");
    }
    // A refused order leaves no record: its id is still free.
    for id in ["short", "unknown", "deleted", "foreign"] {
        assert_eq!(
            f.storage.reservation(&order(id)).await.expect("read"),
            None,
            "{id}"
        );
    }
    assert!(f.storage.reserve_many(&[]).await.is_empty());
    f.finish().await;
}

/// No order of the batch is short or off the menu, so PostgreSQL reserves the new ones
/// together (to the last of the stock) and answers the retries, duplicates and
/// tombstones one by one beside them.
async fn plain_orders_are_taken_together_beside_retries_duplicates_and_tombstones(engine: Engine) {
    let f = Fixture::new(engine).await;
    let m = Menu::open(&f).await;
    let (store, kimchi, sikhye) = (m.store, m.kimchi, m.sikhye);
    let batch = [
        ask("t-1", store, &[(kimchi, 2), (sikhye, 1)]),
        ask("earlier", store, &[(kimchi, 1)]),
        ask("t-2", store, &[(kimchi, 3)]),
        ask("t-1", store, &[(sikhye, 1), (kimchi, 2)]),
        ask("t-2", store, &[(sikhye, 1)]),
        ask("given-up", store, &[(kimchi, 4)]),
        ask("t-3", store, &[(sikhye, 4)]),
        // The last kimchi: 2 + 3 + 4 of the 9 left.
        ask("t-4", store, &[(kimchi, 4), (m.scarce, 2)]),
        ask("cancelled", store, &[(sikhye, 2)]),
    ];
    let answers: Vec<Reserved> = f
        .storage
        .reserve_many(&batch)
        .await
        .into_iter()
        .map(|answer| answer.expect("no order fails"))
        .collect();
    assert_eq!(answers.len(), batch.len(), "{answers:#?}");
    let t1 = taken(&answers[0]);
    assert_eq!(
        snapshot(t1),
        [
            (kimchi, "Kimchi", Category::SubMenu, 500, 2),
            (sikhye, "Sikhye", Category::Drink, 300, 1),
        ]
    );
    assert_eq!(
        snapshot(taken(&answers[2])),
        [(kimchi, "Kimchi", Category::SubMenu, 500, 3)]
    );
    assert_eq!(
        snapshot(taken(&answers[6])),
        [(sikhye, "Sikhye", Category::Drink, 300, 4)]
    );
    assert_eq!(
        snapshot(taken(&answers[7])),
        [
            (kimchi, "Kimchi", Category::SubMenu, 500, 4),
            (m.scarce, "Scarce", Category::MainMenu, 100, 2),
        ]
    );
    assert_eq!(answers[1], Reserved::Existing(m.earlier.clone()));
    assert_eq!(answers[3], Reserved::Existing(t1.clone()));
    assert_eq!(answers[4], Reserved::KeyReused);
    assert_eq!(answers[5], Reserved::Existing(m.tombstone.clone()));
    assert_eq!(answers[8], Reserved::Existing(m.cancelled.clone()));
    assert_eq!(
        (
            f.stock(store, kimchi).await,
            f.stock(store, sikhye).await,
            f.stock(store, m.scarce).await
        ),
        (0, 5, 0)
    );
    for (id, answer) in [("t-1", 0), ("t-2", 2), ("t-3", 6), ("t-4", 7)] {
        let stored = f
            .storage
            .reservation(&order(id))
            .await
            .expect("read")
            .expect("kept");
        assert_eq!(&stored, taken(&answers[answer]), "{id}");
    }
    f.finish().await;
}

async fn orders_that_fit_alone_but_not_together_are_answered_in_turn(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let p = f.product(store, "P", Category::MainMenu, 100, 5).await;
    let q = f.product(store, "Q", Category::Drink, 100, 3).await;
    let answers: Vec<Reserved> = f
        .storage
        .reserve_many(&[
            ask("o-1", store, &[(p, 2)]),
            ask("o-2", store, &[(p, 2), (q, 1)]),
            ask("o-3", store, &[(p, 2)]),
            ask("o-4", store, &[(q, 2)]),
            ask("o-5", store, &[(p, 1)]),
        ])
        .await
        .into_iter()
        .map(|answer| answer.expect("no order fails"))
        .collect();
    assert_eq!(answers.len(), 5);
    for at in [0, 1, 3, 4] {
        taken(&answers[at]);
    }
    assert_eq!(
        answers[2],
        Reserved::OutOfStock(vec![Shortage {
            product_id: p,
            available: 1
        }]),
        "the third order of P finds one left; the last order takes it"
    );
    assert_eq!((f.stock(store, p).await, f.stock(store, q).await), (0, 0));
    assert_eq!(
        f.storage.reservation(&order("o-3")).await.expect("read"),
        None
    );

    let answers: Vec<Reserved> = f
        .storage
        .reserve_many(&[ask("o-6", store, &[(q, 1)]), ask("o-7", store, &[(p, 1)])])
        .await
        .into_iter()
        .map(|answer| answer.expect("no order fails"))
        .collect();
    assert_eq!(
        answers,
        [
            Reserved::OutOfStock(vec![Shortage {
                product_id: q,
                available: 0
            }]),
            Reserved::OutOfStock(vec![Shortage {
                product_id: p,
                available: 0
            }]),
        ]
    );
    assert_eq!((f.stock(store, p).await, f.stock(store, q).await), (0, 0));
    f.finish().await;
}

/// The lines order `k` always asks for: a retry of it is the same request.
fn racing_lines(k: usize, products: &[ProductId; 3]) -> Vec<(ProductId, i64)> {
    let [a, b, c] = *products;
    match k % 4 {
        0 => vec![(a, 2), (b, 1)],
        1 => vec![(b, 2), (c, 1)],
        2 => vec![(a, 1), (c, 2)],
        _ => vec![(a, 1), (b, 1), (c, 1)],
    }
}

/// Batches overlapping in products and in order ids (the same order sent in two
/// batches), single reservations, and releases (some before their reservation) all at
/// once, on scarce stock: no call fails (a deadlock included), stock never goes below
/// zero, no order is taken twice, and the shelf holds exactly what the reservations still
/// held leave.
async fn racing_batches_reservations_and_releases_never_oversell(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let initial = [40, 35, 30];
    let mut products = Vec::new();
    for (name, stock) in ["A", "B", "C"].into_iter().zip(initial) {
        products.push(f.product(store, name, Category::MainMenu, 100, stock).await);
    }
    let products: [ProductId; 3] = products.try_into().expect("three products");
    let id = |k: usize| format!("race-{k}");

    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (storage, done) = (f.storage.clone(), done.clone());
        tokio::spawn(async move {
            let mut lowest = i64::MAX;
            while !done.load(Ordering::SeqCst) {
                for product in products {
                    let stock = storage
                        .product(store, product)
                        .await?
                        .map_or(i64::MAX, |p| p.stock);
                    lowest = lowest.min(stock);
                }
                tokio::task::yield_now().await;
            }
            Ok::<_, pos_common::storage::StorageError>(lowest)
        })
    };

    let mut batches = Vec::new();
    for t in 0..12 {
        // Task t sends orders 5t..5t+8: three of them are also the next task's. The
        // first batches fit whole (PostgreSQL reserves them together), the later ones
        // find some product short (and are reserved one by one).
        let mut ks: Vec<usize> = (5 * t..5 * t + 8).collect();
        if t % 2 == 1 {
            ks.reverse();
        }
        let batch: Vec<StockRequest> = ks
            .iter()
            .map(|&k| ask(&id(k), store, &racing_lines(k, &products)))
            .collect();
        let storage = f.storage.clone();
        batches.push(tokio::spawn(async move {
            let answers = storage.reserve_many(&batch).await;
            assert_eq!(answers.len(), ks.len());
            ks.into_iter()
                .zip(answers)
                .map(|(k, answer)| answer.map(|answer| (k, answer)))
                .collect::<Result<Vec<_>, _>>()
        }));
    }
    let mut singles = Vec::new();
    for t in 0..4 {
        let storage = f.storage.clone();
        singles.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for k in (200 + 10 * t)..(210 + 10 * t) {
                let wanted = lines(&racing_lines(k, &products));
                answers.push((k, storage.reserve(&order(&id(k)), store, &wanted).await?));
            }
            Ok::<_, pos_common::storage::StorageError>(answers)
        }));
    }
    let mut releases = Vec::new();
    for ks in [
        (0..63).step_by(5).collect::<Vec<usize>>(),
        (200..240).step_by(3).rev().collect(),
        (1..63).step_by(7).rev().collect(),
    ] {
        let storage = f.storage.clone();
        releases.push(tokio::spawn(async move {
            for k in ks {
                storage.release(&order(&id(k))).await?;
                tokio::task::yield_now().await;
            }
            Ok::<_, pos_common::storage::StorageError>(())
        }));
    }

    let mut answers: Vec<(usize, Reserved)> = Vec::new();
    for batch in batches {
        answers.extend(batch.await.expect("task").expect("no batch order fails"));
    }
    for single in singles {
        answers.extend(single.await.expect("task").expect("no reservation fails"));
    }
    for release in releases {
        release.await.expect("task").expect("no release fails");
    }
    done.store(true, Ordering::SeqCst);
    let lowest = watcher.await.expect("task").expect("reads");
    assert!(lowest >= 0, "stock went down to {lowest}");

    let mut taken_of: HashMap<usize, usize> = HashMap::new();
    for (k, answer) in &answers {
        match answer {
            Reserved::Taken(reservation) => {
                *taken_of.entry(*k).or_default() += 1;
                let counts: Vec<(ProductId, i64)> = reservation
                    .lines
                    .iter()
                    .map(|l| (l.product_id, l.count))
                    .collect();
                assert_eq!(counts, racing_lines(*k, &products), "order {k}");
            }
            Reserved::Existing(reservation) => {
                assert!(
                    reservation.answers(store, &lines(&racing_lines(*k, &products))),
                    "order {k}: {reservation:?}"
                );
            }
            Reserved::OutOfStock(short) => assert!(!short.is_empty(), "order {k}"),
            other => panic!("order {k}: {other:?}"),
        }
    }
    let mut held = [0_i64; 3];
    let mut held_orders = 0;
    for k in (0..63).chain(200..240) {
        let taken = taken_of.get(&k).copied().unwrap_or_default();
        assert!(taken <= 1, "order {k} was taken {taken} times");
        let record = f.storage.reservation(&order(&id(k))).await.expect("read");
        match record {
            Some(record) if record.status == ReservationStatus::Reserved => {
                assert_eq!(taken, 1, "order {k} is held but was never answered Taken");
                held_orders += 1;
                for line in &record.lines {
                    let at = products
                        .iter()
                        .position(|p| *p == line.product_id)
                        .expect("a racing product");
                    held[at] += line.count;
                }
            }
            Some(record) => assert_eq!(record.status, ReservationStatus::Released, "{k}"),
            None => assert_eq!(taken, 0, "order {k} was taken but left no record"),
        }
    }
    assert!(held_orders > 0, "some orders hold stock at the end");
    for (at, product) in products.iter().enumerate() {
        let stock = f.stock(store, *product).await;
        assert!(stock >= 0, "{stock}");
        assert_eq!(
            stock,
            initial[at] - held[at],
            "product {at}: the shelf holds what the held reservations leave"
        );
    }
    f.finish().await;
}

async fn tablets_are_read_by_id_whatever_their_store(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let other = f.store(2).await.id;
    let ours = f.storage.devices_of_store(store).await.expect("devices");
    let theirs = f.storage.devices_of_store(other).await.expect("devices");
    let revoked = f
        .storage
        .rotate_device_credential(store, ours[1].id, true)
        .await
        .expect("revoke")
        .expect("the tablet");
    assert!(revoked.revoked_at.is_some());
    let mut expected = vec![ours[0].clone(), revoked, theirs[2].clone()];
    expected.sort_by_key(|device| device.id);

    let mut found = f
        .storage
        .devices_by_id(&[
            theirs[2].id,
            DeviceId::from_stored(999_999),
            ours[0].id,
            ours[1].id,
        ])
        .await
        .expect("read");
    found.sort_by_key(|device| device.id);
    assert_eq!(
        found, expected,
        "the ones found, of either store, as stored"
    );
    assert_eq!(
        f.storage
            .devices_by_id(&[DeviceId::from_stored(999_999)])
            .await
            .expect("read"),
        []
    );
    assert_eq!(f.storage.devices_by_id(&[]).await.expect("read"), []);
    f.finish().await;
}

/// PostgreSQL only, since it is about row locks: a batch locks the products its orders
/// name on their own store's menu, not another store's product an order names by
/// mistake (or malice). With that product locked elsewhere, the batch is answered at
/// once (the foreign line refused as not found) instead of waiting for the lock.
#[tokio::test]
async fn postgres_a_batch_does_not_lock_another_stores_products() {
    let f = Fixture::new(Engine::Postgres).await;
    let store = f.store(1).await.id;
    let other = f.store(2).await.id;
    let kimchi = f.product(store, "Kimchi", Category::SubMenu, 500, 10).await;
    let foreign = f.product(other, "Foreign", Category::Drink, 100, 10).await;
    let pos_common::storage::Database::Postgres(pool) = &f.database else {
        panic!("a PostgreSQL database");
    };
    // The other store's owner is editing its product: its row is locked meanwhile.
    let mut editing = pool.begin().await.expect("begin");
    sqlx::query("SELECT id FROM products WHERE id = $1 FOR UPDATE")
        .bind(foreign.get())
        .execute(&mut *editing)
        .await
        .expect("lock the other store's product");

    let batch = [
        ask("mine", store, &[(kimchi, 1)]),
        ask("naming-theirs", store, &[(kimchi, 1), (foreign, 1)]),
    ];
    let answers = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        f.storage.reserve_many(&batch),
    )
    .await
    .expect("answered without waiting for the other store's lock");
    taken(answers[0].as_ref().expect("mine"));
    assert!(
        matches!(&answers[1], Ok(Reserved::ProductNotFound(id)) if *id == foreign),
        "an order naming another store's product is refused: {:?}",
        answers[1]
    );
    editing.rollback().await.expect("rollback");
    f.finish().await;
}
