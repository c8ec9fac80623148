//! Prices, Cost Explorer's recommendations and the savings projection.
//!
//! The projection is computed after every allocation (and on request) for
//! each look-back Cost Explorer offers, and stored; the API and the dashboard
//! read what was stored, never recompute.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tally_collectors::recommendations::{RecommendationsApi, RecommendationsError, collect};
use tally_collectors::retry::RetryPolicy;
use tally_domain::Month;
use tally_savings::{Estimate, PriceCatalogue, ProjectionParams, Recommendations, SavingsReport, Service, offer, project};

use crate::collect::BudgetMeter;
use crate::runs::{Tracker, record};
use crate::{App, JobError, Result};

/// The look-backs Cost Explorer offers; each gets its own stored projection.
pub const LOOKBACKS: [u32; 3] = [7, 30, 60];
/// A rough estimate kept with the data (the demo keeps its company's); `savings.estimate_*` wins.
pub const ESTIMATE_DOC: &str = "savings:estimate";

/// Keeps `estimate` with the data, for every later projection.
pub async fn keep_estimate(app: &App, estimate: &Estimate) -> Result<()> {
    let body = serde_json::to_string(estimate).map_err(|e| JobError::Failed(e.to_string()))?;
    app.store.put_document(ESTIMATE_DOC, &body, app.clock.now()).await?;
    Ok(())
}

/// The stored catalogue (bundled snapshot plus every import).
pub const CATALOGUE_DOC: &str = "prices:catalogue";

pub fn report_doc(lookback_days: u32) -> String {
    tally_savings::report_document(lookback_days)
}

pub fn recommendations_doc(lookback_days: u32) -> String {
    format!("savings:cost_explorer:{lookback_days}")
}

/// The catalogue in use: the stored one, else the bundled snapshot.
pub async fn catalogue(app: &App) -> Result<PriceCatalogue> {
    match app.store.document(CATALOGUE_DOC).await? {
        Some((body, _)) => {
            serde_json::from_str(&body).map_err(|e| JobError::Failed(format!("the stored price catalogue is unreadable ({e}); import an offer file again")))
        }
        None => Ok(PriceCatalogue::bundled()),
    }
}

/// What an import changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PricesImported {
    pub offers: Vec<String>,
    pub published: String,
    pub instance_prices: usize,
    pub savings_plan_rates: usize,
}

/// Reads an AWS Price List offer file (or a Tally snapshot), merges it into
/// the catalogue, stores it and recomputes the projections.
pub async fn import_prices(app: &App, path: &Path) -> Result<PricesImported> {
    let name = format!("prices:import {}", path.display());
    let (out, _) = record(app, &name, |tracker: Tracker| async move {
        let p = path.to_owned();
        let imported = crate::blocking(move || offer::read(&p).map_err(|e| JobError::Invalid(e.to_string()))).await?;
        let summary = PricesImported {
            offers: imported.sources.iter().map(|s| s.offer.clone()).collect(),
            published: imported.sources.iter().map(|s| s.published.to_string()).collect::<Vec<_>>().join(", "),
            instance_prices: imported.instances.len(),
            savings_plan_rates: imported.savings_plans.len(),
        };
        let mut current = catalogue(app).await?;
        current.merge(imported);
        let body = serde_json::to_string(&current).map_err(|e| JobError::Failed(e.to_string()))?;
        app.store.put_document(CATALOGUE_DOC, &body, app.clock.now()).await?;
        tracker.rows((summary.instance_prices + summary.savings_plan_rates) as i64);
        tracker.detail(format!(
            "{} published {}: {} instance prices, {} Savings Plan rates",
            summary.offers.join(", "),
            summary.published,
            summary.instance_prices,
            summary.savings_plan_rates
        ));
        Ok(summary)
    })
    .await?;
    refresh(app).await?;
    Ok(out)
}

/// Computes the report for one look-back from the stored billing lines.
pub async fn compute(app: &App, lookback_days: u32) -> Result<Option<SavingsReport>> {
    let months = app.lake.billing_months().await?;
    let Some(last) = months.iter().max().copied() else { return Ok(None) };
    let services: Vec<String> = [Service::Ec2, Service::Rds, Service::ElastiCache].iter().map(|s| s.code().to_owned()).collect();
    let (from, to) = (last.start() - Duration::days(i64::from(lookback_days) + 31), last.end());
    // Each month from the source its allocation reads (never two sources of one month).
    let mut sources = Vec::new();
    for m in months.iter().filter(|m| m.end() > from) {
        sources.push((crate::allocate::month_source(app, *m).await?, *m));
    }
    let lines = app.lake.summed_lines(&sources, from, to, &services).await?;
    if lines.is_empty() {
        return Ok(None);
    }
    let catalogue = catalogue(app).await?;
    let cfg = &app.config.savings;
    let params = ProjectionParams { lookback_days, baseline_share: cfg.baseline_share, end: None };
    let mut projection = crate::blocking(move || Ok(project(&lines, &catalogue, &params))).await?;
    // The yardstick: the last whole month billed before the window's end.
    let mut month = Month::of(projection.window_end - Duration::seconds(1));
    if projection.window_end < month.end() {
        month = month.prev();
    }
    let billed = app.store.billed_totals(month).await?;
    if !billed.is_empty() {
        let total = billed.iter().map(|b| b.unblended).sum();
        projection = projection.with_bill(format!("the {} bill", month.long_name()), total);
    }
    let recommendations = match app.store.document(&recommendations_doc(lookback_days)).await? {
        Some((body, _)) => serde_json::from_str::<Recommendations>(&body).ok(),
        None => None,
    };
    let estimate = if cfg.estimate_share.is_some() || cfg.estimate_monthly.is_some() {
        Some(Estimate { share: cfg.estimate_share, monthly: cfg.estimate_monthly })
    } else {
        match app.store.document(ESTIMATE_DOC).await? {
            Some((body, _)) => serde_json::from_str(&body).ok(),
            None => None,
        }
    };
    Ok(Some(SavingsReport::new(app.clock.now(), projection, recommendations, estimate)))
}

/// Recomputes and stores the report for every look-back.
pub async fn refresh(app: &App) -> Result<usize> {
    let (n, _) = record(app, "savings", |tracker: Tracker| async move {
        let mut stored = 0;
        let mut detail = Vec::new();
        for lookback in LOOKBACKS {
            let Some(report) = compute(app, lookback).await? else { continue };
            let s = report.projection.summary(tally_savings::Term::OneYear, tally_savings::Payment::NoUpfront);
            // AWS prices (the catalogue's) are in US dollars.
            detail.push(format!(
                "{lookback} days: {} families, 1y no upfront saves {} a month",
                report.projection.families.len(),
                tally_domain::format_amount(s.monthly_savings, "USD", 2)
            ));
            let body = serde_json::to_string(&report).map_err(|e| JobError::Failed(e.to_string()))?;
            app.store.put_document(&report_doc(lookback), &body, app.clock.now()).await?;
            stored += 1;
        }
        tracker.rows(stored as i64);
        tracker.detail(if detail.is_empty() { "no EC2, RDS or ElastiCache billing lines yet".to_owned() } else { detail.join("; ") });
        Ok(stored)
    })
    .await?;
    Ok(n)
}

/// A stored report, as last computed.
pub async fn stored_report(app: &App, lookback_days: u32) -> Result<Option<SavingsReport>> {
    match app.store.document(&report_doc(lookback_days)).await? {
        Some((body, _)) => Ok(serde_json::from_str(&body).ok()),
        None => Ok(None),
    }
}

/// What a recommendations collection did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecommendationsCollected {
    pub lookback_days: u32,
    pub recommendations: usize,
    pub requests: u32,
    pub collected_at: DateTime<Utc>,
}

/// Asks Cost Explorer for its recommendations, stores them and recomputes
/// the projections so that the comparison is current.
pub async fn collect_recommendations(app: &App, api: &dyn RecommendationsApi, lookback_days: u32, policy: &RetryPolicy) -> Result<RecommendationsCollected> {
    if !LOOKBACKS.contains(&lookback_days) {
        return Err(JobError::Invalid(format!("Cost Explorer looks back 7, 30 or 60 days, not {lookback_days}")));
    }
    let cfg = &app.config.collectors.cost_explorer;
    let (out, _) = record(app, "collect:recommendations", |tracker: Tracker| async move {
        let meter = BudgetMeter { store: app.store.as_ref(), month: Month::of(app.clock.now()), budget: cfg.monthly_request_budget, tracker: tracker.clone() };
        let (recs, requests) = match collect(api, &meter, policy, lookback_days, app.clock.now()).await {
            Ok(r) => r,
            Err(RecommendationsError::Budget(reason)) => {
                return Err(JobError::Invalid(format!("stopped before sending a request: {reason}; nothing was written")));
            }
            Err(e) => return Err(JobError::Failed(format!("{e}; nothing was written"))),
        };
        let body = serde_json::to_string(&recs).map_err(|e| JobError::Failed(e.to_string()))?;
        app.store.put_document(&recommendations_doc(lookback_days), &body, app.clock.now()).await?;
        tracker.rows(recs.items.len() as i64);
        tracker.detail(format!("{} recommendation(s) over {} days, {requests} requests", recs.items.len(), lookback_days));
        Ok(RecommendationsCollected { lookback_days, recommendations: recs.items.len(), requests, collected_at: recs.collected_at })
    })
    .await?;
    refresh(app).await?;
    Ok(out)
}
