//! Cost Explorer's purchase recommendations through the real SDK client, with
//! aws-smithy-mocks answering at the HTTP boundary with JSON shaped like the
//! service's (fixtures/cost-explorer): neither emulator implements these operations.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_costexplorer::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_costexplorer::types::{PaymentOption, TermInYears};
use aws_sdk_costexplorer::{Client, Config};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use tally_collectors::cost_explorer::{RequestMeter, SdkCostExplorer};
use tally_collectors::recommendations::{RecommendationsError, collect};
use tally_collectors::retry::RetryPolicy;
use tally_savings::{Payment, RecommendationKind, Service, Term};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(tally_test_support::workspace_root().join("fixtures/cost-explorer").join(name)).unwrap()
}

struct Meter {
    approved: AtomicU32,
    limit: u32,
}

#[async_trait]
impl RequestMeter for Meter {
    async fn approve(&self) -> Result<(), String> {
        let n = self.approved.fetch_add(1, Ordering::SeqCst);
        if n >= self.limit {
            return Err(format!("{} requests would pass the monthly budget", n + 1));
        }
        Ok(())
    }
}

fn meter(limit: u32) -> Meter {
    Meter { approved: AtomicU32::new(0), limit }
}

fn client(rules: &[&Rule]) -> SdkCostExplorer {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for r in rules {
        interceptor = interceptor.with_rule(r);
    }
    let conf = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(aws_sdk_costexplorer::config::retry::RetryConfig::disabled())
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    SdkCostExplorer::from_client(Client::from_conf(conf))
}

fn policy() -> RetryPolicy {
    RetryPolicy { max_retries: 3, base_delay: Duration::from_millis(2), max_delay: Duration::from_millis(10) }
}

const EC2: &str = "Amazon Elastic Compute Cloud - Compute";
const RDS: &str = "Amazon Relational Database Service";

#[tokio::test]
async fn every_service_term_and_payment_is_asked_and_pages_are_followed() {
    let ec2_page1 = mock!(Client::get_reservation_purchase_recommendation)
        .match_requests(|r| {
            r.service() == Some(EC2)
                && r.term_in_years() == Some(&TermInYears::OneYear)
                && r.payment_option() == Some(&PaymentOption::NoUpfront)
                && r.next_page_token().is_none()
        })
        .sequence()
        .http_status(200, Some(fixture("reservation-recommendation-ec2.json")))
        .repeatedly()
        .build();
    let ec2_page2 = mock!(Client::get_reservation_purchase_recommendation)
        .match_requests(|r| r.next_page_token() == Some("page-2"))
        .sequence()
        .http_status(200, Some(fixture("reservation-recommendation-ec2-page2.json")))
        .repeatedly()
        .build();
    let rds = mock!(Client::get_reservation_purchase_recommendation)
        .match_requests(|r| {
            r.service() == Some(RDS) && r.term_in_years() == Some(&TermInYears::OneYear) && r.payment_option() == Some(&PaymentOption::PartialUpfront)
        })
        .sequence()
        .http_status(200, Some(fixture("reservation-recommendation-rds.json")))
        .repeatedly()
        .build();
    // RDS sells no 3-year No Upfront reservations: Cost Explorer refuses the question.
    let rds_3y_none = mock!(Client::get_reservation_purchase_recommendation)
        .match_requests(|r| {
            r.service() == Some(RDS) && r.term_in_years() == Some(&TermInYears::ThreeYears) && r.payment_option() == Some(&PaymentOption::NoUpfront)
        })
        .sequence()
        .http_status(400, Some(r#"{"__type":"ValidationException","message":"No Upfront is not available for 3 year RDS reservations"}"#.to_owned()))
        .repeatedly()
        .build();
    let other_reservations = mock!(Client::get_reservation_purchase_recommendation).sequence().http_status(200, Some("{}".to_owned())).repeatedly().build();
    let sp = mock!(Client::get_savings_plans_purchase_recommendation)
        .match_requests(|r| r.term_in_years() == Some(&TermInYears::OneYear) && r.payment_option() == Some(&PaymentOption::NoUpfront))
        .sequence()
        .http_status(200, Some(fixture("savings-plans-recommendation.json")))
        .repeatedly()
        .build();
    let other_sp = mock!(Client::get_savings_plans_purchase_recommendation).sequence().http_status(200, Some("{}".to_owned())).repeatedly().build();
    let api = client(&[&ec2_page1, &ec2_page2, &rds, &rds_3y_none, &other_reservations, &sp, &other_sp]);
    let at = Utc.with_ymd_and_hms(2026, 11, 28, 7, 0, 0).unwrap();
    let m = meter(100);
    let (recs, requests) = collect(&api, &m, &policy(), 30, at).await.unwrap();

    // 3 services x 6 options + 6 plan options, and the second EC2 page.
    assert_eq!(requests, 25);
    assert_eq!(m.approved.load(Ordering::SeqCst), 25);
    assert_eq!(recs.items.len(), 4, "{:#?}", recs.items);
    assert_eq!(recs.queries.len(), 24);
    assert!(recs.queries.iter().any(|q| q.contains("AmazonRDS reservations, 3y, No Upfront: not offered")), "{:#?}", recs.queries);

    let ec2 = &recs.items[0];
    match &ec2.kind {
        RecommendationKind::Reservation { service, region, instance_type, variant, count, average_running, minimum_running } => {
            assert_eq!(*service, Service::Ec2);
            assert_eq!(region.as_deref(), Some("us-east-1"));
            assert_eq!(instance_type, "m5.xlarge");
            assert_eq!(variant.as_deref(), Some("Linux/UNIX"));
            assert_eq!(*count, Decimal::from(4));
            assert_eq!(*average_running, Some("4.3125".parse().unwrap()));
            assert_eq!(*minimum_running, Some(Decimal::from(3)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((ec2.term, ec2.payment, ec2.lookback_days), (Term::OneYear, Payment::NoUpfront, 30));
    assert_eq!(ec2.estimated_monthly_savings, "178.76".parse().unwrap());
    assert_eq!(ec2.estimated_savings_share, Some("0.3185".parse().unwrap()));
    assert_eq!(ec2.recurring_monthly, "353.32".parse().unwrap());
    assert_eq!(ec2.expected_utilization, Some("0.9141".parse().unwrap()));

    let page2 = &recs.items[1];
    assert!(matches!(&page2.kind, RecommendationKind::Reservation { instance_type, .. } if instance_type == "m5.large"));

    let rds = &recs.items[2];
    assert!(matches!(&rds.kind, RecommendationKind::Reservation { service: Service::Rds, variant: Some(v), .. } if v == "PostgreSQL Multi-AZ"));
    assert_eq!(rds.upfront, Decimal::from(2452));
    assert_eq!(rds.break_even_months, Some("5.17".parse().unwrap()));

    let plan = &recs.items[3];
    assert_eq!(plan.kind, RecommendationKind::SavingsPlan { hourly_commitment: "0.438".parse().unwrap() });
    assert_eq!(plan.estimated_monthly_savings, "105.84".parse().unwrap());
    // No recurring figure in the response: 0.438 x 730 hours.
    assert_eq!(plan.recurring_monthly, "319.74".parse().unwrap());
}

#[tokio::test]
async fn throttling_is_retried_and_counted() {
    let throttled = mock!(Client::get_reservation_purchase_recommendation)
        .sequence()
        .http_status(400, Some(r#"{"__type":"LimitExceededException","message":"Rate exceeded"}"#.to_owned()))
        .times(2)
        .http_status(200, Some("{}".to_owned()))
        .repeatedly()
        .build();
    let sp = mock!(Client::get_savings_plans_purchase_recommendation).sequence().http_status(200, Some("{}".to_owned())).repeatedly().build();
    let api = client(&[&throttled, &sp]);
    let (recs, requests) = collect(&api, &meter(100), &policy(), 7, Utc::now()).await.unwrap();
    assert_eq!(requests, 26, "24 questions and two throttled attempts");
    assert!(recs.items.is_empty());
}

#[tokio::test]
async fn the_budget_stops_the_collection_before_the_request_that_would_pass_it() {
    let any = mock!(Client::get_reservation_purchase_recommendation).sequence().http_status(200, Some("{}".to_owned())).repeatedly().build();
    let api = client(&[&any]);
    let err = collect(&api, &meter(5), &policy(), 30, Utc::now()).await.unwrap_err();
    assert!(matches!(err, RecommendationsError::Budget(_)), "{err}");
    assert_eq!(any.num_calls(), 5);
}

#[tokio::test]
async fn a_server_error_that_persists_fails_the_collection_with_what_was_asked() {
    let failing = mock!(Client::get_reservation_purchase_recommendation)
        .sequence()
        .http_status(500, Some(r#"{"__type":"InternalServerError","message":"boom"}"#.to_owned()))
        .repeatedly()
        .build();
    let api = client(&[&failing]);
    let err = collect(&api, &meter(100), &policy(), 30, Utc::now()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("AmazonEC2 reservations, 1y, No Upfront failed after 4 attempt(s)"), "{text}");
}

#[tokio::test]
async fn a_look_back_cost_explorer_does_not_offer_is_refused_before_any_request() {
    let any = mock!(Client::get_reservation_purchase_recommendation).sequence().http_status(200, Some("{}".to_owned())).repeatedly().build();
    let api = client(&[&any]);
    let err = collect(&api, &meter(100), &policy(), 14, Utc::now()).await.unwrap_err();
    assert!(err.to_string().contains("7, 30 or 60 days, not 14"), "{err}");
    assert_eq!(any.num_calls(), 0);
}
