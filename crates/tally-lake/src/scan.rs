//! Reading the store's files lazily, and saying which file is at fault
//! when one cannot be read.

use std::path::PathBuf;

use polars::prelude::*;
use tally_storage::LakeKind;

use crate::LakeError;
use crate::schema::{BILLING, USAGE, billing_type, usage_type};

/// Collects with polars' streaming engine.
pub fn run(lf: LazyFrame) -> PolarsResult<DataFrame> {
    Ok(lf.collect_with_engine(Engine::Streaming)?.unwrap_single())
}

/// The lake frame of `kind` over `paths`, lazily; no paths is an empty frame.
pub fn scan_files(kind: LakeKind, paths: &[PathBuf]) -> PolarsResult<LazyFrame> {
    if paths.is_empty() {
        let schema: Schema = match kind {
            LakeKind::Billing => BILLING.iter().map(|c| Field::new((*c).into(), billing_type(c))).collect(),
            LakeKind::Usage => USAGE.iter().map(|c| Field::new((*c).into(), usage_type(c))).collect(),
        };
        return Ok(DataFrame::empty_with_schema(&schema).lazy());
    }
    let sources: Vec<PlRefPath> = paths.iter().map(|p| PlRefPath::new(p.to_string_lossy().as_ref())).collect();
    // The folders name the partition for other readers (DuckDB, Athena); the files hold every column Tally reads.
    let mut args = ScanArgsParquet::default();
    args.hive_options.enabled = Some(false);
    LazyFrame::scan_parquet_files(sources.into(), args)
}

/// The billing lines of `paths`, lazily.
pub fn scan_billing(paths: &[PathBuf]) -> PolarsResult<LazyFrame> {
    scan_files(LakeKind::Billing, paths)
}

/// The usage samples of `paths`, lazily.
pub fn scan_usage(paths: &[PathBuf]) -> PolarsResult<LazyFrame> {
    scan_files(LakeKind::Usage, paths)
}

/// Turns a failed read of `paths` into an error naming the file at fault,
/// when one of them is missing or not readable Parquet.
pub fn diagnose(paths: &[PathBuf], e: PolarsError) -> LakeError {
    for p in paths {
        match std::fs::File::open(p) {
            Err(io) => return LakeError::Missing(format!("{} ({io})", p.display())),
            Ok(f) => {
                if let Err(bad) = ParquetReader::new(f).num_rows() {
                    return LakeError::Corrupt(format!("{} is not readable Parquet: {bad}", p.display()));
                }
            }
        }
    }
    LakeError::Polars(e.to_string())
}
