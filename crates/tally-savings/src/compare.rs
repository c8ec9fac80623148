//! Tally's projection beside Cost Explorer's recommendations, with the
//! reasons they differ.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalogue::{Payment, Term};
use crate::family::{Family, normalization_factor};
use crate::projection::Projection;
use crate::recommendation::{RecommendationKind, Recommendations};

/// One purchase as both see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comparison {
    /// `AmazonEC2 m5 Linux us-east-1`, or `Compute Savings Plan`.
    pub subject: String,
    pub term: Term,
    pub payment: Payment,
    /// Instances of `unit`, or dollars per hour for a Savings Plan.
    pub unit: String,
    pub tally_quantity: Option<Decimal>,
    pub tally_monthly_savings: Option<Decimal>,
    pub tally_lookback_days: u32,
    pub cost_explorer_quantity: Option<Decimal>,
    pub cost_explorer_monthly_savings: Option<Decimal>,
    pub cost_explorer_lookback_days: u32,
    pub explanation: String,
}

fn pct(x: Decimal) -> String {
    format!("{}%", (x * Decimal::ONE_HUNDRED).round_dp(0))
}

/// Pairs each Cost Explorer recommendation with Tally's option for the same
/// family (or plan), term and payment, and Tally's families Cost Explorer
/// recommended nothing for under the terms it was asked about.
pub fn compare(projection: &Projection, ce: &Recommendations) -> Vec<Comparison> {
    let mut out = Vec::new();
    let mut matched = std::collections::BTreeSet::new();
    let lookback_note = if ce.lookback_days == projection.lookback_days {
        String::new()
    } else {
        format!("Cost Explorer looked back {} days, Tally {}. ", ce.lookback_days, projection.lookback_days)
    };
    let prices_note = |published: chrono::NaiveDate| format!("Cost Explorer prices with the account's own rates; Tally with the price list of {published}.");
    for r in &ce.items {
        match &r.kind {
            RecommendationKind::Reservation { service, region, instance_type, variant, count, average_running, .. } => {
                let fam = Family::of(instance_type);
                let found = projection.families.iter().enumerate().find(|(_, f)| {
                    f.service == *service
                        && region.as_ref().is_none_or(|r| *r == f.region)
                        && if f.size_flexible { fam.as_ref().is_some_and(|x| x.family == f.family) } else { f.instance_type == *instance_type }
                });
                let Some((i, f)) = found else {
                    out.push(Comparison {
                        subject: format!("{service} {instance_type}{}", variant.as_ref().map(|v| format!(" {v}")).unwrap_or_default()),
                        term: r.term,
                        payment: r.payment,
                        unit: instance_type.clone(),
                        tally_quantity: None,
                        tally_monthly_savings: None,
                        tally_lookback_days: projection.lookback_days,
                        cost_explorer_quantity: Some(*count),
                        cost_explorer_monthly_savings: Some(r.estimated_monthly_savings),
                        cost_explorer_lookback_days: r.lookback_days,
                        explanation: format!("{lookback_note}Tally found no running hours of this type in its window, or has no price for it."),
                    });
                    continue;
                };
                matched.insert((i, r.term, r.payment));
                // Cost Explorer counts in its own instance type; Tally in the family's most-used one.
                let scale = if f.size_flexible {
                    match (fam.as_ref().and_then(|x| normalization_factor(&x.size)), Family::of(&f.instance_type).and_then(|x| normalization_factor(&x.size))) {
                        (Some(a), Some(b)) => a / b,
                        _ => Decimal::ONE,
                    }
                } else {
                    Decimal::ONE
                };
                let ce_count = (*count * scale).round_dp(2);
                let option = f.options.iter().find(|o| o.term == r.term && o.payment == r.payment);
                let tally_count = option.map(|o| Decimal::from(o.count));
                let mut why = lookback_note.clone();
                match tally_count {
                    Some(t) if t == ce_count => why.push_str(&format!("Both recommend {t}. ")),
                    Some(t) => {
                        why.push_str(&format!(
                            "Tally reserves the whole instances running in at least {} of the hours (baseline {}, minus {} already reserved); ",
                            pct(projection.baseline_share),
                            f.profile.baseline,
                            f.existing.count
                        ));
                        let avg = average_running.map(|a| format!(" (it saw {} running on average)", (a * scale).round_dp(2))).unwrap_or_default();
                        if ce_count > t {
                            why.push_str(&format!("Cost Explorer sizes the purchase to maximise its estimated savings{avg}, accepting reserved hours that sometimes go unused, so it recommends more. "));
                        } else {
                            why.push_str(&format!("Cost Explorer recommends fewer{avg}: its look-back saw less steady usage. "));
                        }
                    }
                    None => why.push_str("Tally's price list has no such offering. "),
                }
                why.push_str(&prices_note(f.published));
                out.push(Comparison {
                    subject: format!("{} {} {} {}", f.service, f.family, f.variant, f.region),
                    term: r.term,
                    payment: r.payment,
                    unit: f.instance_type.clone(),
                    tally_quantity: tally_count,
                    tally_monthly_savings: option.map(|o| o.monthly_savings),
                    tally_lookback_days: projection.lookback_days,
                    cost_explorer_quantity: Some(ce_count),
                    cost_explorer_monthly_savings: Some(r.estimated_monthly_savings),
                    cost_explorer_lookback_days: r.lookback_days,
                    explanation: why,
                });
            }
            RecommendationKind::SavingsPlan { hourly_commitment } => {
                let option = projection.savings_plan.as_ref().and_then(|s| s.options.iter().find(|o| o.term == r.term && o.payment == r.payment));
                let mut why = lookback_note.clone();
                match option {
                    Some(o) if o.hourly_commitment == *hourly_commitment => why.push_str("Both recommend the same commitment. "),
                    Some(o) => why.push_str(&format!(
                        "Tally commits to the spend (at plan rates) reached in at least {} of the hours; Cost Explorer to the commitment that maximises its estimated savings, so it {} ({} vs {} per hour). ",
                        pct(projection.baseline_share),
                        if *hourly_commitment > o.hourly_commitment { "commits more" } else { "commits less" },
                        hourly_commitment,
                        o.hourly_commitment
                    )),
                    None => why.push_str("Tally has no Savings Plan rates for this term and payment. "),
                }
                if let Some(sp) = &projection.savings_plan {
                    why.push_str(&prices_note(sp.published));
                }
                out.push(Comparison {
                    subject: "Compute Savings Plan".into(),
                    term: r.term,
                    payment: r.payment,
                    unit: "$ per hour".into(),
                    tally_quantity: option.map(|o| o.hourly_commitment),
                    tally_monthly_savings: option.map(|o| o.monthly_savings),
                    tally_lookback_days: projection.lookback_days,
                    cost_explorer_quantity: Some(*hourly_commitment),
                    cost_explorer_monthly_savings: Some(r.estimated_monthly_savings),
                    cost_explorer_lookback_days: r.lookback_days,
                    explanation: why,
                });
            }
        }
    }
    // What Tally would buy under the terms Cost Explorer was asked about, where it recommended nothing.
    let asked: std::collections::BTreeSet<(Term, Payment)> = ce.items.iter().map(|r| (r.term, r.payment)).collect();
    for (i, f) in projection.families.iter().enumerate() {
        for o in f.options.iter().filter(|o| o.count > 0 && asked.contains(&(o.term, o.payment))) {
            if matched.contains(&(i, o.term, o.payment)) {
                continue;
            }
            out.push(Comparison {
                subject: format!("{} {} {} {}", f.service, f.family, f.variant, f.region),
                term: o.term,
                payment: o.payment,
                unit: f.instance_type.clone(),
                tally_quantity: Some(Decimal::from(o.count)),
                tally_monthly_savings: Some(o.monthly_savings),
                tally_lookback_days: projection.lookback_days,
                cost_explorer_quantity: None,
                cost_explorer_monthly_savings: None,
                cost_explorer_lookback_days: ce.lookback_days,
                explanation: format!(
                    "{lookback_note}Cost Explorer recommends nothing here: it leaves out usage it considers already covered or too short-lived in its look-back; Tally sees {} running in at least {} of the hours.",
                    f.profile.baseline,
                    pct(projection.baseline_share)
                ),
            });
        }
    }
    out
}
