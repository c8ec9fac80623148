//! Importing billing, usage and revenue files.
//!
//! A billing import reads every file into new files of the columnar store;
//! only when all of them parsed does it switch, in one transaction, every
//! billing month the files contain to the new files. Files of one month
//! delivered in several parts must therefore be imported together (a
//! folder or several paths in one call).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::Serialize;
use tally_domain::delivery::{ListedObject, select_latest};
use tally_domain::{CostSource, Currency, Month, TenantId};
use tally_lake::ReadOptions;
use tally_lake::read::read_revenue;

use crate::runs::{Tracker, record};
use crate::{App, JobError, Progress, Result, blocking};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingFormat {
    Cur,
    Focus,
}

impl BillingFormat {
    fn source(self) -> CostSource {
        match self {
            Self::Cur => CostSource::Cur,
            Self::Focus => CostSource::Focus,
        }
    }

    fn lake(self) -> tally_lake::BillingFormat {
        match self {
            Self::Cur => tally_lake::BillingFormat::Cur,
            Self::Focus => tally_lake::BillingFormat::Focus,
        }
    }
}

/// One billing month an import replaced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthImported {
    pub month: Month,
    pub lines: usize,
    #[serde(with = "rust_decimal::serde::str")]
    pub unblended: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub amortized: Decimal,
}

/// What a billing import did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BillingImport {
    pub files: Vec<PathBuf>,
    pub months: Vec<MonthImported>,
    /// Lines that replaced earlier imports of the same months.
    pub replaced: u64,
    pub tenants_created: Vec<TenantId>,
    /// Which snapshot of each period was taken.
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
    pub job_run: i64,
}

pub(crate) fn read_options(app: &App) -> Result<ReadOptions> {
    let mut opts = ReadOptions::new(&app.config.tenant_tag_key, app.config.currency);
    for (code, rate) in &app.config.currency_rates {
        let c = Currency::parse(code).map_err(|e| JobError::Invalid(e.to_string()))?;
        opts.rates.insert(c, *rate);
    }
    Ok(opts)
}

/// The files a local path stands for: the file itself, or the latest
/// snapshot of each billing period in a Data Exports / CUR folder.
pub fn local_files(path: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    if path.is_file() {
        return Ok((vec![path.to_path_buf()], Vec::new()));
    }
    if !path.is_dir() {
        return Err(JobError::Invalid(format!("{}: no such file or folder", path.display())));
    }
    let mut listing = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| JobError::Invalid(format!("{}: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| JobError::Invalid(format!("{}: {e}", dir.display())))?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(path).expect("under the root").to_string_lossy().replace('\\', "/");
                let modified = entry.metadata().and_then(|m| m.modified()).ok().map(chrono::DateTime::<chrono::Utc>::from);
                listing.push(ListedObject { path: rel, modified });
            }
        }
    }
    listing.sort_by(|a, b| a.path.cmp(&b.path));
    let selection = select_latest(&listing, |rel| std::fs::read_to_string(path.join(rel)).map_err(|e| e.to_string())).map_err(JobError::Invalid)?;
    if selection.files.is_empty() {
        return Err(JobError::Invalid(format!("{}: no Parquet, CSV or gzip files in this folder", path.display())));
    }
    Ok((selection.files.iter().map(|f| path.join(f)).collect(), selection.notes))
}

/// Downloads the latest snapshot of each billing period under an
/// `s3://bucket/prefix` into the data directory, for [`import_billing`].
pub async fn fetch_s3(
    app: &App,
    reader: &tally_collectors::s3::S3Reader,
    url: &str,
    policy: &tally_collectors::retry::RetryPolicy,
) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let location = tally_collectors::s3::S3Location::parse(url).map_err(JobError::Invalid)?;
    let into = app.data_dir.join("downloads").join(format!("{}-{}", location.bucket, app.clock.now().format("%Y%m%dT%H%M%S%.3f")));
    let (files, selection) = reader.fetch_delivery(&location, &into, policy).await.map_err(JobError::Failed)?;
    if files.is_empty() {
        return Err(JobError::Invalid(format!("{url}: no Parquet, CSV or gzip files under this prefix")));
    }
    Ok((files, selection.notes))
}

/// Reads `files` as `format` and replaces the billing months they contain.
/// `source` overrides the lines' source (the demo marks its data as such).
pub async fn import_billing(
    app: &App,
    files: Vec<PathBuf>,
    notes: Vec<String>,
    format: BillingFormat,
    source: Option<CostSource>,
    progress: &dyn Progress,
) -> Result<BillingImport> {
    let source = source.unwrap_or(format.source());
    let label = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
    let opts = read_options(app)?;
    let job = format!("import:{}", source.as_str());
    let (mut report, run) = record(app, &job, |tracker: Tracker| async move {
        progress.stage("reading billing files into the columnar store", 0);
        let imported = app.lake.import_billing(source, &label, &files, format.lake(), &opts).await?;
        progress.done(&format!("read {} file(s)", files.len()));
        let tenants: Vec<TenantId> = imported.tenants.iter().cloned().collect();
        let tenants_created = app.store.ensure_tenants(&tenants).await?;
        tracker.rows(imported.rows as i64);
        let months_text: Vec<String> = imported.months.iter().map(|m| m.month.to_string()).collect();
        tracker.detail(format!("{} lines for {} from {}", imported.rows, months_text.join(", "), label));
        progress.done(&format!("{} lines replaced {} earlier ones", imported.rows, imported.replaced));
        Ok(BillingImport {
            files: files.clone(),
            months: imported.months.iter().map(|m| MonthImported { month: m.month, lines: m.lines, unblended: m.unblended, amortized: m.amortized }).collect(),
            replaced: imported.replaced.max(0) as u64,
            tenants_created,
            notes: notes.clone(),
            warnings: imported.warnings,
            job_run: 0,
        })
    })
    .await?;
    report.job_run = run;
    Ok(report)
}

/// What a usage import did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageImported {
    pub file: PathBuf,
    pub samples: usize,
    pub replaced: u64,
    pub metrics: Vec<String>,
    pub tenants_created: Vec<TenantId>,
    pub job_run: i64,
}

/// Imports a usage file under `source` (`file` for files people import):
/// its samples replace those of the same hours, tenants and metrics.
pub async fn import_usage(app: &App, path: &Path, source: &str) -> Result<UsageImported> {
    let ((samples, replaced, metrics, created), run) = record(app, &format!("import:usage:{source}"), |tracker: Tracker| async move {
        let label = path.display().to_string();
        let imported = app.lake.import_usage_file(source, &label, path).await?;
        let tenants: Vec<TenantId> = imported.tenants.iter().cloned().collect();
        let created = app.store.ensure_tenants(&tenants).await?;
        tracker.rows(imported.rows as i64);
        tracker.detail(format!("{} samples from {label}", imported.rows));
        Ok((imported.rows, imported.replaced.max(0) as u64, imported.metrics, created))
    })
    .await?;
    Ok(UsageImported { file: path.to_path_buf(), samples, replaced, metrics, tenants_created: created, job_run: run })
}

/// What a revenue import did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevenueImported {
    pub months: Vec<Month>,
    pub entries: usize,
    pub tenants_created: Vec<TenantId>,
}

/// Imports a revenue file; each month it names is replaced.
pub async fn import_revenue(app: &App, path: &Path) -> Result<RevenueImported> {
    let (p, currency) = (path.to_path_buf(), app.config.currency);
    let (out, _) = record(app, "import:revenue", |tracker: Tracker| async move {
        let entries = blocking(move || Ok(read_revenue(&p, currency)?)).await?;
        let months: Vec<Month> = entries.iter().map(|e| e.month).collect::<BTreeSet<_>>().into_iter().collect();
        let tenants: Vec<TenantId> = entries.iter().map(|e| e.tenant.clone()).collect();
        let created = app.store.ensure_tenants(&tenants).await?;
        app.store.replace_revenue(&months, &entries).await?;
        tracker.rows(entries.len() as i64);
        Ok(RevenueImported { months, entries: entries.len(), tenants_created: created })
    })
    .await?;
    Ok(out)
}
