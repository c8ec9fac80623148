//! Throttling and server errors at the SDK boundary, with aws-smithy-mocks.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_costexplorer::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
use aws_sdk_costexplorer::types::{DateInterval, Group, MetricValue, ResultByTime};
use aws_sdk_costexplorer::{Client, Config};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use chrono::NaiveDate;
use tally_collectors::cost_explorer::{CollectError, RequestMeter, SdkCostExplorer, collect};
use tally_collectors::retry::{Failure, RetryPolicy};

const THROTTLED: &str = r#"{"__type":"LimitExceededException","message":"Rate exceeded"}"#;

struct Unlimited;

#[async_trait]
impl RequestMeter for Unlimited {
    async fn approve(&self) -> Result<(), String> {
        Ok(())
    }
}

fn client(rule: &Rule) -> SdkCostExplorer {
    let conf = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(aws_sdk_costexplorer::config::retry::RetryConfig::disabled())
        .http_client(create_mock_http_client())
        .interceptor(MockResponseInterceptor::new().rule_mode(RuleMode::Sequential).with_rule(rule))
        .build();
    SdkCostExplorer::from_client(Client::from_conf(conf))
}

fn one_day() -> GetCostAndUsageOutput {
    let metric = |a: &str| MetricValue::builder().amount(a).unit("USD").build();
    let group = Group::builder()
        .keys("Amazon Relational Database Service")
        .keys("Multi-AZUsage:db.r6g.xl")
        .metrics("UnblendedCost", metric("21.552"))
        .metrics("AmortizedCost", metric("21.552"))
        .metrics("UsageQuantity", metric("24"))
        .build();
    let day = ResultByTime::builder()
        .time_period(DateInterval::builder().start("2026-10-01").end("2026-10-02").build().unwrap())
        .groups(group)
        .estimated(false)
        .build();
    GetCostAndUsageOutput::builder().results_by_time(day).build()
}

fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy { max_retries, base_delay: Duration::from_millis(2), max_delay: Duration::from_millis(10) }
}

fn window() -> (NaiveDate, NaiveDate) {
    (NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 10, 2).unwrap())
}

#[tokio::test]
async fn throttling_twice_then_success_is_retried_to_success() {
    let rule = mock!(Client::get_cost_and_usage).sequence().http_status(400, Some(THROTTLED.to_owned())).times(2).output(one_day).repeatedly().build();
    let api = client(&rule);
    let (from, to) = window();
    let got = collect(&api, &Unlimited, &policy(3), from, to, "tenant").await.unwrap();
    assert_eq!(got.requests, 4, "two throttled attempts, then the service query and the tag query");
    assert_eq!(rule.num_calls(), 4);
    assert_eq!(got.lines.len(), 1);
    assert_eq!(got.lines[0].service, "AmazonRDS");
    assert_eq!(got.lines[0].unblended.to_string(), "21.552");
}

#[tokio::test]
async fn throttling_beyond_the_retry_limit_fails_the_run_with_a_clear_error() {
    let rule = mock!(Client::get_cost_and_usage).sequence().http_status(400, Some(THROTTLED.to_owned())).repeatedly().build();
    let api = client(&rule);
    let (from, to) = window();
    let err = collect(&api, &Unlimited, &policy(2), from, to, "tenant").await.unwrap_err();
    match &err {
        CollectError::Failed { failure: Failure::Throttled(m), attempts: 3, requests: 3 } => assert!(m.contains("LimitExceededException"), "{m}"),
        other => panic!("expected a throttling failure after 3 attempts, got {other:?}"),
    }
    assert!(err.to_string().contains("after 3 attempt(s)"));
}

#[tokio::test]
async fn a_server_error_is_retried_and_a_client_error_is_not() {
    let rule = mock!(Client::get_cost_and_usage).sequence().http_status(503, None).times(1).output(one_day).repeatedly().build();
    let (from, to) = window();
    assert!(collect(&client(&rule), &Unlimited, &policy(3), from, to, "tenant").await.is_ok());
    let bad = mock!(Client::get_cost_and_usage)
        .sequence()
        .http_status(400, Some(r#"{"__type":"ValidationException","message":"Start date is after end date"}"#.to_owned()))
        .repeatedly()
        .build();
    let err = collect(&client(&bad), &Unlimited, &policy(3), from, to, "tenant").await.unwrap_err();
    assert!(matches!(err, CollectError::Failed { attempts: 1, .. }), "{err:?}");
    assert_eq!(bad.num_calls(), 1);
}
