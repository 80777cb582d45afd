//! `SettlementService`: what the batch aggregated, for an owner's own store, and the
//! aggregation runs — listed, and run on demand. An owner reads and recomputes only their
//! store; a caller with a service token (an operator) sees every run and recomputes whole
//! windows. A window that was not aggregated is `NOT_FOUND NOT_AGGREGATED`, never a row of
//! zeros.

use std::sync::Arc;

use chrono::NaiveDate;
use pos_batch::{Batch, Method, PlanError, RunError, TimeZone, windows};
use pos_common::{
    ApiError, ApiResult, Reason,
    aggregation::{Job, Term},
    auth::Principal,
    clock::SharedClock,
    domain::{Category, Invalid, StoreId},
    error::{FieldViolation, Violations},
};
use pos_proto::v1::{self as pb, settlement_service_server::SettlementService};
use pos_settlement_storage::{Ranking, RunFilter, RunId, RunScope, SettlementStorage};
use tonic::{Request, Response, Status};

use crate::convert;

type RpcResult<T> = Result<Response<T>, Status>;

/// Top products when a request asks for 0.
const DEFAULT_TOP: u32 = 5;
const MAX_TOP: u32 = 100;
/// Runs per page when a request asks for 0, and at most.
const DEFAULT_RUNS_PAGE: u32 = 20;
const MAX_RUNS_PAGE: u32 = 100;
/// The longest range of window starts ListSettlements answers at once, in days: 400 for
/// DAY settlements, ten years for MONTH ones.
const MAX_DAYS_OF_DAYS: i64 = 400;
const MAX_DAYS_OF_MONTHS: i64 = 10 * 366;
/// The subject of an operator's service token: the only service token that sees every
/// run and runs whole windows (other roles' tokens have no business here).
pub const OPERATOR: &str = "operator";

pub struct SettlementApi {
    storage: Arc<dyn SettlementStorage>,
    batch: Batch,
    zone: TimeZone,
    clock: SharedClock,
}

impl SettlementApi {
    pub fn new(
        storage: Arc<dyn SettlementStorage>,
        batch: Batch,
        zone: TimeZone,
        clock: SharedClock,
    ) -> Self {
        Self {
            storage,
            batch,
            zone,
            clock,
        }
    }
}

/// Who is asking: an owner, for their store, or an operator (a service token).
enum Caller {
    Owner(StoreId),
    Operator,
}

fn owner_store(principal: &Principal) -> ApiResult<StoreId> {
    let (_, store) = principal.require_owner()?;
    store.ok_or_else(|| {
        ApiError::new(
            Reason::StoreNotFound,
            "this owner has no store yet; finish signing up",
        )
    })
}

fn caller(principal: &Principal) -> ApiResult<Caller> {
    match principal {
        Principal::Service { .. } => principal
            .require_service(&[OPERATOR])
            .map(|()| Caller::Operator),
        other => owner_store(other).map(Caller::Owner),
    }
}

fn date(raw: &str) -> Result<NaiveDate, Invalid> {
    if raw.is_empty() {
        return Err(Invalid::new("required: an ISO date, YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| Invalid::new("must be an ISO date, YYYY-MM-DD"))
}

fn term_for(job: Job, raw: i32) -> Result<Term, Invalid> {
    let term = convert::term_of(raw).ok_or_else(|| Invalid::new("must be DAY, WEEK or MONTH"))?;
    if job.terms().contains(&term) {
        Ok(term)
    } else {
        Err(Invalid::new("settlements are kept by DAY or MONTH"))
    }
}

/// The start of a window of `job` over `term`: a Monday for a week, the 1st for a month
/// of product sales, a settlement day for a month of settlements.
fn window_start(job: Job, term: Term, start: NaiveDate) -> Result<NaiveDate, Invalid> {
    use chrono::Datelike;
    windows::starting(job, term, start, start.day())
        .map(|window| window.start)
        .map_err(|why| Invalid::new(why.to_string()))
}

/// The term and start date of a read, checked together.
fn read_window(
    job: Job,
    raw_term: i32,
    raw_start: &str,
    violations: &mut Violations,
) -> Option<(Term, NaiveDate)> {
    let term = violations.check("term", term_for(job, raw_term));
    let start = violations.check("start_date", date(raw_start));
    let (term, start) = (term?, start?);
    violations
        .check("start_date", window_start(job, term, start))
        .map(|start| (term, start))
}

fn not_aggregated(what: &str, term: Term, start: NaiveDate) -> ApiError {
    ApiError::new(
        Reason::NotAggregated,
        format!(
            "{what} of the {} starting {start} are not aggregated for your store yet: \
             the batch runs shortly after the window ends, or ask for a run with RunAggregation",
            term.as_str()
        ),
    )
    .with_metadata("term", term.as_str())
    .with_metadata("start_date", start)
}

fn invalid_date(why: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_fields(vec![FieldViolation {
        field: "date".into(),
        description: why.to_string(),
    }])
}

/// What a failed on-demand run means for its caller.
fn run_failed(err: RunError) -> ApiError {
    match err {
        RunError::Busy { holder, until, .. } => ApiError::new(
            Reason::WindowBusy,
            format!(
                "another run ({}) is aggregating this window; try again once it is done",
                holder.0
            ),
        )
        .with_metadata("holder_run", holder.0)
        .with_metadata("lease_until", until.to_rfc3339()),
        RunError::LeaseLost(_) => ApiError::new(
            Reason::WindowBusy,
            "another run took this window over; its results stand",
        ),
        RunError::Window(why) => invalid_date(why),
        other => ApiError::internal(other),
    }
}

fn plan_failed(err: PlanError) -> ApiError {
    match err {
        PlanError::Window(why) => invalid_date(why),
        PlanError::BackwardRange { .. } => ApiError::internal(err),
        PlanError::UnknownStore(store) => ApiError::new(
            Reason::StoreNotFound,
            format!("store {store} is not known to the store service"),
        ),
        PlanError::Directory(cause) => ApiError::unavailable("the store service", cause),
    }
}

#[tonic::async_trait]
impl SettlementService for SettlementApi {
    async fn get_product_sales(
        &self,
        request: Request<pb::GetProductSalesRequest>,
    ) -> RpcResult<pb::GetProductSalesResponse> {
        let store = owner_store(Principal::of(&request)?)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let window = read_window(
            Job::ProductSales,
            body.term,
            &body.start_date,
            &mut violations,
        );
        let category = violations.check("category", Category::parse_filter(body.category));
        let ranking = violations.check(
            "criteria",
            match pb::SalesCriteria::try_from(body.criteria) {
                Ok(pb::SalesCriteria::Unspecified | pb::SalesCriteria::Count) => Ok(Ranking::Count),
                Ok(pb::SalesCriteria::Amount) => Ok(Ranking::Amount),
                Err(_) => Err(Invalid::new("must be COUNT or AMOUNT")),
            },
        );
        let limit = violations.check(
            "limit",
            match u32::try_from(body.limit) {
                Ok(0) => Ok(DEFAULT_TOP),
                Ok(n) if n <= MAX_TOP => Ok(n),
                _ => Err(Invalid::new(format!(
                    "must be between 1 and {MAX_TOP} (0 for {DEFAULT_TOP})"
                ))),
            },
        );
        let ((term, start), category, ranking, limit) =
            violations.finish(|| Some((window?, category?, ranking?, limit?)))?;
        let items = self
            .storage
            .top_products(store, term, start, category, ranking, limit)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| not_aggregated("Product sales", term, start))?;
        Ok(Response::new(pb::GetProductSalesResponse {
            items: items
                .into_iter()
                .map(|sales| convert::product_sales(sales, term, start))
                .collect(),
        }))
    }

    async fn get_settlement(
        &self,
        request: Request<pb::GetSettlementRequest>,
    ) -> RpcResult<pb::GetSettlementResponse> {
        let store = owner_store(Principal::of(&request)?)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let window = read_window(
            Job::Settlement,
            body.term,
            &body.start_date,
            &mut violations,
        );
        let (term, start) = violations.finish(|| window)?;
        let settlement = self
            .storage
            .settlement(store, term, start)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| not_aggregated("Settlements", term, start))?;
        Ok(Response::new(pb::GetSettlementResponse {
            settlement: Some(convert::settlement(&settlement)),
        }))
    }

    async fn list_settlements(
        &self,
        request: Request<pb::ListSettlementsRequest>,
    ) -> RpcResult<pb::ListSettlementsResponse> {
        let store = owner_store(Principal::of(&request)?)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let term = violations.check("term", term_for(Job::Settlement, body.term));
        let from = violations.check("from_date", date(&body.from_date));
        let to = violations.check("to_date", date(&body.to_date));
        if let (Some(term), Some(from), Some(to)) = (term, from, to) {
            let longest = match term {
                Term::Month => MAX_DAYS_OF_MONTHS,
                _ => MAX_DAYS_OF_DAYS,
            };
            if to < from {
                violations.add("to_date", "must not be before from_date");
            } else if (to - from).num_days() > longest {
                violations.add(
                    "to_date",
                    format!("at most {longest} days after from_date; ask for less at once"),
                );
            }
        }
        let (term, from, to) = violations.finish(|| Some((term?, from?, to?)))?;
        let settlements = self
            .storage
            .settlements(store, term, from, to)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ListSettlementsResponse {
            settlements: settlements.iter().map(convert::settlement).collect(),
        }))
    }

    async fn get_settlement_detail(
        &self,
        request: Request<pb::GetSettlementDetailRequest>,
    ) -> RpcResult<pb::GetSettlementDetailResponse> {
        let store = owner_store(Principal::of(&request)?)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let window = read_window(
            Job::Settlement,
            body.term,
            &body.start_date,
            &mut violations,
        );
        let (term, start) = violations.finish(|| window)?;
        let detail = self
            .storage
            .settlement_detail(store, term, start)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| not_aggregated("Settlements", term, start))?;
        Ok(Response::new(convert::detail(detail)))
    }

    async fn list_aggregation_runs(
        &self,
        request: Request<pb::ListAggregationRunsRequest>,
    ) -> RpcResult<pb::ListAggregationRunsResponse> {
        let caller = caller(Principal::of(&request)?)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let job = violations.check(
            "job",
            if body.job == pb::AggregationJob::Unspecified as i32 {
                Ok(None)
            } else {
                convert::job_of(body.job)
                    .map(Some)
                    .ok_or_else(|| Invalid::new("must be PRODUCT_SALES or SETTLEMENT"))
            },
        );
        let term = violations.check(
            "term",
            if body.term == pb::Term::Unspecified as i32 {
                Ok(None)
            } else {
                convert::term_of(body.term)
                    .map(Some)
                    .ok_or_else(|| Invalid::new("must be DAY, WEEK or MONTH"))
            },
        );
        let page = body.page.clone().unwrap_or_default();
        let limit = violations.check(
            "page.page_size",
            match u32::try_from(page.page_size) {
                Ok(0) => Ok(DEFAULT_RUNS_PAGE),
                Ok(n) if n <= MAX_RUNS_PAGE => Ok(n),
                _ => Err(Invalid::new(format!(
                    "must be between 0 and {MAX_RUNS_PAGE}"
                ))),
            },
        );
        let before = violations.check(
            "page.page_token",
            if page.page_token.is_empty() {
                Ok(None)
            } else {
                page.page_token
                    .parse::<i64>()
                    .ok()
                    .filter(|id| *id > 0)
                    .map(|id| Some(RunId(id)))
                    .ok_or_else(|| Invalid::new("not a token from a previous page"))
            },
        );
        let (job, term, limit, before) =
            violations.finish(|| Some((job?, term?, limit?, before?)))?;
        let (store, full_errors) = match caller {
            Caller::Owner(store) => (Some(store), false),
            Caller::Operator => (None, true),
        };
        let runs = self
            .storage
            .runs(&RunFilter {
                store,
                job,
                term,
                before,
                limit,
            })
            .await
            .map_err(ApiError::from)?;
        let next_page_token = match runs.last() {
            Some(last) if runs.len() == limit as usize => last.id.0.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListAggregationRunsResponse {
            runs: runs
                .into_iter()
                .map(|run| convert::run(run, full_errors))
                .collect(),
            next_page_token,
        }))
    }

    async fn run_aggregation(
        &self,
        request: Request<pb::RunAggregationRequest>,
    ) -> RpcResult<pb::RunAggregationResponse> {
        let caller = caller(Principal::of(&request)?)?;
        let body = request.get_ref();
        let mut violations = Violations::new();
        let job = violations.check(
            "job",
            convert::job_of(body.job)
                .ok_or_else(|| Invalid::new("must be PRODUCT_SALES or SETTLEMENT")),
        );
        let term = job.and_then(|job| violations.check("term", term_for(job, body.term)));
        // No date: today in the stores' zone (what a person trying it out means). A
        // later day has nothing paid yet: aggregating it would store zeros that read as
        // figures.
        let today = self.zone.date_of(self.clock.now());
        let date = if body.date.is_empty() {
            Some(today)
        } else {
            violations.check(
                "date",
                date(&body.date).and_then(|date| {
                    if date > today {
                        Err(Invalid::new(format!(
                            "must not be after today ({today} in {})",
                            self.zone
                        )))
                    } else {
                        Ok(date)
                    }
                }),
            )
        };
        let (job, term, date) = violations.finish(|| Some((job?, term?, date?)))?;
        let (scope, full_errors) = match caller {
            Caller::Owner(store) => (
                RunScope {
                    store: Some(store),
                    ..RunScope::ALL
                },
                false,
            ),
            Caller::Operator => (RunScope::ALL, true),
        };
        // On demand means now: from the paid trades, not from DAY rows that may predate
        // late payments.
        let method = Method {
            verify: false,
            from_raw: true,
        };
        let outcomes = self
            .batch
            .containing(job, term, date, scope, method)
            .await
            .map_err(plan_failed)?;
        let mut last = None;
        for outcome in outcomes {
            last = Some(outcome.result.map_err(run_failed)?.run);
        }
        let run = last.ok_or_else(|| ApiError::internal("no window holds the date"))?;
        let record = self
            .storage
            .runs(&RunFilter {
                before: Some(RunId(run.0.saturating_add(1))),
                ..RunFilter::latest(1)
            })
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .find(|record| record.id == run)
            .ok_or_else(|| ApiError::internal("the run's record is gone"))?;
        Ok(Response::new(pb::RunAggregationResponse {
            run: Some(convert::run(record, full_errors)),
        }))
    }
}
