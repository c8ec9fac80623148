//! The Cost Explorer collector over the real wire, against moto.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tally_collectors::aws::{AwsSettings, sdk_config};
use tally_collectors::cost_explorer::SdkCostExplorer;
use tally_collectors::retry::RetryPolicy;
use tally_domain::{Config, CostSource, ManualClock, Month};
use tally_jobs::App;
use tally_jobs::collect::collect_costs;
use tally_storage::{SqliteStore, Store};

fn day(d: &str) -> NaiveDate {
    NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
}

fn money(a: &str) -> Value {
    json!({ "Amount": a, "Unit": "USD" })
}

fn group(keys: [&str; 2], cost: &str) -> Value {
    json!({ "Keys": keys, "Metrics": { "UnblendedCost": money(cost), "AmortizedCost": money(cost), "UsageQuantity": { "Amount": "24", "Unit": "Hrs" } } })
}

fn result(days: &[(&str, bool, Vec<Value>)], next: Option<&str>) -> Value {
    let by_time: Vec<Value> = days
        .iter()
        .map(|(d, est, groups)| {
            let end = (day(d) + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
            json!({ "TimePeriod": { "Start": d, "End": end }, "Total": {}, "Groups": groups, "Estimated": est })
        })
        .collect();
    let mut r = json!({ "ResultsByTime": by_time, "DimensionValueAttributes": [] });
    if let Some(t) = next {
        r["NextPageToken"] = json!(t);
    }
    r
}

/// Three requests: the service query in two pages, then the tag query.
fn seeded(day3_ec2: &str) -> Vec<Value> {
    vec![
        result(
            &[
                (
                    "2026-10-01",
                    false,
                    vec![
                        group(["Amazon Elastic Compute Cloud - Compute", "BoxUsage:m5.xlarge"], "13.824"),
                        group(["Amazon Simple Storage Service", "TimedStorage-ByteHrs"], "2.10"),
                    ],
                ),
                ("2026-10-02", false, vec![group(["Amazon Elastic Compute Cloud - Compute", "BoxUsage:m5.xlarge"], "13.824")]),
            ],
            Some("page-2"),
        ),
        result(&[("2026-10-03", true, vec![group(["Amazon Elastic Compute Cloud - Compute", "BoxUsage:m5.xlarge"], day3_ec2)])], None),
        result(
            &[
                ("2026-10-01", false, vec![group(["tenant$acme", "TimedStorage-ByteHrs"], "0.60"), group(["tenant$", "TimedStorage-ByteHrs"], "1.50")]),
                ("2026-10-02", false, vec![]),
                ("2026-10-03", true, vec![]),
            ],
            None,
        ),
    ]
}

struct Fixture {
    app: App,
    api: SdkCostExplorer,
    moto: tally_test_support::Peer,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(budget: u32) -> Self {
        let moto = tally_test_support::start_moto().expect("moto_server (run ./scripts/test.sh to install it)");
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap());
        store.migrate().await.unwrap();
        let mut config = Config::default();
        config.collectors.cost_explorer.monthly_request_budget = budget;
        let app =
            App::new(store, Arc::new(config), Arc::new(ManualClock::new("2026-10-04T06:20:00Z".parse().unwrap())), dir.path().to_path_buf(), "test".into())
                .unwrap();
        let settings = AwsSettings {
            endpoint_url: Some(moto.endpoint()),
            region: Some("us-east-1".into()),
            static_credentials: Some(("testing".into(), "testing".into())),
        };
        let api = SdkCostExplorer::new(&sdk_config(&settings).await);
        Self { app, api, moto, http: reqwest::Client::new(), _dir: dir }
    }

    async fn seed(&self, results: Vec<Value>) {
        let r = self.http.post(format!("{}/moto-api/reset", self.moto.endpoint())).send().await.unwrap();
        assert!(r.status().is_success());
        let r = self
            .http
            .post(format!("{}/moto-api/static/ce/cost-and-usage-results", self.moto.endpoint()))
            .json(&json!({ "results": results }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }

    /// Every Cost Explorer line in the store.
    async fn lines(&self) -> Vec<tally_domain::CostLine> {
        let mut lines = Vec::new();
        for m in self.app.lake.billing_months().await.unwrap() {
            lines.extend(self.app.lake.lines(CostSource::CostExplorer, m).await.unwrap());
        }
        lines
    }

    async fn total(&self) -> (usize, Decimal) {
        let lines = self.lines().await;
        (lines.len(), lines.iter().map(|l| l.unblended).sum())
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy { max_retries: 2, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(20) }
}

#[tokio::test]
async fn pages_are_followed_restatements_replace_the_days_and_recollecting_changes_nothing() {
    let f = Fixture::new(100).await;
    let window = Some((day("2026-10-01"), day("2026-10-04")));
    f.seed(seeded("13.824")).await;
    let first = collect_costs(&f.app, &f.api, window, &fast()).await.unwrap();
    assert_eq!(first.requests, 3, "two pages of the service query and one of the tag query");
    assert_eq!(first.estimated_days, 1);
    assert_eq!(f.total().await, (5, "43.572".parse().unwrap()));
    let lines = f.lines().await;
    let acme = lines.iter().find(|l| l.tenant.is_some()).unwrap();
    assert_eq!((acme.service.as_str(), acme.unblended), ("AmazonS3", "0.60".parse().unwrap()));
    assert!(lines.iter().any(|l| l.estimated), "the estimated day keeps its flag");

    // Cost Explorer restates day 3 (a late correction): the stored total follows.
    f.seed(seeded("12.50")).await;
    let second = collect_costs(&f.app, &f.api, window, &fast()).await.unwrap();
    assert_eq!(second.replaced, 5);
    assert_eq!(f.total().await, (5, "42.248".parse().unwrap()));

    // The same data again: nothing changes.
    f.seed(seeded("12.50")).await;
    collect_costs(&f.app, &f.api, window, &fast()).await.unwrap();
    assert_eq!(f.total().await, (5, "42.248".parse().unwrap()));

    assert_eq!(f.app.store.api_requests("cost_explorer", Month::parse("2026-10").unwrap()).await.unwrap(), 9);
    let runs = f.app.store.job_runs(Some("collect:costs"), 10).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.api_requests == 3 && r.rows_written == 5));

    // The restated month allocates: the collector's lines are real billing data.
    let out = tally_jobs::allocate::allocate_month(&f.app, Month::parse("2026-10").unwrap()).await.unwrap();
    assert_eq!(out.billed_lines, 5);
}

#[tokio::test]
async fn a_run_that_would_exceed_the_request_budget_stops_before_sending_and_writes_nothing() {
    let f = Fixture::new(2).await;
    f.seed(seeded("13.824")).await;
    let err = collect_costs(&f.app, &f.api, Some((day("2026-10-01"), day("2026-10-04"))), &fast()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("stopped before sending") && msg.contains("all 2 requests budgeted for 2026-10"), "{msg}");
    assert_eq!(f.total().await.0, 0, "nothing partial was written");
    assert_eq!(f.app.store.api_requests("cost_explorer", Month::parse("2026-10").unwrap()).await.unwrap(), 2);
    let run = &f.app.store.job_runs(Some("collect:costs"), 1).await.unwrap()[0];
    assert_eq!((run.outcome.as_str(), run.api_requests), ("failed", 2));
}

#[tokio::test]
async fn an_unreachable_cost_explorer_fails_after_its_retries_and_writes_nothing() {
    let f = Fixture::new(100).await;
    let settings = AwsSettings {
        endpoint_url: Some(format!("http://127.0.0.1:{}", tally_test_support::free_port())),
        region: Some("us-east-1".into()),
        static_credentials: Some(("testing".into(), "testing".into())),
    };
    let dead = SdkCostExplorer::new(&sdk_config(&settings).await);
    let err = collect_costs(&f.app, &dead, Some((day("2026-10-01"), day("2026-10-04"))), &fast()).await.unwrap_err();
    assert!(err.to_string().contains("after 3 attempt(s)"), "{err}");
    assert_eq!(f.total().await.0, 0);
}
