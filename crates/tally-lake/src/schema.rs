//! The lake's two tables, as every file in it holds them: normalised
//! billing lines and hourly usage samples. Readers of every input format
//! produce these columns; the allocation, the savings projection and the
//! exports read them.
//!
//! Billing files live under `billing/source=<source>/month=<YYYY-MM>/`, usage
//! files under `usage/source=<source>/month=<YYYY-MM>/` (the month of the
//! sample's hour); the folders carry the source and month, the files the rest.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone as _, Utc};
use polars::prelude::*;
use tally_domain::{CostLine, CostSource, Currency, LineType, Metric, Month, Period, TenantId, UsageSample};

use polars_arrow::array::Array;

use crate::decimal::{decimal_of, money_type, units_of};

/// The billing columns, in file order.
pub const BILLING: [&str; 26] = [
    "usage_start",
    "usage_end",
    "billing_month",
    "payer_account",
    "usage_account",
    "service",
    "usage_type",
    "operation",
    "resource_id",
    "region",
    "availability_zone",
    "line_type",
    "description",
    "currency",
    "unblended",
    "net_unblended",
    "amortized",
    "list_cost",
    "usage_amount",
    "usage_unit",
    "instance_type",
    "commitment_id",
    "tags",
    "tenant",
    "estimated",
    "provider",
];

/// The money columns of a billing line (`DECIMAL(38, 18)`).
pub const MONEY: [&str; 5] = ["unblended", "net_unblended", "amortized", "list_cost", "usage_amount"];

/// The usage columns, in file order.
pub const USAGE: [&str; 7] = ["hour", "tenant", "metric", "value", "unit", "resource_id", "workload"];

/// Instants: milliseconds, UTC.
pub fn time_type() -> DataType {
    DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC))
}

/// Tags: a list of `{key, value}` pairs, as Parquet readers present a MAP.
pub fn tags_type() -> DataType {
    DataType::List(Box::new(DataType::Struct(vec![Field::new("key".into(), DataType::String), Field::new("value".into(), DataType::String)])))
}

/// The type of each billing column.
pub fn billing_type(column: &str) -> DataType {
    match column {
        "usage_start" | "usage_end" => time_type(),
        c if MONEY.contains(&c) => money_type(),
        "tags" => tags_type(),
        "estimated" => DataType::Boolean,
        _ => DataType::String,
    }
}

/// The type of each usage column.
pub fn usage_type(column: &str) -> DataType {
    match column {
        "hour" => time_type(),
        "value" => DataType::Float64,
        _ => DataType::String,
    }
}

/// Selects the billing columns in file order with their lake types.
pub fn conform_billing(lf: LazyFrame) -> LazyFrame {
    lf.select(BILLING.iter().map(|c| col(*c).cast(billing_type(c))).collect::<Vec<_>>())
}

/// Selects the usage columns in file order with their lake types.
pub fn conform_usage(lf: LazyFrame) -> LazyFrame {
    lf.select(USAGE.iter().map(|c| col(*c).cast(usage_type(c))).collect::<Vec<_>>())
}

fn times(name: &str, values: impl Iterator<Item = Option<i64>>) -> Column {
    Int64Chunked::from_iter_options(name.into(), values).into_datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)).into_series().into()
}

fn money(name: &str, values: impl Iterator<Item = Option<rust_decimal::Decimal>>) -> PolarsResult<Column> {
    let units: Vec<Option<i128>> =
        values.map(|v| v.map(|d| units_of(d).map_err(|e| polars_err!(ComputeError: "{name}: {e}"))).transpose()).collect::<PolarsResult<_>>()?;
    Ok(Int128Chunked::from_iter_options(name.into(), units.into_iter())
        .into_decimal(crate::decimal::PRECISION, crate::decimal::SCALE as usize)?
        .into_series()
        .into())
}

fn texts<'a>(name: &str, values: impl Iterator<Item = Option<&'a str>>) -> Column {
    StringChunked::from_iter_options(name.into(), values).into_series().into()
}

/// A tags column from one map per row (an empty map is an empty list).
pub fn tags_column(name: &str, rows: &[&BTreeMap<String, String>]) -> PolarsResult<Column> {
    let triples: Vec<(IdxSize, &str, &str)> =
        rows.iter().enumerate().flat_map(|(i, tags)| tags.iter().map(move |(k, v)| (i as IdxSize, k.as_str(), v.as_str()))).collect();
    Ok(tags_from_triples(rows.len(), &triples)?.with_name(name.into()).into())
}

/// A tags column from `(row, key, value)` triples of `rows` rows; rows
/// without a triple have no tags (null).
pub fn tags_from_triples(rows: usize, triples: &[(IdxSize, &str, &str)]) -> PolarsResult<Series> {
    let flat = df!(
        "__row" => triples.iter().map(|t| t.0).collect::<Vec<_>>(),
        "key" => triples.iter().map(|t| t.1).collect::<Vec<_>>(),
        "value" => triples.iter().map(|t| t.2).collect::<Vec<_>>(),
    )?;
    let grouped = flat.lazy().group_by([col("__row")]).agg([as_struct(vec![col("key"), col("value")]).alias("tags")]);
    let all = df!("__row" => (0..rows as IdxSize).collect::<Vec<_>>())?;
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    let joined = all.lazy().join(grouped, [col("__row")], [col("__row")], args).select([col("tags").cast(tags_type())]).collect()?;
    Ok(joined.column("tags")?.as_materialized_series().clone())
}

/// Billing lines as a lake frame.
pub fn lines_frame(lines: &[CostLine]) -> PolarsResult<DataFrame> {
    let ms = |t: DateTime<Utc>| Some(t.timestamp_millis());
    let tags: Vec<&BTreeMap<String, String>> = lines.iter().map(|l| &l.tags).collect();
    let months: Vec<String> = lines.iter().map(|l| l.billing_month.to_string()).collect();
    DataFrame::new_infer_height(vec![
        times("usage_start", lines.iter().map(|l| ms(l.usage_start))),
        times("usage_end", lines.iter().map(|l| ms(l.usage_end))),
        texts("billing_month", months.iter().map(|m| Some(m.as_str()))),
        texts("payer_account", lines.iter().map(|l| Some(l.payer_account.as_str()))),
        texts("usage_account", lines.iter().map(|l| Some(l.usage_account.as_str()))),
        texts("service", lines.iter().map(|l| Some(l.service.as_str()))),
        texts("usage_type", lines.iter().map(|l| Some(l.usage_type.as_str()))),
        texts("operation", lines.iter().map(|l| Some(l.operation.as_str()))),
        texts("resource_id", lines.iter().map(|l| l.resource_id.as_deref())),
        texts("region", lines.iter().map(|l| l.region.as_deref())),
        texts("availability_zone", lines.iter().map(|l| l.availability_zone.as_deref())),
        texts("line_type", lines.iter().map(|l| Some(l.line_type.as_str()))),
        texts("description", lines.iter().map(|l| l.description.as_deref())),
        texts("currency", lines.iter().map(|l| Some(l.currency.code()))),
        money("unblended", lines.iter().map(|l| Some(l.unblended)))?,
        money("net_unblended", lines.iter().map(|l| Some(l.net_unblended)))?,
        money("amortized", lines.iter().map(|l| Some(l.amortized)))?,
        money("list_cost", lines.iter().map(|l| l.list_cost))?,
        money("usage_amount", lines.iter().map(|l| Some(l.usage_amount)))?,
        texts("usage_unit", lines.iter().map(|l| l.usage_unit.as_deref())),
        texts("instance_type", lines.iter().map(|l| l.instance_type.as_deref())),
        texts("commitment_id", lines.iter().map(|l| l.commitment_id.as_deref())),
        tags_column("tags", &tags)?,
        texts("tenant", lines.iter().map(|l| l.tenant.as_ref().map(TenantId::as_str))),
        BooleanChunked::from_iter_values("estimated".into(), lines.iter().map(|l| l.estimated)).into_series().into(),
        texts("provider", lines.iter().map(|l| l.provider.as_deref())),
    ])
}

/// Usage samples as a lake frame.
pub fn usage_frame(samples: &[UsageSample]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        times("hour", samples.iter().map(|s| Some(s.hour.start().timestamp_millis()))),
        texts("tenant", samples.iter().map(|s| Some(s.tenant.as_str()))),
        texts("metric", samples.iter().map(|s| Some(s.metric.as_str()))),
        Float64Chunked::from_iter_values("value".into(), samples.iter().map(|s| s.value)).into_series().into(),
        texts("unit", samples.iter().map(|s| s.unit.as_deref())),
        texts("resource_id", samples.iter().map(|s| s.resource_id.as_deref())),
        texts("workload", samples.iter().map(|s| s.workload.as_deref())),
    ])
}

/// Typed access to a lake frame's columns.
struct Cols<'a> {
    df: &'a DataFrame,
}

impl<'a> Cols<'a> {
    fn text(&self, name: &str) -> PolarsResult<&'a StringChunked> {
        self.df.column(name)?.str()
    }

    fn millis(&self, name: &str) -> PolarsResult<&'a Int64Chunked> {
        Ok(self.df.column(name)?.datetime()?.physical())
    }

    fn money(&self, name: &str) -> PolarsResult<&'a Int128Chunked> {
        Ok(self.df.column(name)?.decimal()?.physical())
    }
}

fn instant(ms: Option<i64>, what: &str) -> PolarsResult<DateTime<Utc>> {
    ms.and_then(|v| Utc.timestamp_millis_opt(v).single()).ok_or_else(|| polars_err!(ComputeError: "a lake file has no valid {what}"))
}

fn parsed<T>(value: Option<&str>, what: &str, parse: impl Fn(&str) -> Result<T, tally_domain::ValidationError>) -> PolarsResult<T> {
    let v = value.ok_or_else(|| polars_err!(ComputeError: "a lake file has no {what}"))?;
    parse(v).map_err(|e| polars_err!(ComputeError: "a lake file holds an invalid {what}: {e}"))
}

/// The tags of every row of a tags column.
pub fn tags_of(column: &Column) -> PolarsResult<Vec<BTreeMap<String, String>>> {
    let list = column.list()?;
    let mut out = Vec::with_capacity(list.len());
    for arr in list.downcast_iter() {
        let offsets = arr.offsets();
        let entries = arr
            .values()
            .as_any()
            .downcast_ref::<polars_arrow::array::StructArray>()
            .ok_or_else(|| polars_err!(ComputeError: "the tags column is not a list of key/value pairs"))?;
        let field = |i: usize| {
            entries.values()[i]
                .as_any()
                .downcast_ref::<polars_arrow::array::Utf8ViewArray>()
                .cloned()
                .ok_or_else(|| polars_err!(ComputeError: "the tags column's keys and values are not text"))
        };
        let (keys, values) = (field(0)?, field(1)?);
        for i in 0..arr.len() {
            let mut tags = BTreeMap::new();
            if arr.is_valid(i) {
                let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
                for j in start..end {
                    if let (Some(k), Some(v)) = (keys.get(j), values.get(j)) {
                        tags.insert(k.to_owned(), v.to_owned());
                    }
                }
            }
            out.push(tags);
        }
    }
    Ok(out)
}

/// A lake frame's billing lines as domain values, with their source.
pub fn lines_of(df: &DataFrame, source: CostSource) -> PolarsResult<Vec<CostLine>> {
    let c = Cols { df };
    let (start, end) = (c.millis("usage_start")?, c.millis("usage_end")?);
    let [
        month,
        payer,
        account,
        service,
        usage_type,
        operation,
        resource,
        region,
        az,
        line_type,
        description,
        currency,
        unit,
        itype,
        commitment,
        tenant,
        provider,
    ] = [
        "billing_month",
        "payer_account",
        "usage_account",
        "service",
        "usage_type",
        "operation",
        "resource_id",
        "region",
        "availability_zone",
        "line_type",
        "description",
        "currency",
        "usage_unit",
        "instance_type",
        "commitment_id",
        "tenant",
        "provider",
    ]
    .map(|n| c.text(n));
    let (month, payer, account, service, usage_type, operation, resource, region, az) =
        (month?, payer?, account?, service?, usage_type?, operation?, resource?, region?, az?);
    let (line_type, description, currency, unit, itype, commitment, tenant, provider) =
        (line_type?, description?, currency?, unit?, itype?, commitment?, tenant?, provider?);
    let [unblended, net, amortized, list, amount] = MONEY.map(|n| c.money(n));
    let (unblended, net, amortized, list, amount) = (unblended?, net?, amortized?, list?, amount?);
    let estimated = df.column("estimated")?.bool()?;
    let tags = tags_of(df.column("tags")?)?;
    let owned = |ca: &StringChunked, i: usize| ca.get(i).map(str::to_owned);
    let mut out = Vec::with_capacity(df.height());
    for (i, tags) in tags.into_iter().enumerate() {
        out.push(CostLine {
            usage_start: instant(start.get(i), "usage start")?,
            usage_end: instant(end.get(i), "usage end")?,
            billing_month: parsed(month.get(i), "billing month", Month::parse)?,
            payer_account: payer.get(i).unwrap_or_default().to_owned(),
            usage_account: account.get(i).unwrap_or_default().to_owned(),
            service: service.get(i).unwrap_or_default().to_owned(),
            usage_type: usage_type.get(i).unwrap_or_default().to_owned(),
            operation: operation.get(i).unwrap_or_default().to_owned(),
            resource_id: owned(resource, i),
            region: owned(region, i),
            availability_zone: owned(az, i),
            line_type: parsed(line_type.get(i), "line type", str::parse::<LineType>)?,
            description: owned(description, i),
            currency: parsed(currency.get(i), "currency", Currency::parse)?,
            unblended: decimal_of(unblended.get(i).unwrap_or(0)),
            net_unblended: decimal_of(net.get(i).unwrap_or(0)),
            amortized: decimal_of(amortized.get(i).unwrap_or(0)),
            list_cost: list.get(i).map(decimal_of),
            usage_amount: decimal_of(amount.get(i).unwrap_or(0)),
            usage_unit: owned(unit, i),
            instance_type: owned(itype, i),
            commitment_id: owned(commitment, i),
            tags,
            tenant: tenant.get(i).map(|t| parsed(Some(t), "tenant", TenantId::parse)).transpose()?,
            estimated: estimated.get(i).unwrap_or(false),
            source,
            provider: owned(provider, i),
        });
    }
    Ok(out)
}

/// A lake frame's usage samples as domain values.
pub fn usage_of(df: &DataFrame) -> PolarsResult<Vec<UsageSample>> {
    let c = Cols { df };
    let hour = c.millis("hour")?;
    let (tenant, metric, unit, resource, workload) = (c.text("tenant")?, c.text("metric")?, c.text("unit")?, c.text("resource_id")?, c.text("workload")?);
    let value = df.column("value")?.f64()?;
    (0..df.height())
        .map(|i| {
            let h = instant(hour.get(i), "hour")?;
            let m = parsed(metric.get(i), "metric", Metric::parse)?;
            Ok(UsageSample {
                hour: Period::hour(h).map_err(|e| polars_err!(ComputeError: "a lake file holds an invalid hour: {e}"))?,
                tenant: parsed(tenant.get(i), "tenant", TenantId::parse)?,
                value: value.get(i).unwrap_or(0.0),
                unit: unit.get(i).map(str::to_owned).or_else(|| m.canonical_unit().map(str::to_owned)),
                resource_id: resource.get(i).map(str::to_owned),
                workload: workload.get(i).map(str::to_owned),
                metric: m,
            })
        })
        .collect()
}
