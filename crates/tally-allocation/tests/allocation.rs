//! The allocation's invariants, on hand-computed fixtures, on the demo
//! month, and on random inputs.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use tally_allocation::{MonthAllocation, allocate, allocate_month};
use tally_domain::{
    Allocatee, AllocationConfig, CostLine, CostSource, Currency, IdlePolicy, LineType, Metric, Month, PoolMethod, SharedPolicy, TenantId, UsageSample,
};

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn oct() -> Month {
    Month::parse("2026-10").unwrap()
}

fn line(start: &str, hours: i64, service: &str, usage_type: &str, resource: Option<&str>, cost: &str) -> CostLine {
    let usage_start = ts(start);
    CostLine {
        usage_start,
        usage_end: usage_start + Duration::hours(hours),
        billing_month: Month::of(usage_start),
        payer_account: "1".into(),
        usage_account: "1".into(),
        service: service.into(),
        usage_type: usage_type.into(),
        operation: String::new(),
        resource_id: resource.map(str::to_owned),
        region: None,
        availability_zone: None,
        line_type: LineType::Usage,
        description: None,
        currency: Currency::USD,
        unblended: d(cost),
        net_unblended: d(cost),
        amortized: d(cost),
        list_cost: None,
        usage_amount: Decimal::ONE,
        usage_unit: None,
        instance_type: None,
        commitment_id: None,
        tags: BTreeMap::new(),
        tenant: None,
        estimated: false,
        source: CostSource::Cur,
        provider: None,
    }
}

fn node_hour(start: &str, node: &str, cost: &str) -> CostLine {
    let mut l = line(start, 1, "AmazonEC2", "BoxUsage:m5.xlarge", Some(node), cost);
    l.instance_type = Some("m5.xlarge".into());
    l
}

fn sample(hour: &str, tenant: &str, metric: &str, value: f64) -> UsageSample {
    UsageSample::new(ts(hour), TenantId::parse(tenant).unwrap(), Metric::parse(metric).unwrap(), value).unwrap()
}

fn pod(hour: &str, tenant: &str, node: &str, pod: &str, cpu: (f64, f64), mem: (f64, f64)) -> Vec<UsageSample> {
    [("cpu_request_vcpu_hours", cpu.0), ("cpu_used_vcpu_hours", cpu.1), ("mem_request_gb_hours", mem.0), ("mem_used_gb_hours", mem.1)]
        .into_iter()
        .map(|(m, v)| sample(hour, tenant, m, v).with_resource(node).with_workload(pod))
        .collect()
}

/// What an allocatee gets from a pool, summed over services, unblended.
fn got(a: &MonthAllocation, who: &str, pool: &str) -> Decimal {
    a.monthly.iter().filter(|r| r.allocatee.as_str() == who && r.pool.as_str() == pool).map(|r| r.unblended).sum()
}

/// Per service the monthly rows add up to the month's bill, per day and
/// service the daily figures to that day's bill (computed here from the
/// lines), and per day the allocatees' figures to the day's bill.
fn assert_reconciles(a: &MonthAllocation, lines: &[CostLine]) {
    let cents = |d: Decimal| d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    for t in &a.billed {
        let rows: Vec<_> = a.monthly.iter().filter(|r| r.service == t.service).collect();
        let u: Decimal = rows.iter().map(|r| r.unblended).sum();
        let am: Decimal = rows.iter().map(|r| r.amortized).sum();
        assert_eq!(u, t.unblended.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero), "{} unblended", t.service);
        assert_eq!(am, t.amortized.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero), "{} amortized", t.service);
    }
    let mut bill: BTreeMap<(chrono::NaiveDate, &str), (Decimal, Decimal)> = BTreeMap::new();
    for l in lines {
        let e = bill.entry((l.day(), l.service.as_str())).or_default();
        e.0 += l.unblended;
        e.1 += l.amortized;
    }
    let daily: BTreeMap<(chrono::NaiveDate, &str), (Decimal, Decimal)> =
        a.service_daily.iter().map(|d| ((d.day, d.key.as_str()), (d.unblended, d.amortized))).collect();
    for (k, (u, am)) in &bill {
        let got = daily.get(k).copied().unwrap_or_default();
        assert_eq!(got, (cents(*u), cents(*am)), "{k:?}: the day's rows against the day's bill");
    }
    assert!(daily.keys().all(|k| bill.contains_key(k)), "no day or service the bill does not have");
    let mut per_day: BTreeMap<chrono::NaiveDate, (Decimal, Decimal)> = BTreeMap::new();
    for t in &a.tenant_daily {
        let e = per_day.entry(t.day).or_default();
        e.0 += t.unblended;
        e.1 += t.amortized;
    }
    for (day, (u, am)) in &per_day {
        let want: (Decimal, Decimal) =
            daily.iter().filter(|((d, _), _)| d == day).fold((Decimal::ZERO, Decimal::ZERO), |acc, (_, (u, a))| (acc.0 + u, acc.1 + a));
        assert_eq!((*u, *am), want, "{day}: the allocatees add up to the day's bill");
    }
}

fn eks_fixture() -> (Vec<CostLine>, Vec<UsageSample>) {
    let h = "2026-10-05T14:00:00Z";
    let lines = vec![node_hour(h, "i-node1", "5.20"), line(h, 1, "AmazonEKS", "USE1-AmazonEKS-Hours:perCluster", None, "0.10")];
    let mut usage = pod(h, "acme", "i-node1", "api-1", (1.0, 0.5), (4.0, 2.0));
    usage.extend(pod(h, "globex", "i-node1", "worker-1", (0.5, 1.5), (2.0, 1.0)));
    (lines, usage)
}

#[test]
fn a_node_hour_is_split_into_cpu_and_memory_parts_and_idle_is_kept_when_configured() {
    let (lines, usage) = eks_fixture();
    let mut cfg = AllocationConfig::default();
    cfg.pools[0].idle_policy = Some(IdlePolicy::Keep);
    let a = allocate_month(&cfg, Currency::USD, oct(), &lines, &usage).unwrap();
    // m5.xlarge: 4 vCPU x 9 : 16 GB x 1, so of $5.20 the CPU part is $3.60 and memory $1.60.
    // acme allocates max(1, 0.5) = 1 vCPU and max(4, 2) = 4 GB: 3.60 x 1/4 + 1.60 x 4/16 = 1.30.
    assert_eq!(got(&a, "acme", "eks_compute"), d("1.30"));
    // globex allocates max(0.5, 1.5) = 1.5 vCPU and 2 GB: 3.60 x 1.5/4 + 1.60 x 2/16 = 1.55.
    assert_eq!(got(&a, "globex", "eks_compute"), d("1.55"));
    // Unused: 1.5 of 4 vCPU and 10 of 16 GB: 1.35 + 1.00.
    assert_eq!(got(&a, "__idle__", "eks_compute"), d("2.35"));
    assert_reconciles(&a, &lines);
}

#[test]
fn idle_capacity_is_shared_over_the_node_hours_pods_by_default() {
    let (lines, usage) = eks_fixture();
    let a = allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &lines, &usage).unwrap();
    // acme: 3.60 x 1/2.5 + 1.60 x 4/6 = 2.5067; globex: 3.60 x 1.5/2.5 + 1.60 x 2/6 = 2.6933.
    assert_eq!(got(&a, "acme", "eks_compute"), d("2.51"));
    assert_eq!(got(&a, "globex", "eks_compute"), d("2.69"));
    assert_eq!(got(&a, "__idle__", "eks_compute"), Decimal::ZERO);
    // The control plane follows each tenant's EKS compute cost of the day.
    assert_eq!(got(&a, "acme", "eks_control_plane") + got(&a, "globex", "eks_control_plane"), d("0.10"));
    assert_reconciles(&a, &lines);
    let ex = a.explanations.iter().find(|e| e.allocatee.as_str() == "globex" && e.pool.as_str() == "eks_compute").unwrap();
    assert_eq!(ex.driver_quantity, Some(1.5));
    assert_eq!(ex.pool_driver_quantity, Some(2.5));
    assert!(ex.method.contains("max(request, used)"));
}

#[test]
fn a_node_of_unknown_size_is_unallocated_with_a_reason_that_says_how_to_fix_it() {
    let (mut lines, usage) = eks_fixture();
    lines[0].instance_type = Some("x9z.mega".into());
    lines[0].usage_type = "BoxUsage:x9z.mega".into();
    let a = allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &lines, &usage).unwrap();
    let row = a.monthly.iter().find(|r| r.allocatee == Allocatee::Unallocated).unwrap();
    assert_eq!(row.unblended, d("5.20"));
    assert!(row.reason.as_deref().unwrap().contains("x9z.mega"), "{row:?}");
    assert_reconciles(&a, &lines);
}

#[test]
fn rds_compute_falls_back_to_storage_where_no_execution_time_was_collected() {
    let h1 = "2026-10-05T10:00:00Z";
    let h2 = "2026-10-05T11:00:00Z";
    let lines =
        vec![line(h1, 1, "AmazonRDS", "Multi-AZUsage:db.r6g.xl", Some("db"), "0.90"), line(h2, 1, "AmazonRDS", "Multi-AZUsage:db.r6g.xl", Some("db"), "0.90")];
    let usage = vec![
        sample(h1, "acme", "db_exec_seconds", 30.0),
        sample(h1, "globex", "db_exec_seconds", 15.0),
        sample(h2, "acme", "db_storage_gb", 100.0),
        sample(h2, "globex", "db_storage_gb", 300.0),
    ];
    let a = allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &lines, &usage).unwrap();
    // Hour 1 by execution time 2:1 (0.60 / 0.30), hour 2 by storage 1:3 (0.225 / 0.675).
    assert_eq!(got(&a, "acme", "rds_compute"), d("0.83"));
    assert_eq!(got(&a, "globex", "rds_compute"), d("0.97"));
    let row = a.monthly.iter().find(|r| r.pool.as_str() == "rds_compute").unwrap();
    assert_eq!(row.driver.as_deref(), Some("db_exec_seconds (falling back to db_storage_gb where none)"));
    assert_reconciles(&a, &lines);
}

#[test]
fn a_pool_whose_driver_has_no_usage_goes_to_unallocated_with_its_reason_and_nothing_is_dropped() {
    let h = "2026-10-05T10:00:00Z";
    let lines = vec![line(h, 1, "AWSDataTransfer", "DataTransfer-Out-Bytes", None, "1.23"), line(h, 1, "AWSELB", "LoadBalancerUsage", None, "0.02")];
    let usage = vec![sample(h, "acme", "requests", 100.0)];
    let a = allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &lines, &usage).unwrap();
    let un = a.monthly.iter().find(|r| r.allocatee == Allocatee::Unallocated).unwrap();
    assert_eq!((un.pool.as_str(), un.unblended), ("transfer", d("1.23")));
    assert_eq!(un.reason.as_deref(), Some("no egress_gb usage in the line's hour"));
    assert_eq!(got(&a, "acme", "load_balancer"), d("0.02"));
    assert_eq!(got(&a, "globex", "transfer"), Decimal::ZERO, "a tenant with no driver quantity gets nothing");
    assert_reconciles(&a, &lines);
}

fn shared_fixture() -> (Vec<CostLine>, Vec<UsageSample>) {
    let h = "2026-10-05T10:00:00Z";
    let mut tagged = line(h, 1, "AmazonS3", "TimedStorage-ByteHrs", Some("bucket-acme"), "3.00");
    tagged.tenant = Some(TenantId::parse("acme").unwrap());
    let lines = vec![tagged, line(h, 1, "AWSELB", "LoadBalancerUsage", None, "1.00"), line(h, 24, "AmazonCloudWatch", "CW:MetricMonitorUsage", None, "10.00")];
    let usage = vec![sample(h, "acme", "requests", 1.0), sample(h, "globex", "requests", 1.0), sample(h, "initech", "egress_gb", 0.0)];
    (lines, usage)
}

#[test]
fn shared_costs_follow_each_tenants_other_costs_by_default() {
    let (lines, usage) = shared_fixture();
    let a = allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &lines, &usage).unwrap();
    // acme: 3.00 direct + 0.50 ALB; globex: 0.50 ALB. Shared $10 splits 3.5 : 0.5.
    assert_eq!(got(&a, "acme", "direct"), d("3.00"));
    assert_eq!(got(&a, "acme", "shared"), d("8.75"));
    assert_eq!(got(&a, "globex", "shared"), d("1.25"));
    assert_reconciles(&a, &lines);
}

#[test]
fn shared_costs_can_be_split_evenly_by_fixed_weights_or_kept() {
    let (lines, usage) = shared_fixture();
    let mut cfg = AllocationConfig { shared_policy: SharedPolicy::Even, ..AllocationConfig::default() };
    let a = allocate_month(&cfg, Currency::USD, oct(), &lines, &usage).unwrap();
    // Three tenants were active (initech has usage rows): 10 / 3 each, largest remainder to the first.
    assert_eq!(got(&a, "acme", "shared"), d("3.34"));
    assert_eq!(got(&a, "initech", "shared"), d("3.33"));
    cfg.shared_policy = SharedPolicy::Fixed;
    cfg.fixed_weights = BTreeMap::from([(TenantId::parse("globex").unwrap(), 3.0), (TenantId::parse("initech").unwrap(), 1.0)]);
    let a = allocate_month(&cfg, Currency::USD, oct(), &lines, &usage).unwrap();
    assert_eq!(got(&a, "globex", "shared"), d("7.50"));
    assert_eq!(got(&a, "acme", "shared"), Decimal::ZERO);
    cfg.shared_policy = SharedPolicy::Keep;
    let a = allocate_month(&cfg, Currency::USD, oct(), &lines, &usage).unwrap();
    assert_eq!(got(&a, "__shared__", "shared"), d("10.00"));
    assert_reconciles(&a, &lines);
}

#[test]
fn tax_follows_the_service_it_is_billed_for_and_credits_the_service_they_name() {
    let (mut lines, usage) = shared_fixture();
    let month_line = |service: &str, usage_type: &str, cost: &str, kind: LineType| {
        let mut l = line("2026-10-01T00:00:00Z", 24 * 31, service, usage_type, None, cost);
        l.line_type = kind;
        l
    };
    lines.extend([
        month_line("AWSELB", "Credit", "-0.40", LineType::Credit),
        // A CUR bill has one tax line per service it taxes.
        month_line("AmazonS3", "Tax", "0.30", LineType::Tax),
        month_line("AWSELB", "Tax", "0.06", LineType::Tax),
        month_line("AmazonCloudWatch", "Tax", "0.80", LineType::Tax),
        // Tax on a service no one was allocated any cost of.
        month_line("AWSSupportBusiness", "Tax", "0.10", LineType::Tax),
    ]);
    let a = allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &lines, &usage).unwrap();
    // The ELB credit follows ELB cost: 0.50 each.
    assert_eq!(got(&a, "acme", "credits"), d("-0.20"));
    assert_eq!(got(&a, "globex", "credits"), d("-0.20"));
    let tax = |who: &str, service: &str| -> Decimal {
        a.monthly.iter().filter(|r| r.allocatee.as_str() == who && r.pool.as_str() == "tax" && r.service == service).map(|r| r.unblended).sum()
    };
    // S3: only acme's tagged bucket (3.00), so all of its tax.
    assert_eq!((tax("acme", "AmazonS3"), tax("globex", "AmazonS3")), (d("0.30"), d("0")));
    // ELB after its credit: 0.30 each.
    assert_eq!((tax("acme", "AWSELB"), tax("globex", "AWSELB")), (d("0.03"), d("0.03")));
    // CloudWatch, a shared cost: acme 8.75, globex 1.25.
    assert_eq!((tax("acme", "AmazonCloudWatch"), tax("globex", "AmazonCloudWatch")), (d("0.70"), d("0.10")));
    // Support: by the whole pre-tax bill, acme 3.00 + 0.30 + 8.75 = 12.05 and
    // globex 0.30 + 1.25 = 1.55: 0.0886 and 0.0114, to the cent 0.09 and 0.01.
    assert_eq!((tax("acme", "AWSSupportBusiness"), tax("globex", "AWSSupportBusiness")), (d("0.09"), d("0.01")));
    let ex = a.explanations.iter().find(|e| e.allocatee.as_str() == "acme" && e.pool.as_str() == "tax").unwrap();
    assert!(ex.method.contains("the service the tax is billed for"), "{}", ex.method);
    assert_reconciles(&a, &lines);
}

#[test]
fn unused_commitment_is_its_own_pool_shared_like_shared_costs() {
    let (mut lines, usage) = shared_fixture();
    let mut fee = line("2026-10-01T00:00:00Z", 24 * 31, "AmazonEC2", "HeavyUsage:m5.xlarge", None, "100.00");
    fee.line_type = LineType::RiFee;
    fee.amortized = d("12.00");
    lines.push(fee);
    let a = allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &lines, &usage).unwrap();
    let commitment: Vec<_> = a.monthly.iter().filter(|r| r.pool.as_str() == "unused_commitment").collect();
    assert_eq!(commitment.iter().map(|r| r.amortized).sum::<Decimal>(), d("12.00"));
    assert_eq!(commitment.iter().map(|r| r.unblended).sum::<Decimal>(), d("100.00"));
    assert_reconciles(&a, &lines);
}

#[test]
fn the_demo_month_reconciles_to_the_cent_and_every_tenant_gets_a_share() {
    let dir = tempfile::tempdir().unwrap();
    let month = Month::parse("2026-10").unwrap();
    let g = tally_datagen::generate(&tally_datagen::Params::reference(42, 25, vec![month]), dir.path()).unwrap();
    let opts = tally_lake::ReadOptions::new("user_tenant", Currency::USD);
    let lines = tally_lake::read::read_cur(&g.cur_files[0], &opts).unwrap().lines;
    let usage = tally_lake::read::read_usage(&g.usage_files[0]).unwrap().samples;
    let a = allocate_month(&AllocationConfig::default(), Currency::USD, month, &lines, &usage).unwrap();
    assert_reconciles(&a, &lines);
    let tenants: BTreeSet<&str> = a.monthly.iter().filter_map(|r| r.allocatee.tenant()).map(TenantId::as_str).collect();
    assert_eq!(tenants.len(), g.tenants.len() - g.tenants.len() / 8, "every tenant that has joined is charged");
    let total: Decimal = a.monthly.iter().map(|r| r.unblended).sum();
    assert!(total > d("2000") && total < d("2400"), "{total}");
    assert!(a.monthly.iter().all(|r| r.allocatee != Allocatee::Unallocated), "the demo has usage for every pool");
    for pool in ["direct", "eks_compute", "eks_control_plane", "rds_compute", "rds_storage", "cache", "transfer", "load_balancer", "shared", "tax"] {
        assert!(a.monthly.iter().any(|r| r.pool.as_str() == pool), "{pool} is used");
    }

    // The path users run, over the store's files (written here as the store
    // writes them), gives the same tenant x pool totals.
    let write = |frames: Vec<polars::prelude::DataFrame>, name: &str| {
        let mut all = frames
            .into_iter()
            .reduce(|mut a, b| {
                a.vstack_mut(&b).unwrap();
                a
            })
            .unwrap();
        let p = dir.path().join(name);
        polars::prelude::ParquetWriter::new(std::fs::File::create(&p).unwrap()).finish(&mut all).unwrap();
        p
    };
    let mut frames = Vec::new();
    tally_lake::read::read_cur_batches(&g.cur_files[0], &opts, &mut |df| {
        frames.push(df);
        Ok(())
    })
    .unwrap();
    let billing = write(frames, "billing.parquet");
    let mut frames = Vec::new();
    tally_lake::read::read_usage_batches(&g.usage_files[0], &mut |df| {
        frames.push(df);
        Ok(())
    })
    .unwrap();
    let usage_file = write(frames, "usage.parquet");
    let b = allocate(&AllocationConfig::default(), Currency::USD, month, &[billing], &[usage_file]).unwrap();
    assert_reconciles(&b, &lines);
    let sum = |a: &MonthAllocation| -> BTreeMap<(String, String), Decimal> {
        a.monthly.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry((r.allocatee.to_string(), r.pool.to_string())).or_default() += r.amortized;
            m
        })
    };
    let (sa, sb) = (sum(&a), sum(&b));
    assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
    for (k, v) in &sa {
        assert!((*v - sb[k]).abs() <= d("0.02"), "{k:?}: {v} vs {}", sb[k]);
    }
}

#[test]
fn the_same_input_in_another_order_gives_byte_identical_output() {
    let (mut lines, mut usage) = eks_fixture();
    let (l2, u2) = shared_fixture();
    lines.extend(l2);
    usage.extend(u2);
    let a = allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &lines, &usage).unwrap();
    lines.reverse();
    usage.reverse();
    let b = allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &lines, &usage).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn lines_in_another_currency_or_month_are_refused() {
    let mut l = line("2026-10-05T10:00:00Z", 1, "AmazonS3", "x", None, "1");
    l.currency = Currency::parse("EUR").unwrap();
    assert!(allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &[l], &[]).is_err());
    let l = line("2026-11-05T10:00:00Z", 1, "AmazonS3", "x", None, "1");
    assert!(allocate_month(&AllocationConfig::default(), Currency::USD, oct(), &[l], &[]).is_err());
}

const TENANTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];
const SERVICES: [(&str, &str); 6] = [
    ("AmazonRDS", "Multi-AZUsage:db.r6g.xl"),
    ("AmazonElastiCache", "NodeUsage:cache.r6g.large"),
    ("AWSDataTransfer", "DataTransfer-Out-Bytes"),
    ("AWSELB", "LoadBalancerUsage"),
    ("AmazonS3", "TimedStorage-ByteHrs"),
    ("AmazonEC2", "BoxUsage:m5.xlarge"),
];
const METRICS: [&str; 6] = ["db_exec_seconds", "db_storage_gb", "cache_memory_gb", "egress_gb", "requests", "cpu_request_vcpu_hours"];

prop_compose! {
    fn arb_line()(svc in 0..SERVICES.len(), hour in 0u32..48, cents in 0i64..100_000, tagged in prop::option::weighted(0.15, 0..TENANTS.len()), node in 0..2usize, kind in 0u8..20) -> CostLine {
        let (service, usage_type) = SERVICES[svc];
        let start = format!("2026-10-{:02}T{:02}:00:00Z", 1 + hour / 24, hour % 24);
        let mut l = line(&start, 1, service, usage_type, Some(["i-a", "i-b"][node]), &format!("{}.{:04}", cents / 10_000, cents % 10_000));
        if service == "AmazonEC2" {
            l.instance_type = Some("m5.xlarge".into());
        }
        l.tenant = tagged.map(|t| TenantId::parse(TENANTS[t]).unwrap());
        if kind == 0 {
            l.line_type = LineType::Tax;
        }
        l
    }
}

prop_compose! {
    fn arb_sample()(t in 0..TENANTS.len(), m in 0..METRICS.len(), hour in 0u32..48, v in 0.0f64..100.0, node in 0..2usize) -> UsageSample {
        let s = sample(&format!("2026-10-{:02}T{:02}:00:00Z", 1 + hour / 24, hour % 24), TENANTS[t], METRICS[m], v);
        if METRICS[m].starts_with("cpu") { s.with_resource(["i-a", "i-b"][node]).with_workload(format!("pod-{t}")) } else { s }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_months_reconcile_never_go_negative_and_do_not_depend_on_order(
        lines in prop::collection::vec(arb_line(), 1..40),
        usage in prop::collection::vec(arb_sample(), 0..80),
        shared in prop::sample::select(vec![SharedPolicy::Proportional, SharedPolicy::Even, SharedPolicy::Keep]),
        keep_idle in any::<bool>(),
    ) {
        let mut cfg = AllocationConfig { shared_policy: shared, ..AllocationConfig::default() };
        if keep_idle {
            cfg.pools.iter_mut().filter(|p| p.method == PoolMethod::NodeSplit).for_each(|p| p.idle_policy = Some(IdlePolicy::Keep));
        }
        let a = allocate_month(&cfg, Currency::USD, oct(), &lines, &usage).unwrap();
        assert_reconciles(&a, &lines);
        // Non-negative lines never give a negative share.
        prop_assert!(a.monthly.iter().all(|r| r.unblended >= Decimal::ZERO && r.amortized >= Decimal::ZERO));
        prop_assert!(a.tenant_daily.iter().all(|r| r.unblended >= Decimal::ZERO));
        // A tenant with no quantity of a pool's driver gets nothing from it.
        let used: BTreeSet<(&str, &str)> = usage.iter().filter(|u| u.value > 0.0).map(|u| (u.tenant.as_str(), u.metric.as_str())).collect();
        for r in a.monthly.iter().filter(|r| r.pool.as_str() == "transfer" || r.pool.as_str() == "load_balancer") {
            if let Some(t) = r.allocatee.tenant() {
                let metric = if r.pool.as_str() == "transfer" { "egress_gb" } else { "requests" };
                prop_assert!(used.contains(&(t.as_str(), metric)) || r.unblended.is_zero(), "{r:?}");
            }
        }
        // The order of the input does not matter.
        let mut l2 = lines.clone();
        l2.reverse();
        let mut u2 = usage.clone();
        u2.rotate_left(usage.len() / 2);
        let b = allocate_month(&cfg, Currency::USD, oct(), &l2, &u2).unwrap();
        let (da, db) = (format!("{a:#?}"), format!("{b:#?}"));
        if let Some((i, (x, y))) = da.lines().zip(db.lines()).enumerate().find(|(_, (x, y))| x != y) {
            let context: Vec<&str> = da.lines().skip(i.saturating_sub(12)).take(14).collect();
            prop_assert!(false, "line {i} differs: {x} vs {y}\n{}", context.join("\n"));
        }
    }
}
