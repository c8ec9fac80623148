//! Writing a partition's new files: lake frames in, Parquet part files out,
//! one open file per month, each closed at a size that keeps files of a
//! few hundred megabytes at most. Nothing written here is part of the data
//! until the catalog switch names it.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rand::Rng;
use tally_domain::Month;
use tally_storage::LakeKind;

/// Rows per part file before a new one is opened.
const FILE_ROWS: usize = 8_000_000;

/// A finished part file, waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Staged {
    pub(crate) month: Month,
    /// Where it is now.
    pub(crate) local: PathBuf,
    /// Where it goes in the store.
    pub(crate) rel: String,
    pub(crate) rows: i64,
    pub(crate) bytes: i64,
    /// Milliseconds: the earliest start and latest end its rows cover.
    pub(crate) first_ms: Option<i64>,
    pub(crate) last_ms: Option<i64>,
}

struct Open {
    writer: polars::io::parquet::write::BatchedWriter<File>,
    local: PathBuf,
    rel: String,
    rows: usize,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
}

/// The part files of one import or merge, per month.
pub(crate) struct Parts {
    staging: PathBuf,
    kind: LakeKind,
    source: String,
    token: String,
    open: BTreeMap<Month, Open>,
    done: Vec<Staged>,
    seq: usize,
}

/// A name no other import uses: the time and 64 random bits.
fn token() -> String {
    format!("{}-{:016x}", chrono::Utc::now().format("%Y%m%dT%H%M%S%3f"), rand::rng().random::<u64>())
}

impl Parts {
    pub(crate) fn new(staging: &Path, kind: LakeKind, source: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(staging)?;
        Ok(Self { staging: staging.to_path_buf(), kind, source: source.to_owned(), token: token(), open: BTreeMap::new(), done: Vec::new(), seq: 0 })
    }

    /// The store path of a partition's folder.
    pub(crate) fn folder(kind: LakeKind, source: &str, month: Month) -> String {
        format!("{kind}/source={source}/month={month}")
    }

    fn schema(&self) -> Schema {
        match self.kind {
            LakeKind::Billing => crate::schema::BILLING.iter().map(|c| Field::new((*c).into(), crate::schema::billing_type(c))).collect(),
            LakeKind::Usage => crate::schema::USAGE.iter().map(|c| Field::new((*c).into(), crate::schema::usage_type(c))).collect(),
        }
    }

    /// Appends a lake frame whose rows all belong to `month`.
    pub(crate) fn write(&mut self, month: Month, df: &DataFrame) -> PolarsResult<()> {
        if df.height() == 0 {
            return Ok(());
        }
        let (first_ms, last_ms) = span(self.kind, df)?;
        if !self.open.contains_key(&month) {
            self.seq += 1;
            let rel = format!("{}/part-{}-{:04}.parquet", Self::folder(self.kind, &self.source, month), self.token, self.seq);
            let local = self.staging.join(format!("{}-{:04}.parquet.tmp", self.token, self.seq));
            let file = File::create(&local).map_err(|e| polars_err!(ComputeError: "creating {}: {e}", local.display()))?;
            let writer = ParquetWriter::new(file).with_compression(ParquetCompression::Snappy).batched(&self.schema())?;
            self.open.insert(month, Open { writer, local, rel, rows: 0, first_ms: None, last_ms: None });
        }
        let open = self.open.get_mut(&month).expect("opened above");
        // The writer cuts row groups by chunk: the columns' chunks must line up.
        let mut aligned = df.clone();
        aligned.align_chunks_par();
        open.writer.write_batch(&aligned)?;
        open.rows += df.height();
        open.first_ms = min_opt(open.first_ms, first_ms);
        open.last_ms = max_opt(open.last_ms, last_ms);
        if open.rows >= FILE_ROWS {
            let open = self.open.remove(&month).expect("open");
            self.done.push(close(month, open)?);
        }
        Ok(())
    }

    /// Appends a lake frame of any months, split by month.
    pub(crate) fn write_split(&mut self, df: &DataFrame) -> PolarsResult<()> {
        let months = months_of(self.kind, df)?;
        let distinct: Vec<Month> = {
            let mut m = months.clone();
            m.sort();
            m.dedup();
            m
        };
        if distinct.len() <= 1 {
            return match distinct.first() {
                Some(m) => self.write(*m, df),
                None => Ok(()),
            };
        }
        for m in distinct {
            let mask = BooleanChunked::from_iter_values("mask".into(), months.iter().map(|x| *x == m));
            self.write(m, &df.filter(&mask)?)?;
        }
        Ok(())
    }

    /// Closes every open file.
    pub(crate) fn finish(mut self) -> PolarsResult<Vec<Staged>> {
        let open = std::mem::take(&mut self.open);
        for (month, o) in open {
            self.done.push(close(month, o)?);
        }
        Ok(std::mem::take(&mut self.done))
    }

    /// Deletes every file written so far (a failed import).
    pub(crate) fn discard(mut self) {
        for (_, o) in std::mem::take(&mut self.open) {
            drop(o.writer);
            let _ = std::fs::remove_file(&o.local);
        }
        for s in std::mem::take(&mut self.done) {
            let _ = std::fs::remove_file(&s.local);
        }
    }
}

/// [`Parts`] on a thread of its own, so that encoding and compressing one
/// batch overlaps reading and converting the next.
pub(crate) struct Writer {
    tx: Option<std::sync::mpsc::SyncSender<DataFrame>>,
    handle: std::thread::JoinHandle<PolarsResult<Parts>>,
}

impl Writer {
    pub(crate) fn spawn(mut parts: Parts) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<DataFrame>(2);
        let handle = std::thread::spawn(move || {
            for df in rx {
                parts.write_split(&df)?;
            }
            Ok(parts)
        });
        Self { tx: Some(tx), handle }
    }

    /// Queues a lake frame; fails when the writer has stopped on an error.
    pub(crate) fn write(&self, df: DataFrame) -> Result<(), String> {
        self.tx.as_ref().expect("open").send(df).map_err(|_| "the writer stopped".to_owned())
    }

    fn join(mut self) -> PolarsResult<Parts> {
        drop(self.tx.take());
        self.handle.join().map_err(|_| polars_err!(ComputeError: "the writer thread panicked"))?
    }

    /// Waits for the queued frames to be written and closes the files.
    pub(crate) fn finish(self) -> PolarsResult<Vec<Staged>> {
        self.join()?.finish()
    }

    /// Deletes whatever was written.
    pub(crate) fn discard(self) {
        if let Ok(parts) = self.join() {
            parts.discard();
        }
    }
}

fn close(month: Month, o: Open) -> PolarsResult<Staged> {
    o.writer.finish()?;
    let bytes = std::fs::metadata(&o.local).map(|m| m.len() as i64).map_err(|e| polars_err!(ComputeError: "{}: {e}", o.local.display()))?;
    Ok(Staged { month, local: o.local, rel: o.rel, rows: o.rows as i64, bytes, first_ms: o.first_ms, last_ms: o.last_ms })
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// The earliest start and latest end a lake frame's rows cover, in milliseconds.
fn span(kind: LakeKind, df: &DataFrame) -> PolarsResult<(Option<i64>, Option<i64>)> {
    Ok(match kind {
        LakeKind::Billing => {
            let s = df.column("usage_start")?.datetime()?.physical().min();
            let e = df.column("usage_end")?.datetime()?.physical().max();
            (s, e)
        }
        LakeKind::Usage => {
            let h = df.column("hour")?.datetime()?.physical();
            (h.min(), h.max().map(|m| m + 3_600_000))
        }
    })
}

/// The partition month of every row: the billing month of a line, the
/// month of a sample's hour.
fn months_of(kind: LakeKind, df: &DataFrame) -> PolarsResult<Vec<Month>> {
    match kind {
        LakeKind::Billing => {
            let ca = df.column("billing_month")?.str()?;
            let mut cache: BTreeMap<&str, Month> = BTreeMap::new();
            ca.iter()
                .map(|m| {
                    let m = m.unwrap_or_default();
                    if let Some(x) = cache.get(m) {
                        return Ok(*x);
                    }
                    let x = Month::parse(m).map_err(|e| polars_err!(ComputeError: "{e}"))?;
                    cache.insert(m, x);
                    Ok(x)
                })
                .collect()
        }
        LakeKind::Usage => {
            let h = df.column("hour")?.datetime()?.physical();
            h.iter()
                .map(|ms| {
                    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms.unwrap_or_default())
                        .ok_or_else(|| polars_err!(ComputeError: "an hour out of range"))?;
                    Month::checked_of(t).map_err(|e| polars_err!(ComputeError: "{e}"))
                })
                .collect()
        }
    }
}
