//! Bad requests to SettlementService are refused naming the field, and change nothing.

use pos_proto::v1::{self as pb, Term};
use tonic::{Code, Status};

use super::{day_run, reference_store, settlements, stack_on_the_first};
use crate::support::{Engine, assert_error, violated_fields};

crate::on_both_engines!(bad_requests_name_the_field);

#[track_caller]
fn invalid(result: Result<impl std::fmt::Debug, Status>, field: &str) {
    let status = assert_error(result, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(
        violated_fields(&status).iter().any(|f| f == field),
        "expected a violation of {field}: {status:?}"
    );
}

async fn bad_requests_name_the_field(engine: Engine) {
    let (stack, _clock) = stack_on_the_first(engine).await;
    let shop = reference_store(&stack, "fields@example.com").await;
    let mut api = settlements(&stack, &shop.owner);
    let sales = |term: Term, start: &str| pb::GetProductSalesRequest {
        term: term as i32,
        start_date: start.into(),
        ..Default::default()
    };
    invalid(
        api.get_product_sales(sales(Term::Unspecified, "2024-12-01"))
            .await,
        "term",
    );
    invalid(
        api.get_product_sales(sales(Term::Day, "2024-13-01")).await,
        "start_date",
    );
    invalid(
        api.get_product_sales(sales(Term::Day, "")).await,
        "start_date",
    );
    // 2024-12-03 is a Tuesday; months start on the 1st.
    invalid(
        api.get_product_sales(sales(Term::Week, "2024-12-03")).await,
        "start_date",
    );
    invalid(
        api.get_product_sales(sales(Term::Month, "2024-12-02"))
            .await,
        "start_date",
    );
    for limit in [-1, 101] {
        invalid(
            api.get_product_sales(pb::GetProductSalesRequest {
                limit,
                ..sales(Term::Day, "2024-12-01")
            })
            .await,
            "limit",
        );
    }
    invalid(
        api.get_product_sales(pb::GetProductSalesRequest {
            criteria: 9,
            ..sales(Term::Day, "2024-12-01")
        })
        .await,
        "criteria",
    );
    invalid(
        api.get_product_sales(pb::GetProductSalesRequest {
            category: 9,
            ..sales(Term::Day, "2024-12-01")
        })
        .await,
        "category",
    );
    // Settlements are daily or monthly, and a month starts on a settlement day.
    invalid(
        api.get_settlement(pb::GetSettlementRequest {
            term: Term::Week as i32,
            start_date: "2024-12-02".into(),
        })
        .await,
        "term",
    );
    invalid(
        api.get_settlement_detail(pb::GetSettlementDetailRequest {
            term: Term::Month as i32,
            start_date: "2024-12-03".into(),
        })
        .await,
        "start_date",
    );
    invalid(
        api.list_settlements(pb::ListSettlementsRequest {
            term: Term::Day as i32,
            from_date: "2024-12-05".into(),
            to_date: "2024-12-01".into(),
        })
        .await,
        "to_date",
    );
    invalid(
        api.run_aggregation(pb::RunAggregationRequest {
            job: pb::AggregationJob::Unspecified as i32,
            ..day_run("2024-12-01")
        })
        .await,
        "job",
    );
    invalid(
        api.run_aggregation(pb::RunAggregationRequest {
            term: Term::Week as i32,
            ..day_run("2024-12-01")
        })
        .await,
        "term",
    );
    invalid(api.run_aggregation(day_run("yesterday")).await, "date");
    invalid(api.run_aggregation(day_run("2024-02-30")).await, "date");
    // The stack's clock says 2024-12-01: the 2nd has not begun in Seoul.
    invalid(api.run_aggregation(day_run("2024-12-02")).await, "date");
    invalid(
        api.list_aggregation_runs(pb::ListAggregationRunsRequest {
            page: Some(pb::PageRequest {
                page_size: 10,
                page_token: "not-a-token".into(),
            }),
            ..Default::default()
        })
        .await,
        "page.page_token",
    );
    // Nothing was run by any of that.
    let runs = api
        .list_aggregation_runs(pb::ListAggregationRunsRequest::default())
        .await
        .expect("runs")
        .into_inner()
        .runs;
    assert!(runs.is_empty(), "{runs:?}");
    stack.stop().await;
}
