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
    AllocationFilter, AllocationResultSet, BilledTotal, CostImport, CostLineFilter, JobFinish, NewCashBalance, NewToken, PostgresStore, ReplaceScope,
    SqliteStore, Store, UsageImport,
};

/// A store plus whatever keeps it alive and cleans it up.
struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl Fixture {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("nested/tally.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        Self { store: Arc::new(store), _dir: Some(dir), pg_name: None }
    }

    async fn postgres() -> Self {
        let name = tally_test_support::unique_name("tally_contract");
        PostgresStore::create_database(&tally_test_support::postgres_url("postgres"), &name).await.unwrap();
        let store = PostgresStore::connect(&tally_test_support::postgres_url(&name)).await.unwrap();
        store.migrate().await.unwrap();
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
    reimporting_a_billing_month_replaces_it_and_leaves_other_months_and_sources_alone,
    a_failed_import_leaves_the_database_exactly_as_it_was,
    lines_outside_the_import_scope_are_refused,
    cost_explorer_windows_replace_the_days_they_cover,
    money_round_trips_exactly,
    reimporting_usage_hours_replaces_them_per_metric,
    revenue_of_a_month_is_replaced_on_reimport,
    tenants_are_created_once_and_keep_their_names,
    allocation_results_replace_the_month_atomically,
    tokens_are_found_by_hash_and_can_be_revoked,
    job_runs_are_recorded_and_listed_newest_first,
    a_lease_is_held_by_one_holder_until_it_expires,
    api_request_counts_accumulate_per_month,
    cash_balances_and_documents_are_kept,
);

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

async fn total(store: &dyn Store, m: &str, source: CostSource) -> (usize, Decimal) {
    let lines = store.cost_lines(&CostLineFilter { billing_month: Some(month(m)), source: Some(source), ..Default::default() }).await.unwrap();
    (lines.len(), lines.iter().map(|l| l.unblended).sum())
}

async fn import(store: &dyn Store, source: CostSource, months: &[&str], lines: &[CostLine]) -> tally_storage::ImportSummary {
    let scope = ReplaceScope::BillingMonths(months.iter().map(|m| month(m)).collect());
    store.replace_cost_lines(CostImport { source, label: "test.parquet", scope: &scope, lines }).await.unwrap()
}

async fn migrating_twice_applies_nothing_the_second_time(store: &dyn Store) {
    assert_eq!(store.migrate().await.unwrap(), 0);
    let status = store.migration_status().await.unwrap();
    assert!(status.is_current(), "{status:?}");
    store.ping().await.unwrap();
}

async fn reimporting_a_billing_month_replaces_it_and_leaves_other_months_and_sources_alone(store: &dyn Store) {
    let oct = vec![line(CostSource::Cur, "2026-10-01T00:00:00Z", "AmazonEC2", "0.192"), line(CostSource::Cur, "2026-10-01T01:00:00Z", "AmazonEC2", "0.192")];
    let nov = vec![line(CostSource::Cur, "2026-11-01T00:00:00Z", "AmazonEC2", "0.5")];
    let ce = vec![line(CostSource::CostExplorer, "2026-10-01T00:00:00Z", "AmazonEC2", "7")];
    import(store, CostSource::Cur, &["2026-10"], &oct).await;
    import(store, CostSource::Cur, &["2026-11"], &nov).await;
    import(store, CostSource::CostExplorer, &["2026-10"], &ce).await;

    // AWS re-delivers October with one more line: it supersedes the old one.
    let mut oct2 = oct.clone();
    oct2.push(line(CostSource::Cur, "2026-10-01T02:00:00Z", "AmazonEC2", "0.192"));
    let summary = import(store, CostSource::Cur, &["2026-10"], &oct2).await;
    assert_eq!(summary.replaced, 2);
    assert_eq!(summary.inserted, 3);
    assert_eq!(total(store, "2026-10", CostSource::Cur).await, (3, dec("0.576")));
    // The same delivery again changes nothing.
    import(store, CostSource::Cur, &["2026-10"], &oct2).await;
    assert_eq!(total(store, "2026-10", CostSource::Cur).await, (3, dec("0.576")));
    assert_eq!(total(store, "2026-11", CostSource::Cur).await, (1, dec("0.5")));
    assert_eq!(total(store, "2026-10", CostSource::CostExplorer).await, (1, dec("7")));

    let sources = store.billing_sources(month("2026-10")).await.unwrap();
    assert_eq!(sources, vec![(CostSource::CostExplorer, 1), (CostSource::Cur, 3)]);
    assert_eq!(store.billing_months().await.unwrap(), vec![month("2026-10"), month("2026-11")]);
    let batches = store.import_batches(10).await.unwrap();
    assert_eq!(batches.len(), 5);
    assert_eq!(batches[0].scope, "months 2026-10");
}

async fn a_failed_import_leaves_the_database_exactly_as_it_was(store: &dyn Store) {
    let good: Vec<CostLine> = (0..5).map(|h| line(CostSource::Cur, &format!("2026-10-01T0{h}:00:00Z"), "AmazonEC2", "1")).collect();
    import(store, CostSource::Cur, &["2026-10"], &good).await;
    let before = total(store, "2026-10", CostSource::Cur).await;
    let batches_before = store.import_batches(100).await.unwrap().len();

    // 2,500 lines: the first two INSERT chunks succeed, the third breaks a
    // database constraint (an empty service), so the whole import must roll back.
    let mut bad: Vec<CostLine> =
        (0..2500).map(|i| line(CostSource::Cur, &format!("2026-10-{:02}T{:02}:00:00Z", 1 + (i / 24) % 28, i % 24), "AmazonEC2", "2")).collect();
    bad[2400].service = String::new();
    let scope = ReplaceScope::BillingMonths(vec![month("2026-10")]);
    let err = store.replace_cost_lines(CostImport { source: CostSource::Cur, label: "bad.parquet", scope: &scope, lines: &bad }).await;
    assert!(err.is_err());
    assert_eq!(total(store, "2026-10", CostSource::Cur).await, before);
    assert_eq!(store.import_batches(100).await.unwrap().len(), batches_before);
}

async fn lines_outside_the_import_scope_are_refused(store: &dyn Store) {
    let lines = vec![line(CostSource::Cur, "2026-11-01T00:00:00Z", "AmazonEC2", "1")];
    let scope = ReplaceScope::BillingMonths(vec![month("2026-10")]);
    let err = store.replace_cost_lines(CostImport { source: CostSource::Cur, label: "x", scope: &scope, lines: &lines }).await.unwrap_err();
    assert!(err.to_string().contains("outside the import's scope"), "{err}");
    let wrong_source = vec![line(CostSource::Focus, "2026-10-01T00:00:00Z", "AmazonEC2", "1")];
    assert!(store.replace_cost_lines(CostImport { source: CostSource::Cur, label: "x", scope: &scope, lines: &wrong_source }).await.is_err());
}

async fn cost_explorer_windows_replace_the_days_they_cover(store: &dyn Store) {
    let day = |d: &str, cost: &str| {
        let mut l = line(CostSource::CostExplorer, &format!("{d}T00:00:00Z"), "AmazonEC2", cost);
        let p = Period::day(NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap());
        l.usage_start = p.start();
        l.usage_end = p.end();
        l.estimated = true;
        l
    };
    let first = vec![day("2026-10-01", "10"), day("2026-10-02", "10"), day("2026-10-03", "10")];
    let scope = ReplaceScope::UsageDays { from: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(), to: NaiveDate::from_ymd_opt(2026, 10, 3).unwrap() };
    store.replace_cost_lines(CostImport { source: CostSource::CostExplorer, label: "ce", scope: &scope, lines: &first }).await.unwrap();
    // A restatement of the last two days: day 3 changed.
    let second = vec![day("2026-10-02", "10"), day("2026-10-03", "12.5")];
    let scope = ReplaceScope::UsageDays { from: NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(), to: NaiveDate::from_ymd_opt(2026, 10, 3).unwrap() };
    let s = store.replace_cost_lines(CostImport { source: CostSource::CostExplorer, label: "ce", scope: &scope, lines: &second }).await.unwrap();
    assert_eq!(s.replaced, 2);
    assert_eq!(total(store, "2026-10", CostSource::CostExplorer).await, (3, dec("32.5")));
    let lines = store.cost_lines(&CostLineFilter { source: Some(CostSource::CostExplorer), ..Default::default() }).await.unwrap();
    assert!(lines.iter().all(|l| l.estimated && l.granularity() == tally_domain::Granularity::Day));
}

async fn money_round_trips_exactly(store: &dyn Store) {
    let amounts = ["0.1", "0.2", "0.0000000417", "-12.3456789012", "123456789.123456789", "0"];
    let lines: Vec<CostLine> = amounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut l = line(CostSource::Cur, &format!("2026-10-01T{i:02}:00:00Z"), "AmazonEC2", a);
            l.amortized = dec(a) * dec("2");
            l.list_cost = None;
            l
        })
        .collect();
    import(store, CostSource::Cur, &["2026-10"], &lines).await;
    let back = store.cost_lines(&CostLineFilter { billing_month: Some(month("2026-10")), ..Default::default() }).await.unwrap();
    assert_eq!(back, lines, "every field, including every decimal digit, survives storage");
    let sum: Decimal = back.iter().map(|l| l.unblended).sum();
    assert_eq!(sum, dec("123456777.0777779295"));
}

fn sample(hour: &str, tenant: &str, metric: &str, value: f64) -> UsageSample {
    UsageSample::new(ts(hour), TenantId::parse(tenant).unwrap(), Metric::parse(metric).unwrap(), value).unwrap()
}

async fn reimporting_usage_hours_replaces_them_per_metric(store: &dyn Store) {
    let a = vec![
        sample("2026-10-01T00:00:00Z", "acme", "egress_gb", 1.0),
        sample("2026-10-01T01:00:00Z", "acme", "egress_gb", 2.0),
        sample("2026-10-01T00:00:00Z", "acme", "requests", 100.0).with_workload("api-1"),
    ];
    store.replace_usage(UsageImport { source: "file", label: "a.csv", samples: &a }).await.unwrap();
    // The same hours of egress again, from another delivery: replaced, requests untouched.
    let b = vec![sample("2026-10-01T00:00:00Z", "acme", "egress_gb", 5.0), sample("2026-10-01T01:00:00Z", "globex", "egress_gb", 3.0)];
    let s = store.replace_usage(UsageImport { source: "file", label: "b.csv", samples: &b }).await.unwrap();
    assert_eq!(s.replaced, 2);
    // Another source's samples for the same hours stay.
    let c = vec![sample("2026-10-01T00:00:00Z", "acme", "egress_gb", 7.0)];
    store.replace_usage(UsageImport { source: "cloudwatch", label: "cw", samples: &c }).await.unwrap();

    let all = store.usage(ts("2026-10-01T00:00:00Z"), ts("2026-10-02T00:00:00Z")).await.unwrap();
    assert_eq!(all.len(), 4);
    let totals = store.usage_totals(ts("2026-10-01T00:00:00Z"), ts("2026-10-02T00:00:00Z")).await.unwrap();
    let get = |t: &str, m: &str| totals.iter().find(|x| x.tenant.as_str() == t && x.metric == m).map(|x| x.value);
    assert_eq!(get("acme", "egress_gb"), Some(12.0));
    assert_eq!(get("globex", "egress_gb"), Some(3.0));
    assert_eq!(get("acme", "requests"), Some(100.0));
    assert_eq!(all.iter().find(|s| s.metric.as_str() == "requests").unwrap().workload.as_deref(), Some("api-1"));
    // Half-open: the end hour is excluded.
    assert_eq!(store.usage(ts("2026-10-01T00:00:00Z"), ts("2026-10-01T01:00:00Z")).await.unwrap().len(), 3);
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

fn alloc(m: &str, day: Option<&str>, who: &str, pool: &str, cost: &str) -> AllocationRow {
    AllocationRow {
        month: month(m),
        day: day.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()),
        allocatee: Allocatee::parse(who).unwrap(),
        pool: PoolId::parse(pool).unwrap(),
        service: "AmazonEC2".into(),
        currency: Currency::USD,
        unblended: dec(cost),
        amortized: dec(cost),
        driver: Some("cpu_request_vcpu_hours".into()),
        driver_quantity: Some(12.5),
        reason: (who == "__unallocated__").then(|| "no usage of requests in 2026-10".into()),
    }
}

fn result_set(m: &str, monthly: Vec<AllocationRow>, daily: Vec<AllocationRow>) -> AllocationResultSet {
    let total: Decimal = monthly.iter().map(|r| r.unblended).sum();
    AllocationResultSet {
        month: month(m),
        source: CostSource::Cur,
        billed_lines: 10,
        usage_rows: 20,
        billed: vec![BilledTotal { month: month(m), service: "AmazonEC2".into(), currency: Currency::USD, unblended: total, amortized: total, lines: 10 }],
        explanations: vec![Explanation {
            month: month(m),
            allocatee: Allocatee::parse("acme").unwrap(),
            pool: PoolId::parse("eks_compute").unwrap(),
            method: "node split".into(),
            driver: Some("cpu_request_vcpu_hours".into()),
            driver_quantity: Some(12.5),
            pool_driver_quantity: Some(50.0),
            share: 0.25,
            pool_unblended: total,
            allocated_unblended: total / dec("4"),
            pool_amortized: total,
            allocated_amortized: total / dec("4"),
        }],
        monthly,
        daily,
        created_at: Utc::now(),
    }
}

async fn allocation_results_replace_the_month_atomically(store: &dyn Store) {
    let first = result_set(
        "2026-10",
        vec![alloc("2026-10", None, "acme", "eks_compute", "10.00"), alloc("2026-10", None, "__idle__", "eks_compute", "2.50")],
        vec![alloc("2026-10", Some("2026-10-01"), "acme", "eks_compute", "10.00"), alloc("2026-10", Some("2026-10-02"), "__idle__", "eks_compute", "2.50")],
    );
    store.replace_allocation(&first).await.unwrap();
    store.replace_allocation(&result_set("2026-11", vec![alloc("2026-11", None, "acme", "shared", "1")], vec![])).await.unwrap();
    let second = result_set(
        "2026-10",
        vec![alloc("2026-10", None, "acme", "eks_compute", "11.00"), alloc("2026-10", None, "__unallocated__", "transfer", "1.50")],
        vec![],
    );
    store.replace_allocation(&second).await.unwrap();

    let oct = store.allocation_rows(&AllocationFilter::months(month("2026-10"), month("2026-10"))).await.unwrap();
    // Ordered by allocatee: `__unallocated__` sorts before tenant ids.
    let expected: Vec<AllocationRow> = vec![second.monthly[1].clone(), second.monthly[0].clone()];
    assert_eq!(oct, expected);
    let mut daily_filter = AllocationFilter::months(month("2026-10"), month("2026-10"));
    daily_filter.daily = true;
    assert!(store.allocation_rows(&daily_filter).await.unwrap().is_empty(), "old daily rows went with the month");
    let both = store.allocation_rows(&AllocationFilter::months(month("2026-10"), month("2026-11"))).await.unwrap();
    assert_eq!(both.len(), 3);
    let mut only_acme = AllocationFilter::months(month("2026-10"), month("2026-11"));
    only_acme.allocatee = Some("acme".into());
    assert_eq!(store.allocation_rows(&only_acme).await.unwrap().len(), 2);
    assert_eq!(store.billed_totals(month("2026-10")).await.unwrap()[0].unblended, dec("12.50"));
    let ex = store.explanations(month("2026-10"), Some("acme")).await.unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].allocated_unblended, dec("3.125"));
    assert_eq!(store.allocation_runs().await.unwrap().len(), 2);
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
