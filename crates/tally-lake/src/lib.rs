//! The columnar store ("lake"): raw billing lines and usage samples as
//! Parquet files, partitioned Hive-style by kind, source and month, under
//! the data dir or in S3; the readers that turn every input format into its
//! columns; and the protocol that makes an import atomic.
//!
//! Architecture invariants:
//! - With the allocation pipeline, the only crate that knows polars and
//!   Parquet; the only crate that reads or writes the store's files, through
//!   `object_store` (local disk or S3), never an S3 layer of its own.
//! - Money in the files is `DECIMAL(38, 18)`, never a float ([`decimal`]).
//! - SQL holds the catalog (`tally_storage::Store::lake_commit`): a file is
//!   part of the data only once an import's switch has committed. An import
//!   writes its files, switches the catalog in one transaction, then deletes
//!   the files it superseded; a crash at any step leaves the previous
//!   snapshot readable, and [`Lake::sweep`] removes what a crash left over.
//! - One reader per input format ([`read`]), and one place for CUR's
//!   line-type and effective-cost rules (`read::amortized_units`).
//!
//! Entry points: [`Lake`] (imports, snapshots, sweeping) and [`read`].

pub mod decimal;
pub mod read;
pub mod schema;

pub use read::{FileLines, ReadError, ReadOptions};
mod lake;
mod objects;
mod parts;
pub mod scan;

pub use lake::{BillingFormat, Faults, Imported, Lake, LakeError, LegacyMoved, MonthTotals, Snapshot, Swept, on_worker_thread};
