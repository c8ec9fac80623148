//! The pipeline's two canonical inputs, built from domain values (the
//! product path) or scanned straight from CUR 2.0 and usage Parquet files
//! (the benchmark path, where millions of lines never become Rust structs).
//!
//! Lines: `start_ms, end_ms, service, usage_type, line_type, resource_id,
//! instance_type, tenant, unblended, amortized`.
//! Usage: `hour_ms, tenant, metric, value, resource_id, workload`.

use std::path::Path;

use polars::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use tally_domain::{CostLine, UsageSample};

/// Lines as a frame, sorted by every column so that the order of the input
/// cannot change a floating-point sum.
pub(crate) fn lines_frame(lines: &[CostLine]) -> PolarsResult<DataFrame> {
    let mut order: Vec<&CostLine> = lines.iter().collect();
    order.sort_by(|a, b| {
        (a.usage_start, a.usage_end, &a.service, &a.usage_type, &a.resource_id, a.line_type, &a.tenant, &a.operation)
            .cmp(&(b.usage_start, b.usage_end, &b.service, &b.usage_type, &b.resource_id, b.line_type, &b.tenant, &b.operation))
            .then(a.unblended.cmp(&b.unblended))
            .then(a.amortized.cmp(&b.amortized))
    });
    let f = |d: rust_decimal::Decimal| d.to_f64().unwrap_or(0.0);
    df!(
        "start_ms" => order.iter().map(|l| l.usage_start.timestamp_millis()).collect::<Vec<_>>(),
        "end_ms" => order.iter().map(|l| l.usage_end.timestamp_millis()).collect::<Vec<_>>(),
        "service" => order.iter().map(|l| l.service.as_str()).collect::<Vec<_>>(),
        "usage_type" => order.iter().map(|l| l.usage_type.as_str()).collect::<Vec<_>>(),
        "line_type" => order.iter().map(|l| l.line_type.as_str()).collect::<Vec<_>>(),
        "resource_id" => order.iter().map(|l| l.resource_id.as_deref()).collect::<Vec<_>>(),
        "instance_type" => order.iter().map(|l| l.instance_type.as_deref()).collect::<Vec<_>>(),
        "tenant" => order.iter().map(|l| l.tenant.as_ref().map(|t| t.as_str())).collect::<Vec<_>>(),
        "unblended" => order.iter().map(|l| f(l.unblended)).collect::<Vec<_>>(),
        "amortized" => order.iter().map(|l| f(l.amortized)).collect::<Vec<_>>(),
    )
}

/// Usage as a frame, sorted like the lines.
pub(crate) fn usage_frame(usage: &[UsageSample]) -> PolarsResult<DataFrame> {
    let mut order: Vec<&UsageSample> = usage.iter().collect();
    order.sort_by(|a, b| {
        (a.hour, &a.tenant, &a.metric, &a.resource_id, &a.workload)
            .cmp(&(b.hour, &b.tenant, &b.metric, &b.resource_id, &b.workload))
            .then(a.value.total_cmp(&b.value))
    });
    df!(
        "hour_ms" => order.iter().map(|u| u.hour.start().timestamp_millis()).collect::<Vec<_>>(),
        "tenant" => order.iter().map(|u| u.tenant.as_str()).collect::<Vec<_>>(),
        "metric" => order.iter().map(|u| u.metric.as_str()).collect::<Vec<_>>(),
        "value" => order.iter().map(|u| u.value).collect::<Vec<_>>(),
        "resource_id" => order.iter().map(|u| u.resource_id.as_deref()).collect::<Vec<_>>(),
        "workload" => order.iter().map(|u| u.workload.as_deref()).collect::<Vec<_>>(),
    )
}

fn scan_parquet(path: &Path) -> PolarsResult<LazyFrame> {
    LazyFrame::scan_parquet(PlRefPath::new(path.to_string_lossy().as_ref()), ScanArgsParquet::default())
}

/// A CUR 2.0 Parquet file as canonical lines, lazily: the same line-type
/// names and effective-cost rule as the importer, the tenant from the
/// `resource_tags` MAP column.
pub fn cur2_lines(path: &Path, tenant_tag_key: &str) -> PolarsResult<LazyFrame> {
    let raw = scan_parquet(path)?.with_row_index("__row", None);
    let f = |name: &str| col(name).cast(DataType::Float64).fill_null(lit(0.0));
    let lt = col("line_item_line_item_type");
    let kind = |cur: &str| lt.clone().eq(lit(cur.to_owned()));
    let line_type = when(kind("Usage"))
        .then(lit("usage"))
        .when(kind("DiscountedUsage"))
        .then(lit("discounted_usage"))
        .when(kind("SavingsPlanCoveredUsage"))
        .then(lit("savings_plan_covered_usage"))
        .when(kind("SavingsPlanNegation"))
        .then(lit("savings_plan_negation"))
        .when(kind("RIFee"))
        .then(lit("ri_fee"))
        .when(kind("SavingsPlanRecurringFee"))
        .then(lit("savings_plan_recurring_fee"))
        .when(kind("SavingsPlanUpfrontFee"))
        .then(lit("savings_plan_upfront_fee"))
        .when(kind("Fee"))
        .then(lit("fee"))
        .when(kind("Credit"))
        .then(lit("credit"))
        .when(kind("Refund"))
        .then(lit("refund"))
        .when(kind("Tax"))
        .then(lit("tax"))
        .otherwise(lit("other"));
    let amortized = when(kind("DiscountedUsage"))
        .then(f("reservation_effective_cost"))
        .when(kind("SavingsPlanCoveredUsage"))
        .then(f("savings_plan_savings_plan_effective_cost"))
        .when(kind("RIFee"))
        .then(f("reservation_unused_amortized_upfront_fee_for_billing_period") + f("reservation_unused_recurring_fee"))
        .when(kind("SavingsPlanRecurringFee"))
        .then(f("savings_plan_total_commitment_to_date") - f("savings_plan_used_commitment"))
        .when(kind("SavingsPlanNegation").or(kind("SavingsPlanUpfrontFee")))
        .then(lit(0.0))
        .otherwise(f("line_item_unblended_cost"));
    let wanted = tenant_tag_key.replace(':', "_");
    let tenants = raw
        .clone()
        .select([col("__row"), col("resource_tags")])
        .explode(cols(["resource_tags"]), ExplodeOptions { empty_as_null: true, keep_nulls: true })
        .filter(col("resource_tags").is_not_null())
        .select([
            col("__row"),
            col("resource_tags").struct_().field_by_name("key").alias("k"),
            col("resource_tags").struct_().field_by_name("value").alias("tenant"),
        ])
        .filter(col("k").eq(lit(wanted)).and(col("tenant").is_not_null()))
        .select([col("__row"), col("tenant")]);
    let lines = raw
        .select([
            col("__row"),
            col("line_item_usage_start_date").dt().timestamp(TimeUnit::Milliseconds).alias("start_ms"),
            col("line_item_usage_end_date").dt().timestamp(TimeUnit::Milliseconds).alias("end_ms"),
            col("line_item_product_code").alias("service"),
            col("line_item_usage_type").fill_null(lit("")).alias("usage_type"),
            line_type.alias("line_type"),
            col("line_item_resource_id").alias("resource_id"),
            col("product_instance_type").alias("instance_type"),
            f("line_item_unblended_cost").alias("unblended"),
            amortized.alias("amortized"),
        ])
        .join(tenants, [col("__row")], [col("__row")], {
            let mut args = JoinArgs::new(JoinType::Left);
            args.maintain_order = MaintainOrderJoin::Left;
            args
        })
        .select([
            col("start_ms"),
            col("end_ms"),
            col("service"),
            col("usage_type"),
            col("line_type"),
            col("resource_id"),
            col("instance_type"),
            col("tenant"),
            col("unblended"),
            col("amortized"),
        ]);
    Ok(lines)
}

/// A usage Parquet file (`timestamp, tenant, metric, value, unit,
/// resource_id, workload`) as canonical usage, lazily.
pub fn usage_parquet(path: &Path) -> PolarsResult<LazyFrame> {
    Ok(scan_parquet(path)?.select([
        col("timestamp").dt().timestamp(TimeUnit::Milliseconds).alias("hour_ms"),
        col("tenant"),
        col("metric"),
        col("value").cast(DataType::Float64),
        col("resource_id"),
        col("workload"),
    ]))
}
