//! The store itself: imports (write, switch, delete), merges, snapshots,
//! sweeping, and moving the rows earlier versions kept in SQL.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use rust_decimal::Decimal;
use tally_domain::{CostLine, CostSource, Month, TenantId, UsageSample};
use tally_storage::{LakeCommit, LakeCommitted, LakeFile, LakeKind, PartitionSwitch, StorageError, Store};

use crate::decimal::decimal_of;
use crate::objects::Objects;
use crate::parts::{Parts, Staged, Writer};
use crate::read::{ReadError, ReadOptions, read_cur_batches, read_focus_batches, read_usage_batches};
use crate::scan::{run, scan_files};
use crate::schema::{lines_frame, usage_frame};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Writing, reading or listing the store's files failed.
    #[error("the columnar store: {0}")]
    Store(String),
    /// The catalog names a file the store does not hold.
    #[error("the columnar store has lost {0}, a file its catalog names (was it deleted by hand?); import the period again to replace it")]
    Missing(String),
    /// A file of the store is not readable Parquet.
    #[error("the columnar store's file {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the columnar pipeline failed: {0}")]
    Polars(String),
}

impl From<PolarsError> for LakeError {
    fn from(e: PolarsError) -> Self {
        Self::Polars(e.to_string())
    }
}

pub type Result<T, E = LakeError> = std::result::Result<T, E>;

/// The billing file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingFormat {
    Cur,
    Focus,
}

/// One billing month an import wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthTotals {
    pub month: Month,
    pub lines: usize,
    pub unblended: Decimal,
    pub amortized: Decimal,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Imported {
    pub batch_id: i64,
    pub rows: usize,
    /// Rows of the snapshots it replaced.
    pub replaced: i64,
    /// Billing imports: per month.
    pub months: Vec<MonthTotals>,
    pub tenants: BTreeSet<TenantId>,
    /// Usage imports: the metrics imported.
    pub metrics: Vec<String>,
    pub warnings: Vec<String>,
}

/// A partition's (or several partitions') current files, readable locally.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub files: Vec<LakeFile>,
    pub paths: Vec<PathBuf>,
}

impl Snapshot {
    pub fn rows(&self) -> i64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// The files it is made of, for telling an unchanged snapshot.
    pub fn fingerprint(&self) -> String {
        self.files.iter().map(|f| f.id.to_string()).collect::<Vec<_>>().join(",")
    }
}

/// What a sweep removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Swept {
    /// Files a later import replaced.
    pub superseded: usize,
    /// Files no import finished (a crash between writing and switching).
    pub orphans: usize,
    /// Cached copies of files no longer in the store.
    pub cached: usize,
}

/// What moving the rows of an earlier version did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyMoved {
    pub partitions: usize,
    pub billing_lines: i64,
    pub usage_samples: i64,
}

/// Tries of a merge that other writers keep beating to the switch.
const MERGE_ATTEMPTS: u64 = 8;

/// How a merge decides which rows of the current snapshot the new rows replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replace {
    /// Usage: the samples of the same hour, tenant and metric.
    UsageKeys,
    /// Billing: every line whose usage starts on these days (inclusive).
    Days { from: NaiveDate, to: NaiveDate },
}

/// Options for tests of crash safety.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Waits this long after writing an import's files, before switching the catalog.
    pub pause_before_switch: Option<Duration>,
}

/// The columnar store.
#[derive(Debug)]
pub struct Lake {
    objects: Objects,
    staging: PathBuf,
    catalog: Arc<dyn Store>,
    faults: Faults,
}

/// Runs CPU-heavy work off the async runtime, on a thread of its own:
/// outside any runtime's context, where polars' own async I/O may block
/// whatever runtime (current-thread or not) the caller runs on.
pub async fn on_worker_thread<T: Send + 'static, E: From<LakeError> + Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, E> + Send + 'static,
) -> std::result::Result<T, E> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("tally-columnar".into())
        .spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        })
        .map_err(|e| LakeError::Store(format!("cannot start a worker thread: {e}")))?;
    match rx.await {
        Ok(Ok(out)) => out,
        Ok(Err(panic)) => {
            let what = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned())).unwrap_or_default();
            Err(LakeError::Store(format!("worker thread failed: {what}")).into())
        }
        Err(_) => Err(LakeError::Store("worker thread failed".into()).into()),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    on_worker_thread(f).await
}

fn ms(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.and_then(DateTime::<Utc>::from_timestamp_millis)
}

impl Lake {
    /// Opens the store at `url` (`s3://bucket/prefix`, a folder, or `None` for
    /// `<data_dir>/lake`) with `catalog` as its catalog.
    pub fn open(url: Option<&str>, data_dir: &Path, catalog: Arc<dyn Store>) -> Result<Self> {
        let objects = Objects::open(url, data_dir)?;
        let staging = objects.staging(data_dir);
        Ok(Self { objects, staging, catalog, faults: Faults::default() })
    }

    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Where the store is, for people.
    pub fn location(&self) -> String {
        self.objects.location()
    }

    pub fn catalog(&self) -> &Arc<dyn Store> {
        &self.catalog
    }

    // --- imports ---

    /// Reads billing `files` and replaces, in one switch, every billing month
    /// they hold for `source`.
    pub async fn import_billing(&self, source: CostSource, label: &str, files: &[PathBuf], format: BillingFormat, opts: &ReadOptions) -> Result<Imported> {
        let (staging, src, files, opts) = (self.staging.clone(), source.as_str().to_owned(), files.to_vec(), opts.clone());
        let (staged, totals, summary) = blocking(move || {
            let parts = Parts::new(&staging, LakeKind::Billing, &src).map_err(|e| LakeError::Store(format!("{}: {e}", staging.display())))?;
            let writer = Writer::spawn(parts);
            let mut totals: BTreeMap<Month, (usize, i128, i128)> = BTreeMap::new();
            let mut summary = crate::read::ReadSummary::default();
            for f in &files {
                let mut sink = |df: DataFrame| -> std::result::Result<(), ReadError> {
                    add_totals(&df, &mut totals).map_err(|e| ReadError::polars(f, e))?;
                    writer.write(df).map_err(|e| ReadError::file(f, format!("cannot write to the columnar store: {e}")))
                };
                let read = match format {
                    BillingFormat::Cur => read_cur_batches(f, &opts, &mut sink),
                    BillingFormat::Focus => read_focus_batches(f, &opts, &mut sink),
                };
                match read {
                    Ok(s) => {
                        summary.rows += s.rows;
                        summary.tenants.extend(s.tenants);
                        summary.warnings.extend(s.warnings.into_iter().map(|w| format!("{}: {w}", f.display())));
                    }
                    Err(e) => {
                        writer.discard();
                        return Err(e.into());
                    }
                }
            }
            Ok((writer.finish()?, totals, summary))
        })
        .await?;
        if totals.is_empty() {
            return Err(LakeError::Invalid(format!("{label}: no billing lines")));
        }
        let months: Vec<Month> = totals.keys().copied().collect();
        let switches = switches_of(&staged, &months, |_| None);
        let scope = format!("months {}", months.iter().map(Month::to_string).collect::<Vec<_>>().join(","));
        let committed = self.switch(LakeKind::Billing, source.as_str(), label, &scope, summary.rows as i64, &staged, switches, false).await;
        remove_local(&staged);
        let committed = committed?;
        Ok(Imported {
            batch_id: committed.batch_id,
            rows: summary.rows,
            replaced: committed.replaced_rows,
            months: totals.into_iter().map(|(month, (lines, u, a))| MonthTotals { month, lines, unblended: decimal_of(u), amortized: decimal_of(a) }).collect(),
            tenants: summary.tenants,
            metrics: Vec::new(),
            warnings: summary.warnings,
        })
    }

    /// Replaces `source`'s lines whose usage starts on the days `from..=to`
    /// with `lines` (Cost Explorer's windows), keeping the months' other days.
    pub async fn replace_billing_days(&self, source: CostSource, label: &str, from: NaiveDate, to: NaiveDate, lines: &[CostLine]) -> Result<Imported> {
        if let Some(l) = lines.iter().find(|l| l.day() < from || l.day() > to) {
            return Err(LakeError::Invalid(format!("a line of {} lies outside the days {from}..={to} being replaced", l.usage_start.to_rfc3339())));
        }
        let owned = lines.to_vec();
        let frame = blocking(move || Ok(lines_frame(&owned)?)).await?;
        let mut months: BTreeSet<Month> = lines.iter().map(|l| l.billing_month).collect();
        // Months whose days are replaced hold the days' lines too, whatever the new lines say.
        for p in self.catalog.lake_partitions(LakeKind::Billing).await? {
            let (first, last) = (p.first_at.map(|t| t.date_naive()), p.last_at.map(|t| t.date_naive()));
            if p.source == source.as_str() && first.is_none_or(|f| f <= to) && last.is_none_or(|l| l >= from) && p.rows > 0 {
                months.insert(p.month);
            }
        }
        let tenants = lines.iter().filter_map(|l| l.tenant.clone()).collect();
        let mut imported = self.merge(LakeKind::Billing, source.as_str(), label, frame, &months, Replace::Days { from, to }).await?;
        imported.tenants = tenants;
        Ok(imported)
    }

    /// Reads a usage file and merges it into `source`'s usage: the samples of
    /// the hours, tenants and metrics it holds replace the stored ones.
    pub async fn import_usage_file(&self, source: &str, label: &str, path: &Path) -> Result<Imported> {
        let (staging, src, p) = (self.staging.clone(), source.to_owned(), path.to_path_buf());
        let (staged, summary) = blocking(move || {
            let parts = Parts::new(&staging, LakeKind::Usage, &src).map_err(|e| LakeError::Store(format!("{}: {e}", staging.display())))?;
            let writer = Writer::spawn(parts);
            let read = read_usage_batches(&p, &mut |df| writer.write(df).map_err(|e| ReadError::file(&p, format!("cannot write to the columnar store: {e}"))));
            match read {
                Ok(s) => Ok((writer.finish()?, s)),
                Err(e) => {
                    writer.discard();
                    Err(e.into())
                }
            }
        })
        .await?;
        let mut imported = self.merge_staged(LakeKind::Usage, source, label, staged, Replace::UsageKeys).await?;
        imported.rows = summary.rows;
        imported.tenants = summary.tenants;
        imported.metrics = summary.metrics.into_iter().collect();
        Ok(imported)
    }

    /// Merges collected samples into `source`'s usage, as [`Lake::import_usage_file`].
    pub async fn merge_usage(&self, source: &str, label: &str, samples: &[UsageSample]) -> Result<Imported> {
        let owned = samples.to_vec();
        let frame = blocking(move || Ok(usage_frame(&owned)?)).await?;
        let months: BTreeSet<Month> = samples.iter().map(|s| s.hour.month_of()).collect();
        let mut imported = self.merge(LakeKind::Usage, source, label, frame, &months, Replace::UsageKeys).await?;
        imported.tenants = samples.iter().map(|s| s.tenant.clone()).collect();
        imported.metrics = samples.iter().map(|s| s.metric.to_string()).collect::<BTreeSet<_>>().into_iter().collect();
        Ok(imported)
    }

    /// Stages `frame`'s rows and merges them.
    async fn merge(&self, kind: LakeKind, source: &str, label: &str, frame: DataFrame, months: &BTreeSet<Month>, replace: Replace) -> Result<Imported> {
        let (staging, src) = (self.staging.clone(), source.to_owned());
        let staged = blocking(move || {
            let mut parts = Parts::new(&staging, kind, &src).map_err(|e| LakeError::Store(format!("{}: {e}", staging.display())))?;
            parts.write_split(&frame)?;
            Ok(parts.finish()?)
        })
        .await?;
        let mut staged = staged;
        // Months with nothing new still lose the replaced rows.
        for m in months {
            if !staged.iter().any(|s| s.month == *m) {
                staged.push(Staged { month: *m, local: PathBuf::new(), rel: String::new(), rows: 0, bytes: 0, first_ms: None, last_ms: None });
            }
        }
        self.merge_staged(kind, source, label, staged, replace).await
    }

    /// Merges staged new rows with each month's current snapshot, retrying
    /// when another writer switched a partition in the meantime. A month
    /// with no snapshot yet takes the new files as they are.
    async fn merge_staged(&self, kind: LakeKind, source: &str, label: &str, new: Vec<Staged>, replace: Replace) -> Result<Imported> {
        let new_rows: i64 = new.iter().map(|s| s.rows).sum();
        let months: BTreeSet<Month> = new.iter().map(|s| s.month).collect();
        let scope = match replace {
            Replace::UsageKeys => format!("the hours, tenants and metrics of {new_rows} sample(s)"),
            Replace::Days { from, to } => format!("days {from}..={to}"),
        };
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            if attempt > 1 {
                // Writers that collided try again at different moments.
                tokio::time::sleep(Duration::from_millis(rand::random_range(5..40) * attempt)).await;
            }
            let (first, last) = (*months.first().expect("a month"), *months.last().expect("a month"));
            let partitions: BTreeMap<Month, i64> = self
                .catalog
                .lake_partitions(kind)
                .await?
                .into_iter()
                .filter(|p| p.source == source && months.contains(&p.month))
                .map(|p| (p.month, p.version))
                .collect();
            let mut old: BTreeMap<Month, Vec<PathBuf>> = BTreeMap::new();
            let mut lost = None;
            for f in self.catalog.lake_files(kind, Some(source), first, last).await?.into_iter().filter(|f| months.contains(&f.month)) {
                match self.objects.localise(&f.path).await {
                    Ok(p) => old.entry(f.month).or_default().push(p),
                    Err(e) => lost = Some(e),
                }
            }
            if let Some(e) = lost {
                if attempt < MERGE_ATTEMPTS && self.versions_changed(kind, source, &months, &partitions).await {
                    continue;
                }
                break Err(e);
            }
            // Months with nothing stored yet take the new files as they are; the others are rewritten.
            let direct: Vec<Staged> = new.iter().filter(|s| !old.contains_key(&s.month) && !s.rel.is_empty()).cloned().collect();
            let (staging, src, fresh, rewrite) = (self.staging.clone(), source.to_owned(), new.clone(), old);
            let outputs = blocking(move || {
                let mut parts = Parts::new(&staging, kind, &src).map_err(|e| LakeError::Store(format!("{}: {e}", staging.display())))?;
                for (m, paths) in &rewrite {
                    let fresh: Vec<PathBuf> = fresh.iter().filter(|s| s.month == *m && !s.rel.is_empty()).map(|s| s.local.clone()).collect();
                    let lf = scan_files(kind, paths)?;
                    let kept = match replace {
                        Replace::UsageKeys if fresh.is_empty() => lf,
                        Replace::UsageKeys => {
                            let keys = scan_files(kind, &fresh)?.select([col("hour"), col("tenant"), col("metric")]).unique(None, UniqueKeepStrategy::First);
                            let on = [col("hour"), col("tenant"), col("metric")];
                            lf.join(keys, on.clone(), on, JoinArgs::new(JoinType::Anti))
                        }
                        Replace::Days { from, to } => {
                            let day = col("usage_start").dt().date();
                            lf.filter(day.clone().lt(lit(from)).or(day.gt(lit(to))))
                        }
                    };
                    let all = if fresh.is_empty() { kept } else { concat([kept, scan_files(kind, &fresh)?], UnionArgs::default())? };
                    for batch in all.collect_batches(Engine::Streaming, true, std::num::NonZeroUsize::new(1_000_000), false)? {
                        parts.write(*m, &batch?)?;
                    }
                }
                Ok(parts.finish()?)
            })
            .await;
            // Another writer's switch deleted a file read here: read its snapshot instead.
            let mut outputs = match outputs {
                Ok(o) => o,
                Err(e) if attempt < MERGE_ATTEMPTS && self.versions_changed(kind, source, &months, &partitions).await => {
                    tracing::info!(attempt, error = %e, "the partition changed while it was merged; merging again");
                    continue;
                }
                Err(e) => break Err(e),
            };
            let rewritten = outputs.clone();
            outputs.extend(direct);
            let switches = switches_of(&outputs, &months.iter().copied().collect::<Vec<_>>(), |m| Some(partitions.get(&m).copied().unwrap_or(0)));
            let outcome = self.switch(kind, source, label, &scope, new_rows, &outputs, switches, false).await;
            remove_local(&rewritten);
            match outcome {
                Err(LakeError::Storage(StorageError::Conflict(m))) if attempt < MERGE_ATTEMPTS => tracing::info!(attempt, "{m}; merging again"),
                other => break other,
            }
        };
        remove_local(&new);
        let committed = result?;
        Ok(Imported { batch_id: committed.batch_id, rows: new_rows as usize, replaced: committed.replaced_rows, ..Imported::default() })
    }

    /// Whether a partition of `months` is not at the version read any more
    /// (`read` has no entry for a partition that did not exist).
    async fn versions_changed(&self, kind: LakeKind, source: &str, months: &BTreeSet<Month>, read: &BTreeMap<Month, i64>) -> bool {
        match self.catalog.lake_partitions(kind).await {
            Ok(now) => now.iter().filter(|p| p.source == source && months.contains(&p.month)).any(|p| read.get(&p.month).copied().unwrap_or(0) != p.version),
            Err(_) => false,
        }
    }

    /// Publishes staged files, switches the catalog to them, and deletes
    /// what they superseded.
    #[allow(clippy::too_many_arguments, reason = "one switch, described in full")]
    async fn switch(
        &self,
        kind: LakeKind,
        source: &str,
        label: &str,
        scope: &str,
        rows: i64,
        staged: &[Staged],
        switches: Vec<PartitionSwitch>,
        retire_legacy: bool,
    ) -> Result<LakeCommitted> {
        // 1. Write the new files.
        let mut published: Vec<&Staged> = Vec::new();
        for s in staged {
            if let Err(e) = self.objects.publish(&s.local, &s.rel).await {
                for p in &published {
                    let _ = self.objects.delete(&p.rel).await;
                }
                return Err(e);
            }
            published.push(s);
        }
        if let Some(pause) = self.faults.pause_before_switch {
            tracing::warn!(?pause, "pausing between writing the files and switching the catalog (a test of crash safety)");
            tokio::time::sleep(pause).await;
        }
        // 2. Switch the catalog in one transaction.
        let files: Vec<tally_storage::NewLakeFile> =
            staged.iter().map(|s| tally_storage::NewLakeFile { month: s.month, path: s.rel.clone(), rows: s.rows, bytes: s.bytes }).collect();
        let commit = LakeCommit { kind, source, label, scope, rows, partitions: &switches, files: &files, retire_legacy, at: Utc::now() };
        let committed = match self.catalog.lake_commit(commit).await {
            Ok(c) => c,
            Err(e) => {
                for s in staged {
                    let _ = self.objects.delete(&s.rel).await;
                }
                return Err(e.into());
            }
        };
        // 3. Delete the files the switch superseded (a sweep finishes what fails here).
        self.delete_superseded(&committed.superseded).await;
        Ok(committed)
    }

    async fn delete_superseded(&self, files: &[LakeFile]) -> usize {
        let mut gone = Vec::new();
        for f in files {
            match self.objects.delete(&f.path).await {
                Ok(()) => gone.push(f.id),
                Err(e) => tracing::warn!(file = %f.path, error = %e, "a superseded file stays until the next sweep"),
            }
        }
        if let Err(e) = self.catalog.lake_forget(&gone).await {
            tracing::warn!(error = %e, "deleted files stay in the catalog until the next sweep");
        }
        gone.len()
    }

    // --- reading ---

    /// The current files of `source`'s billing month, readable locally.
    pub async fn billing(&self, source: &str, month: Month) -> Result<Snapshot> {
        let files = self.catalog.lake_files(LakeKind::Billing, Some(source), month, month).await?;
        self.snapshot(files).await
    }

    /// The current usage files of every source for the months that overlap `[from, to)`.
    pub async fn usage(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Snapshot> {
        let (first, last) = (
            Month::checked_of(from).map_err(|e| LakeError::Invalid(e.to_string()))?,
            Month::checked_of(to - chrono::Duration::milliseconds(1)).map_err(|e| LakeError::Invalid(e.to_string()))?,
        );
        let files = self.catalog.lake_files(LakeKind::Usage, None, first, last).await?;
        self.snapshot(files).await
    }

    async fn snapshot(&self, files: Vec<LakeFile>) -> Result<Snapshot> {
        let mut paths = Vec::with_capacity(files.len());
        for f in &files {
            paths.push(self.objects.localise(&f.path).await?);
        }
        Ok(Snapshot { files, paths })
    }

    /// Billing sources holding lines for `month`, with their line counts.
    pub async fn billing_sources(&self, month: Month) -> Result<Vec<(CostSource, i64)>> {
        Ok(self
            .catalog
            .lake_partitions(LakeKind::Billing)
            .await?
            .into_iter()
            .filter(|p| p.month == month && p.rows > 0)
            .filter_map(|p| p.source.parse().ok().map(|s| (s, p.rows)))
            .collect())
    }

    /// Months holding any billing line.
    pub async fn billing_months(&self) -> Result<Vec<Month>> {
        let months: BTreeSet<Month> = self.catalog.lake_partitions(LakeKind::Billing).await?.into_iter().filter(|p| p.rows > 0).map(|p| p.month).collect();
        Ok(months.into_iter().collect())
    }

    /// `source`'s billing lines of `month` as domain values (small months, tests).
    pub async fn lines(&self, source: CostSource, month: Month) -> Result<Vec<CostLine>> {
        let snap = self.billing(source.as_str(), month).await?;
        blocking(move || {
            let df = run(scan_files(LakeKind::Billing, &snap.paths)?).map_err(|e| crate::scan::diagnose(&snap.paths, e))?;
            Ok(crate::schema::lines_of(&df, source)?)
        })
        .await
    }

    /// Hands `source`'s lines of `month` to `f` in batches of about `rows`,
    /// in file order, on a blocking thread: a month of any size streams
    /// through in bounded memory. Returns the number of lines.
    pub async fn each_line_batch<F>(&self, source: CostSource, month: Month, rows: usize, mut f: F) -> Result<usize>
    where
        F: FnMut(Vec<CostLine>) -> std::result::Result<(), String> + Send + 'static,
    {
        let snap = self.billing(source.as_str(), month).await?;
        blocking(move || {
            let mut n = 0;
            let batches =
                scan_files(LakeKind::Billing, &snap.paths)?.collect_batches(Engine::Streaming, true, std::num::NonZeroUsize::new(rows.max(1)), false)?;
            for batch in batches {
                let batch = batch.map_err(|e| crate::scan::diagnose(&snap.paths, e))?;
                let lines = crate::schema::lines_of(&batch, source)?;
                n += lines.len();
                f(lines).map_err(LakeError::Store)?;
            }
            Ok(n)
        })
        .await
    }

    /// Usage samples of every source with `from <= hour < to` (tests).
    pub async fn samples(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageSample>> {
        let snap = self.usage(from, to).await?;
        blocking(move || {
            let lf = scan_files(LakeKind::Usage, &snap.paths)?
                .filter(col("hour").gt_eq(lit(from.timestamp_millis()).cast(crate::schema::time_type())))
                .filter(col("hour").lt(lit(to.timestamp_millis()).cast(crate::schema::time_type())))
                .sort(["hour", "tenant", "metric", "resource_id", "workload"], SortMultipleOptions::default().with_nulls_last(true));
            let df = run(lf).map_err(|e| crate::scan::diagnose(&snap.paths, e))?;
            Ok(crate::schema::usage_of(&df)?)
        })
        .await
    }

    /// The billing lines of `services` starting in `[from, to)`, from the
    /// given source of each month, summed per hour and kind of usage (what
    /// the savings projection reads: it adds instance-hours, so summing the
    /// lines of one hour, type and commitment changes none of its figures).
    pub async fn summed_lines(&self, months: &[(CostSource, Month)], from: DateTime<Utc>, to: DateTime<Utc>, services: &[String]) -> Result<Vec<CostLine>> {
        let mut by_source: BTreeMap<CostSource, Vec<PathBuf>> = BTreeMap::new();
        for (source, month) in months {
            by_source.entry(*source).or_default().extend(self.billing(source.as_str(), *month).await?.paths);
        }
        let services = services.to_vec();
        blocking(move || {
            let mut out = Vec::new();
            for (source, paths) in by_source {
                let t = |ms: i64| lit(ms).cast(crate::schema::time_type());
                let keys = [
                    "usage_start",
                    "usage_end",
                    "billing_month",
                    "service",
                    "usage_type",
                    "operation",
                    "region",
                    "line_type",
                    "currency",
                    "instance_type",
                    "commitment_id",
                ];
                let mut lf = scan_files(LakeKind::Billing, &paths)?
                    .filter(col("usage_start").gt_eq(t(from.timestamp_millis())).and(col("usage_start").lt(t(to.timestamp_millis()))));
                if !services.is_empty() {
                    lf = lf.filter(col("service").is_in(lit(Series::new("s".into(), services.clone())).implode(false), false));
                }
                let summed = lf
                    .group_by(keys.iter().map(|k| col(*k)).collect::<Vec<_>>())
                    .agg([col("unblended").sum(), col("net_unblended").sum(), col("amortized").sum(), col("usage_amount").sum()])
                    .with_columns([
                        lit("").alias("payer_account"),
                        lit("").alias("usage_account"),
                        lit(NULL).cast(DataType::String).alias("resource_id"),
                        lit(NULL).cast(DataType::String).alias("availability_zone"),
                        lit(NULL).cast(DataType::String).alias("description"),
                        lit(NULL).cast(crate::decimal::money_type()).alias("list_cost"),
                        lit(NULL).cast(DataType::String).alias("usage_unit"),
                        lit(NULL).cast(crate::schema::tags_type()).alias("tags"),
                        lit(NULL).cast(DataType::String).alias("tenant"),
                        lit(false).alias("estimated"),
                        lit(NULL).cast(DataType::String).alias("provider"),
                    ])
                    .sort(keys, SortMultipleOptions::default().with_nulls_last(true));
                let df = run(crate::schema::conform_billing(summed)).map_err(|e| crate::scan::diagnose(&paths, e))?;
                out.extend(crate::schema::lines_of(&df, source)?);
            }
            Ok(out)
        })
        .await
    }

    // --- upkeep ---

    /// Deletes superseded files, files no import finished (older than
    /// `grace`, so that an import in progress elsewhere is left alone), and
    /// cached copies of files no longer in the store.
    pub async fn sweep(&self, grace: Duration) -> Result<Swept> {
        let mut swept = Swept { superseded: self.delete_superseded(&self.catalog.lake_superseded().await?).await, ..Swept::default() };
        let known: BTreeSet<String> = self.catalog.lake_paths().await?.into_iter().collect();
        let cutoff = Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::hours(1));
        for obj in self.objects.list().await? {
            if !known.contains(&obj.rel) && obj.modified < cutoff {
                self.objects.delete(&obj.rel).await?;
                tracing::info!(file = %obj.rel, "deleted a file no import finished");
                swept.orphans += 1;
            }
        }
        if let Ok(mut entries) = tokio::fs::read_dir(&self.staging).await {
            while let Ok(Some(e)) = entries.next_entry().await {
                let old = e.metadata().await.ok().and_then(|m| m.modified().ok()).is_some_and(|t| DateTime::<Utc>::from(t) < cutoff);
                if old && tokio::fs::remove_file(e.path()).await.is_ok() {
                    swept.orphans += 1;
                }
            }
        }
        swept.cached = self.objects.prune_cache(&known).await;
        Ok(swept)
    }

    /// Moves billing lines and usage samples that earlier versions kept in
    /// SQL into the store, one partition at a time: each partition's files
    /// are written, then one transaction names them and deletes its SQL
    /// rows, so that a crash at any point loses nothing and running it
    /// again finishes the job.
    pub async fn move_legacy(&self) -> Result<LegacyMoved> {
        let mut moved = LegacyMoved::default();
        for p in self.catalog.legacy_partitions().await? {
            let frame = match p.kind {
                LakeKind::Billing => {
                    let lines = self.catalog.legacy_cost_lines(&p.source, p.month).await?;
                    moved.billing_lines += lines.len() as i64;
                    blocking(move || Ok(lines_frame(&lines)?)).await?
                }
                LakeKind::Usage => {
                    let samples = self.catalog.legacy_usage(&p.source, p.month).await?;
                    moved.usage_samples += samples.len() as i64;
                    blocking(move || Ok(usage_frame(&samples)?)).await?
                }
            };
            let (staging, src, kind) = (self.staging.clone(), p.source.clone(), p.kind);
            let staged = blocking(move || {
                let mut parts = Parts::new(&staging, kind, &src).map_err(|e| LakeError::Store(format!("{}: {e}", staging.display())))?;
                parts.write(p.month, &frame)?;
                Ok(parts.finish()?)
            })
            .await?;
            // Some(0): the partition must not be in the store yet; it never is, since this runs before any import.
            let switches = switches_of(&staged, &[p.month], |_| Some(0));
            let label = format!("rows kept in SQL by an earlier version ({} {} {})", p.kind, p.source, p.month);
            let done = self.switch(p.kind, &p.source, &label, &format!("months {}", p.month), p.rows, &staged, switches, true).await;
            remove_local(&staged);
            done?;
            moved.partitions += 1;
        }
        Ok(moved)
    }
}

/// Deletes staged files once their copies are in the store (or the import failed).
fn remove_local(staged: &[Staged]) {
    for s in staged.iter().filter(|s| !s.rel.is_empty()) {
        let _ = std::fs::remove_file(&s.local);
    }
}

/// Adds a billing frame's lines and sums to the per-month totals.
fn add_totals(df: &DataFrame, totals: &mut BTreeMap<Month, (usize, i128, i128)>) -> PolarsResult<()> {
    let months = df.column("billing_month")?.str()?;
    let u = df.column("unblended")?.decimal()?.physical();
    let a = df.column("amortized")?.decimal()?.physical();
    let mut cache: BTreeMap<&str, Month> = BTreeMap::new();
    for i in 0..df.height() {
        let m = months.get(i).unwrap_or_default();
        let month = match cache.get(m) {
            Some(x) => *x,
            None => {
                let x = Month::parse(m).map_err(|e| polars_err!(ComputeError: "{e}"))?;
                cache.insert(m, x);
                x
            }
        };
        let t = totals.entry(month).or_default();
        t.0 += 1;
        t.1 += u.get(i).unwrap_or(0);
        t.2 += a.get(i).unwrap_or(0);
    }
    Ok(())
}

/// The partition switches for staged files of `months` (a month without
/// files switches to an empty snapshot).
fn switches_of(staged: &[Staged], months: &[Month], expected: impl Fn(Month) -> Option<i64>) -> Vec<PartitionSwitch> {
    months
        .iter()
        .map(|m| {
            let files: Vec<&Staged> = staged.iter().filter(|s| s.month == *m).collect();
            PartitionSwitch {
                month: *m,
                expected_version: expected(*m),
                rows: files.iter().map(|s| s.rows).sum(),
                first_at: ms(files.iter().filter_map(|s| s.first_ms).min()),
                last_at: ms(files.iter().filter_map(|s| s.last_ms).max()),
            }
        })
        .collect()
}
