//! Typed, null-aware access to the columns of a collected frame, whatever
//! type the file gave them: CSV gives text, Parquet gives numbers and
//! timestamps. Empty strings and the literals `NULL` and `\N` are null.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use polars::prelude::*;
use rust_decimal::Decimal;

/// Why a cell could not be read; the caller adds the file and row.
pub(crate) type CellError = String;

pub(crate) fn is_null_text(s: &str) -> bool {
    let t = s.trim();
    t.is_empty() || t == "NULL" || t == "\\N" || t == "null"
}

/// A text column, or an absent one (all null).
pub(crate) enum TextCol<'a> {
    Str(&'a StringChunked),
    Missing,
}

impl<'a> TextCol<'a> {
    pub(crate) fn of(df: &'a DataFrame, name: &str) -> Result<Self, CellError> {
        match df.column(name) {
            Err(_) => Ok(Self::Missing),
            Ok(c) => match c.dtype() {
                DataType::String => Ok(Self::Str(c.as_materialized_series().str().map_err(|e| e.to_string())?)),
                DataType::Null => Ok(Self::Missing),
                other => Err(format!("column {name} has type {other}, expected text")),
            },
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Self::Str(c) => c.get(i).map(str::trim).filter(|s| !is_null_text(s)),
            Self::Missing => None,
        }
    }
}

/// A numeric column: floats are read through their shortest round-trip
/// decimal form (what the file's writer meant), text exactly as written.
pub(crate) enum NumCol {
    F64(Float64Chunked),
    I64(Int64Chunked),
    Str(StringChunked),
    Missing,
}

impl NumCol {
    pub(crate) fn of(df: &DataFrame, name: &str) -> Result<Self, CellError> {
        let Ok(c) = df.column(name) else { return Ok(Self::Missing) };
        let s = c.as_materialized_series();
        Ok(match s.dtype() {
            DataType::Float64 => Self::F64(s.f64().map_err(|e| e.to_string())?.clone()),
            DataType::Float32 => Self::F64(s.cast(&DataType::Float64).map_err(|e| e.to_string())?.f64().map_err(|e| e.to_string())?.clone()),
            DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8 | DataType::UInt32 | DataType::UInt16 | DataType::UInt8 => {
                Self::I64(s.cast(&DataType::Int64).map_err(|e| e.to_string())?.i64().map_err(|e| e.to_string())?.clone())
            }
            DataType::String => Self::Str(s.str().map_err(|e| e.to_string())?.clone()),
            DataType::Null => Self::Missing,
            other => return Err(format!("column {name} has type {other}, expected a number")),
        })
    }

    pub(crate) fn get(&self, i: usize) -> Result<Option<Decimal>, CellError> {
        match self {
            Self::F64(c) => c.get(i).map(decimal_from_f64).transpose(),
            Self::I64(c) => Ok(c.get(i).map(Decimal::from)),
            Self::Str(c) => match c.get(i) {
                Some(s) if !is_null_text(s) => parse_decimal(s).map(Some),
                _ => Ok(None),
            },
            Self::Missing => Ok(None),
        }
    }

    pub(crate) fn get_f64(&self, i: usize) -> Result<Option<f64>, CellError> {
        match self {
            Self::F64(c) => Ok(c.get(i)),
            Self::I64(c) => Ok(c.get(i).map(|v| v as f64)),
            Self::Str(c) => match c.get(i) {
                Some(s) if !is_null_text(s) => s.trim().parse::<f64>().map(Some).map_err(|_| format!("{s:?} is not a number")),
                _ => Ok(None),
            },
            Self::Missing => Ok(None),
        }
    }
}

/// A float as the decimal its shortest round-trip text spells.
pub fn decimal_from_f64(v: f64) -> Result<Decimal, CellError> {
    if !v.is_finite() {
        return Err(format!("{v} is not a finite number"));
    }
    let text = format!("{v}");
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        // Magnitudes beyond 28 significant digits of scale: round at 1e-20.
        .or_else(|_| Decimal::from_f64_retain(v).map(|d| d.round_dp(20)).ok_or(()))
        .map_err(|_| format!("{v} is out of range for an exact amount"))
}

pub(crate) fn parse_decimal(s: &str) -> Result<Decimal, CellError> {
    let t = s.trim();
    Decimal::from_str_exact(t).or_else(|_| Decimal::from_scientific(t)).or_else(|_| Decimal::from_str(t)).map_err(|_| format!("{s:?} is not a number"))
}

/// A timestamp column, as UTC instants.
pub(crate) enum TimeCol {
    /// Epoch values and their unit's length in nanoseconds.
    Epoch(Int64Chunked, i64),
    Date(Int32Chunked),
    Str(StringChunked),
    Missing,
}

impl TimeCol {
    pub(crate) fn of(df: &DataFrame, name: &str) -> Result<Self, CellError> {
        let Ok(c) = df.column(name) else { return Ok(Self::Missing) };
        let s = c.as_materialized_series();
        Ok(match s.dtype() {
            DataType::Datetime(unit, _) => {
                let nanos = match unit {
                    TimeUnit::Nanoseconds => 1,
                    TimeUnit::Microseconds => 1_000,
                    TimeUnit::Milliseconds => 1_000_000,
                };
                Self::Epoch(s.datetime().map_err(|e| e.to_string())?.physical().clone(), nanos)
            }
            DataType::Date => Self::Date(s.date().map_err(|e| e.to_string())?.physical().clone()),
            DataType::String => Self::Str(s.str().map_err(|e| e.to_string())?.clone()),
            DataType::Null => Self::Missing,
            other => return Err(format!("column {name} has type {other}, expected a timestamp")),
        })
    }

    pub(crate) fn get(&self, i: usize) -> Result<Option<DateTime<Utc>>, CellError> {
        match self {
            Self::Epoch(c, nanos) => Ok(c.get(i).map(|v| Utc.timestamp_nanos(v.saturating_mul(*nanos)))),
            Self::Date(c) => Ok(c.get(i).map(|d| Utc.timestamp_opt(d as i64 * 86_400, 0).single().expect("day in range"))),
            Self::Str(c) => match c.get(i) {
                Some(s) if !is_null_text(s) => parse_timestamp(s).map(Some),
                _ => Ok(None),
            },
            Self::Missing => Ok(None),
        }
    }
}

/// Parses the timestamp spellings found in CUR, FOCUS and usage files; a
/// time without a zone is UTC.
pub(crate) fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, CellError> {
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

/// A MAP<string,string> column, which Parquet readers present as a list of
/// key/value structs.
pub(crate) enum MapCol {
    List(ListChunked),
    Missing,
}

impl MapCol {
    pub(crate) fn of(df: &DataFrame, name: &str) -> Result<Self, CellError> {
        let Ok(c) = df.column(name) else { return Ok(Self::Missing) };
        let s = c.as_materialized_series();
        match s.dtype() {
            DataType::List(inner) if matches!(**inner, DataType::Struct(_)) => Ok(Self::List(s.list().map_err(|e| e.to_string())?.clone())),
            DataType::Null => Ok(Self::Missing),
            // A map written as JSON text (some exports do this).
            DataType::String => Ok(Self::Missing),
            other => Err(format!("column {name} has type {other}, expected a MAP of strings")),
        }
    }

    pub(crate) fn get(&self, i: usize) -> Result<BTreeMap<String, String>, CellError> {
        let mut out = BTreeMap::new();
        let Self::List(c) = self else { return Ok(out) };
        let Some(entries) = c.get_as_series(i) else { return Ok(out) };
        let st = entries.struct_().map_err(|e| e.to_string())?;
        let fields = st.fields_as_series();
        if fields.len() < 2 {
            return Err("a MAP entry without key and value".into());
        }
        let keys = fields[0].cast(&DataType::String).map_err(|e| e.to_string())?;
        let values = fields[1].cast(&DataType::String).map_err(|e| e.to_string())?;
        let (keys, values) = (keys.str().map_err(|e| e.to_string())?, values.str().map_err(|e| e.to_string())?);
        for j in 0..keys.len() {
            if let (Some(k), Some(v)) = (keys.get(j), values.get(j))
                && !is_null_text(v)
            {
                out.insert(k.to_owned(), v.to_owned());
            }
        }
        Ok(out)
    }
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
    fn floats_are_read_as_the_decimal_they_spell() {
        assert_eq!(decimal_from_f64(0.1).unwrap().to_string(), "0.1");
        assert_eq!(decimal_from_f64(22.3369863).unwrap().to_string(), "22.3369863");
        assert_eq!(decimal_from_f64(4.17e-11).unwrap().to_string(), "0.0000000000417");
        assert!(decimal_from_f64(f64::NAN).is_err());
    }

    #[test]
    fn timestamps_in_every_spelling_the_samples_use_are_utc() {
        for s in ["2023-11-01T00:00:00Z", "2023-11-01 00:00:00", "2023-11-01T00:00:00.000Z", "2023-11-01T01:00:00+01:00", "2023-11-01"] {
            assert_eq!(parse_timestamp(s).unwrap().to_rfc3339(), "2023-11-01T00:00:00+00:00", "{s}");
        }
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn numbers_in_text_are_parsed_exactly() {
        assert_eq!(parse_decimal("0.00000080000").unwrap().to_string(), "0.00000080000");
        assert_eq!(parse_decimal("1.5E-7").unwrap().to_string(), "0.00000015");
        assert!(parse_decimal("12,5").is_err());
    }
}
