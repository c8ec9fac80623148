//! Costs grouped by any of tenant, service, pool, day and month.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

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

impl Measure {
    /// The measure as the `measure` parameter spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unblended => "unblended",
            Self::Amortized => "amortized",
        }
    }

    /// This measure's figure of a cost known in both.
    pub fn pick(self, unblended: Decimal, amortized: Decimal) -> Decimal {
        match self {
            Self::Unblended => unblended,
            Self::Amortized => amortized,
        }
    }
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

/// Puts groups in reading order: time dimensions in time order, others by
/// size, largest first, then by key.
pub fn order(groups: &mut [CostGroup], dims: &[Dimension]) {
    if dims.iter().any(|d| matches!(d, Dimension::Day | Dimension::Month)) {
        groups.sort_by(|a, b| a.key.cmp(&b.key));
    } else {
        groups.sort_by(|a, b| b.cost.cmp(&a.cost).then(a.key.cmp(&b.key)));
    }
}

/// The dimensions of a `group_by` parameter: each known one once, in the
/// order given; an unknown one is named in the error.
pub fn parse_dimensions(text: &str) -> Result<Vec<Dimension>, String> {
    let mut dims = Vec::new();
    for part in text.split(',') {
        let d: Dimension = part.parse()?;
        if !dims.contains(&d) {
            dims.push(d);
        }
    }
    Ok(dims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(tenant: &str, cost: &str) -> CostGroup {
        CostGroup { key: BTreeMap::from([("tenant".to_owned(), tenant.to_owned())]), cost: cost.parse().unwrap() }
    }

    #[test]
    fn costs_by_tenant_read_largest_first() {
        let mut g = vec![group("acme", "3.30"), group("globex", "5"), group("initech", "5")];
        order(&mut g, &[Dimension::Tenant]);
        assert_eq!(g.iter().map(|g| g.key["tenant"].as_str()).collect::<Vec<_>>(), ["globex", "initech", "acme"]);
    }

    #[test]
    fn an_unknown_dimension_is_named_in_the_error() {
        assert!(Dimension::from_str("region").unwrap_err().contains("region"));
        assert!(parse_dimensions("tenant,region").unwrap_err().contains("region"));
    }

    #[test]
    fn a_dimension_repeated_is_counted_once() {
        assert_eq!(parse_dimensions("day,day,tenant,day").unwrap(), [Dimension::Day, Dimension::Tenant]);
    }
}
