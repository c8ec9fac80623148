//! Readers for billing, usage and revenue files. Each reads one file lazily
//! with polars, keeps only the columns it needs, and turns rows into domain
//! values, failing on the first bad cell with the file, the row and the
//! column, so that nothing from a bad file is imported.

mod cols;
mod cur;
mod focus;
mod revenue;
mod usage;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rust_decimal::Decimal;
use tally_domain::{CostLine, Currency, Month, TenantId};

pub use cols::decimal_from_f64;
pub use cur::{EffectiveCostParts, amortized_cost, read_cur};
pub use focus::{aws_service_code, read_focus};
pub use revenue::read_revenue;
pub use usage::{UsageFile, read_usage};

/// What went wrong reading a file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ReadError {
    pub file: PathBuf,
    /// 1-based data row (the header is not counted).
    pub row: Option<usize>,
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(row) = self.row {
            write!(f, ", row {row}")?;
        }
        if let Some(col) = &self.column {
            write!(f, ", column {col}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ReadError {
    pub(crate) fn file(file: &Path, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), row: None, column: None, message: message.into() }
    }

    pub(crate) fn column(file: &Path, column: &str, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), row: None, column: Some(column.to_owned()), message: message.into() }
    }

    pub(crate) fn cell(file: &Path, row: usize, column: &str, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), row: Some(row), column: Some(column.to_owned()), message: message.into() }
    }

    pub(crate) fn polars(file: &Path, e: PolarsError) -> Self {
        Self::file(file, format!("cannot read: {e}"))
    }
}

/// How billing files are interpreted.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    /// The tag naming a line's tenant (`user_tenant`; `user:tenant` matches too).
    pub tenant_tag_key: String,
    /// Tally's reporting currency.
    pub currency: Currency,
    /// Rates into `currency` for bills in other currencies.
    pub rates: BTreeMap<Currency, Decimal>,
}

impl ReadOptions {
    pub fn new(tenant_tag_key: &str, currency: Currency) -> Self {
        Self { tenant_tag_key: tenant_tag_key.to_owned(), currency, rates: BTreeMap::new() }
    }
}

/// Lines read from one billing file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileLines {
    pub file: PathBuf,
    pub lines: Vec<CostLine>,
    /// Things a person should know that did not stop the import.
    pub warnings: Vec<String>,
}

impl FileLines {
    pub fn billing_months(&self) -> BTreeSet<Month> {
        self.lines.iter().map(|l| l.billing_month).collect()
    }
}

pub(crate) enum Format {
    Parquet,
    Csv { separator: u8 },
}

/// Opens a Parquet or CSV file (plain or gzip) as a lazy frame; CSV columns
/// are all text so that numbers are parsed exactly, not through floats.
/// Returns the frame and a guard that keeps a decompressed copy alive.
pub(crate) fn scan(path: &Path) -> Result<(LazyFrame, Option<tempfile::TempPath>), ReadError> {
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).map_err(|e| ReadError::file(path, format!("cannot open: {e}")))?;
    let head = &head[..n];
    let (source, guard) = if head.starts_with(&[0x1f, 0x8b]) {
        let tmp = tempfile::NamedTempFile::new().map_err(|e| ReadError::file(path, format!("cannot decompress: {e}")))?;
        let mut dec = flate2::read::MultiGzDecoder::new(std::fs::File::open(path).map_err(|e| ReadError::file(path, e.to_string()))?);
        let mut out = std::fs::File::create(tmp.path()).map_err(|e| ReadError::file(path, e.to_string()))?;
        std::io::copy(&mut dec, &mut out).map_err(|e| ReadError::file(path, format!("not valid gzip: {e}")))?;
        let p = tmp.into_temp_path();
        (p.to_path_buf(), Some(p))
    } else {
        (path.to_path_buf(), None)
    };
    let format =
        if head.starts_with(b"PAR1") { Format::Parquet } else { Format::Csv { separator: sniff_separator(&source).map_err(|e| ReadError::file(path, e))? } };
    let pl_path = PlRefPath::new(source.to_string_lossy().as_ref());
    let lf = match format {
        Format::Parquet => LazyFrame::scan_parquet(pl_path, ScanArgsParquet::default()).map_err(|e| ReadError::polars(path, e))?,
        Format::Csv { separator } => LazyCsvReader::new(pl_path)
            .with_has_header(true)
            .with_separator(separator)
            .with_infer_schema_length(Some(0))
            .with_missing_is_null(true)
            .finish()
            .map_err(|e| ReadError::polars(path, e))?,
    };
    Ok((lf, guard))
}

/// The separator of a delimited text file, from its header line: CUR CSV
/// uses `,`, Athena exports `\x01`, some tools `\t` or `;`.
fn sniff_separator(path: &Path) -> Result<u8, String> {
    let mut buf = vec![0u8; 64 * 1024];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut buf)).map_err(|e| format!("cannot read: {e}"))?;
    let header = buf[..n].split(|b| *b == b'\n').next().unwrap_or_default();
    if header.is_empty() {
        return Err("the file is empty: expected a header row".into());
    }
    let best = [b',', b'\x01', b'\t', b';', b'|'].into_iter().max_by_key(|sep| header.iter().filter(|b| *b == sep).count()).expect("candidates");
    if !header.contains(&best) {
        return Err("not a Parquet file and not a delimited text file with a header row".into());
    }
    Ok(best)
}

/// Keeps the columns of `lf` that `wanted` names (after renaming with
/// `rename`) plus every column `keep_prefix` matches; returns the collected
/// frame with renamed columns.
pub(crate) fn collect_columns(
    path: &Path,
    lf: LazyFrame,
    rename: impl Fn(&str) -> String,
    wanted: &[&str],
    keep_prefix: Option<&str>,
) -> Result<DataFrame, ReadError> {
    let mut lf = lf;
    let schema = lf.collect_schema().map_err(|e| ReadError::polars(path, e))?;
    let mut select = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, _) in schema.iter() {
        let new = rename(name.as_str());
        let keep = wanted.contains(&new.as_str()) || keep_prefix.is_some_and(|p| new.starts_with(p));
        if keep && seen.insert(new.clone()) {
            select.push(col(name.as_str()).alias(new.as_str()));
        }
    }
    lf.select(select).collect().map_err(|e| ReadError::polars(path, e))
}

/// Whether a tag key is the configured tenant tag: `user:tenant`,
/// `user_tenant` and `resource_tags_user_tenant` all name the tag `tenant`.
pub(crate) fn is_tenant_tag(key: &str, configured: &str) -> bool {
    fn norm(k: &str) -> String {
        let k = k.strip_prefix("resource_tags_").unwrap_or(k);
        k.replace(':', "_").to_ascii_lowercase()
    }
    norm(key) == norm(configured)
}

/// The tenant a set of tags names, or a warning when the tag's value is not a tenant id.
pub(crate) fn tenant_of(tags: &BTreeMap<String, String>, opts: &ReadOptions, bad: &mut BTreeMap<String, usize>) -> Option<TenantId> {
    let value = tags.iter().find(|(k, _)| is_tenant_tag(k, &opts.tenant_tag_key)).map(|(_, v)| v)?;
    match TenantId::normalise(value) {
        Ok(t) => Some(t),
        Err(_) => {
            *bad.entry(value.clone()).or_default() += 1;
            None
        }
    }
}

pub(crate) fn bad_tag_warning(bad: &BTreeMap<String, usize>, key: &str) -> Option<String> {
    if bad.is_empty() {
        return None;
    }
    let lines: usize = bad.values().sum();
    let examples: Vec<&str> = bad.keys().take(3).map(String::as_str).collect();
    Some(format!("{lines} lines carry a {key} tag whose value is not a tenant id (e.g. {examples:?}); they are allocated by usage instead"))
}

/// Converts lines to the reporting currency, or explains why it cannot.
pub(crate) fn convert_currencies(path: &Path, lines: &mut [CostLine], opts: &ReadOptions) -> Result<(), ReadError> {
    let mut by_month: BTreeMap<Month, BTreeSet<Currency>> = BTreeMap::new();
    for l in lines.iter() {
        by_month.entry(l.billing_month).or_default().insert(l.currency);
    }
    for (month, currencies) in &by_month {
        for c in currencies {
            if *c != opts.currency && !opts.rates.contains_key(c) {
                let list: Vec<&str> = currencies.iter().map(Currency::code).collect();
                let what = if currencies.len() > 1 { "several currencies" } else { "a currency other than the reporting currency" };
                return Err(ReadError::column(
                    path,
                    "currency",
                    format!(
                        "billing period {month} holds {what} ({}) and no exchange rate from {c} to {} is configured (currency_rates.{c})",
                        list.join(", "),
                        opts.currency
                    ),
                ));
            }
        }
    }
    for l in lines.iter_mut() {
        if l.currency != opts.currency {
            let rate = opts.rates[&l.currency];
            l.unblended *= rate;
            l.net_unblended *= rate;
            l.amortized *= rate;
            l.list_cost = l.list_cost.map(|c| c * rate);
            l.currency = opts.currency;
        }
    }
    Ok(())
}
