//! `/charts/{name}.svg|png`: the reports drawn, with the reports' filters and
//! access rules. `w` and `h` set the size in pixels (default 1200 x 600).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use tally_domain::Month;
use tally_reports::charts::{BurnChart, ChartError, DailyAreas, Format, SavingsCurves, Size, StackPart, StackedBars, TenantMonth, TenantTrend, render};
use tally_reports::costs::Measure;
use tally_storage::{CostDim, CostQuery, DailyBy, DailyQuery};

use crate::ApiState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::params::{Params, Span};
use crate::routes::{build_burn, build_tenant_report, default_month, stored_savings, tenant_of};

/// The charts there are, for the OpenAPI document and error messages.
pub const NAMES: [&str; 5] = ["burn", "tenants", "daily", "tenant", "savings"];

fn size(q: &Params) -> ApiResult<Size> {
    let w = q.parse::<u32>("w", "a width in pixels")?.unwrap_or(Size::DEFAULT.width);
    let h = q.parse::<u32>("h", "a height in pixels")?.unwrap_or(Size::DEFAULT.height);
    Size::new(w, h).map_err(|e| ApiError::bad_parameter("w", e.to_string()))
}

fn top(q: &Params) -> ApiResult<usize> {
    let t = q.parse::<usize>("top", "a number of rows")?.unwrap_or(10);
    if !(1..=50).contains(&t) {
        return Err(ApiError::bad_parameter("top", "between 1 and 50"));
    }
    Ok(t)
}

/// A chart of the reports, as SVG or PNG.
#[utoipa::path(get, path = "/charts/{file}", tag = "charts",
    params(
        ("file" = String, Path, description = "`burn`, `tenants`, `daily`, `tenant` or `savings`, then `.svg` or `.png`"),
        ("month" = Option<String>, Query, description = "burn, tenants: a month (YYYY-MM)"),
        ("from" = Option<String>, Query, description = "burn, tenant: first month; daily: first day (YYYY-MM-DD)"),
        ("to" = Option<String>, Query, description = "burn, tenant: last month; daily: day after the last (YYYY-MM-DD)"),
        ("top" = Option<usize>, Query, description = "tenants, daily: how many rows or services before \"Other\" (default 10, 6)"),
        ("tenant" = Option<String>, Query, description = "tenant: the tenant's id"),
        ("lookback" = Option<u32>, Query, description = "savings: 7, 30 or 60 days"),
        ("term" = Option<String>, Query, description = "savings: 1y (default) or 3y"),
        ("w" = Option<u32>, Query, description = "width in pixels, 320 to 2400 (default 1200)"),
        ("h" = Option<u32>, Query, description = "height in pixels, 240 to 1600 (default 600)"),
    ),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml"),
        (status = 200, description = "The chart", content_type = "image/png"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn chart(State(state): State<ApiState>, who: Principal, Path(file): Path<String>, q: Params) -> ApiResult<Response> {
    let (name, ext) = file.rsplit_once('.').ok_or_else(|| ApiError::NotFound(format!("no chart {file}: ask for NAME.svg or NAME.png")))?;
    let format = match ext {
        "svg" => Format::Svg,
        "png" => Format::Png,
        _ => return Err(ApiError::NotFound(format!("no chart format {ext:?}: svg or png"))),
    };
    let size = size(&q)?;
    let cur = state.config.currency.to_string();
    let bytes = match name {
        "burn" => {
            who.require_company()?;
            q.only(&["month", "from", "to", "w", "h"])?;
            let report = build_burn(&state, &q).await?;
            draw(move || render(&BurnChart { report: &report }, format, size)).await?
        }
        "tenants" => {
            q.only(&["month", "top", "measure", "w", "h"])?;
            let measure = q.measure(Measure::Amortized)?;
            let month = match q.parse::<Month>("month", "a month such as 2026-10")? {
                Some(m) => m,
                None => default_month(&state).await?,
            };
            let query = CostQuery {
                from: month,
                to: month,
                dims: vec![CostDim::Allocatee, CostDim::Pool],
                allocatee: who.tenant.as_ref().map(|t| t.to_string()),
                pool: None,
                service: None,
            };
            let rows = state.store.monthly_costs(&query).await?;
            let names: std::collections::BTreeMap<String, String> =
                state.store.tenants().await?.into_iter().map(|t| (t.id.to_string(), t.display_name)).collect();
            let parts: Vec<StackPart> = rows
                .into_iter()
                .map(|r| {
                    let who = r.allocatee.unwrap_or_default();
                    StackPart {
                        label: names.get(&who).cloned().unwrap_or(who),
                        series: r.pool.unwrap_or_default(),
                        value: measure.pick(r.unblended, r.amortized),
                    }
                })
                .collect();
            let title = format!("Cost by tenant in {}, by pool", month.long_name());
            let top = top(&q)?;
            draw(move || render(&StackedBars { title, currency: &cur, parts: &parts, top }, format, size)).await?
        }
        "daily" => {
            q.only(&["from", "to", "top", "w", "h"])?;
            let month = default_month(&state).await?;
            let day = |name: &str| -> ApiResult<Option<NaiveDate>> {
                q.get(name)
                    .map(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| ApiError::bad_parameter(name, format!("{v:?} is not a day (YYYY-MM-DD)"))))
                    .transpose()
            };
            let from = day("from")?.unwrap_or(month.first_day());
            let to = day("to")?.unwrap_or(month.next().first_day());
            if to <= from {
                return Err(ApiError::bad_parameter("to", "lies before from"));
            }
            if to - from > Duration::days(370) {
                return Err(ApiError::bad_parameter("to", "the window is longer than a year"));
            }
            // Daily costs are kept per service for the company and per tenant: a tenant sees its own daily total.
            let own = who.tenant.as_ref().map(|t| t.to_string());
            let by = if own.is_some() { DailyBy::Allocatee } else { DailyBy::Service };
            let query = DailyQuery { from, to, by: Some(by), allocatee: own.clone(), service: None, per_day: true };
            let rows = state.store.daily_costs(&query).await?;
            let series = |r: &tally_storage::CostRow| if own.is_some() { "all services".to_owned() } else { r.service.clone().unwrap_or_default() };
            let points: Vec<(NaiveDate, String, Decimal)> = rows.iter().filter_map(|r| r.day.map(|d| (d, series(r), r.unblended))).collect();
            let what = if own.is_some() { "Daily cost" } else { "Daily cost by service" };
            let title = format!("{what}, {} to {}", from.format("%-d %b %Y"), (to - Duration::days(1)).format("%-d %b %Y"));
            let top = q.parse::<usize>("top", "a number of services")?.unwrap_or(6).clamp(1, 20);
            draw(move || render(&DailyAreas { title, currency: &cur, points: &points, top }, format, size)).await?
        }
        "tenant" => {
            q.only(&["tenant", "from", "to", "measure", "w", "h"])?;
            let measure = q.measure(Measure::Amortized)?;
            let id = match (q.get("tenant"), &who.tenant) {
                (Some(t), _) => t.to_owned(),
                (None, Some(own)) => own.to_string(),
                (None, None) => return Err(ApiError::bad_parameter("tenant", "name the tenant (tenant=ID)")),
            };
            let t = tenant_of(&state, &who, &id).await?;
            let runs = state.store.allocation_runs().await?;
            let last = runs.last().map_or_else(|| Month::of(state.clock.now()), |r| r.month);
            let first = runs.first().map_or(last, |r| r.month);
            let span = if q.get("from").is_some() || q.get("to").is_some() {
                q.span(last)?
            } else {
                Span { from: first.max(last.prev().prev().prev().prev().prev()), to: last, from_day: None, to_day: None }
            };
            let mut months = Vec::new();
            for m in span.from.through(span.to) {
                let r = build_tenant_report(&state, &t, &Span { from: m, to: m, from_day: None, to_day: None }, measure).await?;
                months.push(TenantMonth {
                    month: m,
                    cost: r.cost,
                    revenue: r.revenue,
                    margin_percent: r.gross_margin_percent,
                    per_1000_requests: r.unit_costs.per_1000_requests,
                });
            }
            draw(move || render(&TenantTrend { name: &t.display_name, currency: &cur, months: &months }, format, size)).await?
        }
        "savings" => {
            who.require_company()?;
            q.only(&["lookback", "term", "w", "h"])?;
            let term = match q.get("term") {
                None => tally_savings::Term::OneYear,
                Some(v) => tally_savings::Term::parse(v).ok_or_else(|| ApiError::bad_parameter("term", format!("{v:?} is not 1y or 3y")))?,
            };
            let mut sq = Params::default();
            if let Some(l) = q.get("lookback") {
                sq.0.insert("lookback".into(), l.to_owned());
            }
            let report = stored_savings(&state, &sq).await?;
            draw(move || render(&SavingsCurves { report: &report, term, currency: &cur }, format, size)).await?
        }
        _ => return Err(ApiError::NotFound(format!("no chart {name:?}: one of {}", NAMES.join(", ")))),
    };
    Ok(([(header::CONTENT_TYPE, format.content_type()), (header::CACHE_CONTROL, "private, max-age=60")], bytes).into_response())
}

/// Drawing (PNG encoding above all) takes milliseconds of CPU: off the async
/// workers, so that other requests are not held up behind it.
async fn draw(f: impl FnOnce() -> Result<Vec<u8>, ChartError> + Send + 'static) -> ApiResult<Vec<u8>> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?.map_err(ApiError::internal)
}

/// The bundled font, for SVG charts opened on their own.
pub async fn font(Path(file): Path<String>) -> Response {
    let bytes = match file.as_str() {
        "DejaVuSans.ttf" => tally_reports::charts::FONT_REGULAR,
        "DejaVuSans-Bold.ttf" => tally_reports::charts::FONT_BOLD,
        _ => return ApiError::NotFound(format!("no file {file}")).into_response(),
    };
    ([(header::CONTENT_TYPE, "font/ttf"), (header::CACHE_CONTROL, "public, max-age=604800, immutable")], bytes).into_response()
}
