//! Per-tenant database usage from the application's PostgreSQL, where each
//! tenant has its own schema: storage per schema and, where
//! `pg_stat_statements` is installed, execution time per tenant.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_domain::{Metric, TenantId, UsageSample};

/// The application database, as the collector needs it.
#[async_trait]
pub trait TenantDatabase: Send + Sync {
    async fn schema_sizes(&self) -> Result<Vec<(String, i64)>, String>;
    async fn has_pg_stat_statements(&self) -> Result<bool, String>;
    async fn exec_ms_by_role(&self) -> Result<Vec<(String, f64)>, String>;
    async fn exec_ms_by_schema(&self, schemas: &[String]) -> Result<Vec<(String, f64)>, String>;
}

/// How schemas and roles name tenants.
#[derive(Debug, Clone, PartialEq)]
pub struct Naming {
    /// E.g. `tenant_{id}`.
    pub schema_pattern: String,
    pub schema_tenants: BTreeMap<String, TenantId>,
    /// E.g. `app_{id}`.
    pub role_pattern: String,
    /// `role` or `schema`.
    pub exec_time_by: String,
}

/// The tenant a name denotes under `pattern` (`{id}` marks the tenant;
/// underscores in it stand for hyphens).
pub fn tenant_in(name: &str, pattern: &str) -> Option<TenantId> {
    let (prefix, suffix) = pattern.split_once("{id}")?;
    let middle = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    TenantId::normalise(middle).ok()
}

/// What one collection found.
#[derive(Debug, Clone, PartialEq)]
pub struct DbCollected {
    /// `db_storage_gb` per tenant at the hour.
    pub storage: Vec<UsageSample>,
    /// Cumulative execution time (ms) per tenant since the statistics were reset.
    pub exec_ms: Option<BTreeMap<TenantId, f64>>,
    /// Said once per run when execution time cannot be collected.
    pub note: Option<String>,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

pub async fn collect_database(db: &dyn TenantDatabase, naming: &Naming, hour: DateTime<Utc>) -> Result<DbCollected, String> {
    let mut tenant_of_schema: BTreeMap<String, TenantId> = BTreeMap::new();
    let mut storage = Vec::new();
    for (schema, bytes) in db.schema_sizes().await? {
        let tenant = naming.schema_tenants.get(&schema).cloned().or_else(|| tenant_in(&schema, &naming.schema_pattern));
        if let Some(t) = tenant {
            tenant_of_schema.insert(schema.clone(), t.clone());
            let gb = bytes as f64 / GIB;
            storage.push(UsageSample::new(hour, t, Metric::parse("db_storage_gb").expect("canonical"), gb).map_err(|e| e.to_string())?);
        }
    }
    if !db.has_pg_stat_statements().await? {
        return Ok(DbCollected {
            storage,
            exec_ms: None,
            note: Some("pg_stat_statements is not installed (or not readable) in the application database: no db_exec_seconds is collected, and rds_compute falls back to db_storage_gb. Install it with CREATE EXTENSION pg_stat_statements and shared_preload_libraries".into()),
        });
    }
    let mut exec: BTreeMap<TenantId, f64> = BTreeMap::new();
    if naming.exec_time_by == "schema" {
        let schemas: Vec<String> = tenant_of_schema.keys().cloned().collect();
        for (schema, ms) in db.exec_ms_by_schema(&schemas).await? {
            if let Some(t) = tenant_of_schema.get(&schema) {
                *exec.entry(t.clone()).or_default() += ms;
            }
        }
    } else {
        for (role, ms) in db.exec_ms_by_role().await? {
            if let Some(t) = tenant_in(&role, &naming.role_pattern) {
                *exec.entry(t).or_default() += ms;
            }
        }
    }
    Ok(DbCollected { storage, exec_ms: Some(exec), note: None })
}

/// Execution seconds in the hour from two cumulative readings; a reading
/// lower than the last means the statistics were reset.
pub fn exec_seconds(previous: &BTreeMap<TenantId, f64>, current: &BTreeMap<TenantId, f64>) -> BTreeMap<TenantId, f64> {
    current
        .iter()
        .map(|(t, now)| {
            let before = previous.get(t).copied().unwrap_or(0.0);
            let delta = if *now >= before { now - before } else { *now };
            (t.clone(), delta / 1000.0)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "the expected values are computed exactly")]
mod tests {
    use super::*;

    #[test]
    fn schema_names_map_to_tenants_by_pattern() {
        assert_eq!(tenant_in("tenant_acme", "tenant_{id}").unwrap().as_str(), "acme");
        assert_eq!(tenant_in("tenant_black_mesa", "tenant_{id}").unwrap().as_str(), "black-mesa");
        assert_eq!(tenant_in("app_acme_ro", "app_{id}_ro").unwrap().as_str(), "acme");
        assert!(tenant_in("public", "tenant_{id}").is_none());
    }

    #[test]
    fn execution_time_is_the_difference_of_cumulative_readings_across_resets() {
        let t = |s: &str| TenantId::parse(s).unwrap();
        let before = BTreeMap::from([(t("acme"), 10_000.0), (t("globex"), 5_000.0)]);
        let now = BTreeMap::from([(t("acme"), 16_000.0), (t("globex"), 1_000.0), (t("initech"), 2_000.0)]);
        let d = exec_seconds(&before, &now);
        assert_eq!(d[&t("acme")], 6.0);
        assert_eq!(d[&t("globex")], 1.0, "a reset counts from zero");
        assert_eq!(d[&t("initech")], 2.0);
    }
}
