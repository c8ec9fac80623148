//! Turns the simulation into files: CUR 2.0 rows, usage rows, revenue.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_domain::Month;
use tally_parquet::{ColumnData, ColumnType, MapEntries, ParquetWriter};

use crate::prices::*;
use crate::sim::{self, Deployment};
use crate::{Error, Params, TenantSpec};

const PAYER: &str = "123456789012";
const ACCOUNT: &str = "210987654321";
const ACCOUNT_NAME: &str = "saas-production";
const REGION: &str = "us-east-1";
const CLUSTER: &str = "saas-prod";
const EXPORT: &str = "tally-demo";
/// Rows per Parquet row group.
const BATCH: usize = 200_000;

/// One CUR line before it is written.
struct Line {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    line_type: &'static str,
    product_code: &'static str,
    usage_type: Arc<str>,
    operation: &'static str,
    resource_id: Option<Arc<str>>,
    availability_zone: Option<&'static str>,
    description: Arc<str>,
    usage_amount: f64,
    rate: f64,
    cost: f64,
    instance_type: Option<&'static str>,
    product_family: &'static str,
    pricing_unit: &'static str,
    tenant_tag: Option<Arc<str>>,
    cluster_tag: bool,
}

/// CUR's own precision: costs carry at most 10 decimal places.
fn cur_round(x: f64) -> f64 {
    (x * 1e10).round() / 1e10
}

const CUR_COLUMNS: &[(&str, ColumnType)] = &[
    ("identity_line_item_id", ColumnType::Utf8),
    ("identity_time_interval", ColumnType::Utf8),
    ("bill_invoice_id", ColumnType::Utf8),
    ("bill_invoicing_entity", ColumnType::Utf8),
    ("bill_billing_entity", ColumnType::Utf8),
    ("bill_bill_type", ColumnType::Utf8),
    ("bill_payer_account_id", ColumnType::Utf8),
    ("bill_payer_account_name", ColumnType::Utf8),
    ("bill_billing_period_start_date", ColumnType::TimestampMillis),
    ("bill_billing_period_end_date", ColumnType::TimestampMillis),
    ("line_item_usage_account_id", ColumnType::Utf8),
    ("line_item_usage_account_name", ColumnType::Utf8),
    ("line_item_line_item_type", ColumnType::Utf8),
    ("line_item_usage_start_date", ColumnType::TimestampMillis),
    ("line_item_usage_end_date", ColumnType::TimestampMillis),
    ("line_item_product_code", ColumnType::Utf8),
    ("line_item_usage_type", ColumnType::Utf8),
    ("line_item_operation", ColumnType::Utf8),
    ("line_item_availability_zone", ColumnType::Utf8),
    ("line_item_resource_id", ColumnType::Utf8),
    ("line_item_usage_amount", ColumnType::Double),
    ("line_item_normalization_factor", ColumnType::Double),
    ("line_item_normalized_usage_amount", ColumnType::Double),
    ("line_item_currency_code", ColumnType::Utf8),
    ("line_item_unblended_rate", ColumnType::Utf8),
    ("line_item_unblended_cost", ColumnType::Double),
    ("line_item_blended_rate", ColumnType::Utf8),
    ("line_item_blended_cost", ColumnType::Double),
    ("line_item_net_unblended_rate", ColumnType::Utf8),
    ("line_item_net_unblended_cost", ColumnType::Double),
    ("line_item_line_item_description", ColumnType::Utf8),
    ("line_item_tax_type", ColumnType::Utf8),
    ("line_item_legal_entity", ColumnType::Utf8),
    ("pricing_currency", ColumnType::Utf8),
    ("pricing_public_on_demand_cost", ColumnType::Double),
    ("pricing_public_on_demand_rate", ColumnType::Utf8),
    ("pricing_term", ColumnType::Utf8),
    ("pricing_unit", ColumnType::Utf8),
    ("pricing_purchase_option", ColumnType::Utf8),
    ("pricing_lease_contract_length", ColumnType::Utf8),
    ("pricing_offering_class", ColumnType::Utf8),
    ("product_instance_type", ColumnType::Utf8),
    ("product_instance_family", ColumnType::Utf8),
    ("product_product_family", ColumnType::Utf8),
    ("product_region_code", ColumnType::Utf8),
    ("product_location", ColumnType::Utf8),
    ("product_servicecode", ColumnType::Utf8),
    ("product_usagetype", ColumnType::Utf8),
    ("product_operation", ColumnType::Utf8),
    ("product", ColumnType::MapUtf8),
    ("resource_tags", ColumnType::MapUtf8),
    ("cost_category", ColumnType::MapUtf8),
    ("discount", ColumnType::MapDouble),
    ("reservation_reservation_a_r_n", ColumnType::Utf8),
    ("reservation_effective_cost", ColumnType::Double),
    ("reservation_amortized_upfront_cost_for_usage", ColumnType::Double),
    ("reservation_recurring_fee_for_usage", ColumnType::Double),
    ("reservation_unused_amortized_upfront_fee_for_billing_period", ColumnType::Double),
    ("reservation_unused_recurring_fee", ColumnType::Double),
    ("reservation_amortized_upfront_fee_for_billing_period", ColumnType::Double),
    ("savings_plan_savings_plan_a_r_n", ColumnType::Utf8),
    ("savings_plan_savings_plan_effective_cost", ColumnType::Double),
    ("savings_plan_used_commitment", ColumnType::Double),
    ("savings_plan_total_commitment_to_date", ColumnType::Double),
];

/// The product name AWS writes beside a product code (the domain's one table).
fn service_name(code: &str) -> &'static str {
    tally_domain::aws_service(code).map_or("AWS", |s| s.name)
}

struct CurWriter {
    writer: ParquetWriter,
    path: PathBuf,
    batch: Vec<Line>,
    month: Month,
    lines: usize,
    unblended: f64,
    /// Unblended cost so far per product code, for the month-end tax lines.
    by_service: std::collections::BTreeMap<&'static str, f64>,
    seed: u64,
}

impl CurWriter {
    fn push(&mut self, line: Line) -> Result<(), Error> {
        self.unblended += line.cost;
        *self.by_service.entry(line.product_code).or_default() += line.cost;
        self.batch.push(line);
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let b = &self.batch;
        let n = b.len();
        let ids: Vec<String> = (0..n).map(|i| format!("{:016x}{:016x}", self.seed, (self.lines + i) as u64 * 2_654_435_761)).collect();
        let intervals: Vec<String> = b.iter().map(|l| format!("{}/{}", l.start.format("%Y-%m-%dT%H:%M:%SZ"), l.end.format("%Y-%m-%dT%H:%M:%SZ"))).collect();
        let rates: Vec<String> = b.iter().map(|l| format!("{:.10}", l.rate)).collect();
        let invoice = format!("{}{:02}", self.month.year(), self.month.month());
        let bp_start = self.month.start().timestamp_millis();
        let bp_end = self.month.end().timestamp_millis();
        let utf8 = |f: &dyn Fn(&Line) -> Option<&str>| ColumnData::Utf8(b.iter().map(f).collect());
        let num = |f: &dyn Fn(&Line) -> Option<f64>| ColumnData::Double(b.iter().map(f).collect());
        let same = |v: Option<&'static str>| ColumnData::Utf8(vec![v; n]);
        let is_usage = |l: &Line| l.line_type == "Usage";
        let families: Vec<Option<String>> = b
            .iter()
            .map(|l| {
                l.instance_type.map(|t| t.split('.').take(if t.starts_with("db.") || t.starts_with("cache.") { 2 } else { 1 }).collect::<Vec<_>>().join("."))
            })
            .collect();
        let product: Vec<Option<MapEntries<&str>>> = b
            .iter()
            .map(|l| {
                let mut m =
                    vec![("product_name", Some(service_name(l.product_code))), ("region", Some(REGION)), ("servicename", Some(service_name(l.product_code)))];
                if let Some(t) = l.instance_type {
                    m.push(("instance_type", Some(t)));
                }
                Some(m)
            })
            .collect();
        let tags: Vec<Option<MapEntries<&str>>> = b
            .iter()
            .map(|l| {
                let mut m = Vec::new();
                if l.cluster_tag {
                    m.push(("aws_eks_cluster_name", Some(CLUSTER)));
                }
                if let Some(t) = &l.tenant_tag {
                    m.push(("user_tenant", Some(&**t)));
                }
                Some(m)
            })
            .collect();
        let columns = vec![
            ColumnData::Utf8(ids.iter().map(|s| Some(s.as_str())).collect()),
            ColumnData::Utf8(intervals.iter().map(|s| Some(s.as_str())).collect()),
            ColumnData::Utf8(vec![Some(invoice.as_str()); n]),
            same(Some("Amazon Web Services, Inc.")),
            same(Some("AWS")),
            same(Some("Anniversary")),
            same(Some(PAYER)),
            same(Some("saas-payer")),
            ColumnData::TimestampMillis(vec![Some(bp_start); n]),
            ColumnData::TimestampMillis(vec![Some(bp_end); n]),
            same(Some(ACCOUNT)),
            same(Some(ACCOUNT_NAME)),
            utf8(&|l| Some(l.line_type)),
            ColumnData::TimestampMillis(b.iter().map(|l| Some(l.start.timestamp_millis())).collect()),
            ColumnData::TimestampMillis(b.iter().map(|l| Some(l.end.timestamp_millis())).collect()),
            utf8(&|l| Some(l.product_code)),
            utf8(&|l| Some(&*l.usage_type)),
            utf8(&|l| Some(l.operation)),
            utf8(&|l| l.availability_zone),
            utf8(&|l| l.resource_id.as_deref()),
            num(&|l| Some(l.usage_amount)),
            num(&|l| Some(if l.instance_type.is_some() { 8.0 } else { 0.0 })),
            num(&|l| Some(if l.instance_type.is_some() { 8.0 * l.usage_amount } else { 0.0 })),
            same(Some("USD")),
            ColumnData::Utf8(rates.iter().map(|s| Some(s.as_str())).collect()),
            num(&|l| Some(l.cost)),
            ColumnData::Utf8(rates.iter().map(|s| Some(s.as_str())).collect()),
            num(&|l| Some(l.cost)),
            ColumnData::Utf8(rates.iter().map(|s| Some(s.as_str())).collect()),
            num(&|l| Some(l.cost)),
            utf8(&|l| Some(&*l.description)),
            utf8(&|l| (l.line_type == "Tax").then_some("VAT")),
            same(Some("Amazon Web Services, Inc.")),
            same(Some("USD")),
            num(&|l| is_usage(l).then_some(l.cost)),
            ColumnData::Utf8(b.iter().zip(&rates).map(|(l, r)| is_usage(l).then_some(r.as_str())).collect()),
            utf8(&|l| is_usage(l).then_some("OnDemand")),
            utf8(&|l| Some(l.pricing_unit)),
            same(None),
            same(None),
            same(None),
            utf8(&|l| l.instance_type),
            ColumnData::Utf8(families.iter().map(|f| f.as_deref()).collect()),
            utf8(&|l| Some(l.product_family)),
            same(Some(REGION)),
            same(Some("US East (N. Virginia)")),
            utf8(&|l| Some(l.product_code)),
            utf8(&|l| Some(&*l.usage_type)),
            utf8(&|l| Some(l.operation)),
            ColumnData::MapUtf8(product),
            ColumnData::MapUtf8(tags),
            ColumnData::MapUtf8(vec![Some(Vec::new()); n]),
            ColumnData::MapDouble(vec![Some(Vec::new()); n]),
            same(None),
            num(&|_| Some(0.0)),
            num(&|_| Some(0.0)),
            num(&|_| Some(0.0)),
            num(&|_| Some(0.0)),
            num(&|_| Some(0.0)),
            num(&|_| Some(0.0)),
            same(None),
            num(&|_| None),
            num(&|_| None),
            num(&|_| None),
        ];
        self.writer.write_row_group(&columns).map_err(|source| Error::Write { path: self.path.clone(), source })?;
        self.lines += n;
        self.batch.clear();
        Ok(())
    }
}

/// One usage row before it is written.
struct UsageRow {
    hour_ms: i64,
    tenant: u32,
    metric: u8,
    value: f64,
    resource: Option<Arc<str>>,
    workload: Option<Arc<str>>,
}

const METRICS: &[(&str, &str)] = &[
    ("cpu_request_vcpu_hours", "vCPU-hours"),
    ("cpu_used_vcpu_hours", "vCPU-hours"),
    ("mem_request_gb_hours", "GB-hours"),
    ("mem_used_gb_hours", "GB-hours"),
    ("db_storage_gb", "GB"),
    ("db_exec_seconds", "seconds"),
    ("cache_memory_gb", "GB"),
    ("cache_commands", "commands"),
    ("egress_gb", "GB"),
    ("requests", "requests"),
];

struct UsageWriter<'t> {
    writer: ParquetWriter,
    path: PathBuf,
    batch: Vec<UsageRow>,
    tenants: &'t [TenantSpec],
    rows: usize,
}

impl UsageWriter<'_> {
    fn push(&mut self, row: UsageRow) -> Result<(), Error> {
        self.batch.push(row);
        if self.batch.len() >= BATCH * 4 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let b = &self.batch;
        let columns = vec![
            ColumnData::TimestampMillis(b.iter().map(|r| Some(r.hour_ms)).collect()),
            ColumnData::Utf8(b.iter().map(|r| Some(self.tenants[r.tenant as usize].id.as_str())).collect()),
            ColumnData::Utf8(b.iter().map(|r| Some(METRICS[r.metric as usize].0)).collect()),
            ColumnData::Double(b.iter().map(|r| Some(r.value)).collect()),
            ColumnData::Utf8(b.iter().map(|r| Some(METRICS[r.metric as usize].1)).collect()),
            ColumnData::Utf8(b.iter().map(|r| r.resource.as_deref()).collect()),
            ColumnData::Utf8(b.iter().map(|r| r.workload.as_deref()).collect()),
        ];
        self.writer.write_row_group(&columns).map_err(|source| Error::Write { path: self.path.clone(), source })?;
        self.rows += b.len();
        self.batch.clear();
        Ok(())
    }
}

pub(crate) struct MonthOut {
    pub(crate) cur_file: PathBuf,
    pub(crate) usage_file: PathBuf,
    pub(crate) lines: usize,
    pub(crate) usage_rows: usize,
    pub(crate) unblended: f64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

pub(crate) fn month(params: &Params, tenants: &[TenantSpec], month: Month, index: usize, out: &Path) -> Result<MonthOut, Error> {
    let execution = format!("{}-{:08x}", month.next().start().format("%Y%m%dT%H%M%SZ"), params.seed);
    let root = out.join("cur").join(EXPORT);
    let data_dir = root.join("data").join(format!("BILLING_PERIOD={month}")).join(&execution);
    std::fs::create_dir_all(&data_dir).map_err(io(&data_dir))?;
    let file_name = format!("{EXPORT}-00001.snappy.parquet");
    let cur_path = data_dir.join(&file_name);
    let usage_dir = out.join("usage");
    std::fs::create_dir_all(&usage_dir).map_err(io(&usage_dir))?;
    let usage_path = usage_dir.join(format!("usage-{month}.parquet"));

    let mut cur = CurWriter {
        writer: ParquetWriter::create(&cur_path, CUR_COLUMNS).map_err(|source| Error::Write { path: cur_path.clone(), source })?,
        path: cur_path.clone(),
        batch: Vec::with_capacity(BATCH),
        month,
        lines: 0,
        unblended: 0.0,
        by_service: std::collections::BTreeMap::new(),
        seed: params.seed,
    };
    let usage_columns = [
        ("timestamp", ColumnType::TimestampMillis),
        ("tenant", ColumnType::Utf8),
        ("metric", ColumnType::Utf8),
        ("value", ColumnType::Double),
        ("unit", ColumnType::Utf8),
        ("resource_id", ColumnType::Utf8),
        ("workload", ColumnType::Utf8),
    ];
    let mut usage = UsageWriter {
        writer: ParquetWriter::create(&usage_path, &usage_columns).map_err(|source| Error::Write { path: usage_path.clone(), source })?,
        path: usage_path.clone(),
        batch: Vec::new(),
        tenants,
        rows: 0,
    };

    let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ ((month.year() as u64) << 32 | month.month() as u64));
    let hours_in_month = month.hours() as f64;
    let end = params.until.map_or(month.end(), |u| u.min(month.end()));
    let complete = end == month.end();
    let scale = params.base_nodes as f64 / 3.0;
    let active: Vec<usize> = (0..tenants.len()).filter(|r| sim::joined_month(*r, tenants.len()) <= index).collect();

    // Static per-tenant sizes.
    let sum_pow = |p: f64| active.iter().map(|r| tenants[*r].weight.powf(p)).sum::<f64>();
    let (s09, s08) = (sum_pow(0.9), sum_pow(0.8));
    // One heavy exporter: the second-largest tenant moves far more data than its size.
    let egress_weight: Vec<f64> = {
        let raw: Vec<f64> = (0..tenants.len()).map(|r| tenants[r].weight * if r == 1 { 3.0 } else { 1.0 }).collect();
        let t: f64 = active.iter().map(|r| raw[*r]).sum();
        raw.iter().map(|w| w / t).collect()
    };

    let arn = |kind: &str, name: &str| -> Arc<str> { format!("arn:aws:{kind}:{REGION}:{ACCOUNT}:{name}").into() };
    let rds_arn = arn("rds", "db:saas-prod-db");
    let eks_arn = arn("eks", &format!("cluster/{CLUSTER}"));
    let alb_arn = arn("elasticloadbalancing", "loadbalancer/app/saas-prod-alb/5f1c2a7e9b3d4c60");
    let cache_arns: Vec<Arc<str>> = (1..=3).map(|i| arn("elasticache", &format!("cluster:saas-prod-cache-000{i}-001"))).collect();
    let instance_usage: Arc<str> = "BoxUsage:m5.xlarge".into();
    let instance_desc: Arc<str> = format!("${M5_XLARGE_HOUR} per On Demand Linux m5.xlarge Instance Hour").into();
    let ebs_usage: Arc<str> = "EBS:VolumeUsage.gp3".into();
    let ebs_desc: Arc<str> = format!("${EBS_GP3_GB_MONTH} per GB-month of General Purpose (gp3) provisioned storage - US East (N. Virginia)").into();
    let extra_usage: Arc<str> = "BoxUsage:m5.large".into();
    let extra_desc: Arc<str> = "$0.096 per On Demand Linux m5.large Instance Hour".into();
    let extra_ids: Vec<Arc<str>> = (0..params.extra_instances).map(|i| format!("i-0b{:07x}{:08x}", params.seed % 0xfff_ffff, i + 1).into()).collect();
    let line = |start, end, product_code, usage_type: &Arc<str>, operation, resource: Option<&Arc<str>>, desc: &Arc<str>, amount: f64, rate: f64| Line {
        start,
        end,
        line_type: "Usage",
        product_code,
        usage_type: usage_type.clone(),
        operation,
        resource_id: resource.cloned(),
        availability_zone: None,
        description: desc.clone(),
        usage_amount: amount,
        rate,
        cost: cur_round(amount * rate),
        instance_type: None,
        product_family: "",
        pricing_unit: "",
        tenant_tag: None,
        cluster_tag: false,
    };
    let rds_usage: Arc<str> = "Multi-AZUsage:db.r6g.xl".into();
    let rds_desc: Arc<str> = format!("${RDS_R6G_XLARGE_MAZ_HOUR} per RDS db.r6g.xlarge Multi-AZ instance hour (or partial hour) running PostgreSQL").into();
    let rds_storage_usage: Arc<str> = "RDS:Multi-AZ-GP3-Storage".into();
    let rds_storage_desc: Arc<str> = format!("${RDS_GP3_MAZ_GB_MONTH} per GB-month of provisioned gp3 storage running PostgreSQL Multi-AZ").into();
    let eks_usage: Arc<str> = "USE1-AmazonEKS-Hours:perCluster".into();
    let eks_desc: Arc<str> = format!("Amazon EKS cluster usage in US East (N. Virginia): ${EKS_CLUSTER_HOUR} per hour").into();
    let cache_usage: Arc<str> = "NodeUsage:cache.r6g.large".into();
    let cache_desc: Arc<str> = format!("${CACHE_R6G_LARGE_HOUR} per Node Hour (or partial hour) for cache.r6g.large").into();
    let alb_usage: Arc<str> = "LoadBalancerUsage".into();
    let alb_desc: Arc<str> = format!("${ALB_HOUR} per Application LoadBalancer-hour (or partial hour)").into();
    let lcu_usage: Arc<str> = "LCUUsage".into();
    let lcu_desc: Arc<str> = format!("${ALB_LCU_HOUR} per used Application load balancer capacity unit-hour (or partial hour)").into();
    let dto_usage: Arc<str> = "DataTransfer-Out-Bytes".into();
    let dto_desc: Arc<str> = format!("${TRANSFER_OUT_GB} per GB - first 10 TB / month data transfer out beyond the global free tier").into();
    let tenant_ids: Vec<Arc<str>> = tenants.iter().map(|t| Arc::from(t.id.as_str())).collect();

    let mut hour = month.start();
    let mut day_index = 0u32;
    let mut days_done = 0u32;
    while hour < end {
        let next = hour + Duration::hours(1);
        if hour.format("%H").to_string() == "00" && hour != month.start() {
            day_index += 1;
        }
        let l = sim::load(hour);
        let cluster = sim::cluster_hour(params, hour, day_index + (month.month() * 40));
        let node_ids: Vec<Arc<str>> = cluster.nodes.iter().map(|s| Arc::from(s.as_str())).collect();
        let az = |i: usize| ["us-east-1a", "us-east-1b", "us-east-1c"][i % 3];
        for (i, id) in node_ids.iter().enumerate() {
            let mut node = line(hour, next, "AmazonEC2", &instance_usage, "RunInstances", Some(id), &instance_desc, 1.0, M5_XLARGE_HOUR);
            node.instance_type = Some("m5.xlarge");
            node.availability_zone = Some(az(i));
            node.product_family = "Compute Instance";
            node.pricing_unit = "Hrs";
            node.cluster_tag = true;
            cur.push(node)?;
            let vol: Arc<str> = format!("vol-0{}", &id[3..]).into();
            let gb_months = 100.0 / hours_in_month;
            let mut ebs = line(hour, next, "AmazonEC2", &ebs_usage, "CreateVolume-Gp3", Some(&vol), &ebs_desc, gb_months, EBS_GP3_GB_MONTH);
            ebs.availability_zone = Some(az(i));
            ebs.product_family = "Storage";
            ebs.pricing_unit = "GB-Mo";
            ebs.cluster_tag = true;
            cur.push(ebs)?;
        }
        for id in &extra_ids {
            let mut x = line(hour, next, "AmazonEC2", &extra_usage, "RunInstances", Some(id), &extra_desc, 1.0, 0.096);
            x.instance_type = Some("m5.large");
            x.product_family = "Compute Instance";
            x.pricing_unit = "Hrs";
            cur.push(x)?;
        }
        let mut eks = line(hour, next, "AmazonEKS", &eks_usage, "CreateOperation", Some(&eks_arn), &eks_desc, 1.0, EKS_CLUSTER_HOUR);
        eks.pricing_unit = "Hours";
        eks.product_family = "Compute";
        cur.push(eks)?;
        let mut rds = line(hour, next, "AmazonRDS", &rds_usage, "CreateDBInstance:0014", Some(&rds_arn), &rds_desc, 1.0, RDS_R6G_XLARGE_MAZ_HOUR);
        rds.instance_type = Some("db.r6g.xlarge");
        rds.product_family = "Database Instance";
        rds.pricing_unit = "Hrs";
        cur.push(rds)?;
        let mut st = line(
            hour,
            next,
            "AmazonRDS",
            &rds_storage_usage,
            "CreateDBInstance:0014",
            Some(&rds_arn),
            &rds_storage_desc,
            500.0 / hours_in_month,
            RDS_GP3_MAZ_GB_MONTH,
        );
        st.product_family = "Database Storage";
        st.pricing_unit = "GB-Mo";
        cur.push(st)?;
        for (i, arn) in cache_arns.iter().enumerate() {
            let mut c = line(hour, next, "AmazonElastiCache", &cache_usage, "CreateCacheCluster:0002", Some(arn), &cache_desc, 1.0, CACHE_R6G_LARGE_HOUR);
            c.instance_type = Some("cache.r6g.large");
            c.availability_zone = Some(az(i));
            c.product_family = "Cache Instance";
            c.pricing_unit = "NodeUsage";
            cur.push(c)?;
        }
        let mut alb = line(hour, next, "AWSELB", &alb_usage, "LoadBalancing:Application", Some(&alb_arn), &alb_desc, 1.0, ALB_HOUR);
        alb.product_family = "Load Balancer-Application";
        alb.pricing_unit = "Hrs";
        cur.push(alb)?;
        let lcus = (0.6 + 2.4 * l) * scale * sim::noise(&mut rng, 0.1);
        let mut lcu = line(hour, next, "AWSELB", &lcu_usage, "LoadBalancing:Application", Some(&alb_arn), &lcu_desc, cur_round(lcus), ALB_LCU_HOUR);
        lcu.product_family = "Load Balancer-Application";
        lcu.pricing_unit = "LCU-Hrs";
        cur.push(lcu)?;
        let egress_total = 2.0 * scale * l / 0.62 * sim::noise(&mut rng, 0.15);
        let mut dto =
            line(hour, next, "AWSDataTransfer", &dto_usage, "LoadBalancing-PublicIP-Out", Some(&alb_arn), &dto_desc, cur_round(egress_total), TRANSFER_OUT_GB);
        dto.product_family = "Data Transfer";
        dto.pricing_unit = "GB";
        cur.push(dto)?;

        // Per-tenant usage in this hour.
        let ms = hour.timestamp_millis();
        let requests_total = 180_000.0 * scale * l;
        let exec_total = 1_600.0 * scale * l;
        let commands_total = 450_000.0 * scale * l;
        let hours_in = (hour - month.start()).num_hours() as f64;
        let growth = 1.0 + 0.01 * (index as f64 + hours_in / hours_in_month);
        let mut present = vec![false; tenants.len()];
        for &r in &active {
            let t = &tenants[r];
            let on = r < params.spread_tenants || rng.random::<f64>() < params.tail_activity;
            present[r] = on;
            // Indexes into METRICS: 4 db_storage_gb, 5 db_exec_seconds, 6 cache_memory_gb, 7 cache_commands, 8 egress_gb, 9 requests.
            let row = |metric: u8, value: f64, resource: Option<&Arc<str>>| UsageRow {
                hour_ms: ms,
                tenant: r as u32,
                metric,
                value,
                resource: resource.cloned(),
                workload: None,
            };
            usage.push(row(4, round6(330.0 * growth * t.weight.powf(0.9) / s09), Some(&rds_arn)))?;
            usage.push(row(6, round6(7.5 * t.weight.powf(0.8) / s08), None))?;
            if on {
                usage.push(row(5, round6(exec_total * t.weight * sim::noise(&mut rng, 0.3)), Some(&rds_arn)))?;
                usage.push(row(7, (commands_total * t.weight * sim::noise(&mut rng, 0.3)).round(), None))?;
                usage.push(row(8, round6(egress_total * egress_weight[r] * sim::noise(&mut rng, 0.2)), None))?;
                usage.push(row(9, (requests_total * t.weight * sim::noise(&mut rng, 0.2)).round(), Some(&alb_arn)))?;
            }
        }
        // Pods: each tenant's slice of the pods that serve it.
        for deployment in [Deployment::Api, Deployment::Worker] {
            let pods: Vec<&sim::Pod> = cluster.pods.iter().filter(|p| p.deployment == deployment).collect();
            let replicas = pods.len();
            if replicas == 0 {
                continue;
            }
            let mut pod_load = vec![0.0f64; replicas];
            for &r in &active {
                if present[r] {
                    let serving = sim::serving_pods(r, params.spread_tenants, replicas);
                    let w = tenants[r].weight / serving.len() as f64;
                    for k in serving {
                        pod_load[k] += w;
                    }
                }
            }
            for &r in &active {
                if !present[r] {
                    continue;
                }
                let serving = sim::serving_pods(r, params.spread_tenants, replicas);
                let w = tenants[r].weight / serving.len() as f64;
                // The third-largest tenant runs heavy reports: it uses more CPU than it asks for.
                let burst = if r == 2 { 1.6 } else { 1.0 };
                for k in serving {
                    let pod = pods[k];
                    let share = w / pod_load[k];
                    let node = node_ids[pod.node].clone();
                    let workload: Arc<str> = format!("{}-{:04}", deployment.name(), pod.ordinal).into();
                    let cpu_req = deployment.cpu_request() * share;
                    let mem_req = deployment.mem_request_gb() * share;
                    let cpu_used = cpu_req * cluster.cpu_utilisation * burst * sim::noise(&mut rng, 0.25);
                    let mem_used = mem_req * 0.72 * sim::noise(&mut rng, 0.15);
                    for (metric, value) in [(0u8, cpu_req), (1, cpu_used), (2, mem_req), (3, mem_used)] {
                        usage.push(UsageRow {
                            hour_ms: ms,
                            tenant: r as u32,
                            metric,
                            value: round6(value),
                            resource: Some(node.clone()),
                            workload: Some(workload.clone()),
                        })?;
                    }
                }
            }
        }

        // Daily lines, written with the day's first hour.
        if hour.format("%H").to_string() == "00" {
            let day_end = (hour + Duration::days(1)).min(month.end());
            let day_hours = (day_end - hour).num_hours() as f64;
            let frac = day_hours / hours_in_month;
            days_done += 1;
            let s3_storage: Arc<str> = "TimedStorage-ByteHrs".into();
            let s3_desc: Arc<str> = format!("${S3_STANDARD_GB_MONTH} per GB - first 50 TB / month of storage used").into();
            let mut buckets: Vec<(String, f64, Option<Arc<str>>)> =
                vec![("saas-prod-backups".into(), 1_800.0 * scale, None), ("saas-prod-static-assets".into(), 250.0 * scale, None)];
            for r in 0..params.spread_tenants.min(3).min(tenants.len()) {
                buckets.push((format!("saas-prod-exports-{}", tenants[r].id), [300.0, 150.0, 80.0][r], Some(tenant_ids[r].clone())));
            }
            for (bucket, gb, tenant) in buckets {
                let b: Arc<str> = bucket.into();
                let mut s = line(hour, day_end, "AmazonS3", &s3_storage, "StandardStorage", Some(&b), &s3_desc, cur_round(gb * frac), S3_STANDARD_GB_MONTH);
                s.product_family = "Storage";
                s.pricing_unit = "GB-Mo";
                s.tenant_tag = tenant;
                cur.push(s)?;
            }
            let req_usage: Arc<str> = "Requests-Tier1".into();
            let req_desc: Arc<str> = format!("${S3_TIER1_PER_1000} per 1,000 PUT, COPY, POST, or LIST requests").into();
            let puts = (30_000.0 * scale * sim::noise(&mut rng, 0.2)).round();
            let backups: Arc<str> = "saas-prod-backups".into();
            let mut s = line(hour, day_end, "AmazonS3", &req_usage, "PutObject", Some(&backups), &req_desc, puts, S3_TIER1_PER_1000 / 1000.0);
            s.product_family = "API Request";
            s.pricing_unit = "Requests";
            cur.push(s)?;
            let metric_usage: Arc<str> = "CW:MetricMonitorUsage".into();
            let metric_desc: Arc<str> = format!("${CW_METRIC_MONTH} per metric-month - first 10,000 metrics").into();
            let mut m =
                line(hour, day_end, "AmazonCloudWatch", &metric_usage, "MetricStorage", None, &metric_desc, cur_round(230.0 * scale * frac), CW_METRIC_MONTH);
            m.product_family = "Metric";
            m.pricing_unit = "Metrics";
            cur.push(m)?;
            let logs_usage: Arc<str> = "DataProcessing-Bytes".into();
            let logs_desc: Arc<str> = format!("${CW_LOGS_GB} per GB custom log data ingested").into();
            let mut g = line(
                hour,
                day_end,
                "AmazonCloudWatch",
                &logs_usage,
                "PutLogEvents",
                None,
                &logs_desc,
                cur_round(4.6 * scale * sim::noise(&mut rng, 0.2) * day_hours / 24.0),
                CW_LOGS_GB,
            );
            g.product_family = "Data Payload";
            g.pricing_unit = "GB";
            cur.push(g)?;
            let backup_usage: Arc<str> = "RDS:ChargedBackupUsage".into();
            let backup_desc: Arc<str> = format!("${RDS_BACKUP_GB_MONTH} per additional GB-month of backup storage exceeding free allocation").into();
            let mut bk = line(
                hour,
                day_end,
                "AmazonRDS",
                &backup_usage,
                "CreateDBInstance:0014",
                Some(&rds_arn),
                &backup_desc,
                cur_round(100.0 * frac),
                RDS_BACKUP_GB_MONTH,
            );
            bk.product_family = "Storage Snapshot";
            bk.pricing_unit = "GB-Mo";
            cur.push(bk)?;
        }
        hour = next;
    }
    let _ = days_done;

    // Month-end lines once the month is complete: a service credit in the
    // second month, and sales tax on the month's usage.
    if complete {
        let (start, month_end) = (month.start(), month.end());
        if index == 1 {
            let credit_desc: Arc<str> = "AWS Service Credit: EC2 availability SLA".into();
            let credit_usage: Arc<str> = "USE1-SLA-Credit".into();
            let mut c = line(start, month_end, "AmazonEC2", &credit_usage, "", None, &credit_desc, 0.0, 0.0);
            c.line_type = "Credit";
            c.cost = -25.0;
            cur.push(c)?;
        }
        cur.flush()?;
        // As on an AWS invoice: one tax line per product code, on its month's cost.
        let tax_usage: Arc<str> = "Tax".into();
        let taxed: Vec<(&'static str, f64)> = cur.by_service.iter().map(|(code, cost)| (*code, *cost)).filter(|(_, cost)| *cost > 0.0).collect();
        for (code, pre_tax) in taxed {
            let tax_desc: Arc<str> = format!("Tax for product code {code} at {:.2}%", TAX_RATE * 100.0).into();
            let mut t = line(start, month_end, code, &tax_usage, "", None, &tax_desc, 0.0, 0.0);
            t.line_type = "Tax";
            t.cost = cur_round((pre_tax * TAX_RATE * 100.0).round() / 100.0);
            cur.push(t)?;
        }
    }
    cur.flush()?;
    usage.flush()?;
    let lines = cur.lines;
    let unblended = cur.unblended;
    cur.writer.finish().map_err(|source| Error::Write { path: cur_path.clone(), source })?;
    let usage_rows = usage.rows;
    usage.writer.finish().map_err(|source| Error::Write { path: usage_path.clone(), source })?;

    // The Data Exports manifest naming this delivery's files.
    let meta_dir = root.join("metadata").join(format!("BILLING_PERIOD={month}"));
    std::fs::create_dir_all(&meta_dir).map_err(io(&meta_dir))?;
    let manifest = meta_dir.join(format!("{EXPORT}-Manifest.json"));
    let body = format!(
        "{{\n  \"executionId\": \"{execution}\",\n  \"exportName\": \"{EXPORT}\",\n  \"billingPeriod\": {{ \"start\": \"{}\", \"end\": \"{}\" }},\n  \"dataFiles\": [\"data/BILLING_PERIOD={month}/{execution}/{file_name}\"]\n}}\n",
        month.start().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        month.end().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
    );
    std::fs::write(&manifest, body).map_err(io(&manifest))?;
    Ok(MonthOut { cur_file: cur_path, usage_file: usage_path, lines, usage_rows, unblended })
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

pub(crate) fn revenue(path: &Path, tenants: &[TenantSpec], params: &Params) -> Result<(), Error> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io(path))?);
    writeln!(f, "month,tenant,amount,currency").map_err(io(path))?;
    for (i, month) in params.months.iter().enumerate() {
        if params.until.is_some_and(|u| u <= month.start()) {
            continue;
        }
        for (r, t) in tenants.iter().enumerate() {
            if sim::joined_month(r, tenants.len()) <= i {
                writeln!(f, "{month},{},{:.2},USD", t.id, t.price).map_err(io(path))?;
            }
        }
    }
    f.flush().map_err(io(path))?;
    let _ = Utc.timestamp_opt(0, 0);
    Ok(())
}
