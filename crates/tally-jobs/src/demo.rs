//! `tally demo`: the reference deployment's last months, generated,
//! imported through the same readers as a real CUR, and allocated.

use std::path::PathBuf;

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use tally_datagen::Params;
use tally_domain::{CostSource, Currency, Money, Month, Tenant, TenantId};
use tally_storage::NewCashBalance;

use crate::import::{BillingFormat, import_billing, import_revenue, import_usage};
use crate::{App, JobError, Progress, Result, allocate, blocking};

#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    pub tenants: usize,
    pub months: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoLoaded {
    pub months: Vec<Month>,
    pub tenants: usize,
    pub billing_lines: usize,
    pub usage_rows: usize,
    pub files: PathBuf,
}

/// The demo's months: `count` months ending with the current one, the
/// current one up to the start of today.
pub fn demo_months(today: NaiveDate, count: usize) -> Vec<Month> {
    let last = Month::of_date(today);
    let mut first = last;
    for _ in 1..count.max(1) {
        first = first.prev();
    }
    first.through(last).collect()
}

/// Generates (once per parameter set) and loads the demo. Running it again
/// replaces the same months and never doubles anything.
pub async fn load_demo(app: &App, opts: &DemoOptions, progress: &dyn Progress) -> Result<DemoLoaded> {
    if opts.tenants == 0 || opts.months == 0 {
        return Err(JobError::Invalid("the demo needs at least one tenant and one month".into()));
    }
    let now = app.clock.now();
    let today = now.date_naive();
    let months = demo_months(today, opts.months);
    let until = Utc.from_utc_datetime(&today.and_hms_opt(0, 0, 0).expect("midnight"));
    let dir = app.data_dir.join("demo").join(format!("seed{}-tenants{}-{}-to-{}", opts.seed, opts.tenants, months[0], today));
    let mut params = Params::reference(opts.seed, opts.tenants, months.clone());
    params.until = Some(until);
    progress.stage("generating the reference deployment's bill and usage", 0);
    let out = dir.clone();
    let generated = blocking(move || {
        let _ = std::fs::remove_dir_all(&out);
        tally_datagen::generate(&params, &out).map_err(|e| JobError::Failed(e.to_string()))
    })
    .await?;
    progress.done(&format!("{} billing lines, {} usage rows", generated.billing_lines, generated.usage_rows));

    let tenants: Vec<Tenant> = generated
        .tenants
        .iter()
        .map(|t| Tenant::new(TenantId::parse(&t.id).expect("generated ids are slugs"), &t.name, Some(t.plan)).expect("generated names are valid"))
        .collect();
    app.store.upsert_tenants(&tenants).await?;
    import_billing(app, generated.cur_files.clone(), Vec::new(), BillingFormat::Cur, Some(CostSource::Demo), progress).await?;
    progress.stage("importing usage", generated.usage_files.len() as u64);
    for f in &generated.usage_files {
        import_usage(app, f, "demo").await?;
        progress.advance(1);
    }
    progress.done("usage imported");
    import_revenue(app, &generated.revenue_file).await?;
    if app.store.cash_balances().await?.is_empty() && app.config.finance.cash_balance.is_none() {
        // The reference company's cash at the start of the demo: a little over a year of burn.
        let as_of = months[0].first_day();
        app.store
            .add_cash_balance(&NewCashBalance {
                as_of,
                amount: Money::parse("480000.00", Currency::USD).expect("literal"),
                note: Some("demo opening balance".into()),
            })
            .await?;
    }
    crate::keep_configured_monthly_costs(app).await?;
    if app.config.finance.monthly_costs.is_empty() && app.store.document(tally_domain::MONTHLY_COSTS_DOCUMENT).await?.is_none() {
        // The reference company's costs besides AWS: a small team and its tools.
        let costs = vec![
            tally_domain::MonthlyCost { name: "Payroll".into(), amount: rust_decimal::Decimal::from(42_000) },
            tally_domain::MonthlyCost { name: "Tools and services".into(), amount: rust_decimal::Decimal::from(1_800) },
        ];
        let body = serde_json::to_string(&costs).map_err(|e| JobError::Failed(e.to_string()))?;
        app.store.put_document(tally_domain::MONTHLY_COSTS_DOCUMENT, &body, app.clock.now()).await?;
    }
    progress.stage("allocating", months.len() as u64);
    for m in &months {
        allocate::allocate_month(app, *m).await?;
        progress.advance(1);
    }
    progress.done("allocated");
    // The reference company's own rough idea (REFERENCE-DEPLOYMENT.md), which the savings page checks.
    crate::savings::keep_estimate(
        app,
        &tally_savings::Estimate { share: Some(rust_decimal::Decimal::new(30, 2)), monthly: Some(rust_decimal::Decimal::from(600)) },
    )
    .await?;
    progress.stage("projecting reservation savings", 0);
    crate::savings::refresh(app).await?;
    progress.done("savings projected");
    let _ = (today.day(), Duration::zero());
    Ok(DemoLoaded { months, tenants: generated.tenants.len(), billing_lines: generated.billing_lines, usage_rows: generated.usage_rows, files: dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_demo_months_end_with_the_current_one() {
        let m = demo_months(NaiveDate::from_ymd_opt(2026, 1, 15).unwrap(), 3);
        let names: Vec<String> = m.iter().map(Month::to_string).collect();
        assert_eq!(names, ["2025-11", "2025-12", "2026-01"]);
    }
}
