//! The savings report: the projection, its summaries per option, Cost
//! Explorer's view beside it, and the comparison with a rough estimate.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalogue::{Payment, Term};
use crate::compare::{Comparison, compare};
use crate::projection::{Projection, Summary};
use crate::recommendation::Recommendations;

/// The name under which the report of a look-back is stored.
pub fn report_document(lookback_days: u32) -> String {
    format!("savings:report:{lookback_days}")
}

/// A rough estimate someone made before the data was in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Estimate {
    /// e.g. 0.30.
    pub share: Option<Decimal>,
    /// e.g. 600 a month.
    pub monthly: Option<Decimal>,
}

/// The estimate against the projection, in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EstimateCheck {
    pub estimate: Estimate,
    /// The option the estimate is read against (1 year, no upfront: the commitment teams start with).
    pub term: Term,
    pub payment: Payment,
    pub projected_monthly: Decimal,
    pub projected_share_of_bill: Decimal,
    pub projected_share_of_reservable: Decimal,
    pub best: Summary,
    pub explanation: Vec<String>,
}

/// Everything the savings page, the CLI and the API show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SavingsReport {
    pub computed_at: DateTime<Utc>,
    pub projection: Projection,
    /// Every term and payment option over all families.
    pub summaries: Vec<Summary>,
    pub recommendations: Option<Recommendations>,
    pub comparison: Vec<Comparison>,
    pub estimate: Option<EstimateCheck>,
}

fn money(x: Decimal) -> String {
    tally_domain::format_amount(x, "USD", 0)
}

fn pct(x: Decimal) -> String {
    format!("{}%", (x * Decimal::ONE_HUNDRED).round_dp(0))
}

impl SavingsReport {
    pub fn new(computed_at: DateTime<Utc>, projection: Projection, recommendations: Option<Recommendations>, estimate: Option<Estimate>) -> Self {
        let mut summaries = Vec::new();
        for term in Term::ALL {
            for payment in Payment::ALL {
                if projection.families.iter().any(|f| f.options.iter().any(|o| o.term == term && o.payment == payment)) {
                    summaries.push(projection.summary(term, payment));
                }
            }
        }
        let comparison = recommendations.as_ref().map(|r| compare(&projection, r)).unwrap_or_default();
        let estimate = estimate.map(|e| check(&projection, &summaries, e));
        Self { computed_at, projection, summaries, recommendations, comparison, estimate }
    }

    /// Keeps only one term and payment option (where given).
    pub fn only(mut self, term: Option<Term>, payment: Option<Payment>) -> Self {
        let keep = |t: Term, p: Payment| term.is_none_or(|x| x == t) && payment.is_none_or(|x| x == p);
        for f in &mut self.projection.families {
            f.options.retain(|o| keep(o.term, o.payment));
        }
        if let Some(sp) = &mut self.projection.savings_plan {
            sp.options.retain(|o| keep(o.term, o.payment));
        }
        self.summaries.retain(|s| keep(s.term, s.payment));
        self.comparison.retain(|c| keep(c.term, c.payment));
        self
    }
}

fn check(p: &Projection, summaries: &[Summary], estimate: Estimate) -> EstimateCheck {
    let (term, payment) = (Term::OneYear, Payment::NoUpfront);
    let base = p.summary(term, payment);
    let best = summaries.iter().max_by(|a, b| a.monthly_savings.cmp(&b.monthly_savings)).cloned().unwrap_or_else(|| base.clone());
    let mut why = Vec::new();
    let said = match (estimate.share, estimate.monthly) {
        (Some(s), Some(m)) => format!("about {} and {} a month", pct(s), money(m)),
        (Some(s), None) => format!("about {}", pct(s)),
        (None, Some(m)) => format!("about {} a month", money(m)),
        (None, None) => "no figure".into(),
    };
    why.push(format!(
        "The estimate was {said}. Reserving the steady capacity for 1 year with no upfront saves {} a month: {} of the {} that capacity costs on demand, {} of {}.",
        money(base.monthly_savings),
        pct(base.share_of_reservable),
        money(base.reservable_on_demand_monthly),
        pct(base.share_of_bill),
        p.bill_basis
    ));
    why.push(format!(
        "Only instance-hours can be reserved ({} of the {} monthly bill). Data transfer, storage, the load balancer, the EKS control plane, S3, CloudWatch and tax are paid on demand whatever is committed, so a percentage taken off the whole bill overstates the saving.",
        money(base.reservable_on_demand_monthly),
        money(p.bill_monthly)
    ));
    if let Some(m) = estimate.monthly {
        // The lightest commitment that reaches the estimate: least upfront, shorter term first.
        let reaching = summaries.iter().filter(|s| s.monthly_savings >= m).min_by(|a, b| a.upfront.cmp(&b.upfront).then(a.term.cmp(&b.term)));
        match reaching {
            Some(r) => why.push(format!(
                "Reaching {} a month takes {} {}: {} a month for {} upfront{}.",
                money(m),
                r.term,
                r.payment.label(),
                money(r.monthly_savings),
                money(r.upfront),
                if r.term == Term::ThreeYears { ", a three-year commitment; no one-year option gets there" } else { "" }
            )),
            None => why.push(format!(
                "No option reaches {} a month: the largest, {} {}, saves {} a month and asks {} upfront.",
                money(m),
                best.term,
                best.payment.label(),
                money(best.monthly_savings),
                money(best.upfront)
            )),
        }
    }
    let partly = p
        .families
        .iter()
        .filter(|f| f.profile.baseline < f.profile.max)
        .map(|f| format!("{} {} runs {}-{} (baseline {})", f.service, f.family, f.profile.min, f.profile.max, f.profile.baseline))
        .collect::<Vec<_>>();
    if !partly.is_empty() {
        why.push(format!(
            "Capacity above the steady baseline stays on demand, because a reservation bought for it would sit unused part of the time: {}.",
            partly.join("; ")
        ));
    }
    EstimateCheck {
        estimate,
        term,
        payment,
        projected_monthly: base.monthly_savings,
        projected_share_of_bill: base.share_of_bill,
        projected_share_of_reservable: base.share_of_reservable,
        best,
        explanation: why,
    }
}
