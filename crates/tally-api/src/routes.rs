//! The JSON API under `/api/v1`. Every handler reads precomputed results;
//! only `POST /allocations/{month}` runs the allocation.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tally_domain::{AllocationFailure, AllocationOutcome, CostSource, Currency, Explanation, JobRun, Money, Month, RevenueEntry, Tenant, TenantId};
use tally_reports::burn::{BurnReport, burn};
use tally_reports::costs::{CostGroup, Dimension, Measure, order, parse_dimensions};
use tally_reports::focus::{FocusCsv, FocusParquet};
use tally_reports::reconciliation::{Reconciliation, reconcile};
use tally_reports::tenant::{PoolServiceCost, TenantReport, UsageSums, tenant_report};
use tally_storage::{AllocationFilter, CostDim, CostQuery, DailyBy, DailyQuery, NewCashBalance};
use utoipa::{IntoParams, ToSchema};

use crate::ApiState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{Params, Span};

/// Query parameters shared by the reports.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "declares the query for the OpenAPI document; handlers parse it with Params")]
pub struct SpanQuery {
    /// A month, `YYYY-MM`; exclusive with `from`/`to`.
    pub month: Option<String>,
    /// First month (`YYYY-MM`) or day (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Last month (`YYYY-MM`, inclusive) or day (`YYYY-MM-DD`, exclusive).
    pub to: Option<String>,
}

/// The span, and the cost measure of margins and unit costs.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "declares the query for the OpenAPI document; handlers parse it with Params")]
pub struct TenantQuery {
    /// A month, `YYYY-MM`; exclusive with `from`/`to`.
    pub month: Option<String>,
    /// First month (`YYYY-MM`) or day (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Last month (`YYYY-MM`, inclusive) or day (`YYYY-MM-DD`, exclusive).
    pub to: Option<String>,
    /// `amortized` (default: commitment fees spread over the usage they
    /// covered) or `unblended` (as invoiced) for the cost, margin,
    /// breakdowns and unit costs.
    pub measure: Option<String>,
}

/// The latest month holding an allocation, else the current month.
pub(crate) async fn default_month(state: &ApiState) -> ApiResult<Month> {
    let runs = state.store.allocation_runs().await?;
    Ok(runs.last().map(|r| r.month).unwrap_or_else(|| Month::of(state.clock.now())))
}

/// Costs grouped by dimensions.
#[derive(Debug, Serialize, ToSchema)]
pub struct CostsResponse {
    #[schema(value_type = String)]
    pub from: Month,
    #[schema(value_type = String)]
    pub to: Month,
    pub currency: String,
    pub measure: Measure,
    pub group_by: Vec<String>,
    pub groups: Vec<CostGroup>,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub total: Decimal,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "declares the query for the OpenAPI document; handlers parse it with Params")]
pub struct CostsQuery {
    /// Comma-separated dimensions: tenant, service, pool, day, month (default
    /// tenant). Each counts once however often it is repeated; the whole
    /// query string is at most 2,048 characters.
    #[param(max_length = 2048)]
    pub group_by: Option<String>,
    /// `unblended` (default, as invoiced) or `amortized`.
    pub measure: Option<String>,
    /// Only this tenant (or `__idle__`, `__shared__`, `__unallocated__`).
    pub tenant: Option<String>,
    pub service: Option<String>,
    pub pool: Option<String>,
    pub month: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Costs grouped by any of tenant, service, pool, day and month.
#[utoipa::path(get, path = "/api/v1/costs", tag = "reports", params(CostsQuery),
    responses((status = 200, body = CostsResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn costs(State(state): State<ApiState>, who: Principal, q: Params) -> ApiResult<Json<CostsResponse>> {
    q.only(&["group_by", "measure", "tenant", "service", "pool", "month", "from", "to"])?;
    let span = q.span(default_month(&state).await?)?;
    let dims = parse_dimensions(q.get("group_by").unwrap_or("tenant")).map_err(|e| ApiError::bad_parameter("group_by", e))?;
    let measure = q.measure(Measure::Unblended)?;
    let tenant = match (q.get("tenant"), &who.tenant) {
        (Some(t), _) if !who.may_see(t) => return Err(ApiError::NotFound(format!("no tenant {t}"))),
        (Some(t), _) => Some(t.to_owned()),
        (None, Some(own)) => Some(own.to_string()),
        (None, None) => None,
    };
    let (service, pool) = (q.get("service").map(str::to_owned), q.get("pool").map(str::to_owned));
    let daily = dims.contains(&Dimension::Day) || span.from_day.is_some() || span.to_day.is_some();
    let rows = if daily {
        let by = match (dims.contains(&Dimension::Tenant), dims.contains(&Dimension::Service), dims.contains(&Dimension::Pool) || pool.is_some()) {
            (_, _, true) => {
                return Err(ApiError::bad_parameter(if pool.is_some() { "pool" } else { "group_by" }, "costs by pool are kept per month, not per day"));
            }
            (true, true, _) => {
                return Err(ApiError::bad_parameter(
                    "group_by",
                    "daily costs are kept per tenant and per service: group by day with tenant, or day with service",
                ));
            }
            (true, false, _) => Some(DailyBy::Allocatee),
            (false, true, _) => Some(DailyBy::Service),
            (false, false, _) => None,
        };
        if by == Some(DailyBy::Service) && tenant.is_some()
            || by == Some(DailyBy::Allocatee) && service.is_some()
            || by.is_none() && tenant.is_some() && service.is_some()
        {
            return Err(ApiError::bad_parameter(
                if who.tenant.is_some() { "group_by" } else { "service" },
                "daily costs are kept per tenant and per service: a tenant's daily cost of one service is not kept (ask per month)",
            ));
        }
        let query = DailyQuery {
            from: span.from_day.unwrap_or(span.from.first_day()),
            to: span.to_day.unwrap_or(span.to.next().first_day()),
            by,
            allocatee: tenant,
            service,
            per_day: dims.contains(&Dimension::Day),
        };
        state.store.daily_costs(&query).await?
    } else {
        let query = CostQuery {
            from: span.from,
            to: span.to,
            dims: dims
                .iter()
                .filter_map(|d| match d {
                    Dimension::Month => Some(CostDim::Month),
                    Dimension::Tenant => Some(CostDim::Allocatee),
                    Dimension::Pool => Some(CostDim::Pool),
                    Dimension::Service => Some(CostDim::Service),
                    Dimension::Day => None,
                })
                .collect(),
            allocatee: tenant,
            pool,
            service,
        };
        state.store.monthly_costs(&query).await?
    };
    let mut groups: Vec<CostGroup> = rows
        .into_iter()
        .map(|r| {
            let key = dims
                .iter()
                .map(|d| {
                    let v = match d {
                        Dimension::Tenant => r.allocatee.clone(),
                        Dimension::Service => r.service.clone(),
                        Dimension::Pool => r.pool.clone(),
                        Dimension::Day => r.day.map(|d| d.to_string()),
                        Dimension::Month => r.month.map(|m| m.to_string()),
                    };
                    (d.as_str().to_owned(), v.unwrap_or_default())
                })
                .collect();
            CostGroup { key, cost: measure.pick(r.unblended, r.amortized) }
        })
        .collect();
    order(&mut groups, &dims);
    let total = groups.iter().map(|g| g.cost).sum();
    Ok(Json(CostsResponse {
        from: span.from,
        to: span.to,
        currency: state.config.currency.to_string(),
        measure,
        group_by: dims.iter().map(|d| d.as_str().to_owned()).collect(),
        groups,
        total,
    }))
}

/// Each tenant's usage per month and metric over the span (one tenant, or all).
pub(crate) async fn usage_sums(state: &ApiState, span: &Span, tenant: Option<&TenantId>) -> ApiResult<BTreeMap<TenantId, UsageSums>> {
    let mut out: BTreeMap<TenantId, UsageSums> = BTreeMap::new();
    for u in state.store.usage_totals(span.from, span.to, tenant).await? {
        out.entry(u.tenant).or_default().insert((u.month, u.metric), u.value);
    }
    Ok(out)
}

/// vCPU-hours allocated to each tenant's pods over the span (the EKS pool's driver).
pub(crate) async fn vcpu_hours(state: &ApiState, span: &Span, tenant: Option<&TenantId>) -> ApiResult<BTreeMap<String, f64>> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (_, allocatee, q) in state.store.pool_quantities(span.from, span.to, "eks_compute", tenant.map(TenantId::as_str)).await? {
        *out.entry(allocatee).or_default() += q;
    }
    Ok(out)
}

/// Each allocatee's costs per pool and service over the span, summed by the database.
pub(crate) async fn pool_service_costs(state: &ApiState, span: &Span, tenant: Option<&TenantId>) -> ApiResult<BTreeMap<String, Vec<PoolServiceCost>>> {
    let query = CostQuery {
        from: span.from,
        to: span.to,
        dims: vec![CostDim::Allocatee, CostDim::Pool, CostDim::Service],
        allocatee: tenant.map(TenantId::to_string),
        pool: None,
        service: None,
    };
    let mut out: BTreeMap<String, Vec<PoolServiceCost>> = BTreeMap::new();
    for r in state.store.monthly_costs(&query).await? {
        out.entry(r.allocatee.unwrap_or_default()).or_default().push(PoolServiceCost {
            pool: r.pool.unwrap_or_default(),
            service: r.service.unwrap_or_default(),
            unblended: r.unblended,
            amortized: r.amortized,
        });
    }
    Ok(out)
}

pub(crate) async fn tenant_of(state: &ApiState, who: &Principal, id: &str) -> ApiResult<Tenant> {
    if !who.may_see(id) {
        return Err(ApiError::NotFound(format!("no tenant {id}")));
    }
    let tenants = state.store.tenants().await?;
    tenants.into_iter().find(|t| t.id.as_str() == id).ok_or_else(|| ApiError::NotFound(format!("no tenant {id}")))
}

pub(crate) async fn build_tenant_report(state: &ApiState, tenant: &Tenant, span: &Span, measure: Measure) -> ApiResult<TenantReport> {
    let lines = pool_service_costs(state, span, Some(&tenant.id)).await?.remove(tenant.id.as_str()).unwrap_or_default();
    let revenue: Decimal = state.store.revenue(span.from, span.to).await?.iter().filter(|r| r.tenant == tenant.id).map(|r| r.amount.amount).sum();
    let usage = usage_sums(state, span, Some(&tenant.id)).await?.remove(&tenant.id).unwrap_or_default();
    let vcpu = vcpu_hours(state, span, Some(&tenant.id)).await?.get(tenant.id.as_str()).copied().unwrap_or(0.0);
    Ok(tenant_report(tenant, span.from, span.to, &lines, revenue, &usage, vcpu, state.config.finance.target_margin_percent, measure))
}

/// One tenant: cost by pool and service, revenue, gross margin and unit costs.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "reports", params(("tenant" = String, Path, description = "Tenant id"), TenantQuery),
    responses((status = 200, body = TenantReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tenant(State(state): State<ApiState>, who: Principal, Path(id): Path<String>, q: Params) -> ApiResult<Json<TenantReport>> {
    q.only(&["month", "from", "to", "measure"])?;
    let measure = q.measure(Measure::Amortized)?;
    let t = tenant_of(&state, &who, &id).await?;
    let span = q.span(default_month(&state).await?)?;
    Ok(Json(build_tenant_report(&state, &t, &span, measure).await?))
}

/// Every tenant the token may see, with cost, revenue, margin and unit costs.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "reports", params(TenantQuery),
    responses((status = 200, body = Vec<TenantReport>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tenants(State(state): State<ApiState>, who: Principal, q: Params) -> ApiResult<Json<Vec<TenantReport>>> {
    q.only(&["month", "from", "to", "measure"])?;
    let measure = q.measure(Measure::Amortized)?;
    let span = q.span(default_month(&state).await?)?;
    Ok(Json(tenant_reports(&state, &who, &span, measure).await?))
}

pub(crate) async fn tenant_reports(state: &ApiState, who: &Principal, span: &Span, measure: Measure) -> ApiResult<Vec<TenantReport>> {
    let tenants: Vec<Tenant> = state.store.tenants().await?.into_iter().filter(|t| who.may_see(t.id.as_str())).collect();
    let own = who.tenant.as_ref();
    let mut lines = pool_service_costs(state, span, own).await?;
    let mut revenue: BTreeMap<TenantId, Decimal> = BTreeMap::new();
    for r in state.store.revenue(span.from, span.to).await? {
        *revenue.entry(r.tenant).or_default() += r.amount.amount;
    }
    let mut usage = usage_sums(state, span, own).await?;
    let vcpu = vcpu_hours(state, span, own).await?;
    let (from, to, target) = (span.from, span.to, state.config.finance.target_margin_percent);
    // A thousand tenants' reports are tens of milliseconds of arithmetic: off the async workers.
    tokio::task::spawn_blocking(move || {
        let mut out: Vec<TenantReport> = tenants
            .iter()
            .map(|t| {
                let rev = revenue.get(&t.id).copied().unwrap_or_default();
                let l = lines.remove(t.id.as_str()).unwrap_or_default();
                let u = usage.remove(&t.id).unwrap_or_default();
                let v = vcpu.get(t.id.as_str()).copied().unwrap_or(0.0);
                tenant_report(t, from, to, &l, rev, &u, v, target, measure)
            })
            .collect();
        out.sort_by(|a, b| b.cost.cmp(&a.cost).then(a.tenant.cmp(&b.tenant)));
        out
    })
    .await
    .map_err(ApiError::internal)
}

/// Burn against revenue by month, with runway.
#[utoipa::path(get, path = "/api/v1/burn", tag = "reports", params(SpanQuery),
    responses((status = 200, body = BurnReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn burn_report(State(state): State<ApiState>, who: Principal, q: Params) -> ApiResult<Json<BurnReport>> {
    who.require_company()?;
    q.only(&["month", "from", "to"])?;
    Ok(Json(build_burn(&state, &q).await?))
}

pub(crate) async fn build_burn(state: &ApiState, q: &Params) -> ApiResult<BurnReport> {
    let runs = state.store.allocation_runs().await?;
    let latest = runs.last().map(|r| r.month).unwrap_or_else(|| Month::of(state.clock.now()));
    let earliest = runs.first().map(|r| r.month).unwrap_or(latest);
    let span = if q.get("month").is_none() && q.get("from").is_none() && q.get("to").is_none() {
        Span { from: earliest, to: latest, from_day: None, to_day: None }
    } else {
        q.span(latest)?
    };
    let months: Vec<Month> = span.from.through(span.to).collect();
    let by_month = CostQuery { from: span.from, to: span.to, dims: vec![CostDim::Month], allocatee: None, pool: None, service: None };
    let aws: BTreeMap<Month, Decimal> = state.store.monthly_costs(&by_month).await?.into_iter().filter_map(|r| r.month.map(|m| (m, r.unblended))).collect();
    let mut revenue: BTreeMap<Month, Decimal> = BTreeMap::new();
    for r in state.store.revenue(span.from, span.to).await? {
        *revenue.entry(r.month).or_default() += r.amount.amount;
    }
    // The latest cash entry posted through the API wins over the configured balance.
    let entries = state.store.cash_balances().await?;
    let balance = entries
        .last()
        .map(|b| (b.as_of, b.amount.amount))
        .or_else(|| state.config.finance.cash_balance.zip(state.config.finance.cash_balance_date).map(|(a, d)| (d, a)));
    // Configured monthly costs win over those kept with the data (the demo keeps its company's).
    let kept: Vec<tally_domain::MonthlyCost> = if state.config.finance.monthly_costs.is_empty() {
        match state.store.document(tally_domain::MONTHLY_COSTS_DOCUMENT).await? {
            Some((body, _)) => serde_json::from_str(&body).map_err(ApiError::internal)?,
            None => Vec::new(),
        }
    } else {
        state.config.finance.monthly_costs.clone()
    };
    Ok(burn(state.config.currency.code(), &months, &aws, &revenue, &kept, balance, state.clock.now().date_naive()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "declares the query for the OpenAPI document; handlers parse it with Params")]
pub struct MonthQuery {
    /// The month, `YYYY-MM` (default: the latest allocated month).
    pub month: Option<String>,
}

/// A month's bill against its allocation per service, with the unallocated rows and their reasons.
#[utoipa::path(get, path = "/api/v1/reconciliation", tag = "reports", params(MonthQuery),
    responses((status = 200, body = Reconciliation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reconciliation(State(state): State<ApiState>, who: Principal, q: Params) -> ApiResult<Json<Reconciliation>> {
    who.require_company()?;
    q.only(&["month"])?;
    let month = q.parse::<Month>("month", "a month such as 2026-10")?.unwrap_or(default_month(&state).await?);
    Ok(Json(build_reconciliation(&state, month).await?))
}

pub(crate) async fn build_reconciliation(state: &ApiState, month: Month) -> ApiResult<Reconciliation> {
    let runs = state.store.allocation_runs().await?;
    let run = runs.iter().find(|r| r.month == month).ok_or_else(|| ApiError::NotAllocated(format!("{month} has not been allocated")))?;
    let billed: Vec<_> = state.store.billed_totals(month).await?.into_iter().map(|b| (b.service, b.lines, b.unblended, b.amortized)).collect();
    let by_service = CostQuery { from: month, to: month, dims: vec![CostDim::Service], allocatee: None, pool: None, service: None };
    let allocated: BTreeMap<String, (Decimal, Decimal)> =
        state.store.monthly_costs(&by_service).await?.into_iter().map(|r| (r.service.unwrap_or_default(), (r.unblended, r.amortized))).collect();
    let mut f = AllocationFilter::months(month, month);
    f.allocatee = Some(tally_domain::Allocatee::UNALLOCATED.to_owned());
    let unallocated = state.store.allocation_rows(&f).await?;
    Ok(reconcile(month, Some(run.source.clone()), &billed, &allocated, &unallocated))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "declares the query for the OpenAPI document; handlers parse it with Params")]
pub struct JobsQuery {
    /// Only runs of this job, e.g. `collect:costs` or `allocate:2026-10`.
    pub job: Option<String>,
    /// At most this many runs, newest first (default 50, at most 1000).
    pub limit: Option<i64>,
}

/// A recorded job run.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunDto {
    pub id: i64,
    pub job: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: String,
    pub rows_written: i64,
    pub api_requests: i64,
    pub error: Option<String>,
    pub detail: Option<String>,
}

impl From<JobRun> for JobRunDto {
    fn from(r: JobRun) -> Self {
        Self {
            id: r.id,
            job: r.job,
            started_at: r.started_at.to_rfc3339(),
            finished_at: r.finished_at.map(|t| t.to_rfc3339()),
            outcome: r.outcome.to_string(),
            rows_written: r.rows_written,
            api_requests: r.api_requests,
            error: r.error,
            detail: r.detail,
        }
    }
}

/// Job runs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "operations", params(JobsQuery),
    responses((status = 200, body = Vec<JobRunDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn jobs(State(state): State<ApiState>, who: Principal, q: Params) -> ApiResult<Json<Vec<JobRunDto>>> {
    who.require_company()?;
    q.only(&["job", "limit"])?;
    let limit = q.parse::<i64>("limit", "a whole number")?.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_parameter("limit", "must lie between 1 and 1000"));
    }
    let runs = state.store.job_runs(q.get("job"), limit).await?;
    Ok(Json(runs.into_iter().map(JobRunDto::from).collect()))
}

/// How one allocatee's share of one pool came about.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationDto {
    pub month: String,
    pub tenant: String,
    pub pool: String,
    pub method: String,
    pub driver: Option<String>,
    pub driver_quantity: Option<f64>,
    pub pool_driver_quantity: Option<f64>,
    pub share: f64,
    pub pool_unblended: String,
    pub allocated_unblended: String,
    pub pool_amortized: String,
    pub allocated_amortized: String,
}

impl From<Explanation> for ExplanationDto {
    fn from(e: Explanation) -> Self {
        Self {
            month: e.month.to_string(),
            tenant: e.allocatee.to_string(),
            pool: e.pool.to_string(),
            method: e.method,
            driver: e.driver,
            driver_quantity: e.driver_quantity,
            pool_driver_quantity: e.pool_driver_quantity,
            share: e.share,
            pool_unblended: e.pool_unblended.to_string(),
            allocated_unblended: e.allocated_unblended.to_string(),
            pool_amortized: e.pool_amortized.to_string(),
            allocated_amortized: e.allocated_amortized.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "declares the query for the OpenAPI document; handlers parse it with Params")]
pub struct ExplainQuery {
    /// The tenant (a tenant token: only its own).
    pub tenant: Option<String>,
    pub month: Option<String>,
    /// Only this pool.
    pub pool: Option<String>,
}

/// Driver quantity, the pool's total and the resulting share, per tenant and pool.
#[utoipa::path(get, path = "/api/v1/explanations", tag = "reports", params(ExplainQuery),
    responses((status = 200, body = Vec<ExplanationDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn explanations(State(state): State<ApiState>, who: Principal, q: Params) -> ApiResult<Json<Vec<ExplanationDto>>> {
    q.only(&["tenant", "month", "pool"])?;
    let month = q.parse::<Month>("month", "a month such as 2026-10")?.unwrap_or(default_month(&state).await?);
    let tenant = match (q.get("tenant"), &who.tenant) {
        (Some(t), _) if !who.may_see(t) => return Err(ApiError::NotFound(format!("no tenant {t}"))),
        (Some(t), _) => Some(t.to_owned()),
        (None, Some(own)) => Some(own.to_string()),
        (None, None) => None,
    };
    let mut ex = state.store.explanations(month, tenant.as_deref()).await?;
    if let Some(p) = q.get("pool") {
        ex.retain(|e| e.pool.as_str() == p);
    }
    Ok(Json(ex.into_iter().map(ExplanationDto::from).collect()))
}

/// A revenue entry to record (replaces the tenant's revenue of the month).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevenueBody {
    #[schema(example = "2026-10")]
    pub month: String,
    #[schema(example = "acme")]
    pub tenant: String,
    #[schema(example = "900.00")]
    pub amount: String,
    #[schema(example = "USD")]
    pub currency: String,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadBody(format!("the body is not the expected JSON: {e}")))
}

/// Records a tenant's revenue for a month (admin).
#[utoipa::path(post, path = "/api/v1/revenue", tag = "admin", request_body = RevenueBody,
    responses((status = 201, description = "Recorded"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn post_revenue(State(state): State<ApiState>, who: Principal, body: axum::body::Bytes) -> ApiResult<StatusCode> {
    who.require_admin()?;
    let b: RevenueBody = json_body(&body)?;
    let month = Month::parse(&b.month).map_err(|e| ApiError::bad_parameter("month", e.to_string()))?;
    let tenant = TenantId::parse(&b.tenant).map_err(|e| ApiError::bad_parameter("tenant", e.to_string()))?;
    let currency = Currency::parse(&b.currency).map_err(|e| ApiError::bad_parameter("currency", e.to_string()))?;
    if currency != state.config.currency {
        return Err(ApiError::bad_parameter("currency", format!("{currency} differs from the reporting currency {}", state.config.currency)));
    }
    let amount = Money::parse(&b.amount, currency).map_err(|e| ApiError::bad_parameter("amount", e.to_string()))?;
    let entry = RevenueEntry::new(month, tenant.clone(), amount).map_err(|e| ApiError::bad_parameter("amount", e.to_string()))?;
    state.store.ensure_tenants(&[tenant]).await?;
    state.store.upsert_revenue(&entry).await?;
    state.cache.clear();
    Ok(StatusCode::CREATED)
}

/// A cash balance on a day, for runway.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CashBody {
    #[schema(example = "2026-11-01")]
    pub as_of: String,
    #[schema(example = "180000.00")]
    pub amount: String,
    pub note: Option<String>,
}

/// Records the cash in the bank on a day (admin); the latest entry drives runway.
#[utoipa::path(post, path = "/api/v1/cash-balances", tag = "admin", request_body = CashBody,
    responses((status = 201, description = "Recorded"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn post_cash(State(state): State<ApiState>, who: Principal, body: axum::body::Bytes) -> ApiResult<StatusCode> {
    who.require_admin()?;
    let b: CashBody = json_body(&body)?;
    let as_of = NaiveDate::parse_from_str(&b.as_of, "%Y-%m-%d").map_err(|_| ApiError::bad_parameter("as_of", "expected YYYY-MM-DD"))?;
    let amount = Money::parse(&b.amount, state.config.currency).map_err(|e| ApiError::bad_parameter("amount", e.to_string()))?;
    state.store.add_cash_balance(&NewCashBalance { as_of, amount, note: b.note }).await?;
    state.cache.clear();
    Ok(StatusCode::CREATED)
}

/// What re-running an allocation produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationOutcomeDto {
    pub month: String,
    pub rows: usize,
    pub billed_lines: usize,
    pub usage_rows: usize,
    pub job_run_id: Option<i64>,
}

impl From<AllocationOutcome> for AllocationOutcomeDto {
    fn from(o: AllocationOutcome) -> Self {
        Self { month: o.month.to_string(), rows: o.rows, billed_lines: o.billed_lines, usage_rows: o.usage_rows, job_run_id: o.job_run_id }
    }
}

/// Re-runs the allocation of a month and replaces its results (admin).
#[utoipa::path(post, path = "/api/v1/allocations/{month}", tag = "admin", params(("month" = String, Path, description = "YYYY-MM")),
    responses((status = 200, body = AllocationOutcomeDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn post_allocation(State(state): State<ApiState>, who: Principal, Path(month): Path<String>) -> ApiResult<Json<AllocationOutcomeDto>> {
    who.require_admin()?;
    let month = Month::parse(&month).map_err(|e| ApiError::bad_parameter("month", e.to_string()))?;
    let outcome = state.allocator.allocate_month(month).await.map_err(|e| match e {
        AllocationFailure::NoData(m) => ApiError::NotAllocated(m),
        AllocationFailure::Unavailable => ApiError::NotReady(crate::error::DATABASE_AWAY.into()),
        AllocationFailure::Failed(m) => ApiError::Internal(format!("allocating {month}: {m}")),
    })?;
    state.cache.clear();
    Ok(Json(outcome.into()))
}

/// The monthly finance export, CSV (RFC 4180).
#[utoipa::path(get, path = "/api/v1/exports/monthly.csv", tag = "exports", params(MonthQuery),
    responses((status = 200, content_type = "text/csv", description = "month,tenant,service,pool,unblended_cost,amortized_cost,driver,driver_quantity,currency,tenant_name,reason"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export_monthly_csv(State(state): State<ApiState>, who: Principal, q: Params) -> ApiResult<Response> {
    who.require_export()?;
    q.only(&["month"])?;
    let month = export_month(&state, &q).await?;
    let rows = state.store.allocation_rows(&AllocationFilter::months(month, month)).await?;
    let tenants = state.store.tenants().await?;
    let body = tally_reports::export::monthly_csv(&rows, &tenants).map_err(ApiError::internal)?;
    Ok(download(body, "text/csv; charset=utf-8", &format!("tally-{month}.csv")))
}

/// The monthly finance export, Parquet (money as DECIMAL).
#[utoipa::path(get, path = "/api/v1/exports/monthly.parquet", tag = "exports", params(MonthQuery),
    responses((status = 200, content_type = "application/vnd.apache.parquet", description = "The same rows as the CSV"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export_monthly_parquet(State(state): State<ApiState>, who: Principal, q: Params) -> ApiResult<Response> {
    who.require_export()?;
    q.only(&["month"])?;
    let month = export_month(&state, &q).await?;
    let rows = state.store.allocation_rows(&AllocationFilter::months(month, month)).await?;
    let tenants = state.store.tenants().await?;
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let tmp = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        tally_reports::export::monthly_parquet(&rows, &tenants, tmp.path()).map_err(|e| e.to_string())?;
        std::fs::read(tmp.path()).map_err(|e| e.to_string())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(download(body, "application/vnd.apache.parquet", &format!("tally-{month}.parquet")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "declares the query for the OpenAPI document; handlers parse it with Params")]
pub struct FocusQuery {
    /// The billing month, `YYYY-MM`.
    pub month: Option<String>,
    /// `parquet` (default) or `csv`.
    pub format: Option<String>,
}

/// FOCUS 1.2 rows of the month's imported billing data, tenant in Tags.
#[utoipa::path(get, path = "/api/v1/exports/focus", tag = "exports", params(FocusQuery),
    responses((status = 200, description = "FOCUS 1.2, Parquet or CSV"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export_focus(State(state): State<ApiState>, who: Principal, q: Params) -> ApiResult<Response> {
    who.require_export()?;
    q.only(&["month", "format"])?;
    let month = export_month(&state, &q).await?;
    let format = q.get("format").unwrap_or("parquet").to_owned();
    if !matches!(format.as_str(), "parquet" | "csv") {
        return Err(ApiError::bad_parameter("format", "expected parquet or csv"));
    }
    let source = state.store.allocation_runs().await?.into_iter().find(|r| r.month == month).and_then(|r| r.source.parse().ok());
    let source: CostSource = source.ok_or_else(|| ApiError::NotAllocated(format!("{month} has not been allocated")))?;
    // The month streams from the store through the writer into the response, batch by batch.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<axum::body::Bytes>>(4);
    let out = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
    let lake = state.lake.clone();
    let csv = format == "csv";
    tokio::spawn(async move {
        let writer: std::sync::Arc<std::sync::Mutex<Option<FocusSink>>> = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = writer.clone();
        let opened = if csv {
            FocusCsv::new(out).map(FocusSink::Csv).map_err(|e| e.to_string())
        } else {
            FocusParquet::new(out).map(FocusSink::Parquet).map_err(|e| e.to_string())
        };
        let result = match opened {
            Ok(w) => {
                *writer.lock().expect("writer") = Some(w);
                lake.each_line_batch(source, month, 50_000, move |lines| slot.lock().expect("writer").as_mut().expect("open").write(&lines))
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        let opened_writer = writer.lock().expect("writer").take();
        let finished = match (result, opened_writer) {
            (Ok(_), Some(w)) => tokio::task::spawn_blocking(move || w.finish()).await.map_err(|e| e.to_string()).and_then(|r| r),
            (Err(e), _) => Err(e),
            (Ok(_), None) => Err("the export's writer was not opened".into()),
        };
        if let Err(e) = finished {
            tracing::error!(%month, error = %e, "the FOCUS export stopped; the download is cut short");
            let _ = tx.send(Err(std::io::Error::other(e))).await;
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let body = axum::body::Body::from_stream(chunks);
    let (content_type, name) = if csv {
        ("text/csv; charset=utf-8", format!("tally-focus-{month}.csv"))
    } else {
        ("application/vnd.apache.parquet", format!("tally-focus-{month}.parquet"))
    };
    Ok(([(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))], body).into_response())
}

/// The writer of a FOCUS export, CSV or Parquet.
enum FocusSink {
    Csv(FocusCsv<ChannelWriter>),
    Parquet(FocusParquet<ChannelWriter>),
}

impl FocusSink {
    fn write(&mut self, lines: &[tally_domain::CostLine]) -> Result<(), String> {
        match self {
            Self::Csv(w) => w.write(lines).map_err(|e| e.to_string()),
            Self::Parquet(w) => w.write(lines).map_err(|e| e.to_string()),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Self::Csv(w) => w.finish().map_err(|e| e.to_string()).and_then(|mut c| c.flush_chunk()),
            Self::Parquet(w) => w.finish().map_err(|e| e.to_string()).and_then(|mut c| c.flush_chunk()),
        }
    }
}

/// Bytes written on a blocking thread, sent to the response in chunks of about 256 KiB.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<axum::body::Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn flush_chunk(&mut self) -> Result<(), String> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = axum::body::Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| "the client went away".to_owned())
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush_chunk().map_err(std::io::Error::other)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) async fn export_month(state: &ApiState, q: &Params) -> ApiResult<Month> {
    let month = q.parse::<Month>("month", "a month such as 2026-10")?.ok_or_else(|| ApiError::bad_parameter("month", "required, e.g. month=2026-10"))?;
    if !state.store.allocation_runs().await?.iter().any(|r| r.month == month) {
        return Err(ApiError::NotAllocated(format!("{month} has not been allocated")));
    }
    Ok(month)
}

pub(crate) fn download(body: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    ([(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\""))], body).into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "declares the query for the OpenAPI document; handlers parse it with Params")]
pub struct SavingsQuery {
    /// Days of billing history the projection looks at: 7, 30 or 60 (default: `savings.lookback_days`).
    pub lookback: Option<u32>,
    /// `1y` or `3y` (default: both).
    pub term: Option<String>,
    /// `none`, `partial` or `all` upfront (default: all three).
    pub payment: Option<String>,
}

/// The Reserved-Instance and Savings-Plan projection, beside Cost Explorer's own recommendations.
#[utoipa::path(get, path = "/api/v1/savings", tag = "reports", params(SavingsQuery),
    responses((status = 200, body = tally_savings::SavingsReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn savings(State(state): State<ApiState>, who: Principal, q: Params) -> ApiResult<Json<tally_savings::SavingsReport>> {
    who.require_company()?;
    q.only(&["lookback", "term", "payment"])?;
    Ok(Json(stored_savings(&state, &q).await?))
}

pub(crate) async fn stored_savings(state: &ApiState, q: &Params) -> ApiResult<tally_savings::SavingsReport> {
    let lookback = match q.get("lookback") {
        None => state.config.savings.lookback_days,
        Some(v) => match v.parse::<u32>() {
            Ok(d @ (7 | 30 | 60)) => d,
            _ => return Err(ApiError::bad_parameter("lookback", format!("{v:?} is not 7, 30 or 60 days"))),
        },
    };
    let term = match q.get("term") {
        None => None,
        Some(v) => Some(tally_savings::Term::parse(v).ok_or_else(|| ApiError::bad_parameter("term", format!("{v:?} is not 1y or 3y")))?),
    };
    let payment = match q.get("payment") {
        None => None,
        Some(v) => Some(tally_savings::Payment::parse(v).ok_or_else(|| ApiError::bad_parameter("payment", format!("{v:?} is not none, partial or all")))?),
    };
    let Some((body, _)) = state.store.document(&tally_savings::report_document(lookback)).await? else {
        return Err(ApiError::NotFound(format!(
            "no savings projection over {lookback} days yet: it is computed after each allocation, or by `tally savings`, once EC2, RDS or ElastiCache instance-hours are billed"
        )));
    };
    let report: tally_savings::SavingsReport = serde_json::from_str(&body).map_err(ApiError::internal)?;
    Ok(report.only(term, payment))
}
