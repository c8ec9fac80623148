//! Allocating a month from what is stored, and storing the result.

use async_trait::async_trait;
use tally_domain::{AllocationOutcome, AllocationTrigger, CostSource, Month};
use tally_storage::{AllocationResultSet, BilledTotal, CostLineFilter};

use crate::runs::{Tracker, allocate_job, record};
use crate::{App, JobError, Result, blocking};

/// Which billing source a month is allocated from when several hold data:
/// the invoice-grade files first, Cost Explorer next, demo data last.
pub const SOURCE_PREFERENCE: [CostSource; 4] = [CostSource::Cur, CostSource::Focus, CostSource::CostExplorer, CostSource::Demo];

/// Allocates `month` and replaces its stored results atomically.
pub async fn allocate_month(app: &App, month: Month) -> Result<AllocationOutcome> {
    let (mut outcome, run) = record(app, &allocate_job(month), |tracker: Tracker| async move {
        let sources = app.store.billing_sources(month).await?;
        let source = SOURCE_PREFERENCE
            .into_iter()
            .find(|s| sources.iter().any(|(have, n)| have == s && *n > 0))
            .ok_or_else(|| JobError::Invalid(format!("no billing data for {month}: import a CUR or FOCUS export, or run `tally collect costs`")))?;
        let lines = app.store.cost_lines(&CostLineFilter { billing_month: Some(month), source: Some(source), ..Default::default() }).await?;
        let from = lines.iter().map(|l| l.usage_start).min().unwrap_or(month.start());
        let to = lines.iter().map(|l| l.usage_end).max().unwrap_or(month.end());
        let usage = app.store.usage(from, to).await?;
        let (cfg, currency) = (app.config.allocation.clone(), app.config.currency);
        let (n_lines, n_usage) = (lines.len(), usage.len());
        let result = blocking(move || Ok(tally_allocation::allocate_month(&cfg, currency, month, &lines, &usage)?)).await?;
        let set = AllocationResultSet {
            month,
            source,
            billed_lines: n_lines as i64,
            usage_rows: n_usage as i64,
            billed: result
                .billed
                .iter()
                .map(|b| BilledTotal { month, service: b.service.clone(), currency, unblended: b.unblended, amortized: b.amortized, lines: b.lines as i64 })
                .collect(),
            monthly: result.monthly,
            daily: result.daily,
            explanations: result.explanations,
            created_at: app.clock.now(),
        };
        app.store.replace_allocation(&set).await?;
        let rows = set.monthly.len() + set.daily.len();
        tracker.rows(rows as i64);
        tracker.detail(format!("{month} from {source}: {n_lines} lines, {n_usage} usage rows, {rows} result rows"));
        Ok(AllocationOutcome { month, rows, billed_lines: n_lines, usage_rows: n_usage, job_run_id: None })
    })
    .await?;
    outcome.job_run_id = Some(run);
    Ok(outcome)
}

/// Allocates every month that holds billing data.
pub async fn allocate_all(app: &App) -> Result<Vec<AllocationOutcome>> {
    let mut out = Vec::new();
    for m in app.store.billing_months().await? {
        out.push(allocate_month(app, m).await?);
    }
    Ok(out)
}

#[async_trait]
impl AllocationTrigger for App {
    async fn allocate_month(&self, month: Month) -> std::result::Result<AllocationOutcome, String> {
        allocate_month(self, month).await.map_err(|e| e.to_string())
    }
}
