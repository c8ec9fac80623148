//! The PostgreSQL tenant-schema collector against the real server.

use std::process::Command;
use std::sync::Arc;

use tally_domain::{Config, ManualClock};
use tally_jobs::App;
use tally_jobs::usage::{AppDatabaseSource, collect_postgres};
use tally_storage::appdb::AppDatabase;
use tally_storage::{PostgresStore, SqliteStore, Store};

fn psql(db: &str, sql: &str) {
    let url = tally_test_support::postgres_url(db);
    let out = Command::new("psql").args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]).output().expect("psql");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn schema_sizes_become_db_storage_gb_per_tenant_and_a_missing_pg_stat_statements_is_said() {
    let name = tally_test_support::unique_name("tally_app");
    let admin = tally_test_support::postgres_url("postgres");
    PostgresStore::create_database(&admin, &name).await.unwrap();
    psql(&name, "CREATE SCHEMA tenant_acme; CREATE SCHEMA tenant_black_mesa; CREATE SCHEMA audit;");
    psql(
        &name,
        "CREATE TABLE tenant_acme.orders (id serial primary key, note text); INSERT INTO tenant_acme.orders (note) SELECT repeat('x', 400) FROM generate_series(1, 20000);",
    );
    psql(
        &name,
        "CREATE TABLE tenant_black_mesa.orders (id serial primary key, note text); INSERT INTO tenant_black_mesa.orders (note) SELECT repeat('y', 400) FROM generate_series(1, 2000);",
    );
    psql(&name, "CREATE TABLE audit.log (id int); INSERT INTO audit.log SELECT generate_series(1, 50000);");

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap());
    store.migrate().await.unwrap();
    let app = App::new(
        store.clone(),
        Arc::new(Config::default()),
        Arc::new(ManualClock::new("2026-11-02T10:10:00Z".parse().unwrap())),
        dir.path().to_path_buf(),
        "test".into(),
    )
    .unwrap();
    let db = AppDatabaseSource(AppDatabase::connect(&tally_test_support::postgres_url(&name)).await.unwrap());
    let has_pss = db.0.has_pg_stat_statements().await.unwrap();
    let r = collect_postgres(&app, &db).await.unwrap();
    let usage = app.lake.samples("2026-11-02T10:00:00Z".parse().unwrap(), "2026-11-02T11:00:00Z".parse().unwrap()).await.unwrap();
    let gb = |t: &str| usage.iter().find(|s| s.tenant.as_str() == t && s.metric.as_str() == "db_storage_gb").map(|s| s.value).unwrap();
    let (acme, mesa) = (gb("acme"), gb("black-mesa"));
    assert!(acme > 8.0 * mesa && mesa > 0.0, "acme {acme} GB, black-mesa {mesa} GB");
    assert!(acme > 0.005 && acme < 0.05, "20,000 rows of 400 bytes are about 10 MB: {acme} GB");
    assert!(usage.iter().all(|s| s.tenant.as_str() != "audit"), "schemas that do not match the pattern are not tenants");
    let created: Vec<&str> = r.tenants_created.iter().map(|t| t.as_str()).collect();
    assert_eq!(created, ["acme", "black-mesa"]);
    if !has_pss {
        assert!(r.notes.iter().any(|n| n.contains("pg_stat_statements is not installed")), "{:?}", r.notes);
        let run = &store.job_runs(Some("collect:usage:postgres"), 1).await.unwrap()[0];
        assert!(run.detail.as_deref().unwrap().contains("pg_stat_statements is not installed"));
    }
    drop(db);
    PostgresStore::drop_database(&admin, &name).await.unwrap();
}
