//! Per-tenant usage files: `timestamp,tenant,metric,value[,unit,resource_id,workload]`,
//! CSV or Parquet.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use polars::prelude::*;
use tally_domain::{END_INSTANT_MS, FIRST_INSTANT_MS, Metric, TenantId, UsageSample, check_instant};

use super::cols::{Batch, instant};
use super::{Batches, CONVERTERS, ReadError, ReadSummary, convert_in_order};

const COLUMNS: &[&str] = &["timestamp", "tenant", "metric", "value", "unit", "resource_id", "workload"];

/// Usage files have few columns: bigger batches.
const USAGE_BATCH_ROWS: usize = 2_000_000;

const HOUR_MS: i64 = 3_600_000;

/// The samples of one usage file, as domain values (small files and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageFile {
    pub samples: Vec<UsageSample>,
    /// Every tenant the file names, for creating the unknown ones.
    pub tenants: BTreeSet<TenantId>,
}

/// Reads a usage file, batch by batch, into lake frames given to `sink`;
/// rejects the whole file at its first bad row.
pub fn read_usage_batches(path: &Path, sink: &mut dyn FnMut(DataFrame) -> Result<(), ReadError>) -> Result<ReadSummary, ReadError> {
    super::guarded(path, || read_usage_batches_unguarded(path, sink))
}

fn read_usage_batches_unguarded(path: &Path, sink: &mut dyn FnMut(DataFrame) -> Result<(), ReadError>) -> Result<ReadSummary, ReadError> {
    let batches = Batches::open(path, |n| n.trim().to_ascii_lowercase(), COLUMNS, None, USAGE_BATCH_ROWS)?;
    batches.require(&COLUMNS[..4], "expected timestamp,tenant,metric,value")?;
    let mut rows = 0;
    let new_state = || (HashMap::<String, TenantId>::new(), HashMap::<String, Metric>::new());
    let convert = |state: &mut (HashMap<String, TenantId>, HashMap<String, Metric>), df: DataFrame| {
        let b = Batch::new(&df, path)?;
        usage_batch(&b, &mut state.0, &mut state.1)
    };
    let states = convert_in_order(batches, CONVERTERS, &new_state, &convert, &mut |out: DataFrame| {
        rows += out.height();
        sink(out)
    })?;
    let (mut tenants, mut metrics) = (BTreeSet::new(), BTreeSet::new());
    for (t, m) in states {
        tenants.extend(t.into_values());
        metrics.extend(m.into_keys());
    }
    Ok(ReadSummary { rows, warnings: Vec::new(), tenants, metrics })
}

/// Reads a usage file into samples (small files and tests).
pub fn read_usage(path: &Path) -> Result<UsageFile, ReadError> {
    let mut samples = Vec::new();
    let summary = read_usage_batches(path, &mut |df| {
        samples.extend(crate::schema::usage_of(&df).map_err(|e| ReadError::polars(path, e))?);
        Ok(())
    })?;
    Ok(UsageFile { samples, tenants: summary.tenants })
}

fn usage_batch(b: &Batch<'_>, tenants: &mut HashMap<String, TenantId>, metrics: &mut HashMap<String, Metric>) -> Result<DataFrame, ReadError> {
    let n = b.height();
    let hour = b.required_times("timestamp")?;
    for (i, ms) in hour.iter().enumerate() {
        let ms = ms.unwrap_or_default();
        if !(FIRST_INSTANT_MS..END_INSTANT_MS).contains(&ms) {
            check_instant("timestamp", instant(ms)).map_err(|e| b.cell(i, "timestamp", e.to_string()))?;
        }
        if ms.rem_euclid(HOUR_MS) != 0 {
            return Err(b.cell(i, "timestamp", format!("{} is not the start of an hour", instant(ms).to_rfc3339())));
        }
    }
    // Rows come in runs of one tenant and metric: look each run up once.
    let tenant = b.required_text("tenant")?;
    let mut last: Option<&str> = None;
    for (i, t) in tenant.iter().enumerate() {
        let t = t.unwrap_or_default();
        if last != Some(t) && !tenants.contains_key(t) {
            tenants.insert(t.to_owned(), TenantId::parse(t).map_err(|v| b.cell(i, "tenant", v.to_string()))?);
        }
        last = Some(t);
    }
    let metric = b.required_text("metric")?;
    let mut last: Option<&str> = None;
    for (i, m) in metric.iter().enumerate() {
        let m = m.unwrap_or_default();
        if last != Some(m) && !metrics.contains_key(m) {
            metrics.insert(m.to_owned(), Metric::parse(m).map_err(|v| b.cell(i, "metric", v.to_string()))?);
        }
        last = Some(m);
    }
    let value = b.float("value")?;
    for (i, v) in value.iter().enumerate() {
        match v {
            None => return Err(b.cell(i, "value", "missing value")),
            Some(v) if !v.is_finite() || v < 0.0 => return Err(b.cell(i, "value", format!("{v} is not a number >= 0"))),
            Some(_) => {}
        }
    }
    // A missing unit stays missing: readers give the metric's canonical unit.
    let unit = b.text("unit")?;
    let columns: Vec<Column> = vec![
        hour.with_name("hour".into()).into_datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)).into_series().into(),
        tenant.with_name("tenant".into()).into_series().into(),
        metric.with_name("metric".into()).into_series().into(),
        value.with_name("value".into()).into_series().into(),
        unit.with_name("unit".into()).into_series().into(),
        b.text("resource_id")?.into_series().into(),
        b.text("workload")?.into_series().into(),
    ];
    debug_assert_eq!(columns.len(), crate::schema::USAGE.len());
    DataFrame::new(n, columns).map_err(|e| ReadError::polars(b.path, e))
}
