//! Collecting per-tenant usage: CloudWatch metrics, the application's
//! PostgreSQL tenant schemas, and the application's Redis.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use tally_collectors::cloudwatch::{CloudWatchApi, collect_usage};
use tally_collectors::redis_usage::collect_redis;
use tally_collectors::retry::RetryPolicy;
use tally_collectors::tenant_db::{Naming, TenantDatabase, collect_database, exec_seconds};
use tally_domain::{Metric, TenantId, UsageSample};
use tally_storage::appdb::AppDatabase;

use crate::runs::{Tracker, record};
use crate::{App, JobError, Result};

/// The application database through the storage crate's read-only queries.
#[derive(Debug, Clone)]
pub struct AppDatabaseSource(pub AppDatabase);

#[async_trait]
impl TenantDatabase for AppDatabaseSource {
    async fn schema_sizes(&self) -> std::result::Result<Vec<(String, i64)>, String> {
        self.0.schema_sizes().await.map_err(|e| e.to_string())
    }
    async fn has_pg_stat_statements(&self) -> std::result::Result<bool, String> {
        self.0.has_pg_stat_statements().await.map_err(|e| e.to_string())
    }
    async fn exec_ms_by_role(&self) -> std::result::Result<Vec<(String, f64)>, String> {
        self.0.exec_ms_by_role().await.map_err(|e| e.to_string())
    }
    async fn exec_ms_by_schema(&self, schemas: &[String]) -> std::result::Result<Vec<(String, f64)>, String> {
        self.0.exec_ms_by_schema(schemas).await.map_err(|e| e.to_string())
    }
}

/// What a usage collection stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageStored {
    pub source: String,
    pub samples: usize,
    pub tenants_created: Vec<TenantId>,
    pub notes: Vec<String>,
    pub job_run: i64,
}

async fn store_samples(app: &App, source: &str, label: &str, samples: &[UsageSample], tracker: &Tracker) -> Result<Vec<TenantId>> {
    let tenants: Vec<TenantId> = samples.iter().map(|s| s.tenant.clone()).collect();
    let created = app.store.ensure_tenants(&tenants).await?;
    if !samples.is_empty() {
        let s = app.lake.merge_usage(source, label, samples).await?;
        tracker.rows(s.rows as i64);
    }
    Ok(created)
}

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).expect("hours truncate")
}

/// CloudWatch: the configured queries over `[from, to)` (default: the last
/// `lookback_hours` complete hours).
pub async fn collect_cloudwatch(
    app: &App,
    api: &dyn CloudWatchApi,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    policy: &RetryPolicy,
) -> Result<UsageStored> {
    let cfg = &app.config.collectors.cloudwatch;
    if cfg.queries.is_empty() {
        return Err(JobError::Invalid("no collectors.cloudwatch.queries are configured".into()));
    }
    let now = app.clock.now();
    let (from, to) = window.unwrap_or((hour_of(now) - Duration::hours(i64::from(cfg.lookback_hours.max(1))), hour_of(now)));
    let (out, run) = record(app, "collect:usage:cloudwatch", |tracker: Tracker| async move {
        let known: Vec<TenantId> = app.store.tenants().await?.into_iter().map(|t| t.id).collect();
        let got = collect_usage(api, &cfg.queries, &cfg.namespace_tenants, &known, from, to, now, policy).await.map_err(JobError::Failed)?;
        tracker.requests(i64::from(got.calls));
        let created = store_samples(app, "cloudwatch", &format!("CloudWatch {from}..{to}"), &got.samples, &tracker).await?;
        tracker.detail(format!("{} queries, {} calls at {} s, {} samples", got.queries, got.calls, got.period, got.samples.len()));
        Ok(UsageStored { source: "cloudwatch".into(), samples: got.samples.len(), tenants_created: created, notes: got.warnings, job_run: 0 })
    })
    .await?;
    Ok(UsageStored { job_run: run, ..out })
}

/// The last cumulative execution-time reading, kept between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExecSnapshot {
    taken_at: DateTime<Utc>,
    ms: BTreeMap<TenantId, f64>,
}

const EXEC_SNAPSHOT: &str = "collector:postgres:exec_ms";
static SAID_NO_PG_STAT_STATEMENTS: AtomicBool = AtomicBool::new(false);

/// The application's PostgreSQL: per-schema storage now, and execution time
/// since the last run (spread evenly over the hours in between).
pub async fn collect_postgres(app: &App, db: &dyn TenantDatabase) -> Result<UsageStored> {
    let cfg = &app.config.collectors.postgres;
    let naming = Naming {
        schema_pattern: cfg.schema_pattern.clone(),
        schema_tenants: cfg.schema_tenants.clone(),
        role_pattern: cfg.role_pattern.clone(),
        exec_time_by: cfg.exec_time_by.clone(),
    };
    let (out, run) = record(app, "collect:usage:postgres", |tracker: Tracker| async move {
        let now = app.clock.now();
        let got = collect_database(db, &naming, hour_of(now)).await.map_err(JobError::Failed)?;
        let mut samples = got.storage.clone();
        let mut notes = Vec::new();
        if let Some(note) = &got.note {
            if !SAID_NO_PG_STAT_STATEMENTS.swap(true, Ordering::Relaxed) {
                tracing::warn!("{note}");
            }
            notes.push(note.clone());
        }
        if let Some(current) = &got.exec_ms {
            let previous: Option<ExecSnapshot> = app.store.document(EXEC_SNAPSHOT).await?.and_then(|(body, _)| serde_json::from_str(&body).ok());
            if let Some(prev) = &previous {
                let secs = exec_seconds(&prev.ms, current);
                let first = hour_of(prev.taken_at);
                let last = hour_of(now);
                let hours: Vec<DateTime<Utc>> =
                    if last <= first { vec![last] } else { (0..(last - first).num_hours()).map(|h| first + Duration::hours(h)).collect() };
                for (tenant, s) in secs {
                    for h in &hours {
                        samples.push(
                            UsageSample::new(*h, tenant.clone(), Metric::parse("db_exec_seconds").expect("canonical"), s / hours.len() as f64)
                                .map_err(|e| JobError::Failed(e.to_string()))?,
                        );
                    }
                }
            } else {
                notes.push("first reading of pg_stat_statements: execution time is counted from the next run".into());
            }
            let snap = ExecSnapshot { taken_at: now, ms: current.clone() };
            app.store.put_document(EXEC_SNAPSHOT, &serde_json::to_string(&snap).map_err(|e| JobError::Failed(e.to_string()))?, now).await?;
        }
        let created = store_samples(app, "postgres", "application database", &samples, &tracker).await?;
        tracker.detail(format!("{} samples{}", samples.len(), notes.first().map(|n| format!("; {n}")).unwrap_or_default()));
        Ok(UsageStored { source: "postgres".into(), samples: samples.len(), tenants_created: created, notes, job_run: 0 })
    })
    .await?;
    Ok(UsageStored { job_run: run, ..out })
}

/// The application's Redis: estimated memory per tenant key prefix.
pub async fn collect_redis_usage(app: &App) -> Result<UsageStored> {
    let cfg = &app.config.collectors.redis;
    let url = cfg.url.clone().ok_or_else(|| JobError::Invalid("collectors.redis.url is not set".into()))?;
    let (out, run) = record(app, "collect:usage:redis", |tracker: Tracker| async move {
        let now = app.clock.now();
        let got = collect_redis(&url, &cfg.key_pattern, cfg.sample_size, cfg.scan_count, hour_of(now)).await.map_err(JobError::Failed)?;
        let worst = got.tenants.iter().map(|t| t.relative_error).fold(0.0, f64::max);
        let created = store_samples(app, "redis", "application cache", &got.samples, &tracker).await?;
        tracker.detail(format!("{} tenants, {} SCAN calls, worst relative error {:.1}% (95%)", got.tenants.len(), got.scan_calls, worst * 100.0));
        Ok(UsageStored { source: "redis".into(), samples: got.samples.len(), tenants_created: created, notes: Vec::new(), job_run: 0 })
    })
    .await?;
    Ok(UsageStored { job_run: run, ..out })
}
