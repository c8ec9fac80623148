//! The CloudWatch collector against LocalStack (the real wire, RPC v2 CBOR):
//! more than 500 queries in one run, and a tenant with no data.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{DurationRound, Utc};
use tally_collectors::aws::{AwsSettings, sdk_config};
use tally_collectors::cloudwatch::{SdkCloudWatch, collect_usage};
use tally_collectors::retry::RetryPolicy;
use tally_domain::{CloudWatchQuery, TenantId};

fn query(metric: &str, name: &str, statistic: &str) -> CloudWatchQuery {
    CloudWatchQuery {
        metric: metric.into(),
        namespace: "SaaS/Api".into(),
        metric_name: name.into(),
        statistic: statistic.into(),
        tenant_dimension: "TenantId".into(),
        dimensions: BTreeMap::from([("Environment".to_string(), "prod".to_string())]),
        scale: if name == "ResponseBytes" { 1e-9 } else { 1.0 },
    }
}

#[tokio::test]
async fn more_than_500_queries_are_batched_and_become_hourly_samples() {
    let ls = tally_test_support::start_localstack().expect("LocalStack (run ./scripts/test.sh to install it)");
    let settings =
        AwsSettings { endpoint_url: Some(ls.endpoint()), region: Some("us-east-1".into()), static_credentials: Some(("test".into(), "test".into())) };
    let cw = SdkCloudWatch::new(&sdk_config(&settings).await);
    let now = Utc::now();
    let hour = now.duration_trunc(chrono::Duration::hours(1)).unwrap();
    // Two points in the previous hour and one in this hour, for 260 tenants.
    let points = [(hour - chrono::Duration::minutes(50), 1.0), (hour - chrono::Duration::minutes(20), 2.0), (hour + chrono::Duration::seconds(30), 4.0)];
    let tenants: Vec<String> = (0..260).map(|i| format!("tenant-{i:03}")).collect();
    let mut data = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        for (at, v) in points {
            for (name, scale) in [("RequestCount", 1.0), ("ResponseBytes", 1e6)] {
                let dims = vec![Dimension::builder().name("TenantId").value(t).build(), Dimension::builder().name("Environment").value("prod").build()];
                let value = v * (i + 1) as f64 * scale;
                data.push(
                    MetricDatum::builder().metric_name(name).set_dimensions(Some(dims)).timestamp(AwsDateTime::from_secs(at.timestamp())).value(value).build(),
                );
            }
        }
    }
    for chunk in data.chunks(150) {
        cw.client().put_metric_data().namespace("SaaS/Api").set_metric_data(Some(chunk.to_vec())).send().await.expect("PutMetricData");
    }
    let queries = [query("requests", "RequestCount", "Sum"), query("egress_gb", "ResponseBytes", "Sum")];
    let quiet = TenantId::parse("quiet-tenant").unwrap();
    let policy = RetryPolicy { max_retries: 3, base_delay: Duration::from_millis(50), max_delay: Duration::from_millis(500) };
    let got = collect_usage(
        &cw,
        &queries,
        &BTreeMap::new(),
        std::slice::from_ref(&quiet),
        hour - chrono::Duration::hours(2),
        hour + chrono::Duration::hours(1),
        now,
        &policy,
    )
    .await
    .unwrap();
    assert_eq!(got.queries, 522, "260 tenants x 2 metrics, and the quiet tenant asked for both");
    assert!(got.calls >= 2, "more than 500 queries need at least two GetMetricData calls: {}", got.calls);
    assert_eq!(got.period, 60, "recent data is read at one-minute resolution");
    assert!(got.samples.iter().all(|s| s.tenant != quiet), "a tenant with no data gets no samples");
    let find = |tenant: &str, metric: &str, h| {
        got.samples.iter().find(|s| s.tenant.as_str() == tenant && s.metric.as_str() == metric && s.hour.start() == h).map(|s| s.value)
    };
    // tenant-004 (the fifth): (1 + 2) x 5 in the previous hour, 4 x 5 in this one.
    assert_eq!(find("tenant-004", "requests", hour - chrono::Duration::hours(1)), Some(15.0));
    assert_eq!(find("tenant-004", "requests", hour), Some(20.0));
    let egress = find("tenant-004", "egress_gb", hour - chrono::Duration::hours(1)).unwrap();
    assert!((egress - 0.015).abs() < 1e-12, "bytes scaled to GB: {egress}");
    assert_eq!(got.samples.len(), 260 * 2 * 2);
}
