//! Burn against revenue by month, and the runway it leaves.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;
use tally_domain::{Month, MonthlyCost};

use crate::{cents, ratio};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BurnMonth {
    #[schema(value_type = String, example = "2026-10")]
    pub month: Month,
    /// False for the month in progress.
    pub complete: bool,
    /// The AWS bill (unblended).
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub aws_cost: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub other_costs: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub total_costs: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub revenue: Decimal,
    /// Costs minus revenue: cash out of the bank.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub net_burn: Decimal,
    /// (revenue - AWS cost) / revenue, in percent; none without revenue.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub gross_margin_percent: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Runway {
    pub balance_date: NaiveDate,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub balance: Decimal,
    /// The balance less the net burn of the complete months since it was taken.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub cash_now: Decimal,
    /// Mean net burn of the last (up to) three complete months.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub monthly_net_burn: Decimal,
    /// Months of cash left at that burn; none when revenue covers costs.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub months: Option<Decimal>,
    pub runs_out_on: Option<NaiveDate>,
    pub profitable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BurnReport {
    pub currency: String,
    pub months: Vec<BurnMonth>,
    pub other_costs: Vec<crate::NamedAmount>,
    pub runway: Option<Runway>,
}

/// Inputs per month: AWS cost (the allocation's monthly total) and revenue.
pub fn burn(
    currency: &str,
    months: &[Month],
    aws: &BTreeMap<Month, Decimal>,
    revenue: &BTreeMap<Month, Decimal>,
    other: &[MonthlyCost],
    balance: Option<(NaiveDate, Decimal)>,
    today: NaiveDate,
) -> BurnReport {
    let other_total: Decimal = other.iter().map(|c| c.amount).sum();
    let rows: Vec<BurnMonth> = months
        .iter()
        .map(|m| {
            let complete = m.end().date_naive() <= today;
            // Other costs of the month in progress count for the days elapsed.
            let other = if complete {
                other_total
            } else {
                let elapsed = (today - m.first_day()).num_days().clamp(0, m.days() as i64);
                cents(other_total * Decimal::from(elapsed) / Decimal::from(m.days()))
            };
            let aws_cost = aws.get(m).copied().unwrap_or_default();
            let rev = revenue.get(m).copied().unwrap_or_default();
            let total = aws_cost + other;
            BurnMonth {
                month: *m,
                complete,
                aws_cost,
                other_costs: other,
                total_costs: total,
                revenue: rev,
                net_burn: total - rev,
                gross_margin_percent: ratio((rev - aws_cost) * Decimal::from(100), rev, 1),
            }
        })
        .collect();
    let runway = balance.map(|(date, amount)| {
        let complete: Vec<&BurnMonth> = rows.iter().filter(|r| r.complete).collect();
        let spent: Decimal = complete.iter().filter(|r| r.month.first_day() >= date).map(|r| r.net_burn).sum();
        let recent: Vec<&&BurnMonth> = complete.iter().rev().take(3).collect();
        let avg = if recent.is_empty() { Decimal::ZERO } else { cents(recent.iter().map(|r| r.net_burn).sum::<Decimal>() / Decimal::from(recent.len())) };
        let cash_now = amount - spent;
        let profitable = avg <= Decimal::ZERO && !recent.is_empty();
        let months = if avg > Decimal::ZERO { ratio(cash_now.max(Decimal::ZERO), avg, 1) } else { None };
        let runs_out_on = months.map(|m| {
            let days = (m * Decimal::new(304375, 4)).round();
            today + Duration::days(days.try_into().unwrap_or(0i64))
        });
        Runway { balance_date: date, balance: amount, cash_now, monthly_net_burn: avg, months, runs_out_on, profitable }
    });
    BurnReport {
        currency: currency.to_owned(),
        months: rows,
        other_costs: other.iter().map(|c| crate::NamedAmount { name: c.name.clone(), amount: c.amount }).collect(),
        runway,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Month {
        Month::parse(s).unwrap()
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn net_burn_is_costs_less_revenue_and_runway_divides_cash_by_recent_burn() {
        let months = [m("2026-08"), m("2026-09"), m("2026-10"), m("2026-11")];
        let aws = BTreeMap::from([(m("2026-08"), d("2000")), (m("2026-09"), d("2100")), (m("2026-10"), d("2200")), (m("2026-11"), d("1500"))]);
        let revenue = BTreeMap::from([(m("2026-09"), d("1000")), (m("2026-10"), d("1200"))]);
        let other = [MonthlyCost { name: "Payroll".into(), amount: d("30000") }];
        let today = NaiveDate::from_ymd_opt(2026, 11, 16).unwrap();
        let r = burn("USD", &months, &aws, &revenue, &other, Some((NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(), d("200000"))), today);
        assert_eq!(r.months[2].net_burn, d("31000"));
        assert_eq!(r.months[2].gross_margin_percent, Some(d("-83.3")));
        assert!(!r.months[3].complete);
        assert_eq!(r.months[3].other_costs, d("15000.00"), "half of November's payroll has been spent");
        let run = r.runway.unwrap();
        // Spent since 1 Sep: 31,100 + 31,000; burn: mean of Aug-Oct = (32,000 + 31,100 + 31,000) / 3.
        assert_eq!(run.cash_now, d("137900"));
        assert_eq!(run.monthly_net_burn, d("31366.67"));
        assert_eq!(run.months, Some(d("4.4")));
        // 4.4 months of 30.4375 days = 134 days after 16 November.
        assert_eq!(run.runs_out_on, Some(NaiveDate::from_ymd_opt(2027, 3, 30).unwrap()));
    }

    #[test]
    fn a_company_whose_revenue_covers_its_costs_is_profitable_with_no_runway_date() {
        let months = [m("2026-09")];
        let aws = BTreeMap::from([(m("2026-09"), d("2000"))]);
        let revenue = BTreeMap::from([(m("2026-09"), d("5000"))]);
        let r = burn(
            "USD",
            &months,
            &aws,
            &revenue,
            &[],
            Some((NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(), d("1000"))),
            NaiveDate::from_ymd_opt(2026, 10, 5).unwrap(),
        );
        let run = r.runway.unwrap();
        assert!(run.profitable);
        assert_eq!(run.runs_out_on, None);
        assert_eq!(r.months[0].gross_margin_percent, Some(d("60.0")));
    }
}
