//! Fuzzing the readers: random and mutated CUR files (legacy CSV and CUR 2.0
//! Parquet), FOCUS CSV, usage files (CSV and Parquet) and revenue CSV go
//! through the readers, which must never panic.
//!
//! A file as generated reads and reconciles: as many lines, samples or
//! entries as rows written, and the amounts read sum exactly to the amounts
//! written (usage values to within 1e-9, relative). A mutated file (a byte
//! flipped, the file cut short, a nasty string inserted, a field replaced,
//! dropped or repeated, a Parquet amount column of another type) is either
//! refused with an error that names the file and says why, or read into
//! values Tally accepts: amounts within `MAX_AMOUNT`, dates from 1970
//! through 9999.
//!
//! Each property runs 48 cases of 1 to 20 rows by default, small enough for
//! CI. A longer campaign sets the number of cases per property:
//! `PROPTEST_CASES=5000 cargo test -p tally-lake --test fuzz` (or `scripts/fuzz.sh`).

use std::any::Any;
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;
use rust_decimal::Decimal;
use tally_domain::{Currency, MAX_AMOUNT, RevenueEntry};
use tally_lake::read::{UsageFile, read_cur, read_focus, read_revenue, read_usage};
use tally_lake::{FileLines, ReadError, ReadOptions};

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 48;
/// Rows per generated file: a few are enough to reach every code path, and
/// keep each case to one small read.
const MAX_ROWS: usize = 20;
const HOURS_2026: i64 = 365 * 24;
/// Amounts are `mantissa / 10^scale` with the mantissa within ±10¹².
const MANTISSA: i64 = 1_000_000_000_000;

const CUR_HEADER: [&str; 10] = [
    "identity/LineItemId",
    "bill/BillingPeriodStartDate",
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "lineItem/ProductCode",
    "lineItem/UsageType",
    "lineItem/LineItemType",
    "lineItem/UnblendedCost",
    "lineItem/CurrencyCode",
    "resourceTags/user:tenant",
];
const FOCUS_HEADER: [&str; 9] =
    ["BilledCost", "EffectiveCost", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ServiceName", "ProviderName", "Tags"];
const USAGE_HEADER: [&str; 4] = ["timestamp", "tenant", "metric", "value"];
const REVENUE_HEADER: [&str; 4] = ["month", "tenant", "amount", "currency"];

/// (CUR product code, CUR usage type, FOCUS service name).
const SERVICES: [(&str, &str, &str); 4] = [
    ("AmazonEC2", "BoxUsage:m5.xlarge", "Amazon Elastic Compute Cloud"),
    ("AmazonS3", "TimedStorage-ByteHrs", "Amazon Simple Storage Service"),
    ("AmazonRDS", "InstanceUsage:db.r6g.large", "Amazon Relational Database Service"),
    ("AWSLambda", "Request", "AWS Lambda"),
];
/// Line types whose amortized cost is their unblended cost (no commitment columns).
const CUR_KINDS: [&str; 5] = ["Usage", "Fee", "Tax", "Credit", "Refund"];
const FOCUS_CATEGORIES: [&str; 4] = ["Usage", "Purchase", "Tax", "Credit"];
const TENANTS: [&str; 4] = ["acme", "globex", "initech", "umbrella-eu"];
const METRICS: [&str; 4] = ["egress_gb", "requests", "db_storage_gb", "cpu_request_vcpu_hours"];

/// Text that has broken parsers before: non-numbers, numbers beyond every
/// range, dates outside 1970..=9999, quoting and separators, odd Unicode.
const NASTY: &[&str] = &[
    "",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "1e-400",
    "-0",
    "-1",
    "\"",
    ",,,",
    "\n",
    " ",
    "NULL",
    "{",
    "9999999999999999999999999999",
    "79228162514264337593543950336",
    "0001-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "1969-12-31T23:00:00Z",
    "2026-02-30T00:00:00Z",
    "\u{0}",
    "é",
    "１２",
];

/// Floats a Parquet amount or usage column may hold that no bill should.
const ODD_FLOATS: &[f64] = &[f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300, -0.0, -1.0, 1e16, f64::MIN_POSITIVE, f64::MAX];

/// Cases per property: `PROPTEST_CASES` if set, else [`DEFAULT_CASES`].
/// Read here because setting `cases` overrides what
/// `ProptestConfig::default()` read from the variable.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_CASES);
    // CI runs the same cases every time (a failure there is reproducible); a longer campaign
    // sets PROPTEST_RNG_SEED (proptest reads it over this) to explore others.
    let rng_seed = std::env::var("PROPTEST_RNG_SEED").ok().and_then(|v| v.trim().parse().ok()).map_or(RngSeed::Fixed(DEFAULT_SEED), RngSeed::Fixed);
    ProptestConfig { cases, rng_seed, failure_persistence: None, ..ProptestConfig::default() }
}

/// The seed CI uses.
const DEFAULT_SEED: u64 = 20_261_204;

// ---- generated rows ----

/// One billing row, as CUR and FOCUS both write it.
#[derive(Debug, Clone)]
struct Bill {
    /// Hours since 2026-01-01T00:00:00Z; the row covers that one hour.
    hour: i64,
    service: usize,
    kind: usize,
    billed: Decimal,
    /// FOCUS's effective cost (CUR rows amortize to `billed`).
    effective: Decimal,
    tenant: Option<usize>,
}

/// One usage sample.
#[derive(Debug, Clone)]
struct Sample {
    hour: i64,
    tenant: usize,
    metric: usize,
    value: f64,
}

/// One revenue entry; `month` is a month of 2026.
#[derive(Debug, Clone)]
struct Revenue {
    month: u32,
    tenant: usize,
    amount: Decimal,
}

fn amount() -> impl Strategy<Value = Decimal> {
    (-MANTISSA..=MANTISSA, 0u32..=8).prop_map(|(m, scale)| Decimal::new(m, scale))
}

fn bills() -> impl Strategy<Value = Vec<Bill>> {
    let bill = (0..HOURS_2026, 0..SERVICES.len(), 0..CUR_KINDS.len(), amount(), amount(), prop::option::of(0..TENANTS.len()))
        .prop_map(|(hour, service, kind, billed, effective, tenant)| Bill { hour, service, kind, billed, effective, tenant });
    prop::collection::vec(bill, 1..=MAX_ROWS)
}

fn samples() -> impl Strategy<Value = Vec<Sample>> {
    let value = prop_oneof![Just(0.0), 0.0f64..1e9, (0u64..1_000_000, 0i32..6).prop_map(|(m, e)| m as f64 / 10f64.powi(e))];
    let sample = (0..HOURS_2026, 0..TENANTS.len(), 0..METRICS.len(), value).prop_map(|(hour, tenant, metric, value)| Sample { hour, tenant, metric, value });
    prop::collection::vec(sample, 1..=MAX_ROWS)
}

fn revenues() -> impl Strategy<Value = Vec<Revenue>> {
    // Revenue is never negative.
    let amount = (0..=MANTISSA, 0u32..=8).prop_map(|(m, scale)| Decimal::new(m, scale));
    let entry = (1u32..=12, 0..TENANTS.len(), amount).prop_map(|(month, tenant, amount)| Revenue { month, tenant, amount });
    // A tenant may appear once per month: later rows for a pair already taken are dropped.
    prop::collection::vec(entry, 1..=MAX_ROWS).prop_map(|rows| {
        let mut seen = BTreeSet::new();
        rows.into_iter().filter(|r| seen.insert((r.month, r.tenant))).collect::<Vec<_>>()
    })
}

fn hour_start(hour: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("2026-01-01 is a date") + Duration::hours(hour)
}

fn hour_ms(hour: i64) -> i64 {
    hour_start(hour).timestamp_millis()
}

fn month_start_ms(hour: i64) -> i64 {
    let t = hour_start(hour);
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0).single().expect("a month has a first day").timestamp_millis()
}

fn rfc3339(hour: i64) -> String {
    hour_start(hour).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

// ---- CSV files ----

/// A CSV record as raw fields: a mutation may put any bytes in one.
type Record = Vec<Vec<u8>>;

fn header(names: &[&str]) -> Record {
    names.iter().map(|n| n.as_bytes().to_vec()).collect()
}

fn record(fields: Vec<String>) -> Record {
    fields.into_iter().map(String::into_bytes).collect()
}

fn cur_records(bills: &[Bill]) -> Vec<Record> {
    let rows = bills.iter().enumerate().map(|(i, b)| {
        let (code, usage_type, _) = SERVICES[b.service];
        record(vec![
            format!("line-{i}"),
            hour_start(b.hour).format("%Y-%m-01T00:00:00Z").to_string(),
            rfc3339(b.hour),
            rfc3339(b.hour + 1),
            code.to_owned(),
            usage_type.to_owned(),
            CUR_KINDS[b.kind % CUR_KINDS.len()].to_owned(),
            b.billed.to_string(),
            "USD".to_owned(),
            b.tenant.map_or("", |t| TENANTS[t]).to_owned(),
        ])
    });
    std::iter::once(header(&CUR_HEADER)).chain(rows).collect()
}

fn focus_records(bills: &[Bill]) -> Vec<Record> {
    let time = |hour: i64| hour_start(hour).format("%Y-%m-%d %H:%M:%S").to_string();
    let rows = bills.iter().map(|b| {
        let tags = b.tenant.map_or(String::new(), |t| format!(r#"{{"user:tenant": "{}"}}"#, TENANTS[t]));
        record(vec![
            b.billed.to_string(),
            b.effective.to_string(),
            "USD".to_owned(),
            time(b.hour),
            time(b.hour + 1),
            FOCUS_CATEGORIES[b.kind % FOCUS_CATEGORIES.len()].to_owned(),
            SERVICES[b.service].2.to_owned(),
            "AWS".to_owned(),
            tags,
        ])
    });
    std::iter::once(header(&FOCUS_HEADER)).chain(rows).collect()
}

fn usage_records(samples: &[Sample]) -> Vec<Record> {
    // `f64`'s `Display` is the shortest text that reads back as the same float.
    let rows = samples.iter().map(|s| record(vec![rfc3339(s.hour), TENANTS[s.tenant].to_owned(), METRICS[s.metric].to_owned(), s.value.to_string()]));
    std::iter::once(header(&USAGE_HEADER)).chain(rows).collect()
}

fn revenue_records(entries: &[Revenue]) -> Vec<Record> {
    let rows = entries.iter().map(|r| record(vec![format!("2026-{:02}", r.month), TENANTS[r.tenant].to_owned(), r.amount.to_string(), "USD".to_owned()]));
    std::iter::once(header(&REVENUE_HEADER)).chain(rows).collect()
}

/// Writes records with the `csv` crate, so that quoting is right.
fn csv_bytes(records: &[Record]) -> Vec<u8> {
    // Flexible: a mutated record may have a field fewer or more than the header.
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    for r in records {
        w.write_record(r).expect("writing CSV to memory cannot fail");
    }
    w.into_inner().expect("writing CSV to memory cannot fail")
}

/// The file as generated, and as mutated.
fn csv_case(mut records: Vec<Record>, m: &Mutation) -> (Vec<u8>, Vec<u8>) {
    let original = csv_bytes(&records);
    mutate_records(&mut records, m);
    let mut bytes = csv_bytes(&records);
    mutate_bytes(&mut bytes, m);
    (original, bytes)
}

// ---- mutations ----

#[derive(Debug, Clone)]
enum Mutation {
    None,
    /// XORs one byte of the file with a non-zero mask.
    FlipByte(Index, u8),
    /// Cuts the file short before the byte chosen.
    Truncate(Index),
    Insert(Index, Vec<u8>),
    /// Record 0 is the header.
    ReplaceField {
        record: Index,
        field: Index,
        text: Vec<u8>,
    },
    DropField {
        record: Index,
        field: Index,
    },
    DuplicateField {
        record: Index,
        field: Index,
    },
}

fn nasty() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(NASTY).prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<char>(), 0..6).prop_map(|c| c.into_iter().collect::<String>().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ]
}

/// Mutations of a file's bytes, for any format.
fn byte_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| Mutation::FlipByte(at, mask)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), nasty()).prop_map(|(at, text)| Mutation::Insert(at, text)),
    ]
}

/// Mutations of a CSV file: of its bytes or of its records' fields.
fn csv_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => byte_mutation(),
        3 => (any::<Index>(), any::<Index>(), nasty()).prop_map(|(record, field, text)| Mutation::ReplaceField { record, field, text }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(record, field)| Mutation::DropField { record, field }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(record, field)| Mutation::DuplicateField { record, field }),
    ]
}

/// Applies a field mutation; byte mutations are left to [`mutate_bytes`].
fn mutate_records(records: &mut [Record], m: &Mutation) {
    match m {
        Mutation::ReplaceField { record, field, text } => {
            let r = record.get_mut(records);
            let i = field.index(r.len());
            r[i] = text.clone();
        }
        Mutation::DropField { record, field } => {
            let r = record.get_mut(records);
            let i = field.index(r.len());
            r.remove(i);
        }
        Mutation::DuplicateField { record, field } => {
            let r = record.get_mut(records);
            let i = field.index(r.len());
            let copy = r[i].clone();
            r.insert(i, copy);
        }
        _ => {}
    }
}

/// Applies a byte mutation; field mutations are left to [`mutate_records`].
fn mutate_bytes(bytes: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::FlipByte(at, mask) if !bytes.is_empty() => {
            let i = at.index(bytes.len());
            bytes[i] ^= *mask;
        }
        Mutation::Truncate(at) if !bytes.is_empty() => {
            let keep = at.index(bytes.len());
            bytes.truncate(keep);
        }
        Mutation::Insert(at, text) => {
            let i = at.index(bytes.len() + 1);
            let tail = bytes.split_off(i);
            bytes.extend_from_slice(text);
            bytes.extend_from_slice(&tail);
        }
        _ => {}
    }
}

/// The type of a Parquet file's amount (CUR) or value (usage) column.
#[derive(Debug, Clone)]
enum Typed {
    /// `DECIMAL(38, 8)` for amounts, `DOUBLE` for usage values.
    Native,
    /// Text holding each value exactly.
    Text,
    /// Text, with one cell replaced.
    OddText(Index, String),
    /// `DOUBLE`, with one cell replaced.
    OddFloat(Index, f64),
}

impl Typed {
    /// Whether the column holds exactly the values generated.
    fn is_exact(&self) -> bool {
        matches!(self, Typed::Native | Typed::Text)
    }
}

fn exact_typed() -> impl Strategy<Value = Typed> {
    prop_oneof![Just(Typed::Native), Just(Typed::Text)]
}

fn odd_typed() -> impl Strategy<Value = Typed> {
    let float = prop_oneof![3 => prop::sample::select(ODD_FLOATS), 1 => any::<f64>()];
    prop_oneof![
        (any::<Index>(), nasty()).prop_map(|(at, text)| Typed::OddText(at, String::from_utf8_lossy(&text).into_owned())),
        (any::<Index>(), float).prop_map(|(at, v)| Typed::OddFloat(at, v)),
    ]
}

/// A Parquet case: an odd column in an intact file, or any column in a file
/// whose bytes are mutated.
fn parquet_case() -> impl Strategy<Value = (Typed, Mutation)> {
    prop_oneof![(odd_typed(), Just(Mutation::None)), (prop_oneof![exact_typed(), odd_typed()], byte_mutation())]
}

/// Parquet files as AWS Data Exports (CUR 2.0: snake_case columns, tags in
/// a MAP) and usage exporters write them, built with polars. In a module of
/// its own so that polars' prelude does not meet proptest's.
mod parquet_files {
    use polars::prelude::*;
    use proptest::sample::Index;
    use rust_decimal::Decimal;

    use super::{Bill, CUR_KINDS, METRICS, SERVICES, Sample, TENANTS, Typed, hour_ms, month_start_ms};

    pub(super) fn cur(bills: &[Bill], typed: &Typed) -> Result<Vec<u8>, String> {
        let tags: Vec<(IdxSize, &str, &str)> =
            bills.iter().enumerate().filter_map(|(i, b)| b.tenant.map(|t| (i as IdxSize, "user_tenant", TENANTS[t]))).collect();
        let tags = tally_lake::schema::tags_from_triples(bills.len(), &tags).map_err(|e| e.to_string())?.with_name("resource_tags".into());
        let billed: Vec<Decimal> = bills.iter().map(|b| b.billed).collect();
        write(vec![
            times("bill_billing_period_start_date", bills.iter().map(|b| month_start_ms(b.hour))),
            times("line_item_usage_start_date", bills.iter().map(|b| hour_ms(b.hour))),
            times("line_item_usage_end_date", bills.iter().map(|b| hour_ms(b.hour + 1))),
            texts("line_item_product_code", bills.iter().map(|b| SERVICES[b.service].0)),
            texts("line_item_usage_type", bills.iter().map(|b| SERVICES[b.service].1)),
            texts("line_item_line_item_type", bills.iter().map(|b| CUR_KINDS[b.kind % CUR_KINDS.len()])),
            amounts("line_item_unblended_cost", &billed, typed)?,
            texts("line_item_currency_code", bills.iter().map(|_| "USD")),
            Column::from(tags),
        ])
    }

    pub(super) fn usage(samples: &[Sample], typed: &Typed) -> Result<Vec<u8>, String> {
        write(vec![
            times("timestamp", samples.iter().map(|s| hour_ms(s.hour))),
            texts("tenant", samples.iter().map(|s| TENANTS[s.tenant])),
            texts("metric", samples.iter().map(|s| METRICS[s.metric])),
            numbers("value", samples.iter().map(|s| s.value).collect(), typed),
        ])
    }

    fn times(name: &str, ms: impl Iterator<Item = i64>) -> Column {
        Int64Chunked::from_iter_values(name.into(), ms).into_datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)).into_series().into()
    }

    fn texts<S: AsRef<str>>(name: &str, values: impl Iterator<Item = S>) -> Column {
        StringChunked::from_iter_values(name.into(), values).into_series().into()
    }

    fn floats(name: &str, values: Vec<f64>) -> Column {
        Float64Chunked::from_iter_values(name.into(), values.into_iter()).into_series().into()
    }

    fn odd_one<T>(mut values: Vec<T>, at: &Index, odd: T) -> Vec<T> {
        let i = at.index(values.len());
        values[i] = odd;
        values
    }

    fn amounts(name: &str, values: &[Decimal], typed: &Typed) -> Result<Column, String> {
        let text: Vec<String> = values.iter().map(Decimal::to_string).collect();
        Ok(match typed {
            Typed::Native => {
                // Every generated amount has at most eight places.
                let units = values.iter().map(|d| Some(d.mantissa() * 10i128.pow(8 - d.scale())));
                Int128Chunked::from_iter_options(name.into(), units).into_decimal(38, 8).map_err(|e| e.to_string())?.into_series().into()
            }
            Typed::Text => texts(name, text.into_iter()),
            Typed::OddText(at, odd) => texts(name, odd_one(text, at, odd.clone()).into_iter()),
            Typed::OddFloat(at, odd) => floats(name, odd_one(text.iter().map(|t| t.parse::<f64>().unwrap_or(0.0)).collect(), at, *odd)),
        })
    }

    fn numbers(name: &str, values: Vec<f64>, typed: &Typed) -> Column {
        let text = |v: &[f64]| v.iter().map(f64::to_string).collect::<Vec<_>>();
        match typed {
            Typed::Native => floats(name, values),
            Typed::Text => texts(name, text(&values).into_iter()),
            Typed::OddText(at, odd) => texts(name, odd_one(text(&values), at, odd.clone()).into_iter()),
            Typed::OddFloat(at, odd) => floats(name, odd_one(values, at, *odd)),
        }
    }

    fn write(columns: Vec<Column>) -> Result<Vec<u8>, String> {
        let mut df = DataFrame::new_infer_height(columns).map_err(|e| e.to_string())?;
        let mut bytes: Vec<u8> = Vec::new();
        ParquetWriter::new(&mut bytes).with_compression(ParquetCompression::Snappy).finish(&mut df).map_err(|e| e.to_string())?;
        Ok(bytes)
    }
}

fn written(bytes: Result<Vec<u8>, String>) -> Result<Vec<u8>, TestCaseError> {
    bytes.map_err(|e| TestCaseError::fail(format!("cannot write the Parquet file: {e}")))
}

/// The Parquet file as generated, and as mutated.
fn parquet_bytes(original: Vec<u8>, m: &Mutation) -> (Vec<u8>, Vec<u8>) {
    let mut bytes = original.clone();
    mutate_bytes(&mut bytes, m);
    (original, bytes)
}

// ---- reading and checking ----

fn opts() -> ReadOptions {
    ReadOptions::new("user_tenant", Currency::USD)
}

/// Writes `bytes` to a fresh directory and reads them with `reader`; a
/// panic fails the case (and is shrunk) instead of aborting the run. The
/// path returned is the one the reader was given; the file is gone.
fn read_file<T>(name: &str, bytes: &[u8], reader: impl FnOnce(&Path) -> Result<T, ReadError>) -> Result<(PathBuf, Result<T, ReadError>), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(format!("no temporary directory: {e}")))?;
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).map_err(|e| TestCaseError::fail(format!("cannot write {}: {e}", path.display())))?;
    let read = std::panic::catch_unwind(AssertUnwindSafe(|| reader(&path)));
    let read = read.map_err(|p| TestCaseError::fail(format!("the reader panicked on {name} ({} bytes): {}", bytes.len(), panic_text(&*p))))?;
    Ok((path, read))
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        return (*s).to_owned();
    }
    if let Some(s) = payload.downcast_ref::<String>() {
        return s.clone();
    }
    "a panic without a message".to_owned()
}

/// The value read, or `None` for a file refused as it should be: with an
/// error that names the file and says why. A valid file must not be refused.
fn accepted<T>(read: Result<T, ReadError>, path: &Path, valid: bool) -> Result<Option<T>, TestCaseError> {
    let e = match read {
        Ok(v) => return Ok(Some(v)),
        Err(e) if valid => return Err(TestCaseError::fail(format!("a valid file was refused: {e}"))),
        Err(e) => e,
    };
    prop_assert_eq!(e.file.as_path(), path, "the error names another file: {}", e);
    prop_assert!(!e.message.trim().is_empty(), "an error without a message: {e:?}");
    let shown = e.to_string();
    prop_assert!(shown.starts_with(&path.display().to_string()), "the error does not start with the file: {shown}");
    Ok(None)
}

fn in_range(year: i32) -> bool {
    (1970..=9999).contains(&year)
}

/// What a billing file as generated must read as.
#[derive(Debug)]
struct Totals {
    rows: usize,
    unblended: Decimal,
    amortized: Decimal,
    tagged: usize,
}

fn totals(bills: &[Bill], amortized: impl Fn(&Bill) -> Decimal) -> Totals {
    Totals {
        rows: bills.len(),
        unblended: bills.iter().map(|b| b.billed).sum(),
        amortized: bills.iter().map(amortized).sum(),
        tagged: bills.iter().filter(|b| b.tenant.is_some()).count(),
    }
}

/// CUR: the line types generated amortize to their unblended cost.
fn cur_totals(bills: &[Bill]) -> Totals {
    totals(bills, |b| b.billed)
}

fn focus_totals(bills: &[Bill]) -> Totals {
    totals(bills, |b| b.effective)
}

fn check_billing(read: Result<FileLines, ReadError>, path: &Path, want: Option<&Totals>) -> Result<(), TestCaseError> {
    let Some(file) = accepted(read, path, want.is_some())? else { return Ok(()) };
    prop_assert_eq!(file.file.as_path(), path);
    for l in &file.lines {
        for a in [l.unblended, l.net_unblended, l.amortized, l.usage_amount].into_iter().chain(l.list_cost) {
            prop_assert!(a.abs() <= MAX_AMOUNT, "{a} is beyond MAX_AMOUNT: {l:?}");
        }
        for year in [l.usage_start.year(), l.usage_end.year(), l.billing_month.year()] {
            prop_assert!(in_range(year), "year {year} is outside 1970..=9999: {l:?}");
        }
        prop_assert_eq!(l.currency, Currency::USD);
    }
    let Some(want) = want else { return Ok(()) };
    let lines = &file.lines;
    prop_assert_eq!(lines.len(), want.rows, "lines read");
    prop_assert_eq!(lines.iter().map(|l| l.unblended).sum::<Decimal>(), want.unblended, "unblended total");
    prop_assert_eq!(lines.iter().map(|l| l.amortized).sum::<Decimal>(), want.amortized, "amortized total");
    prop_assert_eq!(lines.iter().filter(|l| l.tenant.is_some()).count(), want.tagged, "lines with a tenant");
    Ok(())
}

/// `want`: the rows of a usage file as generated and the sum of their values.
fn check_usage(read: Result<UsageFile, ReadError>, path: &Path, want: Option<(usize, f64)>) -> Result<(), TestCaseError> {
    let Some(file) = accepted(read, path, want.is_some())? else { return Ok(()) };
    for s in &file.samples {
        prop_assert!(s.value.is_finite() && s.value >= 0.0, "a value of {} was read: {s:?}", s.value);
        prop_assert!(in_range(s.hour.start().year()), "a sample outside 1970..=9999: {s:?}");
    }
    let Some((rows, sum)) = want else { return Ok(()) };
    prop_assert_eq!(file.samples.len(), rows, "samples read");
    let read: f64 = file.samples.iter().map(|s| s.value).sum();
    prop_assert!((read - sum).abs() <= 1e-9 * sum.abs().max(1.0), "the values read sum to {read}, the file's to {sum}");
    Ok(())
}

fn usage_totals(samples: &[Sample]) -> (usize, f64) {
    (samples.len(), samples.iter().map(|s| s.value).sum())
}

/// `want`: the rows of a revenue file as generated and the sum of their amounts.
fn check_revenue(read: Result<Vec<RevenueEntry>, ReadError>, path: &Path, want: Option<(usize, Decimal)>) -> Result<(), TestCaseError> {
    let Some(entries) = accepted(read, path, want.is_some())? else { return Ok(()) };
    for e in &entries {
        let a = e.amount.amount;
        prop_assert!((Decimal::ZERO..=MAX_AMOUNT).contains(&a), "{a} is not a revenue amount: {e:?}");
        prop_assert!(in_range(e.month.year()), "a month outside 1970..=9999: {e:?}");
        prop_assert_eq!(e.amount.currency, Currency::USD);
    }
    let Some((rows, sum)) = want else { return Ok(()) };
    prop_assert_eq!(entries.len(), rows, "entries read");
    prop_assert_eq!(entries.iter().map(|e| e.amount.amount).sum::<Decimal>(), sum, "revenue total");
    Ok(())
}

fn revenue_totals(entries: &[Revenue]) -> (usize, Decimal) {
    (entries.len(), entries.iter().map(|r| r.amount).sum())
}

// ---- the properties ----

proptest! {
    #![proptest_config(config())]

    #[test]
    fn generated_cur_csv_files_read_and_reconcile(bills in bills()) {
        let (path, read) = read_file("cur.csv", &csv_bytes(&cur_records(&bills)), |p| read_cur(p, &opts()))?;
        check_billing(read, &path, Some(&cur_totals(&bills)))?;
    }

    #[test]
    fn mutated_cur_csv_files_are_read_or_refused_never_panic(bills in bills(), m in csv_mutation()) {
        let (original, bytes) = csv_case(cur_records(&bills), &m);
        let (path, read) = read_file("cur.csv", &bytes, |p| read_cur(p, &opts()))?;
        check_billing(read, &path, (bytes == original).then(|| cur_totals(&bills)).as_ref())?;
    }

    #[test]
    fn generated_cur_parquet_files_read_and_reconcile(bills in bills(), typed in exact_typed()) {
        let bytes = written(parquet_files::cur(&bills, &typed))?;
        let (path, read) = read_file("cur.parquet", &bytes, |p| read_cur(p, &opts()))?;
        check_billing(read, &path, Some(&cur_totals(&bills)))?;
    }

    #[test]
    fn mutated_cur_parquet_files_are_read_or_refused_never_panic(bills in bills(), (typed, m) in parquet_case()) {
        let (original, bytes) = parquet_bytes(written(parquet_files::cur(&bills, &typed))?, &m);
        let (path, read) = read_file("cur.parquet", &bytes, |p| read_cur(p, &opts()))?;
        check_billing(read, &path, (typed.is_exact() && bytes == original).then(|| cur_totals(&bills)).as_ref())?;
    }

    #[test]
    fn generated_focus_csv_files_read_and_reconcile(bills in bills()) {
        let (path, read) = read_file("focus.csv", &csv_bytes(&focus_records(&bills)), |p| read_focus(p, &opts()))?;
        check_billing(read, &path, Some(&focus_totals(&bills)))?;
    }

    #[test]
    fn mutated_focus_csv_files_are_read_or_refused_never_panic(bills in bills(), m in csv_mutation()) {
        let (original, bytes) = csv_case(focus_records(&bills), &m);
        let (path, read) = read_file("focus.csv", &bytes, |p| read_focus(p, &opts()))?;
        check_billing(read, &path, (bytes == original).then(|| focus_totals(&bills)).as_ref())?;
    }

    #[test]
    fn generated_usage_csv_files_read_and_reconcile(samples in samples()) {
        let (path, read) = read_file("usage.csv", &csv_bytes(&usage_records(&samples)), read_usage)?;
        check_usage(read, &path, Some(usage_totals(&samples)))?;
    }

    #[test]
    fn mutated_usage_csv_files_are_read_or_refused_never_panic(samples in samples(), m in csv_mutation()) {
        let (original, bytes) = csv_case(usage_records(&samples), &m);
        let (path, read) = read_file("usage.csv", &bytes, read_usage)?;
        check_usage(read, &path, (bytes == original).then(|| usage_totals(&samples)))?;
    }

    #[test]
    fn generated_usage_parquet_files_read_and_reconcile(samples in samples(), typed in exact_typed()) {
        let bytes = written(parquet_files::usage(&samples, &typed))?;
        let (path, read) = read_file("usage.parquet", &bytes, read_usage)?;
        check_usage(read, &path, Some(usage_totals(&samples)))?;
    }

    #[test]
    fn mutated_usage_parquet_files_are_read_or_refused_never_panic(samples in samples(), (typed, m) in parquet_case()) {
        let (original, bytes) = parquet_bytes(written(parquet_files::usage(&samples, &typed))?, &m);
        let (path, read) = read_file("usage.parquet", &bytes, read_usage)?;
        check_usage(read, &path, (typed.is_exact() && bytes == original).then(|| usage_totals(&samples)))?;
    }

    #[test]
    fn generated_revenue_csv_files_read_and_reconcile(entries in revenues()) {
        let (path, read) = read_file("revenue.csv", &csv_bytes(&revenue_records(&entries)), |p| read_revenue(p, Currency::USD))?;
        check_revenue(read, &path, Some(revenue_totals(&entries)))?;
    }

    #[test]
    fn mutated_revenue_csv_files_are_read_or_refused_never_panic(entries in revenues(), m in csv_mutation()) {
        let (original, bytes) = csv_case(revenue_records(&entries), &m);
        let (path, read) = read_file("revenue.csv", &bytes, |p| read_revenue(p, Currency::USD))?;
        check_revenue(read, &path, (bytes == original).then(|| revenue_totals(&entries)))?;
    }
}
