//! A month's bill against its allocation, per service, with the
//! unallocated rows and why they are unallocated.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use tally_domain::{Allocatee, AllocationRow, Month};

use crate::cents;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ServiceReconciliation {
    pub service: String,
    pub lines: i64,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub billed: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub allocated: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub difference: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub billed_amortized: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub allocated_amortized: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UnallocatedRow {
    pub service: String,
    pub pool: String,
    pub reason: String,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub unblended: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub amortized: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reconciliation {
    #[schema(value_type = String, example = "2026-10")]
    pub month: Month,
    /// Which billing source the allocation used.
    pub source: Option<String>,
    pub services: Vec<ServiceReconciliation>,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub billed_total: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub allocated_total: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub unallocated_total: Decimal,
    pub unallocated: Vec<UnallocatedRow>,
    /// True when every service's allocated total equals its bill to the cent.
    pub reconciled: bool,
}

/// A billed total, as stored by the allocation: (service, lines, unblended, amortized).
pub type Billed = (String, i64, Decimal, Decimal);

/// Reconciles a month: `billed` per service, `allocated` per service (the
/// allocation's rows summed), and the rows `unassigned` to any tenant (only
/// those of `__unallocated__` are listed with their reasons).
pub fn reconcile(
    month: Month,
    source: Option<String>,
    billed: &[Billed],
    allocated: &BTreeMap<String, (Decimal, Decimal)>,
    unassigned: &[AllocationRow],
) -> Reconciliation {
    let services: Vec<ServiceReconciliation> = billed
        .iter()
        .map(|(service, lines, u, a)| {
            let (au, aa) = allocated.get(service.as_str()).copied().unwrap_or_default();
            ServiceReconciliation {
                service: service.clone(),
                lines: *lines,
                billed: cents(*u),
                allocated: au,
                difference: au - cents(*u),
                billed_amortized: cents(*a),
                allocated_amortized: aa,
            }
        })
        .collect();
    let mut unallocated: BTreeMap<(String, String, String), (Decimal, Decimal)> = BTreeMap::new();
    for r in unassigned.iter().filter(|r| r.allocatee == Allocatee::Unallocated) {
        let e = unallocated.entry((r.service.clone(), r.pool.to_string(), r.reason.clone().unwrap_or_else(|| "no reason recorded".into()))).or_default();
        e.0 += r.unblended;
        e.1 += r.amortized;
    }
    let unallocated: Vec<UnallocatedRow> =
        unallocated.into_iter().map(|((service, pool, reason), (u, a))| UnallocatedRow { service, pool, reason, unblended: u, amortized: a }).collect();
    Reconciliation {
        month,
        source,
        reconciled: !services.is_empty() && services.iter().all(|s| s.difference.is_zero() && s.allocated_amortized == s.billed_amortized),
        billed_total: services.iter().map(|s| s.billed).sum(),
        allocated_total: services.iter().map(|s| s.allocated).sum(),
        unallocated_total: unallocated.iter().map(|u| u.unblended).sum(),
        services,
        unallocated,
    }
}
