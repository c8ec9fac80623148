//! The split itself, in floating point: every line to one pool, every pool
//! to allocatees. Rounding to cents happens afterwards, in `mod.rs`.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;
use tally_domain::{Allocatee, AllocationConfig, IdlePolicy, PoolId, PoolMethod, PoolRule, SharedPolicy, TenantId};

use super::Run;
use crate::capacity::{capacity, instance_type_of_usage_type};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Granularities of a line's period.
const GRAN_HOUR: i32 = 0;
const GRAN_DAY: i32 = 1;
const GRAN_MONTH: i32 = 2;

pub(crate) const EKS_METRICS: [&str; 4] = ["cpu_request_vcpu_hours", "cpu_used_vcpu_hours", "mem_request_gb_hours", "mem_used_gb_hours"];

/// What the split produced, before rounding.
#[derive(Debug)]
pub(crate) struct Split {
    /// `allocatee, pool, service, day, reason, unblended, amortized`.
    pub(crate) rows: DataFrame,
    /// Per pool and allocatee: the driver used and the allocatee's quantity of it.
    pub(crate) quantities: BTreeMap<(String, String), (String, f64)>,
    /// Per pool: how it was split, in words.
    pub(crate) methods: BTreeMap<String, String>,
    /// Per pool: the driver named on its rows.
    pub(crate) drivers: BTreeMap<String, String>,
}

/// The columns every part of the result carries, in order.
fn part(lf: LazyFrame) -> LazyFrame {
    lf.select([
        col("allocatee").cast(DataType::String),
        col("pool").cast(DataType::String),
        col("service").cast(DataType::String),
        col("day").cast(DataType::Int32),
        col("reason").cast(DataType::String),
        col("unblended").cast(DataType::Float64),
        col("amortized").cast(DataType::Float64),
    ])
}

/// The values of a text column, null as `None`.
pub(crate) fn strings(ca: &StringChunked) -> impl Iterator<Item = Option<&str>> {
    (0..ca.len()).map(move |i| ca.get(i))
}

fn null_str() -> Expr {
    lit(NULL).cast(DataType::String)
}

/// Adds `gran`, `key`, `hour`, `day` and `period_hours` to lines.
fn with_periods(lines: LazyFrame) -> LazyFrame {
    let start_hour = col("start_ms").floor_div(lit(HOUR_MS));
    let last = col("end_ms") - lit(1i64);
    let start_day = col("start_ms").floor_div(lit(DAY_MS));
    lines
        .with_columns([
            when(start_hour.clone().eq(last.clone().floor_div(lit(HOUR_MS))))
                .then(lit(GRAN_HOUR))
                .when(start_day.clone().eq(last.floor_div(lit(DAY_MS))))
                .then(lit(GRAN_DAY))
                .otherwise(lit(GRAN_MONTH))
                .alias("gran"),
            start_hour.alias("hour"),
            start_day.cast(DataType::Int32).alias("day"),
            ((col("end_ms") - col("start_ms")).cast(DataType::Float64) / lit(HOUR_MS as f64)).alias("period_hours"),
        ])
        .with_column(
            when(col("gran").eq(lit(GRAN_HOUR)))
                .then(col("hour"))
                .when(col("gran").eq(lit(GRAN_DAY)))
                .then(col("day").cast(DataType::Int64))
                .otherwise(lit(0i64))
                .alias("key"),
        )
}

fn with_usage_periods(usage: LazyFrame) -> LazyFrame {
    usage.with_columns([col("hour_ms").floor_div(lit(HOUR_MS)).alias("hour"), col("hour_ms").floor_div(lit(DAY_MS)).cast(DataType::Int32).alias("day")])
}

fn contains_any(column: &str, needles: &[String]) -> Expr {
    needles.iter().map(|n| col(column).str().contains_literal(lit(n.clone()))).reduce(|a, b| a.or(b)).unwrap_or(lit(true))
}

fn in_list(column: &str, values: &[String]) -> Expr {
    if values.is_empty() {
        return lit(true);
    }
    let s = Series::new("values".into(), values);
    col(column).is_in(lit(s).implode(false), false)
}

/// The pool of every line: tagged lines, tax, credits and commitment fees
/// first, then the configured rules in order; the first match wins. The
/// rules are evaluated once per distinct kind of line (service, usage type,
/// line type, tagged or not, EKS node or not), then joined back.
fn assign_pools(lines: LazyFrame, cfg: &AllocationConfig, nodes: &Series) -> PolarsResult<LazyFrame> {
    let shared_name = cfg.pools.iter().find(|p| p.method == PoolMethod::Shared).map(|p| p.name.to_string()).unwrap_or_else(|| PoolId::SHARED.into());
    let lines = lines.with_columns([
        col("tenant").is_not_null().alias("tagged"),
        col("resource_id").is_in(lit(nodes.clone()).implode(false), false).fill_null(lit(false)).alias("is_node"),
    ]);
    let lt = || col("line_type");
    let mut chain = when(col("tagged"))
        .then(lit(PoolId::DIRECT))
        .when(lt().eq(lit("tax")))
        .then(lit(PoolId::TAX))
        .when(lt().eq(lit("credit")).or(lt().eq(lit("refund"))))
        .then(lit(PoolId::CREDITS))
        .when(lt().eq(lit("ri_fee")).or(lt().eq(lit("savings_plan_recurring_fee"))))
        .then(lit(PoolId::COMMITMENT));
    for rule in &cfg.pools {
        let mut cond = in_list("service", &rule.services).and(contains_any("usage_type", &rule.usage_type_contains));
        if rule.method == PoolMethod::NodeSplit {
            cond = cond.and(col("is_node"));
        }
        chain = chain.when(cond).then(lit(rule.name.to_string()));
    }
    let keys = ["service", "usage_type", "line_type", "tagged", "is_node"];
    let kinds = lines
        .clone()
        .select(keys.iter().map(|k| col(*k)).collect::<Vec<_>>())
        .unique(None, UniqueKeepStrategy::First)
        .with_column(chain.otherwise(lit(shared_name)).alias("pool"))
        .run()?;
    let on: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    let mut args = JoinArgs::new(JoinType::Left);
    args.nulls_equal = true;
    Ok(lines.join(kinds.lazy(), on.clone(), on, args))
}

/// Driver usage by metric, tenant and hour: `hour, day, metric, tenant, q`.
/// A tenant may have several rows in an hour (several resources); every
/// later step sums, so they are not merged here.
fn hourly_driver_usage(usage: &LazyFrame, metrics: &[String]) -> PolarsResult<DataFrame> {
    usage.clone().filter(in_list("metric", metrics)).select([col("metric"), col("tenant"), col("hour"), col("value").alias("q"), col("day")]).collect()
}

/// Usage of `metrics` summed per tenant at each granularity lines need:
/// `gran, key, metric, tenant, q`.
fn usage_at(hourly: &DataFrame, metrics: &[String], grans: &BTreeSet<i32>) -> PolarsResult<LazyFrame> {
    let base = hourly.clone().lazy().filter(in_list("metric", metrics));
    let mut parts = Vec::new();
    for g in grans {
        let part =
            match *g {
                GRAN_HOUR => base.clone().select([lit(GRAN_HOUR).alias("gran"), col("hour").alias("key"), col("metric"), col("tenant"), col("q")]),
                GRAN_DAY => base
                    .clone()
                    .group_by([col("metric"), col("tenant"), col("day").cast(DataType::Int64).alias("key")])
                    .agg([col("q").sum()])
                    .select([lit(GRAN_DAY).alias("gran"), col("key"), col("metric"), col("tenant"), col("q")]),
                _ => base.clone().group_by([col("metric"), col("tenant")]).agg([col("q").sum()]).select([
                    lit(GRAN_MONTH).alias("gran"),
                    lit(0i64).alias("key"),
                    col("metric"),
                    col("tenant"),
                    col("q"),
                ]),
            };
        parts.push(part);
    }
    if parts.is_empty() {
        return Ok(DataFrame::empty_with_schema(&Schema::from_iter([
            Field::new("gran".into(), DataType::Int32),
            Field::new("key".into(), DataType::Int64),
            Field::new("metric".into(), DataType::String),
            Field::new("tenant".into(), DataType::String),
            Field::new("q".into(), DataType::Float64),
        ]))
        .lazy());
    }
    concat(parts, UnionArgs::default())
}

fn grans_of(lines: &DataFrame) -> PolarsResult<BTreeSet<i32>> {
    Ok(lines.column("gran")?.i32()?.into_no_null_iter().collect())
}

/// Pools split by a usage metric, with a fallback metric when the first has
/// no usage at all in a line's period.
fn driver_pool(lines: &DataFrame, hourly: &DataFrame, rule: &PoolRule, out: &mut Split) -> PolarsResult<Vec<LazyFrame>> {
    let pool = rule.name.to_string();
    let driver = rule.driver.clone().unwrap_or_default();
    let fallback = rule.fallback_driver.clone();
    let grans = grans_of(lines)?;
    let metrics: Vec<String> = std::iter::once(driver.clone()).chain(fallback.clone()).collect();
    let q = usage_at(hourly, &metrics, &grans)?.run()?.lazy();
    let totals =
        |m: &str, name: &str| q.clone().filter(col("metric").eq(lit(m.to_owned()))).group_by([col("gran"), col("key")]).agg([col("q").sum().alias(name)]);
    let costs = lines.clone().lazy().group_by([col("gran"), col("key"), col("day"), col("service")]).agg([col("unblended").sum(), col("amortized").sum()]);
    let with_totals = costs.join(totals(&driver, "t_d"), [col("gran"), col("key")], [col("gran"), col("key")], JoinArgs::new(JoinType::Left));
    let has = |c: &str| col(c).fill_null(lit(0.0)).gt(lit(0.0));
    let (with_totals, chosen) = match &fallback {
        Some(f) => (
            with_totals.join(totals(f, "t_f"), [col("gran"), col("key")], [col("gran"), col("key")], JoinArgs::new(JoinType::Left)),
            when(has("t_d")).then(lit(driver.clone())).when(has("t_f")).then(lit(f.clone())).otherwise(null_str()),
        ),
        None => (with_totals.with_column(lit(0.0).alias("t_f")), when(has("t_d")).then(lit(driver.clone())).otherwise(null_str())),
    };
    let with_driver = with_totals.with_column(chosen.alias("driver")).run()?;

    // Which drivers were used, for the rows' label.
    let used: BTreeSet<String> = strings(with_driver.column("driver")?.str()?).flatten().map(str::to_owned).collect();
    let label = match (&fallback, used.contains(&driver), fallback.as_ref().is_some_and(|f| used.contains(f))) {
        (Some(f), true, true) => format!("{driver} (falling back to {f} where none)"),
        (Some(f), false, true) => f.clone(),
        _ => driver.clone(),
    };
    out.drivers.insert(pool.clone(), label);
    out.methods.insert(
        pool.clone(),
        match &fallback {
            Some(f) => format!("each line split by the tenants' {driver} in the line's hour, day or month; by {f} where no {driver} was collected"),
            None => format!("each line split by the tenants' {driver} in the line's hour, day or month"),
        },
    );

    let allocated = with_driver
        .clone()
        .lazy()
        .filter(col("driver").is_not_null())
        .join(q.clone(), [col("gran"), col("key"), col("driver")], [col("gran"), col("key"), col("metric")], JoinArgs::new(JoinType::Inner))
        .with_column(when(col("driver").eq(lit(driver.clone()))).then(col("t_d")).otherwise(col("t_f")).alias("t"))
        .with_columns([
            (col("unblended") * col("q") / col("t")).alias("unblended"),
            (col("amortized") * col("q") / col("t")).alias("amortized"),
            col("tenant").alias("allocatee"),
            lit(pool.clone()).alias("pool"),
            null_str().alias("reason"),
        ])
        .group_by([col("allocatee"), col("pool"), col("service"), col("day"), col("reason")])
        .agg([col("unblended").sum(), col("amortized").sum()]);
    let fallback_text = fallback.as_ref().map(|f| format!(" nor {f}")).unwrap_or_default();
    let reason = when(col("gran").eq(lit(GRAN_HOUR)))
        .then(lit(format!("no {driver}{fallback_text} usage in the line's hour")))
        .when(col("gran").eq(lit(GRAN_DAY)))
        .then(lit(format!("no {driver}{fallback_text} usage on the line's day")))
        .otherwise(lit(format!("no {driver}{fallback_text} usage in the month")));
    let unallocated = with_driver.clone().lazy().filter(col("driver").is_null()).with_columns([
        lit(Allocatee::UNALLOCATED).alias("allocatee"),
        lit(pool.clone()).alias("pool"),
        reason.alias("reason"),
    ]);

    // Quantities: each tenant's driver usage over the periods the pool split.
    let periods =
        with_driver.lazy().filter(col("driver").is_not_null()).select([col("gran"), col("key"), col("driver")]).unique(None, UniqueKeepStrategy::First);
    let qty = periods
        .join(q, [col("gran"), col("key"), col("driver")], [col("gran"), col("key"), col("metric")], JoinArgs::new(JoinType::Inner))
        .group_by([col("tenant"), col("driver")])
        .agg([col("q").sum()])
        .run()?;
    // One driver per tenant: the primary where the tenant has it, else the fallback.
    let (t, d, v) = (qty.column("tenant")?.str()?, qty.column("driver")?.str()?, qty.column("q")?.f64()?);
    let mut rows: Vec<(String, bool, String, f64)> = (0..qty.height())
        .map(|i| {
            let drv = d.get(i).unwrap_or_default().to_owned();
            (t.get(i).unwrap_or_default().to_owned(), drv != driver, drv, v.get(i).unwrap_or(0.0))
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    for (tenant, _, drv, q) in rows {
        out.quantities.entry((pool.clone(), tenant)).or_insert((drv, q));
    }
    Ok(vec![part(allocated), part(unallocated)])
}

/// EKS node split: a node's cost in CPU and memory parts by the configured
/// weights; pods take max(request, used) of each; idle capacity is shared
/// over the node-hour's pods or kept as `__idle__`.
fn node_split(lines: &DataFrame, pods_hourly: &DataFrame, rule: &PoolRule, cfg: &AllocationConfig, out: &mut Split) -> PolarsResult<Vec<LazyFrame>> {
    let pool = rule.name.to_string();
    let policy = rule.idle_policy.unwrap_or(IdlePolicy::Share);
    out.drivers.insert(pool.clone(), "allocated_vcpu_hours".into());
    out.methods.insert(
        pool.clone(),
        format!(
            "each node-hour's cost split into CPU and memory parts ({}:{} per vCPU and GB); pods take max(request, used) of each; idle capacity {}",
            cfg.cpu_weight,
            cfg.memory_weight,
            match policy {
                IdlePolicy::Share => "spread over the node-hour's pods",
                IdlePolicy::Keep => "kept as __idle__",
            }
        ),
    );
    // Capacities of the instance types present.
    let types = lines.column("instance_type")?.str()?.clone();
    let usage_types = lines.column("usage_type")?.str()?.clone();
    let mut seen = BTreeMap::new();
    for i in 0..lines.height() {
        let t = types.get(i).map(str::to_owned).or_else(|| usage_types.get(i).and_then(instance_type_of_usage_type).map(str::to_owned));
        if let Some(t) = t {
            seen.entry(t.clone()).or_insert_with(|| capacity(&t, &cfg.instance_types));
        }
    }
    let caps = df!(
        "itype" => seen.keys().map(String::as_str).collect::<Vec<_>>(),
        "vcpu" => seen.values().map(|c| c.map(|c| c.vcpu)).collect::<Vec<_>>(),
        "mem" => seen.values().map(|c| c.map(|c| c.memory_gb)).collect::<Vec<_>>(),
    )?;
    let itype = col("instance_type").fill_null(col("usage_type").str().split(lit(":")).list().last());
    let (wc, wm) = (cfg.cpu_weight, cfg.memory_weight);
    let nodes = lines
        .clone()
        .lazy()
        .with_column(itype.alias("itype"))
        .join(caps.lazy(), [col("itype")], [col("itype")], JoinArgs::new(JoinType::Left))
        .group_by([col("resource_id"), col("gran"), col("key"), col("day"), col("service"), col("itype"), col("vcpu"), col("mem"), col("period_hours")])
        .agg([col("unblended").sum(), col("amortized").sum()])
        .with_columns([
            (lit(wc) * col("vcpu") / (lit(wc) * col("vcpu") + lit(wm) * col("mem"))).alias("f_cpu"),
            (col("vcpu") * col("period_hours")).alias("cap_cpu"),
            (col("mem") * col("period_hours")).alias("cap_mem"),
        ]);
    let grans = grans_of(lines)?;
    let mut pod_parts = Vec::new();
    for g in grans.iter().filter(|g| **g != GRAN_MONTH) {
        let hourly = pods_hourly.clone().lazy();
        pod_parts.push(if *g == GRAN_HOUR {
            hourly.select([col("resource_id"), lit(GRAN_HOUR).alias("gran"), col("hour").alias("key"), col("tenant"), col("a_cpu"), col("a_mem")])
        } else {
            hourly
                .group_by([col("resource_id"), col("day").cast(DataType::Int64).alias("key"), col("tenant"), col("workload")])
                .agg([col("a_cpu").sum(), col("a_mem").sum()])
                .select([col("resource_id"), lit(GRAN_DAY).alias("gran"), col("key"), col("tenant"), col("a_cpu"), col("a_mem")])
        });
    }
    let pods = if pod_parts.is_empty() {
        df!("resource_id" => Vec::<&str>::new(), "gran" => Vec::<i32>::new(), "key" => Vec::<i64>::new(), "tenant" => Vec::<&str>::new(), "a_cpu" => Vec::<f64>::new(), "a_mem" => Vec::<f64>::new())?.lazy()
    } else {
        concat(pod_parts, UnionArgs::default())?
    };
    let sums = pods.clone().group_by([col("resource_id"), col("gran"), col("key")]).agg([col("a_cpu").sum().alias("s_cpu"), col("a_mem").sum().alias("s_mem")]);
    let nodes = nodes
        .join(sums, [col("resource_id"), col("gran"), col("key")], [col("resource_id"), col("gran"), col("key")], JoinArgs::new(JoinType::Left))
        .with_columns([col("s_cpu").fill_null(lit(0.0)), col("s_mem").fill_null(lit(0.0))])
        .run()?;

    // Lines whose node size is unknown cannot be split: unallocated, with the fix in the reason.
    let unknown_frame = nodes
        .clone()
        .lazy()
        .filter(col("vcpu").is_null())
        .select([col("itype")])
        .unique(None, UniqueKeepStrategy::First)
        .sort(["itype"], SortMultipleOptions::default())
        .run()?;
    let unknown_types: Vec<String> = strings(unknown_frame.column("itype")?.str()?).map(|t| t.unwrap_or("(none)").to_owned()).collect();
    let unknown = nodes.clone().lazy().filter(col("vcpu").is_null()).with_columns([
        lit(Allocatee::UNALLOCATED).alias("allocatee"),
        lit(pool.clone()).alias("pool"),
        lit(format!("unknown capacity of instance type {}; add it under [allocation.instance_types]", unknown_types.join(", "))).alias("reason"),
    ]);

    let known = nodes.lazy().filter(col("vcpu").is_not_null());
    // Fraction of each part a pod takes per unit it allocated, and what stays idle.
    let (pod_cpu, pod_mem, idle_cpu, idle_mem) = match policy {
        IdlePolicy::Share => (
            when(col("s_cpu").gt(lit(0.0))).then(lit(1.0) / col("s_cpu")).otherwise(lit(0.0)),
            when(col("s_mem").gt(lit(0.0))).then(lit(1.0) / col("s_mem")).otherwise(lit(0.0)),
            when(col("s_cpu").gt(lit(0.0))).then(lit(0.0)).otherwise(lit(1.0)),
            when(col("s_mem").gt(lit(0.0))).then(lit(0.0)).otherwise(lit(1.0)),
        ),
        IdlePolicy::Keep => {
            let max = |a: Expr, b: Expr| when(a.clone().gt_eq(b.clone())).then(a).otherwise(b);
            (
                lit(1.0) / max(col("cap_cpu"), col("s_cpu")),
                lit(1.0) / max(col("cap_mem"), col("s_mem")),
                max(col("cap_cpu") - col("s_cpu"), lit(0.0)) / col("cap_cpu"),
                max(col("cap_mem") - col("s_mem"), lit(0.0)) / col("cap_mem"),
            )
        }
    };
    let known = known.with_columns([pod_cpu.alias("k_cpu"), pod_mem.alias("k_mem"), idle_cpu.alias("i_cpu"), idle_mem.alias("i_mem")]);
    let parts_of = |cost: &str| {
        let c = col(cost);
        (c.clone() * col("f_cpu"), c.clone() - c * col("f_cpu"))
    };
    let (cpu_u, mem_u) = parts_of("unblended");
    let (cpu_a, mem_a) = parts_of("amortized");
    let pod_rows = known
        .clone()
        .join(pods, [col("resource_id"), col("gran"), col("key")], [col("resource_id"), col("gran"), col("key")], JoinArgs::new(JoinType::Inner))
        .with_columns([
            (cpu_u.clone() * col("a_cpu") * col("k_cpu") + mem_u.clone() * col("a_mem") * col("k_mem")).alias("unblended"),
            (cpu_a.clone() * col("a_cpu") * col("k_cpu") + mem_a.clone() * col("a_mem") * col("k_mem")).alias("amortized"),
            col("tenant").alias("allocatee"),
            lit(pool.clone()).alias("pool"),
            null_str().alias("reason"),
        ]);
    let idle_rows = known.with_columns([
        (cpu_u * col("i_cpu") + mem_u * col("i_mem")).alias("unblended"),
        (cpu_a * col("i_cpu") + mem_a * col("i_mem")).alias("amortized"),
        lit(Allocatee::IDLE).alias("allocatee"),
        lit(pool.clone()).alias("pool"),
        null_str().alias("reason"),
    ]);
    let pod_rows = pod_rows
        .select([col("allocatee"), col("pool"), col("service"), col("day"), col("reason"), col("unblended"), col("amortized"), col("tenant"), col("a_cpu")])
        .run()?;
    // Allocated vCPU-hours per tenant, for the explanation.
    let qty = pod_rows.clone().lazy().group_by([col("tenant")]).agg([col("a_cpu").sum()]).run()?;
    let (t, v) = (qty.column("tenant")?.str()?, qty.column("a_cpu")?.f64()?);
    for i in 0..qty.height() {
        out.quantities.insert((pool.clone(), t.get(i).unwrap_or_default().to_owned()), ("allocated_vcpu_hours".into(), v.get(i).unwrap_or(0.0)));
    }
    let grouped = |lf: LazyFrame| {
        lf.group_by([col("allocatee"), col("pool"), col("service"), col("day"), col("reason")]).agg([col("unblended").sum(), col("amortized").sum()])
    };
    Ok(vec![part(grouped(pod_rows.lazy())), part(grouped(idle_rows.filter(col("unblended").neq(lit(0.0)).or(col("amortized").neq(lit(0.0)))))), part(unknown)])
}

/// Sums of `unblended`/`amortized` of a collected result, per key columns.
fn totals(rows: &DataFrame, by: &[&str], value: &str) -> PolarsResult<DataFrame> {
    rows.clone().lazy().group_by(by.iter().map(|c| col(*c)).collect::<Vec<_>>()).agg([col(value).sum().alias("b")]).collect()
}

/// A pool split in proportion to weights per allocatee (the same weights for every line).
/// `bases` maps allocatee to weight; `key` chooses a weight set per line (e.g. by service).
fn weighted(lines: &DataFrame, pool: &str, bases: impl Fn(Option<&str>, i32) -> Option<Vec<(String, f64)>>, reason: &str) -> PolarsResult<LazyFrame> {
    let grouped = lines
        .clone()
        .lazy()
        .group_by([col("day"), col("service")])
        .agg([col("unblended").sum(), col("amortized").sum()])
        .sort(["day", "service"], SortMultipleOptions::default())
        .run()?;
    let (day, service, u, a) =
        (grouped.column("day")?.i32()?, grouped.column("service")?.str()?, grouped.column("unblended")?.f64()?, grouped.column("amortized")?.f64()?);
    // Rows as indices (into the groups and into the allocatees' names) and
    // amounts; the text columns are gathered once at the end. A large month
    // has millions of rows here (days x services x tenants).
    let mut names: Vec<String> = vec![Allocatee::UNALLOCATED.to_owned()];
    let mut index: std::collections::HashMap<String, IdxSize> = std::collections::HashMap::new();
    let (mut who, mut group, mut us, mut am): (Vec<IdxSize>, Vec<IdxSize>, Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..grouped.height() {
        let (d, s) = (day.get(i).unwrap_or(0), service.get(i));
        let (uu, aa) = (u.get(i).unwrap_or(0.0), a.get(i).unwrap_or(0.0));
        match bases(s, d).filter(|b| b.iter().map(|(_, w)| *w).sum::<f64>() > 0.0) {
            Some(b) => {
                let total: f64 = b.iter().map(|(_, w)| *w).sum();
                for (t, w) in b {
                    if w > 0.0 {
                        let next = names.len() as IdxSize;
                        let k = *index.entry(t).or_insert_with_key(|t| {
                            names.push(t.clone());
                            next
                        });
                        who.push(k);
                        group.push(i as IdxSize);
                        us.push(uu * w / total);
                        am.push(aa * w / total);
                    }
                }
            }
            None => {
                who.push(0);
                group.push(i as IdxSize);
                us.push(uu);
                am.push(aa);
            }
        }
    }
    let group = IdxCa::from_vec("group".into(), group);
    let who = IdxCa::from_vec("who".into(), who);
    let names = StringChunked::from_iter_values("allocatee".into(), names.iter().map(String::as_str));
    let unallocated = who.equal(0);
    let frame = DataFrame::new_infer_height(vec![
        names.take(&who)?.into_series().into(),
        grouped.column("service")?.as_materialized_series().take(&group)?.into(),
        grouped.column("day")?.as_materialized_series().take(&group)?.into(),
        Series::new("unblended".into(), us).into(),
        Series::new("amortized".into(), am).into(),
        unallocated.into_series().with_name("unallocated".into()).into(),
    ])?;
    Ok(frame
        .lazy()
        .with_columns([lit(pool.to_owned()).alias("pool"), when(col("unallocated")).then(lit(reason.to_owned())).otherwise(null_str()).alias("reason")]))
}

/// Each tenant's weight in `base` (a [`totals`] frame), negative weights as
/// zero; with `key`, only the rows whose column `key.0` is `key.1`.
fn tenant_weights(base: &DataFrame, key: Option<(&str, &str)>) -> PolarsResult<Vec<(String, f64)>> {
    allocatee_weights(base, key, true)
}

/// Like [`tenant_weights`], with the overhead rows (`__shared__`, `__idle__`,
/// `__unallocated__`) too unless `tenants_only`.
fn allocatee_weights(base: &DataFrame, key: Option<(&str, &str)>, tenants_only: bool) -> PolarsResult<Vec<(String, f64)>> {
    let mut out = Vec::new();
    let who = base.column("allocatee")?.str()?;
    let b = base.column("b")?.f64()?;
    let filter_col = match key {
        Some((c, _)) => Some(base.column(c)?.str()?.clone()),
        None => None,
    };
    for i in 0..base.height() {
        if let (Some((_, want)), Some(fc)) = (key, &filter_col)
            && fc.get(i) != Some(want)
        {
            continue;
        }
        let a = who.get(i).unwrap_or_default();
        if !tenants_only || TenantId::parse(a).is_ok() {
            out.push((a.to_owned(), b.get(i).unwrap_or(0.0).max(0.0)));
        }
    }
    Ok(out)
}

/// Runs the whole split.
pub(crate) fn split(lines: LazyFrame, usage: LazyFrame, cfg: &AllocationConfig) -> PolarsResult<Split> {
    let mut out = Split { rows: DataFrame::empty(), quantities: BTreeMap::new(), methods: BTreeMap::new(), drivers: BTreeMap::new() };
    let t = std::time::Instant::now();
    let usage = with_usage_periods(usage);
    // Usage is read twice: driver metrics by hour, and pods by node and hour.
    let driver_metrics: Vec<String> = cfg
        .pools
        .iter()
        .filter(|p| p.method == PoolMethod::Driver)
        .flat_map(|p| p.driver.iter().chain(p.fallback_driver.iter()).cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let hourly = hourly_driver_usage(&usage, &driver_metrics)?;
    let eks: Vec<String> = EKS_METRICS.iter().map(|s| s.to_string()).collect();
    // One column per metric before grouping: plain sums are the group-by's fast path.
    let m = |name: &str| when(col("metric").eq(lit(name.to_owned()))).then(col("value")).otherwise(lit(0.0));
    let pods_hourly = usage
        .clone()
        .filter(in_list("metric", &eks).and(col("resource_id").is_not_null()))
        .select([
            col("resource_id"),
            col("hour"),
            col("tenant"),
            col("workload"),
            m(EKS_METRICS[0]).alias("cpu_req"),
            m(EKS_METRICS[1]).alias("cpu_used"),
            m(EKS_METRICS[2]).alias("mem_req"),
            m(EKS_METRICS[3]).alias("mem_used"),
        ])
        .group_by([col("resource_id"), col("hour"), col("tenant"), col("workload")])
        .agg([col("cpu_req").sum(), col("cpu_used").sum(), col("mem_req").sum(), col("mem_used").sum()])
        .with_columns([
            when(col("cpu_req").gt_eq(col("cpu_used"))).then(col("cpu_req")).otherwise(col("cpu_used")).alias("a_cpu"),
            when(col("mem_req").gt_eq(col("mem_used"))).then(col("mem_req")).otherwise(col("mem_used")).alias("a_mem"),
            col("hour").floor_div(lit(24i64)).cast(DataType::Int32).alias("day"),
        ])
        .run()?;
    let nodes = pods_hourly.clone().lazy().select([col("resource_id")]).unique(None, UniqueKeepStrategy::First).run()?;
    let nodes = nodes.column("resource_id")?.as_materialized_series().clone();
    super::stage("  read usage", t);
    let t = std::time::Instant::now();
    let lines = assign_pools(with_periods(lines), cfg, &nodes)?.run()?;
    super::stage("  assign pools", t);
    let pool_lines = |name: &str| lines.clone().lazy().filter(col("pool").eq(lit(name.to_owned()))).collect();

    // Pools 1-8: direct, node split, drivers, follow.
    let mut base_parts: Vec<LazyFrame> = Vec::new();
    let direct = pool_lines(PoolId::DIRECT)?;
    out.methods.insert(PoolId::DIRECT.into(), "lines tagged with the tenant tag go wholly to that tenant".to_string());
    base_parts.push(part(direct.lazy().with_columns([col("tenant").alias("allocatee"), null_str().alias("reason")])));
    for rule in cfg.pools.iter().filter(|r| matches!(r.method, PoolMethod::NodeSplit | PoolMethod::Driver)) {
        let pl = pool_lines(rule.name.as_str())?;
        if pl.height() == 0 {
            continue;
        }
        let t = std::time::Instant::now();
        let parts = match rule.method {
            PoolMethod::NodeSplit => node_split(&pl, &pods_hourly, rule, cfg, &mut out)?,
            _ => driver_pool(&pl, &hourly, rule, &mut out)?,
        };
        // Run each pool on its own: their joins held at once would add up in memory.
        base_parts.push(concat(parts, UnionArgs::default())?.run()?.lazy());
        super::stage(&format!("  pool {}", rule.name), t);
    }
    let t = std::time::Instant::now();
    let mut base = concat(base_parts.clone(), UnionArgs::default())?.run()?;
    super::stage("  base concat", t);
    for rule in cfg.pools.iter().filter(|r| r.method == PoolMethod::FollowPool) {
        let pl = pool_lines(rule.name.as_str())?;
        if pl.height() == 0 {
            continue;
        }
        let target = rule.follow_pool.as_ref().map(|p| p.to_string()).unwrap_or_default();
        let pool = rule.name.to_string();
        out.drivers.insert(pool.clone(), format!("{target} cost"));
        out.methods.insert(pool.clone(), format!("each day's cost split in proportion to the tenants' {target} cost that day"));
        let by_day = totals(&base.clone().lazy().filter(col("pool").eq(lit(target.clone()))).run()?, &["allocatee", "day"], "amortized")?;
        let by_month = totals(&base.clone().lazy().filter(col("pool").eq(lit(target.clone()))).run()?, &["allocatee"], "amortized")?;
        let month_lines = pl.clone().lazy().filter(col("gran").eq(lit(GRAN_MONTH))).run()?;
        let day_lines = pl.lazy().filter(col("gran").neq(lit(GRAN_MONTH))).run()?;
        let by_day_str = by_day.clone().lazy().with_column(col("day").cast(DataType::String).alias("day_s")).run()?;
        let part_day = weighted(
            &day_lines,
            &pool,
            |_, d| tenant_weights(&by_day_str, Some(("day_s", &d.to_string()))).ok(),
            &format!("no tenant had {target} cost on the line's day"),
        )?;
        let part_month = weighted(&month_lines, &pool, |_, _| tenant_weights(&by_month, None).ok(), &format!("no tenant had {target} cost in the month"))?;
        let extra = concat([part(part_day), part(part_month)], UnionArgs::default())?.run()?;
        let q = totals(&extra, &["allocatee"], "amortized")?;
        for (t, v) in tenant_weights(&q, None)? {
            out.quantities.insert((pool.clone(), t), (format!("{target} cost"), v));
        }
        base = concat([base.lazy(), extra.lazy()], UnionArgs::default())?.run()?;
    }

    // The pools split by weights need only each day's and service's sums of
    // their lines; take them now and let the lines go (in a large month the
    // shared pool alone holds most of the lines).
    let pool_sums = |name: &str| {
        lines
            .clone()
            .lazy()
            .filter(col("pool").eq(lit(name.to_owned())))
            .group_by([col("day"), col("service")])
            .agg([col("unblended").sum(), col("amortized").sum()])
            .run()
    };
    let shared_name = cfg.pools.iter().find(|p| p.method == PoolMethod::Shared).map(|p| p.name.to_string()).unwrap_or_else(|| PoolId::SHARED.into());
    let mut weighted_pools: BTreeMap<String, DataFrame> = BTreeMap::new();
    for name in [shared_name.as_str(), PoolId::COMMITMENT, PoolId::CREDITS, PoolId::TAX] {
        weighted_pools.insert(name.to_owned(), pool_sums(name)?);
    }
    drop(lines);
    let mut pool_lines = |name: &str| -> PolarsResult<DataFrame> { Ok(weighted_pools.remove(name).unwrap_or_default()) };

    let t = std::time::Instant::now();
    // Shared and unused commitment: by each tenant's cost of pools 1-8 in the month, evenly, by fixed weights, or kept.
    let tenant_base = totals(&base, &["allocatee"], "amortized")?;
    let active: BTreeSet<String> = {
        let u = concat([hourly.clone().lazy().select([col("tenant")]), pods_hourly.clone().lazy().select([col("tenant")])], UnionArgs::default())?
            .unique(None, UniqueKeepStrategy::First)
            .run()?;
        let mut s: BTreeSet<String> = strings(u.column("tenant")?.str()?).flatten().map(str::to_owned).collect();
        s.extend(tenant_weights(&tenant_base, None)?.into_iter().filter(|(_, w)| *w > 0.0).map(|(t, _)| t));
        s
    };
    let mut after = vec![base.lazy()];
    for (pool, policy) in [(shared_name, cfg.shared_policy), (PoolId::COMMITMENT.to_owned(), cfg.commitment_policy)] {
        let pl = pool_lines(&pool)?;
        if pl.height() == 0 {
            continue;
        }
        let proportional = tenant_weights(&tenant_base, None)?;
        let even: Vec<(String, f64)> = active.iter().map(|t| (t.clone(), 1.0)).collect();
        let fixed: Vec<(String, f64)> = cfg.fixed_weights.iter().map(|(t, w)| (t.to_string(), *w)).collect();
        let (weights, method, driver) = match policy {
            SharedPolicy::Proportional if proportional.iter().any(|(_, w)| *w > 0.0) => {
                (Some(proportional), "in proportion to each tenant's cost from the other pools in the month".to_string(), "cost of other pools")
            }
            SharedPolicy::Proportional | SharedPolicy::Even => (Some(even), "equally among the tenants active in the month".to_string(), "active tenant"),
            SharedPolicy::Fixed => (Some(fixed), "by the configured fixed weights".to_string(), "fixed weight"),
            SharedPolicy::Keep => (None, "kept as a company overhead row (__shared__)".to_string(), "none"),
        };
        out.methods.insert(pool.clone(), method);
        out.drivers.insert(pool.clone(), driver.into());
        let frame = match weights {
            Some(w) => {
                for (t, v) in &w {
                    if *v > 0.0 {
                        out.quantities.insert((pool.clone(), t.clone()), (driver.into(), *v));
                    }
                }
                weighted(&pl, &pool, |_, _| Some(w.clone()), "no tenant had cost or usage in the month")?
            }
            None => pl.lazy().with_columns([lit(Allocatee::SHARED).alias("allocatee"), lit(pool.clone()).alias("pool"), null_str().alias("reason")]),
        };
        after.push(part(frame));
    }
    let before_credits = concat(after, UnionArgs::default())?.run()?;
    super::stage("  shared", t);
    let t = std::time::Instant::now();

    // Credits and refunds follow each tenant's cost of the service they name, else of the month.
    let credit_lines = pool_lines(PoolId::CREDITS)?;
    let mut rows = before_credits;
    if credit_lines.height() > 0 {
        let by_service = totals(&rows, &["allocatee", "service"], "amortized")?;
        let by_all = totals(&rows, &["allocatee"], "amortized")?;
        out.methods
            .insert(PoolId::CREDITS.into(), "in proportion to each tenant's cost of the service the credit names in the month, else of the whole month".into());
        out.drivers.insert(PoolId::CREDITS.into(), "cost of the service".into());
        // The driver of each tenant: its cost of the services the credits name.
        let credited: BTreeSet<String> = strings(credit_lines.column("service")?.str()?).flatten().map(str::to_owned).collect();
        for svc in &credited {
            for (t, w) in tenant_weights(&by_service, Some(("service", svc)))? {
                if w > 0.0 && TenantId::parse(&t).is_ok() {
                    out.quantities.entry((PoolId::CREDITS.into(), t)).or_insert(("cost of the service".into(), 0.0)).1 += w;
                }
            }
        }
        let frame = weighted(
            &credit_lines,
            PoolId::CREDITS,
            |s, _| {
                let svc = tenant_weights(&by_service, s.map(|s| ("service", s))).ok()?;
                if svc.iter().any(|(_, w)| *w > 0.0) { Some(svc) } else { tenant_weights(&by_all, None).ok() }
            },
            "no tenant had cost in the month",
        )?;
        rows = concat([rows.lazy(), part(frame)], UnionArgs::default())?.run()?;
    }

    // Tax follows each allocatee's pre-tax cost of the service it is billed
    // for (a CUR tax line names the taxed service), else of the whole month.
    let tax_lines = pool_lines(PoolId::TAX)?;
    if tax_lines.height() > 0 {
        let by_service = totals(&rows, &["allocatee", "service"], "unblended")?;
        let by_all = totals(&rows, &["allocatee"], "unblended")?;
        const DRIVER: &str = "pre-tax cost of the taxed services";
        out.methods.insert(
            PoolId::TAX.into(),
            "in proportion to each tenant's (and overhead row's) pre-tax cost of the service the tax is billed for in the month, else of the whole month"
                .into(),
        );
        out.drivers.insert(PoolId::TAX.into(), DRIVER.into());
        let weights_for = |service: Option<&str>| -> Option<Vec<(String, f64)>> {
            let of_service = allocatee_weights(&by_service, service.map(|s| ("service", s)), false).ok()?;
            if of_service.iter().any(|(_, w)| *w > 0.0) { Some(of_service) } else { allocatee_weights(&by_all, None, false).ok() }
        };
        let taxed: BTreeSet<String> = strings(tax_lines.column("service")?.str()?).flatten().map(str::to_owned).collect();
        for svc in &taxed {
            for (t, w) in weights_for(Some(svc)).unwrap_or_default() {
                if w > 0.0 && TenantId::parse(&t).is_ok() {
                    out.quantities.entry((PoolId::TAX.into(), t)).or_insert((DRIVER.into(), 0.0)).1 += w;
                }
            }
        }
        let frame = weighted(&tax_lines, PoolId::TAX, |s, _| weights_for(s), "no pre-tax cost to follow in the month")?;
        rows = concat([rows.lazy(), part(frame)], UnionArgs::default())?.run()?;
    }

    super::stage("  credits and tax", t);
    let t = std::time::Instant::now();
    out.rows = rows
        .lazy()
        .group_by([col("allocatee"), col("pool"), col("service"), col("day"), col("reason")])
        .agg([col("unblended").sum(), col("amortized").sum()])
        .sort(["day", "service", "pool", "allocatee", "reason"], SortMultipleOptions::default().with_nulls_last(true))
        .run()?;
    super::stage("  final group", t);
    Ok(out)
}
