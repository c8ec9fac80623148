//! Per-tenant usage files: `timestamp,tenant,metric,value[,unit,resource_id,workload]`,
//! CSV or Parquet.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use polars::prelude::*;
use tally_domain::{Metric, TenantId, UsageSample, check_instant};

use super::cols::{Batch, instant};
use super::{Batches, ReadError, ReadSummary};

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
    let batches = Batches::open(path, |n| n.trim().to_ascii_lowercase(), COLUMNS, None, USAGE_BATCH_ROWS)?;
    batches.require(&COLUMNS[..4], "expected timestamp,tenant,metric,value")?;
    let mut tenants: HashMap<String, TenantId> = HashMap::new();
    let mut metrics: HashMap<String, Metric> = HashMap::new();
    let mut rows = 0;
    let (mut t_read, mut t_convert, mut t_sink) = (0.0, 0.0, 0.0);
    let mut t = std::time::Instant::now();
    for df in batches {
        let df = df?;
        t_read += t.elapsed().as_secs_f64();
        t = std::time::Instant::now();
        let b = Batch::new(&df, path)?;
        let out = usage_batch(&b, &mut tenants, &mut metrics)?;
        t_convert += t.elapsed().as_secs_f64();
        t = std::time::Instant::now();
        rows += out.height();
        sink(out)?;
        t_sink += t.elapsed().as_secs_f64();
        t = std::time::Instant::now();
    }
    tracing::debug!(file = %path.display(), rows, read_s = t_read, convert_s = t_convert, write_s = t_sink, "read a usage file");
    Ok(ReadSummary { rows, warnings: Vec::new(), tenants: tenants.into_values().collect(), metrics: metrics.into_keys().collect() })
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
        check_instant("timestamp", instant(ms)).map_err(|e| b.cell(i, "timestamp", e.to_string()))?;
        if ms.rem_euclid(HOUR_MS) != 0 {
            return Err(b.cell(i, "timestamp", format!("{} is not the start of an hour", instant(ms).to_rfc3339())));
        }
    }
    let tenant = b.required_text("tenant")?;
    for (i, t) in tenant.iter().enumerate() {
        let t = t.unwrap_or_default();
        if !tenants.contains_key(t) {
            tenants.insert(t.to_owned(), TenantId::parse(t).map_err(|v| b.cell(i, "tenant", v.to_string()))?);
        }
    }
    let metric = b.required_text("metric")?;
    for (i, m) in metric.iter().enumerate() {
        let m = m.unwrap_or_default();
        if !metrics.contains_key(m) {
            metrics.insert(m.to_owned(), Metric::parse(m).map_err(|v| b.cell(i, "metric", v.to_string()))?);
        }
    }
    let value = b.float("value")?;
    for (i, v) in value.iter().enumerate() {
        match v {
            None => return Err(b.cell(i, "value", "missing value")),
            Some(v) if !v.is_finite() || v < 0.0 => return Err(b.cell(i, "value", format!("{v} is not a number >= 0"))),
            Some(_) => {}
        }
    }
    let unit = b.text("unit")?;
    let unit = StringChunked::from_iter_options(
        "unit".into(),
        unit.iter().zip(metric.iter()).map(|(u, m)| u.or_else(|| metrics.get(m.unwrap_or_default()).and_then(Metric::canonical_unit))),
    );
    let columns: Vec<Column> = vec![
        hour.with_name("hour".into()).into_datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)).into_series().into(),
        tenant.with_name("tenant".into()).into_series().into(),
        metric.with_name("metric".into()).into_series().into(),
        value.with_name("value".into()).into_series().into(),
        unit.into_series().into(),
        b.text("resource_id")?.into_series().into(),
        b.text("workload")?.into_series().into(),
    ];
    debug_assert_eq!(columns.len(), crate::schema::USAGE.len());
    DataFrame::new(n, columns).map_err(|e| ReadError::polars(b.path, e))
}
