//! SettlementService through the edge of the whole `pos up` stack: the reference
//! system's worked example placed with real orders and payments, then aggregated on
//! demand and read back; who may read and run what; and how bad requests are refused.

use pos_common::{
    clock::ManualClock,
    peer::{ServiceCredential, with_service_token},
};
use pos_proto::v1::{
    self as pb, CardCompany, ProductCategory, SalesCriteria, Term,
    settlement_service_client::SettlementServiceClient,
};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

use crate::{
    support::{
        Bearer, Engine, assert_error, at, bearer, dev_signup,
        stack::{StackOptions, TestStack},
    },
    trade_api::{order, store_client, trade_client},
};

mod validation;

crate::on_both_engines!(
    the_worked_example_settles_through_the_api,
    owners_see_and_recompute_only_their_own_store,
);

type Settlements = SettlementServiceClient<InterceptedService<Channel, Bearer>>;

/// A category's amount and its products' (id, count, amount).
type CategoryFigures = (i32, i64, Vec<(i64, i64, i64)>);

/// A stack whose clock stands at noon, Seoul time, on 2024-12-01.
async fn stack_on_the_first(engine: Engine) -> (TestStack, std::sync::Arc<ManualClock>) {
    let clock = ManualClock::new(at("2024-12-01T03:00:00Z"));
    let stack = TestStack::start_with(
        engine,
        StackOptions {
            clock: clock.clone(),
            ..StackOptions::default()
        },
    )
    .await;
    (stack, clock)
}

fn settlements(stack: &TestStack, token: &str) -> Settlements {
    SettlementServiceClient::with_interceptor(stack.channel(), bearer(token))
}

/// The settlement role as an operator reaches it: directly, with a service token.
type Direct = SettlementServiceClient<pos_common::peer::WithServiceToken<pos_common::peer::Peer>>;

fn operator(stack: &TestStack) -> Direct {
    service(stack, "operator")
}

/// The settlement role reached directly, with a service token whose subject is `subject`.
fn service(stack: &TestStack, subject: &str) -> Direct {
    let role = stack
        .stack
        .peers
        .get("settlement")
        .expect("the settlement role");
    let credential =
        ServiceCredential::new(stack.issuer.clone(), subject, pos_common::clock::system());
    SettlementServiceClient::new(with_service_token(role.peer.clone(), &credential))
}

/// The reference's store 1: its menu (one product deleted), two tablets, and the owner.
struct Reference {
    owner: String,
    store_id: i64,
    /// Products 1 to 4 of the reference.
    products: [i64; 4],
    tablets: Vec<(i64, String)>,
}

async fn reference_store(stack: &TestStack, email: &str) -> Reference {
    let signed = dev_signup(stack.channel(), email, "Reference", pb::PosGrade::Gold).await;
    let owner = signed.tokens.expect("tokens").access_token;
    let store_id = signed.store.expect("store").id;
    let mut store = store_client(stack, &owner);
    let menu = [
        ("Bibimbap", ProductCategory::MainMenu, 1000),
        ("Kimchi", ProductCategory::SubMenu, 500),
        ("Japchae", ProductCategory::SubMenu, 700),
        ("Sikhye", ProductCategory::Drink, 300),
    ];
    let mut products = [0; 4];
    for (slot, (name, category, price)) in products.iter_mut().zip(menu) {
        *slot = store
            .create_product(pb::CreateProductRequest {
                name: name.into(),
                category: category as i32,
                price,
                base_stock: 100,
            })
            .await
            .expect("product")
            .into_inner()
            .product
            .expect("product")
            .id;
    }
    store
        .delete_product(pb::DeleteProductRequest {
            product_id: products[2],
        })
        .await
        .expect("delete product 3");
    let devices = store
        .list_devices(pb::ListDevicesRequest::default())
        .await
        .expect("devices")
        .into_inner()
        .devices;
    let mut tablets = Vec::new();
    for device in devices.iter().take(3) {
        let token = store
            .issue_device_token(pb::IssueDeviceTokenRequest {
                device_id: device.id,
            })
            .await
            .expect("tablet token")
            .into_inner()
            .device_token;
        tablets.push((device.id, token));
    }
    Reference {
        owner,
        store_id,
        products,
        tablets,
    }
}

/// Table 1: 4 × product 2 + 2 × product 4, then 2 × product 2, paid in cash; table 2:
/// 6 × product 2 + 3 × product 4, paid by card H; table 3 orders and does not pay.
async fn the_reference_day(stack: &TestStack, shop: &Reference) {
    let [_, kimchi, _, sikhye] = shop.products;
    let mut table1 = trade_client(stack, &shop.tablets[0].1);
    table1
        .place_order(order(&[(kimchi, 4), (sikhye, 2)], "t1-a"))
        .await
        .expect("order");
    table1
        .place_order(order(&[(kimchi, 2)], "t1-b"))
        .await
        .expect("order");
    let mut table2 = trade_client(stack, &shop.tablets[1].1);
    table2
        .place_order(order(&[(kimchi, 6), (sikhye, 3)], "t2-a"))
        .await
        .expect("order");
    let mut table3 = trade_client(stack, &shop.tablets[2].1);
    table3
        .place_order(order(&[(kimchi, 10)], "t3-a"))
        .await
        .expect("an open bill");
    let mut owner = trade_client(stack, &shop.owner);
    owner
        .pay_cash(pb::PayCashRequest {
            device_id: shop.tablets[0].0,
            expected_amount: Some(3600),
            idempotency_key: "pay-1".into(),
        })
        .await
        .expect("cash");
    owner
        .pay_card(pb::PayCardRequest {
            device_id: shop.tablets[1].0,
            card_company: CardCompany::H as i32,
            expected_amount: Some(3900),
            idempotency_key: "pay-2".into(),
        })
        .await
        .expect("card");
}

fn day_run(date: &str) -> pb::RunAggregationRequest {
    pb::RunAggregationRequest {
        job: pb::AggregationJob::Settlement as i32,
        term: Term::Day as i32,
        date: date.into(),
    }
}

fn settlement_of(date: &str) -> pb::GetSettlementRequest {
    pb::GetSettlementRequest {
        term: Term::Day as i32,
        start_date: date.into(),
    }
}

async fn the_worked_example_settles_through_the_api(engine: Engine) {
    let (stack, _clock) = stack_on_the_first(engine).await;
    let shop = reference_store(&stack, "reference@example.com").await;
    the_reference_day(&stack, &shop).await;
    let mut api = settlements(&stack, &shop.owner);

    let status = assert_error(
        api.get_settlement(settlement_of("2024-12-01")).await,
        Code::NotFound,
        "NOT_AGGREGATED",
    );
    assert!(status.message().contains("not aggregated"), "{status:?}");

    for job in [
        pb::AggregationJob::Settlement,
        pb::AggregationJob::ProductSales,
    ] {
        let run = api
            .run_aggregation(pb::RunAggregationRequest {
                job: job as i32,
                // No date is today, in Seoul: the stack's clock says 2024-12-01 12:00.
                date: String::new(),
                ..day_run("2024-12-01")
            })
            .await
            .expect("an owner's run")
            .into_inner()
            .run
            .expect("its record");
        assert_eq!(run.status, pb::AggregationRunStatus::Succeeded as i32);
        assert_eq!(
            (run.window_start.as_str(), run.window_end.as_str()),
            ("2024-12-01", "2024-12-02")
        );
    }

    let settlement = api
        .get_settlement(settlement_of("2024-12-01"))
        .await
        .expect("settlement")
        .into_inner()
        .settlement
        .expect("settlement");
    assert_eq!(
        (
            settlement.revenue,
            settlement.fee,
            settlement.operating_profit,
            settlement.trade_count
        ),
        (7500, 23, 7477, 2)
    );
    assert_eq!(settlement.store_id, shop.store_id);

    let detail = api
        .get_settlement_detail(pb::GetSettlementDetailRequest {
            term: Term::Day as i32,
            start_date: "2024-12-01".into(),
        })
        .await
        .expect("detail")
        .into_inner();
    assert_eq!(detail.settlement, Some(settlement.clone()));
    let categories: Vec<CategoryFigures> = detail
        .categories
        .iter()
        .map(|c| {
            (
                c.category,
                c.sale_amount,
                c.products
                    .iter()
                    .map(|p| (p.product_id, p.sale_count, p.sale_amount))
                    .collect(),
            )
        })
        .collect();
    let [_, kimchi, _, sikhye] = shop.products;
    assert_eq!(
        categories,
        vec![
            (
                ProductCategory::SubMenu as i32,
                6000,
                vec![(kimchi, 12, 6000)]
            ),
            (ProductCategory::Drink as i32, 1500, vec![(sikhye, 5, 1500)]),
        ]
    );
    let fees: Vec<(i32, i64, i64)> = detail
        .card_fees
        .iter()
        .map(|f| (f.card_company, f.amount, f.fee))
        .collect();
    assert_eq!(fees, vec![(CardCompany::H as i32, 3900, 23)]);
    let detail_revenue: i64 = detail.categories.iter().map(|c| c.sale_amount).sum();
    let detail_fee: i64 = detail.card_fees.iter().map(|f| f.fee).sum();
    assert_eq!(
        (detail_revenue, detail_fee),
        (settlement.revenue, settlement.fee)
    );

    let top = api
        .get_product_sales(pb::GetProductSalesRequest {
            term: Term::Day as i32,
            start_date: "2024-12-01".into(),
            criteria: SalesCriteria::Amount as i32,
            ..Default::default()
        })
        .await
        .expect("top products")
        .into_inner()
        .items;
    let ranked: Vec<(String, i64, i64)> = top
        .iter()
        .map(|p| (p.product_name.clone(), p.sale_count, p.sale_amount))
        .collect();
    assert_eq!(
        ranked,
        vec![("Kimchi".into(), 12, 6000), ("Sikhye".into(), 5, 1500)]
    );
    let drinks = api
        .get_product_sales(pb::GetProductSalesRequest {
            term: Term::Day as i32,
            start_date: "2024-12-01".into(),
            category: ProductCategory::Drink as i32,
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("top drinks")
        .into_inner()
        .items;
    assert_eq!(drinks.len(), 1);
    assert_eq!(drinks[0].product_id, sikhye);

    // The day is listed, and the day after (nothing paid) is not aggregated yet.
    let listed = api
        .list_settlements(pb::ListSettlementsRequest {
            term: Term::Day as i32,
            from_date: "2024-11-30".into(),
            to_date: "2024-12-02".into(),
        })
        .await
        .expect("list")
        .into_inner()
        .settlements;
    assert_eq!(listed, vec![settlement]);

    // An operator's run of the whole window gives the same figures.
    operator(&stack)
        .run_aggregation(day_run("2024-12-01"))
        .await
        .expect("an operator's run");
    let again = api
        .get_settlement(settlement_of("2024-12-01"))
        .await
        .expect("settlement")
        .into_inner()
        .settlement
        .expect("settlement");
    assert_eq!((again.revenue, again.fee, again.trade_count), (7500, 23, 2));
    stack.stop().await;
}

async fn owners_see_and_recompute_only_their_own_store(engine: Engine) {
    let (stack, _clock) = stack_on_the_first(engine).await;
    let first = reference_store(&stack, "first@example.com").await;
    let second = reference_store(&stack, "second@example.com").await;
    the_reference_day(&stack, &first).await;
    let mut first_api = settlements(&stack, &first.owner);
    let mut second_api = settlements(&stack, &second.owner);

    // The first owner's run covers their store only.
    let run = first_api
        .run_aggregation(day_run("2024-12-01"))
        .await
        .expect("run")
        .into_inner()
        .run
        .expect("record");
    assert_error(
        second_api.get_settlement(settlement_of("2024-12-01")).await,
        Code::NotFound,
        "NOT_AGGREGATED",
    );
    // The second owner does not see the first's own run.
    let seen = second_api
        .list_aggregation_runs(pb::ListAggregationRunsRequest::default())
        .await
        .expect("runs")
        .into_inner()
        .runs;
    assert!(seen.iter().all(|r| r.id != run.id), "{seen:?}");
    let mine = first_api
        .list_aggregation_runs(pb::ListAggregationRunsRequest::default())
        .await
        .expect("runs")
        .into_inner()
        .runs;
    assert_eq!(mine.first().map(|r| r.id), Some(run.id));

    // The second owner's run gives them a zero row and leaves the first's alone.
    second_api
        .run_aggregation(day_run("2024-12-01"))
        .await
        .expect("run");
    let zero = second_api
        .get_settlement(settlement_of("2024-12-01"))
        .await
        .expect("a zero row once aggregated")
        .into_inner()
        .settlement
        .expect("settlement");
    assert_eq!((zero.revenue, zero.fee, zero.trade_count), (0, 0, 0));
    let kept = first_api
        .get_settlement(settlement_of("2024-12-01"))
        .await
        .expect("settlement")
        .into_inner()
        .settlement
        .expect("settlement");
    assert_eq!(kept.revenue, 7500);

    // Tablets and callers without a token are turned away at the edge.
    let mut tablet = settlements(&stack, &first.tablets[0].1);
    assert_error(
        tablet.get_settlement(settlement_of("2024-12-01")).await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );
    assert_error(
        tablet.run_aggregation(day_run("2024-12-01")).await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );
    let mut anonymous = SettlementServiceClient::new(stack.channel());
    assert_error(
        anonymous.get_settlement(settlement_of("2024-12-01")).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
    );

    // An operator sees every run, the owners' included.
    let everything = operator(&stack)
        .list_aggregation_runs(pb::ListAggregationRunsRequest {
            job: pb::AggregationJob::Settlement as i32,
            term: Term::Day as i32,
            page: Some(pb::PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
        })
        .await
        .expect("runs")
        .into_inner();
    assert_eq!(everything.runs.len(), 1);
    let next = operator(&stack)
        .list_aggregation_runs(pb::ListAggregationRunsRequest {
            page: Some(pb::PageRequest {
                page_size: 10,
                page_token: everything.next_page_token,
            }),
            ..Default::default()
        })
        .await
        .expect("next page")
        .into_inner()
        .runs;
    assert!(next.iter().any(|r| r.id == run.id), "{next:?}");

    // Another role's service token is not an operator's.
    assert_error(
        service(&stack, "trade")
            .run_aggregation(day_run("2024-12-01"))
            .await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );
    // An owner sees an operator's run of every store, but not its row counts (other
    // stores' rows), nor why it failed.
    let everyone = operator(&stack)
        .run_aggregation(day_run("2024-12-01"))
        .await
        .expect("an operator's run")
        .into_inner()
        .run
        .expect("record");
    assert!(everyone.rows_written > 0);
    let seen = first_api
        .list_aggregation_runs(pb::ListAggregationRunsRequest::default())
        .await
        .expect("runs")
        .into_inner()
        .runs;
    let theirs = seen
        .iter()
        .find(|r| r.id == everyone.id)
        .expect("the run covered the store");
    assert_eq!((theirs.rows_read, theirs.rows_written), (0, 0));
    stack.stop().await;
}
