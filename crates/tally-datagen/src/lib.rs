//! A deterministic, seeded generator of the reference deployment's bill and
//! usage: CUR 2.0-shaped Parquet (real column names, MAP columns), per-tenant
//! hourly usage, plan revenue. The same code scales by [`Params`] to
//! benchmark sizes (millions of lines, thousands of tenants).
//!
//! Architecture invariants:
//! - Same parameters and seed, same bytes: no clock, no global RNG, no
//!   hash-map iteration order in the output.
//! - Writes files only; it never touches the database. The demo imports what
//!   it writes through the same readers a real CUR goes through.
//! - Prices are the us-east-1 on-demand list prices of the reference
//!   deployment (`shared/design/REFERENCE-DEPLOYMENT.md`).
//!
//! Entry point: [`generate`].

mod prices;
mod sim;
mod write;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tally_domain::Month;

pub use prices::LIST_PRICES;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub seed: u64,
    /// Number of tenants; the first few are large, the rest a long tail.
    pub tenants: usize,
    /// Months to generate, in order.
    pub months: Vec<Month>,
    /// Generate nothing at or after this instant (a month to date).
    pub until: Option<DateTime<Utc>>,
    /// Always-on EKS nodes (m5.xlarge).
    pub base_nodes: usize,
    /// Nodes the autoscaler may add at daily peaks.
    pub max_extra_nodes: usize,
    /// Top tenants whose traffic every pod serves; the rest are pinned to one pod.
    pub spread_tenants: usize,
    /// Share of hours in which a long-tail tenant shows database, cache and
    /// network activity (1.0: every hour).
    pub tail_activity: f64,
    /// Extra, untagged EC2 instances outside the cluster (benchmark scale).
    pub extra_instances: usize,
}

impl Params {
    /// The reference deployment: 3 m5.xlarge nodes scaling to 5 at peaks,
    /// RDS Multi-AZ, 3 cache nodes, ALB, S3, CloudWatch.
    pub fn reference(seed: u64, tenants: usize, months: Vec<Month>) -> Self {
        Self { seed, tenants, months, until: None, base_nodes: 3, max_extra_nodes: 2, spread_tenants: 3, tail_activity: 1.0, extra_instances: 0 }
    }

    /// Benchmark sizes: `S` is the reference deployment for one month; `M`
    /// and `L` scale the same deployment to about 1M / 10M billing lines,
    /// 1,000 / 10,000 tenants and 5M / 50M usage rows in one month.
    pub fn benchmark(size: BenchSize, month: Month) -> Self {
        match size {
            BenchSize::S => Self::reference(42, 25, vec![month]),
            BenchSize::M => Self {
                seed: 42,
                tenants: 1_000,
                months: vec![month],
                until: None,
                base_nodes: 60,
                max_extra_nodes: 30,
                spread_tenants: 1,
                tail_activity: 0.39,
                extra_instances: 1_280,
            },
            BenchSize::L => Self {
                seed: 42,
                tenants: 10_000,
                months: vec![month],
                until: None,
                base_nodes: 600,
                max_extra_nodes: 300,
                spread_tenants: 2,
                tail_activity: 0.36,
                extra_instances: 13_150,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchSize {
    S,
    M,
    L,
}

impl std::str::FromStr for BenchSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "S" => Ok(Self::S),
            "M" => Ok(Self::M),
            "L" => Ok(Self::L),
            _ => Err(format!("unknown benchmark size {s:?}: expected S, M or L")),
        }
    }
}

/// A tenant of the simulated SaaS.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSpec {
    pub id: String,
    pub name: String,
    pub plan: &'static str,
    /// Monthly plan price in USD.
    pub price: rust_decimal::Decimal,
    /// Share of the SaaS's load, summing to 1 over tenants.
    pub weight: f64,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// One CUR 2.0 Parquet file per month, in a Data Exports folder layout.
    pub cur_files: Vec<PathBuf>,
    /// One usage Parquet file per month.
    pub usage_files: Vec<PathBuf>,
    /// `month,tenant,amount,currency` for every month.
    pub revenue_file: PathBuf,
    pub tenants: Vec<TenantSpec>,
    pub billing_lines: usize,
    pub usage_rows: usize,
    /// Sum of unblended cost per month, as written (floating point, as in CUR).
    pub monthly_unblended: Vec<(Month, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: tally_parquet::Error },
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("invalid parameters: {0}")]
    Params(String),
}

/// Writes the bill, usage and revenue described by `params` under `out`:
/// `out/cur/<export>/data/BILLING_PERIOD=YYYY-MM/<execution>/...parquet`,
/// `out/usage/usage-YYYY-MM.parquet` and `out/revenue.csv`.
pub fn generate(params: &Params, out: &Path) -> Result<Generated, Error> {
    if params.tenants == 0 || params.months.is_empty() || params.base_nodes == 0 {
        return Err(Error::Params("at least one tenant, one month and one node".into()));
    }
    if !(0.0..=1.0).contains(&params.tail_activity) {
        return Err(Error::Params("tail_activity must lie in 0..=1".into()));
    }
    let tenants = sim::tenants(params);
    let mut g = Generated {
        cur_files: Vec::new(),
        usage_files: Vec::new(),
        revenue_file: out.join("revenue.csv"),
        tenants: tenants.clone(),
        billing_lines: 0,
        usage_rows: 0,
        monthly_unblended: Vec::new(),
    };
    for (i, month) in params.months.iter().enumerate() {
        let month_out = write::month(params, &tenants, *month, i, out)?;
        g.cur_files.push(month_out.cur_file);
        g.usage_files.push(month_out.usage_file);
        g.billing_lines += month_out.lines;
        g.usage_rows += month_out.usage_rows;
        g.monthly_unblended.push((*month, month_out.unblended));
    }
    write::revenue(&g.revenue_file, &tenants, params)?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn months() -> Vec<Month> {
        vec![Month::parse("2026-09").unwrap(), Month::parse("2026-10").unwrap()]
    }

    #[test]
    fn the_same_seed_writes_the_same_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let p = Params::reference(7, 8, vec![Month::parse("2026-10").unwrap()]);
        let ga = generate(&p, a.path()).unwrap();
        let gb = generate(&p, b.path()).unwrap();
        for (x, y) in ga.cur_files.iter().zip(&gb.cur_files).chain(ga.usage_files.iter().zip(&gb.usage_files)) {
            assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap(), "{}", x.display());
        }
        assert_eq!(std::fs::read(&ga.revenue_file).unwrap(), std::fs::read(&gb.revenue_file).unwrap());
    }

    #[test]
    fn the_reference_month_costs_what_the_reference_deployment_reports() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(&Params::reference(42, 25, months()), dir.path()).unwrap();
        for (m, total) in &g.monthly_unblended {
            assert!((2000.0..=2400.0).contains(total), "{m}: {total:.2}");
        }
        assert_eq!(g.tenants.len(), 25);
        let top: f64 = g.tenants.iter().take(3).map(|t| t.weight).sum();
        assert!(top > 0.4, "a few tenants are large: top 3 carry {top:.2}");
    }

    #[test]
    fn a_month_to_date_stops_at_the_given_instant() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Params::reference(1, 5, vec![Month::parse("2026-11").unwrap()]);
        p.until = Some("2026-11-10T00:00:00Z".parse().unwrap());
        let g = generate(&p, dir.path()).unwrap();
        let full = generate(&Params::reference(1, 5, vec![Month::parse("2026-11").unwrap()]), tempfile::tempdir().unwrap().path()).unwrap();
        assert!(g.billing_lines * 2 < full.billing_lines);
    }
}
