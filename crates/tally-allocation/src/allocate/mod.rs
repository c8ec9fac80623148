//! Allocation of one billing month: every line to a pool, every pool to
//! tenants (or `__idle__`, `__shared__`, `__unallocated__`), rounded so that
//! the rows of each service add up to its bill to the cent.

mod input;
mod round;
mod split;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use chrono::NaiveDate;
use polars::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use tally_domain::{Allocatee, AllocationConfig, AllocationRow, CostLine, Currency, Explanation, Month, PoolId, TenantId, UsageSample};
use tally_lake::decimal::decimal_of;
use tally_lake::scan::{scan_billing, scan_usage};
use tally_lake::schema::{lines_frame, usage_frame};

/// Collects lazy frames with polars' streaming engine, which reads and
/// aggregates the files in morsels on every core (measured faster than the
/// in-memory engine on the benchmark data; see benches/README.md).
pub(crate) trait Run {
    fn run(self) -> PolarsResult<DataFrame>;
}

impl Run for LazyFrame {
    fn run(self) -> PolarsResult<DataFrame> {
        Ok(self.collect_with_engine(Engine::Streaming)?.unwrap_single())
    }
}

/// A month's billed total for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceTotal {
    pub service: String,
    pub unblended: Decimal,
    pub amortized: Decimal,
    pub lines: usize,
}

/// A day's cost of one service or one allocatee.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyTotal {
    pub day: NaiveDate,
    /// The service, or the allocatee (tenant id, `__idle__`, ...).
    pub key: String,
    pub unblended: Decimal,
    pub amortized: Decimal,
}

/// A tenant's usage of one metric over the month.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTotal {
    pub tenant: TenantId,
    pub metric: String,
    pub value: f64,
}

/// Everything one allocation of one month produced.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthAllocation {
    pub month: Month,
    /// One row per allocatee x service x pool; per service they sum to the bill, to the cent.
    pub monthly: Vec<AllocationRow>,
    /// Per day and service: each day's bill, to the cent.
    pub service_daily: Vec<DailyTotal>,
    /// Per day and allocatee; per day they sum to that day's bill, to the cent.
    pub tenant_daily: Vec<DailyTotal>,
    /// Each tenant's usage per metric over the month's hours.
    pub usage: Vec<MetricTotal>,
    pub explanations: Vec<Explanation>,
    pub billed: Vec<ServiceTotal>,
    /// Billing lines and usage samples read.
    pub billed_lines: usize,
    pub usage_rows: usize,
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

fn date_of(day: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(day as i64)
}

/// Allocates one billing month of `lines` with the `usage` of the hours
/// they cover, given as domain values (tests and small callers). The lines
/// are sorted first, so that their order cannot change a floating-point sum.
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
    let mut order: Vec<&CostLine> = lines.iter().collect();
    order.sort_by(|a, b| {
        (a.usage_start, a.usage_end, &a.service, &a.usage_type, &a.resource_id, a.line_type, &a.tenant, &a.operation)
            .cmp(&(b.usage_start, b.usage_end, &b.service, &b.usage_type, &b.resource_id, b.line_type, &b.tenant, &b.operation))
            .then(a.unblended.cmp(&b.unblended))
            .then(a.amortized.cmp(&b.amortized))
    });
    let sorted: Vec<CostLine> = order.into_iter().cloned().collect();
    let mut samples: Vec<&UsageSample> = usage.iter().collect();
    samples.sort_by(|a, b| {
        (a.hour, &a.tenant, &a.metric, &a.resource_id, &a.workload)
            .cmp(&(b.hour, &b.tenant, &b.metric, &b.resource_id, &b.workload))
            .then(a.value.total_cmp(&b.value))
    });
    let samples: Vec<UsageSample> = samples.into_iter().cloned().collect();
    allocate_frames(cfg, currency, month, lines_frame(&sorted)?.lazy(), usage_frame(&samples)?.lazy())
}

/// Allocates a month from the store's files: the billing lines of one
/// source's month and the usage files that cover its hours.
pub fn allocate(cfg: &AllocationConfig, currency: Currency, month: Month, billing: &[PathBuf], usage: &[PathBuf]) -> Result<MonthAllocation, AllocationError> {
    allocate_frames(cfg, currency, month, scan_billing(billing)?, scan_usage(usage)?)
}

fn allocate_frames(
    cfg: &AllocationConfig,
    currency: Currency,
    month: Month,
    lake_lines: LazyFrame,
    lake_usage: LazyFrame,
) -> Result<MonthAllocation, AllocationError> {
    let t = std::time::Instant::now();
    // Exact totals per day and service, from the decimals in the files.
    let sums = lake_lines
        .clone()
        .group_by([
            (col("usage_start").dt().timestamp(TimeUnit::Milliseconds).floor_div(lit(86_400_000i64))).cast(DataType::Int32).alias("day"),
            col("service"),
            col("currency"),
        ])
        .agg([col("unblended").sum(), col("amortized").sum(), len().alias("n"), col("usage_start").min().alias("first"), col("usage_end").max().alias("last")])
        .run()?;
    let mut targets = Targets { monthly: BTreeMap::new(), daily: BTreeMap::new() };
    let (d, s, c) = (sums.column("day")?.i32()?, sums.column("service")?.str()?, sums.column("currency")?.str()?);
    let (u, a, n) = (sums.column("unblended")?.decimal()?.physical(), sums.column("amortized")?.decimal()?.physical(), sums.column("n")?.idx()?);
    let (first, last) = (sums.column("first")?.datetime()?.physical().min(), sums.column("last")?.datetime()?.physical().max());
    let mut billed_lines = 0;
    for i in 0..sums.height() {
        if let Some(other) = c.get(i).filter(|code| *code != currency.code()) {
            return Err(AllocationError::Input(format!("{other} lines in a {currency} allocation; import them again with currency_rates configured")));
        }
        let (uu, aa) = (decimal_of(u.get(i).unwrap_or(0)), decimal_of(a.get(i).unwrap_or(0)));
        let svc = s.get(i).unwrap_or_default().to_owned();
        let lines = n.get(i).unwrap_or(0) as usize;
        billed_lines += lines;
        let m = targets.monthly.entry(svc.clone()).or_default();
        m.0 += uu;
        m.1 += aa;
        m.2 += lines;
        let e = targets.daily.entry((d.get(i).unwrap_or(0), svc)).or_default();
        e.0 += uu;
        e.1 += aa;
    }
    stage("exact totals", t);
    let t = std::time::Instant::now();
    let lines = input::lines(lake_lines).run()?;
    stage("read lines", t);
    // Usage over the hours the lines cover, and each tenant's usage of the month.
    let (from_ms, to_ms) = (first.unwrap_or(month.start().timestamp_millis()), last.unwrap_or(month.end().timestamp_millis()));
    let usage = input::usage(lake_usage.clone(), from_ms.min(month.start().timestamp_millis()), to_ms.max(month.end().timestamp_millis()));
    let mut allocation = finish(cfg, currency, month, lines.lazy(), input::usage(lake_usage, from_ms, to_ms), targets)?;
    let t = std::time::Instant::now();
    let month_usage = usage
        .filter(col("hour_ms").gt_eq(lit(month.start().timestamp_millis())).and(col("hour_ms").lt(lit(month.end().timestamp_millis()))))
        .group_by([col("tenant"), col("metric")])
        .agg([col("value").sum(), len().alias("n")])
        .sort(["tenant", "metric"], SortMultipleOptions::default())
        .run()?;
    let (tn, mt, v, n) =
        (month_usage.column("tenant")?.str()?, month_usage.column("metric")?.str()?, month_usage.column("value")?.f64()?, month_usage.column("n")?.idx()?);
    for i in 0..month_usage.height() {
        allocation.usage_rows += n.get(i).unwrap_or(0) as usize;
        let Ok(tenant) = TenantId::parse(tn.get(i).unwrap_or_default()) else { continue };
        allocation.usage.push(MetricTotal { tenant, metric: mt.get(i).unwrap_or_default().to_owned(), value: quantity(v.get(i).unwrap_or(0.0)) });
    }
    allocation.billed_lines = billed_lines;
    stage("usage totals", t);
    Ok(allocation)
}

/// The floating-point split of a month from the store's files, summed per
/// allocatee and pool before any rounding: for comparing with another
/// implementation of the same method (the DuckDB benchmark).
pub fn split_totals(cfg: &AllocationConfig, billing: &[PathBuf], usage: &[PathBuf]) -> Result<Vec<(String, String, f64, f64)>, AllocationError> {
    let split = split::split(input::lines(scan_billing(billing)?), input::usage(scan_usage(usage)?, i64::MIN, i64::MAX), cfg)?;
    let totals = split
        .rows
        .lazy()
        .group_by([col("allocatee"), col("pool")])
        .agg([col("unblended").sum(), col("amortized").sum()])
        .sort(["allocatee", "pool"], SortMultipleOptions::default())
        .run()?;
    let (w, p, u, a) =
        (totals.column("allocatee")?.str()?, totals.column("pool")?.str()?, totals.column("unblended")?.f64()?, totals.column("amortized")?.f64()?);
    Ok((0..totals.height())
        .map(|i| (w.get(i).unwrap_or_default().to_owned(), p.get(i).unwrap_or_default().to_owned(), u.get(i).unwrap_or(0.0), a.get(i).unwrap_or(0.0)))
        .collect())
}

/// Logs how long a stage took, at debug level (`TALLY_LOG=tally_allocation=debug`).
static STAGE_REPORT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints each pipeline stage's wall time and the process's peak memory so
/// far on standard error (for benchmarks). Every stage is also a `debug`
/// tracing event.
pub fn report_stages(on: bool) {
    STAGE_REPORT.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn stage(name: &str, since: std::time::Instant) {
    tracing::debug!(stage = name, ms = since.elapsed().as_millis() as u64, "allocation stage");
    if STAGE_REPORT.load(std::sync::atomic::Ordering::Relaxed) {
        let peak = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok()))
            .map_or_else(|| "?".to_owned(), |kb| (kb >> 10).to_string());
        eprintln!("  {name:<28} {:>8.3} s   peak so far {peak:>6} MiB", since.elapsed().as_secs_f64());
    }
}

fn finish(
    cfg: &AllocationConfig,
    currency: Currency,
    month: Month,
    lines: LazyFrame,
    usage: LazyFrame,
    targets: Targets,
) -> Result<MonthAllocation, AllocationError> {
    let t = std::time::Instant::now();
    let split = split::split(lines, usage, cfg)?;
    stage("split", t);
    let t = std::time::Instant::now();
    let minor = currency.minor_units();
    let round = |d: Decimal| d.round_dp_with_strategy(minor, RoundingStrategy::MidpointAwayFromZero);
    // Parsed names, once per distinct string.
    let mut allocatees: HashMap<String, Allocatee> = HashMap::new();
    let mut pools: HashMap<String, PoolId> = HashMap::new();
    let mut parsed = |who: &str, pool: &str| -> (Allocatee, PoolId) {
        let a =
            allocatees.entry(who.to_owned()).or_insert_with(|| Allocatee::parse(who).expect("allocatees come from tenant ids and the reserved names")).clone();
        let p = pools.entry(pool.to_owned()).or_insert_with(|| PoolId::parse(pool).expect("pool names come from validated config")).clone();
        (a, p)
    };
    let driver_of = |pool: &str| split.drivers.get(pool).cloned();
    let qty_of = |pool: &str, who: &str| split.quantities.get(&(pool.to_owned(), who.to_owned())).map(|q| quantity(q.1));

    // Monthly: one row per service, pool, allocatee and reason.
    let monthly = split
        .rows
        .clone()
        .lazy()
        .group_by([col("service"), col("pool"), col("allocatee"), col("reason")])
        .agg([col("unblended").sum(), col("amortized").sum()])
        .sort(["service", "pool", "allocatee", "reason"], SortMultipleOptions::default().with_nulls_last(true))
        .run()?;
    let (m_service, m_pool, m_who, m_reason, m_u, m_a) = (
        monthly.column("service")?.str()?,
        monthly.column("pool")?.str()?,
        monthly.column("allocatee")?.str()?,
        monthly.column("reason")?.str()?,
        monthly.column("unblended")?.f64()?,
        monthly.column("amortized")?.f64()?,
    );
    // Conservation: the float split must carry every service's cost.
    let mut carried: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for i in 0..monthly.height() {
        let e = carried.entry(m_service.get(i).unwrap_or_default()).or_default();
        e.0 += m_u.get(i).unwrap_or(0.0);
        e.1 += m_a.get(i).unwrap_or(0.0);
    }
    for (svc, (tu, ta, _)) in &targets.monthly {
        let got = carried.get(svc.as_str()).copied().unwrap_or_default();
        let (eu, ea) = (tu.to_f64().unwrap_or(0.0), ta.to_f64().unwrap_or(0.0));
        let tol = 1e-6 * eu.abs().max(ea.abs()).max(1.0);
        if (got.0 - eu).abs() > tol || (got.1 - ea).abs() > tol {
            return Err(AllocationError::Conservation(format!("{month} {svc}: billed {eu:.6}/{ea:.6}, allocated {:.6}/{:.6}", got.0, got.1)));
        }
    }
    // Rounds the run of monthly rows [from, to) against a target and appends them.
    let mut emit = |out: &mut Vec<AllocationRow>,
                    from: usize,
                    to: usize,
                    target: (Decimal, Decimal),
                    cols: (&StringChunked, &StringChunked, &StringChunked, &StringChunked, &Float64Chunked, &Float64Chunked)| {
        let (service, pool, who, reason, u, a) = cols;
        let us: Vec<f64> = (from..to).map(|i| u.get(i).unwrap_or(0.0)).collect();
        let am: Vec<f64> = (from..to).map(|i| a.get(i).unwrap_or(0.0)).collect();
        let ru = round::largest_remainder(&us, round(target.0), minor);
        let ra = round::largest_remainder(&am, round(target.1), minor);
        for (k, i) in (from..to).enumerate() {
            if ru[k].is_zero() && ra[k].is_zero() {
                continue;
            }
            let (p, w) = (pool.get(i).unwrap_or_default(), who.get(i).unwrap_or_default());
            let (allocatee, pool_id) = parsed(w, p);
            out.push(AllocationRow {
                month,
                day: None,
                allocatee,
                pool: pool_id,
                service: service.get(i).unwrap_or_default().to_owned(),
                currency,
                unblended: ru[k],
                amortized: ra[k],
                driver: driver_of(p),
                driver_quantity: qty_of(p, w),
                reason: reason.get(i).map(str::to_owned),
            });
        }
    };
    let mut monthly_rows = Vec::with_capacity(monthly.height());
    let cols = (m_service, m_pool, m_who, m_reason, m_u, m_a);
    let mut start = 0;
    for i in 1..=monthly.height() {
        if i == monthly.height() || m_service.get(i) != m_service.get(start) {
            let svc = m_service.get(start).unwrap_or_default();
            let t = targets.monthly.get(svc).map(|t| (t.0, t.1)).unwrap_or_default();
            emit(&mut monthly_rows, start, i, t, cols);
            start = i;
        }
    }
    // Daily: the split's rows are sorted by day, service, pool, allocatee, reason.
    let rows = &split.rows;
    let (d_day, d_service, d_who, d_u, d_a) = (
        rows.column("day")?.i32()?,
        rows.column("service")?.str()?,
        rows.column("allocatee")?.str()?,
        rows.column("unblended")?.f64()?,
        rows.column("amortized")?.f64()?,
    );
    // Each day and service rounded against that day's bill, then kept per
    // service and per allocatee (the rollups the reports read).
    let mut by_service: BTreeMap<(i32, String), (Decimal, Decimal)> = BTreeMap::new();
    let mut by_allocatee: BTreeMap<(i32, String), (Decimal, Decimal)> = BTreeMap::new();
    let mut start = 0;
    for i in 1..=rows.height() {
        if i == rows.height() || d_day.get(i) != d_day.get(start) || d_service.get(i) != d_service.get(start) {
            let (day, svc) = (d_day.get(start).unwrap_or(0), d_service.get(start).unwrap_or_default().to_owned());
            let t = targets.daily.get(&(day, svc.clone())).copied().unwrap_or_default();
            let us: Vec<f64> = (start..i).map(|k| d_u.get(k).unwrap_or(0.0)).collect();
            let am: Vec<f64> = (start..i).map(|k| d_a.get(k).unwrap_or(0.0)).collect();
            let ru = round::largest_remainder(&us, round(t.0), minor);
            let ra = round::largest_remainder(&am, round(t.1), minor);
            let s = by_service.entry((day, svc)).or_default();
            s.0 += round(t.0);
            s.1 += round(t.1);
            for (k, row) in (start..i).enumerate() {
                if ru[k].is_zero() && ra[k].is_zero() {
                    continue;
                }
                let e = by_allocatee.entry((day, d_who.get(row).unwrap_or_default().to_owned())).or_default();
                e.0 += ru[k];
                e.1 += ra[k];
            }
            start = i;
        }
    }
    let daily = |m: BTreeMap<(i32, String), (Decimal, Decimal)>| -> Vec<DailyTotal> {
        m.into_iter()
            .filter(|(_, (u, a))| !u.is_zero() || !a.is_zero())
            .map(|((day, key), (unblended, amortized))| DailyTotal { day: date_of(day), key, unblended, amortized })
            .collect()
    };
    let sort_key = |r: &AllocationRow| (r.day, r.service.clone(), r.pool.clone(), r.allocatee.clone(), r.reason.clone());
    monthly_rows.sort_by_key(sort_key);
    stage("round", t);
    let explanations = explain(month, &monthly_rows, &split);
    let billed = targets.monthly.into_iter().map(|(service, (u, a, n))| ServiceTotal { service, unblended: u, amortized: a, lines: n }).collect();
    Ok(MonthAllocation {
        month,
        monthly: monthly_rows,
        service_daily: daily(by_service),
        tenant_daily: daily(by_allocatee),
        usage: Vec::new(),
        explanations,
        billed,
        billed_lines: 0,
        usage_rows: 0,
    })
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
            let share = if !pa.is_zero() {
                a / pa
            } else if !pu.is_zero() {
                u / pu
            } else {
                Decimal::ZERO
            };
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
