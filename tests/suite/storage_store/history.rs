//! A product's history is in commit order: an update reads the time only once it holds
//! the product, so concurrent updaters cannot write an older instant after a newer one.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, TimeZone, Utc};
use pos_common::clock::Clock;
use pos_store::storage::{Amount, Category, Page, ProductChange};

use super::Fixture;
use crate::support::Engine;

crate::on_both_engines!(history_follows_commit_order_under_concurrent_updates);

/// A clock one millisecond later at every reading: the order of readings is the order
/// of the instants written, whatever the machine's speed.
#[derive(Debug)]
struct Ticking(AtomicI64);

impl Clock for Ticking {
    fn now(&self) -> DateTime<Utc> {
        let tick = self.0.fetch_add(1, Ordering::SeqCst);
        Utc.timestamp_millis_opt(1_700_000_000_000 + tick)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

async fn history_follows_commit_order_under_concurrent_updates(engine: Engine) {
    let f = Fixture::with_clock(engine, Arc::new(Ticking(AtomicI64::new(0)))).await;
    let store = f.store(1).await.id;
    let product = f
        .product(store, "Contended", Category::MainMenu, 1, 1)
        .await;
    let updaters: Vec<_> = (0..20)
        .map(|i| {
            let storage = f.storage.clone();
            tokio::spawn(async move {
                let change = ProductChange::new(Some(Amount::parse(100 + i).expect("price")), None)
                    .expect("change");
                storage
                    .update_product(store, product, &change)
                    .await
                    .expect("update")
                    .expect("product")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for updater in updaters {
        answers.push(updater.await.expect("task"));
    }
    let history = f
        .storage
        .product_history(store, product, Page::first(100))
        .await
        .expect("history")
        .expect("product");
    assert_eq!(history.len(), 21);
    let backwards: Vec<_> = history
        .windows(2)
        .filter(|pair| pair[1].at < pair[0].at)
        .map(|pair| (pair[0].at, pair[1].at))
        .collect();
    assert!(
        backwards.is_empty(),
        "{} entries are older than the one before: {backwards:?}",
        backwards.len()
    );
    // Each answer is its own entry, and the last entry is what the product now holds.
    for answer in &answers {
        assert!(
            history
                .iter()
                .any(|h| h.price == answer.price && h.at == answer.updated_at),
            "{answer:?}"
        );
    }
    let now = f
        .storage
        .product(store, product)
        .await
        .expect("read")
        .expect("product");
    let last = history.last().expect("entries");
    assert_eq!((last.price, last.at), (now.price, now.updated_at));
    f.finish().await;
}
