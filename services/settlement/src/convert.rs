//! Aggregates and run records as the API shows them, and the API's enums as the batch
//! reads them.

use pos_common::{
    aggregation::{Job, Term},
    domain::CardCompany,
    time::to_timestamp,
};
use pos_proto::v1 as pb;
use pos_settlement_storage::{
    AggregationRun, CardFees, ProductSales, RunStatus, Settlement, SettlementDetail,
};

pub fn term(term: Term) -> pb::Term {
    match term {
        Term::Day => pb::Term::Day,
        Term::Week => pb::Term::Week,
        Term::Month => pb::Term::Month,
    }
}

pub fn job(job: Job) -> pb::AggregationJob {
    match job {
        Job::ProductSales => pb::AggregationJob::ProductSales,
        Job::Settlement => pb::AggregationJob::Settlement,
    }
}

/// The term a request names; `None` when unspecified or unknown.
pub fn term_of(raw: i32) -> Option<Term> {
    match pb::Term::try_from(raw) {
        Ok(pb::Term::Day) => Some(Term::Day),
        Ok(pb::Term::Week) => Some(Term::Week),
        Ok(pb::Term::Month) => Some(Term::Month),
        _ => None,
    }
}

/// The job a request names; `None` when unspecified or unknown.
pub fn job_of(raw: i32) -> Option<Job> {
    match pb::AggregationJob::try_from(raw) {
        Ok(pb::AggregationJob::ProductSales) => Some(Job::ProductSales),
        Ok(pb::AggregationJob::Settlement) => Some(Job::Settlement),
        _ => None,
    }
}

fn company(company: CardCompany) -> pb::CardCompany {
    match company {
        CardCompany::K => pb::CardCompany::K,
        CardCompany::H => pb::CardCompany::H,
        CardCompany::S => pb::CardCompany::S,
    }
}

pub fn product_sales(sales: ProductSales, of: Term, start: chrono::NaiveDate) -> pb::ProductSales {
    pb::ProductSales {
        product_id: sales.product_id,
        store_id: sales.store_id.get(),
        product_name: sales.product_name,
        category: sales.category.to_proto().into(),
        term: term(of).into(),
        start_date: start.to_string(),
        sale_count: sales.sale_count,
        sale_amount: sales.sale_amount,
    }
}

pub fn settlement(settlement: &Settlement) -> pb::Settlement {
    pb::Settlement {
        store_id: settlement.store_id.get(),
        term: term(settlement.term).into(),
        start_date: settlement.window.start.to_string(),
        end_date: settlement.window.end.to_string(),
        revenue: settlement.revenue,
        fee: settlement.fee,
        operating_profit: settlement.operating_profit(),
        trade_count: settlement.trade_count,
    }
}

fn card_fee(fees: CardFees) -> pb::CardCompanyFee {
    pb::CardCompanyFee {
        card_company: company(fees.card_company).into(),
        payment_count: fees.payment_count,
        amount: fees.amount,
        fee: fees.fee,
    }
}

/// A settlement with its products grouped by category (in the storage's order: by
/// category, then amount) and its card companies.
pub fn detail(detail: SettlementDetail) -> pb::GetSettlementDetailResponse {
    let SettlementDetail {
        settlement: summary,
        products,
        card_fees,
    } = detail;
    let mut categories: Vec<pb::CategorySales> = Vec::new();
    for sales in products {
        let category = sales.category.to_proto() as i32;
        let (count, amount) = (sales.sale_count, sales.sale_amount);
        let product = product_sales(sales, summary.term, summary.window.start);
        match categories.last_mut() {
            Some(last) if last.category == category => {
                last.sale_count = last.sale_count.saturating_add(count);
                last.sale_amount = last.sale_amount.saturating_add(amount);
                last.products.push(product);
            }
            _ => categories.push(pb::CategorySales {
                category,
                sale_count: count,
                sale_amount: amount,
                products: vec![product],
            }),
        }
    }
    pb::GetSettlementDetailResponse {
        settlement: Some(settlement(&summary)),
        categories,
        card_fees: card_fees.into_iter().map(card_fee).collect(),
    }
}

fn status(status: RunStatus) -> pb::AggregationRunStatus {
    match status {
        RunStatus::Running => pb::AggregationRunStatus::Running,
        RunStatus::Succeeded => pb::AggregationRunStatus::Succeeded,
        RunStatus::Failed => pb::AggregationRunStatus::Failed,
    }
}

/// A run record, in full for operators. An owner sees whether a run failed but not why
/// (its causes may name the database), and row counts only of the runs of their own
/// store: a run of every store counts other stores' rows.
pub fn run(run: AggregationRun, full_error: bool) -> pb::AggregationRun {
    let counts_shown = full_error || run.scope.store.is_some();
    let shown = |count: u64| {
        if counts_shown {
            i64::try_from(count).unwrap_or(i64::MAX)
        } else {
            0
        }
    };
    let (rows_read, rows_written) = (shown(run.rows_read), shown(run.rows_written));
    let error = match (run.error, full_error) {
        (Some(error), true) => error,
        (Some(_), false) => "the run failed; operators can see why in the run history".into(),
        (None, _) => String::new(),
    };
    pb::AggregationRun {
        id: run.id.0,
        job: job(run.job).into(),
        term: term(run.term).into(),
        window_start: run.window.start.to_string(),
        window_end: run.window.end.to_string(),
        shard_index: i32::try_from(run.scope.shard_index).unwrap_or(i32::MAX),
        shard_count: i32::try_from(run.scope.shard_count).unwrap_or(i32::MAX),
        status: status(run.status).into(),
        rows_read,
        rows_written,
        started_at: Some(to_timestamp(run.started_at)),
        finished_at: run.finished_at.map(to_timestamp),
        error,
    }
}
