//! One tenant's cost, revenue, margin and unit costs.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use tally_domain::{Month, Tenant};

use crate::costs::Measure;
use crate::{cents, ratio};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PoolServiceCost {
    pub pool: String,
    pub service: String,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub unblended: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub amortized: Decimal,
}

/// What one unit of what the tenant consumes costs us.
#[derive(Debug, Clone, PartialEq, Default, Serialize, utoipa::ToSchema)]
pub struct UnitCosts {
    /// All of the tenant's cost per 1,000 requests it made.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub per_1000_requests: Option<Decimal>,
    /// Data-transfer cost per GB the tenant sent out.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub per_gb_egress: Option<Decimal>,
    /// Database storage cost per GB-month of the tenant's schema.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub per_gb_month_db_storage: Option<Decimal>,
    /// EKS compute cost per vCPU-hour the tenant's pods allocated.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub per_vcpu_hour: Option<Decimal>,
}

/// The usage behind the unit costs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, utoipa::ToSchema)]
pub struct UnitUsage {
    pub requests: f64,
    pub egress_gb: f64,
    pub db_gb_months: f64,
    pub vcpu_hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TenantReport {
    pub tenant: String,
    pub name: String,
    pub plan: Option<String>,
    #[schema(value_type = String, example = "2026-10")]
    pub from: Month,
    #[schema(value_type = String, example = "2026-10")]
    pub to: Month,
    /// The measure of `cost`, the margin, the breakdowns and the unit costs:
    /// `amortized` unless the request asked for `unblended`.
    pub measure: Measure,
    /// The tenant's cost in `measure`.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub cost: Decimal,
    /// The tenant's cost as invoiced: commitment fees in the month they are
    /// billed, covered usage at zero.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub cost_unblended: Decimal,
    /// The tenant's effective cost: commitment fees spread over the usage
    /// they covered.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub cost_amortized: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub revenue: Decimal,
    /// Revenue minus `cost`.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub gross_margin: Decimal,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub gross_margin_percent: Option<Decimal>,
    /// Margin below the configured target (or no revenue at all against a cost).
    pub below_target: bool,
    pub by_pool: Vec<crate::NamedAmount>,
    pub by_service: Vec<crate::NamedAmount>,
    pub lines: Vec<PoolServiceCost>,
    pub unit_costs: UnitCosts,
    pub usage: UnitUsage,
}

/// Usage totals of a tenant over the report's months: (month, metric) -> sum of hourly values.
pub type UsageSums = BTreeMap<(Month, String), f64>;

/// A tenant's report from its costs per pool and service over the span
/// (`lines`, summed by the database's rollups), its revenue, its usage and
/// the vCPU-hours its pods were allocated (the EKS pool's driver), with the
/// margin, breakdowns and unit costs in `measure`.
#[allow(clippy::too_many_arguments, reason = "each input is a different figure of the report")]
pub fn tenant_report(
    tenant: &Tenant,
    from: Month,
    to: Month,
    lines: &[PoolServiceCost],
    revenue: Decimal,
    usage: &UsageSums,
    vcpu_hours: f64,
    target_margin_percent: Decimal,
    measure: Measure,
) -> TenantReport {
    let cost_unblended: Decimal = lines.iter().map(|r| r.unblended).sum();
    let cost_amortized: Decimal = lines.iter().map(|r| r.amortized).sum();
    let cost = measure.pick(cost_unblended, cost_amortized);
    let mut by_pool: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut by_service: BTreeMap<String, Decimal> = BTreeMap::new();
    for r in lines {
        let c = measure.pick(r.unblended, r.amortized);
        *by_pool.entry(r.pool.clone()).or_default() += c;
        *by_service.entry(r.service.clone()).or_default() += c;
    }
    let sum = |metric: &str| usage.iter().filter(|((_, m), _)| m == metric).map(|(_, v)| *v).sum::<f64>();
    let db_gb_months: f64 = usage.iter().filter(|((_, m), _)| m == "db_storage_gb").map(|((month, _), v)| v / month.hours() as f64).sum();
    let u = UnitUsage { requests: sum("requests"), egress_gb: sum("egress_gb"), db_gb_months, vcpu_hours };
    let pool = |p: &str| by_pool.get(p).copied().unwrap_or_default();
    let dec = |x: f64| Decimal::try_from(x).unwrap_or_default();
    let unit_costs = UnitCosts {
        per_1000_requests: ratio(cost * Decimal::from(1000), dec(u.requests), 4),
        per_gb_egress: ratio(pool("transfer"), dec(u.egress_gb), 4),
        per_gb_month_db_storage: ratio(pool("rds_storage"), dec(u.db_gb_months), 4),
        per_vcpu_hour: ratio(pool("eks_compute"), dec(u.vcpu_hours), 4),
    };
    let margin = revenue - cost;
    let margin_percent = ratio(margin * Decimal::from(100), revenue, 1);
    let below_target = match margin_percent {
        Some(p) => p < target_margin_percent,
        None => cost > Decimal::ZERO,
    };
    let sorted = |m: BTreeMap<String, Decimal>| {
        let mut v: Vec<(String, Decimal)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.into_iter().map(|(name, d)| crate::NamedAmount { name, amount: cents(d) }).collect()
    };
    TenantReport {
        tenant: tenant.id.to_string(),
        name: tenant.display_name.clone(),
        plan: tenant.plan.clone(),
        from,
        to,
        measure,
        cost,
        cost_unblended,
        cost_amortized,
        revenue,
        gross_margin: margin,
        gross_margin_percent: margin_percent,
        below_target,
        by_pool: sorted(by_pool),
        by_service: sorted(by_service),
        lines: lines.to_vec(),
        unit_costs,
        usage: u,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_domain::TenantId;

    fn row(pool: &str, service: &str, cost: &str) -> PoolServiceCost {
        PoolServiceCost { pool: pool.into(), service: service.into(), unblended: cost.parse().unwrap(), amortized: cost.parse().unwrap() }
    }

    #[test]
    fn margin_and_unit_costs_come_from_cost_revenue_and_usage() {
        let t = Tenant::new(TenantId::parse("acme").unwrap(), "Acme", Some("growth")).unwrap();
        let m = Month::parse("2026-10").unwrap();
        let rows = [row("eks_compute", "AmazonEC2", "60.00"), row("transfer", "AWSDataTransfer", "9.00"), row("rds_storage", "AmazonRDS", "11.50")];
        let usage = UsageSums::from([
            ((m, "requests".to_string()), 2_000_000.0),
            ((m, "egress_gb".to_string()), 100.0),
            ((m, "db_storage_gb".to_string()), 50.0 * 744.0),
        ]);
        let r = tenant_report(&t, m, m, &rows, "199".parse().unwrap(), &usage, 300.0, "60".parse().unwrap(), Measure::Amortized);
        assert_eq!(r.cost, "80.50".parse::<Decimal>().unwrap());
        assert_eq!(r.gross_margin, "118.50".parse::<Decimal>().unwrap());
        assert_eq!(r.gross_margin_percent, Some("59.5".parse().unwrap()));
        assert!(r.below_target);
        assert_eq!(r.unit_costs.per_1000_requests, Some("0.0403".parse().unwrap()));
        assert_eq!(r.unit_costs.per_gb_egress, Some("0.09".parse().unwrap()));
        assert_eq!(r.unit_costs.per_gb_month_db_storage, Some("0.23".parse().unwrap()));
        assert_eq!(r.unit_costs.per_vcpu_hour, Some("0.2".parse().unwrap()));
    }

    #[test]
    fn margins_breakdowns_and_unit_costs_follow_the_measure_asked_for() {
        // A tenant on a reserved m5.xlarge: its node hours are billed at 0
        // (DiscountedUsage) and the RI's fee is a line of its own, so unblended
        // shows 0 for its compute, while amortized carries the hours' effective
        // cost, 84.00 (420 vCPU-hours at 0.20).
        let t = Tenant::discovered(TenantId::parse("acme").unwrap());
        let m = Month::parse("2026-10").unwrap();
        let reserved =
            PoolServiceCost { pool: "eks_compute".into(), service: "AmazonEC2".into(), unblended: Decimal::ZERO, amortized: "84.00".parse().unwrap() };
        let rows = [reserved, row("transfer", "AWSDataTransfer", "6.00")];
        let report = |measure| tenant_report(&t, m, m, &rows, "300".parse().unwrap(), &UsageSums::new(), 420.0, "60".parse().unwrap(), measure);
        let amortized = report(Measure::Amortized);
        assert_eq!(
            (amortized.cost, amortized.cost_unblended, amortized.cost_amortized),
            ("90.00".parse().unwrap(), "6.00".parse().unwrap(), "90.00".parse().unwrap())
        );
        assert_eq!((amortized.gross_margin, amortized.gross_margin_percent), ("210.00".parse().unwrap(), Some("70.0".parse().unwrap())));
        assert_eq!(amortized.unit_costs.per_vcpu_hour, Some("0.2".parse().unwrap()));
        assert_eq!(amortized.by_pool[0].name, "eks_compute");
        let unblended = report(Measure::Unblended);
        assert_eq!((unblended.cost, unblended.gross_margin_percent), ("6.00".parse().unwrap(), Some("98.0".parse().unwrap())));
        assert_eq!(unblended.unit_costs.per_vcpu_hour, Some(Decimal::ZERO));
        assert_eq!(unblended.by_pool[0].name, "transfer");
    }

    #[test]
    fn a_tenant_that_pays_nothing_but_costs_something_is_below_target() {
        let t = Tenant::discovered(TenantId::parse("acme").unwrap());
        let m = Month::parse("2026-10").unwrap();
        let r = tenant_report(&t, m, m, &[row("shared", "AmazonS3", "1")], Decimal::ZERO, &UsageSums::new(), 0.0, "60".parse().unwrap(), Measure::Amortized);
        assert!(r.below_target);
        assert_eq!(r.gross_margin_percent, None);
    }
}
