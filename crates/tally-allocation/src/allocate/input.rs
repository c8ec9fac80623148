//! The pipeline's two inputs, taken from the lake's columns ([`tally_lake::schema`]):
//! whether the lines come from the store's files or, in tests, from domain
//! values, they pass through the same projection.
//!
//! Lines: `start_ms, end_ms, service, usage_type, line_type, resource_id,
//! instance_type, tenant, unblended, amortized`.
//! Usage: `hour_ms, tenant, metric, value, resource_id, workload`.

use polars::prelude::*;

/// The pipeline's lines from lake billing lines (money as floats from here on).
pub(crate) fn lines(lake: LazyFrame) -> LazyFrame {
    lake.select([
        col("usage_start").dt().timestamp(TimeUnit::Milliseconds).alias("start_ms"),
        col("usage_end").dt().timestamp(TimeUnit::Milliseconds).alias("end_ms"),
        col("service"),
        col("usage_type"),
        col("line_type"),
        col("resource_id"),
        col("instance_type"),
        col("tenant"),
        col("unblended").cast(DataType::Float64),
        col("amortized").cast(DataType::Float64),
    ])
}

/// The pipeline's usage from lake usage samples with `from_ms <= hour < to_ms`.
pub(crate) fn usage(lake: LazyFrame, from_ms: i64, to_ms: i64) -> LazyFrame {
    let hour = col("hour").dt().timestamp(TimeUnit::Milliseconds);
    lake.filter(hour.clone().gt_eq(lit(from_ms)).and(hour.clone().lt(lit(to_ms)))).select([
        hour.alias("hour_ms"),
        col("tenant"),
        col("metric"),
        col("value"),
        col("resource_id"),
        col("workload"),
    ])
}
