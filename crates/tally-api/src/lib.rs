//! The HTTP face of Tally: the JSON API under `/api/v1`, exports, the
//! dashboard, health, readiness, metrics and the OpenAPI document.
//!
//! Architecture invariants:
//! - This is the only crate that knows HTTP. It reads through the
//!   `tally_storage::Store` trait and computes views with `tally-reports`;
//!   it never recomputes an allocation on a read. The one write that does
//!   work (`POST /api/v1/allocations/{month}`) goes through the
//!   `AllocationTrigger` port the binary wires in.
//! - Every route but `/healthz`, `/readyz`, the bundled font under
//!   `/static` (and the `/login` form that takes a token) requires a token; roles are checked in each handler; a
//!   tenant token sees only its own tenant, and another tenant's id is a 404.
//! - Errors are JSON `{code, message}` with the stable codes of
//!   [`error::ERROR_CODES`]; bad input is a 400 naming the parameter, never
//!   a 500.
//!
//! Entry points: [`router`] and [`serve`].

pub mod auth;
mod cache;
mod charts;
mod dashboard;
pub mod error;
mod limit;
mod metrics;
mod openapi;
mod params;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tally_domain::{AllocationTrigger, Clock, Config};
use tally_storage::Store;

pub use error::{ApiError, ERROR_CODES};
pub use openapi::openapi_json;

use crate::auth::Principal;
use crate::limit::RateLimiter;
use crate::metrics::Metrics;

/// Everything a request handler may use.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    /// The columnar store, for exports of raw billing lines.
    pub lake: Arc<tally_lake::Lake>,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub allocator: Arc<dyn AllocationTrigger>,
    cache: Arc<cache::Cache>,
    limiter: Arc<RateLimiter>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").field("store", &self.store).finish_non_exhaustive()
    }
}

impl ApiState {
    pub fn new(store: Arc<dyn Store>, lake: Arc<tally_lake::Lake>, config: Arc<Config>, clock: Arc<dyn Clock>, allocator: Arc<dyn AllocationTrigger>) -> Self {
        let limiter = Arc::new(RateLimiter::new(config.server.rate_limit_per_minute));
        Self { store, lake, config, clock, allocator, cache: Arc::default(), limiter, metrics: Arc::new(Metrics::default()) }
    }
}

/// The whole application's routes.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/costs", get(routes::costs))
        .route("/tenants", get(routes::tenants))
        .route("/tenants/{tenant}", get(routes::tenant))
        .route("/burn", get(routes::burn_report))
        .route("/savings", get(routes::savings))
        .route("/reconciliation", get(routes::reconciliation))
        .route("/jobs", get(routes::jobs))
        .route("/explanations", get(routes::explanations))
        .route("/revenue", post(routes::post_revenue))
        .route("/cash-balances", post(routes::post_cash))
        .route("/allocations/{month}", post(routes::post_allocation))
        .route("/exports/monthly.csv", get(routes::export_monthly_csv))
        .route("/exports/monthly.parquet", get(routes::export_monthly_parquet))
        .route("/exports/focus", get(routes::export_focus))
        .fallback(|| async { ApiError::NotFound("no such route".into()) });
    Router::new()
        .nest("/api/v1", api)
        .route("/api/openapi.json", get(openapi_route))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_route))
        .route("/charts/{file}", get(charts::chart))
        .route("/static/{file}", get(charts::font))
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), keep_answers))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The reports kept in memory (see [`cache`]): answers of these routes (JSON
/// reports, dashboard pages, charts), per role, tenant, day and request,
/// while the data stays the same. Not kept: exports (streamed), jobs and the
/// operations page (job runs are not data), and everything that writes.
const KEPT_ROUTES: [&str; 13] = [
    "/api/v1/costs",
    "/api/v1/tenants",
    "/api/v1/tenants/{tenant}",
    "/api/v1/burn",
    "/api/v1/reconciliation",
    "/api/v1/explanations",
    "/api/v1/savings",
    "/",
    "/tenants",
    "/tenants/{tenant}",
    "/finance",
    "/savings",
    "/charts/{file}",
];

async fn keep_answers(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let kept = req.extensions().get::<MatchedPath>().is_some_and(|p| KEPT_ROUTES.contains(&p.as_str()));
    if req.method() != axum::http::Method::GET || !kept {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let Ok(who) = Principal::from_request_parts(&mut parts, &state).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let key = format!("{}|{}|{}|{}", state.clock.now().date_naive(), who.role, who.tenant.as_ref().map(|t| t.as_str()).unwrap_or_default(), parts.uri);
    if let Some(kept) = state.cache.answer(&key) {
        return (kept.headers, kept.body).into_response();
    }
    let resp = next.run(Request::from_parts(parts, body)).await;
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    match axum::body::to_bytes(body, cache::MAX_BODY).await {
        Ok(bytes) => {
            if !parts.headers.contains_key(header::SET_COOKIE) {
                state.cache.keep_answer(key, cache::Kept { body: bytes.clone(), headers: parts.headers.clone() });
            }
            Response::from_parts(parts, axum::body::Body::from(bytes))
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Rate limits, times and counts every request.
async fn observe(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = metrics::method_label(req.method());
    let exempt = matches!(route.as_str(), "/healthz" | "/readyz");
    let ip = client_ip(&state, &req);
    let resp = match (exempt, ip) {
        (false, Some(ip)) => match state.limiter.check(ip, started) {
            Ok(()) => next.run(req).await,
            Err(retry_after) => ApiError::RateLimited { retry_after }.into_response(),
        },
        _ => next.run(req).await,
    };
    state.metrics.observe(&route, method, resp.status().as_u16(), started.elapsed());
    resp
}

/// The client's address: the peer's, or behind a trusted proxy the address
/// that proxy appended, i.e. the rightmost entry of the last
/// `X-Forwarded-For` header. Entries left of it are whatever the client sent
/// and prove nothing.
fn client_ip(state: &ApiState, req: &Request) -> Option<std::net::IpAddr> {
    if state.config.server.trust_forwarded_for {
        let appended = req.headers().get_all("x-forwarded-for").iter().next_back().and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next());
        if let Some(ip) = appended.and_then(|ip| ip.trim().parse().ok()) {
            return Some(ip);
        }
    }
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "ok")))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers and its migrations are current.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, body = error::ErrorBody)))]
async fn readyz(State(state): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    state.store.ping().await.map_err(|e| ApiError::NotReady(format!("the database does not answer: {e}")))?;
    let m = state.store.migration_status().await.map_err(|e| ApiError::NotReady(e.to_string()))?;
    if !m.is_current() {
        return Err(ApiError::NotReady(format!("migrations applied {:?}, this version needs {:?}: run `tally migrate`", m.applied, m.known)));
    }
    Ok(Json(serde_json::json!({ "status": "ready", "migrations": m.applied })))
}

/// Prometheus metrics (any token but a tenant's).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", description = "Prometheus text format"), (status = 401, body = error::ErrorBody), (status = 403, body = error::ErrorBody)), security(("bearer" = [])))]
async fn metrics_route(State(state): State<ApiState>, who: Principal) -> Result<Response, ApiError> {
    who.require_company()?;
    let mut out = String::new();
    state.metrics.render(&mut out);
    let runs = state.store.job_runs(None, 10_000).await?;
    let mut by: std::collections::BTreeMap<(String, String), u64> = std::collections::BTreeMap::new();
    for r in &runs {
        let kind = r.job.split(':').take(2).collect::<Vec<_>>().join(":");
        *by.entry((kind, r.outcome.to_string())).or_default() += 1;
    }
    out.push_str("# HELP tally_job_runs Recorded job runs (latest 10,000) by job and outcome.\n# TYPE tally_job_runs gauge\n");
    for ((job, outcome), n) in by {
        out.push_str(&format!("tally_job_runs{{job=\"{}\",outcome=\"{outcome}\"}} {n}\n", metrics::escape(&job)));
    }
    out.push_str("# HELP tally_last_success_timestamp_seconds When each job last succeeded.\n# TYPE tally_last_success_timestamp_seconds gauge\n");
    for (job, at) in state.store.last_successes().await? {
        out.push_str(&format!("tally_last_success_timestamp_seconds{{job=\"{}\"}} {}\n", metrics::escape(&job), at.timestamp()));
    }
    let month = tally_domain::Month::of(state.clock.now());
    let ce = state.store.api_requests("cost_explorer", month).await?;
    out.push_str("# HELP tally_cost_explorer_requests Cost Explorer requests this calendar month.\n# TYPE tally_cost_explorer_requests gauge\n");
    out.push_str(&format!("tally_cost_explorer_requests {ce}\n"));
    out.push_str("# HELP tally_cost_explorer_request_cost_usd What those requests cost at $0.01 each.\n# TYPE tally_cost_explorer_request_cost_usd gauge\n");
    out.push_str(&format!("tally_cost_explorer_request_cost_usd {:.2}\n", ce as f64 * 0.01));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// The OpenAPI 3.1 document of every route (any valid token).
async fn openapi_route(_who: Principal) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json()).into_response()
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes
/// the requests in flight.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown).await
}

/// For tests and tools: a status code's JSON error code.
pub fn status_of(code: &str) -> Option<StatusCode> {
    ERROR_CODES.iter().find(|(c, _, _)| *c == code).and_then(|(_, s, _)| StatusCode::from_u16(*s).ok())
}
