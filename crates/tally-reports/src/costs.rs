//! Costs grouped by any of tenant, service, pool, day and month.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tally_domain::AllocationRow;

/// A dimension to group costs by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Tenant,
    Service,
    Pool,
    Day,
    Month,
}

impl Dimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Service => "service",
            Self::Pool => "pool",
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

impl FromStr for Dimension {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "tenant" => Ok(Self::Tenant),
            "service" => Ok(Self::Service),
            "pool" => Ok(Self::Pool),
            "day" => Ok(Self::Day),
            "month" => Ok(Self::Month),
            other => Err(format!("{other:?} is not a dimension: expected tenant, service, pool, day or month")),
        }
    }
}

/// Which cost to sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// What the invoice shows.
    #[default]
    Unblended,
    /// Effective cost: commitments spread over the usage they cover.
    Amortized,
}

impl FromStr for Measure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unblended" => Ok(Self::Unblended),
            "amortized" => Ok(Self::Amortized),
            other => Err(format!("{other:?} is not a cost measure: expected unblended or amortized")),
        }
    }
}

/// One group of costs.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CostGroup {
    /// The group's value in each requested dimension, e.g. `{"tenant": "acme"}`.
    pub key: BTreeMap<String, String>,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "1234.56")]
    pub cost: Decimal,
}

/// Sums `rows` by `dims`. Rows must be daily rows when `Day` is among the
/// dimensions, monthly rows otherwise (the caller picks). Groups are sorted
/// by cost, largest first, then by key.
pub fn group(rows: &[AllocationRow], dims: &[Dimension], measure: Measure) -> Vec<CostGroup> {
    let mut sums: BTreeMap<Vec<String>, Decimal> = BTreeMap::new();
    for r in rows {
        let key: Vec<String> = dims
            .iter()
            .map(|d| match d {
                Dimension::Tenant => r.allocatee.to_string(),
                Dimension::Service => r.service.clone(),
                Dimension::Pool => r.pool.to_string(),
                Dimension::Day => r.day.map(|d| d.to_string()).unwrap_or_default(),
                Dimension::Month => r.month.to_string(),
            })
            .collect();
        *sums.entry(key).or_default() += match measure {
            Measure::Unblended => r.unblended,
            Measure::Amortized => r.amortized,
        };
    }
    let mut out: Vec<CostGroup> =
        sums.into_iter().map(|(k, cost)| CostGroup { key: dims.iter().map(|d| d.as_str().to_owned()).zip(k).collect(), cost }).collect();
    // Time dimensions read best in time order; others by size.
    if dims.iter().any(|d| matches!(d, Dimension::Day | Dimension::Month)) {
        out.sort_by(|a, b| a.key.cmp(&b.key));
    } else {
        out.sort_by(|a, b| b.cost.cmp(&a.cost).then(a.key.cmp(&b.key)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_domain::{Allocatee, Currency, Month, PoolId};

    fn row(who: &str, pool: &str, service: &str, cost: &str) -> AllocationRow {
        AllocationRow {
            month: Month::parse("2026-10").unwrap(),
            day: None,
            allocatee: Allocatee::parse(who).unwrap(),
            pool: PoolId::parse(pool).unwrap(),
            service: service.into(),
            currency: Currency::USD,
            unblended: cost.parse().unwrap(),
            amortized: cost.parse().unwrap(),
            driver: None,
            driver_quantity: None,
            reason: None,
        }
    }

    #[test]
    fn costs_group_by_tenant_largest_first() {
        let rows =
            [row("acme", "shared", "AmazonS3", "1.10"), row("globex", "cache", "AmazonElastiCache", "5"), row("acme", "cache", "AmazonElastiCache", "2.20")];
        let g = group(&rows, &[Dimension::Tenant], Measure::Unblended);
        assert_eq!(g[0].key["tenant"], "globex");
        assert_eq!(g[1].cost, "3.30".parse::<Decimal>().unwrap());
    }

    #[test]
    fn an_unknown_dimension_is_named_in_the_error() {
        assert!(Dimension::from_str("region").unwrap_err().contains("region"));
    }
}
