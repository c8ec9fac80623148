//! Per-tenant usage files: `timestamp,tenant,metric,value[,unit,resource_id,workload]`,
//! CSV or Parquet.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::Timelike;
use tally_domain::{Metric, TenantId, UsageSample};

use super::cols::{NumCol, TextCol, TimeCol};
use super::{ReadError, collect_columns, scan};

const COLUMNS: &[&str] = &["timestamp", "tenant", "metric", "value", "unit", "resource_id", "workload"];

/// The samples of one usage file.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageFile {
    pub samples: Vec<UsageSample>,
    /// Every tenant the file names, for creating the unknown ones.
    pub tenants: BTreeSet<TenantId>,
}

/// Reads a usage file, rejecting the whole file at its first bad row.
pub fn read_usage(path: &Path) -> Result<UsageFile, ReadError> {
    let (lf, _guard) = scan(path)?;
    let df = collect_columns(path, lf, |n| n.trim().to_ascii_lowercase(), COLUMNS, None)?;
    for req in &COLUMNS[..4] {
        if df.column(req).is_err() {
            return Err(ReadError::column(path, req, "required column is missing: expected timestamp,tenant,metric,value"));
        }
    }
    let e = |c: &str| {
        let c = c.to_owned();
        move |m: String| ReadError::column(path, &c, m)
    };
    let ts = TimeCol::of(&df, "timestamp").map_err(e("timestamp"))?;
    let tenant = TextCol::of(&df, "tenant").map_err(e("tenant"))?;
    let metric = TextCol::of(&df, "metric").map_err(e("metric"))?;
    let value = NumCol::of(&df, "value").map_err(e("value"))?;
    let unit = TextCol::of(&df, "unit").map_err(e("unit"))?;
    let resource = TextCol::of(&df, "resource_id").map_err(e("resource_id"))?;
    let workload = TextCol::of(&df, "workload").map_err(e("workload"))?;

    let mut samples = Vec::with_capacity(df.height());
    let mut tenants = BTreeSet::new();
    let mut last_tenant: Option<(String, TenantId)> = None;
    for i in 0..df.height() {
        let row = i + 1;
        let cell = |c: &str, m: String| ReadError::cell(path, row, c, m);
        let hour = ts.get(i).map_err(|m| cell("timestamp", m))?.ok_or_else(|| cell("timestamp", "missing value".into()))?;
        if hour.minute() != 0 || hour.second() != 0 || hour.nanosecond() != 0 {
            return Err(cell("timestamp", format!("{} is not the start of an hour", hour.to_rfc3339())));
        }
        let t = tenant.get(i).ok_or_else(|| cell("tenant", "missing value".into()))?;
        let tenant_id = match &last_tenant {
            Some((raw, id)) if raw == t => id.clone(),
            _ => {
                let id = TenantId::parse(t).map_err(|v| cell("tenant", v.to_string()))?;
                last_tenant = Some((t.to_owned(), id.clone()));
                id
            }
        };
        let m = metric.get(i).ok_or_else(|| cell("metric", "missing value".into()))?;
        let m = Metric::parse(m).map_err(|v| cell("metric", v.to_string()))?;
        let v = value.get_f64(i).map_err(|msg| cell("value", msg))?.ok_or_else(|| cell("value", "missing value".into()))?;
        if !v.is_finite() || v < 0.0 {
            return Err(cell("value", format!("{v} is not a number >= 0")));
        }
        let sample = UsageSample::new(hour, tenant_id.clone(), m, v).map_err(|v| cell("value", v.to_string()))?.with_unit(unit.get(i).map(str::to_owned));
        let sample = match resource.get(i) {
            Some(r) => sample.with_resource(r),
            None => sample,
        };
        let sample = match workload.get(i) {
            Some(w) => sample.with_workload(w),
            None => sample,
        };
        tenants.insert(tenant_id);
        samples.push(sample);
    }
    Ok(UsageFile { samples, tenants })
}
