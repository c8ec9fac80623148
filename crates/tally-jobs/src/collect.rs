//! Collecting billing from Cost Explorer.

use async_trait::async_trait;
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use tally_collectors::cost_explorer::{CollectError, CostExplorerApi, RequestMeter, collect};
use tally_collectors::retry::RetryPolicy;
use tally_domain::{CostSource, Month};
use tally_storage::Store;

use crate::runs::{Tracker, record};
use crate::{App, JobError, Result};

pub const COST_EXPLORER: &str = "cost_explorer";
/// What one Cost Explorer request costs, in USD.
pub const REQUEST_PRICE: &str = "0.01";

/// Approves each request against the month's budget and counts it.
pub(crate) struct BudgetMeter<'a> {
    pub(crate) store: &'a dyn Store,
    pub(crate) month: Month,
    pub(crate) budget: u32,
    pub(crate) tracker: Tracker,
}

#[async_trait]
impl RequestMeter for BudgetMeter<'_> {
    async fn approve(&self) -> std::result::Result<(), String> {
        let reserved = self.store.reserve_api_request(COST_EXPLORER, self.month, i64::from(self.budget)).await.map_err(|e| e.to_string())?;
        if reserved.is_none() {
            return Err(format!(
                "all {} requests budgeted for {} (collectors.cost_explorer.monthly_request_budget) are used; one more would cost beyond ${:.2}",
                self.budget,
                self.month,
                f64::from(self.budget) * 0.01
            ));
        }
        self.tracker.requests(1);
        Ok(())
    }
}

/// What a collection did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostsCollected {
    pub from: NaiveDate,
    /// Exclusive.
    pub to: NaiveDate,
    pub lines: usize,
    pub replaced: u64,
    pub requests: u32,
    pub estimated_days: usize,
    pub job_run: i64,
}

/// The window a scheduled run pulls: the last `restate_days` days up to
/// today, and the whole previous month until Cost Explorer marks it final.
pub async fn restatement_window(app: &App) -> Result<(NaiveDate, NaiveDate)> {
    let today = app.clock.now().date_naive();
    let mut from = today - Duration::days(i64::from(app.config.collectors.cost_explorer.restate_days.max(1)));
    let previous = Month::of_date(today).prev();
    let lines = app.lake.lines(CostSource::CostExplorer, previous).await?;
    let final_already = !lines.is_empty() && lines.iter().all(|l| !l.estimated);
    if !final_already {
        from = from.min(previous.first_day());
    }
    Ok((from, today))
}

/// Pulls `[from, to)` (or the restatement window) and replaces those days.
pub async fn collect_costs(app: &App, api: &dyn CostExplorerApi, window: Option<(NaiveDate, NaiveDate)>, policy: &RetryPolicy) -> Result<CostsCollected> {
    let (from, to) = match window {
        Some(w) => w,
        None => restatement_window(app).await?,
    };
    if to <= from {
        return Err(JobError::Invalid(format!("an empty window: --from {from} is not before --to {to}")));
    }
    let cfg = &app.config.collectors.cost_explorer;
    let (mut out, run) = record(app, "collect:costs", |tracker: Tracker| async move {
        let meter = BudgetMeter { store: app.store.as_ref(), month: Month::of(app.clock.now()), budget: cfg.monthly_request_budget, tracker: tracker.clone() };
        let collected = match collect(api, &meter, policy, from, to, &cfg.tenant_tag).await {
            Ok(c) => c,
            Err(CollectError::Budget(reason)) => return Err(JobError::Invalid(format!("stopped before sending a request: {reason}; nothing was written"))),
            Err(e) => return Err(JobError::Failed(format!("{e}; nothing was written"))),
        };
        let label = format!("Cost Explorer {from}..{to}");
        let tenants: Vec<_> = collected.lines.iter().filter_map(|l| l.tenant.clone()).collect();
        app.store.ensure_tenants(&tenants).await?;
        let summary = app.lake.replace_billing_days(CostSource::CostExplorer, &label, from, to - Duration::days(1), &collected.lines).await?;
        tracker.rows(summary.rows as i64);
        tracker.detail(format!(
            "{from}..{to}: {} lines, {} requests, {} day(s) still estimated",
            summary.rows,
            collected.requests,
            collected.estimated_days.len()
        ));
        Ok(CostsCollected {
            from,
            to,
            lines: collected.lines.len(),
            replaced: summary.replaced.max(0) as u64,
            requests: collected.requests,
            estimated_days: collected.estimated_days.len(),
            job_run: 0,
        })
    })
    .await?;
    out.job_run = run;
    Ok(out)
}
