//! Stock reservations: all or nothing, idempotent on the order id, final once
//! confirmed or released, and never an oversell or a deadlock under concurrency.

use pos_common::domain::ProductId;
use pos_store::storage::{
    Amount, Category, Confirmed, ProductChange, Released, ReservationStatus, Reserved, Shortage,
};

use super::{Fixture, lines, order, snapshot};
use crate::support::Engine;

crate::on_both_engines!(
    reserving_takes_stock_and_keeps_the_product_as_ordered,
    a_retry_answers_the_same_reservation_and_another_request_is_refused,
    failed_reservations_change_nothing_and_say_why,
    confirm_and_release_are_final_and_idempotent,
    many_are_confirmed_at_once_and_the_rest_say_why,
    a_release_that_overtakes_its_reservation_blocks_it,
    restock_leaves_out_what_unconfirmed_orders_hold,
    fifty_concurrent_reservations_never_oversell,
    restocks_racing_reservations_and_releases_never_deadlock,
);

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
    assert_eq!(
        snapshot(&taken),
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

async fn many_are_confirmed_at_once_and_the_rest_say_why(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let a = f.product(store, "A", Category::MainMenu, 100, 10).await;
    for id in ["m-1", "m-2", "m-3", "m-released", "m-before"] {
        f.storage
            .reserve(&order(id), store, &lines(&[(a, 1)]))
            .await
            .expect("reserve");
    }
    f.storage
        .release(&order("m-released"))
        .await
        .expect("release");
    f.storage
        .confirm(&order("m-before"))
        .await
        .expect("confirm");
    let asked: Vec<_> = [
        "m-2",
        "m-1",
        "m-released",
        "m-never",
        "m-before",
        "m-3",
        "m-1",
    ]
    .map(order)
    .to_vec();
    let outcome = f.storage.confirm_many(&asked).await.expect("confirm many");
    assert_eq!(outcome.released, [order("m-released")]);
    assert_eq!(outcome.unknown, [order("m-never")]);
    for id in ["m-1", "m-2", "m-3", "m-before"] {
        let record = f
            .storage
            .reservation(&order(id))
            .await
            .expect("read")
            .expect("reservation");
        assert_eq!(record.status, ReservationStatus::Confirmed, "{id}");
    }
    // Confirmed is final, and asking again changes nothing.
    let again = f
        .storage
        .confirm_many(&[order("m-1"), order("m-3")])
        .await
        .expect("again");
    assert_eq!((again.released.len(), again.unknown.len()), (0, 0));
    assert!(matches!(
        f.storage.release(&order("m-2")).await.expect("release"),
        Released::AlreadyConfirmed(_)
    ));
    assert_eq!(f.stock(store, a).await, 6, "four sold, one given back");
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
    let restocked = f.storage.restock(store).await.expect("restock");
    assert_eq!(restocked, 2, "deleted products are not restocked");
    assert_eq!((f.stock(store, a).await, f.stock(store, b).await), (8, 5));
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
