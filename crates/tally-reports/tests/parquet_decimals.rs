//! Every Parquet file an export writes carries money as DECIMAL, read back
//! here with the `parquet` crate (not through Tally's own reader): the FOCUS
//! export at DECIMAL(38, 18), every digit AWS billed; the finance export at
//! DECIMAL(18, minor units), to the cent.

use std::collections::BTreeMap;
use std::fs::File;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use rust_decimal::Decimal;
use tally_domain::{Allocatee, AllocationRow, CostLine, CostSource, Currency, LineType, Month, PoolId, Tenant, TenantId};
use tally_reports::focus::FocusParquet;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn line(unblended: &str, amortized: &str) -> CostLine {
    CostLine {
        usage_start: "2026-10-01T00:00:00Z".parse().unwrap(),
        usage_end: "2026-10-01T01:00:00Z".parse().unwrap(),
        billing_month: Month::parse("2026-10").unwrap(),
        payer_account: "1".into(),
        usage_account: "1".into(),
        service: "AmazonEC2".into(),
        usage_type: "BoxUsage:m5.xlarge".into(),
        operation: "RunInstances".into(),
        resource_id: Some("i-0abc".into()),
        region: Some("us-east-1".into()),
        availability_zone: None,
        line_type: LineType::Usage,
        description: None,
        currency: Currency::USD,
        unblended: d(unblended),
        net_unblended: d(unblended),
        amortized: d(amortized),
        list_cost: None,
        usage_amount: d("1"),
        usage_unit: Some("Hrs".into()),
        instance_type: Some("m5.xlarge".into()),
        commitment_id: None,
        tags: Default::default(),
        tenant: Some(TenantId::parse("acme").unwrap()),
        estimated: false,
        source: CostSource::Cur,
        provider: None,
    }
}

/// One row's DECIMAL cells by column, as exact decimals.
type DecimalRow = BTreeMap<String, Decimal>;
/// Each DECIMAL column's (precision, scale).
type DecimalTypes = BTreeMap<String, (i32, i32)>;

/// Each row's DECIMAL cells, and the columns' types.
fn decimals(path: &std::path::Path) -> (Vec<DecimalRow>, DecimalTypes) {
    let reader = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let types: DecimalTypes = schema
        .columns()
        .iter()
        .filter(|c| c.converted_type() == parquet::basic::ConvertedType::DECIMAL)
        .map(|c| (c.name().to_owned(), (c.type_precision(), c.type_scale())))
        .collect();
    let rows = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| {
            r.unwrap()
                .get_column_iter()
                .filter_map(|(name, f)| match f {
                    Field::Decimal(x) => {
                        let bytes = x.data();
                        // Big-endian two's complement of any width up to 16 bytes.
                        let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
                        let mut wide = [fill; 16];
                        wide[16 - bytes.len()..].copy_from_slice(bytes);
                        let unscaled = i128::from_be_bytes(wide);
                        Some((name.clone(), Decimal::from_i128_with_scale(unscaled, x.scale() as u32).normalize()))
                    }
                    _ => None,
                })
                .collect()
        })
        .collect();
    (rows, types)
}

#[test]
fn the_focus_export_writes_every_billed_digit_as_decimal_38_18() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("focus.parquet");
    let mut w = FocusParquet::new(File::create(&path).unwrap()).unwrap();
    // Amounts a double cannot hold exactly; the second is large.
    w.write(&[line("0.1234567891", "0.1"), line("123456789.0000000003", "123456789.0000000003")]).unwrap();
    w.finish().unwrap();
    let (rows, types) = decimals(&path);
    for money in ["BilledCost", "EffectiveCost", "ListCost", "ContractedCost"] {
        assert_eq!(types.get(money), Some(&(38, 18)), "{money} is DECIMAL(38, 18): {types:?}");
    }
    assert!(types.values().all(|t| *t == (38, 18)), "every number column: {types:?}");
    assert_eq!(rows[0]["BilledCost"], d("0.1234567891"));
    assert_eq!(rows[0]["EffectiveCost"], d("0.1"));
    assert_eq!(rows[1]["BilledCost"], d("123456789.0000000003"));
}

#[test]
fn the_finance_export_writes_money_as_decimal_to_the_cent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monthly.parquet");
    let row = |who: &str, cost: &str| AllocationRow {
        month: Month::parse("2026-10").unwrap(),
        day: None,
        allocatee: Allocatee::parse(who).unwrap(),
        pool: PoolId::parse("eks_compute").unwrap(),
        service: "AmazonEC2".into(),
        currency: Currency::USD,
        unblended: d(cost),
        amortized: d(cost),
        driver: None,
        driver_quantity: None,
        reason: None,
    };
    let tenants = [Tenant::new(TenantId::parse("acme").unwrap(), "Acme", None).unwrap()];
    tally_reports::export::monthly_parquet(&[row("acme", "1234.56"), row("__idle__", "0.01")], &tenants, &path).unwrap();
    let (rows, types) = decimals(&path);
    assert_eq!(types.get("unblended_cost"), Some(&(18, 2)), "{types:?}");
    let mut costs: Vec<Decimal> = rows.iter().map(|r| r["unblended_cost"]).collect();
    costs.sort();
    assert_eq!(costs, [d("0.01"), d("1234.56")]);
}
