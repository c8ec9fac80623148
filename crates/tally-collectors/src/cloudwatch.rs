//! Per-tenant usage from CloudWatch metrics (`GetMetricData`).
//!
//! For each configured query, the tenant dimension's values are discovered
//! with `ListMetrics` (and every known tenant is asked for too, so a tenant
//! without data is a question answered with nothing rather than a tenant
//! forgotten). Queries go out at most 500 per call, following `NextToken`;
//! the period follows CloudWatch's retention: 60 s for data up to 15 days
//! old, 300 s up to 63 days, 3600 s beyond. Results become hourly samples.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, DimensionFilter, Metric, MetricDataQuery, MetricStat};
use chrono::{DateTime, Duration, DurationRound, Utc};
use tally_domain::{CloudWatchQuery, Metric as TallyMetric, TenantId, UsageSample};

use crate::retry::{Failure, RetryPolicy, with_retries};

/// GetMetricData accepts at most this many queries per call.
pub const MAX_QUERIES: usize = 500;
/// ... and returns at most this many data points per call.
pub const MAX_DATAPOINTS: i64 = 100_800;

/// One metric query, with its tenant's dimension value.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub id: String,
    pub namespace: String,
    pub metric_name: String,
    pub statistic: String,
    pub dimensions: Vec<(String, String)>,
}

/// One page of results: values per query id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricPage {
    pub values: BTreeMap<String, Vec<(DateTime<Utc>, f64)>>,
    pub next_token: Option<String>,
}

/// CloudWatch, as the collector needs it.
#[async_trait]
pub trait CloudWatchApi: Send + Sync {
    /// Values of `dimension` among metrics `namespace`/`metric_name` with `fixed` dimensions.
    async fn dimension_values(&self, namespace: &str, metric_name: &str, dimension: &str, fixed: &[(String, String)]) -> Result<Vec<String>, Failure>;
    async fn get_metric_data(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: i32,
        next_token: Option<String>,
    ) -> Result<MetricPage, Failure>;
}

/// The SDK client.
#[derive(Debug, Clone)]
pub struct SdkCloudWatch {
    client: aws_sdk_cloudwatch::Client,
}

impl SdkCloudWatch {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_cloudwatch::Client::new(config) }
    }

    pub fn client(&self) -> &aws_sdk_cloudwatch::Client {
        &self.client
    }
}

fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(e: aws_sdk_cloudwatch::error::SdkError<E, R>) -> Failure {
    use aws_sdk_cloudwatch::error::SdkError;
    match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            let msg = format!("{code}: {}", se.err().message().unwrap_or(""));
            match code {
                "Throttling" | "ThrottlingException" | "LimitExceededException" => Failure::Throttled(msg),
                "" | "InternalServiceError" | "InternalServiceFault" | "ServiceUnavailable" => Failure::Transient(format!("{e:?}")),
                _ => Failure::Permanent(msg),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure::Transient(format!("{e:?}")),
        _ => Failure::Permanent(format!("{e:?}")),
    }
}

fn aws_time(t: DateTime<Utc>) -> AwsDateTime {
    AwsDateTime::from_secs(t.timestamp())
}

#[async_trait]
impl CloudWatchApi for SdkCloudWatch {
    async fn dimension_values(&self, namespace: &str, metric_name: &str, dimension: &str, fixed: &[(String, String)]) -> Result<Vec<String>, Failure> {
        let mut values = BTreeSet::new();
        let mut token = None;
        loop {
            let mut req =
                self.client.list_metrics().namespace(namespace).metric_name(metric_name).dimensions(DimensionFilter::builder().name(dimension).build());
            for (k, v) in fixed {
                req = req.dimensions(DimensionFilter::builder().name(k).value(v).build());
            }
            let out = req.set_next_token(token).send().await.map_err(classify)?;
            for m in out.metrics() {
                if let Some(d) = m.dimensions().iter().find(|d| d.name() == Some(dimension))
                    && let Some(v) = d.value()
                {
                    values.insert(v.to_owned());
                }
            }
            token = out.next_token().map(str::to_owned).filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(values.into_iter().collect());
            }
        }
    }

    async fn get_metric_data(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: i32,
        next_token: Option<String>,
    ) -> Result<MetricPage, Failure> {
        let mut req = self.client.get_metric_data().start_time(aws_time(start)).end_time(aws_time(end)).set_next_token(next_token);
        for q in queries {
            let dims: Vec<Dimension> = q.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect();
            let metric = Metric::builder().namespace(&q.namespace).metric_name(&q.metric_name).set_dimensions(Some(dims)).build();
            let stat = MetricStat::builder().metric(metric).period(period).stat(&q.statistic).build();
            req = req.metric_data_queries(MetricDataQuery::builder().id(&q.id).metric_stat(stat).return_data(true).build());
        }
        let out = req.send().await.map_err(classify)?;
        let mut page = MetricPage { values: BTreeMap::new(), next_token: out.next_token().map(str::to_owned).filter(|t| !t.is_empty()) };
        for r in out.metric_data_results() {
            let Some(id) = r.id() else { continue };
            let entry = page.values.entry(id.to_owned()).or_default();
            for (t, v) in r.timestamps().iter().zip(r.values()) {
                if let Some(ts) = DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()) {
                    entry.push((ts, *v));
                }
            }
        }
        Ok(page)
    }
}

/// The period CloudWatch keeps for data as old as `oldest`, seen at `now`.
pub fn period_for(oldest: DateTime<Utc>, now: DateTime<Utc>) -> i32 {
    let age = now - oldest;
    if age <= Duration::days(15) {
        60
    } else if age <= Duration::days(63) {
        300
    } else {
        3600
    }
}

/// What a collection gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageCollected {
    pub samples: Vec<UsageSample>,
    pub queries: usize,
    pub calls: u32,
    pub period: i32,
    pub warnings: Vec<String>,
}

fn aggregate(statistic: &str, values: &[f64]) -> f64 {
    match statistic {
        "Average" => values.iter().sum::<f64>() / values.len() as f64,
        "Maximum" => values.iter().copied().fold(f64::MIN, f64::max),
        "Minimum" => values.iter().copied().fold(f64::MAX, f64::min),
        s if s.starts_with('p') || s.starts_with("tm") => values.iter().copied().fold(f64::MIN, f64::max),
        // Sum and SampleCount add up over the hour.
        _ => values.iter().sum(),
    }
}

/// Collects `[from, to)` (whole hours) for `queries`. `known` tenants are
/// asked for even when `ListMetrics` does not name them.
#[allow(clippy::too_many_arguments, reason = "each is a separate input of one collection run; the job passes them from the config")]
pub async fn collect_usage(
    api: &dyn CloudWatchApi,
    configured: &[CloudWatchQuery],
    namespace_tenants: &BTreeMap<String, TenantId>,
    known: &[TenantId],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: &RetryPolicy,
) -> Result<UsageCollected, String> {
    let from = from.duration_trunc(Duration::hours(1)).map_err(|e| e.to_string())?;
    let to = to.duration_trunc(Duration::hours(1)).map_err(|e| e.to_string())?;
    if to <= from {
        return Err(format!("an empty window {from}..{to}"));
    }
    let mut warnings = Vec::new();
    // (query id) -> (tenant, Tally metric, statistic, scale)
    let mut meaning: BTreeMap<String, (TenantId, TallyMetric, String, f64)> = BTreeMap::new();
    let mut queries = Vec::new();
    for (qi, q) in configured.iter().enumerate() {
        let metric = TallyMetric::parse(&q.metric).map_err(|e| e.to_string())?;
        let fixed: Vec<(String, String)> = q.dimensions.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let found = with_retries(policy, "ListMetrics", || api.dimension_values(&q.namespace, &q.metric_name, &q.tenant_dimension, &fixed))
            .await
            .value
            .map_err(|e| format!("ListMetrics {}/{}: {e}", q.namespace, q.metric_name))?;
        let mut values: BTreeSet<String> = found.into_iter().collect();
        // Known tenants and mapped namespaces are asked for too.
        values.extend(known.iter().map(|t| t.to_string()));
        values.extend(namespace_tenants.keys().cloned());
        for value in values {
            let tenant = match namespace_tenants.get(&value) {
                Some(t) => t.clone(),
                None => match TenantId::normalise(&value) {
                    Ok(t) => t,
                    Err(_) => {
                        warnings.push(format!(
                            "{}/{}: {} {value:?} is not a tenant id and is not in namespace_tenants; skipped",
                            q.namespace, q.metric_name, q.tenant_dimension
                        ));
                        continue;
                    }
                },
            };
            let id = format!("q{qi}_{}", queries.len());
            let mut dims = fixed.clone();
            dims.push((q.tenant_dimension.clone(), value));
            queries.push(MetricQuery {
                id: id.clone(),
                namespace: q.namespace.clone(),
                metric_name: q.metric_name.clone(),
                statistic: q.statistic.clone(),
                dimensions: dims,
            });
            meaning.insert(id, (tenant, metric.clone(), q.statistic.clone(), q.scale));
        }
    }
    let period = period_for(from, now);
    let points_per_query = ((to - from).num_seconds() / i64::from(period)).max(1);
    let per_call = MAX_QUERIES.min((MAX_DATAPOINTS / points_per_query).max(1) as usize);
    let mut values: BTreeMap<String, Vec<(DateTime<Utc>, f64)>> = BTreeMap::new();
    let mut calls = 0u32;
    for batch in queries.chunks(per_call) {
        let mut token: Option<String> = None;
        loop {
            let t = token.clone();
            let attempted = with_retries(policy, "GetMetricData", || api.get_metric_data(batch, from, to, period, t.clone())).await;
            calls += attempted.attempts;
            let page = attempted.value.map_err(|e| format!("GetMetricData: {e}"))?;
            for (id, v) in page.values {
                values.entry(id).or_default().extend(v);
            }
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
    }
    let mut samples = Vec::new();
    for (id, points) in values {
        let Some((tenant, metric, statistic, scale)) = meaning.get(&id) else { continue };
        let mut hours: BTreeMap<DateTime<Utc>, Vec<f64>> = BTreeMap::new();
        for (t, v) in points {
            if t >= from && t < to && v.is_finite() {
                hours.entry(t.duration_trunc(Duration::hours(1)).map_err(|e| e.to_string())?).or_default().push(v);
            }
        }
        for (hour, vs) in hours {
            let value = (aggregate(statistic, &vs) * scale).max(0.0);
            samples.push(UsageSample::new(hour, tenant.clone(), metric.clone(), value).map_err(|e| e.to_string())?);
        }
    }
    samples.sort_by(|a, b| (a.hour, &a.tenant, &a.metric).cmp(&(b.hour, &b.tenant, &b.metric)));
    Ok(UsageCollected { samples, queries: queries.len(), calls, period, warnings })
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "the expected values are computed exactly")]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_period_follows_cloudwatch_retention() {
        let now = t("2026-11-29T00:00:00Z");
        assert_eq!(period_for(t("2026-11-28T00:00:00Z"), now), 60);
        assert_eq!(period_for(t("2026-11-14T00:00:00Z"), now), 60);
        assert_eq!(period_for(t("2026-11-13T23:00:00Z"), now), 300);
        assert_eq!(period_for(t("2026-09-27T00:00:00Z"), now), 300);
        assert_eq!(period_for(t("2026-09-26T23:00:00Z"), now), 3600);
    }

    #[test]
    fn hourly_values_follow_the_statistic() {
        assert_eq!(aggregate("Sum", &[1.0, 2.0, 3.0]), 6.0);
        assert_eq!(aggregate("Average", &[1.0, 2.0, 3.0]), 2.0);
        assert_eq!(aggregate("Maximum", &[1.0, 5.0, 3.0]), 5.0);
    }
}
