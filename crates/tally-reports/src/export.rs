//! The finance export: one row per month x tenant x service x pool, as
//! RFC 4180 CSV or Parquet, adding up to the bill per service to the cent.

use std::path::Path;

use rust_decimal::Decimal;
use tally_domain::{AllocationRow, Tenant};
use tally_parquet::{ColumnData, ColumnType, ParquetWriter};

/// The CSV's columns; the first eight are a published contract.
pub const MONTHLY_COLUMNS: [&str; 11] =
    ["month", "tenant", "service", "pool", "unblended_cost", "amortized_cost", "driver", "driver_quantity", "currency", "tenant_name", "reason"];

/// A text cell that a spreadsheet would run as a formula gets a leading
/// apostrophe; every other cell is unchanged.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn rows_sorted(rows: &[AllocationRow]) -> Vec<&AllocationRow> {
    let mut v: Vec<&AllocationRow> = rows.iter().collect();
    v.sort_by(|a, b| (a.month, a.allocatee.as_str(), &a.service, a.pool.as_str()).cmp(&(b.month, b.allocatee.as_str(), &b.service, b.pool.as_str())));
    v
}

fn name_of<'a>(tenants: &'a [Tenant], row: &AllocationRow) -> &'a str {
    row.allocatee.tenant().and_then(|t| tenants.iter().find(|x| &x.id == t)).map_or("", |t| t.display_name.as_str())
}

fn quantity(q: Option<f64>) -> String {
    q.map(|q| format!("{q}")).unwrap_or_default()
}

/// The monthly rows as RFC 4180 CSV (CRLF line ends, a header row).
pub fn monthly_csv(rows: &[AllocationRow], tenants: &[Tenant]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    w.write_record(MONTHLY_COLUMNS)?;
    for r in rows_sorted(rows) {
        let (month, unblended, amortized, quantity) = (r.month.to_string(), r.unblended.to_string(), r.amortized.to_string(), quantity(r.driver_quantity));
        w.write_record([
            month.as_str(),
            &neutralise(r.allocatee.as_str()),
            &neutralise(&r.service),
            &neutralise(r.pool.as_str()),
            // Numbers stay numbers, minus signs included.
            unblended.as_str(),
            amortized.as_str(),
            &neutralise(r.driver.as_deref().unwrap_or("")),
            quantity.as_str(),
            r.currency.code(),
            &neutralise(name_of(tenants, r)),
            &neutralise(r.reason.as_deref().unwrap_or("")),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

fn unscaled(d: Decimal, scale: u32) -> Option<i64> {
    let mut d = d;
    d.rescale(scale);
    i64::try_from(d.mantissa()).ok()
}

/// The monthly rows as Parquet, money as exact DECIMAL(18, minor units).
pub fn monthly_parquet(rows: &[AllocationRow], tenants: &[Tenant], path: &Path) -> Result<(), tally_parquet::Error> {
    let scale = rows.first().map_or(2, |r| r.currency.minor_units());
    let columns = [
        ("month", ColumnType::Utf8),
        ("tenant", ColumnType::Utf8),
        ("service", ColumnType::Utf8),
        ("pool", ColumnType::Utf8),
        ("unblended_cost", ColumnType::Decimal(scale as u8)),
        ("amortized_cost", ColumnType::Decimal(scale as u8)),
        ("driver", ColumnType::Utf8),
        ("driver_quantity", ColumnType::Double),
        ("currency", ColumnType::Utf8),
        ("tenant_name", ColumnType::Utf8),
        ("reason", ColumnType::Utf8),
    ];
    let mut w = ParquetWriter::create(path, &columns)?;
    let sorted = rows_sorted(rows);
    let months: Vec<String> = sorted.iter().map(|r| r.month.to_string()).collect();
    w.write_row_group(&[
        ColumnData::Utf8(months.iter().map(|m| Some(m.as_str())).collect()),
        ColumnData::Utf8(sorted.iter().map(|r| Some(r.allocatee.as_str())).collect()),
        ColumnData::Utf8(sorted.iter().map(|r| Some(r.service.as_str())).collect()),
        ColumnData::Utf8(sorted.iter().map(|r| Some(r.pool.as_str())).collect()),
        ColumnData::Decimal(sorted.iter().map(|r| unscaled(r.unblended, scale)).collect(), scale as u8),
        ColumnData::Decimal(sorted.iter().map(|r| unscaled(r.amortized, scale)).collect(), scale as u8),
        ColumnData::Utf8(sorted.iter().map(|r| r.driver.as_deref()).collect()),
        ColumnData::Double(sorted.iter().map(|r| r.driver_quantity).collect()),
        ColumnData::Utf8(sorted.iter().map(|r| Some(r.currency.code())).collect()),
        ColumnData::Utf8(sorted.iter().map(|r| Some(name_of(tenants, r)).filter(|n| !n.is_empty())).collect()),
        ColumnData::Utf8(sorted.iter().map(|r| r.reason.as_deref()).collect()),
    ])?;
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_domain::{Allocatee, Currency, Month, PoolId, TenantId};

    fn row(who: &str, service: &str, cost: &str) -> AllocationRow {
        AllocationRow {
            month: Month::parse("2026-10").unwrap(),
            day: None,
            allocatee: Allocatee::parse(who).unwrap(),
            pool: PoolId::parse("shared").unwrap(),
            service: service.into(),
            currency: Currency::USD,
            unblended: cost.parse().unwrap(),
            amortized: cost.parse().unwrap(),
            driver: Some("cost of other pools".into()),
            driver_quantity: Some(12.5),
            reason: None,
        }
    }

    #[test]
    fn cells_that_would_start_a_formula_are_neutralised_and_numbers_are_not() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for bad in ["+1", "-cmd", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralise(bad).starts_with('\''), "{bad}");
        }
        assert_eq!(neutralise("AmazonEC2"), "AmazonEC2");
        let tenants = [Tenant::new(TenantId::parse("acme").unwrap(), "=cmd|' /C calc'!A0", None).unwrap()];
        let csv = String::from_utf8(monthly_csv(&[row("acme", "AmazonS3", "-0.20")], &tenants).unwrap()).unwrap();
        let line = csv.lines().nth(1).unwrap();
        assert!(line.contains(",-0.20,-0.20,"), "a negative cost stays a number: {line}");
        assert!(line.contains("'=cmd|"), "{line}");
    }

    #[test]
    fn the_csv_starts_with_the_published_header_and_uses_crlf() {
        let csv = String::from_utf8(monthly_csv(&[row("acme", "Amazon, \"S3\"", "1.00")], &[]).unwrap()).unwrap();
        assert!(csv.starts_with("month,tenant,service,pool,unblended_cost,amortized_cost,driver,driver_quantity,"));
        assert!(csv.contains("\r\n"));
        assert!(csv.contains("\"Amazon, \"\"S3\"\"\""), "RFC 4180 quoting: {csv}");
    }

    #[test]
    fn the_parquet_export_keeps_money_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.parquet");
        monthly_parquet(&[row("acme", "AmazonS3", "1234.56"), row("globex", "AmazonS3", "-0.07")], &[], &p).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > 100);
        assert_eq!(unscaled("1234.56".parse().unwrap(), 2), Some(123456));
        assert_eq!(unscaled("-0.07".parse().unwrap(), 2), Some(-7));
    }
}
