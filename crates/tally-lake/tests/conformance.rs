//! Every real billing sample under `../shared/data` imports, and for each
//! file, billing period and service the imported totals equal the file's own
//! column sums to the cent: unblended (FOCUS: billed) as summed straight
//! from the file, amortized (FOCUS: effective) by the effective-cost rule
//! computed here, independently of the reader, with polars expressions.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use tally_domain::{Currency, LineType};
use tally_lake::ReadOptions;
use tally_lake::read::{aws_service_code, read_cur, read_focus};

type Totals = BTreeMap<(String, String), (f64, f64)>;

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = tally_test_support::shared_data().join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared samples must sit beside the checkout)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no samples in {}", dir.display());
    v
}

fn cents(x: f64) -> Decimal {
    Decimal::try_from(x).unwrap().round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn dec_cents(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The file as a frame, read here without the product's reader: Parquet
/// directly; text decompressed if needed, separator from the header.
fn frame(path: &Path) -> DataFrame {
    let mut head = [0u8; 2];
    std::fs::File::open(path).unwrap().read_exact(&mut head).unwrap();
    let text_path = if head == [0x1f, 0x8b] {
        let mut s = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut s).unwrap();
        let out = std::env::temp_dir().join(format!("conformance-{}.csv", std::process::id()));
        std::fs::write(&out, s).unwrap();
        out
    } else {
        path.to_path_buf()
    };
    let is_parquet = std::fs::read(&text_path).unwrap().starts_with(b"PAR1");
    if is_parquet {
        return LazyFrame::scan_parquet(PlRefPath::new(text_path.to_string_lossy().as_ref()), Default::default()).unwrap().collect().unwrap();
    }
    let first = std::fs::read(&text_path).unwrap();
    let header = first.split(|b| *b == b'\n').next().unwrap().to_vec();
    let sep = if header.contains(&b'\x01') { b'\x01' } else { b',' };
    LazyCsvReader::new(PlRefPath::new(text_path.to_string_lossy().as_ref()))
        .with_has_header(true)
        .with_separator(sep)
        .with_infer_schema_length(Some(0))
        .finish()
        .unwrap()
        .collect()
        .unwrap()
}

fn f64_col(df: &DataFrame, names: &[&str]) -> Expr {
    for n in names {
        if df.column(n).is_ok() {
            return col(*n).cast(DataType::Float64).fill_null(lit(0.0));
        }
    }
    lit(0.0)
}

fn first_col(df: &DataFrame, names: &[&str]) -> &'static str {
    for n in names {
        if df.column(n).is_ok() {
            return Box::leak(n.to_string().into_boxed_str());
        }
    }
    panic!("none of {names:?}")
}

/// Period (YYYY-MM) of each row, from a billing-period timestamp column.
fn month_expr(df: &DataFrame, names: &[&str]) -> Expr {
    let c = first_col(df, names);
    match df.column(c).unwrap().dtype() {
        DataType::String => col(c).str().slice(lit(0), lit(7)),
        _ => col(c).dt().strftime("%Y-%m"),
    }
}

fn cur_expected(df: &DataFrame) -> Totals {
    let lt = col(first_col(df, &["line_item_line_item_type", "lineItem/LineItemType"]));
    let unblended = f64_col(df, &["line_item_unblended_cost", "lineItem/UnblendedCost"]);
    let eff_ri = f64_col(df, &["reservation_effective_cost", "reservation/EffectiveCost"]);
    let eff_sp = f64_col(df, &["savings_plan_savings_plan_effective_cost", "savingsPlan/SavingsPlanEffectiveCost"]);
    let unused_upfront = f64_col(df, &["reservation_unused_amortized_upfront_fee_for_billing_period", "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"]);
    let unused_recurring = f64_col(df, &["reservation_unused_recurring_fee", "reservation/UnusedRecurringFee"]);
    let sp_total = f64_col(df, &["savings_plan_total_commitment_to_date", "savingsPlan/TotalCommitmentToDate"]);
    let sp_used = f64_col(df, &["savings_plan_used_commitment", "savingsPlan/UsedCommitment"]);
    let amortized = when(lt.clone().eq(lit("DiscountedUsage")))
        .then(eff_ri)
        .when(lt.clone().eq(lit("SavingsPlanCoveredUsage")))
        .then(eff_sp)
        .when(lt.clone().eq(lit("RIFee")))
        .then(unused_upfront + unused_recurring)
        .when(lt.clone().eq(lit("SavingsPlanRecurringFee")))
        .then(sp_total - sp_used)
        .when(lt.clone().eq(lit("SavingsPlanNegation")).or(lt.eq(lit("SavingsPlanUpfrontFee"))))
        .then(lit(0.0))
        .otherwise(unblended.clone());
    let month = month_expr(df, &["bill_billing_period_start_date", "bill/BillingPeriodStartDate"]);
    let service = col(first_col(df, &["line_item_product_code", "lineItem/ProductCode"]));
    collect_totals(df, month, service, unblended, amortized)
}

fn focus_expected(df: &DataFrame) -> Totals {
    let billed = f64_col(df, &["BilledCost"]);
    let effective = f64_col(df, &["EffectiveCost"]);
    let month = month_expr(df, &["BillingPeriodStart"]);
    let provider = col("ProviderName");
    // The reader names AWS services by product code; map the same way here.
    let sn = df.column("ServiceName").unwrap().str().unwrap();
    let mut names: Vec<String> = (0..sn.len()).filter_map(|i| sn.get(i).map(str::to_owned)).collect();
    names.sort();
    names.dedup();
    let mut service = col("ServiceName");
    for n in names {
        if let Some(code) = aws_service_code(&n) {
            service = when(col("ServiceName").eq(lit(n.clone())).and(provider.clone().eq(lit("AWS")))).then(lit(code)).otherwise(service);
        }
    }
    collect_totals(df, month, service, billed, effective)
}

fn collect_totals(df: &DataFrame, month: Expr, service: Expr, unblended: Expr, amortized: Expr) -> Totals {
    let out = df
        .clone()
        .lazy()
        .group_by([month.alias("month"), service.alias("service")])
        .agg([unblended.sum().alias("u"), amortized.sum().alias("a")])
        .collect()
        .unwrap();
    let (m, s, u, a) = (
        out.column("month").unwrap().str().unwrap(),
        out.column("service").unwrap().str().unwrap(),
        out.column("u").unwrap().f64().unwrap(),
        out.column("a").unwrap().f64().unwrap(),
    );
    (0..out.height()).map(|i| ((m.get(i).unwrap().to_owned(), s.get(i).unwrap().to_owned()), (u.get(i).unwrap(), a.get(i).unwrap()))).collect()
}

fn check(path: &Path, expected: Totals, lines: &[tally_domain::CostLine]) {
    let mut got: BTreeMap<(String, String), (Decimal, Decimal)> = BTreeMap::new();
    for l in lines {
        let e = got.entry((l.billing_month.to_string(), l.service.clone())).or_default();
        e.0 += l.unblended;
        e.1 += l.amortized;
    }
    assert_eq!(got.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "{}: periods and services", path.display());
    for (key, (u, a)) in &expected {
        let (gu, ga) = got[key];
        assert_eq!(dec_cents(gu), cents(*u), "{} {key:?}: unblended", path.display());
        assert_eq!(dec_cents(ga), cents(*a), "{} {key:?}: amortized", path.display());
    }
}

#[test]
fn every_cur_sample_imports_and_reconciles_to_the_cent_per_period_and_service() {
    let opts = ReadOptions::new("user_tenant", Currency::USD);
    for path in files("aws-cur") {
        let read = read_cur(&path, &opts).unwrap_or_else(|e| panic!("{e}"));
        let df = frame(&path);
        assert_eq!(read.lines.len(), df.height(), "{}: every row becomes a line", path.display());
        check(&path, cur_expected(&df), &read.lines);
    }
}

#[test]
fn every_focus_sample_imports_and_reconciles_to_the_cent_per_period_and_service() {
    let opts = ReadOptions::new("user_tenant", Currency::USD);
    for path in files("focus") {
        let read = read_focus(&path, &opts).unwrap_or_else(|e| panic!("{e}"));
        let df = frame(&path);
        assert_eq!(read.lines.len(), df.height());
        check(&path, focus_expected(&df), &read.lines);
    }
}

#[test]
fn the_samples_hold_the_line_types_and_tags_the_readers_must_understand() {
    let opts = ReadOptions::new("user_workload", Currency::USD);
    let oct = tally_test_support::shared_data().join("aws-cur/wa-labs-Oct2018-WorkshopCUR-00001.snappy.parquet");
    let read = read_cur(&oct, &opts).unwrap();
    let count = |t: LineType| read.lines.iter().filter(|l| l.line_type == t).count();
    assert_eq!(count(LineType::RiFee), 9);
    assert!(count(LineType::DiscountedUsage) > 8_000);
    // A month-long RI fee keeps AWS's 23:59:59 end and splits over the month.
    let fee = read.lines.iter().find(|l| l.line_type == LineType::RiFee).unwrap();
    assert_eq!(fee.granularity(), tally_domain::Granularity::Month);
    // `resource_tags_user_*` columns become tags; the configured one names tenants.
    assert!(read.lines.iter().any(|l| l.tags.contains_key("user_workload")));
    assert!(read.lines.iter().any(|l| l.tenant.is_some()));
    let cur2 = tally_test_support::shared_data().join("aws-cur/derived-cur2-shaped-from-walabs-dec2018-5000.parquet");
    let read2 = read_cur(&cur2, &opts).unwrap();
    // Each line keeps its product's region: the lines per region equal the file's own
    // `product_region_code` column, counted here with polars, independently of the reader.
    let df = frame(&cur2);
    let regions = df.column("product_region_code").unwrap().str().unwrap().clone();
    let mut in_file: BTreeMap<String, usize> = BTreeMap::new();
    for r in regions.iter().flatten() {
        *in_file.entry(r.to_owned()).or_default() += 1;
    }
    assert!(in_file.len() > 1, "the sample holds several regions");
    for (region, n) in &in_file {
        let read_n = read2.lines.iter().filter(|l| l.region.as_deref() == Some(region.as_str())).count();
        assert_eq!(read_n, *n, "lines in {region}");
    }
    assert!(read2.lines.iter().any(|l| l.instance_type.is_some()), "instance types come through the product map or column");
}
