//! What paid trades add up to, as the aggregation batch reads them: only paid trades
//! count, by the instant they were paid; product sales, revenue and card fees agree; a
//! product is named as it was last sold; stores are read whole, by list or by shard.

use pos_common::{
    clock::{ManualClock, SharedClock},
    domain::{DeviceId, ProductId, StoreId},
};
use pos_trade_storage::{
    CardCompany, Category, IdempotencyKey, NewOrder, OrderId, PaymentMethod, SnapshotLine,
    sales::{
        CardFeeTotal, PaidBetween, ProductSaleTotal, SettlementSource, StoreSelection, StoreTotal,
    },
};

use super::{CARD_H, Fixture, device, new_payment, store};
use crate::support::{Engine, at};

crate::on_both_engines!(
    the_reference_example_adds_up_to_its_published_figures,
    only_trades_paid_within_the_window_count,
    a_product_is_named_as_it_was_last_sold,
    stores_are_read_by_list_or_by_shard,
);

/// 2024-12-01 in Asia/Seoul (UTC+9).
fn seoul_december_first() -> PaidBetween {
    PaidBetween {
        from: at("2024-11-30T15:00:00Z"),
        to: at("2024-12-01T15:00:00Z"),
    }
}

struct Shop {
    fixture: Fixture,
    clock: std::sync::Arc<ManualClock>,
    orders: usize,
}

impl Shop {
    async fn open(engine: Engine, now: &str) -> Self {
        let clock = ManualClock::new(at(now));
        let shared: SharedClock = clock.clone();
        Self {
            fixture: Fixture::with_clock(engine, shared).await,
            clock,
            orders: 0,
        }
    }

    /// Orders `lines` (product id, name, category, unit price, count) at a store's tablet.
    async fn order(
        &mut self,
        store: StoreId,
        tablet: DeviceId,
        lines: &[(i64, &str, Category, i64, i64)],
    ) {
        self.orders += 1;
        let lines = lines
            .iter()
            .map(
                |&(product, name, category, unit_price, count)| SnapshotLine {
                    product_id: ProductId::from_stored(product),
                    product_name: name.to_string(),
                    category,
                    unit_price,
                    count,
                },
            )
            .collect();
        let order = NewOrder::new(
            OrderId::parse(&format!("sale-{}", self.orders)).expect("order id"),
            store,
            tablet,
            IdempotencyKey::parse(&format!("key-{}", self.orders)).expect("key"),
            format!("order {}", self.orders),
            lines,
        )
        .expect("an order");
        self.fixture
            .storage
            .commit_order(&order)
            .await
            .expect("commit");
    }

    async fn pay(&mut self, store: StoreId, tablet: DeviceId, method: PaymentMethod) {
        self.orders += 1;
        let key = format!("pay-{}", self.orders);
        self.fixture
            .storage
            .pay(&new_payment(store, tablet, &key, method, None))
            .await
            .expect("pay");
    }

    async fn settlement(&self, paid: PaidBetween, stores: &StoreSelection) -> SettlementSource {
        self.fixture
            .sales()
            .settlement(paid, stores)
            .await
            .expect("read")
    }

    async fn product_sales(
        &self,
        paid: PaidBetween,
        stores: &StoreSelection,
    ) -> Vec<ProductSaleTotal> {
        self.fixture
            .sales()
            .product_sales(paid, stores)
            .await
            .expect("read")
    }
}

fn sold(
    store: StoreId,
    id: i64,
    name: &str,
    category: Category,
    count: i64,
    amount: i64,
) -> ProductSaleTotal {
    ProductSaleTotal {
        store_id: store,
        product_id: id,
        product_name: name.to_string(),
        category,
        sale_count: count,
        sale_amount: amount,
    }
}

const SIKHYE: (i64, &str, Category, i64) = (2, "Sikhye", Category::SubMenu, 500);
const COLA: (i64, &str, Category, i64) = (4, "Cola", Category::Drink, 300);

fn line(
    product: (i64, &'static str, Category, i64),
    count: i64,
) -> (i64, &'static str, Category, i64, i64) {
    (product.0, product.1, product.2, product.3, count)
}

/// The reference system's own fixture: table 1 orders 4 × product 2 + 2 × product 4, then
/// 2 × product 2, and pays 3,600 in cash; table 2 orders 6 × product 2 + 3 × product 4
/// and pays 3,900 by card H (fee 23), all on 2024-12-01 in Seoul.
async fn the_reference_example_adds_up_to_its_published_figures(engine: Engine) {
    let mut shop = Shop::open(engine, "2024-12-01T03:00:00Z").await;
    let one = store(1);
    shop.order(one, device(1), &[line(SIKHYE, 4), line(COLA, 2)])
        .await;
    shop.order(one, device(1), &[line(SIKHYE, 2)]).await;
    shop.pay(one, device(1), PaymentMethod::Cash).await;
    shop.order(one, device(2), &[line(SIKHYE, 6), line(COLA, 3)])
        .await;
    shop.pay(one, device(2), CARD_H).await;

    let day = seoul_december_first();
    let settlement = shop.settlement(day, &StoreSelection::All).await;
    assert_eq!(
        settlement.stores,
        [StoreTotal {
            store_id: one,
            revenue: 7_500,
            fee: 23,
            trade_count: 2,
        }]
    );
    assert_eq!(
        settlement.card_fees,
        [CardFeeTotal {
            store_id: one,
            card_company: CardCompany::H,
            payment_count: 1,
            amount: 3_900,
            fee: 23,
        }]
    );
    let products = [
        sold(one, 2, "Sikhye", Category::SubMenu, 12, 6_000),
        sold(one, 4, "Cola", Category::Drink, 5, 1_500),
    ];
    assert_eq!(settlement.products, products);
    assert_eq!(
        shop.product_sales(day, &StoreSelection::All).await,
        products
    );
    shop.fixture.finish().await;
}

/// Open bills, bills paid the day before or after, and bills paid on the last
/// millisecond of the day versus the first of the next.
async fn only_trades_paid_within_the_window_count(engine: Engine) {
    let mut shop = Shop::open(engine, "2024-11-30T14:59:59.999Z").await;
    let one = store(1);
    // Paid at 23:59:59.999 on 2024-11-30 local: the day before.
    shop.order(one, device(1), &[line(SIKHYE, 1)]).await;
    shop.pay(one, device(1), PaymentMethod::Cash).await;
    // Ordered then, paid at 00:00:00.000 on 2024-12-01 local: counts.
    shop.order(one, device(2), &[line(SIKHYE, 2)]).await;
    shop.clock.set(at("2024-11-30T15:00:00Z"));
    shop.pay(one, device(2), PaymentMethod::Cash).await;
    // Ordered during the day and never paid: does not count.
    shop.order(one, device(3), &[line(COLA, 7)]).await;
    // Paid at 00:00 on 2024-12-02 local: the day after.
    shop.order(one, device(4), &[line(COLA, 1)]).await;
    shop.clock.set(at("2024-12-01T15:00:00Z"));
    shop.pay(one, device(4), CARD_H).await;

    let day = seoul_december_first();
    let settlement = shop.settlement(day, &StoreSelection::All).await;
    assert_eq!(
        settlement.stores,
        [StoreTotal {
            store_id: one,
            revenue: 1_000,
            fee: 0,
            trade_count: 1,
        }]
    );
    assert_eq!(settlement.card_fees, []);
    assert_eq!(
        settlement.products,
        [sold(one, 2, "Sikhye", Category::SubMenu, 2, 1_000)]
    );
    let before = PaidBetween {
        from: at("2024-11-29T15:00:00Z"),
        to: day.from,
    };
    assert_eq!(
        shop.product_sales(before, &StoreSelection::All).await,
        [sold(one, 2, "Sikhye", Category::SubMenu, 1, 500)]
    );
    shop.fixture.finish().await;
}

/// Renamed (and moved to another category) during the window: one total, under the name
/// and category of its last sale.
async fn a_product_is_named_as_it_was_last_sold(engine: Engine) {
    let mut shop = Shop::open(engine, "2024-12-01T01:00:00Z").await;
    let one = store(1);
    shop.order(one, device(1), &[(7, "Tea", Category::Drink, 100, 1)])
        .await;
    shop.pay(one, device(1), PaymentMethod::Cash).await;
    shop.clock.set(at("2024-12-01T02:00:00Z"));
    shop.order(
        one,
        device(1),
        &[(7, "Iced tea", Category::SubMenu, 150, 2)],
    )
    .await;
    shop.pay(one, device(1), PaymentMethod::Cash).await;
    assert_eq!(
        shop.product_sales(seoul_december_first(), &StoreSelection::All)
            .await,
        [sold(one, 7, "Iced tea", Category::SubMenu, 3, 400)]
    );
    // Renamed between two orders of one bill (paid at once): the later order's name. And
    // card fees come in company order, K before H.
    shop.clock.set(at("2024-12-01T03:00:00Z"));
    shop.order(
        one,
        device(2),
        &[(8, "Zucchini jeon", Category::SubMenu, 100, 1)],
    )
    .await;
    shop.clock.set(at("2024-12-01T03:05:00Z"));
    shop.order(
        one,
        device(2),
        &[(8, "Hobak jeon", Category::SubMenu, 100, 1)],
    )
    .await;
    shop.pay(one, device(2), CARD_H).await;
    shop.order(
        one,
        device(3),
        &[(8, "Hobak jeon", Category::SubMenu, 100, 1)],
    )
    .await;
    shop.pay(one, device(3), PaymentMethod::Card(CardCompany::K))
        .await;
    let settlement = shop
        .settlement(seoul_december_first(), &StoreSelection::All)
        .await;
    assert!(
        settlement
            .products
            .contains(&sold(one, 8, "Hobak jeon", Category::SubMenu, 3, 300)),
        "{:?}",
        settlement.products
    );
    let companies: Vec<CardCompany> = settlement
        .card_fees
        .iter()
        .map(|f| f.card_company)
        .collect();
    assert_eq!(companies, [CardCompany::K, CardCompany::H]);
    shop.fixture.finish().await;
}

async fn stores_are_read_by_list_or_by_shard(engine: Engine) {
    let mut shop = Shop::open(engine, "2024-12-01T01:00:00Z").await;
    for id in 1..=5 {
        shop.order(store(id), device(id), &[line(SIKHYE, id)]).await;
        shop.pay(store(id), device(id), PaymentMethod::Cash).await;
    }
    let day = seoul_december_first();
    let stores_of =
        |totals: &[StoreTotal]| -> Vec<i64> { totals.iter().map(|t| t.store_id.get()).collect() };
    let all = shop.settlement(day, &StoreSelection::All).await;
    assert_eq!(stores_of(&all.stores), [1, 2, 3, 4, 5]);
    let listed = shop
        .settlement(day, &StoreSelection::Only(vec![store(2), store(5)]))
        .await;
    assert_eq!(stores_of(&listed.stores), [2, 5]);
    assert_eq!(
        shop.settlement(day, &StoreSelection::Only(vec![])).await,
        SettlementSource::default()
    );
    // Three shards read every store once.
    let mut sharded = Vec::new();
    for index in 0..3 {
        let shard = StoreSelection::Shard { index, count: 3 };
        let part = shop.settlement(day, &shard).await;
        assert!(
            part.stores
                .iter()
                .all(|t| t.store_id.get() % 3 == i64::from(index))
        );
        sharded.extend(part.stores);
        assert_eq!(
            shop.product_sales(day, &shard).await.len(),
            part.products.len()
        );
    }
    sharded.sort_by_key(|t| t.store_id);
    assert_eq!(sharded, all.stores);
    shop.fixture.finish().await;
}
