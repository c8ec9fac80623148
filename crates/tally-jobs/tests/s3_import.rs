//! Importing a Data Exports delivery from S3 (moto over the real wire):
//! only the latest snapshot of each period is read.

use std::sync::Arc;

use tally_collectors::aws::AwsSettings;
use tally_collectors::retry::RetryPolicy;
use tally_collectors::s3::S3Reader;
use tally_domain::{Config, CostSource, ManualClock, Month};
use tally_jobs::import::{BillingFormat, fetch_s3, import_billing};
use tally_jobs::{App, NoProgress};
use tally_storage::{SqliteStore, Store};

#[tokio::test]
async fn an_s3_delivery_imports_only_its_latest_snapshot_and_once() {
    let moto = tally_test_support::start_moto().expect("moto_server");
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap());
    store.migrate().await.unwrap();
    let app = App::new(
        store,
        Arc::new(Config::default()),
        Arc::new(ManualClock::new("2026-11-02T00:00:00Z".parse().unwrap())),
        dir.path().to_path_buf(),
        "test".into(),
    )
    .unwrap();
    // A real CUR 2.0 file from the generator, delivered twice (two snapshots).
    let generated = tempfile::tempdir().unwrap();
    let month = Month::parse("2026-10").unwrap();
    let g = tally_datagen::generate(&tally_datagen::Params::reference(3, 6, vec![month]), generated.path()).unwrap();
    let body = std::fs::read(&g.cur_files[0]).unwrap();
    let http = reqwest::Client::new();
    let base = moto.endpoint();
    assert!(http.put(format!("{base}/billing")).send().await.unwrap().status().is_success());
    for snapshot in ["20261101T000000Z-a", "20261102T000000Z-b"] {
        let key = format!("exports/tally/data/BILLING_PERIOD=2026-10/{snapshot}/tally-00001.snappy.parquet");
        assert!(http.put(format!("{base}/billing/{key}")).body(body.clone()).send().await.unwrap().status().is_success());
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let reader = S3Reader::new(
        &AwsSettings { endpoint_url: Some(base.clone()), region: Some("us-east-1".into()), static_credentials: Some(("testing".into(), "testing".into())) },
        true,
    )
    .await;
    let policy = RetryPolicy::new(2);
    let (files, notes) = fetch_s3(&app, &reader, "s3://billing/exports", &policy).await.unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().contains("20261102T000000Z-b"));
    assert!(notes[0].contains("1 file(s) of older snapshots ignored"), "{notes:?}");
    for _ in 0..2 {
        let (files, notes) = fetch_s3(&app, &reader, "s3://billing/exports", &policy).await.unwrap();
        import_billing(&app, files, notes, BillingFormat::Cur, None, &NoProgress).await.unwrap();
    }
    let lines = app.lake.lines(CostSource::Cur, month).await.unwrap();
    assert_eq!(lines.len(), g.billing_lines, "one snapshot, imported twice, counted once");
    let err = fetch_s3(&app, &reader, "s3://billing/nothing-here", &policy).await.unwrap_err();
    assert!(err.to_string().contains("holds no objects"), "{err}");
}
