//! Allocating a month from the columnar store, and storing the result and
//! its rollups.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use tally_domain::{AllocationFailure, AllocationOutcome, AllocationTrigger, CostSource, Month};
use tally_lake::Snapshot;
use tally_storage::{AllocationResultSet, BilledTotal, DailyCost, LakeKind, UsageTotal};

use crate::runs::{Tracker, allocate_job, record};
use crate::{App, JobError, Result, blocking};

/// Which billing source a month is allocated from when several hold data:
/// the invoice-grade files first, Cost Explorer next, demo data last.
pub const SOURCE_PREFERENCE: [CostSource; 4] = [CostSource::Cur, CostSource::Focus, CostSource::CostExplorer, CostSource::Demo];

/// The billing source a month is allocated from.
pub async fn month_source(app: &App, month: Month) -> Result<CostSource> {
    let sources = app.lake.billing_sources(month).await?;
    SOURCE_PREFERENCE
        .into_iter()
        .find(|s| sources.iter().any(|(have, n)| have == s && *n > 0))
        .ok_or_else(|| JobError::Invalid(format!("no billing data for {month}: import a CUR or FOCUS export, or run `tally collect costs`")))
}

/// What an allocation of `month` reads: the billing source's files and the
/// usage files of the hours its lines cover.
async fn inputs(app: &App, month: Month) -> Result<(CostSource, Snapshot, Snapshot)> {
    let source = month_source(app, month).await?;
    let billing = app.lake.billing(source.as_str(), month).await?;
    // The lines' span (fees may start before or end after the calendar month).
    let span = app
        .store
        .lake_partitions(LakeKind::Billing)
        .await?
        .into_iter()
        .find(|p| p.source == source.as_str() && p.month == month)
        .map(|p| (p.first_at.unwrap_or(month.start()), p.last_at.unwrap_or(month.end())));
    let (from, to): (DateTime<Utc>, DateTime<Utc>) = span.unwrap_or((month.start(), month.end()));
    let usage = app.lake.usage(from.min(month.start()), to.max(month.end()).max(from + Duration::hours(1))).await?;
    Ok((source, billing, usage))
}

/// The inputs' fingerprint: the files read and the configuration that splits them.
fn fingerprint(app: &App, billing: &Snapshot, usage: &Snapshot) -> String {
    let cfg = serde_json::to_string(&(&app.config.allocation, app.config.currency.code())).unwrap_or_default();
    let digest = Sha256::digest(format!("billing {}; usage {}; config {cfg}", billing.fingerprint(), usage.fingerprint()).as_bytes());
    format!("{:x}", digest)
}

/// Allocates `month` and replaces its stored results atomically.
pub async fn allocate_month(app: &App, month: Month) -> Result<AllocationOutcome> {
    Ok(run(app, month, false).await?.expect("always allocates"))
}

/// Allocates `month` unless nothing it reads changed since its last
/// allocation (the scheduler's daily run); `None` when unchanged.
pub async fn allocate_if_changed(app: &App, month: Month) -> Result<Option<AllocationOutcome>> {
    run(app, month, true).await
}

async fn run(app: &App, month: Month, skip_unchanged: bool) -> Result<Option<AllocationOutcome>> {
    let (outcome, run) = record(app, &allocate_job(month), |tracker: Tracker| async move {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (source, billing, usage) = inputs(app, month).await?;
            let inputs = fingerprint(app, &billing, &usage);
            if skip_unchanged && app.store.allocation_runs().await?.iter().any(|r| r.month == month && r.inputs.as_deref() == Some(inputs.as_str())) {
                tracker.detail(format!("{month}: unchanged since its last allocation (same files and configuration); not allocated again"));
                return Ok(None);
            }
            let (cfg, currency) = (app.config.allocation.clone(), app.config.currency);
            let (bp, up) = (billing.paths.clone(), usage.paths.clone());
            let result = blocking(move || Ok(tally_allocation::allocate(&cfg, currency, month, &bp, &up)?)).await;
            let result = match result {
                Ok(r) => r,
                // A file deleted under us by an import that replaced it: read the new snapshot once more.
                Err(e) if attempt == 1 && inputs_changed(app, month, &billing, &usage).await => {
                    tracing::info!(%month, error = %e, "the month's files changed while they were read; allocating again");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let set = AllocationResultSet {
                month,
                source,
                billed_lines: result.billed_lines as i64,
                usage_rows: result.usage_rows as i64,
                billed: result
                    .billed
                    .iter()
                    .map(|b| BilledTotal { month, service: b.service.clone(), currency, unblended: b.unblended, amortized: b.amortized, lines: b.lines as i64 })
                    .collect(),
                service_daily: result
                    .service_daily
                    .iter()
                    .map(|d| DailyCost { day: d.day, key: d.key.clone(), currency, unblended: d.unblended, amortized: d.amortized })
                    .collect(),
                tenant_daily: result
                    .tenant_daily
                    .iter()
                    .map(|d| DailyCost { day: d.day, key: d.key.clone(), currency, unblended: d.unblended, amortized: d.amortized })
                    .collect(),
                usage: result.usage.iter().map(|u| UsageTotal { month, tenant: u.tenant.clone(), metric: u.metric.clone(), value: u.value }).collect(),
                monthly: result.monthly,
                explanations: result.explanations,
                inputs,
                created_at: app.clock.now(),
            };
            app.store.replace_allocation(&set).await?;
            let rows = set.monthly.len() + set.service_daily.len() + set.tenant_daily.len();
            tracker.rows(rows as i64);
            tracker.detail(format!("{month} from {source}: {} lines, {} usage rows, {rows} result rows", result.billed_lines, result.usage_rows));
            return Ok(Some(AllocationOutcome { month, rows, billed_lines: result.billed_lines, usage_rows: result.usage_rows, job_run_id: None }));
        }
    })
    .await?;
    Ok(outcome.map(|mut o| {
        o.job_run_id = Some(run);
        o
    }))
}

async fn inputs_changed(app: &App, month: Month, billing: &Snapshot, usage: &Snapshot) -> bool {
    match inputs(app, month).await {
        Ok((_, b, u)) => b.fingerprint() != billing.fingerprint() || u.fingerprint() != usage.fingerprint(),
        Err(_) => false,
    }
}

/// Allocates each of `months` on its own: a month that fails (each failure
/// is a failed run in the job list) never keeps the others from being allocated.
pub async fn allocate_each(app: &App, months: &[Month]) -> (Vec<AllocationOutcome>, Vec<(Month, JobError)>) {
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for &m in months {
        match allocate_month(app, m).await {
            Ok(o) => done.push(o),
            Err(e) => failed.push((m, e)),
        }
    }
    (done, failed)
}

/// One error naming every month that failed and why.
pub fn failed_months(failed: &[(Month, JobError)], of: usize) -> JobError {
    let each: Vec<String> = failed.iter().map(|(m, e)| format!("{m}: {e}")).collect();
    JobError::Failed(format!("{} of {of} month(s) could not be allocated (the others were): {}", failed.len(), each.join("; ")))
}

/// Allocates every month that holds billing data, each on its own.
pub async fn allocate_all(app: &App) -> Result<Vec<AllocationOutcome>> {
    let months = app.lake.billing_months().await?;
    let (done, failed) = allocate_each(app, &months).await;
    if failed.is_empty() { Ok(done) } else { Err(failed_months(&failed, months.len())) }
}

#[async_trait]
impl AllocationTrigger for App {
    async fn allocate_month(&self, month: Month) -> std::result::Result<AllocationOutcome, AllocationFailure> {
        allocate_month(self, month).await.map_err(|e| match e {
            JobError::Invalid(m) => AllocationFailure::NoData(m),
            JobError::Storage(s) if s.is_unavailable() => AllocationFailure::Unavailable,
            other => AllocationFailure::Failed(other.to_string()),
        })
    }
}
