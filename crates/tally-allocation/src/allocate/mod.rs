//! Allocation of one billing month: every line to a pool, every pool to
//! tenants (or `__idle__`, `__shared__`, `__unallocated__`), rounded so that
//! the rows of each service add up to its bill to the cent.

mod input;
mod round;
mod split;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use polars::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use tally_domain::{Allocatee, AllocationConfig, AllocationRow, CostLine, Currency, Explanation, Month, PoolId, UsageSample};

pub use input::{cur2_lines, usage_parquet};

use crate::read::decimal_from_f64;

/// A month's billed total for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceTotal {
    pub service: String,
    pub unblended: Decimal,
    pub amortized: Decimal,
    pub lines: usize,
}

/// Everything one allocation of one month produced.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthAllocation {
    pub month: Month,
    /// One row per allocatee x service x pool; per service they sum to the bill, to the cent.
    pub monthly: Vec<AllocationRow>,
    /// The same per day; per day and service they sum to that day's bill, to the cent.
    pub daily: Vec<AllocationRow>,
    pub explanations: Vec<Explanation>,
    pub billed: Vec<ServiceTotal>,
}

#[derive(Debug, thiserror::Error)]
pub enum AllocationError {
    #[error("allocation failed in the pipeline: {0}")]
    Pipeline(#[from] PolarsError),
    #[error("{0}")]
    Input(String),
    /// The split did not conserve a service's cost: a bug, never shown as a result.
    #[error("internal error: {0}")]
    Conservation(String),
}

/// Exact totals the rounding must meet.
struct Targets {
    monthly: BTreeMap<String, (Decimal, Decimal, usize)>,
    daily: BTreeMap<(i32, String), (Decimal, Decimal)>,
}

fn epoch_day(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

fn date_of(day: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(day as i64)
}

/// Allocates one billing month of `lines` with the `usage` of the hours they cover.
pub fn allocate_month(
    cfg: &AllocationConfig,
    currency: Currency,
    month: Month,
    lines: &[CostLine],
    usage: &[UsageSample],
) -> Result<MonthAllocation, AllocationError> {
    if let Some(l) = lines.iter().find(|l| l.currency != currency) {
        return Err(AllocationError::Input(format!("a {} line in a {currency} allocation; import with currency_rates configured", l.currency)));
    }
    if let Some(l) = lines.iter().find(|l| l.billing_month != month) {
        return Err(AllocationError::Input(format!("a line of {} in the allocation of {month}", l.billing_month)));
    }
    let mut targets = Targets { monthly: BTreeMap::new(), daily: BTreeMap::new() };
    for l in lines {
        let m = targets.monthly.entry(l.service.clone()).or_default();
        m.0 += l.unblended;
        m.1 += l.amortized;
        m.2 += 1;
        let d = targets.daily.entry((epoch_day(l.day()), l.service.clone())).or_default();
        d.0 += l.unblended;
        d.1 += l.amortized;
    }
    let lf = input::lines_frame(lines)?.lazy();
    let uf = input::usage_frame(usage)?.lazy();
    finish(cfg, currency, month, lf, uf, targets)
}

/// Allocates a month straight from a CUR 2.0 Parquet file and a usage
/// Parquet file, without building domain values (the benchmark path).
/// Totals are the files' own floating-point sums.
pub fn allocate_files(cfg: &AllocationConfig, currency: Currency, month: Month, tenant_tag_key: &str, cur: &Path, usage: &Path) -> Result<MonthAllocation, AllocationError> {
    let lines = input::cur2_lines(cur, tenant_tag_key)?.collect()?;
    let sums = lines
        .clone()
        .lazy()
        .with_column(col("start_ms").floor_div(lit(86_400_000i64)).cast(DataType::Int32).alias("day"))
        .group_by([col("day"), col("service")])
        .agg([col("unblended").sum(), col("amortized").sum(), col("unblended").count().alias("n")])
        .collect()?;
    let mut targets = Targets { monthly: BTreeMap::new(), daily: BTreeMap::new() };
    let (d, s, u, a, n) = (sums.column("day")?.i32()?, sums.column("service")?.str()?, sums.column("unblended")?.f64()?, sums.column("amortized")?.f64()?, sums.column("n")?.idx()?);
    let dec = |x: Option<f64>| decimal_from_f64(x.unwrap_or(0.0)).map_err(AllocationError::Input);
    for i in 0..sums.height() {
        let (uu, aa) = (dec(u.get(i))?, dec(a.get(i))?);
        let svc = s.get(i).unwrap_or_default().to_owned();
        let m = targets.monthly.entry(svc.clone()).or_default();
        m.0 += uu;
        m.1 += aa;
        m.2 += n.get(i).unwrap_or(0) as usize;
        targets.daily.insert((d.get(i).unwrap_or(0), svc), (uu, aa));
    }
    let uf = input::usage_parquet(usage)?;
    finish(cfg, currency, month, lines.lazy(), uf, targets)
}

struct Aggregate {
    unblended: f64,
    amortized: f64,
}

fn finish(cfg: &AllocationConfig, currency: Currency, month: Month, lines: LazyFrame, usage: LazyFrame, targets: Targets) -> Result<MonthAllocation, AllocationError> {
    let split = split::split(lines, usage, cfg)?;
    let rows = &split.rows;
    let (who, pool, service, day, reason, u, a) = (
        rows.column("allocatee")?.str()?,
        rows.column("pool")?.str()?,
        rows.column("service")?.str()?,
        rows.column("day")?.i32()?,
        rows.column("reason")?.str()?,
        rows.column("unblended")?.f64()?,
        rows.column("amortized")?.f64()?,
    );
    type Key = (String, String, Option<String>);
    let mut monthly: BTreeMap<String, BTreeMap<Key, Aggregate>> = BTreeMap::new();
    let mut daily: BTreeMap<(i32, String), BTreeMap<Key, Aggregate>> = BTreeMap::new();
    for i in 0..rows.height() {
        let key: Key = (pool.get(i).unwrap_or_default().to_owned(), who.get(i).unwrap_or_default().to_owned(), reason.get(i).map(str::to_owned));
        let svc = service.get(i).unwrap_or_default().to_owned();
        let (uu, aa) = (u.get(i).unwrap_or(0.0), a.get(i).unwrap_or(0.0));
        let m = monthly.entry(svc.clone()).or_default().entry(key.clone()).or_insert(Aggregate { unblended: 0.0, amortized: 0.0 });
        m.unblended += uu;
        m.amortized += aa;
        let d = daily.entry((day.get(i).unwrap_or(0), svc)).or_default().entry(key).or_insert(Aggregate { unblended: 0.0, amortized: 0.0 });
        d.unblended += uu;
        d.amortized += aa;
    }
    let minor = currency.minor_units();
    let round = |d: Decimal| d.round_dp_with_strategy(minor, RoundingStrategy::MidpointAwayFromZero);
    // Conservation: the float split must carry every service's cost.
    for (svc, (tu, ta, _)) in &targets.monthly {
        let got: (f64, f64) = monthly.get(svc).map_or((0.0, 0.0), |m| m.values().fold((0.0, 0.0), |acc, x| (acc.0 + x.unblended, acc.1 + x.amortized)));
        let (eu, ea) = (tu.to_f64().unwrap_or(0.0), ta.to_f64().unwrap_or(0.0));
        let tol = 1e-6 * eu.abs().max(ea.abs()).max(1.0);
        if (got.0 - eu).abs() > tol || (got.1 - ea).abs() > tol {
            return Err(AllocationError::Conservation(format!("{month} {svc}: billed {eu:.6}/{ea:.6}, allocated {:.6}/{:.6}", got.0, got.1)));
        }
    }
    let driver_of = |pool: &str| split.drivers.get(pool).cloned();
    let qty_of = |pool: &str, who: &str| split.quantities.get(&(pool.to_owned(), who.to_owned())).map(|q| quantity(q.1));
    let build = |groups: &BTreeMap<Key, Aggregate>, target: (Decimal, Decimal), svc: &str, day: Option<NaiveDate>, quantities: bool| -> Vec<AllocationRow> {
        let keys: Vec<&Key> = groups.keys().collect();
        let us: Vec<f64> = groups.values().map(|g| g.unblended).collect();
        let am: Vec<f64> = groups.values().map(|g| g.amortized).collect();
        let ru = round::largest_remainder(&us, round(target.0), minor);
        let ra = round::largest_remainder(&am, round(target.1), minor);
        keys.into_iter()
            .zip(ru.into_iter().zip(ra))
            .filter(|(_, (u, a))| !u.is_zero() || !a.is_zero())
            .map(|((pool, who, reason), (u, a))| AllocationRow {
                month,
                day,
                allocatee: Allocatee::parse(who).expect("allocatees come from tenant ids and the reserved names"),
                pool: PoolId::parse(pool).expect("pool names come from validated config"),
                service: svc.to_owned(),
                currency,
                unblended: u,
                amortized: a,
                driver: driver_of(pool),
                driver_quantity: if quantities { qty_of(pool, who) } else { None },
                reason: reason.clone(),
            })
            .collect()
    };
    let mut monthly_rows = Vec::new();
    for (svc, groups) in &monthly {
        let t = targets.monthly.get(svc).map(|t| (t.0, t.1)).unwrap_or_default();
        monthly_rows.extend(build(groups, t, svc, None, true));
    }
    let mut daily_rows = Vec::new();
    for ((d, svc), groups) in &daily {
        let t = targets.daily.get(&(*d, svc.clone())).copied().unwrap_or_default();
        daily_rows.extend(build(groups, t, svc, Some(date_of(*d)), false));
    }
    let sort_key = |r: &AllocationRow| (r.day, r.service.clone(), r.pool.clone(), r.allocatee.clone(), r.reason.clone());
    monthly_rows.sort_by_key(sort_key);
    daily_rows.sort_by_key(sort_key);
    let explanations = explain(month, &monthly_rows, &split);
    let billed = targets
        .monthly
        .into_iter()
        .map(|(service, (u, a, n))| ServiceTotal { service, unblended: u, amortized: a, lines: n })
        .collect();
    Ok(MonthAllocation { month, monthly: monthly_rows, daily: daily_rows, explanations, billed })
}

/// Driver quantities as people read them: six decimal places, which also
/// sheds the last-bit noise of sums taken in a different order.
fn quantity(q: f64) -> f64 {
    (q * 1e6).round() / 1e6
}

fn explain(month: Month, rows: &[AllocationRow], split: &split::Split) -> Vec<Explanation> {
    let mut pools: BTreeMap<&PoolId, (Decimal, Decimal)> = BTreeMap::new();
    let mut mine: BTreeMap<(&Allocatee, &PoolId), (Decimal, Decimal)> = BTreeMap::new();
    for r in rows {
        let p = pools.entry(&r.pool).or_default();
        p.0 += r.unblended;
        p.1 += r.amortized;
        let m = mine.entry((&r.allocatee, &r.pool)).or_default();
        m.0 += r.unblended;
        m.1 += r.amortized;
    }
    let pool_qty: BTreeMap<(&str, &str), f64> = split.quantities.iter().fold(BTreeMap::new(), |mut acc, ((pool, _), (driver, q))| {
        *acc.entry((pool.as_str(), driver.as_str())).or_default() += q;
        acc
    });
    mine.into_iter()
        .map(|((who, pool), (u, a))| {
            let (pu, pa) = pools[pool];
            let share = if !pa.is_zero() { a / pa } else if !pu.is_zero() { u / pu } else { Decimal::ZERO };
            let q = split.quantities.get(&(pool.to_string(), who.to_string()));
            Explanation {
                month,
                allocatee: who.clone(),
                pool: pool.clone(),
                method: split.methods.get(pool.as_str()).cloned().unwrap_or_else(|| "as configured".into()),
                driver: q.map(|q| q.0.clone()).or_else(|| split.drivers.get(pool.as_str()).cloned()),
                driver_quantity: q.map(|q| quantity(q.1)),
                pool_driver_quantity: q.and_then(|q| pool_qty.get(&(pool.as_str(), q.0.as_str())).copied()).map(quantity),
                share: share.to_f64().unwrap_or(0.0),
                pool_unblended: pu,
                allocated_unblended: u,
                pool_amortized: pa,
                allocated_amortized: a,
            }
        })
        .collect()
}
