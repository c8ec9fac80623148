//! Daily cost from AWS Cost Explorer (`GetCostAndUsage`).
//!
//! Two queries per window, each paged on `NextPageToken`: cost by SERVICE
//! and USAGE_TYPE, and cost by the tenant tag and USAGE_TYPE. Together they
//! give one line per day, service, usage type and tenant, where the tagged
//! parts are taken out of the service's cost so the day's total is exactly
//! what Cost Explorer reports. Every request costs $0.01: a meter approves
//! each one before it is sent.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use aws_sdk_costexplorer::error::ProvideErrorMetadata;
use aws_sdk_costexplorer::types::{DateInterval, Granularity, GroupDefinition, GroupDefinitionType};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use tally_domain::{CostLine, CostSource, Currency, LineType, Month, Period, TenantId};

use crate::retry::{Failure, RetryPolicy, with_retries};

/// How a query groups its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// SERVICE and USAGE_TYPE.
    ServiceUsageType,
    /// The tenant tag and USAGE_TYPE.
    TagUsageType,
}

/// One `GetCostAndUsage` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostRequest {
    pub start: NaiveDate,
    /// Exclusive.
    pub end: NaiveDate,
    pub grouping: Grouping,
    /// The tag key without `user:`.
    pub tag_key: String,
    pub next_page_token: Option<String>,
}

/// One group's figures on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct CostGroup {
    pub keys: Vec<String>,
    pub unblended: Decimal,
    pub amortized: Decimal,
    pub usage_quantity: Decimal,
    pub usage_unit: Option<String>,
    pub currency: String,
}

/// One day of a response.
#[derive(Debug, Clone, PartialEq)]
pub struct CostDay {
    pub start: NaiveDate,
    pub estimated: bool,
    pub groups: Vec<CostGroup>,
}

/// One page of a response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CostPage {
    pub days: Vec<CostDay>,
    pub next_page_token: Option<String>,
}

/// Cost Explorer, as the collector needs it.
#[async_trait]
pub trait CostExplorerApi: Send + Sync {
    async fn get_cost_and_usage(&self, request: &CostRequest) -> Result<CostPage, Failure>;
}

/// Approves (and counts) each paid request before it is sent.
#[async_trait]
pub trait RequestMeter: Send + Sync {
    /// `Err` with the reason when the request would exceed the budget.
    async fn approve(&self) -> Result<(), String>;
}

/// The SDK client.
#[derive(Debug, Clone)]
pub struct SdkCostExplorer {
    client: aws_sdk_costexplorer::Client,
}

impl SdkCostExplorer {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_costexplorer::Client::new(config) }
    }

    pub fn from_client(client: aws_sdk_costexplorer::Client) -> Self {
        Self { client }
    }

    pub(crate) fn client(&self) -> &aws_sdk_costexplorer::Client {
        &self.client
    }
}

fn amount(
    metrics: Option<&std::collections::HashMap<String, aws_sdk_costexplorer::types::MetricValue>>,
    name: &str,
) -> Result<(Decimal, Option<String>), Failure> {
    let Some(m) = metrics.and_then(|m| m.get(name)) else { return Ok((Decimal::ZERO, None)) };
    let text = m.amount().unwrap_or("0");
    let value = Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|_| Failure::Permanent(format!("Cost Explorer returned {name} {text:?}, which is not a number")))?;
    Ok((value, m.unit().map(str::to_owned)))
}

#[async_trait]
impl CostExplorerApi for SdkCostExplorer {
    async fn get_cost_and_usage(&self, r: &CostRequest) -> Result<CostPage, Failure> {
        let group = |t: GroupDefinitionType, key: &str| GroupDefinition::builder().r#type(t).key(key).build();
        let groups = match r.grouping {
            Grouping::ServiceUsageType => vec![group(GroupDefinitionType::Dimension, "SERVICE"), group(GroupDefinitionType::Dimension, "USAGE_TYPE")],
            Grouping::TagUsageType => vec![group(GroupDefinitionType::Tag, &r.tag_key), group(GroupDefinitionType::Dimension, "USAGE_TYPE")],
        };
        let period = DateInterval::builder()
            .start(r.start.format("%Y-%m-%d").to_string())
            .end(r.end.format("%Y-%m-%d").to_string())
            .build()
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        let out = self
            .client
            .get_cost_and_usage()
            .time_period(period)
            .granularity(Granularity::Daily)
            .metrics("UnblendedCost")
            .metrics("AmortizedCost")
            .metrics("UsageQuantity")
            .set_group_by(Some(groups))
            .set_next_page_token(r.next_page_token.clone())
            .send()
            .await
            .map_err(classify)?;
        let mut page = CostPage { days: Vec::new(), next_page_token: out.next_page_token().map(str::to_owned).filter(|t| !t.is_empty()) };
        for day in out.results_by_time() {
            let start = day
                .time_period()
                .map(|p| p.start())
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .ok_or_else(|| Failure::Permanent("a result without a valid TimePeriod.Start".into()))?;
            let mut groups = Vec::new();
            for g in day.groups() {
                let metrics = g.metrics();
                let (unblended, cur_u) = amount(metrics, "UnblendedCost")?;
                let (amortized, cur_a) = amount(metrics, "AmortizedCost")?;
                let (usage_quantity, unit) = amount(metrics, "UsageQuantity")?;
                groups.push(CostGroup {
                    keys: g.keys().to_vec(),
                    unblended,
                    amortized,
                    usage_quantity,
                    usage_unit: unit.filter(|u| !u.is_empty() && u != "N/A"),
                    currency: cur_u.or(cur_a).unwrap_or_else(|| "USD".into()),
                });
            }
            page.days.push(CostDay { start, estimated: day.estimated(), groups });
        }
        Ok(page)
    }
}

pub(crate) fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(e: aws_sdk_costexplorer::error::SdkError<E, R>) -> Failure {
    use aws_sdk_costexplorer::error::SdkError;
    match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            let msg = format!("{code}: {}", se.err().message().unwrap_or(""));
            match code {
                "LimitExceededException" | "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded" => Failure::Throttled(msg),
                "ServiceUnavailableException" | "InternalServerError" | "InternalFailure" => Failure::Transient(msg),
                _ if code.is_empty() => Failure::Transient(format!("{e:?}")),
                _ => Failure::Permanent(msg),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Failure::Transient(format!("{e:?}")),
        SdkError::ResponseError(_) => Failure::Transient(format!("an unreadable response: {e:?}")),
        _ => Failure::Permanent(format!("{e:?}")),
    }
}

/// Cost Explorer's SERVICE names, as the AWS product codes CUR and the pool
/// rules use (the domain's one table); a service it lacks keeps its name.
pub fn service_code(name: &str) -> String {
    tally_domain::aws_service_code(name).unwrap_or(name).to_owned()
}

/// What one collection gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    pub lines: Vec<CostLine>,
    /// Paid requests made (including retries).
    pub requests: u32,
    /// Days Cost Explorer still marks as estimated.
    pub estimated_days: Vec<NaiveDate>,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("Cost Explorer request budget reached: {0}")]
    Budget(String),
    #[error("Cost Explorer failed after {attempts} attempt(s): {failure}")]
    Failed { failure: Failure, attempts: u32, requests: u32 },
    #[error("Cost Explorer returned data Tally cannot use: {0}")]
    Data(String),
}

impl CollectError {
    /// Paid requests made before the failure.
    pub fn requests(&self) -> u32 {
        match self {
            Self::Failed { requests, .. } => *requests,
            _ => 0,
        }
    }
}

async fn all_pages(
    api: &dyn CostExplorerApi,
    meter: &dyn RequestMeter,
    policy: &RetryPolicy,
    base: CostRequest,
    requests: &AtomicU32,
) -> Result<Vec<CostDay>, CollectError> {
    let mut days = Vec::new();
    let mut request = base;
    loop {
        let refused: Mutex<Option<String>> = Mutex::new(None);
        let attempted = with_retries(policy, "GetCostAndUsage", || {
            let (request, refused) = (request.clone(), &refused);
            async move {
                if let Err(reason) = meter.approve().await {
                    *refused.lock().expect("budget slot") = Some(reason.clone());
                    return Err(Failure::Permanent(format!("budget: {reason}")));
                }
                requests.fetch_add(1, Ordering::Relaxed);
                api.get_cost_and_usage(&request).await
            }
        })
        .await;
        if let Some(reason) = refused.into_inner().expect("budget slot") {
            return Err(CollectError::Budget(reason));
        }
        let page =
            attempted.value.map_err(|failure| CollectError::Failed { failure, attempts: attempted.attempts, requests: requests.load(Ordering::Relaxed) })?;
        days.extend(page.days);
        match page.next_page_token {
            Some(token) => request.next_page_token = Some(token),
            None => return Ok(days),
        }
    }
}

/// Collects `[start, end)` and turns it into one line per day, service,
/// usage type and tenant. Nothing is written here.
pub async fn collect(
    api: &dyn CostExplorerApi,
    meter: &dyn RequestMeter,
    policy: &RetryPolicy,
    start: NaiveDate,
    end: NaiveDate,
    tag_key: &str,
) -> Result<Collected, CollectError> {
    if end <= start {
        return Err(CollectError::Data(format!("an empty window {start}..{end}")));
    }
    let requests = AtomicU32::new(0);
    let base = |grouping| CostRequest { start, end, grouping, tag_key: tag_key.to_owned(), next_page_token: None };
    let by_service = all_pages(api, meter, policy, base(Grouping::ServiceUsageType), &requests).await?;
    let by_tag = all_pages(api, meter, policy, base(Grouping::TagUsageType), &requests).await?;
    let requests = requests.into_inner();
    let lines = to_lines(&by_service, &by_tag, tag_key).map_err(CollectError::Data)?;
    let mut estimated: Vec<NaiveDate> = by_service.iter().filter(|d| d.estimated).map(|d| d.start).collect();
    estimated.sort();
    estimated.dedup();
    Ok(Collected { lines, requests, estimated_days: estimated })
}

/// Tag values come back as `tenant$acme` (or `tenant$` for untagged cost).
fn tag_value(key: &str, tag_key: &str) -> Option<String> {
    let v = key.strip_prefix(&format!("{tag_key}$")).unwrap_or_else(|| key.split_once('$').map_or(key, |(_, v)| v));
    (!v.is_empty()).then(|| v.to_owned())
}

type DayKey = (NaiveDate, String);

fn to_lines(by_service: &[CostDay], by_tag: &[CostDay], tag_key: &str) -> Result<Vec<CostLine>, String> {
    // (day, usage type) -> [(service, group)]
    let mut services: BTreeMap<DayKey, Vec<(String, &CostGroup)>> = BTreeMap::new();
    let mut estimated: BTreeMap<NaiveDate, bool> = BTreeMap::new();
    for day in by_service {
        *estimated.entry(day.start).or_default() |= day.estimated;
        for g in &day.groups {
            let service = g.keys.first().cloned().unwrap_or_default();
            let usage_type = g.keys.get(1).cloned().unwrap_or_default();
            services.entry((day.start, usage_type)).or_default().push((service, g));
        }
    }
    // (day, usage type) -> [(tenant, group)]
    let mut tagged: BTreeMap<DayKey, Vec<(TenantId, &CostGroup)>> = BTreeMap::new();
    for day in by_tag {
        for g in &day.groups {
            let Some(value) = g.keys.first().and_then(|k| tag_value(k, tag_key)) else { continue };
            let Ok(tenant) = TenantId::normalise(&value) else { continue };
            let usage_type = g.keys.get(1).cloned().unwrap_or_default();
            tagged.entry((day.start, usage_type)).or_default().push((tenant, g));
        }
    }
    let mut lines = Vec::new();
    for ((day, usage_type), groups) in &services {
        let period = Period::day(*day);
        let base =
            |service: &str, g: &CostGroup, unblended: Decimal, amortized: Decimal, quantity: Decimal, tenant: Option<TenantId>| -> Result<CostLine, String> {
                let currency = Currency::parse(&g.currency).map_err(|e| e.to_string())?;
                let code = service_code(service);
                let line_type = if service == "Tax" || usage_type == "Tax" {
                    LineType::Tax
                } else if unblended.is_sign_negative() && !unblended.is_zero() {
                    LineType::Credit
                } else {
                    LineType::Usage
                };
                Ok(CostLine {
                    usage_start: period.start(),
                    usage_end: period.end(),
                    billing_month: Month::of_date(*day),
                    payer_account: String::new(),
                    usage_account: String::new(),
                    service: code,
                    usage_type: usage_type.clone(),
                    operation: String::new(),
                    resource_id: None,
                    region: None,
                    availability_zone: None,
                    line_type,
                    description: Some(format!("Cost Explorer: {service}")),
                    currency,
                    unblended,
                    net_unblended: unblended,
                    amortized,
                    list_cost: None,
                    usage_amount: quantity,
                    usage_unit: g.usage_unit.clone(),
                    instance_type: None,
                    commitment_id: None,
                    tags: BTreeMap::new(),
                    tenant,
                    estimated: *estimated.get(day).unwrap_or(&false),
                    source: CostSource::CostExplorer,
                    provider: None,
                })
            };
        // Tagged cost of this usage type comes out of its largest service.
        let main = groups.iter().enumerate().max_by(|a, b| a.1.1.unblended.abs().cmp(&b.1.1.unblended.abs()).then(b.0.cmp(&a.0))).map(|(i, _)| i).unwrap_or(0);
        let tags = tagged.get(&(*day, usage_type.clone())).cloned().unwrap_or_default();
        for (i, (service, g)) in groups.iter().enumerate() {
            let (mut u, mut a, mut q) = (g.unblended, g.amortized, g.usage_quantity);
            if i == main {
                for (tenant, t) in &tags {
                    let mut line = base(service, g, t.unblended, t.amortized, t.usage_quantity, Some(tenant.clone()))?;
                    line.tags.insert(format!("user_{tag_key}"), tenant.to_string());
                    lines.push(line);
                    u -= t.unblended;
                    a -= t.amortized;
                    q -= t.usage_quantity;
                }
            }
            if !(u.is_zero() && a.is_zero() && q.is_zero()) {
                lines.push(base(service, g, u, a, q.max(Decimal::ZERO), None)?);
            }
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(keys: &[&str], cost: &str) -> CostGroup {
        CostGroup {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            unblended: cost.parse().unwrap(),
            amortized: cost.parse().unwrap(),
            usage_quantity: Decimal::ONE,
            usage_unit: Some("Hrs".into()),
            currency: "USD".into(),
        }
    }

    #[test]
    fn tagged_cost_comes_out_of_its_service_and_the_day_total_is_kept() {
        let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let by_service = vec![CostDay {
            start: d,
            estimated: true,
            groups: vec![g(&["Amazon Simple Storage Service", "TimedStorage-ByteHrs"], "10.00"), g(&["Tax", "Tax"], "0.50")],
        }];
        let by_tag = vec![CostDay {
            start: d,
            estimated: true,
            groups: vec![g(&["tenant$acme", "TimedStorage-ByteHrs"], "3.25"), g(&["tenant$", "TimedStorage-ByteHrs"], "6.75")],
        }];
        let lines = to_lines(&by_service, &by_tag, "tenant").unwrap();
        let total: Decimal = lines.iter().map(|l| l.unblended).sum();
        assert_eq!(total, "10.50".parse::<Decimal>().unwrap());
        let acme = lines.iter().find(|l| l.tenant.is_some()).unwrap();
        assert_eq!((acme.service.as_str(), acme.unblended), ("AmazonS3", "3.25".parse().unwrap()));
        assert!(lines.iter().any(|l| l.line_type == LineType::Tax));
        assert!(lines.iter().all(|l| l.estimated && l.granularity() == tally_domain::Granularity::Day));
    }

    #[test]
    fn cost_explorer_service_names_become_product_codes() {
        assert_eq!(service_code("Amazon Elastic Compute Cloud - Compute"), "AmazonEC2");
        assert_eq!(service_code("Amazon Elastic Load Balancing"), "AWSELB");
        assert_eq!(service_code("Something New"), "Something New");
    }
}
