//! `tally savings`, `tally prices` and `tally collect recommendations`.

#![allow(clippy::print_stdout, reason = "a command line prints its results")]

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use tally_domain::Decimal;
use tally_jobs::App;
use tally_savings::{Payment, SavingsReport, Term};

use crate::output::table;

/// `$1,234.56`.
pub fn usd(x: Decimal) -> String {
    tally_domain::format_amount(x, "USD", 2)
}

fn pct(x: Decimal) -> String {
    format!("{}%", (x * Decimal::ONE_HUNDRED).round_dp(1).normalize())
}

fn num(x: Decimal) -> String {
    x.round_dp(2).normalize().to_string()
}

pub fn parse_term(s: &str) -> Result<Term> {
    Term::parse(s).ok_or_else(|| anyhow!("--term {s:?}: expected 1y or 3y"))
}

pub fn parse_payment(s: &str) -> Result<Payment> {
    Payment::parse(s).ok_or_else(|| anyhow!("--payment {s:?}: expected none, partial or all"))
}

pub async fn savings(app: &App, lookback: Option<u32>, term: Option<String>, payment: Option<String>, json: bool) -> Result<ExitCode> {
    let lookback = lookback.unwrap_or(app.config.savings.lookback_days);
    if !tally_jobs::savings::LOOKBACKS.contains(&lookback) {
        bail!("--lookback {lookback}: expected 7, 30 or 60 days");
    }
    let term = term.as_deref().map(parse_term).transpose()?;
    let payment = payment.as_deref().map(parse_payment).transpose()?;
    tally_jobs::savings::refresh(app).await?;
    let Some(report) = tally_jobs::savings::stored_report(app, lookback).await? else {
        bail!("there are no EC2, RDS or ElastiCache instance-hours in the billing data: import a bill first (`tally import cur ...`)");
    };
    let report = report.only(term, payment);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as text for a terminal.
pub fn render(r: &SavingsReport) -> String {
    let p = &r.projection;
    let mut out = String::new();
    out.push_str(&format!(
        "Savings projection from the last {} days of billing ({} to {}); reserved: what runs in at least {} of the hours.\n",
        p.lookback_days,
        p.window_start.format("%Y-%m-%d %H:00"),
        p.window_end.format("%Y-%m-%d %H:00"),
        pct(p.baseline_share)
    ));
    let mut notes: Vec<&str> = Vec::new();
    for s in &p.sources {
        out.push_str(&format!("Prices: {} as of {} ({}).\n", s.offer, s.published, s.origin));
        if let Some(n) = s.note.as_deref().filter(|n| !notes.contains(n)) {
            notes.push(n);
        }
    }
    for n in notes {
        out.push_str(&format!("  Note: {n}\n"));
    }
    for n in &p.unpriced {
        out.push_str(&format!("Not projected: {n}.\n"));
    }
    let mut options: Vec<(Term, Payment)> = r.summaries.iter().map(|s| (s.term, s.payment)).collect();
    options.dedup();
    for (term, payment) in &options {
        out.push_str(&format!("\nReservations, {} {}:\n", term, payment.label()));
        let mut rows = Vec::new();
        for f in &p.families {
            let Some(o) = f.options.iter().find(|o| o.term == *term && o.payment == *payment) else { continue };
            rows.push(vec![
                format!("{} {} {}", f.service, f.family, f.variant),
                f.instance_type.clone(),
                format!("{} / {} / {}", num(f.profile.min), num(f.profile.mean), num(f.profile.max)),
                num(f.profile.baseline),
                num(f.existing.count),
                o.count.to_string(),
                usd(o.upfront),
                usd(o.recurring_monthly),
                usd(o.monthly_savings),
                pct(o.savings_share),
                o.break_even_month.map(|m| format!("month {m}")).unwrap_or_else(|| "not within the term".into()),
                pct(o.utilization),
                pct(o.coverage),
            ]);
        }
        out.push_str(&table(
            &[
                "family",
                "counted as",
                "running min/mean/max",
                "baseline",
                "reserved",
                "buy",
                "upfront",
                "monthly fee",
                "saves/month",
                "saves",
                "pays back",
                "utilization",
                "coverage",
            ],
            &rows,
            &[3, 4, 5, 6, 7, 8, 9, 11, 12],
        ));
        if let Some(s) = r.summaries.iter().find(|s| s.term == *term && s.payment == *payment) {
            out.push_str(&format!(
                "Total: {} a month for {} upfront: {} of the {} those instances cost on demand, {} of {} ({}).\n",
                usd(s.monthly_savings),
                usd(s.upfront),
                pct(s.share_of_reservable),
                usd(s.reservable_on_demand_monthly),
                pct(s.share_of_bill),
                p.bill_basis,
                usd(p.bill_monthly)
            ));
        }
    }
    if let Some(sp) = &p.savings_plan {
        out.push_str(&format!("\nCompute Savings Plan instead of EC2 reservations (EC2 usage on demand: {} a month):\n", usd(sp.eligible_on_demand_monthly)));
        let rows: Vec<Vec<String>> = sp
            .options
            .iter()
            .map(|o| {
                vec![
                    format!("{} {}", o.term, o.payment.label()),
                    format!("${}/h", o.hourly_commitment.normalize()),
                    usd(o.upfront),
                    usd(o.recurring_monthly),
                    usd(o.monthly_savings),
                    pct(o.savings_share),
                    o.break_even_month.map(|m| format!("month {m}")).unwrap_or_else(|| "not within the term".into()),
                    pct(o.utilization),
                    pct(o.coverage),
                ]
            })
            .collect();
        out.push_str(&table(
            &["option", "commit", "upfront", "monthly fee", "saves/month", "saves", "pays back", "utilization", "coverage"],
            &rows,
            &[1, 2, 3, 4, 5, 7, 8],
        ));
    }
    match &r.recommendations {
        Some(recs) => {
            out.push_str(&format!("\nCost Explorer's view (collected {}, {} days):\n", recs.collected_at.format("%Y-%m-%d %H:%M UTC"), recs.lookback_days));
            for c in &r.comparison {
                out.push_str(&format!(
                    "- {} {} {}: Tally {} ({}), Cost Explorer {} ({}). {}\n",
                    c.subject,
                    c.term,
                    c.payment.label(),
                    c.tally_quantity.map(num).unwrap_or_else(|| "nothing".into()),
                    c.tally_monthly_savings.map(usd).unwrap_or_else(|| "-".into()),
                    c.cost_explorer_quantity.map(num).unwrap_or_else(|| "nothing".into()),
                    c.cost_explorer_monthly_savings.map(usd).unwrap_or_else(|| "-".into()),
                    c.explanation
                ));
            }
        }
        None => out.push_str("\nCost Explorer's own recommendations have not been collected (`tally collect recommendations`).\n"),
    }
    if let Some(e) = &r.estimate {
        out.push_str("\nAgainst the estimate:\n");
        for line in &e.explanation {
            out.push_str(&format!("- {line}\n"));
        }
    }
    out
}

pub async fn prices_import(app: &App, file: &Path) -> Result<ExitCode> {
    let r = tally_jobs::savings::import_prices(app, file).await?;
    println!(
        "{}: {} published {}: {} instance prices, {} Compute Savings Plan rates; the savings projections were recomputed.",
        file.display(),
        r.offers.join(", "),
        r.published,
        r.instance_prices,
        r.savings_plan_rates
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn prices_show(app: &App, filter: Option<String>) -> Result<ExitCode> {
    let c = tally_jobs::savings::catalogue(app).await?;
    for s in &c.sources {
        println!("{}: as of {} ({})", s.offer, s.published, s.origin);
        if let Some(n) = &s.note {
            println!("  {n}");
        }
    }
    let keep = |t: &str| filter.as_deref().is_none_or(|f| t.contains(f));
    let mut rows = Vec::new();
    for p in c.instances.iter().filter(|p| keep(&p.instance_type)) {
        let cell = |term: Term, payment: Payment| {
            p.reserved(term, payment)
                .map(|r| if r.upfront.is_zero() { format!("${}/h", r.hourly.normalize()) } else { format!("{} + ${}/h", usd(r.upfront), r.hourly.normalize()) })
                .unwrap_or_else(|| "-".into())
        };
        rows.push(vec![
            p.service.to_string(),
            p.region.clone(),
            p.instance_type.clone(),
            p.variant.clone(),
            format!("${}/h", p.on_demand_hourly.normalize()),
            cell(Term::OneYear, Payment::NoUpfront),
            cell(Term::OneYear, Payment::PartialUpfront),
            cell(Term::OneYear, Payment::AllUpfront),
            cell(Term::ThreeYears, Payment::NoUpfront),
            cell(Term::ThreeYears, Payment::PartialUpfront),
            cell(Term::ThreeYears, Payment::AllUpfront),
        ]);
    }
    println!();
    print!(
        "{}",
        table(
            &["offer", "region", "type", "variant", "on demand", "1y none", "1y partial", "1y all", "3y none", "3y partial", "3y all"],
            &rows,
            &[4, 5, 6, 7, 8, 9, 10]
        )
    );
    let sp: Vec<Vec<String>> = c
        .savings_plans
        .iter()
        .filter(|s| keep(&s.instance_type))
        .map(|s| vec![s.region.clone(), s.instance_type.clone(), s.term.to_string(), s.payment.label().to_owned(), format!("${}/h", s.hourly.normalize())])
        .collect();
    if !sp.is_empty() {
        println!("\nCompute Savings Plan rates (EC2 Linux):");
        print!("{}", table(&["region", "type", "term", "payment", "rate"], &sp, &[4]));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn collect_recommendations(app: &App, lookback: u32) -> Result<ExitCode> {
    let api = tally_collectors::cost_explorer::SdkCostExplorer::new(&tally_collectors::aws::sdk_config(&tally_collectors::aws::AwsSettings::default()).await);
    let policy = tally_collectors::retry::RetryPolicy::new(app.config.collectors.cost_explorer.max_retries);
    let r = tally_jobs::savings::collect_recommendations(app, &api, lookback, &policy).await?;
    println!(
        "Cost Explorer: {} recommendation(s) over {} days, {} request(s) (${:.2}); the savings projections were recomputed with them.",
        r.recommendations,
        r.lookback_days,
        r.requests,
        f64::from(r.requests) * 0.01
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_grouped_by_thousands_with_cents() {
        assert_eq!(usd("1234567.891".parse().unwrap()), "$1,234,567.89");
        assert_eq!(usd("-25.5".parse().unwrap()), "-$25.50");
        assert_eq!(usd(Decimal::ZERO), "$0.00");
    }
}
