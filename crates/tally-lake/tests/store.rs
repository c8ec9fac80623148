//! The columnar store on local disk with its catalog in SQLite: imports
//! switch whole partitions, leave nothing behind when they fail, merges
//! replace only what they bring, and a lost or broken file is named.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use tally_domain::{CostLine, CostSource, Currency, LineType, Metric, Month, TenantId, UsageSample};
use tally_lake::{BillingFormat, Lake, LakeError, ReadOptions};
use tally_storage::{LakeKind, SqliteStore, Store};

struct Fixture {
    lake: Arc<Lake>,
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap());
    store.migrate().await.unwrap();
    let lake = Arc::new(Lake::open(None, dir.path(), store.clone()).unwrap());
    Fixture { lake, store, dir }
}

fn opts() -> ReadOptions {
    ReadOptions::new("user_tenant", Currency::USD)
}

fn oct() -> Month {
    Month::parse("2026-10").unwrap()
}

/// Every data file under the store's folder.
fn files_on_disk(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.join("lake")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root.join("lake")).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

async fn current_paths(store: &dyn Store) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for kind in [LakeKind::Billing, LakeKind::Usage] {
        out.extend(store.lake_files(kind, None, Month::parse("1970-01").unwrap(), Month::parse("9999-12").unwrap()).await.unwrap().into_iter().map(|f| f.path));
    }
    out
}

fn demo_cur(dir: &Path, seed: u64) -> (PathBuf, usize) {
    let g = tally_datagen::generate(&tally_datagen::Params::reference(seed, 6, vec![oct()]), dir).unwrap();
    (g.cur_files[0].clone(), g.billing_lines)
}

fn total(lines: &[CostLine]) -> Decimal {
    lines.iter().map(|l| l.unblended).sum()
}

#[tokio::test]
async fn a_reimport_switches_the_month_to_the_new_files_and_deletes_the_old_ones() {
    let f = fixture().await;
    let (cur, n) = demo_cur(&f.dir.path().join("gen"), 1);
    let first = f.lake.import_billing(CostSource::Cur, "first", std::slice::from_ref(&cur), BillingFormat::Cur, &opts()).await.unwrap();
    assert_eq!((first.rows, first.replaced), (n, 0));
    let lines = f.lake.lines(CostSource::Cur, oct()).await.unwrap();
    assert_eq!(lines.len(), n);
    let files_before = files_on_disk(f.dir.path());

    // The same delivery again: the same lines, counted once, in new files.
    let second = f.lake.import_billing(CostSource::Cur, "again", &[cur], BillingFormat::Cur, &opts()).await.unwrap();
    assert_eq!((second.rows, second.replaced), (n, n as i64));
    let again = f.lake.lines(CostSource::Cur, oct()).await.unwrap();
    assert_eq!(again.len(), n);
    assert_eq!(total(&again), total(&lines));
    assert_eq!(second.months[0].unblended, total(&lines), "the import's own totals are the lines' exact sums");
    let on_disk = files_on_disk(f.dir.path());
    assert!(on_disk.is_disjoint(&files_before), "the superseded files are deleted: {on_disk:?} / {files_before:?}");
    assert_eq!(on_disk, current_paths(f.store.as_ref()).await, "nothing but the current snapshot stays");
    assert!(on_disk.iter().all(|p| p.starts_with("billing/source=cur/month=2026-10/")), "{on_disk:?}");
}

#[tokio::test]
async fn a_bad_file_among_several_leaves_the_previous_snapshot_and_no_file_behind() {
    let f = fixture().await;
    let (cur, n) = demo_cur(&f.dir.path().join("gen"), 1);
    f.lake.import_billing(CostSource::Cur, "good", std::slice::from_ref(&cur), BillingFormat::Cur, &opts()).await.unwrap();
    let before = files_on_disk(f.dir.path());
    let bad = f.dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "lineItem/UsageStartDate,lineItem/UsageEndDate,lineItem/ProductCode,lineItem/LineItemType,lineItem/UnblendedCost,lineItem/CurrencyCode\n\
         2026-10-01T00:00:00Z,2026-10-01T01:00:00Z,AmazonEC2,Usage,0.5,USD\n\
         0001-01-01T00:00:00Z,0001-01-01T01:00:00Z,AmazonEC2,Usage,0.5,USD\n",
    )
    .unwrap();
    let (other, _) = demo_cur(&f.dir.path().join("gen2"), 2);
    let err = f.lake.import_billing(CostSource::Cur, "mixed", &[other, bad], BillingFormat::Cur, &opts()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("bad.csv") && text.contains("row 2") && text.contains("1970"), "{text}");
    assert_eq!(f.lake.lines(CostSource::Cur, oct()).await.unwrap().len(), n, "the previous snapshot is untouched");
    assert_eq!(files_on_disk(f.dir.path()), before, "the good file's new parts were deleted too");
}

fn sample(hour: &str, tenant: &str, metric: &str, value: f64) -> UsageSample {
    let h: DateTime<Utc> = hour.parse().unwrap();
    UsageSample::new(h, TenantId::parse(tenant).unwrap(), Metric::parse(metric).unwrap(), value).unwrap()
}

#[tokio::test]
async fn a_usage_import_replaces_only_the_hours_tenants_and_metrics_it_holds() {
    let f = fixture().await;
    let csv = |name: &str, rows: &[&str]| {
        let p = f.dir.path().join(name);
        std::fs::write(&p, format!("timestamp,tenant,metric,value\n{}\n", rows.join("\n"))).unwrap();
        p
    };
    let first = csv(
        "a.csv",
        &[
            "2026-10-01T00:00:00Z,acme,egress_gb,1",
            "2026-10-01T01:00:00Z,acme,egress_gb,2",
            "2026-10-01T02:00:00Z,acme,egress_gb,3",
            "2026-10-01T01:00:00Z,globex,egress_gb,4",
            "2026-10-01T01:00:00Z,acme,requests,100",
        ],
    );
    f.lake.import_usage_file("file", "a.csv", &first).await.unwrap();
    // A late file for acme's egress of one hour: only that sample changes.
    let second = csv("b.csv", &["2026-10-01T01:00:00Z,acme,egress_gb,20", "2026-10-02T00:00:00Z,initech,egress_gb,7"]);
    let done = f.lake.import_usage_file("file", "b.csv", &second).await.unwrap();
    assert_eq!(done.rows, 2);
    // Another source's samples of the same hours stay apart.
    f.lake.merge_usage("cloudwatch", "cw", &[sample("2026-10-01T01:00:00Z", "acme", "egress_gb", 99.0)]).await.unwrap();

    let all = f.lake.samples(oct().start(), oct().end()).await.unwrap();
    let got: BTreeSet<(String, String, String, i64)> =
        all.iter().map(|s| (s.hour.start().format("%dT%H").to_string(), s.tenant.to_string(), s.metric.to_string(), s.value as i64)).collect();
    let want: BTreeSet<(String, String, String, i64)> = [
        ("01T00", "acme", "egress_gb", 1),
        ("01T01", "acme", "egress_gb", 20),
        ("01T01", "acme", "egress_gb", 99),
        ("01T02", "acme", "egress_gb", 3),
        ("01T01", "globex", "egress_gb", 4),
        ("01T01", "acme", "requests", 100),
        ("02T00", "initech", "egress_gb", 7),
    ]
    .into_iter()
    .map(|(h, t, m, v)| (h.to_owned(), t.to_owned(), m.to_owned(), v))
    .collect();
    assert_eq!(got, want);
    assert_eq!(files_on_disk(f.dir.path()), current_paths(f.store.as_ref()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merges_of_one_partition_at_the_same_time_lose_no_sample() {
    let f = fixture().await;
    let mut tasks = Vec::new();
    for t in ["acme", "globex", "initech", "hooli"] {
        let lake = f.lake.clone();
        tasks.push(tokio::spawn(async move {
            let samples: Vec<UsageSample> = (0..24).map(|h| sample(&format!("2026-10-05T{h:02}:00:00Z"), t, "requests", 10.0)).collect();
            lake.merge_usage("cloudwatch", t, &samples).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let all = f.lake.samples(oct().start(), oct().end()).await.unwrap();
    assert_eq!(all.len(), 96, "every writer's samples are there");
}

fn day_line(day: &str, cost: &str) -> CostLine {
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    let p = tally_domain::Period::day(d);
    CostLine {
        usage_start: p.start(),
        usage_end: p.end(),
        billing_month: Month::of_date(d),
        payer_account: "1".into(),
        usage_account: "1".into(),
        service: "AmazonEC2".into(),
        usage_type: "BoxUsage:m5.xlarge".into(),
        operation: "RunInstances".into(),
        resource_id: None,
        region: Some("us-east-1".into()),
        availability_zone: None,
        line_type: LineType::Usage,
        description: None,
        currency: Currency::USD,
        unblended: cost.parse().unwrap(),
        net_unblended: cost.parse().unwrap(),
        amortized: cost.parse().unwrap(),
        list_cost: None,
        usage_amount: Decimal::ONE,
        usage_unit: None,
        instance_type: None,
        commitment_id: None,
        tags: [("user_tenant".to_owned(), "acme".to_owned())].into(),
        tenant: Some(TenantId::parse("acme").unwrap()),
        estimated: true,
        source: CostSource::CostExplorer,
        provider: None,
    }
}

#[tokio::test]
async fn a_cost_explorer_window_replaces_the_days_it_covers_and_keeps_the_others() {
    let f = fixture().await;
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let first = vec![day_line("2026-10-01", "10"), day_line("2026-10-02", "10"), day_line("2026-10-03", "10")];
    f.lake.replace_billing_days(CostSource::CostExplorer, "ce", d("2026-10-01"), d("2026-10-03"), &first).await.unwrap();
    // A restatement of the last two days: day 3 changed, day 2 has nothing any more.
    let done = f.lake.replace_billing_days(CostSource::CostExplorer, "ce", d("2026-10-02"), d("2026-10-03"), &[day_line("2026-10-03", "12.5")]).await.unwrap();
    assert_eq!(done.replaced, 3);
    let lines = f.lake.lines(CostSource::CostExplorer, oct()).await.unwrap();
    let days: Vec<(String, String)> = lines.iter().map(|l| (l.day().to_string(), l.unblended.to_string())).collect();
    assert_eq!(days, [("2026-10-01".to_owned(), "10".to_owned()), ("2026-10-03".to_owned(), "12.5".to_owned())]);
    assert!(lines.iter().all(|l| l.estimated && l.tags["user_tenant"] == "acme"), "flags and tags survive the store");
    let outside = f.lake.replace_billing_days(CostSource::CostExplorer, "ce", d("2026-10-05"), d("2026-10-06"), &[day_line("2026-10-01", "1")]).await;
    assert!(outside.is_err(), "a line outside the window is refused");
}

#[tokio::test]
async fn a_missing_or_broken_file_of_the_store_is_named() {
    let f = fixture().await;
    let (cur, _) = demo_cur(&f.dir.path().join("gen"), 1);
    f.lake.import_billing(CostSource::Cur, "good", &[cur], BillingFormat::Cur, &opts()).await.unwrap();
    let path = current_paths(f.store.as_ref()).await.into_iter().next().unwrap();
    let file = f.dir.path().join("lake").join(&path);

    std::fs::write(&file, b"PAR1 this is not a Parquet file PAR1").unwrap();
    let err = f.lake.lines(CostSource::Cur, oct()).await.unwrap_err();
    assert!(matches!(err, LakeError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains(&path), "{err}");

    std::fs::remove_file(&file).unwrap();
    let err = f.lake.lines(CostSource::Cur, oct()).await.unwrap_err();
    assert!(matches!(err, LakeError::Missing(_)), "{err}");
    assert!(err.to_string().contains(&path) && err.to_string().contains("import the period again"), "{err}");
}

#[tokio::test]
async fn a_sweep_deletes_what_no_import_finished_and_leaves_the_snapshot() {
    let f = fixture().await;
    let (cur, n) = demo_cur(&f.dir.path().join("gen"), 1);
    f.lake.import_billing(CostSource::Cur, "good", &[cur], BillingFormat::Cur, &opts()).await.unwrap();
    // What a crash between writing and switching leaves: a file the catalog never named.
    let orphan = f.dir.path().join("lake/billing/source=cur/month=2026-10/part-crashed-0001.parquet");
    std::fs::write(&orphan, b"half a file").unwrap();
    let young = f.lake.sweep(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(young.orphans, 0, "a file younger than the grace period may be an import in progress");
    assert!(orphan.exists());
    let swept = f.lake.sweep(Duration::ZERO).await.unwrap();
    assert_eq!(swept.orphans, 1);
    assert!(!orphan.exists());
    assert_eq!(f.lake.lines(CostSource::Cur, oct()).await.unwrap().len(), n);
    assert_eq!(files_on_disk(f.dir.path()), current_paths(f.store.as_ref()).await);
}
