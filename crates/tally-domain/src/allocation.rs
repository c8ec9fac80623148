use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{Currency, Month, TenantId, ValidationError};

/// Who an allocated amount goes to: a tenant, or one of the three rows that
/// keep the books whole when no tenant can be named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Allocatee {
    Tenant(TenantId),
    /// Paid-for capacity no tenant used (kept when a pool's idle policy is `keep`).
    Idle,
    /// Shared cost kept as a company overhead (shared policy `keep`).
    Shared,
    /// Cost whose driver had no usage at all in the period; its reason is recorded.
    Unallocated,
}

impl Allocatee {
    pub const IDLE: &'static str = "__idle__";
    pub const SHARED: &'static str = "__shared__";
    pub const UNALLOCATED: &'static str = "__unallocated__";

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        match value {
            Self::IDLE => Ok(Self::Idle),
            Self::SHARED => Ok(Self::Shared),
            Self::UNALLOCATED => Ok(Self::Unallocated),
            other => TenantId::parse(other).map(Self::Tenant),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Tenant(t) => t.as_str(),
            Self::Idle => Self::IDLE,
            Self::Shared => Self::SHARED,
            Self::Unallocated => Self::UNALLOCATED,
        }
    }

    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::Tenant(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Allocatee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Allocatee {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Allocatee {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Allocatee {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The name of a cost pool: a snake_case slug such as `eks_compute`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PoolId(String);

impl PoolId {
    pub const DIRECT: &'static str = "direct";
    pub const EKS_COMPUTE: &'static str = "eks_compute";
    pub const EKS_CONTROL_PLANE: &'static str = "eks_control_plane";
    pub const RDS_COMPUTE: &'static str = "rds_compute";
    pub const RDS_STORAGE: &'static str = "rds_storage";
    pub const CACHE: &'static str = "cache";
    pub const TRANSFER: &'static str = "transfer";
    pub const LOAD_BALANCER: &'static str = "load_balancer";
    pub const SHARED: &'static str = "shared";
    pub const COMMITMENT: &'static str = "unused_commitment";
    pub const TAX: &'static str = "tax";
    pub const CREDITS: &'static str = "credits";

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.as_bytes()[0].is_ascii_lowercase()
            && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok { Ok(Self(value.to_owned())) } else { Err(ValidationError::new("pool", value, "a snake_case name such as eks_compute")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PoolId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PoolId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PoolId> for String {
    fn from(value: PoolId) -> Self {
        value.0
    }
}

/// Why a line could not be given to any tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnallocatedReason(pub String);

/// One allocated figure: what `allocatee` is charged from `pool` for
/// `service` in `month` (or on `day`, for daily results), already rounded to
/// the currency's minor unit so that the rows of a month and service add up
/// to that month's bill for the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationRow {
    pub month: Month,
    /// Set on daily rows; `None` on the monthly rows finance exports.
    pub day: Option<chrono::NaiveDate>,
    pub allocatee: Allocatee,
    pub pool: PoolId,
    pub service: String,
    pub currency: Currency,
    #[serde(with = "rust_decimal::serde::str")]
    pub unblended: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub amortized: Decimal,
    /// The usage metric that drove the split, if the pool has one.
    pub driver: Option<String>,
    /// This allocatee's quantity of the driver in the month (or day).
    pub driver_quantity: Option<f64>,
    /// For `__unallocated__` rows: why.
    pub reason: Option<String>,
}

/// How one tenant's share of one pool in one month came about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub month: Month,
    pub allocatee: Allocatee,
    pub pool: PoolId,
    /// What the pool splits by, in words a finance reader can check.
    pub method: String,
    pub driver: Option<String>,
    pub driver_quantity: Option<f64>,
    pub pool_driver_quantity: Option<f64>,
    /// The allocatee's share of the pool's cost, 0..=1, after rounding.
    pub share: f64,
    #[serde(with = "rust_decimal::serde::str")]
    pub pool_unblended: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub allocated_unblended: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub pool_amortized: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub allocated_amortized: Decimal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_reserved_allocatees_round_trip_through_their_names() {
        for name in ["__idle__", "__shared__", "__unallocated__", "acme"] {
            assert_eq!(Allocatee::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn an_allocatee_that_is_neither_reserved_nor_a_tenant_id_is_rejected() {
        assert!(Allocatee::parse("__other__").is_err());
    }

    #[test]
    fn pool_names_are_snake_case() {
        assert!(PoolId::parse("eks_compute").is_ok());
        assert!(PoolId::parse("EKS").is_err());
    }
}
