//! The storage contract: every test runs against SQLite (a temporary file)
//! and against the real PostgreSQL server (a fresh database per test).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use tally_domain::{
    Allocatee, AllocationRow, CostLine, CostSource, Currency, Explanation, JobOutcome, LineType, Metric, Money, Month, Period, PoolId, RevenueEntry, Tenant,
    TenantId, UsageSample,
};
use tally_storage::{
    AllocationFilter, AllocationResultSet, BilledTotal, CostDim, CostQuery, DailyBy, DailyCost, DailyQuery, JobFinish, LakeCommit, LakeKind, NewCashBalance,
    NewLakeFile, NewSession, NewToken, PartitionSwitch, PostgresStore, SessionKind, SqliteStore, StorageError, Store, UsageTotal,
};

/// A store plus whatever keeps it alive and cleans it up.
struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl Fixture {
    async fn sqlite() -> Self {
        Self::sqlite_at(i64::MAX).await
    }

    async fn postgres() -> Self {
        Self::postgres_at(i64::MAX).await
    }

    /// A SQLite database migrated up to `version`.
    async fn sqlite_at(version: i64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("nested/tally.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate_to(version).await.unwrap();
        Self { store: Arc::new(store), _dir: Some(dir), pg_name: None }
    }

    /// A fresh PostgreSQL database migrated up to `version`.
    async fn postgres_at(version: i64) -> Self {
        let name = tally_test_support::unique_name("tally_contract");
        PostgresStore::create_database(&tally_test_support::postgres_url("postgres"), &name).await.unwrap();
        let store = PostgresStore::connect(&tally_test_support::postgres_url(&name)).await.unwrap();
        store.migrate_to(version).await.unwrap();
        Self { store: Arc::new(store), _dir: None, pg_name: Some(name) }
    }

    async fn cleanup(self) {
        if let Some(name) = self.pg_name {
            drop(self.store);
            PostgresStore::drop_database(&tally_test_support::postgres_url("postgres"), &name).await.unwrap();
        }
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let f = super::Fixture::sqlite().await;
                    super::$name(f.store.as_ref()).await;
                    f.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let f = super::Fixture::postgres().await;
                    super::$name(f.store.as_ref()).await;
                    f.cleanup().await;
                }
            )*
        }
    };
}

contract!(
    migrating_twice_applies_nothing_the_second_time,
    a_switch_supersedes_its_partitions_files_and_leaves_other_months_and_sources_alone,
    a_switch_from_a_version_another_writer_replaced_is_refused_and_changes_nothing,
    a_failed_switch_leaves_the_catalog_exactly_as_it_was,
    superseded_files_are_forgotten_once_deleted,
    revenue_of_a_month_is_replaced_on_reimport,
    tenants_are_created_once_and_keep_their_names,
    allocation_results_replace_the_month_atomically,
    tokens_are_found_by_hash_and_can_be_revoked,
    job_runs_are_recorded_and_listed_newest_first,
    a_lease_is_held_by_one_holder_until_it_expires,
    api_request_counts_accumulate_per_month,
    cash_balances_and_documents_are_kept,
    sessions_belong_to_their_token_and_a_revocation_counts_once,
    concurrent_allocations_of_one_month_replace_each_other,
    replicas_never_pass_the_request_budget_together,
    job_errors_are_stored_without_secrets,
);

async fn sessions_belong_to_their_token_and_a_revocation_counts_once(store: &dyn Store) {
    let now = ts("2026-11-01T00:00:00Z");
    let token = store
        .create_token(&NewToken { hash: "t".repeat(64), role: "viewer".into(), tenant: None, label: None, created_at: now, expires_at: None })
        .await
        .unwrap();
    let new = |hash: &str, kind, expires_at| NewSession { hash: hash.into(), token_id: token.id, kind, created_at: now, expires_at };
    let s = store.create_session(&new("s1", SessionKind::Session, now + Duration::hours(1))).await.unwrap();
    assert_eq!((s.kind, s.expires_at, s.revoked_at, s.token.id), (SessionKind::Session, now + Duration::hours(1), None, token.id));
    store.create_session(&new("l1", SessionKind::Link, now + Duration::hours(24))).await.unwrap();
    assert_eq!(store.session_by_hash("l1").await.unwrap().unwrap().kind, SessionKind::Link);
    assert!(store.session_by_hash("nope").await.unwrap().is_none());
    // A one-time link is used by exactly one of several concurrent uses.
    let uses = futures::future::join_all((0..6).map(|_| store.revoke_session("l1", now))).await;
    assert_eq!(uses.into_iter().filter(|r| *r.as_ref().unwrap()).count(), 1);
    assert!(store.session_by_hash("l1").await.unwrap().unwrap().revoked_at.is_some());
    // The token's revocation shows on its sessions.
    store.revoke_token(token.id, now).await.unwrap();
    assert!(store.session_by_hash("s1").await.unwrap().unwrap().token.revoked_at.is_some());
    // Sessions that expired more than a day ago are forgotten when another starts.
    store.create_session(&new("old", SessionKind::Session, now - Duration::days(2))).await.unwrap();
    store.create_session(&new("s2", SessionKind::Session, now + Duration::hours(1))).await.unwrap();
    assert!(store.session_by_hash("old").await.unwrap().is_none());
}

async fn concurrent_allocations_of_one_month_replace_each_other(store: &dyn Store) {
    // Six replicas (or six admin requests) allocate the same month at once: every one succeeds,
    // and the month holds one allocation's rows, not a mix and not a duplicate-key error.
    let sets: Vec<AllocationResultSet> = (0..6)
        .map(|i| {
            let cost = format!("{}.00", 10 + i);
            result_set(
                "2026-10",
                vec![alloc("2026-10", "acme", "eks_compute", "AmazonEC2", &cost)],
                vec![daily("2026-10-01", "AmazonEC2", &cost)],
                vec![daily("2026-10-01", "acme", &cost)],
            )
        })
        .collect();
    let done = futures::future::join_all(sets.iter().map(|s| store.replace_allocation(s))).await;
    for r in done {
        r.unwrap();
    }
    let rows = store.allocation_rows(&AllocationFilter::months(month("2026-10"), month("2026-10"))).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(sets.iter().any(|s| s.monthly[0] == rows[0]));
    let q = CostQuery { from: month("2026-10"), to: month("2026-10"), dims: vec![CostDim::Allocatee], allocatee: None, pool: None, service: None };
    assert_eq!(costs(store.monthly_costs(&q).await.unwrap()), vec![("acme".into(), rows[0].unblended, rows[0].amortized)], "the rollup matches the rows");
}

async fn replicas_never_pass_the_request_budget_together(store: &dyn Store) {
    let m = month("2026-10");
    let tries = futures::future::join_all((0..20).map(|_| store.reserve_api_request("cost_explorer", m, 5))).await;
    let granted: Vec<i64> = tries.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(granted.len(), 5, "{granted:?}");
    assert_eq!(store.api_requests("cost_explorer", m).await.unwrap(), 5);
    assert_eq!(store.reserve_api_request("cost_explorer", month("2026-11"), 0).await.unwrap(), None, "a budget of 0 grants nothing");
    assert_eq!(store.api_requests("cost_explorer", month("2026-11")).await.unwrap(), 0);
}

async fn job_errors_are_stored_without_secrets(store: &dyn Store) {
    let at = ts("2026-11-01T00:00:00Z");
    let id = store.start_job_run("collect:usage:redis", "test", at).await.unwrap();
    let error = "Redis URL \"redis://:s3cret-pw@cache:6379\": invalid; postgres://tally:db-s3cret@db/app?password=q-s3cret".to_owned();
    let finish = JobFinish {
        at,
        outcome: JobOutcome::Failed,
        rows_written: 0,
        api_requests: 0,
        error: Some(error),
        detail: Some("token tly_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into()),
    };
    store.finish_job_run(id, &finish).await.unwrap();
    let run = store.job_runs(Some("collect:usage:redis"), 1).await.unwrap().remove(0);
    let shown = format!("{:?} {:?}", run.error, run.detail);
    for secret in ["s3cret-pw", "db-s3cret", "q-s3cret", "0123456789abcdef0123"] {
        assert!(!shown.contains(secret), "{secret} stored in {shown}");
    }
    assert!(shown.contains("redis://:***@cache:6379"), "{shown}");
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn month(s: &str) -> Month {
    Month::parse(s).unwrap()
}

fn line(source: CostSource, hour: &str, service: &str, cost: &str) -> CostLine {
    let period = Period::hour(ts(hour)).unwrap();
    CostLine {
        usage_start: period.start(),
        usage_end: period.end(),
        billing_month: period.month_of(),
        payer_account: "111111111111".into(),
        usage_account: "222222222222".into(),
        service: service.into(),
        usage_type: "USE1-BoxUsage:m5.xlarge".into(),
        operation: "RunInstances".into(),
        resource_id: Some("i-0abc".into()),
        region: Some("us-east-1".into()),
        availability_zone: Some("us-east-1a".into()),
        line_type: LineType::Usage,
        description: Some("$0.192 per On Demand Linux m5.xlarge Instance Hour".into()),
        currency: Currency::USD,
        unblended: dec(cost),
        net_unblended: dec(cost),
        amortized: dec(cost),
        list_cost: Some(dec(cost)),
        usage_amount: dec("1"),
        usage_unit: Some("Hrs".into()),
        instance_type: Some("m5.xlarge".into()),
        commitment_id: None,
        tags: BTreeMap::from([("user_tenant".to_string(), "acme".to_string())]),
        tenant: Some(TenantId::parse("acme").unwrap()),
        estimated: false,
        source,
        provider: None,
    }
}

fn file(m: &str, path: &str, rows: i64) -> NewLakeFile {
    NewLakeFile { month: month(m), path: path.into(), rows, bytes: rows * 100 }
}

fn switch(m: &str, expected: Option<i64>, rows: i64) -> PartitionSwitch {
    PartitionSwitch { month: month(m), expected_version: expected, rows, first_at: Some(month(m).start()), last_at: Some(month(m).end()) }
}

async fn commit(
    store: &dyn Store,
    kind: LakeKind,
    source: &str,
    switches: &[PartitionSwitch],
    files: &[NewLakeFile],
) -> Result<tally_storage::LakeCommitted, StorageError> {
    let rows = files.iter().map(|f| f.rows).sum();
    store
        .lake_commit(LakeCommit {
            kind,
            source,
            label: "test.parquet",
            scope: "months",
            rows,
            partitions: switches,
            files,
            retire_legacy: false,
            at: Utc::now(),
        })
        .await
}

fn paths(files: &[tally_storage::LakeFile]) -> Vec<&str> {
    files.iter().map(|f| f.path.as_str()).collect()
}

async fn migrating_twice_applies_nothing_the_second_time(store: &dyn Store) {
    assert_eq!(store.migrate().await.unwrap(), 0);
    let status = store.migration_status().await.unwrap();
    assert!(status.is_current(), "{status:?}");
    store.ping().await.unwrap();
}

async fn a_switch_supersedes_its_partitions_files_and_leaves_other_months_and_sources_alone(store: &dyn Store) {
    let (oct, nov) = (month("2026-10"), month("2026-11"));
    commit(store, LakeKind::Billing, "cur", &[switch("2026-10", None, 2)], &[file("2026-10", "b/cur/10/a.parquet", 2)]).await.unwrap();
    commit(store, LakeKind::Billing, "cur", &[switch("2026-11", None, 1)], &[file("2026-11", "b/cur/11/a.parquet", 1)]).await.unwrap();
    commit(store, LakeKind::Billing, "cost_explorer", &[switch("2026-10", None, 7)], &[file("2026-10", "b/ce/10/a.parquet", 7)]).await.unwrap();
    commit(store, LakeKind::Usage, "file", &[switch("2026-10", None, 5)], &[file("2026-10", "u/file/10/a.parquet", 5)]).await.unwrap();

    // AWS re-delivers October in two files: they supersede the old one.
    let done = commit(
        store,
        LakeKind::Billing,
        "cur",
        &[switch("2026-10", None, 3)],
        &[file("2026-10", "b/cur/10/b-1.parquet", 2), file("2026-10", "b/cur/10/b-2.parquet", 1)],
    )
    .await
    .unwrap();
    assert_eq!(done.replaced_rows, 2);
    assert_eq!(paths(&done.superseded), ["b/cur/10/a.parquet"]);
    let current = store.lake_files(LakeKind::Billing, Some("cur"), oct, oct).await.unwrap();
    assert_eq!(paths(&current), ["b/cur/10/b-1.parquet", "b/cur/10/b-2.parquet"]);
    assert!(current.iter().all(|f| f.batch_id == done.batch_id && f.superseded_at.is_none()));
    assert_eq!(paths(&store.lake_files(LakeKind::Billing, Some("cur"), nov, nov).await.unwrap()), ["b/cur/11/a.parquet"]);
    assert_eq!(
        paths(&store.lake_files(LakeKind::Billing, None, oct, nov).await.unwrap()),
        ["b/ce/10/a.parquet", "b/cur/10/b-1.parquet", "b/cur/10/b-2.parquet", "b/cur/11/a.parquet"]
    );
    assert_eq!(paths(&store.lake_files(LakeKind::Usage, None, oct, nov).await.unwrap()), ["u/file/10/a.parquet"]);

    let parts = store.lake_partitions(LakeKind::Billing).await.unwrap();
    let summary: Vec<(&str, String, i64, i64)> = parts.iter().map(|p| (p.source.as_str(), p.month.to_string(), p.rows, p.version)).collect();
    assert_eq!(summary, vec![("cost_explorer", "2026-10".into(), 7, 1), ("cur", "2026-10".into(), 3, 2), ("cur", "2026-11".into(), 1, 1)]);
    assert_eq!(parts[1].first_at, Some(oct.start()));
    assert_eq!(store.lake_paths().await.unwrap().len(), 6, "superseded files stay known until deleted");
    let batches = store.import_batches(10).await.unwrap();
    assert_eq!(batches.len(), 5);
    assert_eq!((batches[0].kind.as_str(), batches[0].rows, batches[0].replaced), ("billing", 3, 2));
}

async fn a_switch_from_a_version_another_writer_replaced_is_refused_and_changes_nothing(store: &dyn Store) {
    // Two merges read the new partition (version 0 = absent); the first wins.
    commit(store, LakeKind::Usage, "cloudwatch", &[switch("2026-10", Some(0), 5)], &[file("2026-10", "u/a.parquet", 5)]).await.unwrap();
    let err = commit(store, LakeKind::Usage, "cloudwatch", &[switch("2026-10", Some(0), 6)], &[file("2026-10", "u/b.parquet", 6)]).await.unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)), "{err}");
    // A merge of version 1 switches; one still holding version 1 then cannot.
    commit(store, LakeKind::Usage, "cloudwatch", &[switch("2026-10", Some(1), 7)], &[file("2026-10", "u/c.parquet", 7)]).await.unwrap();
    let err = commit(store, LakeKind::Usage, "cloudwatch", &[switch("2026-10", Some(1), 8)], &[file("2026-10", "u/d.parquet", 8)]).await.unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)), "{err}");
    let current = store.lake_files(LakeKind::Usage, None, month("2026-10"), month("2026-10")).await.unwrap();
    assert_eq!(paths(&current), ["u/c.parquet"]);
    assert_eq!(store.lake_paths().await.unwrap(), ["u/a.parquet", "u/c.parquet"], "refused switches named no file");
    assert_eq!(store.lake_partitions(LakeKind::Usage).await.unwrap()[0].version, 2);
}

async fn a_failed_switch_leaves_the_catalog_exactly_as_it_was(store: &dyn Store) {
    commit(store, LakeKind::Billing, "cur", &[switch("2026-10", None, 1)], &[file("2026-10", "b/a.parquet", 1)]).await.unwrap();
    let batches = store.import_batches(100).await.unwrap().len();
    // A file of a month the switch does not replace is refused before anything is written.
    let err = commit(store, LakeKind::Billing, "cur", &[switch("2026-10", None, 1)], &[file("2026-11", "b/x.parquet", 1)]).await.unwrap_err();
    assert!(err.to_string().contains("2026-11"), "{err}");
    // A path already in the catalog breaks its uniqueness half-way: the whole switch rolls back.
    let files: Vec<NewLakeFile> = (0..1500).map(|i| file("2026-10", &format!("b/n-{i}.parquet"), 1)).chain([file("2026-10", "b/a.parquet", 1)]).collect();
    assert!(commit(store, LakeKind::Billing, "cur", &[switch("2026-10", None, 1501)], &files).await.is_err());
    let current = store.lake_files(LakeKind::Billing, None, month("2026-10"), month("2026-10")).await.unwrap();
    assert_eq!(paths(&current), ["b/a.parquet"]);
    assert!(store.lake_superseded().await.unwrap().is_empty());
    assert_eq!(store.lake_partitions(LakeKind::Billing).await.unwrap()[0].version, 1);
    assert_eq!(store.import_batches(100).await.unwrap().len(), batches);
}

async fn superseded_files_are_forgotten_once_deleted(store: &dyn Store) {
    commit(store, LakeKind::Billing, "cur", &[switch("2026-10", None, 1)], &[file("2026-10", "b/a.parquet", 1)]).await.unwrap();
    commit(store, LakeKind::Billing, "cur", &[switch("2026-10", None, 1)], &[file("2026-10", "b/b.parquet", 1)]).await.unwrap();
    let old = store.lake_superseded().await.unwrap();
    assert_eq!(paths(&old), ["b/a.parquet"]);
    assert!(old[0].superseded_at.is_some());
    // Forgetting only ever drops superseded files.
    let current = store.lake_files(LakeKind::Billing, None, month("2026-10"), month("2026-10")).await.unwrap();
    store.lake_forget(&[old[0].id, current[0].id]).await.unwrap();
    assert!(store.lake_superseded().await.unwrap().is_empty());
    assert_eq!(store.lake_paths().await.unwrap(), ["b/b.parquet"]);
}

fn sample(hour: &str, tenant: &str, metric: &str, value: f64) -> UsageSample {
    UsageSample::new(ts(hour), TenantId::parse(tenant).unwrap(), Metric::parse(metric).unwrap(), value).unwrap()
}

/// A database of an earlier version (migrations 1-4, raw rows in SQL) moves
/// its rows partition by partition, then finishes migrating.
async fn rows_of_an_earlier_version_move_partition_by_partition_exactly(store: &dyn Store) {
    let amounts = ["0.1", "0.2", "0.0000000417", "-12.3456789012", "123456789.123456789", "0"];
    let mut lines: Vec<CostLine> = amounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut l = line(CostSource::Cur, &format!("2026-10-01T{i:02}:00:00Z"), "AmazonEC2", a);
            l.amortized = dec(a) * dec("2");
            l.list_cost = None;
            l
        })
        .collect();
    lines.push(line(CostSource::CostExplorer, "2026-11-01T00:00:00Z", "AmazonEC2", "7"));
    let samples =
        vec![sample("2026-10-31T23:00:00Z", "acme", "egress_gb", 1.5), sample("2026-11-01T00:00:00Z", "acme", "requests", 100.0).with_workload("api-1")];
    store.seed_legacy_rows(&lines, "file", &samples).await.unwrap();
    // Migrating stops before dropping the raw tables while they hold rows.
    store.migrate().await.unwrap();
    let status = store.migration_status().await.unwrap();
    assert_eq!(status.applied.last(), Some(&5), "{status:?}");
    assert!(!status.is_current());

    let parts = store.legacy_partitions().await.unwrap();
    let summary: Vec<(LakeKind, &str, String, i64)> = parts.iter().map(|p| (p.kind, p.source.as_str(), p.month.to_string(), p.rows)).collect();
    assert_eq!(
        summary,
        vec![
            (LakeKind::Billing, "cost_explorer", "2026-11".into(), 1),
            (LakeKind::Billing, "cur", "2026-10".into(), 6),
            (LakeKind::Usage, "file", "2026-10".into(), 1),
            (LakeKind::Usage, "file", "2026-11".into(), 1)
        ]
    );
    let back = store.legacy_cost_lines("cur", month("2026-10")).await.unwrap();
    assert_eq!(back, lines[..6], "every field, including every decimal digit, survives storage");
    assert_eq!(store.legacy_usage("file", month("2026-11")).await.unwrap(), samples[1..]);
    // Each partition's move deletes its rows in the switch's transaction.
    for p in &parts {
        let switches = [switch(&p.month.to_string(), Some(0), p.rows)];
        let files = [file(&p.month.to_string(), &format!("{}/{}/{}.parquet", p.kind, p.source, p.month), p.rows)];
        let commit = LakeCommit {
            kind: p.kind,
            source: &p.source,
            label: "moved",
            scope: "months",
            rows: p.rows,
            partitions: &switches,
            files: &files,
            retire_legacy: true,
            at: Utc::now(),
        };
        let done = store.lake_commit(commit).await.unwrap();
        assert_eq!(done.replaced_rows, p.rows, "the SQL rows it retired");
    }
    assert!(store.legacy_partitions().await.unwrap().is_empty());
    assert_eq!(store.migrate().await.unwrap(), 3, "the drop that waited for the move, then the migrations after it");
    assert!(store.migration_status().await.unwrap().is_current());
    assert!(store.legacy_partitions().await.unwrap().is_empty(), "no raw tables left to read");
}

#[tokio::test]
async fn sqlite_rows_of_an_earlier_version_move_partition_by_partition_exactly() {
    let f = Fixture::sqlite_at(4).await;
    rows_of_an_earlier_version_move_partition_by_partition_exactly(f.store.as_ref()).await;
    f.cleanup().await;
}

#[tokio::test]
async fn postgres_rows_of_an_earlier_version_move_partition_by_partition_exactly() {
    let f = Fixture::postgres_at(4).await;
    rows_of_an_earlier_version_move_partition_by_partition_exactly(f.store.as_ref()).await;
    f.cleanup().await;
}

async fn revenue_of_a_month_is_replaced_on_reimport(store: &dyn Store) {
    let r = |m: &str, t: &str, a: &str| RevenueEntry::new(month(m), TenantId::parse(t).unwrap(), Money::parse(a, Currency::USD).unwrap()).unwrap();
    store.replace_revenue(&[month("2026-10")], &[r("2026-10", "acme", "100.10"), r("2026-10", "globex", "50")]).await.unwrap();
    store.replace_revenue(&[month("2026-11")], &[r("2026-11", "acme", "120")]).await.unwrap();
    store.replace_revenue(&[month("2026-10")], &[r("2026-10", "acme", "99.99")]).await.unwrap();
    let all = store.revenue(month("2026-10"), month("2026-11")).await.unwrap();
    assert_eq!(all, vec![r("2026-10", "acme", "99.99"), r("2026-11", "acme", "120")]);
    store.upsert_revenue(&r("2026-11", "acme", "130.5")).await.unwrap();
    assert_eq!(store.revenue(month("2026-11"), month("2026-11")).await.unwrap(), vec![r("2026-11", "acme", "130.5")]);
    assert!(store.replace_revenue(&[month("2026-10")], &[r("2026-12", "acme", "1")]).await.is_err());
}

async fn tenants_are_created_once_and_keep_their_names(store: &dyn Store) {
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();
    store.upsert_tenants(&[Tenant::new(acme.clone(), "Acme Logistics", Some("enterprise")).unwrap()]).await.unwrap();
    let created = store.ensure_tenants(&[acme.clone(), globex.clone(), globex.clone()]).await.unwrap();
    assert_eq!(created, vec![globex.clone()]);
    let all = store.tenants().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].display_name, "Acme Logistics");
    assert_eq!(all[1].display_name, "globex");
}

fn alloc(m: &str, who: &str, pool: &str, service: &str, cost: &str) -> AllocationRow {
    AllocationRow {
        month: month(m),
        day: None,
        allocatee: Allocatee::parse(who).unwrap(),
        pool: PoolId::parse(pool).unwrap(),
        service: service.into(),
        currency: Currency::USD,
        unblended: dec(cost),
        amortized: dec(cost) - dec("0.01"),
        driver: Some("cpu_request_vcpu_hours".into()),
        driver_quantity: Some(12.5),
        reason: (who == "__unallocated__").then(|| "no usage of requests in 2026-10".into()),
    }
}

fn daily(d: &str, key: &str, cost: &str) -> DailyCost {
    DailyCost {
        day: NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap(),
        key: key.into(),
        currency: Currency::USD,
        unblended: dec(cost),
        amortized: dec(cost) - dec("0.01"),
    }
}

fn result_set(m: &str, monthly: Vec<AllocationRow>, service_daily: Vec<DailyCost>, tenant_daily: Vec<DailyCost>) -> AllocationResultSet {
    let mut billed: BTreeMap<String, Decimal> = BTreeMap::new();
    for r in &monthly {
        *billed.entry(r.service.clone()).or_default() += r.unblended;
    }
    AllocationResultSet {
        month: month(m),
        source: CostSource::Cur,
        billed_lines: 10,
        usage_rows: 20,
        billed: billed
            .iter()
            .map(|(s, t)| BilledTotal { month: month(m), service: s.clone(), currency: Currency::USD, unblended: *t, amortized: *t, lines: 10 })
            .collect(),
        explanations: vec![Explanation {
            month: month(m),
            allocatee: Allocatee::parse("acme").unwrap(),
            pool: PoolId::parse("eks_compute").unwrap(),
            method: "node split".into(),
            driver: Some("allocated_vcpu_hours".into()),
            driver_quantity: Some(12.5),
            pool_driver_quantity: Some(50.0),
            share: 0.25,
            pool_unblended: dec("12.50"),
            allocated_unblended: dec("3.125"),
            pool_amortized: dec("12.50"),
            allocated_amortized: dec("3.125"),
        }],
        monthly,
        service_daily,
        tenant_daily,
        usage: vec![UsageTotal { month: month(m), tenant: TenantId::parse("acme").unwrap(), metric: "requests".into(), value: 1500.5 }],
        inputs: format!("inputs of {m}"),
        created_at: Utc::now(),
    }
}

/// Groups as `(key, unblended, amortized)`, sorted by key (collations differ between databases).
fn costs(rows: Vec<tally_storage::CostRow>) -> Vec<(String, Decimal, Decimal)> {
    let mut out: Vec<(String, Decimal, Decimal)> = rows
        .into_iter()
        .map(|r| {
            let key = [r.month.map(|m| m.to_string()), r.day.map(|d| d.to_string()), r.allocatee, r.pool, r.service]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("/");
            (key, r.unblended, r.amortized)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn allocation_results_replace_the_month_atomically(store: &dyn Store) {
    let first = result_set(
        "2026-10",
        vec![alloc("2026-10", "acme", "eks_compute", "AmazonEC2", "10.00"), alloc("2026-10", "__idle__", "eks_compute", "AmazonEC2", "2.50")],
        vec![daily("2026-10-01", "AmazonEC2", "12.50")],
        vec![daily("2026-10-01", "acme", "10.00"), daily("2026-10-01", "__idle__", "2.50")],
    );
    store.replace_allocation(&first).await.unwrap();
    store
        .replace_allocation(&result_set(
            "2026-11",
            vec![alloc("2026-11", "acme", "shared", "AmazonS3", "1.01")],
            vec![daily("2026-11-03", "AmazonS3", "1.01")],
            vec![daily("2026-11-03", "acme", "1.01")],
        ))
        .await
        .unwrap();
    let second = result_set(
        "2026-10",
        vec![
            alloc("2026-10", "acme", "eks_compute", "AmazonEC2", "11.00"),
            alloc("2026-10", "acme", "transfer", "AWSDataTransfer", "0.07"),
            alloc("2026-10", "__unallocated__", "transfer", "AWSDataTransfer", "1.50"),
        ],
        vec![daily("2026-10-02", "AmazonEC2", "11.00"), daily("2026-10-02", "AWSDataTransfer", "1.57")],
        vec![daily("2026-10-02", "acme", "11.07"), daily("2026-10-02", "__unallocated__", "1.50")],
    );
    store.replace_allocation(&second).await.unwrap();

    let oct = store.allocation_rows(&AllocationFilter::months(month("2026-10"), month("2026-10"))).await.unwrap();
    // Ordered by allocatee: `__unallocated__` sorts before tenant ids.
    assert_eq!(oct, vec![second.monthly[2].clone(), second.monthly[0].clone(), second.monthly[1].clone()]);
    let mut only_acme = AllocationFilter::months(month("2026-10"), month("2026-11"));
    only_acme.allocatee = Some("acme".into());
    assert_eq!(store.allocation_rows(&only_acme).await.unwrap().len(), 3);

    // Sums come from the rollups, exact to the cent on both backends, at the currency's minor units.
    let q = |dims: Vec<CostDim>| CostQuery { from: month("2026-10"), to: month("2026-11"), dims, allocatee: None, pool: None, service: None };
    assert_eq!(
        costs(store.monthly_costs(&q(vec![CostDim::Allocatee])).await.unwrap()),
        vec![("__unallocated__".into(), dec("1.50"), dec("1.49")), ("acme".into(), dec("12.08"), dec("12.05"))]
    );
    assert_eq!(
        costs(store.monthly_costs(&q(vec![CostDim::Month])).await.unwrap()),
        vec![("2026-10".into(), dec("12.57"), dec("12.54")), ("2026-11".into(), dec("1.01"), dec("1.00"))]
    );
    assert_eq!(costs(store.monthly_costs(&q(vec![])).await.unwrap()), vec![(String::new(), dec("13.58"), dec("13.54"))]);
    let mut by_pool = q(vec![CostDim::Pool, CostDim::Service]);
    by_pool.allocatee = Some("acme".into());
    assert_eq!(
        costs(store.monthly_costs(&by_pool).await.unwrap()),
        vec![
            ("eks_compute/AmazonEC2".into(), dec("11.00"), dec("10.99")),
            ("shared/AmazonS3".into(), dec("1.01"), dec("1.00")),
            ("transfer/AWSDataTransfer".into(), dec("0.07"), dec("0.06"))
        ]
    );
    let mut none = q(vec![CostDim::Allocatee]);
    none.from = month("2027-01");
    none.to = month("2027-01");
    assert!(store.monthly_costs(&none).await.unwrap().is_empty());

    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let dq = |by: Option<DailyBy>, per_day: bool| DailyQuery { from: day("2026-10-01"), to: day("2026-12-01"), by, allocatee: None, service: None, per_day };
    assert_eq!(
        costs(store.daily_costs(&dq(Some(DailyBy::Service), true)).await.unwrap()),
        vec![
            ("2026-10/2026-10-02/AWSDataTransfer".into(), dec("1.57"), dec("1.56")),
            ("2026-10/2026-10-02/AmazonEC2".into(), dec("11.00"), dec("10.99")),
            ("2026-11/2026-11-03/AmazonS3".into(), dec("1.01"), dec("1.00"))
        ],
        "the old month's days went with it"
    );
    let mut acme_days = dq(Some(DailyBy::Allocatee), true);
    acme_days.allocatee = Some("acme".into());
    assert_eq!(
        costs(store.daily_costs(&acme_days).await.unwrap()),
        vec![("2026-10/2026-10-02/acme".into(), dec("11.07"), dec("11.06")), ("2026-11/2026-11-03/acme".into(), dec("1.01"), dec("1.00"))]
    );
    assert_eq!(costs(store.daily_costs(&dq(None, false)).await.unwrap()), vec![(String::new(), dec("13.58"), dec("13.55"))]);
    let mut both = dq(Some(DailyBy::Service), true);
    both.allocatee = Some("acme".into());
    assert!(store.daily_costs(&both).await.is_err(), "a tenant's daily cost per service is not kept");

    let usage = store.usage_totals(month("2026-10"), month("2026-11"), Some(&TenantId::parse("acme").unwrap())).await.unwrap();
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0].value.to_string(), "1500.5", "usage comes back as stored");
    assert_eq!(store.pool_quantities(month("2026-10"), month("2026-10"), "eks_compute", None).await.unwrap(), vec![(month("2026-10"), "acme".into(), 12.5)]);
    assert_eq!(store.billed_totals(month("2026-10")).await.unwrap()[1].unblended, dec("11.00"));
    let ex = store.explanations(month("2026-10"), Some("acme")).await.unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].allocated_unblended, dec("3.125"));
    let runs = store.allocation_runs().await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].inputs.as_deref(), Some("inputs of 2026-10"));
}

async fn tokens_are_found_by_hash_and_can_be_revoked(store: &dyn Store) {
    let t = store
        .create_token(&NewToken {
            hash: "ab".repeat(32),
            role: "tenant".into(),
            tenant: Some(TenantId::parse("acme").unwrap()),
            label: Some("acme dashboard".into()),
            created_at: Utc::now(),
            expires_at: Some(Utc::now() + Duration::days(30)),
        })
        .await
        .unwrap();
    let found = store.token_by_hash(&"ab".repeat(32)).await.unwrap().unwrap();
    assert_eq!(found.id, t.id);
    assert_eq!(found.tenant.as_ref().map(TenantId::as_str), Some("acme"));
    assert!(store.token_by_hash(&"cd".repeat(32)).await.unwrap().is_none());
    assert!(store.revoke_token(t.id, Utc::now()).await.unwrap());
    assert!(!store.revoke_token(t.id, Utc::now()).await.unwrap(), "revoking twice reports nothing to revoke");
    assert!(store.token_by_hash(&"ab".repeat(32)).await.unwrap().unwrap().revoked_at.is_some());
    assert_eq!(store.tokens().await.unwrap().len(), 1);
}

async fn job_runs_are_recorded_and_listed_newest_first(store: &dyn Store) {
    let t0 = ts("2026-10-01T06:00:00Z");
    let a = store.start_job_run("collect_costs", "host-a", t0).await.unwrap();
    store
        .finish_job_run(
            a,
            &JobFinish { at: t0 + Duration::seconds(5), outcome: JobOutcome::Succeeded, rows_written: 42, api_requests: 3, error: None, detail: None },
        )
        .await
        .unwrap();
    let b = store.start_job_run("collect_costs", "host-a", t0 + Duration::hours(1)).await.unwrap();
    store
        .finish_job_run(
            b,
            &JobFinish {
                at: t0 + Duration::hours(1),
                outcome: JobOutcome::Failed,
                rows_written: 0,
                api_requests: 1,
                error: Some("throttled".into()),
                detail: None,
            },
        )
        .await
        .unwrap();
    let runs = store.job_runs(Some("collect_costs"), 10).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b, a]);
    assert_eq!(runs[1].rows_written, 42);
    assert_eq!(runs[0].error.as_deref(), Some("throttled"));
    assert_eq!(store.last_job_start("collect_costs").await.unwrap(), Some(t0), "failed runs do not count as done");
    assert_eq!(store.last_successes().await.unwrap(), vec![("collect_costs".to_string(), t0 + Duration::seconds(5))]);
}

async fn a_lease_is_held_by_one_holder_until_it_expires(store: &dyn Store) {
    let t0 = ts("2026-10-01T06:00:00Z");
    let ttl = Duration::seconds(60);
    assert!(store.try_lease("allocate", "a", t0, ttl).await.unwrap());
    assert!(!store.try_lease("allocate", "b", t0 + Duration::seconds(30), ttl).await.unwrap());
    assert!(store.try_lease("allocate", "a", t0 + Duration::seconds(30), ttl).await.unwrap(), "the holder renews");
    assert!(!store.try_lease("allocate", "b", t0 + Duration::seconds(89), ttl).await.unwrap());
    assert!(store.try_lease("allocate", "b", t0 + Duration::seconds(91), ttl).await.unwrap(), "an expired lease can be taken");
    store.release_lease("allocate", "a").await.unwrap();
    assert!(!store.try_lease("allocate", "a", t0 + Duration::seconds(92), ttl).await.unwrap(), "releasing another's lease does nothing");
    store.release_lease("allocate", "b").await.unwrap();
    assert!(store.try_lease("allocate", "a", t0 + Duration::seconds(93), ttl).await.unwrap());
}

async fn api_request_counts_accumulate_per_month(store: &dyn Store) {
    assert_eq!(store.api_requests("cost_explorer", month("2026-10")).await.unwrap(), 0);
    assert_eq!(store.add_api_requests("cost_explorer", month("2026-10"), 3).await.unwrap(), 3);
    assert_eq!(store.add_api_requests("cost_explorer", month("2026-10"), 4).await.unwrap(), 7);
    assert_eq!(store.add_api_requests("cost_explorer", month("2026-11"), 1).await.unwrap(), 1);
    assert_eq!(store.api_requests("cost_explorer", month("2026-10")).await.unwrap(), 7);
}

async fn cash_balances_and_documents_are_kept(store: &dyn Store) {
    let b = store
        .add_cash_balance(&NewCashBalance {
            as_of: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            amount: Money::parse("180000.55", Currency::USD).unwrap(),
            note: Some("bank statement".into()),
        })
        .await
        .unwrap();
    assert_eq!(store.cash_balances().await.unwrap(), vec![b]);
    assert!(store.document("prices").await.unwrap().is_none());
    store.put_document("prices", "{\"a\":1}", ts("2026-10-01T00:00:00Z")).await.unwrap();
    store.put_document("prices", "{\"a\":2}", ts("2026-10-02T00:00:00Z")).await.unwrap();
    assert_eq!(store.document("prices").await.unwrap(), Some(("{\"a\":2}".to_string(), ts("2026-10-02T00:00:00Z"))));
}

/// The database holds token hashes, revenue and cash: readable by its owner only.
#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_is_created_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tally.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    store.migrate().await.unwrap();
    for file in [path.clone(), dir.path().join("tally.db-wal")] {
        if file.exists() {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
        }
    }
}
