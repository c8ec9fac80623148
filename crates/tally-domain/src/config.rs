//! The whole of `tally.toml`, with every key overridable from the
//! environment as `TALLY_<SECTION>__<KEY>` (double underscore between
//! levels), e.g. `TALLY_SERVER__RATE_LIMIT_PER_MINUTE=200`.
//!
//! This module never reads the environment itself: the binary passes the
//! variables in, so loading is a pure function that tests can call.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{Currency, PoolId, TenantId};

/// A configuration value that stops start-up: which key, what it was, where
/// it came from and what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub key: String,
    pub value: Option<String>,
    pub origin: Option<String>,
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: `{}`", self.key)?;
        match &self.value {
            // A value may be an address with a password in it.
            Some(v) => write!(f, " = {:?}", crate::redact(v))?,
            None => write!(f, " is missing")?,
        }
        if let Some(origin) = &self.origin {
            write!(f, " (from {origin})")?;
        }
        write!(f, ": expected {}", self.expected)
    }
}

/// The complete configuration. Every field has a default, so an empty file
/// (or none) gives a working embedded setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The currency of the bill and of every report.
    pub currency: Currency,
    /// The cost-allocation tag naming a line's tenant. Matched against CUR 2.0
    /// `resource_tags` keys, legacy `resource_tags_user_*` columns and FOCUS
    /// `Tags` keys, with `:` and `_` treated alike (`user:tenant` = `user_tenant`).
    pub tenant_tag_key: String,
    /// Where the embedded database, generated demo files and exports live.
    pub data_dir: Option<PathBuf>,
    /// Exchange rates into `currency`, for bills in several currencies.
    pub currency_rates: BTreeMap<String, Decimal>,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub server: ServerConfig,
    pub finance: FinanceConfig,
    pub allocation: AllocationConfig,
    pub collectors: CollectorsConfig,
    pub schedule: ScheduleConfig,
    pub savings: SavingsConfig,
    /// Display names and plans; tenants seen in data but not listed here are
    /// created with their id as name.
    pub tenants: Vec<TenantConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://...`; also `DATABASE_URL`. Default: a
    /// SQLite file `tally.db` in the data directory.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Where raw billing lines and usage samples are kept as Parquet:
    /// `s3://BUCKET/PREFIX` (for several replicas, with PostgreSQL) or a
    /// folder. Default: `lake/` in the data directory.
    pub lake: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Requests per minute per client IP before 429.
    pub rate_limit_per_minute: u32,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// The address people reach the dashboard at, for sign-in links; an
    /// `https://` address also marks the session cookie `Secure`.
    pub public_url: Option<String>,
    /// Open connections at most; further clients wait in the listen queue.
    pub max_connections: u32,
    /// Open connections per client address at most (not applied behind a
    /// trusted proxy, where every connection comes from the proxy).
    pub max_connections_per_ip: u32,
    /// A client must send a request's headers within this many seconds, and
    /// an idle kept-alive connection is closed after as long.
    pub header_timeout_seconds: u64,
    /// A request must be answered within this many seconds (503 after).
    pub request_timeout_seconds: u64,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: u64,
    /// How long a dashboard sign-in lasts (never beyond its token's expiry).
    pub session_hours: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rate_limit_per_minute: 100,
            trust_forwarded_for: false,
            public_url: None,
            max_connections: 512,
            max_connections_per_ip: 64,
            header_timeout_seconds: 10,
            request_timeout_seconds: 30,
            max_body_bytes: 2 << 20,
            session_hours: 168,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinanceConfig {
    /// Cash in the bank on `cash_balance_date`, for runway.
    pub cash_balance: Option<Decimal>,
    pub cash_balance_date: Option<NaiveDate>,
    /// Tenants whose gross margin falls below this percentage are highlighted.
    pub target_margin_percent: Decimal,
    /// Costs other than AWS that burn cash every month (payroll, tools).
    pub monthly_costs: Vec<MonthlyCost>,
}

impl Default for FinanceConfig {
    fn default() -> Self {
        Self { cash_balance: None, cash_balance_date: None, target_margin_percent: Decimal::from(60), monthly_costs: Vec::new() }
    }
}

/// Where monthly costs kept with the data live (the demo keeps its company's);
/// configured `finance.monthly_costs` win over them.
pub const MONTHLY_COSTS_DOCUMENT: &str = "finance:monthly_costs";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonthlyCost {
    pub name: String,
    pub amount: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdlePolicy {
    /// Spread a node-hour's idle capacity over the pods on it.
    Share,
    /// Keep it as an `__idle__` row.
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharedPolicy {
    /// In proportion to each tenant's cost from the other pools that month.
    Proportional,
    /// Equally among tenants active that month.
    Even,
    /// By `allocation.fixed_weights`.
    Fixed,
    /// Kept as a `__shared__` row.
    Keep,
}

/// How a pool turns a line into tenant shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolMethod {
    /// EKS node split: CPU and memory parts, pods by max(request, used).
    NodeSplit,
    /// In proportion to a usage metric in the line's period.
    Driver,
    /// In proportion to each tenant's cost in another pool on the same day.
    FollowPool,
    /// Shared-cost policy (`allocation.shared_policy`).
    Shared,
}

/// One pool: which lines it takes (first match wins) and how it splits them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolRule {
    pub name: PoolId,
    /// AWS product codes; empty matches any service.
    #[serde(default)]
    pub services: Vec<String>,
    /// The usage type must contain one of these; empty matches any.
    #[serde(default)]
    pub usage_type_contains: Vec<String>,
    pub method: PoolMethod,
    /// The metric to split by (method `driver`).
    #[serde(default)]
    pub driver: Option<String>,
    /// Used when `driver` has no usage at all in the period.
    #[serde(default)]
    pub fallback_driver: Option<String>,
    /// The pool to follow (method `follow_pool`).
    #[serde(default)]
    pub follow_pool: Option<PoolId>,
    /// Idle capacity policy (method `node_split`).
    #[serde(default)]
    pub idle_policy: Option<IdlePolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceCapacity {
    pub vcpu: f64,
    pub memory_gb: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllocationConfig {
    /// Weight of one vCPU against one GB of memory when a node's cost is
    /// divided into its CPU and memory parts (AWS split cost allocation: 9:1).
    pub cpu_weight: f64,
    pub memory_weight: f64,
    pub shared_policy: SharedPolicy,
    /// Unused Reserved-Instance and Savings-Plan commitment.
    pub commitment_policy: SharedPolicy,
    /// Weights per tenant for the `fixed` policy.
    pub fixed_weights: BTreeMap<TenantId, f64>,
    /// Capacities that override or extend the bundled instance-type table.
    pub instance_types: BTreeMap<String, InstanceCapacity>,
    /// The pools, in matching order. Tagged lines (direct), tax, credits and
    /// commitment fees are recognised before these rules.
    pub pools: Vec<PoolRule>,
}

impl Default for AllocationConfig {
    fn default() -> Self {
        let rule = |name: &str, services: &[&str], contains: &[&str], method, driver: Option<&str>| PoolRule {
            name: PoolId::parse(name).expect("default pool name"),
            services: services.iter().map(|s| s.to_string()).collect(),
            usage_type_contains: contains.iter().map(|s| s.to_string()).collect(),
            method,
            driver: driver.map(str::to_owned),
            fallback_driver: None,
            follow_pool: None,
            idle_policy: None,
        };
        let mut eks = rule(PoolId::EKS_COMPUTE, &["AmazonEC2"], &["BoxUsage", "SpotUsage", "DedicatedUsage"], PoolMethod::NodeSplit, None);
        eks.idle_policy = Some(IdlePolicy::Share);
        let mut control = rule(PoolId::EKS_CONTROL_PLANE, &["AmazonEKS"], &[], PoolMethod::FollowPool, None);
        control.follow_pool = Some(PoolId::parse(PoolId::EKS_COMPUTE).expect("pool"));
        let mut rds = rule(PoolId::RDS_COMPUTE, &["AmazonRDS"], &["InstanceUsage", "Multi-AZUsage"], PoolMethod::Driver, Some("db_exec_seconds"));
        rds.fallback_driver = Some("db_storage_gb".into());
        Self {
            cpu_weight: 9.0,
            memory_weight: 1.0,
            shared_policy: SharedPolicy::Proportional,
            commitment_policy: SharedPolicy::Proportional,
            fixed_weights: BTreeMap::new(),
            instance_types: BTreeMap::new(),
            pools: vec![
                eks,
                control,
                rds,
                rule(PoolId::RDS_STORAGE, &["AmazonRDS"], &["Storage", "IOUsage", "IOPS", "Backup", "Throughput"], PoolMethod::Driver, Some("db_storage_gb")),
                rule(PoolId::CACHE, &["AmazonElastiCache"], &["NodeUsage"], PoolMethod::Driver, Some("cache_memory_gb")),
                rule(PoolId::TRANSFER, &[], &["DataTransfer-Out", "Out-Bytes"], PoolMethod::Driver, Some("egress_gb")),
                rule(PoolId::LOAD_BALANCER, &["AWSELB", "AmazonELB", "ElasticLoadBalancing"], &[], PoolMethod::Driver, Some("requests")),
                rule(PoolId::SHARED, &[], &[], PoolMethod::Shared, None),
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorsConfig {
    pub cost_explorer: CostExplorerConfig,
    pub cloudwatch: CloudWatchConfig,
    pub postgres: PostgresCollectorConfig,
    pub redis: RedisCollectorConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostExplorerConfig {
    pub enabled: bool,
    /// Cron expression in UTC with seconds: `sec min hour day month weekday`.
    pub schedule: String,
    /// Days pulled again on every run so late corrections arrive.
    pub restate_days: u32,
    /// Requests allowed per calendar month (each costs $0.01).
    pub monthly_request_budget: u32,
    /// The cost-allocation tag key as Cost Explorer names it (without `user:`).
    pub tenant_tag: String,
    /// Retries of throttled or failed requests before a run fails.
    pub max_retries: u32,
}

impl Default for CostExplorerConfig {
    fn default() -> Self {
        Self { enabled: false, schedule: "0 20 6 * * *".into(), restate_days: 3, monthly_request_budget: 500, tenant_tag: "tenant".into(), max_retries: 5 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchQuery {
    /// The Tally metric the result becomes, e.g. `requests`.
    pub metric: String,
    pub namespace: String,
    pub metric_name: String,
    /// Sum, Average, Maximum, ...
    pub statistic: String,
    /// The dimension whose value names the tenant, e.g. `TenantId`; with
    /// Container Insights, `Namespace` mapped through `namespace_tenants`.
    pub tenant_dimension: String,
    /// Fixed dimensions besides the tenant's.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Multiplies every value (e.g. 1e-9 for bytes to GB).
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudWatchConfig {
    pub enabled: bool,
    pub schedule: String,
    /// Hours collected on each run.
    pub lookback_hours: u32,
    pub queries: Vec<CloudWatchQuery>,
    /// Kubernetes namespace (or other dimension value) to tenant.
    pub namespace_tenants: BTreeMap<String, TenantId>,
}

impl Default for CloudWatchConfig {
    fn default() -> Self {
        Self { enabled: false, schedule: "0 5 * * * *".into(), lookback_hours: 3, queries: Vec::new(), namespace_tenants: BTreeMap::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresCollectorConfig {
    pub enabled: bool,
    pub schedule: String,
    /// The application's database, reached with a read-only role.
    pub url: Option<String>,
    /// How a schema names its tenant, e.g. `tenant_{id}`.
    pub schema_pattern: String,
    /// Explicit schema-to-tenant mapping, checked before the pattern.
    pub schema_tenants: BTreeMap<String, TenantId>,
    /// Attribute execution time by `role` or by `schema` (search_path).
    pub exec_time_by: String,
    /// Role name pattern when `exec_time_by = "role"`, e.g. `app_{id}`.
    pub role_pattern: String,
}

impl Default for PostgresCollectorConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            schedule: "0 10 * * * *".into(),
            url: None,
            schema_pattern: "tenant_{id}".into(),
            schema_tenants: BTreeMap::new(),
            exec_time_by: "role".into(),
            role_pattern: "app_{id}".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisCollectorConfig {
    pub enabled: bool,
    pub schedule: String,
    pub url: Option<String>,
    /// Key pattern with `{tenant}` where the tenant id sits, e.g. `t:{tenant}:*`.
    pub key_pattern: String,
    /// Keys per tenant whose `MEMORY USAGE` is measured; the rest is extrapolated.
    pub sample_size: u32,
    /// `COUNT` hint for each `SCAN` step.
    pub scan_count: u32,
}

impl Default for RedisCollectorConfig {
    fn default() -> Self {
        Self { enabled: false, schedule: "0 15 * * * *".into(), url: None, key_pattern: "t:{tenant}:*".into(), sample_size: 500, scan_count: 200 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// When `tally serve` re-allocates the current and previous month.
    pub allocate: String,
    /// Random delay added to each run, so replicas and jobs do not all start at once.
    pub jitter_seconds: u32,
    /// How long a job's lease lasts without renewal before another replica may take it.
    pub lease_seconds: u32,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self { allocate: "0 40 7 * * *".into(), jitter_seconds: 30, lease_seconds: 300 }
    }
}

/// The Reserved-Instance and Savings-Plan projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SavingsConfig {
    /// The look-back shown by default: 7, 30 or 60 days (all three are computed).
    pub lookback_days: u32,
    /// The share of hours (0..1) the reserved baseline must be running in.
    pub baseline_share: Decimal,
    /// A rough estimate to check the projection against, e.g. 0.30 of the bill.
    pub estimate_share: Option<Decimal>,
    /// The same in money per month, e.g. 600.
    pub estimate_monthly: Option<Decimal>,
    /// Collect Cost Explorer's own recommendations (needs `collectors.cost_explorer`;
    /// 24 requests, $0.24, per run).
    pub recommendations_enabled: bool,
    /// When to collect them (cron in UTC with seconds); weekly by default.
    pub recommendations_schedule: String,
}

impl Default for SavingsConfig {
    fn default() -> Self {
        Self {
            lookback_days: 30,
            baseline_share: Decimal::new(95, 2),
            estimate_share: None,
            estimate_monthly: None,
            recommendations_enabled: false,
            recommendations_schedule: "0 0 8 * * Mon".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: TenantId,
    pub name: String,
    #[serde(default)]
    pub plan: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            currency: Currency::USD,
            tenant_tag_key: "user_tenant".into(),
            data_dir: None,
            currency_rates: BTreeMap::new(),
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            server: ServerConfig::default(),
            finance: FinanceConfig::default(),
            allocation: AllocationConfig::default(),
            collectors: CollectorsConfig::default(),
            schedule: ScheduleConfig::default(),
            savings: SavingsConfig::default(),
            tenants: Vec::new(),
        }
    }
}

/// Environment variables that are options of the binary, not config keys.
const NOT_CONFIG_KEYS: &[&str] = &["TALLY_CONFIG", "TALLY_LOG_FORMAT", "TALLY_LOG", "TALLY_TEST_PAUSE_BEFORE_SWITCH_MS"];

impl Config {
    /// Builds the configuration from an optional TOML file (its name, for
    /// messages, and its text) and the process environment, later sources
    /// winning: defaults, then the file, then `TALLY_*` variables.
    pub fn load<I, K, V>(file: Option<(&str, &str)>, env: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut origins: BTreeMap<String, String> = BTreeMap::new();
        let mut table = match file {
            Some((name, text)) => {
                let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
                    key: "(file)".into(),
                    value: None,
                    origin: Some(name.to_owned()),
                    expected: format!("valid TOML: {}", e.message()),
                })?;
                record_origins(&table, "", name, &mut origins);
                table
            }
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Config::default()).expect("defaults serialise");
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter_map(|(k, v)| {
                let k = k.as_ref();
                (k.starts_with("TALLY_") && !NOT_CONFIG_KEYS.contains(&k)).then(|| (k.to_owned(), v.as_ref().to_owned()))
            })
            .collect();
        overrides.sort();
        for (var, raw) in overrides {
            let path: Vec<String> = var["TALLY_".len()..].split("__").map(str::to_ascii_lowercase).collect();
            let key = path.join(".");
            let value = coerce(&defaults, &path, &raw).map_err(|expected| ConfigError {
                key: key.clone(),
                value: Some(raw.clone()),
                origin: Some(var.clone()),
                expected,
            })?;
            insert(&mut table, &path, value).map_err(|expected| ConfigError {
                key: key.clone(),
                value: Some(raw.clone()),
                origin: Some(var.clone()),
                expected,
            })?;
            origins.insert(key, var);
        }
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
            let key = e.path().to_string();
            let value = lookup(&table, &key).map(render);
            let origin = origins.get(&key).cloned().or_else(|| origin_of_prefix(&origins, &key));
            ConfigError { key, value, origin, expected: describe_serde_error(&e.into_inner().to_string()) }
        })?;
        config.validate(&origins)?;
        Ok(config)
    }

    fn validate(&self, origins: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        let err = |key: &str, value: String, expected: &str| ConfigError {
            key: key.to_owned(),
            value: Some(value),
            origin: origins.get(key).cloned(),
            expected: expected.to_owned(),
        };
        if self.tenant_tag_key.trim().is_empty() {
            return Err(err("tenant_tag_key", self.tenant_tag_key.clone(), "a tag key such as user_tenant"));
        }
        if ![7, 30, 60].contains(&self.savings.lookback_days) {
            return Err(err("savings.lookback_days", self.savings.lookback_days.to_string(), "7, 30 or 60 (the look-backs Cost Explorer offers)"));
        }
        if !(self.savings.baseline_share > Decimal::ZERO && self.savings.baseline_share <= Decimal::ONE) {
            return Err(err("savings.baseline_share", self.savings.baseline_share.to_string(), "a share of hours above 0 and at most 1, e.g. 0.95"));
        }
        if self.savings.recommendations_enabled && !self.collectors.cost_explorer.enabled {
            return Err(err(
                "savings.recommendations_enabled",
                "true".into(),
                "collectors.cost_explorer.enabled = true as well (the recommendations come from Cost Explorer)",
            ));
        }
        if self.server.rate_limit_per_minute == 0 {
            return Err(err("server.rate_limit_per_minute", "0".into(), "a positive number of requests per minute"));
        }
        let srv = &self.server;
        for (key, value, expected) in [
            ("server.max_connections", u64::from(srv.max_connections), "a positive number of connections"),
            ("server.max_connections_per_ip", u64::from(srv.max_connections_per_ip), "a positive number of connections"),
            ("server.header_timeout_seconds", srv.header_timeout_seconds, "a positive number of seconds"),
            ("server.request_timeout_seconds", srv.request_timeout_seconds, "a positive number of seconds"),
            ("server.max_body_bytes", srv.max_body_bytes, "a positive number of bytes"),
            ("server.session_hours", u64::from(srv.session_hours), "a positive number of hours"),
        ] {
            if value == 0 {
                return Err(err(key, "0".into(), expected));
            }
        }
        if let Some(url) = &srv.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(err("server.public_url", url.clone(), "an http:// or https:// address"));
        }
        if let Some(url) = &self.database.url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(err("database.url", url.clone(), "sqlite://PATH or postgres://USER@HOST/DB"));
        }
        if let Some(lake) = &self.storage.lake {
            let bucket = lake.strip_prefix("s3://").map(|rest| rest.split('/').next().unwrap_or_default());
            if lake.trim().is_empty() || bucket.is_some_and(str::is_empty) || (bucket.is_none() && lake.contains("://") && !lake.starts_with("file://")) {
                return Err(err("storage.lake", lake.clone(), "s3://BUCKET/PREFIX or a folder"));
            }
        }
        let a = &self.allocation;
        if !(a.cpu_weight.is_finite() && a.cpu_weight > 0.0) {
            return Err(err("allocation.cpu_weight", a.cpu_weight.to_string(), "a positive number"));
        }
        if !(a.memory_weight.is_finite() && a.memory_weight > 0.0) {
            return Err(err("allocation.memory_weight", a.memory_weight.to_string(), "a positive number"));
        }
        for (tenant, w) in &a.fixed_weights {
            if !(w.is_finite() && *w >= 0.0) {
                return Err(err(&format!("allocation.fixed_weights.{tenant}"), w.to_string(), "a weight >= 0"));
            }
        }
        if a.shared_policy == SharedPolicy::Fixed && a.fixed_weights.values().all(|w| *w == 0.0) {
            return Err(err("allocation.fixed_weights", "{}".into(), "at least one positive weight when shared_policy = \"fixed\""));
        }
        for (name, cap) in &a.instance_types {
            if !(cap.vcpu > 0.0 && cap.memory_gb > 0.0) {
                return Err(err(&format!("allocation.instance_types.{name}"), format!("{cap:?}"), "vcpu > 0 and memory_gb > 0"));
            }
        }
        if a.pools.is_empty() {
            return Err(err("allocation.pools", "[]".into(), "at least one pool rule"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, pool) in a.pools.iter().enumerate() {
            let key = format!("allocation.pools[{i}]");
            if !seen.insert(pool.name.clone()) {
                return Err(err(&format!("{key}.name"), pool.name.to_string(), "a pool name used once"));
            }
            match pool.method {
                PoolMethod::Driver if pool.driver.is_none() => {
                    return Err(err(&format!("{key}.driver"), "(none)".into(), "a usage metric for method \"driver\""));
                }
                PoolMethod::FollowPool if pool.follow_pool.is_none() => {
                    return Err(err(&format!("{key}.follow_pool"), "(none)".into(), "the pool to follow for method \"follow_pool\""));
                }
                _ => {}
            }
        }
        if !a.pools.iter().any(|p| p.method == PoolMethod::Shared) {
            return Err(err("allocation.pools", "(no shared pool)".into(), "a last pool with method \"shared\" that takes every remaining line"));
        }
        if let Some(m) = &self.finance.cash_balance
            && self.finance.cash_balance_date.is_none()
        {
            return Err(ConfigError {
                key: "finance.cash_balance_date".into(),
                value: None,
                origin: None,
                expected: format!("the date the cash balance of {m} was taken (YYYY-MM-DD)"),
            });
        }
        let c = &self.collectors;
        let schedules = [
            ("collectors.cost_explorer.schedule", &c.cost_explorer.schedule),
            ("collectors.cloudwatch.schedule", &c.cloudwatch.schedule),
            ("collectors.postgres.schedule", &c.postgres.schedule),
            ("collectors.redis.schedule", &c.redis.schedule),
            ("schedule.allocate", &self.schedule.allocate),
        ];
        for (key, expr) in schedules {
            if cron::Schedule::from_str(expr).is_err() {
                return Err(err(key, expr.to_string(), "a cron expression with seconds, e.g. \"0 30 6 * * *\" (06:30:00 UTC daily)"));
            }
        }
        if c.cost_explorer.monthly_request_budget == 0 && c.cost_explorer.enabled {
            return Err(err("collectors.cost_explorer.monthly_request_budget", "0".into(), "a positive number of requests"));
        }
        if c.postgres.enabled && c.postgres.url.is_none() {
            return Err(ConfigError {
                key: "collectors.postgres.url".into(),
                value: None,
                origin: None,
                expected: "the application's database URL (postgres://readonly@host/app) when the collector is enabled".into(),
            });
        }
        if !c.postgres.schema_pattern.contains("{id}") {
            return Err(err("collectors.postgres.schema_pattern", c.postgres.schema_pattern.clone(), "a pattern containing {id}, e.g. tenant_{id}"));
        }
        if !matches!(c.postgres.exec_time_by.as_str(), "role" | "schema") {
            return Err(err("collectors.postgres.exec_time_by", c.postgres.exec_time_by.clone(), "\"role\" or \"schema\""));
        }
        if c.redis.enabled && c.redis.url.is_none() {
            return Err(ConfigError {
                key: "collectors.redis.url".into(),
                value: None,
                origin: None,
                expected: "redis://host:port when the collector is enabled".into(),
            });
        }
        if !c.redis.key_pattern.contains("{tenant}") {
            return Err(err("collectors.redis.key_pattern", c.redis.key_pattern.clone(), "a pattern containing {tenant}, e.g. t:{tenant}:*"));
        }
        if c.redis.sample_size == 0 || c.redis.scan_count == 0 {
            return Err(err("collectors.redis.sample_size", c.redis.sample_size.to_string(), "sample_size and scan_count of at least 1"));
        }
        for (i, q) in c.cloudwatch.queries.iter().enumerate() {
            if crate::Metric::parse(&q.metric).is_err() {
                return Err(err(&format!("collectors.cloudwatch.queries[{i}].metric"), q.metric.clone(), "a snake_case Tally metric such as requests"));
            }
            if !(q.scale.is_finite() && q.scale > 0.0) {
                return Err(err(&format!("collectors.cloudwatch.queries[{i}].scale"), q.scale.to_string(), "a positive factor"));
            }
        }
        for (code, rate) in &self.currency_rates {
            if Currency::parse(code).is_err() {
                return Err(err(&format!("currency_rates.{code}"), code.clone(), "an ISO 4217 currency code"));
            }
            // A rate beyond a million would carry an amount past the largest one Tally takes.
            if *rate <= Decimal::ZERO || *rate > Decimal::from(1_000_000) {
                return Err(err(&format!("currency_rates.{code}"), rate.to_string(), "a rate above 0 and at most 1,000,000"));
            }
        }
        if let Some(cash) = self.finance.cash_balance
            && crate::money::check_amount("finance.cash_balance", cash).is_err()
        {
            return Err(err("finance.cash_balance", cash.to_string(), crate::money::AMOUNT_RANGE));
        }
        for (i, cost) in self.finance.monthly_costs.iter().enumerate() {
            if cost.amount < Decimal::ZERO || crate::money::check_amount("amount", cost.amount).is_err() {
                return Err(err(
                    &format!("finance.monthly_costs[{i}].amount"),
                    cost.amount.to_string(),
                    &format!("{}, and not negative", crate::money::AMOUNT_RANGE),
                ));
            }
        }
        Ok(())
    }

    /// The display name and plan configured for a tenant, if any.
    pub fn tenant(&self, id: &TenantId) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| &t.id == id)
    }
}

fn record_origins(table: &toml::Table, prefix: &str, origin: &str, out: &mut BTreeMap<String, String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if let toml::Value::Table(t) = v {
            record_origins(t, &key, origin, out);
        }
        out.insert(key, origin.to_owned());
    }
}

fn origin_of_prefix(origins: &BTreeMap<String, String>, key: &str) -> Option<String> {
    let mut k = key;
    while let Some((head, _)) = k.rsplit_once(['.', '[']) {
        if let Some(o) = origins.get(head) {
            return Some(o.clone());
        }
        k = head;
    }
    None
}

/// Interprets an environment string as the type the key has by default.
fn coerce(defaults: &toml::Table, path: &[String], raw: &str) -> Result<toml::Value, String> {
    let mut node: Option<&toml::Value> = None;
    let mut table = Some(defaults);
    for seg in path {
        node = table.and_then(|t| t.get(seg));
        table = node.and_then(toml::Value::as_table);
    }
    let parse_inline = |raw: &str| -> Option<toml::Value> { format!("v = {raw}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v")) };
    Ok(match node {
        Some(toml::Value::String(_)) => toml::Value::String(raw.to_owned()),
        Some(toml::Value::Integer(_)) => toml::Value::Integer(raw.trim().parse().map_err(|_| "an integer".to_string())?),
        Some(toml::Value::Float(_)) => toml::Value::Float(raw.trim().parse().map_err(|_| "a number".to_string())?),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err("true or false".into()),
        }),
        Some(toml::Value::Array(_)) | Some(toml::Value::Table(_)) => {
            parse_inline(raw).ok_or_else(|| "a TOML inline array or table, e.g. [{ name = \"payroll\", amount = \"40000\" }]".to_string())?
        }
        Some(toml::Value::Datetime(_)) | None => match parse_inline(raw) {
            Some(v @ (toml::Value::Array(_) | toml::Value::Table(_) | toml::Value::Boolean(_))) => v,
            _ => toml::Value::String(raw.to_owned()),
        },
    })
}

fn insert(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("a key after TALLY_")?;
    let mut t = table;
    for seg in parents {
        let entry = t.entry(seg.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry.as_table_mut().ok_or_else(|| format!("`{seg}` to be a section, not a value"))?;
    }
    t.insert(last.clone(), value);
    Ok(())
}

fn lookup<'a>(table: &'a toml::Table, dotted: &str) -> Option<&'a toml::Value> {
    let mut node: Option<&toml::Value> = None;
    let mut t = Some(table);
    for seg in dotted.split('.') {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        node = t.and_then(|t| t.get(name));
        if let Some(i) = index {
            node = node.and_then(|v| v.as_array()).and_then(|a| a.get(i));
        }
        t = node.and_then(toml::Value::as_table);
    }
    node
}

fn render(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn describe_serde_error(message: &str) -> String {
    // serde says "invalid type: string \"x\", expected u32"; keep the part a
    // person can act on.
    match message.split_once("expected ") {
        Some((_, expected)) => expected.to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn no_file_and_no_environment_give_the_defaults() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.rate_limit_per_minute, 100);
    }

    #[test]
    fn an_environment_variable_overrides_the_file() {
        let file = "[server]\nrate_limit_per_minute = 50\n";
        let c = Config::load(Some(("tally.toml", file)), env(&[("TALLY_SERVER__RATE_LIMIT_PER_MINUTE", "200")])).unwrap();
        assert_eq!(c.server.rate_limit_per_minute, 200);
    }

    #[test]
    fn every_key_including_nested_optional_ones_can_be_set_from_the_environment() {
        let c = Config::load(
            None,
            env(&[
                ("TALLY_FINANCE__CASH_BALANCE", "250000.50"),
                ("TALLY_FINANCE__CASH_BALANCE_DATE", "2026-11-01"),
                ("TALLY_COLLECTORS__REDIS__SAMPLE_SIZE", "50"),
                ("TALLY_ALLOCATION__SHARED_POLICY", "even"),
                ("TALLY_DATABASE__URL", "postgres://postgres@127.0.0.1/tally"),
                ("TALLY_FINANCE__MONTHLY_COSTS", "[{ name = \"payroll\", amount = \"40000\" }]"),
            ]),
        )
        .unwrap();
        assert_eq!(c.finance.cash_balance, Some("250000.50".parse().unwrap()));
        assert_eq!(c.collectors.redis.sample_size, 50);
        assert_eq!(c.allocation.shared_policy, SharedPolicy::Even);
        assert_eq!(c.finance.monthly_costs.len(), 1);
        assert_eq!(c.database.url.as_deref(), Some("postgres://postgres@127.0.0.1/tally"));
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_key_the_value_and_the_variable() {
        let e = Config::load(None, env(&[("TALLY_SERVER__RATE_LIMIT_PER_MINUTE", "lots")])).unwrap_err();
        assert_eq!(e.key, "server.rate_limit_per_minute");
        assert_eq!(e.value.as_deref(), Some("lots"));
        assert_eq!(e.origin.as_deref(), Some("TALLY_SERVER__RATE_LIMIT_PER_MINUTE"));
        assert!(e.to_string().contains("expected an integer"), "{e}");
    }

    #[test]
    fn an_invalid_value_in_the_file_names_the_key_and_the_file() {
        let e = Config::load(Some(("tally.toml", "[server]\nlisten = \"nowhere\"\n")), env(&[])).unwrap_err();
        assert_eq!(e.key, "server.listen");
        assert_eq!(e.value.as_deref(), Some("nowhere"));
        assert_eq!(e.origin.as_deref(), Some("tally.toml"));
    }

    #[test]
    fn an_unknown_key_is_rejected_rather_than_ignored() {
        let e = Config::load(Some(("tally.toml", "[server]\nlisten_port = 80\n")), env(&[])).unwrap_err();
        assert!(e.to_string().contains("listen_port"), "{e}");
    }

    #[test]
    fn an_unknown_currency_is_rejected() {
        let e = Config::load(None, env(&[("TALLY_CURRENCY", "DOLLARS")])).unwrap_err();
        assert_eq!(e.key, "currency");
        assert!(e.expected.contains("ISO 4217"), "{e}");
    }

    #[test]
    fn a_bad_cron_expression_is_reported_with_its_key() {
        let e = Config::load(None, env(&[("TALLY_SCHEDULE__ALLOCATE", "every day")])).unwrap_err();
        assert_eq!(e.key, "schedule.allocate");
        assert!(e.expected.contains("cron"));
    }

    #[test]
    fn a_cash_balance_without_its_date_is_rejected() {
        let e = Config::load(None, env(&[("TALLY_FINANCE__CASH_BALANCE", "1000")])).unwrap_err();
        assert_eq!(e.key, "finance.cash_balance_date");
        assert_eq!(e.value, None);
    }

    #[test]
    fn amounts_and_server_limits_out_of_range_are_rejected_by_key() {
        let huge = [("TALLY_FINANCE__CASH_BALANCE", "1e29"), ("TALLY_FINANCE__CASH_BALANCE_DATE", "2026-11-01")];
        assert_eq!(Config::load(None, env(&huge)).unwrap_err().key, "finance.cash_balance");
        let costs = [("TALLY_FINANCE__MONTHLY_COSTS", "[{ name = \"payroll\", amount = \"79228162514264337593543950335\" }]")];
        assert_eq!(Config::load(None, env(&costs)).unwrap_err().key, "finance.monthly_costs[0].amount");
        let rate = Config::load(Some(("t.toml", "[currency_rates]\nEUR = \"1000000000\"\n")), env(&[])).unwrap_err();
        assert_eq!(rate.key, "currency_rates.EUR");
        assert_eq!(Config::load(None, env(&[("TALLY_SERVER__MAX_CONNECTIONS", "0")])).unwrap_err().key, "server.max_connections");
        assert_eq!(Config::load(None, env(&[("TALLY_SERVER__PUBLIC_URL", "tally.example.com")])).unwrap_err().key, "server.public_url");
    }

    #[test]
    fn a_driver_pool_without_a_driver_is_rejected() {
        let file = "[[allocation.pools]]\nname = \"gpu\"\nmethod = \"driver\"\n[[allocation.pools]]\nname = \"shared\"\nmethod = \"shared\"\n";
        let e = Config::load(Some(("tally.toml", file)), env(&[])).unwrap_err();
        assert_eq!(e.key, "allocation.pools[0].driver");
    }

    #[test]
    fn binary_options_in_the_environment_are_not_config_keys() {
        assert!(Config::load(None, env(&[("TALLY_CONFIG", "x.toml"), ("TALLY_LOG_FORMAT", "json")])).is_ok());
    }

    #[test]
    fn the_example_config_in_the_repository_loads() {
        let text = include_str!("../../../tally.example.toml");
        let c = Config::load(Some(("tally.example.toml", text)), env(&[])).unwrap();
        assert!(c.finance.cash_balance.is_some());
        assert!(!c.tenants.is_empty());
    }
}
