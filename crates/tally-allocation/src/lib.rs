//! The columnar pipeline: reads billing, usage and revenue files, and splits
//! every billed dollar of a month to tenants.
//!
//! Architecture invariants:
//! - This is the only crate that knows polars. Its public API speaks domain
//!   types (`CostLine`, `UsageSample`, `AllocationRow`) and plain paths.
//! - Floating point lives only inside the pipeline. Every figure that leaves
//!   it is a `Decimal` rounded to the currency's minor unit with the
//!   largest-remainder method, so the rows of a month and service add up to
//!   that month's bill for the service, exactly.
//! - The same input gives byte-identical output whatever its order: inputs
//!   are sorted before any floating-point sum and outputs are sorted.
//!
//! Entry points: [`read`] (files to domain values) and [`allocate`] (a
//! month's lines and usage to allocation rows and explanations).

pub mod allocate;
pub mod capacity;
pub mod read;

pub use allocate::{AllocationError, MonthAllocation, ServiceTotal, allocate_files, allocate_month};
pub use read::{FileLines, ReadError, ReadOptions};
