//! Cost Explorer's purchase recommendations: `GetReservationPurchaseRecommendation`
//! (EC2, RDS, ElastiCache; standard offering class) and
//! `GetSavingsPlansPurchaseRecommendation` (Compute Savings Plans), for each
//! term and payment option, paged. Every request costs $0.01 and goes through
//! the same meter as the cost queries.

use std::str::FromStr;

use async_trait::async_trait;
use aws_sdk_costexplorer::types::{
    Ec2Specification, LookbackPeriodInDays, OfferingClass, PaymentOption, ServiceSpecification, SupportedSavingsPlansType, TermInYears,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tally_savings::{Payment, Recommendation, RecommendationKind, Recommendations, Service, Term};

use crate::cost_explorer::{RequestMeter, SdkCostExplorer};
use crate::retry::{Failure, RetryPolicy, with_retries};

/// What to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Reservations(Service),
    ComputeSavingsPlan,
}

/// One page of one recommendation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecommendationRequest {
    pub subject: Subject,
    pub term: Term,
    pub payment: Payment,
    /// 7, 30 or 60.
    pub lookback_days: u32,
    pub next_page_token: Option<String>,
}

/// A page of recommendations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecommendationPage {
    pub items: Vec<Recommendation>,
    pub next_page_token: Option<String>,
}

/// Cost Explorer's recommendation operations, as the collector needs them.
#[async_trait]
pub trait RecommendationsApi: Send + Sync {
    async fn recommendations(&self, request: &RecommendationRequest) -> Result<RecommendationPage, Failure>;
}

fn lookback(days: u32) -> Result<LookbackPeriodInDays, Failure> {
    match days {
        7 => Ok(LookbackPeriodInDays::SevenDays),
        30 => Ok(LookbackPeriodInDays::ThirtyDays),
        60 => Ok(LookbackPeriodInDays::SixtyDays),
        d => Err(Failure::Permanent(format!("Cost Explorer looks back 7, 30 or 60 days, not {d}"))),
    }
}

fn term_in_years(t: Term) -> TermInYears {
    match t {
        Term::OneYear => TermInYears::OneYear,
        Term::ThreeYears => TermInYears::ThreeYears,
    }
}

fn payment_option(p: Payment) -> PaymentOption {
    match p {
        Payment::NoUpfront => PaymentOption::NoUpfront,
        Payment::PartialUpfront => PaymentOption::PartialUpfront,
        Payment::AllUpfront => PaymentOption::AllUpfront,
    }
}

/// Cost Explorer's name of a service in recommendation requests.
pub fn service_name(s: Service) -> &'static str {
    match s {
        Service::Ec2 => "Amazon Elastic Compute Cloud - Compute",
        Service::Rds => "Amazon Relational Database Service",
        Service::ElastiCache => "Amazon ElastiCache",
    }
}

fn num(field: &str, v: Option<&str>) -> Result<Option<Decimal>, Failure> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => Decimal::from_str(s)
            .or_else(|_| Decimal::from_scientific(s))
            .map(Some)
            .map_err(|_| Failure::Permanent(format!("Cost Explorer returned {field} {s:?}, which is not a number"))),
    }
}

fn percent(field: &str, v: Option<&str>) -> Result<Option<Decimal>, Failure> {
    Ok(num(field, v)?.map(|p| (p / Decimal::ONE_HUNDRED).round_dp(4)))
}

#[async_trait]
impl RecommendationsApi for SdkCostExplorer {
    async fn recommendations(&self, r: &RecommendationRequest) -> Result<RecommendationPage, Failure> {
        let client = self.client();
        match r.subject {
            Subject::Reservations(service) => {
                let mut req = client
                    .get_reservation_purchase_recommendation()
                    .service(service_name(service))
                    .lookback_period_in_days(lookback(r.lookback_days)?)
                    .term_in_years(term_in_years(r.term))
                    .payment_option(payment_option(r.payment))
                    .set_next_page_token(r.next_page_token.clone());
                if service == Service::Ec2 {
                    req = req.service_specification(
                        ServiceSpecification::builder().ec2_specification(Ec2Specification::builder().offering_class(OfferingClass::Standard).build()).build(),
                    );
                }
                let out = req.send().await.map_err(crate::cost_explorer::classify)?;
                let mut items = Vec::new();
                for rec in out.recommendations() {
                    for d in rec.recommendation_details() {
                        let details = d.instance_details();
                        let (region, instance_type, variant) = match service {
                            Service::Ec2 => {
                                let x = details.and_then(|i| i.ec2_instance_details());
                                (x.and_then(|x| x.region()), x.and_then(|x| x.instance_type()), x.and_then(|x| x.platform()).map(str::to_owned))
                            }
                            Service::Rds => {
                                let x = details.and_then(|i| i.rds_instance_details());
                                let variant = x.and_then(|x| match (x.database_engine(), x.deployment_option()) {
                                    (Some(e), Some(d)) => Some(format!("{e} {d}")),
                                    (Some(e), None) => Some(e.to_owned()),
                                    _ => None,
                                });
                                (x.and_then(|x| x.region()), x.and_then(|x| x.instance_type()), variant)
                            }
                            Service::ElastiCache => {
                                let x = details.and_then(|i| i.elasti_cache_instance_details());
                                (x.and_then(|x| x.region()), x.and_then(|x| x.node_type()), x.and_then(|x| x.product_description()).map(str::to_owned))
                            }
                        };
                        let Some(instance_type) = instance_type else {
                            return Err(Failure::Permanent(format!("a {} recommendation without an instance type", service_name(service))));
                        };
                        let count = num("RecommendedNumberOfInstancesToPurchase", d.recommended_number_of_instances_to_purchase())?.unwrap_or_default();
                        items.push(Recommendation {
                            kind: RecommendationKind::Reservation {
                                service,
                                region: region.map(region_code),
                                instance_type: instance_type.to_owned(),
                                variant,
                                count,
                                average_running: num("AverageNumberOfInstancesUsedPerHour", d.average_number_of_instances_used_per_hour())?,
                                minimum_running: num("MinimumNumberOfInstancesUsedPerHour", d.minimum_number_of_instances_used_per_hour())?,
                            },
                            term: r.term,
                            payment: r.payment,
                            lookback_days: r.lookback_days,
                            upfront: num("UpfrontCost", d.upfront_cost())?.unwrap_or_default(),
                            recurring_monthly: num("RecurringStandardMonthlyCost", d.recurring_standard_monthly_cost())?.unwrap_or_default(),
                            estimated_monthly_savings: num("EstimatedMonthlySavingsAmount", d.estimated_monthly_savings_amount())?.unwrap_or_default(),
                            estimated_savings_share: percent("EstimatedMonthlySavingsPercentage", d.estimated_monthly_savings_percentage())?,
                            estimated_monthly_on_demand: num("EstimatedMonthlyOnDemandCost", d.estimated_monthly_on_demand_cost())?,
                            break_even_months: num("EstimatedBreakEvenInMonths", d.estimated_break_even_in_months())?,
                            expected_utilization: percent("AverageUtilization", d.average_utilization())?,
                            currency: d.currency_code().unwrap_or("USD").to_owned(),
                        });
                    }
                }
                Ok(RecommendationPage { items, next_page_token: out.next_page_token().map(str::to_owned).filter(|t| !t.is_empty()) })
            }
            Subject::ComputeSavingsPlan => {
                let out = client
                    .get_savings_plans_purchase_recommendation()
                    .savings_plans_type(SupportedSavingsPlansType::ComputeSp)
                    .lookback_period_in_days(lookback(r.lookback_days)?)
                    .term_in_years(term_in_years(r.term))
                    .payment_option(payment_option(r.payment))
                    .set_next_page_token(r.next_page_token.clone())
                    .send()
                    .await
                    .map_err(crate::cost_explorer::classify)?;
                let mut items = Vec::new();
                if let Some(rec) = out.savings_plans_purchase_recommendation() {
                    for d in rec.savings_plans_purchase_recommendation_details() {
                        let Some(hourly) = num("HourlyCommitmentToPurchase", d.hourly_commitment_to_purchase())? else {
                            return Err(Failure::Permanent("a Savings Plans recommendation without HourlyCommitmentToPurchase".into()));
                        };
                        let upfront = num("UpfrontCost", d.upfront_cost())?.unwrap_or_default();
                        let months = Decimal::from(r.term.months());
                        // Cost Explorer gives no recurring figure: the commitment over a
                        // month, less the upfront spread over the term.
                        let recurring = (hourly * tally_savings::HOURS_PER_MONTH - upfront / months).max(Decimal::ZERO).round_dp(2);
                        items.push(Recommendation {
                            kind: RecommendationKind::SavingsPlan { hourly_commitment: hourly },
                            term: r.term,
                            payment: r.payment,
                            lookback_days: r.lookback_days,
                            upfront,
                            recurring_monthly: recurring,
                            estimated_monthly_savings: num("EstimatedMonthlySavingsAmount", d.estimated_monthly_savings_amount())?.unwrap_or_default(),
                            estimated_savings_share: percent("EstimatedSavingsPercentage", d.estimated_savings_percentage())?,
                            estimated_monthly_on_demand: None,
                            break_even_months: None,
                            expected_utilization: percent("EstimatedAverageUtilization", d.estimated_average_utilization())?,
                            currency: d.currency_code().unwrap_or("USD").to_owned(),
                        });
                    }
                }
                Ok(RecommendationPage { items, next_page_token: out.next_page_token().map(str::to_owned).filter(|t| !t.is_empty()) })
            }
        }
    }
}

/// Cost Explorer names regions by their long names in recommendations.
fn region_code(name: &str) -> String {
    let known = [
        ("US East (N. Virginia)", "us-east-1"),
        ("US East (Ohio)", "us-east-2"),
        ("US West (N. California)", "us-west-1"),
        ("US West (Oregon)", "us-west-2"),
        ("EU (Ireland)", "eu-west-1"),
        ("EU (Frankfurt)", "eu-central-1"),
        ("EU (London)", "eu-west-2"),
        ("Asia Pacific (Tokyo)", "ap-northeast-1"),
        ("Asia Pacific (Singapore)", "ap-southeast-1"),
        ("Asia Pacific (Sydney)", "ap-southeast-2"),
    ];
    known.iter().find(|(n, _)| *n == name).map_or_else(|| name.to_owned(), |(_, c)| (*c).to_owned())
}

/// Why a collection stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecommendationsError {
    #[error("Cost Explorer request budget: {0}")]
    Budget(String),
    #[error("{what} failed after {attempts} attempt(s): {failure}")]
    Failed { what: String, attempts: u32, failure: Failure },
}

/// Asks for every subject, term and payment option, with paging.
pub async fn collect(
    api: &dyn RecommendationsApi,
    meter: &dyn RequestMeter,
    policy: &RetryPolicy,
    lookback_days: u32,
    at: DateTime<Utc>,
) -> Result<(Recommendations, u32), RecommendationsError> {
    let subjects =
        [Subject::Reservations(Service::Ec2), Subject::Reservations(Service::Rds), Subject::Reservations(Service::ElastiCache), Subject::ComputeSavingsPlan];
    let mut items = Vec::new();
    let mut queries = Vec::new();
    let mut requests = 0u32;
    for subject in subjects {
        for term in Term::ALL {
            for payment in Payment::ALL {
                let what = match subject {
                    Subject::Reservations(s) => format!("{s} reservations, {term}, {}", payment.label()),
                    Subject::ComputeSavingsPlan => format!("Compute Savings Plan, {term}, {}", payment.label()),
                };
                let mut token = None;
                let mut found = 0usize;
                loop {
                    meter.approve().await.map_err(RecommendationsError::Budget)?;
                    let req = RecommendationRequest { subject, term, payment, lookback_days, next_page_token: token.clone() };
                    let attempted = with_retries(policy, &what, || api.recommendations(&req)).await;
                    requests += attempted.attempts;
                    let page = match attempted.value {
                        Ok(p) => p,
                        // Not every service sells every term and payment (RDS has no
                        // 3-year No Upfront): Cost Explorer says so with a validation error.
                        Err(Failure::Permanent(m)) if m.starts_with("ValidationException") || m.starts_with("DataUnavailableException") => {
                            queries.push(format!("{what}: not offered ({m})"));
                            break;
                        }
                        Err(failure) => return Err(RecommendationsError::Failed { what, attempts: attempted.attempts, failure }),
                    };
                    found += page.items.len();
                    items.extend(page.items);
                    token = page.next_page_token;
                    if token.is_none() {
                        queries.push(format!("{what}: {found} recommendation(s)"));
                        break;
                    }
                }
            }
        }
    }
    Ok((Recommendations { collected_at: at, lookback_days, items, queries }, requests))
}
