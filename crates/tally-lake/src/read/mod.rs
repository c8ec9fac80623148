//! Readers for billing, usage and revenue files: one per input format.
//!
//! A reader scans its file lazily with polars, keeps only the columns it
//! needs, and turns each batch of rows into the lake's columns
//! ([`crate::schema`]): typed, validated and exact. It fails on the first
//! bad cell with the file, the row and the column, so that nothing from a
//! bad file is stored. Batches keep memory bounded whatever the file's size.

mod cols;
mod cur;
mod focus;
mod lines;
mod pages;
mod revenue;
mod usage;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rust_decimal::Decimal;
use tally_domain::{CostLine, CostSource, Currency, Month, TenantId};

pub use cols::parse_timestamp;
pub use cur::{EffectiveCostParts, amortized_cost, amortized_cost_of, amortized_units, read_cur, read_cur_batches};
pub use focus::{aws_service_code, read_focus, read_focus_batches};
pub use revenue::read_revenue;
pub use usage::{UsageFile, read_usage, read_usage_batches};

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

/// Lines read from one billing file, as domain values (small files and tests).
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

/// What a streaming read saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadSummary {
    pub rows: usize,
    /// Things a person should know that did not stop the import.
    pub warnings: Vec<String>,
    /// Every tenant the file names.
    pub tenants: BTreeSet<TenantId>,
    /// Usage files: every metric the file holds.
    pub metrics: BTreeSet<String>,
}

/// Rows per batch: enough for the columnar work to pay, few enough that a
/// batch of the widest format stays in a few hundred megabytes.
pub(crate) const BATCH_ROWS: usize = 500_000;

/// Batches converted at once (each on a thread of its own).
pub(crate) const CONVERTERS: usize = 2;

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
        Format::Parquet => {
            // polars trusts the page counts; a damaged one can abort the process.
            pages::check(&source, path)?;
            // A Data Exports folder (`BILLING_PERIOD=2026-10/`) names no column of the file.
            let mut args = ScanArgsParquet::default();
            args.hive_options.enabled = Some(false);
            LazyFrame::scan_parquet(pl_path, args).map_err(|e| ReadError::polars(path, e))?
        }
        Format::Csv { separator } => {
            // Polars drops the fields of a row beyond the header's without a
            // word: such a row means a broken file, named here by its number.
            if let Some(ragged) = overlong_row(&source, path, separator) {
                return Err(ragged);
            }
            LazyCsvReader::new(pl_path)
                .with_has_header(true)
                .with_separator(separator)
                .with_infer_schema_length(Some(0))
                .with_missing_is_null(true)
                .finish()
                .map_err(|e| ReadError::polars(path, e))?
        }
    };
    Ok((lf, guard))
}

/// The first data row of the delimited text file `source` with more fields
/// than its header, as an error naming it in `file`. (A shorter row reads
/// as missing values, which the readers check like any other.)
fn overlong_row(source: &Path, file: &Path, separator: u8) -> Option<ReadError> {
    let input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(source).ok()?);
    let mut reader = csv::ReaderBuilder::new().delimiter(separator).has_headers(true).flexible(true).from_reader(input);
    let expected = reader.byte_headers().ok()?.len();
    let mut record = csv::ByteRecord::new();
    let mut row = 0;
    while reader.read_byte_record(&mut record).ok()? {
        row += 1;
        if record.len() > expected {
            return Some(ReadError {
                file: file.to_path_buf(),
                row: Some(row),
                column: None,
                message: format!("has {} fields; the header has {expected}", record.len()),
            });
        }
    }
    None
}

/// Runs a reader, turning a panic inside the Parquet or CSV library (a
/// damaged file can trip one: polars' footer parser `expect`s well-formed
/// thrift) into an error naming the file, so one bad file never takes the
/// process down.
pub(crate) fn guarded<T>(path: &Path, read: impl FnOnce() -> Result<T, ReadError>) -> Result<T, ReadError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
        Ok(result) => result,
        Err(panic) => {
            let why = panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
            Err(ReadError::file(path, format!("cannot read: the file is damaged ({why})")))
        }
    }
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

/// The columns of a file that a reader wants, renamed, in batches with
/// their 1-based row numbers (`__row`).
pub(crate) struct Batches {
    pub(crate) columns: BTreeSet<String>,
    iter: CollectBatches,
    path: PathBuf,
    _guard: Option<tempfile::TempPath>,
}

impl Batches {
    /// Keeps the columns of `path` that `wanted` names (after renaming with
    /// `rename`) plus every column `keep_prefix` matches.
    pub(crate) fn open(path: &Path, rename: impl Fn(&str) -> String, wanted: &[&str], keep_prefix: Option<&str>, rows: usize) -> Result<Self, ReadError> {
        let (mut lf, guard) = scan(path)?;
        let schema = lf.collect_schema().map_err(|e| ReadError::polars(path, e))?;
        let mut select = vec![col(cols::ROW)];
        let mut columns = BTreeSet::new();
        for (name, _) in schema.iter() {
            let new = rename(name.as_str());
            let keep = wanted.contains(&new.as_str()) || keep_prefix.is_some_and(|p| new.starts_with(p));
            if keep && columns.insert(new.clone()) {
                select.push(col(name.as_str()).alias(new.as_str()));
            }
        }
        let iter = lf
            .with_row_index(cols::ROW, Some(1))
            .select(select)
            .collect_batches(Engine::Streaming, true, NonZeroUsize::new(rows), false)
            .map_err(|e| ReadError::polars(path, e))?;
        Ok(Self { columns, iter, path: path.to_path_buf(), _guard: guard })
    }

    pub(crate) fn require(&self, required: &[&str], what: &str) -> Result<(), ReadError> {
        match required.iter().find(|c| !self.columns.contains(**c)) {
            Some(missing) => Err(ReadError::column(&self.path, missing, format!("required column is missing: {what}"))),
            None => Ok(()),
        }
    }
}

impl Iterator for Batches {
    type Item = Result<DataFrame, ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        let path = self.path.clone();
        self.iter.next().map(|r| r.map_err(|e| ReadError::polars(&path, e)))
    }
}

/// Converts a file's batches on `workers` threads at once and hands the
/// results to `sink` in the file's order. Each worker keeps its own state
/// (caches, counts), returned at the end for merging.
pub(crate) fn convert_in_order<S: Send, T: Send>(
    batches: Batches,
    workers: usize,
    new_state: &(dyn Fn() -> S + Sync),
    convert: &(dyn Fn(&mut S, DataFrame) -> Result<T, ReadError> + Sync),
    sink: &mut dyn FnMut(T) -> Result<(), ReadError>,
) -> Result<Vec<S>, ReadError> {
    use std::sync::mpsc;
    let workers = workers.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<(usize, DataFrame)>(workers);
    let work_rx = std::sync::Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<T, ReadError>)>();
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for _ in 0..workers {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            handles.push(scope.spawn(move || {
                let mut state = new_state();
                loop {
                    let next = work_rx.lock().expect("work queue").recv();
                    let Ok((i, df)) = next else { break };
                    if done_tx.send((i, convert(&mut state, df))).is_err() {
                        break;
                    }
                }
                state
            }));
        }
        drop(done_tx);
        let mut pending: BTreeMap<usize, Result<T, ReadError>> = BTreeMap::new();
        let (mut sent, mut next) = (0, 0);
        let mut failure: Option<ReadError> = None;
        let mut deliver = |pending: &mut BTreeMap<usize, Result<T, ReadError>>, next: &mut usize, failure: &mut Option<ReadError>| {
            while let Some(r) = pending.remove(next) {
                *next += 1;
                if failure.is_none() {
                    match r.and_then(&mut *sink) {
                        Ok(()) => {}
                        Err(e) => *failure = Some(e),
                    }
                }
            }
        };
        for df in batches {
            let df = match df {
                Ok(df) => df,
                Err(e) => {
                    failure.get_or_insert(e);
                    break;
                }
            };
            // Keep at most one batch more in flight than there are workers.
            while sent - next > workers {
                let Ok((i, r)) = done_rx.recv() else { break };
                pending.insert(i, r);
                deliver(&mut pending, &mut next, &mut failure);
            }
            if failure.is_some() || work_tx.send((sent, df)).is_err() {
                break;
            }
            sent += 1;
        }
        drop(work_tx);
        while next < sent {
            let Ok((i, r)) = done_rx.recv() else { break };
            pending.insert(i, r);
            deliver(&mut pending, &mut next, &mut failure);
        }
        let states: Vec<S> = handles.into_iter().map(|h| h.join().expect("a converter thread panicked")).collect();
        match failure {
            Some(e) => Err(e),
            None => Ok(states),
        }
    })
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

/// Finds lines' tenants in their tags: matches keys against the configured
/// tenant tag and turns values into tenant ids, each distinct key and value
/// once, and counts values that are not tenant ids.
#[derive(Debug, Default, Clone)]
pub(crate) struct TenantTags {
    configured: String,
    keys: HashMap<String, bool>,
    values: HashMap<String, Option<TenantId>>,
    bad: BTreeMap<String, usize>,
    pub(crate) seen: BTreeSet<TenantId>,
}

impl TenantTags {
    pub(crate) fn new(configured: &str) -> Self {
        Self { configured: configured.to_owned(), ..Self::default() }
    }

    pub(crate) fn is_tenant_key(&mut self, key: &str) -> bool {
        if let Some(m) = self.keys.get(key) {
            return *m;
        }
        let m = is_tenant_tag(key, &self.configured);
        self.keys.insert(key.to_owned(), m);
        m
    }

    /// The tenant a tag value names, if it is (or normalises to) a tenant id.
    pub(crate) fn tenant(&mut self, value: &str) -> Option<&str> {
        if !self.values.contains_key(value) {
            let t = TenantId::normalise(value).ok();
            if let Some(t) = &t {
                self.seen.insert(t.clone());
            }
            self.values.insert(value.to_owned(), t);
        }
        let t = self.values[value].as_ref();
        if t.is_none() {
            *self.bad.entry(value.to_owned()).or_default() += 1;
        }
        t.map(TenantId::as_str)
    }

    /// Counts one more line carrying `value`, already known not to be a tenant id.
    pub(crate) fn note_bad(&mut self, value: &str) {
        *self.bad.entry(value.to_owned()).or_default() += 1;
    }

    /// Adds what another reader of the same file saw.
    pub(crate) fn absorb(&mut self, other: TenantTags) {
        self.seen.extend(other.seen);
        for (v, n) in other.bad {
            *self.bad.entry(v).or_default() += n;
        }
    }

    pub(crate) fn warning(&self) -> Option<String> {
        if self.bad.is_empty() {
            return None;
        }
        let lines: usize = self.bad.values().sum();
        let examples: Vec<&str> = self.bad.keys().take(3).map(String::as_str).collect();
        Some(format!("{lines} lines carry a {} tag whose value is not a tenant id (e.g. {examples:?}); they are allocated by usage instead", self.configured))
    }
}

/// Reads a billing file into domain values through its streaming reader.
pub(crate) fn collect_lines(
    path: &Path,
    source: CostSource,
    read: impl FnOnce(&mut dyn FnMut(DataFrame) -> Result<(), ReadError>) -> Result<ReadSummary, ReadError>,
) -> Result<FileLines, ReadError> {
    let mut lines = Vec::new();
    let summary = read(&mut |df| {
        lines.extend(crate::schema::lines_of(&df, source).map_err(|e| ReadError::polars(path, e))?);
        Ok(())
    })?;
    Ok(FileLines { file: path.to_path_buf(), lines, warnings: summary.warnings })
}
