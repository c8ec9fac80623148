//! The allocation pipeline: splits every billed dollar of a month to
//! tenants, reading the month's billing lines and usage from the columnar
//! store's files (`tally-lake`) lazily with polars' streaming engine.
//!
//! Architecture invariants:
//! - With `tally-lake`, the only crate that knows polars. Its public API
//!   speaks domain types (`CostLine`, `UsageSample`, `AllocationRow`) and
//!   the store's file paths.
//! - Floating point lives only inside the pipeline. Every figure that leaves
//!   it is a `Decimal` rounded to the currency's minor unit with the
//!   largest-remainder method, so the rows of a month and service add up to
//!   that month's bill for the service, exactly.
//! - The same input gives byte-identical output whatever its order: inputs
//!   are sorted before any floating-point sum and outputs are sorted.
//!
//! Entry point: [`allocate`] (a month's lines and usage to allocation rows,
//! daily rollups and explanations).

pub mod allocate;
pub mod capacity;

pub use allocate::{AllocationError, DailyTotal, MetricTotal, MonthAllocation, ServiceTotal, allocate, allocate_month, split_totals};
