//! Bad input is rejected with the file, the row and the column.

use std::path::{Path, PathBuf};

use tally_domain::Currency;
use tally_lake::read::{read_cur, read_focus, read_revenue, read_usage};
use tally_lake::{ReadError, ReadOptions};

const HEADER: &str = "identity/LineItemId,bill/BillingPeriodStartDate,lineItem/UsageStartDate,lineItem/UsageEndDate,lineItem/ProductCode,lineItem/UsageType,lineItem/LineItemType,lineItem/UnblendedCost,lineItem/CurrencyCode,resourceTags/user:tenant";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn cur(rows: &[&str]) -> String {
    let mut s = String::from(HEADER);
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s
}

fn opts() -> ReadOptions {
    ReadOptions::new("user_tenant", Currency::USD)
}

fn err(e: ReadError) -> (Option<usize>, Option<String>, String) {
    (e.row, e.column, e.message)
}

const GOOD: &str = "a,2026-10-01T00:00:00Z,2026-10-01T00:00:00Z,2026-10-01T01:00:00Z,AmazonEC2,BoxUsage:m5.xlarge,Usage,0.192,USD,acme";

#[test]
fn a_legacy_csv_reads_with_tags_and_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let f = read_cur(
        &write(
            dir.path(),
            "ok.csv",
            &cur(&[GOOD, "b,2026-10-01T00:00:00Z,2026-10-01T01:00:00Z,2026-10-01T02:00:00Z,AmazonEC2,BoxUsage:m5.xlarge,Usage,0.192,USD,"]),
        ),
        &opts(),
    )
    .unwrap();
    assert_eq!(f.lines.len(), 2);
    assert_eq!(f.lines[0].tenant.as_ref().map(|t| t.as_str()), Some("acme"));
    assert_eq!(f.lines[0].tags.get("user_tenant").map(String::as_str), Some("acme"));
    assert_eq!(f.lines[1].tenant, None, "an empty tag is no tag");
}

#[test]
fn a_gzip_file_reads_like_the_plain_one() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cur.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::default());
    gz.write_all(cur(&[GOOD]).as_bytes()).unwrap();
    gz.finish().unwrap();
    assert_eq!(read_cur(&p, &opts()).unwrap().lines.len(), 1);
}

#[test]
fn a_missing_required_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = "lineItem/UsageStartDate,lineItem/UsageEndDate,lineItem/ProductCode\n2026-10-01T00:00:00Z,2026-10-01T01:00:00Z,AmazonEC2\n";
    let e = read_cur(&write(dir.path(), "bad.csv", text), &opts()).unwrap_err();
    assert!(e.to_string().starts_with(&format!("{}", dir.path().join("bad.csv").display())));
    assert_eq!(e.column.as_deref(), Some("line_item_line_item_type"));
}

#[test]
fn an_unparsable_number_names_the_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GOOD.replace("0.192", "1,92").replace(",acme", "");
    let text = format!("{HEADER}\n{GOOD}\n{}\n", bad.replace("1,92", "\"1,92\""));
    let (row, col, msg) = err(read_cur(&write(dir.path(), "n.csv", &text), &opts()).unwrap_err());
    assert_eq!((row, col.as_deref()), (Some(2), Some("line_item_unblended_cost")));
    assert!(msg.contains("not a number"), "{msg}");
}

#[test]
fn an_unparsable_date_names_the_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_cur(&write(dir.path(), "d.csv", &cur(&[GOOD, &GOOD.replace("2026-10-01T01:00:00Z", "tomorrow")])), &opts()).unwrap_err();
    assert_eq!((e.row, e.column.as_deref()), (Some(2), Some("line_item_usage_end_date")));
}

#[test]
fn an_unknown_currency_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_cur(&write(dir.path(), "c.csv", &cur(&[&GOOD.replace("USD", "XYZ")])), &opts()).unwrap_err();
    assert_eq!((e.row, e.column.as_deref()), (Some(1), Some("line_item_currency_code")));
    assert!(e.message.contains("unknown currency \"XYZ\""));
}

#[test]
fn several_currencies_in_a_period_need_a_rate_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "m.csv", &cur(&[GOOD, &GOOD.replace("USD", "EUR")]));
    let e = read_cur(&p, &opts()).unwrap_err();
    assert!(e.message.contains("several currencies (EUR, USD)") && e.message.contains("currency_rates.EUR"), "{}", e.message);
    let mut o = opts();
    o.rates.insert(Currency::parse("EUR").unwrap(), "1.10".parse().unwrap());
    let f = read_cur(&p, &o).unwrap();
    assert_eq!(f.lines[1].unblended, "0.21120".parse::<tally_domain::Decimal>().unwrap());
    assert!(f.lines.iter().all(|l| l.currency == Currency::USD));
}

#[test]
fn a_focus_file_with_json_tags_names_its_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let text = "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ServiceName,ProviderName,Tags\n1.50,1.20,USD,2026-10-01 00:00:00,2026-10-01 01:00:00,Usage,Amazon Relational Database Service,AWS,\"{\"\"user:tenant\"\": \"\"Globex\"\"}\"\n";
    let f = read_focus(&write(dir.path(), "f.csv", text), &opts()).unwrap();
    assert_eq!(f.lines[0].service, "AmazonRDS");
    assert_eq!(f.lines[0].tenant.as_ref().unwrap().as_str(), "globex");
    assert_eq!(f.lines[0].amortized, "1.20".parse::<tally_domain::Decimal>().unwrap());
    let bad = text.replace("{\"\"user:tenant\"\": \"\"Globex\"\"}", "not json");
    let e = read_focus(&write(dir.path(), "g.csv", &bad), &opts()).unwrap_err();
    assert_eq!((e.row, e.column.as_deref()), (Some(1), Some("Tags")));
}

#[test]
fn usage_files_reject_negative_values_non_numbers_and_hours_that_are_not_whole() {
    let dir = tempfile::tempdir().unwrap();
    let head = "timestamp,tenant,metric,value,unit,resource_id,workload\n";
    let ok = "2026-10-01T05:00:00Z,acme,egress_gb,1.5,GB,,\n";
    let f = read_usage(&write(dir.path(), "ok.csv", &format!("{head}{ok}2026-10-01T05:00:00Z,new-tenant,requests,10,,,\n"))).unwrap();
    assert_eq!(f.samples.len(), 2);
    assert_eq!(f.tenants.iter().map(|t| t.as_str()).collect::<Vec<_>>(), ["acme", "new-tenant"]);
    for (row, col, expected) in [
        ("2026-10-01T05:00:00Z,acme,egress_gb,-3,GB,,\n", "value", "-3"),
        ("2026-10-01T05:00:00Z,acme,egress_gb,lots,GB,,\n", "value", "not a number"),
        ("2026-10-01T05:30:00Z,acme,egress_gb,1,GB,,\n", "timestamp", "not the start of an hour"),
        ("2026-10-01T05:00:00Z,Acme Corp,egress_gb,1,GB,,\n", "tenant", "tenant id"),
        ("2026-10-01T05:00:00Z,acme,Egress GB,1,GB,,\n", "metric", "metric"),
    ] {
        let e = read_usage(&write(dir.path(), "bad.csv", &format!("{head}{ok}{row}"))).unwrap_err();
        assert_eq!((e.row, e.column.as_deref()), (Some(2), Some(col)), "{row}");
        assert!(e.message.contains(expected), "{row}: {}", e.message);
    }
}

#[test]
fn revenue_files_are_validated_and_a_tenant_may_appear_once_per_month() {
    let dir = tempfile::tempdir().unwrap();
    let ok =
        read_revenue(&write(dir.path(), "r.csv", "month,tenant,amount,currency\n2026-10,acme,900.00,USD\n2026-10,globex,49,USD\n"), Currency::USD).unwrap();
    assert_eq!(ok.len(), 2);
    let e =
        read_revenue(&write(dir.path(), "r2.csv", "month,tenant,amount,currency\n2026-10,acme,900.00,USD\n2026-10,acme,1,USD\n"), Currency::USD).unwrap_err();
    assert_eq!((e.row, e.column.as_deref()), (Some(2), Some("tenant")));
    let e = read_revenue(&write(dir.path(), "r3.csv", "month,tenant,amount,currency\n2026-10,acme,9,EUR\n"), Currency::USD).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("currency"));
}

#[test]
fn a_row_with_too_many_fields_is_named_by_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let text = cur(&[GOOD, GOOD, &format!("{GOOD},extra,fields")]);
    let e = read_cur(&write(dir.path(), "ragged.csv", &text), &opts()).unwrap_err();
    assert_eq!(e.row, Some(3), "{e}");
    assert!(e.message.contains("12 fields; the header has 10"), "{e}");
    let e = read_usage(&write(dir.path(), "ragged-usage.csv", "timestamp,tenant,metric,value\n2026-10-01T05:00:00Z,acme,requests,1,2\n")).unwrap_err();
    assert_eq!(e.row, Some(1), "{e}");
}

#[test]
fn dates_outside_1970_to_9999_are_refused_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["0001-01-01T00:00:00Z", "1969-12-31T23:00:00Z"] {
        let e =
            read_cur(&write(dir.path(), "early.csv", &cur(&[&GOOD.replace("2026-10-01T00:00:00Z,2026-10-01T00:00:00Z", &format!("{bad},{bad}"))])), &opts())
                .unwrap_err();
        assert_eq!(e.row, Some(1), "{bad}: {e}");
        let focus = format!(
            "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ServiceName,ProviderName\n1,1,USD,{},{},Usage,Amazon Simple Storage Service,AWS\n",
            bad.replace('T', " ").replace('Z', ""),
            "2026-10-01 01:00:00"
        );
        let e = read_focus(&write(dir.path(), "early-focus.csv", &focus), &opts()).unwrap_err();
        assert_eq!(e.row, Some(1), "{bad}: {e}");
        let e = read_usage(&write(dir.path(), "early-usage.csv", &format!("timestamp,tenant,metric,value\n{bad},acme,requests,1\n"))).unwrap_err();
        assert_eq!((e.row, e.column.as_deref()), (Some(1), Some("timestamp")), "{bad}: {e}");
    }
    let e = read_revenue(&write(dir.path(), "r.csv", "month,tenant,amount,currency\n0001-01,acme,9,USD\n"), Currency::USD).unwrap_err();
    assert_eq!((e.row, e.column.as_deref()), (Some(1), Some("month")));
}

#[test]
fn amounts_beyond_the_documented_range_are_refused_by_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_cur(&write(dir.path(), "huge.csv", &cur(&[GOOD, &GOOD.replace("0.192", "79228162514264337593543950335")])), &opts()).unwrap_err();
    assert_eq!((e.row, e.column.as_deref()), (Some(2), Some("line_item_unblended_cost")), "{e}");
    assert!(e.message.contains("at most 1,000,000,000,000,000"), "{e}");
    let e = read_revenue(&write(dir.path(), "r.csv", "month,tenant,amount,currency\n2026-10,acme,1000000000000000.01,USD\n"), Currency::USD).unwrap_err();
    assert_eq!((e.row, e.column.as_deref()), (Some(1), Some("amount")), "{e}");
}

#[test]
fn a_damaged_parquet_footer_is_an_error_naming_the_file_never_a_panic() {
    // A real CUR 2.0 file with its footer (the thrift-encoded metadata before the
    // closing length and "PAR1") damaged byte by byte: polars' footer parser panics
    // on some of these (the fuzz properties found "thrift bool field").
    let sample = tally_test_support::shared_data().join("aws-cur/derived-cur2-shaped-from-walabs-dec2018-5000.parquet");
    let bytes = std::fs::read(&sample).unwrap();
    let footer_len = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
    let footer = bytes.len() - 8 - footer_len..bytes.len() - 8;
    let dir = tempfile::tempdir().unwrap();
    let stride = (footer_len / 300).max(1);
    let (mut refused, mut read) = (0, 0);
    for i in footer.step_by(stride) {
        for flip in [0xff_u8, 0x01] {
            let mut damaged = bytes.clone();
            damaged[i] ^= flip;
            // A file of its own each time: polars maps files and keeps them by path.
            let path = dir.path().join(format!("damaged-{i}-{flip}.parquet"));
            std::fs::write(&path, &damaged).unwrap();
            match std::panic::catch_unwind(|| read_cur(&path, &opts())) {
                Ok(Ok(_)) => read += 1,
                Ok(Err(e)) => {
                    assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
                    refused += 1;
                }
                Err(_) => panic!("byte {i} ^ {flip:#x} of the footer panicked the reader"),
            }
        }
    }
    assert!(refused > 0, "some damage must be noticed ({read} read)");
}

#[test]
fn a_parquet_page_claiming_a_negative_value_count_is_an_error_never_an_abort() {
    // polars 0.55 reads a data page's signed value count as unsigned: -v becomes
    // 2^64 - v, it reserves a validity bitmap that long, the allocation fails and the
    // process aborts, which no catch_unwind stops (the fuzz properties found it).
    // Here, in a real CUR 2.0 file, each column's first data page in turn claims
    // -v values instead of its v: in the page header (thrift compact), field 5, the
    // data page header (0x2c, or 0x1c after a checksum), starts with field 1, an
    // i32 (0x15), the zigzag varint count.
    use polars_buffer::Buffer;
    use polars_parquet::parquet::page::CompressedPage;
    use polars_parquet::parquet::read::{PageReader, read_metadata};

    fn varint(mut n: u64) -> Vec<u8> {
        let mut out = vec![];
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out
    }

    let sample = tally_test_support::shared_data().join("aws-cur/derived-cur2-shaped-from-walabs-dec2018-5000.parquet");
    let bytes = std::fs::read(&sample).unwrap();
    let footer = read_metadata(&mut std::io::Cursor::new(&bytes)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut damaged_pages = 0;
    for chunk in footer.row_groups[0].parquet_columns() {
        let (start, end) = (chunk.data_page_offset() as usize, chunk.byte_range().end as usize);
        let mut pages = PageReader::new(std::io::Cursor::new(Buffer::from(bytes[start..end].to_vec())), chunk, vec![], usize::MAX);
        let Some(Ok(CompressedPage::Data(page))) = pages.next() else { continue };
        let v = page.num_values() as u64;
        let (count, negative) = (varint(2 * v), varint(2 * v - 1));
        let header = &bytes[start..(start + 64).min(end)];
        let found = [0x2c_u8, 0x1c].iter().find_map(|field| {
            let needle = [&[*field, 0x15][..], &count].concat();
            header.windows(needle.len()).position(|w| w == needle)
        });
        let Some(at) = found.filter(|_| count.len() == negative.len()) else { continue };
        let mut damaged = bytes.clone();
        damaged[start + at + 2..start + at + 2 + count.len()].copy_from_slice(&negative);
        let path = dir.path().join(format!("negative-count-{start}.parquet"));
        std::fs::write(&path, &damaged).unwrap();
        let e = match read_cur(&path, &opts()) {
            Ok(file) => panic!("{}: {} lines read although a page claims -{v} values", path.display(), file.lines.len()),
            Err(e) => e,
        };
        assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
        assert!(e.message.contains("damaged"), "{e}");
        damaged_pages += 1;
    }
    assert!(damaged_pages >= 5, "only {damaged_pages} page headers were found to damage");
}
