//! The product's job runner: builds the real clients and runs each job.

use async_trait::async_trait;
use tally_collectors::aws::{AwsSettings, sdk_config};
use tally_collectors::cloudwatch::SdkCloudWatch;
use tally_collectors::cost_explorer::SdkCostExplorer;
use tally_collectors::retry::RetryPolicy;
use tally_storage::appdb::AppDatabase;

use crate::scheduler::{JobKind, JobRunner, allocation_months};
use crate::usage::{AppDatabaseSource, collect_cloudwatch, collect_postgres, collect_redis_usage};
use crate::{App, JobError, Result, allocate, collect};

/// Runs jobs against the real AWS account (the standard credential chain,
/// `AWS_ENDPOINT_URL`), the application's database and cache.
#[derive(Debug, Clone)]
pub struct ProductRunner {
    pub app: App,
    pub aws: AwsSettings,
}

impl ProductRunner {
    pub async fn run_kind(&self, kind: JobKind) -> Result<String> {
        let app = &self.app;
        let retries = RetryPolicy::new(app.config.collectors.cost_explorer.max_retries);
        match kind {
            JobKind::CollectCosts => {
                let api = SdkCostExplorer::new(&sdk_config(&self.aws).await);
                let r = collect::collect_costs(app, &api, None, &retries).await?;
                Ok(format!("{} lines for {}..{}, {} requests", r.lines, r.from, r.to, r.requests))
            }
            JobKind::CollectCloudWatch => {
                let api = SdkCloudWatch::new(&sdk_config(&self.aws).await);
                let r = collect_cloudwatch(app, &api, None, &retries).await?;
                Ok(format!("{} samples", r.samples))
            }
            JobKind::CollectPostgres => {
                let url = app.config.collectors.postgres.url.clone().ok_or_else(|| JobError::Invalid("collectors.postgres.url is not set".into()))?;
                let db = AppDatabaseSource(AppDatabase::connect(&url).await?);
                let r = collect_postgres(app, &db).await?;
                Ok(format!("{} samples", r.samples))
            }
            JobKind::CollectRedis => {
                let r = collect_redis_usage(app).await?;
                Ok(format!("{} samples", r.samples))
            }
            JobKind::CollectRecommendations => {
                let api = SdkCostExplorer::new(&sdk_config(&self.aws).await);
                let mut notes = Vec::new();
                for lookback in crate::savings::LOOKBACKS {
                    let r = crate::savings::collect_recommendations(app, &api, lookback, &retries).await?;
                    notes.push(format!("{} days: {} recommendation(s), {} requests", lookback, r.recommendations, r.requests));
                }
                Ok(notes.join("; "))
            }
            JobKind::Allocate => {
                let have = app.lake.billing_months().await?;
                let (mut done, mut unchanged, mut failed) = (Vec::new(), Vec::new(), Vec::new());
                let months: Vec<_> = allocation_months(app.clock.now()).into_iter().filter(|m| have.contains(m)).collect();
                // Each month on its own: one that fails does not keep the other from being allocated.
                for &m in &months {
                    match allocate::allocate_if_changed(app, m).await {
                        Ok(Some(_)) => done.push(m.to_string()),
                        Ok(None) => unchanged.push(m.to_string()),
                        Err(e) => failed.push((m, e)),
                    }
                }
                // The projection reads the same billing lines: keep it current (after the
                // failed months, if any, are reported: its own error must not hide theirs).
                let refreshed = if done.is_empty() { Ok(0) } else { crate::savings::refresh(app).await };
                if !failed.is_empty() {
                    if let Err(e) = refreshed {
                        tracing::warn!(error = %e, "the savings projection was not refreshed");
                    }
                    return Err(allocate::failed_months(&failed, months.len()));
                }
                refreshed?;
                if done.is_empty() {
                    return Ok(if unchanged.is_empty() {
                        "no billing data for this or last month".into()
                    } else {
                        format!("{} unchanged since the last allocation", unchanged.join(", "))
                    });
                }
                Ok(format!("allocated {}; savings projected", done.join(", ")))
            }
        }
    }
}

#[async_trait]
impl JobRunner for ProductRunner {
    async fn run(&self, kind: JobKind) -> std::result::Result<String, String> {
        self.run_kind(kind).await.map_err(|e| e.to_string())
    }
}
