//! The projection's arithmetic against cases computed by hand.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use tally_domain::{CostLine, CostSource, Currency, LineType, Month};
use tally_savings::{Payment, PriceCatalogue, ProjectionParams, Term, project};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap()
}

/// m5.xlarge at $0.20 on demand; 1y: no upfront $0.12/h, partial $438 + $0.07/h,
/// all upfront $876; a Compute Savings Plan at $0.14/h (1y, no upfront).
fn catalogue() -> PriceCatalogue {
    PriceCatalogue::from_snapshot_csv(
        "# published: 2026-10-01\n# note: hand-made for the tests\n\
         offer,region,instance_type,variant,term,payment,upfront,hourly\n\
         AmazonEC2,us-east-1,m5.xlarge,Linux,,,0,0.20\n\
         AmazonEC2,us-east-1,m5.xlarge,Linux,1y,none,0,0.12\n\
         AmazonEC2,us-east-1,m5.xlarge,Linux,1y,partial,438,0.07\n\
         AmazonEC2,us-east-1,m5.xlarge,Linux,1y,all,876,0\n\
         AmazonEC2,us-east-1,m5.large,Linux,,,0,0.10\n\
         AmazonEC2,us-east-1,m5.large,Linux,1y,none,0,0.06\n\
         AmazonRDS,us-east-1,db.r6g.xlarge,PostgreSQL Multi-AZ,,,0,0.898\n\
         AmazonRDS,us-east-1,db.r6g.xlarge,PostgreSQL Multi-AZ,1y,none,0,0.584\n\
         ComputeSavingsPlans,us-east-1,m5.xlarge,Linux,1y,none,0,0.14\n",
        "test",
    )
    .unwrap()
}

#[allow(clippy::too_many_arguments, reason = "a cost line in one call keeps each test's lines on one row")]
fn line(start: DateTime<Utc>, hours: i64, service: &str, usage_type: &str, operation: &str, itype: &str, amount: Decimal, line_type: LineType) -> CostLine {
    CostLine {
        usage_start: start,
        usage_end: start + Duration::hours(hours),
        billing_month: Month::parse("2026-10").unwrap(),
        payer_account: "111111111111".into(),
        usage_account: "111111111111".into(),
        service: service.into(),
        usage_type: usage_type.into(),
        operation: operation.into(),
        resource_id: None,
        region: Some("us-east-1".into()),
        availability_zone: None,
        line_type,
        description: None,
        currency: Currency::USD,
        unblended: amount * d("0.2"),
        net_unblended: amount * d("0.2"),
        amortized: amount * d("0.2"),
        list_cost: None,
        usage_amount: amount,
        usage_unit: Some("Hrs".into()),
        instance_type: Some(itype.into()),
        commitment_id: None,
        tags: Default::default(),
        tenant: None,
        estimated: false,
        source: CostSource::Cur,
        provider: None,
    }
}

fn node_hours(count_at: impl Fn(i64) -> u32, itype: &str) -> Vec<CostLine> {
    let mut v = Vec::new();
    for h in 0..720 {
        for _ in 0..count_at(h) {
            v.push(line(start() + Duration::hours(h), 1, "AmazonEC2", &format!("BoxUsage:{itype}"), "RunInstances", itype, Decimal::ONE, LineType::Usage));
        }
    }
    v
}

fn params() -> ProjectionParams {
    ProjectionParams { lookback_days: 30, baseline_share: d("0.95"), end: Some(start() + Duration::days(30)) }
}

#[test]
fn three_steady_nodes_and_a_fourth_half_the_time_reserve_three() {
    let lines = node_hours(|h| if h % 2 == 0 { 4 } else { 3 }, "m5.xlarge");
    let p = project(&lines, &catalogue(), &params());
    assert_eq!(p.hours, 720);
    let f = &p.families[0];
    assert_eq!((f.family.as_str(), f.instance_type.as_str()), ("m5", "m5.xlarge"));
    assert_eq!(f.profile.baseline, d("3"));
    assert_eq!(f.profile.mean, d("3.5"));
    assert_eq!(f.on_demand_monthly, d("511.00")); // 3.5 x 0.20 x 730

    let none = f.options.iter().find(|o| o.term == Term::OneYear && o.payment == Payment::NoUpfront).unwrap();
    assert_eq!(none.count, 3);
    assert_eq!(none.upfront, d("0"));
    assert_eq!(none.on_demand_monthly, d("438.00")); // 3 x 0.20 x 730
    assert_eq!(none.recurring_monthly, d("262.80")); // 3 x 0.12 x 730
    assert_eq!(none.monthly_savings, d("175.20"));
    assert_eq!(none.savings_share, d("0.4"));
    assert_eq!(none.break_even_month, Some(1));
    assert_eq!(none.utilization, d("1"));
    assert_eq!(none.coverage, d("0.8571")); // 2,160 of 2,520 running hours

    // Partial upfront: $1,314 now, $153.30 a month, the upfront amortised over 12 months ($109.50).
    let partial = f.options.iter().find(|o| o.payment == Payment::PartialUpfront).unwrap();
    assert_eq!(partial.upfront, d("1314"));
    assert_eq!(partial.recurring_monthly, d("153.30"));
    assert_eq!(partial.effective_hourly, d("0.12")); // 0.07 + 438 / 8,760
    assert_eq!(partial.monthly_savings, d("175.20"));
    assert_eq!(partial.break_even_month, Some(5)); // 1,314 / (438 - 153.30) = 4.6

    let all = f.options.iter().find(|o| o.payment == Payment::AllUpfront).unwrap();
    assert_eq!(all.upfront, d("2628"));
    assert_eq!(all.effective_hourly, d("0.1"));
    assert_eq!(all.monthly_savings, d("219.00")); // 438 - 2,628 / 12
    assert_eq!(all.break_even_month, Some(6)); // 2,628 / 438 = 6
}

#[test]
fn a_reservation_already_running_is_counted_first() {
    let mut lines = node_hours(|_| 3, "m5.xlarge");
    // Two m5.xlarge reserved for the whole month: 2 x 720 hours on the RI fee line.
    let mut fee = line(start(), 720, "AmazonEC2", "HeavyUsage:m5.xlarge", "RunInstances", "m5.xlarge", d("1440"), LineType::RiFee);
    fee.commitment_id = Some("arn:aws:ec2:us-east-1:111111111111:reserved-instances/ri-1".into());
    lines.push(fee);
    let p = project(&lines, &catalogue(), &params());
    let f = &p.families[0];
    assert_eq!(f.existing.count, d("2"));
    assert_eq!(f.existing.reservations.len(), 1);
    let none = f.options.iter().find(|o| o.payment == Payment::NoUpfront).unwrap();
    assert_eq!(none.count, 1);
    assert_eq!(none.monthly_savings, d("58.40")); // (0.20 - 0.12) x 730
    assert_eq!(none.coverage, d("1"));
    assert_eq!(none.utilization, d("1"));
}

#[test]
fn sizes_of_a_family_count_in_normalised_units_of_the_most_used_size() {
    // Three m5.large (4 units each) and one m5.xlarge (8) all the time: 20 units, 5 m5.large.
    let mut lines = node_hours(|_| 3, "m5.large");
    lines.extend(node_hours(|_| 1, "m5.xlarge"));
    let p = project(&lines, &catalogue(), &params());
    assert_eq!(p.families.len(), 1);
    let f = &p.families[0];
    assert_eq!(f.instance_type, "m5.large");
    assert_eq!(f.profile.baseline, d("5"));
    assert_eq!(f.options[0].count, 5);
    assert_eq!(f.options[0].monthly_savings, d("146.00")); // 5 x (0.10 - 0.06) x 730
}

#[test]
fn daily_lines_spread_over_their_hours() {
    let lines: Vec<CostLine> = (0..30)
        .map(|day| line(start() + Duration::days(day), 24, "AmazonEC2", "BoxUsage:m5.xlarge", "RunInstances", "m5.xlarge", d("72"), LineType::Usage))
        .collect();
    let p = project(&lines, &catalogue(), &params());
    assert_eq!(p.families[0].profile.min, d("3"));
    assert_eq!(p.families[0].profile.baseline, d("3"));
}

#[test]
fn a_count_below_the_baseline_share_of_hours_is_not_reserved() {
    // Four nodes for 90% of the hours, two otherwise: 95% of the hours see only two.
    let lines = node_hours(|h| if h % 10 == 0 { 2 } else { 4 }, "m5.xlarge");
    let p = project(&lines, &catalogue(), &params());
    assert_eq!(p.families[0].profile.baseline, d("2"));
    let lenient = project(&lines, &catalogue(), &ProjectionParams { baseline_share: d("0.85"), ..params() });
    assert_eq!(lenient.families[0].profile.baseline, d("4"));
    // Four reserved, used 90% of the time: utilization 0.95 (2,736 of 2,880 hours).
    let o = &lenient.families[0].options[0];
    assert_eq!(o.count, 4);
    assert_eq!(o.utilization, d("0.95"));
}

#[test]
fn multi_az_databases_are_priced_as_their_own_variant() {
    let lines: Vec<CostLine> = (0..720)
        .map(|h| {
            line(
                start() + Duration::hours(h),
                1,
                "AmazonRDS",
                "Multi-AZUsage:db.r6g.xl",
                "CreateDBInstance:0014",
                "db.r6g.xlarge",
                Decimal::ONE,
                LineType::Usage,
            )
        })
        .collect();
    let p = project(&lines, &catalogue(), &params());
    let f = &p.families[0];
    assert_eq!(f.variant, "PostgreSQL Multi-AZ");
    assert_eq!(f.options[0].count, 1);
    assert_eq!(f.options[0].monthly_savings, d("229.22")); // (0.898 - 0.584) x 730
}

#[test]
fn a_compute_savings_plan_commits_to_the_baseline_spend_at_plan_rates() {
    let lines = node_hours(|_| 3, "m5.xlarge");
    let p = project(&lines, &catalogue(), &params());
    let sp = p.savings_plan.as_ref().expect("a plan");
    let o = sp.options.iter().find(|o| o.term == Term::OneYear && o.payment == Payment::NoUpfront).unwrap();
    assert_eq!(o.hourly_commitment, d("0.42")); // 3 x 0.14
    assert_eq!(o.on_demand_monthly, d("438.00"));
    assert_eq!(o.monthly_savings, d("131.40")); // 438 - 0.42 x 730
    assert_eq!(o.utilization, d("1"));
    assert_eq!(o.coverage, d("1"));
}

#[test]
fn usage_without_a_price_is_reported_not_guessed() {
    let lines = node_hours(|_| 2, "c7g.large");
    let p = project(&lines, &catalogue(), &params());
    assert!(p.families.is_empty());
    assert_eq!(p.unpriced.len(), 1, "{:?}", p.unpriced);
    assert!(p.unpriced[0].contains("c7g.large"));
}

#[test]
fn the_summary_adds_up_every_family_against_the_whole_bill() {
    let mut lines = node_hours(|_| 3, "m5.xlarge");
    lines.extend((0..720).map(|h| {
        line(start() + Duration::hours(h), 1, "AmazonRDS", "Multi-AZUsage:db.r6g.xl", "CreateDBInstance:0014", "db.r6g.xlarge", Decimal::ONE, LineType::Usage)
    }));
    let p = project(&lines, &catalogue(), &params());
    let s = p.summary(Term::OneYear, Payment::NoUpfront);
    assert_eq!(s.monthly_savings, d("404.42")); // 175.20 + 229.22
    assert_eq!(s.reservable_on_demand_monthly, d("1093.54")); // 438 + 655.54
    // The test lines bill 0.20 per hour each: 4 x 0.20 x 730 = 584 a month.
    assert_eq!(p.bill_monthly, d("584.00"));
    assert_eq!(s.share_of_bill, d("0.6925")); // 404.42 / 584
}
