//! On the M benchmark data, Tally's pipeline (on the files its import writes
//! to the columnar store) and the same method in SQL run by DuckDB (on the
//! generated files) give the same tenant x pool totals of the month to 1e-6
//! relative.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use tally_domain::{AllocationConfig, Month};

fn data() -> (PathBuf, PathBuf) {
    let dir = std::env::var_os("BENCH_TALLY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/tally/bench"))
        .join("M");
    let marker = dir.join("generated.txt");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let g = tally_datagen::generate(&tally_datagen::Params::benchmark(tally_datagen::BenchSize::M, Month::parse("2026-10").unwrap()), &dir).unwrap();
        std::fs::write(&marker, format!("generated M: {} billing lines, {} usage rows, {} tenants\n", g.billing_lines, g.usage_rows, g.tenants.len())).unwrap();
    }
    let find = |sub: &str| -> PathBuf {
        let mut stack = vec![dir.join(sub)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "parquet") {
                    return p;
                }
            }
        }
        panic!("no Parquet under {}", dir.join(sub).display())
    };
    (find("cur"), find("usage"))
}

/// The month's billing and usage files in a fresh store, imported as `tally import` does.
async fn imported(cur: &std::path::Path, usage: &std::path::Path, dir: &std::path::Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    use std::sync::Arc;
    let store: Arc<dyn tally_storage::Store> =
        Arc::new(tally_storage::SqliteStore::connect(&format!("sqlite://{}", dir.join("t.db").display())).await.unwrap());
    store.migrate().await.unwrap();
    let clock = Arc::new(tally_domain::ManualClock::new("2026-11-02T00:00:00Z".parse().unwrap()));
    let app = tally_jobs::App::new(store, Arc::new(tally_domain::Config::default()), clock, dir.to_path_buf(), "test".into()).unwrap();
    let format = tally_jobs::import::BillingFormat::Cur;
    tally_jobs::import::import_billing(&app, vec![cur.to_path_buf()], Vec::new(), format, None, &tally_jobs::NoProgress).await.unwrap();
    tally_jobs::import::import_usage(&app, usage, "file").await.unwrap();
    let month = Month::parse("2026-10").unwrap();
    let billing = app.lake.billing("cur", month).await.unwrap().paths;
    let usage = app.lake.usage(month.start(), month.end()).await.unwrap().paths;
    (billing, usage)
}

#[tokio::test(flavor = "multi_thread")]
async fn tally_and_duckdb_give_the_same_tenant_pool_totals_on_the_m_data() {
    let (cur, usage) = data();
    let dir = tempfile::tempdir().unwrap();
    let (billing, usage_files) = imported(&cur, &usage, dir.path()).await;
    let ours = tally_allocation::split_totals(&AllocationConfig::default(), &billing, &usage_files).unwrap();
    let out = tempfile_path("duck.csv");
    let script = tally_test_support::workspace_root().join("benches/duckdb_allocate.py");
    let run = Command::new(tally_test_support::venv("focus").join("bin/python"))
        .arg(&script)
        .arg(&cur)
        .arg(&usage)
        .arg(&out)
        .output()
        .expect("DuckDB's Python (run ./scripts/test.sh)");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let theirs: BTreeMap<(String, String), (f64, f64)> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            ((c[0].to_owned(), c[1].to_owned()), (c[2].parse().unwrap(), c[3].parse().unwrap()))
        })
        .filter(|(_, (u, a))| *u != 0.0 || *a != 0.0)
        .collect();
    let ours: BTreeMap<(String, String), (f64, f64)> =
        ours.into_iter().map(|(w, p, u, a)| ((w, p), (u, a))).filter(|(_, (u, a))| *u != 0.0 || *a != 0.0).collect();
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "the same tenant x pool groups");
    assert!(ours.len() > 5_000, "the M data has thousands of groups: {}", ours.len());
    for (k, (u, a)) in &ours {
        let (tu, ta) = theirs[k];
        for (x, y) in [(*u, tu), (*a, ta)] {
            let rel = (x - y).abs() / x.abs().max(y.abs()).max(1e-9);
            assert!(rel <= 1e-6, "{k:?}: tally {x} vs DuckDB {y} ({rel:e} relative)");
        }
    }
    let _ = std::fs::remove_file(&out);
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tally-{}-{name}", std::process::id()))
}
