//! Lists come in keyset pages (every row once, in id order, whatever the page size), and
//! a store's live products stay within its limit however many creates race.

use pos_common::domain::ProductId;
use pos_store::storage::{
    Amount, Category, Created, NewProduct, Page, ProductFilter, ProductLimit, ProductName,
};

use super::Fixture;
use crate::support::Engine;

crate::on_both_engines!(
    every_list_walks_in_pages_without_gaps_or_repeats,
    the_product_limit_holds_under_concurrent_creates,
);

async fn every_list_walks_in_pages_without_gaps_or_repeats(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let other = f.store(2).await.id;
    let mut ids = Vec::new();
    for i in 0..7 {
        let category = if i % 2 == 0 {
            Category::Drink
        } else {
            Category::MainMenu
        };
        ids.push(f.product(store, &format!("P{i}"), category, 100, 1).await);
        f.product(other, &format!("Other {i}"), category, 1, 1)
            .await;
    }
    f.storage
        .delete_product(store, ids[2])
        .await
        .expect("delete");
    for limit in [1, 2, 3, 7, 100] {
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = f
                .storage
                .list_products(
                    store,
                    ProductFilter {
                        category: None,
                        include_deleted: true,
                    },
                    Page { after, limit },
                )
                .await
                .expect("page");
            assert!(page.len() as i64 <= limit);
            let Some(last) = page.last() else { break };
            after = last.id.get();
            seen.extend(page.iter().map(|p| p.id));
        }
        assert_eq!(seen, ids, "page size {limit}");
    }
    let live_drinks: Vec<ProductId> = f
        .all_products(
            store,
            ProductFilter {
                category: Some(Category::Drink),
                include_deleted: false,
            },
        )
        .await
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(live_drinks, [ids[0], ids[4], ids[6]]);

    // Tablets: 30 in pages of 7.
    let all = f.storage.devices_of_store(store).await.expect("devices");
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = f
            .storage
            .devices_page(store, Page { after, limit: 7 })
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = last.id.get();
        seen.extend(page);
    }
    assert_eq!(seen, all);
    assert_eq!(seen.len(), 30);

    // History: an entry per change, in pages; past the end an empty page, and another
    // store's product is not there at all.
    let product = ids[0];
    for price in 1..=4 {
        let change = pos_store::storage::ProductChange::new(
            Some(Amount::parse(price).expect("price")),
            None,
        )
        .expect("change");
        f.storage
            .update_product(store, product, &change)
            .await
            .expect("update");
    }
    let mut prices = Vec::new();
    let mut after = 0;
    loop {
        let page = f
            .storage
            .product_history(store, product, Page { after, limit: 2 })
            .await
            .expect("history")
            .expect("product");
        let Some(last) = page.last() else { break };
        after = last.seq;
        prices.extend(page.iter().map(|h| h.price.get()));
    }
    assert_eq!(prices, [100, 1, 2, 3, 4]);
    assert_eq!(
        f.storage
            .product_history(other, product, Page::first(10))
            .await
            .expect("history"),
        None
    );
    f.finish().await;
}

async fn the_product_limit_holds_under_concurrent_creates(engine: Engine) {
    let f = Fixture::new(engine).await;
    let store = f.store(1).await.id;
    let other = f.store(2).await.id;
    let limit = ProductLimit::parse(5).expect("limit");
    let first = f.product(store, "First", Category::Drink, 1, 1).await;
    let creates: Vec<_> = (0..12)
        .map(|i| {
            let storage = f.storage.clone();
            tokio::spawn(async move {
                let product = NewProduct {
                    name: ProductName::parse(&format!("Racer {i}")).expect("name"),
                    category: Category::MainMenu,
                    price: Amount::parse(100).expect("price"),
                    base_stock: Amount::parse(1).expect("stock"),
                };
                storage
                    .create_product(store, &product, limit)
                    .await
                    .expect("create")
            })
        })
        .collect();
    let mut created = 0;
    for create in creates {
        if let Created::Product(_) = create.await.expect("task") {
            created += 1;
        }
    }
    assert_eq!(created, 4, "one existed, four more fit");
    let live = |store| f.all_products(store, ProductFilter::default());
    assert_eq!(live(store).await.len(), 5);
    let new = || NewProduct {
        name: ProductName::parse("One more").expect("name"),
        category: Category::SubMenu,
        price: Amount::parse(1).expect("price"),
        base_stock: Amount::parse(1).expect("stock"),
    };
    assert_eq!(
        f.storage
            .create_product(store, &new(), limit)
            .await
            .expect("create"),
        Created::StoreFull
    );
    // Another store has room of its own; a deleted product makes room again.
    assert!(matches!(
        f.storage.create_product(other, &new(), limit).await,
        Ok(Created::Product(_))
    ));
    f.storage
        .delete_product(store, first)
        .await
        .expect("delete");
    assert!(matches!(
        f.storage.create_product(store, &new(), limit).await,
        Ok(Created::Product(_))
    ));
    assert_eq!(live(store).await.len(), 5);
    f.finish().await;
}
