//! Every route, for every role, in process; tenant isolation route by route.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tally_api::auth::{Role, issue};
use tally_api::{ApiState, router};
use tally_domain::{
    Allocatee, AllocationFailure, AllocationOutcome, AllocationRow, AllocationTrigger, Config, CostSource, Currency, Explanation, ManualClock, Money, Month,
    PoolId, RevenueEntry, Tenant, TenantId,
};
use tally_storage::{AllocationResultSet, BilledTotal, DailyCost, SqliteStore, Store, UsageTotal};
use tower::ServiceExt;

/// Records the months it was asked to allocate (the real allocator is tested
/// in tally-jobs); 2099-01 has no data, 2099-02 fails inside, 2099-03 finds
/// the database away.
#[derive(Debug, Default)]
struct RecordingAllocator(Mutex<Vec<Month>>);

/// What a failing allocation said inside, which no client may see.
const INTERNAL_DETAIL: &str = "duplicate key value violates unique constraint \"cost_monthly_pkey\"";

#[async_trait::async_trait]
impl AllocationTrigger for RecordingAllocator {
    async fn allocate_month(&self, month: Month) -> Result<AllocationOutcome, AllocationFailure> {
        match month.to_string().as_str() {
            "2099-01" => return Err(AllocationFailure::NoData("no billing data for 2099-01".into())),
            "2099-02" => return Err(AllocationFailure::Failed(INTERNAL_DETAIL.into())),
            "2099-03" => return Err(AllocationFailure::Unavailable),
            _ => {}
        }
        self.0.lock().unwrap().push(month);
        Ok(AllocationOutcome { month, rows: 3, billed_lines: 2, usage_rows: 1, job_run_id: Some(1) })
    }
}

struct TestApp {
    router: Router,
    tokens: BTreeMap<&'static str, String>,
    allocator: Arc<RecordingAllocator>,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

fn oct() -> Month {
    Month::parse("2026-10").unwrap()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn row(who: &str, pool: &str, service: &str, cost: &str) -> AllocationRow {
    AllocationRow {
        month: oct(),
        day: None,
        allocatee: Allocatee::parse(who).unwrap(),
        pool: PoolId::parse(pool).unwrap(),
        service: service.into(),
        currency: Currency::USD,
        unblended: d(cost),
        amortized: d(cost),
        driver: Some("requests".into()),
        driver_quantity: Some(10.0),
        reason: (who == "__unallocated__").then(|| "no egress_gb usage in the line's hour".into()),
    }
}

async fn spawn_app(rate_limit: u32) -> TestApp {
    spawn_app_with(|c| c.server.rate_limit_per_minute = rate_limit).await
}

async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap());
    store.migrate().await.unwrap();
    let now: DateTime<Utc> = "2026-11-15T12:00:00Z".parse().unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();
    store
        .upsert_tenants(&[Tenant::new(acme.clone(), "Acme", Some("growth")).unwrap(), Tenant::new(globex.clone(), "=Globex", Some("free")).unwrap()])
        .await
        .unwrap();
    let monthly = vec![
        row("acme", "load_balancer", "AWSELB", "6.00"),
        row("globex", "load_balancer", "AWSELB", "4.00"),
        row("acme", "shared", "AmazonS3", "1.50"),
        row("globex", "shared", "AmazonS3", "1.00"),
        row("__unallocated__", "transfer", "AWSDataTransfer", "2.25"),
    ];
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 3).unwrap();
    let daily = |key: &str, cost: &str| DailyCost { day, key: key.into(), currency: Currency::USD, unblended: d(cost), amortized: d(cost) };
    let service_daily = vec![daily("AWSELB", "10.00"), daily("AmazonS3", "2.50"), daily("AWSDataTransfer", "2.25")];
    let tenant_daily = vec![daily("acme", "7.50"), daily("globex", "5.00"), daily("__unallocated__", "2.25")];
    let billed = [("AWSELB", "10.00"), ("AmazonS3", "2.50"), ("AWSDataTransfer", "2.25")]
        .into_iter()
        .map(|(s, c)| BilledTotal { month: oct(), service: s.into(), currency: Currency::USD, unblended: d(c), amortized: d(c), lines: 3 })
        .collect();
    let explanation = |who: &str, q: f64| Explanation {
        month: oct(),
        allocatee: Allocatee::parse(who).unwrap(),
        pool: PoolId::parse("load_balancer").unwrap(),
        method: "by requests".into(),
        driver: Some("requests".into()),
        driver_quantity: Some(q),
        pool_driver_quantity: Some(10.0),
        share: q / 10.0,
        pool_unblended: d("10.00"),
        allocated_unblended: d("1") * Decimal::try_from(q).unwrap(),
        pool_amortized: d("10.00"),
        allocated_amortized: d("1") * Decimal::try_from(q).unwrap(),
    };
    store
        .replace_allocation(&AllocationResultSet {
            month: oct(),
            source: CostSource::Cur,
            billed_lines: 9,
            usage_rows: 4,
            monthly,
            service_daily,
            tenant_daily,
            usage: vec![UsageTotal { month: oct(), tenant: acme.clone(), metric: "requests".into(), value: 6.0 }],
            billed,
            explanations: vec![explanation("acme", 6.0), explanation("globex", 4.0)],
            inputs: "test".into(),
            created_at: now,
        })
        .await
        .unwrap();
    store.replace_revenue(&[oct()], &[RevenueEntry::new(oct(), acme.clone(), Money::parse("199", Currency::USD).unwrap()).unwrap()]).await.unwrap();
    // A stored savings report for the default 30-day look-back (its arithmetic is tested in tally-savings).
    let projection =
        tally_savings::project(&[], &tally_savings::PriceCatalogue::bundled(), &tally_savings::ProjectionParams { end: Some(now), ..Default::default() });
    let report = tally_savings::SavingsReport::new(now, projection, None, None);
    store.put_document(&tally_savings::report_document(30), &serde_json::to_string(&report).unwrap(), now).await.unwrap();
    let mut config = Config::default();
    configure(&mut config);
    let clock = Arc::new(ManualClock::new(now));
    let allocator = Arc::new(RecordingAllocator::default());
    let lake = Arc::new(tally_lake::Lake::open(None, dir.path(), store.clone()).unwrap());
    let state = ApiState::new(store.clone(), lake, Arc::new(config), clock, allocator.clone());
    let mut tokens = BTreeMap::new();
    for (name, role, tenant) in
        [("admin", Role::Admin, None), ("finance", Role::Finance, None), ("viewer", Role::Viewer, None), ("tenant", Role::Tenant, Some(acme.clone()))]
    {
        tokens.insert(name, issue(store.as_ref(), role, tenant, None, None, now).await.unwrap().token);
    }
    let revoked = issue(store.as_ref(), Role::Admin, None, None, None, now).await.unwrap();
    store.revoke_token(revoked.record.id, now).await.unwrap();
    tokens.insert("revoked", revoked.token);
    let expired = issue(store.as_ref(), Role::Admin, None, None, Some(now - chrono::Duration::hours(1)), now - chrono::Duration::days(1)).await.unwrap();
    tokens.insert("expired", expired.token);
    TestApp { router: router(state), tokens, allocator, store, _dir: dir }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

impl TestApp {
    async fn call(&self, method: Method, uri: &str, who: Option<&str>, body: Option<&str>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(w) = who {
            req = req.header("authorization", format!("Bearer {}", self.tokens.get(w).map_or(w, String::as_str)));
        }
        self.send(req.header("content-type", "application/json").body(Body::from(body.unwrap_or("").to_owned())).unwrap()).await
    }

    /// Sends a request from a client at 127.0.0.1 and collects the whole answer.
    async fn send(&self, mut req: Request<Body>) -> Answer {
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 64 << 20).await.unwrap().to_vec();
        Answer { status, headers, body }
    }

    async fn get(&self, uri: &str, who: Option<&str>) -> Answer {
        self.call(Method::GET, uri, who, None).await
    }

    /// A request as a browser sends it: the cookie, these headers, this body.
    async fn browser(&self, method: Method, uri: &str, cookie: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut req = Request::builder().method(method).uri(uri).header("host", "tally.test");
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::from(body.to_owned())).unwrap()).await
    }

    /// Signs in through the form as a browser does; the `name=value` of the session cookie.
    async fn sign_in(&self, who: &str) -> String {
        let form = format!("token={}", self.tokens[who]);
        let a =
            self.browser(Method::POST, "/login", "", &[("origin", "http://tally.test"), ("content-type", "application/x-www-form-urlencoded")], &form).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", String::from_utf8_lossy(&a.body));
        let set = a.headers["set-cookie"].to_str().unwrap().to_owned();
        set.split(';').next().unwrap().to_owned()
    }
}

const ROLES: [&str; 4] = ["admin", "finance", "viewer", "tenant"];

/// (method, uri, body, expected status for admin, finance, viewer, tenant)
fn matrix() -> Vec<(Method, &'static str, Option<&'static str>, [u16; 4])> {
    vec![
        (Method::GET, "/api/v1/costs?month=2026-10", None, [200, 200, 200, 200]),
        (Method::GET, "/api/v1/costs?month=2026-10&group_by=day,service", None, [200, 200, 200, 400]),
        (Method::GET, "/api/v1/costs?month=2026-10&group_by=day,tenant", None, [200, 200, 200, 200]),
        (Method::GET, "/api/v1/tenants?month=2026-10", None, [200, 200, 200, 200]),
        (Method::GET, "/api/v1/tenants/acme?month=2026-10", None, [200, 200, 200, 200]),
        (Method::GET, "/api/v1/tenants/globex?month=2026-10", None, [200, 200, 200, 404]),
        (Method::GET, "/api/v1/burn", None, [200, 200, 200, 403]),
        (Method::GET, "/api/v1/savings", None, [200, 200, 200, 403]),
        (Method::GET, "/api/v1/savings?lookback=30&term=1y&payment=partial", None, [200, 200, 200, 403]),
        (Method::GET, "/api/v1/savings?lookback=7", None, [404, 404, 404, 403]),
        (Method::GET, "/api/v1/savings?lookback=14", None, [400, 400, 400, 403]),
        (Method::GET, "/api/v1/savings?term=5y", None, [400, 400, 400, 403]),
        (Method::GET, "/api/v1/reconciliation?month=2026-10", None, [200, 200, 200, 403]),
        (Method::GET, "/api/v1/jobs", None, [200, 200, 200, 403]),
        (Method::GET, "/api/v1/explanations?month=2026-10", None, [200, 200, 200, 200]),
        (Method::GET, "/api/v1/exports/monthly.csv?month=2026-10", None, [200, 200, 403, 403]),
        (Method::GET, "/api/v1/exports/monthly.parquet?month=2026-10", None, [200, 200, 403, 403]),
        (Method::GET, "/api/v1/exports/focus?month=2026-10", None, [200, 200, 403, 403]),
        (Method::GET, "/api/v1/exports/focus?month=2026-10&format=csv", None, [200, 200, 403, 403]),
        (Method::POST, "/api/v1/revenue", Some(r#"{"month":"2026-10","tenant":"globex","amount":"49.00","currency":"USD"}"#), [201, 403, 403, 403]),
        (Method::POST, "/api/v1/cash-balances", Some(r#"{"as_of":"2026-11-01","amount":"150000.00"}"#), [201, 403, 403, 403]),
        (Method::POST, "/api/v1/allocations/2026-10", None, [200, 403, 403, 403]),
        (Method::GET, "/charts/burn.svg", None, [200, 200, 200, 403]),
        (Method::GET, "/charts/burn.png?month=2026-10&w=600&h=400", None, [200, 200, 200, 403]),
        (Method::GET, "/charts/tenants.png?month=2026-10", None, [200, 200, 200, 200]),
        (Method::GET, "/charts/daily.svg?from=2026-10-01&to=2026-11-01", None, [200, 200, 200, 200]),
        (Method::GET, "/charts/tenant.svg?tenant=acme", None, [200, 200, 200, 200]),
        (Method::GET, "/charts/tenant.png?tenant=globex", None, [200, 200, 200, 404]),
        (Method::GET, "/charts/savings.svg", None, [200, 200, 200, 403]),
        (Method::GET, "/charts/burn.gif", None, [404, 404, 404, 404]),
        (Method::GET, "/charts/pie.svg", None, [404, 404, 404, 404]),
        (Method::GET, "/charts/tenants.svg?w=10", None, [400, 400, 400, 400]),
        (Method::GET, "/metrics", None, [200, 200, 200, 403]),
        (Method::GET, "/api/openapi.json", None, [200, 200, 200, 200]),
    ]
}

#[tokio::test]
async fn every_route_answers_every_role_as_the_role_allows() {
    let app = spawn_app(1_000_000).await;
    for (method, uri, body, expected) in matrix() {
        for (role, want) in ROLES.iter().zip(expected) {
            let a = app.call(method.clone(), uri, Some(role), body).await;
            assert_eq!(a.status.as_u16(), want, "{method} {uri} as {role}: {}", String::from_utf8_lossy(&a.body));
            if a.status.is_client_error() {
                let j = a.json();
                assert!(j["code"].is_string() && j["message"].is_string(), "{method} {uri}: {j}");
            }
        }
        // Without a token, or with a revoked or expired one: 401 as JSON.
        for who in [None, Some("revoked"), Some("expired"), Some("tly_not-a-token")] {
            let a = app.call(method.clone(), uri, who, body).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {uri} as {who:?}");
            assert_eq!(a.json()["code"], "unauthorized");
        }
    }
    assert_eq!(app.allocator.0.lock().unwrap().as_slice(), &[oct()], "only the admin's request re-ran the allocation");
}

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let app = spawn_app(1_000_000).await;
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ready");
}

#[tokio::test]
async fn a_tenant_token_sees_only_its_own_tenant_on_every_route() {
    let app = spawn_app(1_000_000).await;
    let costs = app.get("/api/v1/costs?month=2026-10&group_by=tenant", Some("tenant")).await.json();
    let groups = costs["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["key"]["tenant"], "acme");
    assert_eq!(costs["total"], "7.50");
    for uri in [
        "/api/v1/costs?month=2026-10&tenant=globex",
        "/api/v1/costs?month=2026-10&tenant=__unallocated__",
        "/api/v1/tenants/globex",
        "/api/v1/tenants/nosuch",
        "/api/v1/explanations?month=2026-10&tenant=globex",
    ] {
        let a = app.get(uri, Some("tenant")).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!String::from_utf8_lossy(&a.body).contains("4.00"), "{uri} leaks globex's figures");
    }
    let list = app.get("/api/v1/tenants?month=2026-10", Some("tenant")).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let ex = app.get("/api/v1/explanations?month=2026-10", Some("tenant")).await.json();
    assert!(ex.as_array().unwrap().iter().all(|e| e["tenant"] == "acme"));
    // The dashboard: another tenant's page is a 404 too.
    let cookie = app.sign_in("tenant").await;
    assert_eq!(app.browser(Method::GET, "/tenants/globex", &cookie, &[], "").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.browser(Method::GET, "/tenants/acme", &cookie, &[], "").await.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_parameters_are_400s_that_name_the_parameter() {
    let app = spawn_app(1_000_000).await;
    for (uri, name) in [
        ("/api/v1/costs?month=2026-13", "month"),
        ("/api/v1/costs?group_by=region", "group_by"),
        ("/api/v1/costs?measure=blended", "measure"),
        ("/api/v1/costs?from=2026-10&to=2026-09", "to"),
        ("/api/v1/costs?mnth=2026-10", "mnth"),
        ("/api/v1/jobs?limit=0", "limit"),
        ("/api/v1/jobs?limit=lots", "limit"),
        ("/api/v1/exports/monthly.csv", "month"),
        ("/api/v1/reconciliation?month=10-2026", "month"),
        ("/api/v1/costs?month=2026-10&month=2026-09", "month"),
        ("/api/v1/costs?month=%ZZ", "month"),
        ("/api/v1/exports/focus?month=2026-10&format=xlsx", "format"),
    ] {
        let a = app.get(uri, Some("admin")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}");
        let j = a.json();
        assert_eq!(j["code"], "bad_parameter", "{uri}");
        assert!(j["message"].as_str().unwrap().contains(&format!("`{name}`")), "{uri}: {j}");
    }
    let a = app.call(Method::POST, "/api/v1/revenue", Some("admin"), Some("{not json")).await;
    assert_eq!((a.status, a.json()["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "bad_body"));
    let a = app.call(Method::POST, "/api/v1/revenue", Some("admin"), Some(r#"{"month":"2026-10","tenant":"Bad Tenant","amount":"1","currency":"USD"}"#)).await;
    assert!(a.json()["message"].as_str().unwrap().contains("`tenant`"));
    let a = app.call(Method::POST, "/api/v1/revenue", Some("admin"), Some(r#"{"month":"2026-10","tenant":"acme","amount":"-5","currency":"USD"}"#)).await;
    assert!(a.json()["message"].as_str().unwrap().contains("`amount`"));
    let a = app.call(Method::POST, "/api/v1/allocations/Oct", Some("admin"), None).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/reconciliation?month=2026-09", Some("admin")).await.json()["code"], "not_allocated");
    assert_eq!(app.get("/api/v1/nothing", Some("admin")).await.json()["code"], "not_found");
}

#[tokio::test]
async fn a_client_over_its_rate_is_told_when_to_retry() {
    let app = spawn_app(3).await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/costs", Some("admin")).await.status, StatusCode::OK);
    }
    let a = app.get("/api/v1/costs", Some("admin")).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.json()["code"], "rate_limited");
    assert_eq!(a.headers["retry-after"], "20");
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK, "probes are not rate limited");
}

#[tokio::test]
async fn behind_a_proxy_the_rate_limit_counts_the_address_the_proxy_saw() {
    let app = spawn_app_with(|c| {
        c.server.rate_limit_per_minute = 3;
        c.server.trust_forwarded_for = true;
    })
    .await;
    // The client writes a new address at the left of each request; the proxy
    // appends the one it saw (203.0.113.9) at the right.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let mut req = Request::builder()
            .uri("/api/v1/costs")
            .header("authorization", format!("Bearer {}", app.tokens["admin"]))
            .header("x-forwarded-for", format!("10.0.0.{i}, 203.0.113.9"))
            .body(Body::empty())
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        statuses.push(app.router.clone().oneshot(req).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429], "spoofed leftmost addresses must not escape the limit");
}

#[tokio::test]
async fn the_monthly_csv_sums_to_the_bill_per_service_and_neutralises_formulas() {
    let app = spawn_app(1_000_000).await;
    let a = app.get("/api/v1/exports/monthly.csv?month=2026-10", Some("finance")).await;
    assert_eq!(a.headers["content-type"], "text/csv; charset=utf-8");
    let text = String::from_utf8(a.body).unwrap();
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    assert!(lines.next().unwrap().starts_with("month,tenant,service,pool,unblended_cost,amortized_cost,driver,driver_quantity"));
    let mut per_service: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        *per_service.entry(cells[2].to_owned()).or_default() += d(cells[4]);
        if cells[1] == "globex" {
            assert_eq!(cells[9], "'=Globex", "a display name starting with = is neutralised");
        }
    }
    assert_eq!(per_service["AWSELB"], d("10.00"));
    assert_eq!(per_service["AmazonS3"], d("2.50"));
    assert_eq!(per_service["AWSDataTransfer"], d("2.25"));
}

#[tokio::test]
async fn kept_answers_follow_every_write() {
    let app = spawn_app(1_000_000).await;
    let revenue = |a: &Answer| a.json()["revenue"].as_str().unwrap().to_owned();
    let page_shows = |a: &Answer, s: &str| String::from_utf8_lossy(&a.body).contains(s);
    assert_eq!(revenue(&app.get("/api/v1/tenants/acme?month=2026-10", Some("viewer")).await), "199");
    assert!(page_shows(&app.get("/tenants/acme?month=2026-10", Some("viewer")).await, "$199.00"));
    // Kept: the same answer again, the chart's own headers with it.
    let chart = app.get("/charts/tenant.svg?tenant=acme", Some("viewer")).await;
    let again = app.get("/charts/tenant.svg?tenant=acme", Some("viewer")).await;
    assert_eq!((again.body.as_slice(), again.headers.get("cache-control")), (chart.body.as_slice(), chart.headers.get("cache-control")));

    // Another replica writes (straight into the database): seen within the check interval.
    let acme = TenantId::parse("acme").unwrap();
    app.store.replace_revenue(&[oct()], &[RevenueEntry::new(oct(), acme, Money::parse("250", Currency::USD).unwrap()).unwrap()]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(revenue(&app.get("/api/v1/tenants/acme?month=2026-10", Some("viewer")).await), "250");
    assert!(page_shows(&app.get("/tenants/acme?month=2026-10", Some("viewer")).await, "$250.00"));

    // This server writes: seen at once.
    let posted =
        app.call(Method::POST, "/api/v1/revenue", Some("admin"), Some(r#"{"month":"2026-10","tenant":"acme","amount":"300.00","currency":"USD"}"#)).await;
    assert_eq!(posted.status, StatusCode::CREATED);
    assert_eq!(revenue(&app.get("/api/v1/tenants/acme?month=2026-10", Some("viewer")).await), "300.00");
    assert!(page_shows(&app.get("/tenants/acme?month=2026-10", Some("viewer")).await, "$300.00"));
    // Answers are kept per role and tenant: the tenant's own token sees its figures, not a viewer's page.
    assert_eq!(revenue(&app.get("/api/v1/tenants/acme?month=2026-10", Some("tenant")).await), "300.00");
    assert_eq!(app.get("/api/v1/tenants/globex?month=2026-10", Some("tenant")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reports_carry_the_figures_people_read() {
    let app = spawn_app(1_000_000).await;
    let rec = app.get("/api/v1/reconciliation?month=2026-10", Some("viewer")).await.json();
    assert_eq!(rec["reconciled"], true);
    assert_eq!(rec["billed_total"], "14.75");
    assert_eq!(rec["unallocated"][0]["reason"], "no egress_gb usage in the line's hour");
    let t = app.get("/api/v1/tenants/acme?month=2026-10", Some("viewer")).await.json();
    assert_eq!(t["cost"], "7.50");
    assert_eq!(t["revenue"], "199");
    assert_eq!(t["gross_margin"], "191.50");
    let burn = app.get("/api/v1/burn", Some("viewer")).await.json();
    assert_eq!(burn["months"][0]["aws_cost"], "14.75");
    let by_day = app.get("/api/v1/costs?from=2026-10-01&to=2026-11-01&group_by=day", Some("viewer")).await.json();
    assert_eq!(by_day["groups"][0]["key"]["day"], "2026-10-03");
}

#[tokio::test]
async fn margins_and_unit_costs_are_amortized_unless_asked_for_unblended() {
    // docs/allocation.md's worked example, stored as the allocation of September:
    // Acme's node is covered by a Reserved Instance (its hours are 0.00 unblended,
    // 90.02 amortized) and the RIFee of 90.02 was spread over both tenants like a
    // shared cost, by their amortized cost of the other pools, 110.02 : 80.00, in
    // the unblended measure only.
    let app = spawn_app(1_000_000).await;
    let sep = Month::parse("2026-09").unwrap();
    let line = |who: &str, pool: &str, service: &str, unblended: &str, amortized: &str| AllocationRow {
        month: sep,
        unblended: d(unblended),
        amortized: d(amortized),
        driver: None,
        driver_quantity: None,
        ..row(who, pool, service, "0")
    };
    let billed = |service: &str, cost: &str| BilledTotal {
        month: sep,
        service: service.into(),
        currency: Currency::USD,
        unblended: d(cost),
        amortized: d(cost),
        lines: 1,
    };
    app.store
        .replace_allocation(&AllocationResultSet {
            month: sep,
            source: CostSource::Cur,
            billed_lines: 3,
            usage_rows: 0,
            monthly: vec![
                line("acme", "eks_compute", "AmazonEC2", "0.00", "90.02"),
                line("acme", "load_balancer", "AWSELB", "20.00", "20.00"),
                line("acme", "unused_commitment", "AmazonEC2", "52.12", "0.00"),
                line("globex", "rds_compute", "AmazonRDS", "80.00", "80.00"),
                line("globex", "unused_commitment", "AmazonEC2", "37.90", "0.00"),
            ],
            service_daily: vec![],
            tenant_daily: vec![],
            usage: vec![],
            billed: vec![billed("AmazonEC2", "90.02"), billed("AWSELB", "20.00"), billed("AmazonRDS", "80.00")],
            explanations: vec![],
            inputs: "test".into(),
            created_at: "2026-10-02T00:00:00Z".parse().unwrap(),
        })
        .await
        .unwrap();
    let revenue = |t: &str| RevenueEntry::new(sep, TenantId::parse(t).unwrap(), Money::parse("200", Currency::USD).unwrap()).unwrap();
    app.store.replace_revenue(&[sep], &[revenue("acme"), revenue("globex")]).await.unwrap();

    let acme = app.get("/api/v1/tenants/acme?month=2026-09", Some("viewer")).await.json();
    assert_eq!(
        (&acme["measure"], &acme["cost"], &acme["cost_unblended"], &acme["cost_amortized"], &acme["gross_margin_percent"]),
        (&"amortized".into(), &"110.02".into(), &"72.12".into(), &"110.02".into(), &"45.0".into())
    );
    assert_eq!(acme["by_pool"][0]["name"], "eks_compute");
    let invoiced = app.get("/api/v1/tenants/acme?month=2026-09&measure=unblended", Some("viewer")).await.json();
    assert_eq!((&invoiced["measure"], &invoiced["cost"], &invoiced["gross_margin_percent"]), (&"unblended".into(), &"72.12".into(), &"63.9".into()));
    let all = app.get("/api/v1/tenants?month=2026-09", Some("viewer")).await.json();
    let margins: Vec<(&str, &str)> =
        all.as_array().unwrap().iter().map(|t| (t["tenant"].as_str().unwrap(), t["gross_margin_percent"].as_str().unwrap())).collect();
    assert_eq!(margins, [("acme", "45.0"), ("globex", "60.0")]);
    let bad = app.get("/api/v1/tenants?month=2026-09&measure=blended", Some("viewer")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["message"].as_str().unwrap().contains("`measure`"));
    // The invoice view of costs stays unblended by default.
    let costs = app.get("/api/v1/costs?month=2026-09", Some("viewer")).await.json();
    assert_eq!((&costs["measure"], &costs["total"]), (&"unblended".into(), &"190.02".into()));
    // The dashboard says which measure it shows and links to the other.
    let page = String::from_utf8(app.get("/tenants/acme?month=2026-09", Some("viewer")).await.body).unwrap();
    assert!(page.contains("$110.02") && page.contains("invoiced $72.12") && page.contains("measure=unblended"), "{page}");
    let page = String::from_utf8(app.get("/tenants?month=2026-09&measure=unblended", Some("viewer")).await.body).unwrap();
    assert!(page.contains("$72.12") && page.contains("Show amortized"), "{page}");
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let app = spawn_app(1_000_000).await;
    let doc = app.get("/api/openapi.json", Some("viewer")).await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (_, uri, _, _) in matrix() {
        let mut path = uri.split('?').next().unwrap().replace("/acme", "/{tenant}").replace("/globex", "/{tenant}").replace("/2026-10", "/{month}");
        if path.starts_with("/charts/") {
            path = "/charts/{file}".into();
        }
        if path == "/api/openapi.json" {
            continue;
        }
        assert!(paths.contains_key(&path), "{path} is missing from the OpenAPI document");
    }
    for code in tally_api::ERROR_CODES {
        assert!(doc["info"]["description"].as_str().unwrap().contains(code.0));
    }
}

#[tokio::test]
async fn charts_are_images_of_the_reports_figures() {
    let app = spawn_app(1_000_000).await;
    let png = app.get("/charts/tenants.png?month=2026-10&w=800&h=400", Some("viewer")).await;
    assert_eq!(png.headers["content-type"], "image/png");
    assert_eq!(&png.body[..8], b"\x89PNG\r\n\x1a\n");
    let svg = app.get("/charts/tenants.svg?month=2026-10", Some("viewer")).await;
    assert_eq!(svg.headers["content-type"], "image/svg+xml");
    let text = String::from_utf8(svg.body).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..100]);
    // The tenants by name, their exact totals, the pools in the legend.
    for want in ["Acme", "=Globex", "$7.50", "$5.00", "load_balancer", "shared", "DejaVu Sans"] {
        assert!(text.contains(want), "{want} is not in the SVG");
    }
    let tenant_view = String::from_utf8(app.get("/charts/tenants.svg?month=2026-10", Some("tenant")).await.body).unwrap();
    assert!(tenant_view.contains("Acme") && !tenant_view.contains("Globex"), "a tenant's chart shows only itself");
    let font = app.get("/static/DejaVuSans.ttf", None).await;
    assert_eq!(font.status, StatusCode::OK);
    assert_eq!(font.headers["content-type"], "font/ttf");
}

#[tokio::test]
async fn signing_in_exchanges_the_token_for_a_session_that_signing_out_ends() {
    let app = spawn_app(1_000_000).await;
    let form = [("origin", "http://tally.test"), ("content-type", "application/x-www-form-urlencoded")];
    let a = app.browser(Method::POST, "/login", "", &form, &format!("token={}", app.tokens["viewer"])).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let set = a.headers["set-cookie"].to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP without an https public address: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("tally_session=tss_"), "the cookie holds a session id: {cookie}");
    assert!(!cookie.contains(&app.tokens["viewer"]), "never the token itself");
    assert_eq!(app.browser(Method::GET, "/", &cookie, &[], "").await.status, StatusCode::OK);
    assert_eq!(app.browser(Method::GET, "/api/v1/costs?month=2026-10", &cookie, &[], "").await.status, StatusCode::OK);

    // The form never travels in the address; a token put there is refused, not used.
    let page = app.browser(Method::GET, "/login", "", &[], "").await;
    assert!(String::from_utf8_lossy(&page.body).contains(r#"method="post""#));
    let a = app.browser(Method::GET, &format!("/login?token={}", app.tokens["viewer"]), "", &[], "").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.headers.contains_key("set-cookie"));
    // A wrong token signs nobody in.
    let a = app.browser(Method::POST, "/login", "", &form, "token=tly_nope").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(!a.headers.contains_key("set-cookie"));

    // Signing out ends the session on the server: the old cookie is worthless.
    let out = app.browser(Method::POST, "/logout", &cookie, &[("origin", "http://tally.test")], "").await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let after = app.browser(Method::GET, "/", &cookie, &[], "").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "back to the sign-in page");
    assert_eq!(app.browser(Method::GET, "/api/v1/costs", &cookie, &[], "").await.status, StatusCode::UNAUTHORIZED);

    // Revoking the token ends its sessions too.
    let cookie = app.sign_in("finance").await;
    let finance = app.store.tokens().await.unwrap().into_iter().find(|t| t.role == "finance").unwrap();
    app.store.revoke_token(finance.id, Utc::now()).await.unwrap();
    // Written behind the server's back, as another replica would: seen within the cache's check interval.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.browser(Method::GET, "/api/v1/costs", &cookie, &[], "").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_one_time_sign_in_link_works_once() {
    let app = spawn_app(1_000_000).await;
    let admin = app.store.tokens().await.unwrap().into_iter().find(|t| t.role == "admin" && t.revoked_at.is_none() && t.expires_at.is_none()).unwrap();
    let code = tally_api::auth::issue_link(app.store.as_ref(), &admin, 24, "2026-11-15T12:00:00Z".parse().unwrap()).await.unwrap();
    // Opening the link (as a link preview would, twice) uses nothing up: it shows a form to continue.
    for _ in 0..2 {
        let opened = app.browser(Method::GET, &format!("/login?code={code}"), "", &[], "").await;
        assert_eq!(opened.status, StatusCode::OK);
        assert!(!opened.headers.contains_key("set-cookie"));
        assert!(String::from_utf8_lossy(&opened.body).contains(r#"name="code""#));
    }
    let form = [("origin", "http://tally.test"), ("content-type", "application/x-www-form-urlencoded")];
    let first = app.browser(Method::POST, "/login", "", &form, &format!("code={code}")).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let cookie = first.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(!cookie.contains(&code), "the link's code is not the session");
    assert_eq!(app.browser(Method::GET, "/finance", &cookie, &[], "").await.status, StatusCode::OK);
    let again = app.browser(Method::POST, "/login", "", &form, &format!("code={code}")).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "a link signs in once");
    assert!(!again.headers.contains_key("set-cookie"));
    // Another site cannot post a code to sign a victim in (login CSRF).
    let code = tally_api::auth::issue_link(app.store.as_ref(), &admin, 24, "2026-11-15T12:00:00Z".parse().unwrap()).await.unwrap();
    let cross = [("origin", "https://evil.example"), ("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(app.browser(Method::POST, "/login", "", &cross, &format!("code={code}")).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_session_cookie_is_secure_over_https() {
    let app = spawn_app_with(|c| c.server.public_url = Some("https://tally.example.com".into())).await;
    let form = [("origin", "https://tally.example.com"), ("content-type", "application/x-www-form-urlencoded")];
    let a = app.browser(Method::POST, "/login", "", &form, &format!("token={}", app.tokens["viewer"])).await;
    assert!(a.headers["set-cookie"].to_str().unwrap().contains("; Secure"));
    assert!(a.headers.contains_key("strict-transport-security"));
    // Behind a trusted TLS proxy without a public address configured.
    let app = spawn_app_with(|c| c.server.trust_forwarded_for = true).await;
    let form = [("origin", "http://tally.test"), ("content-type", "application/x-www-form-urlencoded"), ("x-forwarded-proto", "https")];
    let a = app.browser(Method::POST, "/login", "", &form, &format!("token={}", app.tokens["viewer"])).await;
    assert!(a.headers["set-cookie"].to_str().unwrap().contains("; Secure"));
}

#[tokio::test]
async fn a_signed_in_browser_writes_only_from_tallys_own_pages_and_only_json() {
    let app = spawn_app(1_000_000).await;
    let cookie = app.sign_in("admin").await;
    let revenue = r#"{"month":"2026-10","tenant":"acme","amount":"300","currency":"USD"}"#;
    // The attack: a foreign page posts a text/plain body with the victim's cookie.
    let a = app.browser(Method::POST, "/api/v1/revenue", &cookie, &[("origin", "https://evil.example"), ("content-type", "text/plain")], revenue).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.json()["code"], "forbidden");
    // Same origin but not JSON: a form or text body is what a cross-site page could send.
    let a = app.browser(Method::POST, "/api/v1/revenue", &cookie, &[("origin", "http://tally.test"), ("content-type", "text/plain")], revenue).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(a.json()["code"], "unsupported_media_type");
    // No Origin at all from a cookie-carrying client: refused.
    let a = app.browser(Method::POST, "/api/v1/revenue", &cookie, &[("content-type", "application/json")], revenue).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Nothing of those was stored.
    let acme = |r: &[RevenueEntry]| r.iter().find(|e| e.tenant.as_str() == "acme").map(|e| e.amount.amount);
    assert_eq!(acme(&app.store.revenue(oct(), oct()).await.unwrap()), Some(d("199")));
    // Tally's own page, JSON: accepted.
    let a = app.browser(Method::POST, "/api/v1/revenue", &cookie, &[("origin", "http://tally.test"), ("content-type", "application/json")], revenue).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(acme(&app.store.revenue(oct(), oct()).await.unwrap()), Some(d("300")));
    // A cross-site sign-out or sign-in is refused as well.
    let a = app.browser(Method::POST, "/logout", &cookie, &[("origin", "https://evil.example")], "").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // A bearer client (no cookie) is not a browser: no Origin needed.
    let a = app.call(Method::POST, "/api/v1/revenue", Some("admin"), Some(revenue)).await;
    assert_eq!(a.status, StatusCode::CREATED);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app(1_000_000).await;
    let cookie = app.sign_in("admin").await;
    for (uri, with_cookie) in
        [("/", true), ("/login", false), ("/api/v1/costs", true), ("/healthz", false), ("/api/v1/nothing", true), ("/charts/burn.svg", true)]
    {
        let a = app.browser(Method::GET, uri, if with_cookie { &cookie } else { "" }, &[], "").await;
        let h = &a.headers;
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"), "{uri}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{uri}");
        assert_eq!(h["x-frame-options"], "DENY", "{uri}");
        assert_eq!(h["referrer-policy"], "same-origin", "{uri}");
    }
    // No inline script or style on a page: the policy would block it.
    let page = String::from_utf8(app.browser(Method::GET, "/", &cookie, &[], "").await.body).unwrap();
    assert!(!page.contains("<script") && !page.contains("<style") && !page.contains(" style="), "inline script or style in the page");
    let css = app.browser(Method::GET, "/static/tally.css", "", &[], "").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["content-type"].to_str().unwrap().starts_with("text/css"));
}

#[tokio::test]
async fn errors_the_framework_makes_keep_the_json_shape() {
    let app = spawn_app_with(|c| c.server.max_body_bytes = 1024).await;
    let big = format!(r#"{{"month":"2026-10","tenant":"acme","amount":"1","currency":"USD","note":"{}"}}"#, "x".repeat(4096));
    let a = app.call(Method::POST, "/api/v1/revenue", Some("admin"), Some(&big)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.json()["code"], "payload_too_large");
    let a = app.call(Method::DELETE, "/api/v1/costs", Some("admin"), None).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.json()["code"], "method_not_allowed");
    let mut req = Request::builder().method(Method::POST).uri("/api/v1/revenue").header("authorization", format!("Bearer {}", app.tokens["admin"]));
    req = req.header("content-type", "application/json");
    let a = app.send(req.body(Body::from(vec![0xff, 0xfe, b'{'])).unwrap()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["code"], "bad_body");
}

#[tokio::test]
async fn work_per_request_is_bounded() {
    let app = spawn_app(1_000_000).await;
    // The attack: a group_by of the same dimension thousands of times.
    let long = format!("/api/v1/costs?month=2026-10&group_by={}", vec!["day"; 16_000].join(","));
    let a = app.get(&long, Some("viewer")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["message"].as_str().unwrap().contains("at most 2048"), "{}", a.json());
    // Repeats within the limit count once.
    let a = app.get("/api/v1/costs?month=2026-10&group_by=tenant,tenant,tenant,month,tenant", Some("viewer")).await.json();
    assert_eq!(a["group_by"], serde_json::json!(["tenant", "month"]));
}

#[tokio::test]
async fn amounts_beyond_the_documented_range_are_refused_by_name() {
    let app = spawn_app(1_000_000).await;
    for (uri, body) in [
        ("/api/v1/revenue", r#"{"month":"2026-10","tenant":"acme","amount":"79228162514264337593543950335","currency":"USD"}"#),
        ("/api/v1/revenue", r#"{"month":"2026-10","tenant":"acme","amount":"1000000000000001","currency":"USD"}"#),
        ("/api/v1/cash-balances", r#"{"as_of":"2026-11-01","amount":"79228162514264337593543950335"}"#),
    ] {
        let a = app.call(Method::POST, uri, Some("admin"), Some(body)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri} {body}");
        assert!(a.json()["message"].as_str().unwrap().contains("`amount`"), "{}", a.json());
    }
    // Every page still answers.
    for uri in ["/api/v1/burn", "/api/v1/tenants", "/charts/burn.png"] {
        assert_eq!(app.get(uri, Some("admin")).await.status, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn a_failed_allocation_is_told_apart_without_its_internals() {
    let app = spawn_app(1_000_000).await;
    let a = app.call(Method::POST, "/api/v1/allocations/2099-01", Some("admin"), None).await;
    assert_eq!((a.status, a.json()["code"].as_str().unwrap()), (StatusCode::CONFLICT, "not_allocated"));
    let a = app.call(Method::POST, "/api/v1/allocations/2099-02", Some("admin"), None).await;
    assert_eq!((a.status, a.json()["code"].as_str().unwrap()), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
    assert!(!String::from_utf8_lossy(&a.body).contains("duplicate key"), "internals stay in the log");
    let a = app.call(Method::POST, "/api/v1/allocations/2099-03", Some("admin"), None).await;
    assert_eq!((a.status, a.json()["code"].as_str().unwrap()), (StatusCode::SERVICE_UNAVAILABLE, "not_ready"));
}
