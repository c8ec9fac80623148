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
//!   a 500. Errors the framework makes (413, 405, timeouts) get the same shape.
//! - Every request's work is bounded: a time limit, a body limit, a rate
//!   limit per client; connections are bounded in number, per client and in
//!   how long their headers may take (see [`serve`]). Every response carries
//!   the security headers of [`finish`]; a browser's write must come from
//!   this server's own pages (Origin) and, to the API, be JSON.
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

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
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
        .layer(middleware::from_fn_with_state(state.clone(), protect))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn_with_state(state.clone(), finish))
        .layer(DefaultBodyLimit::max(usize::try_from(state.config.server.max_body_bytes).unwrap_or(usize::MAX)))
        .with_state(state)
}

/// Refuses cross-site writes and bounds each request's time.
///
/// A write (any method but GET, HEAD, OPTIONS) whose `Origin` is another
/// site's is refused. One signed in by the session cookie rather than a
/// bearer token must also show it came from this server's pages (`Origin`,
/// or `Sec-Fetch-Site: same-origin`) and, to the API, send JSON, which a
/// foreign page cannot send without CORS, which Tally never grants.
async fn protect(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && let Err(e) = check_origin(&state, req.headers(), req.uri().path())
    {
        return e.into_response();
    }
    let limit = std::time::Duration::from_secs(state.config.server.request_timeout_seconds);
    // A bug that panics answers this request with a logged 500, not a dropped connection.
    let guarded = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(next.run(req)));
    match tokio::time::timeout(limit, guarded).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(_)) => ApiError::Internal("a request handler panicked".into()).into_response(),
        Err(_) => ApiError::Timeout(format!("the request took longer than {} s and was stopped", limit.as_secs())).into_response(),
    }
}

fn check_origin(state: &ApiState, headers: &HeaderMap, path: &str) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("(not text)"));
    if let Some(o) = origin
        && !same_origin(state, headers, o)
    {
        return Err(ApiError::Forbidden(format!("cross-site request refused: origin {o:?} is not this server")));
    }
    // Exactly when the request is signed in by the cookie (as `auth::presented` decides): a bearer
    // token is not something a browser sends on its own.
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).is_some_and(|h| h.starts_with("Bearer "));
    if bearer || auth::session_cookie(headers).is_none() {
        return Ok(());
    }
    let same_site = headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"same-origin");
    if origin.is_none() && !same_site {
        return Err(ApiError::Forbidden("a signed-in browser request must come from Tally's own pages (no Origin header)".into()));
    }
    let json =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if path.starts_with("/api/") && !json {
        return Err(ApiError::UnsupportedMediaType("a signed-in browser request to the API must send JSON (Content-Type: application/json)".into()));
    }
    Ok(())
}

/// Whether `origin` (`scheme://host[:port]`) is this server: its public
/// address when configured, else the host the request was sent to.
fn same_origin(state: &ApiState, headers: &HeaderMap, origin: &str) -> bool {
    if let Some(public) = &state.config.server.public_url {
        let public = public.trim_end_matches('/');
        let public_origin = public.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        if origin.eq_ignore_ascii_case(&public_origin) {
            return true;
        }
    }
    let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if !a.is_empty() && a.eq_ignore_ascii_case(h))
}

/// Whether the browser reached Tally over HTTPS: its public address is
/// https, or a trusted proxy says so (`X-Forwarded-Proto`).
pub(crate) fn served_over_https(state: &ApiState, headers: &HeaderMap) -> bool {
    let server = &state.config.server;
    server.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
        || server.trust_forwarded_for
            && headers
                .get_all("x-forwarded-proto")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .is_some_and(|p| p.trim() == "https")
}

/// The content security policy of pages: nothing runs, everything comes from here.
const PAGE_CSP: &str =
    "default-src 'none'; img-src 'self' data:; style-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The same for an SVG chart opened on its own: its inline style and the bundled font.
const SVG_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; font-src 'self'; frame-ancestors 'none'";

/// Gives every error one JSON shape and every response the security headers.
async fn finish(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let https = served_over_https(&state, req.headers());
    let resp = next.run(req).await;
    let mut resp = json_error_shape(resp).await;
    let content_type = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let h = resp.headers_mut();
    let csp = if content_type.starts_with("image/svg") { SVG_CSP } else { PAGE_CSP };
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it Chromium sends `Origin: null` with our own forms, which the CSRF check refuses.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        // Reports are private: not kept by proxies or on a shared computer's disk.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if https {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    resp
}

/// An error response made by the framework (plain text or empty) in the
/// JSON shape of every other error.
async fn json_error_shape(resp: Response) -> Response {
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if !error::is_framework_error(status, content_type) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let mut out = error::framework_error(status, &text).into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
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
    // The database's own error goes to the log, not to whoever asks.
    let away = |e: tally_storage::StorageError| {
        tracing::warn!(error = %e, "readiness: the database does not answer");
        ApiError::NotReady(error::DATABASE_AWAY.into())
    };
    state.store.ping().await.map_err(away)?;
    let m = state.store.migration_status().await.map_err(away)?;
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
/// the requests in flight (for at most `server.request_timeout_seconds`).
///
/// HTTP/1.1 through hyper, with its own limits: a client must send a
/// request's headers within `server.header_timeout_seconds` (also how long
/// an idle kept-alive connection stays open), headers are at most 64 KiB,
/// at most `server.max_connections` connections are open (further clients
/// wait in the listen queue) and at most `server.max_connections_per_ip`
/// per client address (an IPv6 client's /64; more are closed at once; not applied behind a
/// trusted proxy, whose address every connection has). A client that stops
/// reading an answer is cut off once a write has waited the request timeout.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: &tally_domain::ServerConfig,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tokio::sync::{Semaphore, watch};

    let max = usize::try_from(server.max_connections).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
    let per_ip_limit = (!server.trust_forwarded_for).then_some(server.max_connections_per_ip);
    let header_timeout = std::time::Duration::from_secs(server.header_timeout_seconds);
    let grace = std::time::Duration::from_secs(server.request_timeout_seconds);
    let open = Arc::new(Semaphore::new(max));
    let per_ip = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let (stop_tx, stop_rx) = watch::channel(());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(64 << 10);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = IpSlot::take(&per_ip, limit::client_key(peer.ip()), per_ip_limit) else {
            tracing::debug!(%peer, "too many connections from this address; closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            tower::Service::call(&mut router, req.map(axum::body::Body::new))
        });
        let conn = builder.serve_connection(TokioIo::new(StallLimited::new(stream, grace)), service);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let (_permit, _slot) = (permit, slot);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => if let Err(e) = r { tracing::debug!(%peer, error = %e, "connection ended") },
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(());
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, open.acquire_many(all)).await.is_err() {
        tracing::warn!(open = max - open.available_permits(), "connections still open after {} s; exiting without them", grace.as_secs());
    }
    Ok(())
}

/// A connection whose writes must make progress: a client that stops
/// reading (to hold a connection with an answer it never takes) is cut off
/// once a write has waited `limit`.
struct StallLimited {
    io: tokio::net::TcpStream,
    limit: std::time::Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl StallLimited {
    fn new(io: tokio::net::TcpStream, limit: std::time::Duration) -> Self {
        Self { io, limit, stalled: None }
    }

    /// `poll` of a write: a pending one arms the stall clock, progress disarms it.
    fn guard<T>(&mut self, cx: &mut std::task::Context<'_>, poll: std::task::Poll<std::io::Result<T>>) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        match poll {
            Poll::Pending => {
                let limit = self.limit;
                let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading"))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl tokio::io::AsyncRead for StallLimited {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for StallLimited {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        self.guard(cx, poll)
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        let poll = std::pin::Pin::new(&mut self.io).poll_flush(cx);
        self.guard(cx, poll)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.guard(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// One open connection of a client address, counted while it lives.
struct IpSlot {
    map: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u32>>>,
    ip: std::net::IpAddr,
}

impl IpSlot {
    /// A slot for `ip`, or none when it has `limit` connections open already.
    fn take(map: &Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u32>>>, ip: std::net::IpAddr, limit: Option<u32>) -> Option<Self> {
        let mut m = map.lock().expect("connection count lock");
        let n = m.entry(ip).or_insert(0);
        if limit.is_some_and(|l| *n >= l) {
            return None;
        }
        *n += 1;
        Some(Self { map: map.clone(), ip })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.map.lock().expect("connection count lock");
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// For tests and tools: a status code's JSON error code.
pub fn status_of(code: &str) -> Option<StatusCode> {
    ERROR_CODES.iter().find(|(c, _, _)| *c == code).and_then(|(_, s, _)| StatusCode::from_u16(*s).ok())
}
