//! Typed, null-aware columns of a batch, whatever type the file gave them:
//! CSV gives text, Parquet gives numbers and timestamps. Empty strings and
//! the literals `NULL` and `\N` are null. Every conversion names the first
//! cell it cannot read.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use polars::prelude::*;

use super::ReadError;
use crate::decimal::{self, FloatUnits, ONE, parse_units};

/// The row-number column every batch carries.
pub(crate) const ROW: &str = "__row";

pub(crate) fn is_null_text(s: &str) -> bool {
    // Long values with no space at either end are never null: skip the trim.
    if s.len() > 4 && !has_outer_space(s) {
        return false;
    }
    let t = s.trim();
    t.is_empty() || t == "NULL" || t == "\\N" || t == "null"
}

/// Whether text starts or ends with white space.
fn has_outer_space(s: &str) -> bool {
    s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace)
}

/// One batch of a file's rows.
pub(crate) struct Batch<'a> {
    pub(crate) df: &'a DataFrame,
    pub(crate) path: &'a Path,
    rows: &'a IdxCa,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(df: &'a DataFrame, path: &'a Path) -> Result<Self, ReadError> {
        let rows = df.column(ROW).and_then(|c| c.idx()).map_err(|e| ReadError::polars(path, e))?;
        Ok(Self { df, path, rows })
    }

    pub(crate) fn height(&self) -> usize {
        self.df.height()
    }

    /// The file's 1-based row number of the batch's `i`th row.
    pub(crate) fn row(&self, i: usize) -> usize {
        self.rows.get(i).map_or(i + 1, |r| r as usize)
    }

    pub(crate) fn cell(&self, i: usize, column: &str, message: impl Into<String>) -> ReadError {
        ReadError::cell(self.path, self.row(i), column, message)
    }

    fn column(&self, name: &str) -> Option<&'a Column> {
        self.df.column(name).ok().filter(|c| !matches!(c.dtype(), DataType::Null))
    }

    fn type_error(&self, name: &str, dtype: &DataType, expected: &str) -> ReadError {
        ReadError::column(self.path, name, format!("column {name} has type {dtype}, expected {expected}"))
    }

    /// A text column, trimmed, with null spellings as null; an absent column is all null.
    pub(crate) fn text(&self, name: &str) -> Result<StringChunked, ReadError> {
        let Some(c) = self.column(name) else { return Ok(StringChunked::full_null(name.into(), self.height())) };
        let s = match c.dtype() {
            DataType::String => c.as_materialized_series().clone(),
            d if d.is_primitive_numeric() || d.is_bool() => c.cast(&DataType::String).map_err(|e| ReadError::polars(self.path, e))?.take_materialized_series(),
            other => return Err(self.type_error(name, other, "text")),
        };
        let ca = s.str().map_err(|e| ReadError::polars(self.path, e))?;
        if ca.iter().all(|v| v.is_none_or(|t| !is_null_text(t) && !has_outer_space(t))) {
            return Ok(ca.clone().with_name(name.into()));
        }
        Ok(StringChunked::from_iter_options(name.into(), ca.iter().map(|v| v.map(str::trim).filter(|t| !is_null_text(t)))))
    }

    /// A text column that must have a value on every row.
    pub(crate) fn required_text(&self, name: &str) -> Result<StringChunked, ReadError> {
        let ca = self.text(name)?;
        let missing = ca.iter().position(|v| v.is_none());
        match missing {
            Some(i) => Err(self.cell(i, name, "missing value")),
            None => Ok(ca),
        }
    }

    /// Amounts as exact units of 10⁻¹⁸: floats by their shortest round-trip
    /// spelling, text exactly as written.
    pub(crate) fn money(&self, name: &str) -> Result<Int128Chunked, ReadError> {
        let Some(c) = self.column(name).filter(|c| c.null_count() < c.len()) else { return Ok(Int128Chunked::full_null(name.into(), self.height())) };
        let s = c.as_materialized_series();
        let bad = |i: usize, m: String| self.cell(i, name, m);
        let out: Vec<Option<i128>> = match s.dtype() {
            DataType::Float64 | DataType::Float32 => {
                let f = s.cast(&DataType::Float64).map_err(|e| ReadError::polars(self.path, e))?;
                let f = f.f64().map_err(|e| ReadError::polars(self.path, e))?;
                let mut cache = FloatUnits::default();
                f.iter().enumerate().map(|(i, v)| v.map(|v| cache.units(v).map_err(|m| bad(i, m))).transpose()).collect::<Result<_, _>>()?
            }
            d if d.is_integer() => {
                let n = s.cast(&DataType::Int64).map_err(|e| ReadError::polars(self.path, e))?;
                let n = n.i64().map_err(|e| ReadError::polars(self.path, e))?;
                n.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.map(|v| Some(i128::from(v) * ONE).filter(|u| u.abs() <= decimal::LIMIT).ok_or_else(|| bad(i, decimal::out_of_range(v)))).transpose()
                    })
                    .collect::<Result<_, _>>()?
            }
            DataType::Decimal(_, scale) => {
                let scale = *scale as u32;
                let d = s.decimal().map_err(|e| ReadError::polars(self.path, e))?;
                d.physical()
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.map(|v| {
                            let units = if scale <= decimal::SCALE {
                                v.checked_mul(10i128.pow(decimal::SCALE - scale))
                            } else {
                                let div = 10i128.pow(scale - decimal::SCALE);
                                let (q, r) = (v / div, v % div);
                                Some(if r.abs() * 2 >= div { q + v.signum() } else { q })
                            };
                            units.filter(|u| u.abs() <= decimal::LIMIT).ok_or_else(|| bad(i, decimal::out_of_range(format!("{v}e-{scale}"))))
                        })
                        .transpose()
                    })
                    .collect::<Result<_, _>>()?
            }
            DataType::String => {
                let t = s.str().map_err(|e| ReadError::polars(self.path, e))?;
                t.iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Some(v) if !is_null_text(v) => parse_units(v).map(Some).map_err(|m| bad(i, m)),
                        _ => Ok(None),
                    })
                    .collect::<Result<_, _>>()?
            }
            other => return Err(self.type_error(name, other, "a number")),
        };
        Ok(Int128Chunked::from_iter_options(name.into(), out.into_iter()))
    }

    /// [`Batch::money`] of several columns at once, on every core.
    pub(crate) fn moneys<const N: usize>(&self, names: [&str; N]) -> Result<[Int128Chunked; N], ReadError> {
        use rayon::prelude::*;
        let done: Vec<Result<Int128Chunked, ReadError>> = names.par_iter().map(|n| self.money(n)).collect();
        let done: Vec<Int128Chunked> = done.into_iter().collect::<Result<_, _>>()?;
        Ok(done.try_into().unwrap_or_else(|_| unreachable!("one result per name")))
    }

    /// Numbers as floats (usage quantities, not money).
    pub(crate) fn float(&self, name: &str) -> Result<Float64Chunked, ReadError> {
        let Some(c) = self.column(name) else { return Ok(Float64Chunked::full_null(name.into(), self.height())) };
        let s = c.as_materialized_series();
        match s.dtype() {
            d if d.is_primitive_numeric() => {
                let f = s.cast(&DataType::Float64).map_err(|e| ReadError::polars(self.path, e))?;
                Ok(f.f64().map_err(|e| ReadError::polars(self.path, e))?.clone())
            }
            DataType::Decimal(_, _) => {
                let f = s.cast(&DataType::Float64).map_err(|e| ReadError::polars(self.path, e))?;
                Ok(f.f64().map_err(|e| ReadError::polars(self.path, e))?.clone())
            }
            DataType::String => {
                let t = s.str().map_err(|e| ReadError::polars(self.path, e))?;
                let v: Vec<Option<f64>> = t
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Some(v) if !is_null_text(v) => v.trim().parse::<f64>().map(Some).map_err(|_| self.cell(i, name, format!("{v:?} is not a number"))),
                        _ => Ok(None),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Float64Chunked::from_iter_options(name.into(), v.into_iter()))
            }
            other => Err(self.type_error(name, other, "a number")),
        }
    }

    /// Instants in milliseconds since the epoch, UTC; text in any spelling
    /// [`parse_timestamp`] knows, each distinct text parsed once.
    pub(crate) fn times(&self, name: &str) -> Result<Int64Chunked, ReadError> {
        let Some(c) = self.column(name) else { return Ok(Int64Chunked::full_null(name.into(), self.height())) };
        let s = c.as_materialized_series();
        match s.dtype() {
            DataType::Datetime(unit, _) => {
                let per_ms = match unit {
                    TimeUnit::Nanoseconds => 1_000_000,
                    TimeUnit::Microseconds => 1_000,
                    TimeUnit::Milliseconds => 1,
                };
                let phys = s.datetime().map_err(|e| ReadError::polars(self.path, e))?.physical();
                Ok(if per_ms == 1 { phys.clone().with_name(name.into()) } else { phys.apply_values(|v| v.div_euclid(per_ms)) })
            }
            DataType::Date => {
                let phys = s.date().map_err(|e| ReadError::polars(self.path, e))?.physical();
                Ok(Int64Chunked::from_iter_options(name.into(), phys.iter().map(|d| d.map(|d| i64::from(d) * 86_400_000))))
            }
            DataType::String => {
                let t = s.str().map_err(|e| ReadError::polars(self.path, e))?;
                let mut cache: HashMap<&str, i64> = HashMap::new();
                let mut out = Vec::with_capacity(t.len());
                for (i, v) in t.iter().enumerate() {
                    out.push(match v {
                        Some(v) if !is_null_text(v) => Some(match cache.get(v) {
                            Some(ms) => *ms,
                            None => {
                                let ms = parse_timestamp(v).map_err(|m| self.cell(i, name, m))?.timestamp_millis();
                                cache.insert(v, ms);
                                ms
                            }
                        }),
                        _ => None,
                    });
                }
                Ok(Int64Chunked::from_iter_options(name.into(), out.into_iter()))
            }
            other => Err(self.type_error(name, other, "a timestamp")),
        }
    }

    /// Instants that must be present on every row.
    pub(crate) fn required_times(&self, name: &str) -> Result<Int64Chunked, ReadError> {
        let ca = self.times(name)?;
        let missing = ca.iter().position(|v| v.is_none());
        match missing {
            Some(i) => Err(self.cell(i, name, "missing value")),
            None => Ok(ca),
        }
    }

    /// A MAP<string, string> column as Parquet readers give it: a list of
    /// key/value structs; `None` when the file has no such column.
    pub(crate) fn map(&self, name: &str) -> Result<Option<ListChunked>, ReadError> {
        let Some(c) = self.column(name) else { return Ok(None) };
        match c.dtype() {
            DataType::List(inner) if matches!(**inner, DataType::Struct(_)) => {
                let target =
                    DataType::List(Box::new(DataType::Struct(vec![Field::new("key".into(), DataType::String), Field::new("value".into(), DataType::String)])));
                let s = c.as_materialized_series().cast(&target).map_err(|e| ReadError::column(self.path, name, format!("not a MAP of strings: {e}")))?;
                Ok(Some(s.list().map_err(|e| ReadError::polars(self.path, e))?.clone()))
            }
            // A map written as JSON text (some exports do this) carries nothing Tally reads.
            DataType::String => Ok(None),
            other => Err(self.type_error(name, other, "a MAP of strings")),
        }
    }
}

/// For each of `keys`, the value every row of a MAP column gives it (the
/// first entry with that key), without building the rows' maps.
pub(crate) fn map_values<'a>(list: &'a ListChunked, keys: &[&str]) -> Result<Vec<Vec<Option<&'a str>>>, String> {
    use polars_arrow::array::{Array, StructArray, Utf8ViewArray};
    let mut out: Vec<Vec<Option<&str>>> = keys.iter().map(|_| Vec::with_capacity(list.len())).collect();
    for arr in list.downcast_iter() {
        let offsets = arr.offsets();
        let entries = arr.values().as_any().downcast_ref::<StructArray>().ok_or("a MAP entry without key and value")?;
        if entries.values().len() < 2 {
            return Err("a MAP entry without key and value".into());
        }
        let k = entries.values()[0].as_any().downcast_ref::<Utf8ViewArray>().ok_or("MAP keys are not text")?;
        let v = entries.values()[1].as_any().downcast_ref::<Utf8ViewArray>().ok_or("MAP values are not text")?;
        for i in 0..arr.len() {
            for o in out.iter_mut() {
                o.push(None);
            }
            if !arr.is_valid(i) {
                continue;
            }
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                let Some(key) = k.get(j) else { continue };
                if let Some(slot) = keys.iter().position(|want| *want == key) {
                    let cell = out[slot].last_mut().expect("pushed above");
                    if cell.is_none() {
                        *cell = v.get(j).filter(|x| !is_null_text(x));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The key/value pairs of every row of a MAP column, as borrowed text.
pub(crate) fn map_entries(list: &ListChunked) -> Result<Vec<Vec<(&str, &str)>>, String> {
    use polars_arrow::array::{Array, StructArray, Utf8ViewArray};
    let mut out = Vec::with_capacity(list.len());
    for arr in list.downcast_iter() {
        let offsets = arr.offsets();
        let entries = arr.values().as_any().downcast_ref::<StructArray>().ok_or("a MAP entry without key and value")?;
        if entries.values().len() < 2 {
            return Err("a MAP entry without key and value".into());
        }
        let keys = entries.values()[0].as_any().downcast_ref::<Utf8ViewArray>().ok_or("MAP keys are not text")?;
        let values = entries.values()[1].as_any().downcast_ref::<Utf8ViewArray>().ok_or("MAP values are not text")?;
        for i in 0..arr.len() {
            let mut row = Vec::new();
            if arr.is_valid(i) {
                for j in offsets[i] as usize..offsets[i + 1] as usize {
                    if let (Some(k), Some(v)) = (keys.get(j), values.get(j))
                        && !is_null_text(v)
                    {
                        row.push((k, v));
                    }
                }
            }
            out.push(row);
        }
    }
    Ok(out)
}

/// Parses the timestamp spellings found in CUR, FOCUS and usage files; a
/// time without a zone is UTC.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%MZ",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(Utc.from_utc_datetime(&n));
        }
    }
    if let Ok(d) = DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%z").or_else(|_| DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%z")) {
        return Ok(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")));
    }
    Err(format!("{s:?} is not a timestamp (expected RFC 3339 such as 2026-10-01T13:00:00Z)"))
}

/// `lineItem/UnblendedCost` -> `line_item_unblended_cost`, as Athena names
/// legacy CUR columns (`reservation/ReservationARN` -> `reservation_reservation_a_r_n`).
pub(crate) fn athena_name(header: &str) -> String {
    let mut out = String::with_capacity(header.len() + 8);
    for c in header.trim().chars() {
        match c {
            '/' | ':' | ' ' | '-' | '.' => out.push('_'),
            c if c.is_ascii_uppercase() => {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            }
            c => out.push(c),
        }
    }
    let mut collapsed = String::with_capacity(out.len());
    for c in out.chars() {
        if !(c == '_' && collapsed.ends_with('_')) {
            collapsed.push(c);
        }
    }
    collapsed.trim_matches('_').to_owned()
}

/// The time an epoch millisecond value stands for.
pub(crate) fn instant(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_cur_headers_become_athena_column_names() {
        assert_eq!(athena_name("lineItem/UnblendedCost"), "line_item_unblended_cost");
        assert_eq!(athena_name("reservation/ReservationARN"), "reservation_reservation_a_r_n");
        assert_eq!(athena_name("resourceTags/user:Name"), "resource_tags_user_name");
        assert_eq!(athena_name("resourceTags/user:tenant"), "resource_tags_user_tenant");
        assert_eq!(athena_name("product/instanceType"), "product_instance_type");
        assert_eq!(athena_name("line_item_usage_start_date"), "line_item_usage_start_date");
    }

    #[test]
    fn timestamps_in_every_spelling_the_samples_use_are_utc() {
        for s in ["2023-11-01T00:00:00Z", "2023-11-01 00:00:00", "2023-11-01T00:00:00.000Z", "2023-11-01T01:00:00+01:00", "2023-11-01"] {
            assert_eq!(parse_timestamp(s).unwrap().to_rfc3339(), "2023-11-01T00:00:00+00:00", "{s}");
        }
        assert!(parse_timestamp("yesterday").is_err());
    }
}
