use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Period, TenantId, ValidationError};

/// The name of a usage metric. The canonical ones drive the default pools;
/// any other slug is accepted and can drive a custom pool.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Metric(String);

impl Metric {
    /// Canonical metrics and their units.
    pub const CANONICAL: &'static [(&'static str, &'static str, &'static str)] = &[
        ("cpu_request_vcpu_hours", "vCPU-hours", "EKS: CPU requested by a pod on a node in the hour"),
        ("cpu_used_vcpu_hours", "vCPU-hours", "EKS: CPU used by a pod on a node in the hour"),
        ("mem_request_gb_hours", "GB-hours", "EKS: memory requested by a pod on a node in the hour"),
        ("mem_used_gb_hours", "GB-hours", "EKS: memory used by a pod on a node in the hour"),
        ("db_storage_gb", "GB", "RDS: the tenant schema's size, hourly average"),
        ("db_exec_seconds", "seconds", "RDS: statement execution time of the tenant's queries"),
        ("cache_memory_gb", "GB", "ElastiCache: memory held by the tenant's keys, hourly average"),
        ("cache_commands", "commands", "ElastiCache: commands issued for the tenant"),
        ("egress_gb", "GB", "data transferred out to the internet for the tenant"),
        ("requests", "requests", "requests served through the load balancer for the tenant"),
    ];

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && value.as_bytes()[0].is_ascii_lowercase();
        if ok { Ok(Self(value.to_owned())) } else { Err(ValidationError::new("metric", value, "a snake_case name of at most 64 characters, e.g. egress_gb")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The unit of a canonical metric.
    pub fn canonical_unit(&self) -> Option<&'static str> {
        Self::CANONICAL.iter().find(|(m, _, _)| *m == self.0).map(|(_, unit, _)| *unit)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Metric {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Metric> for String {
    fn from(value: Metric) -> Self {
        value.0
    }
}

/// One tenant's consumption of one metric in one hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageSample {
    pub hour: Period,
    pub tenant: TenantId,
    pub metric: Metric,
    pub value: f64,
    pub unit: Option<String>,
    /// The resource consumed, e.g. the EKS node's EC2 instance id.
    pub resource_id: Option<String>,
    /// The consumer inside the tenant, e.g. the pod.
    pub workload: Option<String>,
}

impl UsageSample {
    pub fn new(hour: DateTime<Utc>, tenant: TenantId, metric: Metric, value: f64) -> Result<Self, ValidationError> {
        let hour = Period::hour(hour)?;
        if !value.is_finite() || value < 0.0 {
            return Err(ValidationError::new("usage value", value, "a finite number >= 0"));
        }
        let unit = metric.canonical_unit().map(str::to_owned);
        Ok(Self { hour, tenant, metric, value, unit, resource_id: None, workload: None })
    }

    pub fn with_resource(mut self, resource_id: impl Into<String>) -> Self {
        self.resource_id = Some(resource_id.into());
        self
    }

    pub fn with_workload(mut self, workload: impl Into<String>) -> Self {
        self.workload = Some(workload.into());
        self
    }

    pub fn with_unit(mut self, unit: Option<String>) -> Self {
        if unit.is_some() {
            self.unit = unit;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn hour() -> DateTime<Utc> {
        "2026-10-01T05:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_usage_sample_takes_the_canonical_unit_of_its_metric() {
        let s = UsageSample::new(hour(), t(), Metric::parse("egress_gb").unwrap(), 1.5).unwrap();
        assert_eq!(s.unit.as_deref(), Some("GB"));
    }

    #[test]
    fn a_negative_or_non_finite_usage_value_is_rejected() {
        let m = Metric::parse("requests").unwrap();
        assert!(UsageSample::new(hour(), t(), m.clone(), -1.0).is_err());
        assert!(UsageSample::new(hour(), t(), m, f64::NAN).is_err());
    }

    #[test]
    fn a_usage_sample_must_start_on_the_hour() {
        let m = Metric::parse("requests").unwrap();
        assert!(UsageSample::new("2026-10-01T05:01:00Z".parse().unwrap(), t(), m, 1.0).is_err());
    }

    #[test]
    fn custom_metric_names_are_snake_case_slugs() {
        assert!(Metric::parse("gpu_hours").is_ok());
        assert!(Metric::parse("GPU hours").is_err());
        assert!(Metric::parse("1st").is_err());
    }
}
