//! The projection: from billed instance-hours to what each term and payment
//! option of a reservation or a Compute Savings Plan would save.
//!
//! Per instance family, region and variant (engine, deployment), the hourly
//! count of running instances over the look-back window is counted in
//! instances of the family's most-used size (normalised units where
//! reservations are size-flexible). The baseline is the largest count running
//! in at least `baseline_share` of the hours; reservations already running
//! (RI fee lines) cover first, and the whole instances between them and the
//! baseline are what Tally recommends buying.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use tally_domain::{CostLine, LineType};

use crate::catalogue::{Payment, PriceCatalogue, PriceSource, Service, Term};
use crate::family::{Family, normalization_factor, rds_engine_of_operation, region_of_usage_type};

/// Hours in a month as AWS prices them (8,760 / 12).
pub const HOURS_PER_MONTH: Decimal = Decimal::from_parts(730, 0, 0, false, 0);

/// What to project.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionParams {
    /// 7, 30 or 60 days, as Cost Explorer offers.
    pub lookback_days: u32,
    /// The share of hours the baseline count must be running in (0.95).
    pub baseline_share: Decimal,
    /// The window's end; by default the end of the last billed instance-hour.
    pub end: Option<DateTime<Utc>>,
}

impl Default for ProjectionParams {
    fn default() -> Self {
        Self { lookback_days: 30, baseline_share: Decimal::new(95, 2), end: None }
    }
}

/// Statistics of the hourly running count, in instances of the family's reference type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HourlyProfile {
    pub min: Decimal,
    pub mean: Decimal,
    pub max: Decimal,
    /// The largest count running in at least the baseline share of the hours.
    pub baseline: Decimal,
}

/// Reservations already running at the window's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExistingCommitment {
    /// In instances of the family's reference type.
    pub count: Decimal,
    /// Their ARNs or ids, as the RI fee lines name them.
    pub reservations: Vec<String>,
}

/// One term and payment option for a family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservationOption {
    pub term: Term,
    pub payment: Payment,
    /// New reservations to buy, of the family's reference type.
    pub count: u32,
    /// Paid at purchase, for all of them.
    pub upfront: Decimal,
    /// Their hourly charges over a month (730 hours).
    pub recurring_monthly: Decimal,
    /// Per instance: the hourly charge plus the upfront spread over the term.
    pub effective_hourly: Decimal,
    /// What the usage they cover costs on demand per month.
    pub on_demand_monthly: Decimal,
    /// `on_demand_monthly` minus the recurring charges and the upfront spread over the term's months.
    pub monthly_savings: Decimal,
    /// `monthly_savings` as a share of `on_demand_monthly` (0..1).
    pub savings_share: Decimal,
    /// The month (from 1) by whose end the savings have paid the upfront back; `None`: not within the term.
    pub break_even_month: Option<u32>,
    /// Hours the new reservations would be used, over the hours paid for (0..1).
    pub utilization: Decimal,
    /// Running hours covered by reservations, old and new (0..1).
    pub coverage: Decimal,
}

/// Running hours of one instance type in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TypeHours {
    pub instance_type: String,
    pub hours: Decimal,
}

/// A family's projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FamilyProjection {
    pub service: Service,
    pub region: String,
    /// `m5`, `db.r6g`, `cache.r6g`.
    pub family: String,
    pub variant: String,
    /// Counts are in instances of this type (the family's most-used one).
    pub instance_type: String,
    /// Whether one reservation covers any size of the family.
    pub size_flexible: bool,
    /// Instance types seen in the window, by running hours.
    pub types_seen: Vec<TypeHours>,
    pub profile: HourlyProfile,
    pub existing: ExistingCommitment,
    pub on_demand_hourly: Decimal,
    /// The family's mean running count at on-demand prices over a month.
    pub on_demand_monthly: Decimal,
    /// The date of the price list behind the prices.
    pub published: NaiveDate,
    pub options: Vec<ReservationOption>,
}

/// One term and payment option of a Compute Savings Plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SavingsPlanOption {
    pub term: Term,
    pub payment: Payment,
    /// Dollars per hour at Savings Plan rates, on top of any plan already running.
    pub hourly_commitment: Decimal,
    pub upfront: Decimal,
    pub recurring_monthly: Decimal,
    pub on_demand_monthly: Decimal,
    pub monthly_savings: Decimal,
    pub savings_share: Decimal,
    pub break_even_month: Option<u32>,
    pub utilization: Decimal,
    pub coverage: Decimal,
}

/// A Compute Savings Plan over the EC2 Linux usage priced in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SavingsPlanProjection {
    /// Commitment already running at the window's end, $ per hour.
    pub existing_hourly_commitment: Decimal,
    /// EC2 Linux usage at on-demand prices over a month, that a plan could cover.
    pub eligible_on_demand_monthly: Decimal,
    pub published: NaiveDate,
    pub options: Vec<SavingsPlanOption>,
}

/// The whole projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Projection {
    pub lookback_days: u32,
    pub baseline_share: Decimal,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub hours: u32,
    /// The whole bill per month, the yardstick of `share_of_bill`.
    pub bill_monthly: Decimal,
    /// What `bill_monthly` is: a month's invoice, or the run rate of the lines given.
    pub bill_basis: String,
    pub families: Vec<FamilyProjection>,
    pub savings_plan: Option<SavingsPlanProjection>,
    /// Reservable usage that the catalogue has no prices for.
    pub unpriced: Vec<String>,
    /// The price lists used, with their dates.
    pub sources: Vec<PriceSource>,
}

/// Reservations for every family with one term and payment option, summed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    pub term: Term,
    pub payment: Payment,
    pub upfront: Decimal,
    pub monthly_savings: Decimal,
    /// The reservable families' running hours at on-demand prices, per month.
    pub reservable_on_demand_monthly: Decimal,
    pub share_of_reservable: Decimal,
    pub share_of_bill: Decimal,
}

impl Projection {
    /// Measures `share_of_bill` against a known bill (e.g. last month's invoice).
    pub fn with_bill(mut self, basis: impl Into<String>, monthly: Decimal) -> Self {
        self.bill_basis = basis.into();
        self.bill_monthly = monthly;
        self
    }

    /// Every family's option of `term` and `payment` (families without that
    /// option count as saving nothing).
    pub fn summary(&self, term: Term, payment: Payment) -> Summary {
        let mut upfront = Decimal::ZERO;
        let mut savings = Decimal::ZERO;
        let mut reservable = Decimal::ZERO;
        for f in &self.families {
            reservable += f.on_demand_monthly;
            if let Some(o) = f.options.iter().find(|o| o.term == term && o.payment == payment) {
                upfront += o.upfront;
                savings += o.monthly_savings;
            }
        }
        Summary {
            term,
            payment,
            upfront: upfront.round_dp(2),
            monthly_savings: savings.round_dp(2),
            reservable_on_demand_monthly: reservable.round_dp(2),
            share_of_reservable: ratio(savings, reservable),
            share_of_bill: ratio(savings, self.bill_monthly),
        }
    }
}

fn ratio(a: Decimal, b: Decimal) -> Decimal {
    if b.is_zero() { Decimal::ZERO } else { (a / b).round_dp(4) }
}

/// An instance-hour line, recognised.
struct InstanceHours {
    service: Service,
    region: String,
    instance_type: String,
    variant: String,
}

/// RDS usage types abbreviate sizes (`db.r6g.xl`, `db.r6g.2xl`).
fn expand_rds_size(t: &str) -> String {
    match t.rsplit_once('.') {
        Some((f, s)) if s.ends_with("xl") => format!("{f}.{s}arge"),
        _ => t.to_owned(),
    }
}

fn recognise(line: &CostLine) -> Option<InstanceHours> {
    if !matches!(line.line_type, LineType::Usage | LineType::DiscountedUsage | LineType::SavingsPlanCoveredUsage) {
        return None;
    }
    let service = Service::from_code(&line.service)?;
    let ut = line.usage_type.as_str();
    let from_usage_type = || ut.split_once(':').map(|(_, t)| t.to_owned());
    let (instance_type, variant) = match service {
        Service::Ec2 => {
            // Linux on shared tenancy only: other platforms carry an operation suffix.
            if !ut.contains("BoxUsage") || line.operation != "RunInstances" {
                return None;
            }
            (line.instance_type.clone().or_else(from_usage_type)?, "Linux".to_owned())
        }
        Service::Rds => {
            let deployment = if ut.contains("Multi-AZUsage:") {
                "Multi-AZ"
            } else if ut.contains("InstanceUsage:") {
                "Single-AZ"
            } else {
                return None;
            };
            let engine = rds_engine_of_operation(&line.operation)?;
            (line.instance_type.clone().or_else(|| from_usage_type().map(|t| expand_rds_size(&t)))?, format!("{engine} {deployment}"))
        }
        Service::ElastiCache => {
            if !ut.contains("NodeUsage") {
                return None;
            }
            let engine = match line.operation.rsplit_once(':').map(|(_, c)| c) {
                Some("0001") => "Memcached",
                Some("0002") | None => "Redis",
                Some("0003") => "Valkey",
                _ => return None,
            };
            (line.instance_type.clone().or_else(from_usage_type)?, engine.to_owned())
        }
    };
    let region = line.region.clone().filter(|r| !r.is_empty()).or_else(|| region_of_usage_type(ut).map(str::to_owned))?;
    Some(InstanceHours { service, region, instance_type, variant })
}

/// The family key: size-flexible services group by family, others by type.
type FamilyKey = (Service, String, String, String);

fn family_key(h: &InstanceHours) -> Option<FamilyKey> {
    let fam = Family::of(&h.instance_type)?;
    let group = if h.service.size_flexible() && normalization_factor(&fam.size).is_some() { fam.family } else { h.instance_type.clone() };
    Some((h.service, h.region.clone(), group, h.variant.clone()))
}

/// Units of one hour of `instance_type` in its family group.
fn units(service: Service, instance_type: &str) -> Decimal {
    if !service.size_flexible() {
        return Decimal::ONE;
    }
    Family::of(instance_type).and_then(|f| normalization_factor(&f.size)).unwrap_or(Decimal::ONE)
}

fn hour_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

/// Spreads a line's amount over the window's hours it spans: `(hour index, share)`.
fn spread(line: &CostLine, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<(usize, Decimal)> {
    let (ls, le) = (hour_floor(line.usage_start), line.usage_end);
    let span_hours = ((le - ls).num_seconds() as f64 / 3600.0).round().max(1.0) as i64;
    let mut out = Vec::new();
    for k in 0..span_hours {
        let h = ls + Duration::hours(k);
        if h >= start && h < end {
            out.push((((h - start).num_hours()) as usize, Decimal::ONE / Decimal::from(span_hours)));
        }
    }
    out
}

/// Projects reservations and a Compute Savings Plan from `lines` (any lines;
/// those outside the window or not instance-hours are ignored).
pub fn project(lines: &[CostLine], catalogue: &PriceCatalogue, params: &ProjectionParams) -> Projection {
    let recognised: Vec<(usize, InstanceHours)> = lines.iter().enumerate().filter_map(|(i, l)| recognise(l).map(|h| (i, h))).collect();
    let end = params
        .end
        .unwrap_or_else(|| recognised.iter().map(|(i, _)| lines[*i].usage_end).max().map(|e| hour_floor(e + Duration::minutes(59))).unwrap_or_else(Utc::now));
    let start = end - Duration::days(i64::from(params.lookback_days));
    let hours = (params.lookback_days * 24) as usize;

    // The bill's run rate over the window.
    let mut bill = Decimal::ZERO;
    for l in lines {
        let period = (l.usage_end - l.usage_start).num_seconds().max(1);
        let overlap = (l.usage_end.min(end) - l.usage_start.max(start)).num_seconds();
        if overlap > 0 {
            bill += l.unblended * Decimal::from(overlap) / Decimal::from(period);
        }
    }
    let bill_monthly = (bill / Decimal::from(hours as u64) * HOURS_PER_MONTH).round_dp(2);

    // Hourly units per family, and hours per instance type.
    let mut counts: BTreeMap<FamilyKey, Vec<Decimal>> = BTreeMap::new();
    let mut type_hours: BTreeMap<FamilyKey, BTreeMap<String, Decimal>> = BTreeMap::new();
    let mut ec2_hours: BTreeMap<(String, String), Vec<Decimal>> = BTreeMap::new();
    for (i, h) in &recognised {
        let line = &lines[*i];
        let Some(key) = family_key(h) else { continue };
        let u = units(h.service, &h.instance_type);
        let slots = spread(line, start, end);
        if slots.is_empty() {
            continue;
        }
        let series = counts.entry(key.clone()).or_insert_with(|| vec![Decimal::ZERO; hours]);
        for (k, share) in &slots {
            series[*k] += line.usage_amount * share * u;
        }
        let in_window: Decimal = slots.iter().map(|(_, s)| *s).sum::<Decimal>() * line.usage_amount;
        *type_hours.entry(key).or_default().entry(h.instance_type.clone()).or_default() += in_window;
        if h.service == Service::Ec2 {
            let s = ec2_hours.entry((h.region.clone(), h.instance_type.clone())).or_insert_with(|| vec![Decimal::ZERO; hours]);
            for (k, share) in &slots {
                s[*k] += line.usage_amount * share;
            }
        }
    }

    // Reservations running at the window's end.
    let mut existing: BTreeMap<FamilyKey, (Decimal, BTreeSet<String>)> = BTreeMap::new();
    let mut sp_existing = Decimal::ZERO;
    for l in lines.iter().filter(|l| l.usage_start < end && l.usage_end >= end - Duration::hours(1)) {
        match l.line_type {
            LineType::RiFee => {
                let Some(service) = Service::from_code(&l.service) else { continue };
                let Some(itype) = l.instance_type.clone().or_else(|| l.usage_type.split_once(':').map(|(_, t)| t.to_owned())) else { continue };
                let itype = if service == Service::Rds { expand_rds_size(&itype) } else { itype };
                let variant = match service {
                    Service::Ec2 => "Linux".to_owned(),
                    Service::Rds => {
                        let dep = if l.usage_type.contains("Multi-AZ") { "Multi-AZ" } else { "Single-AZ" };
                        match rds_engine_of_operation(&l.operation) {
                            Some(e) => format!("{e} {dep}"),
                            None => continue,
                        }
                    }
                    Service::ElastiCache => "Redis".to_owned(),
                };
                let region = l.region.clone().or_else(|| region_of_usage_type(&l.usage_type).map(str::to_owned)).unwrap_or_default();
                let h = InstanceHours { service, region, instance_type: itype.clone(), variant };
                let Some(key) = family_key(&h) else { continue };
                let period_hours = Decimal::from(((l.usage_end - l.usage_start).num_seconds() as f64 / 3600.0).round().max(1.0) as i64);
                let e = existing.entry(key).or_default();
                e.0 += l.usage_amount / period_hours * units(service, &itype);
                if let Some(id) = &l.commitment_id {
                    e.1.insert(id.clone());
                }
            }
            LineType::SavingsPlanRecurringFee => {
                let period_hours = Decimal::from(((l.usage_end - l.usage_start).num_seconds() as f64 / 3600.0).round().max(1.0) as i64);
                sp_existing += l.amortized / period_hours;
            }
            _ => {}
        }
    }

    let mut families = Vec::new();
    let mut unpriced = Vec::new();
    let mut used_offers = BTreeSet::new();
    for (key, series) in &counts {
        let (service, region, group, variant) = key;
        let types = &type_hours[key];
        let mut types_seen: Vec<TypeHours> = types.iter().map(|(t, h)| TypeHours { instance_type: t.clone(), hours: h.round_dp(2) }).collect();
        types_seen.sort_by(|a, b| b.hours.cmp(&a.hours).then(a.instance_type.cmp(&b.instance_type)));
        let reference = types_seen[0].instance_type.clone();
        let Some(price) = catalogue.instance(*service, region, &reference, variant) else {
            unpriced.push(format!("{service} {region} {reference} {variant}: no price in the catalogue"));
            continue;
        };
        used_offers.insert(service.code().to_owned());
        let ref_units = units(*service, &reference);
        let c: Vec<Decimal> = series.iter().map(|u| *u / ref_units).collect();
        let profile = profile(&c, params.baseline_share);
        let (ex_units, ex_ids) = existing.remove(key).unwrap_or_default();
        let ex = ex_units / ref_units;
        let new = (profile.baseline - ex).floor().max(Decimal::ZERO).to_u32().unwrap_or(0);
        let mut options = Vec::new();
        for r in &price.reserved {
            options.push(reserved_option(&c, ex, new, price.on_demand_hourly, r.term, r.payment, r.upfront, r.hourly));
        }
        options.sort_by_key(|o| (o.term, o.payment));
        let family =
            if group.contains('.') && !service.size_flexible() { Family::of(group).map(|f| f.family).unwrap_or_else(|| group.clone()) } else { group.clone() };
        families.push(FamilyProjection {
            service: *service,
            region: region.clone(),
            family,
            variant: variant.clone(),
            instance_type: reference,
            size_flexible: service.size_flexible(),
            types_seen,
            on_demand_monthly: (profile.mean * price.on_demand_hourly * HOURS_PER_MONTH).round_dp(2),
            profile,
            existing: ExistingCommitment { count: ex.round_dp(2), reservations: ex_ids.into_iter().collect() },
            on_demand_hourly: price.on_demand_hourly,
            published: price.published,
            options,
        });
    }

    let savings_plan = savings_plan(&ec2_hours, catalogue, hours, sp_existing, params.baseline_share, &mut used_offers);
    let sources = catalogue.sources.iter().filter(|s| used_offers.contains(&s.offer)).cloned().collect();
    Projection {
        lookback_days: params.lookback_days,
        baseline_share: params.baseline_share,
        window_start: start,
        window_end: end,
        hours: hours as u32,
        bill_monthly,
        bill_basis: "the run rate of the billed lines in the window".into(),
        families,
        savings_plan,
        unpriced,
        sources,
    }
}

/// The `k`-th largest value where `k` is the share of the hours, rounded up.
fn at_share(values: &[Decimal], share: Decimal) -> Decimal {
    if values.is_empty() {
        return Decimal::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| b.cmp(a));
    let k = (share * Decimal::from(values.len() as u64)).ceil().to_usize().unwrap_or(1).clamp(1, values.len());
    sorted[k - 1]
}

fn profile(c: &[Decimal], share: Decimal) -> HourlyProfile {
    let n = Decimal::from(c.len().max(1) as u64);
    HourlyProfile {
        min: c.iter().copied().min().unwrap_or_default().round_dp(2),
        mean: (c.iter().copied().sum::<Decimal>() / n).round_dp(4),
        max: c.iter().copied().max().unwrap_or_default().round_dp(2),
        baseline: at_share(c, share).round_dp(4),
    }
}

fn break_even(upfront: Decimal, monthly_net: Decimal, term: Term) -> Option<u32> {
    if monthly_net <= Decimal::ZERO {
        return None;
    }
    let m = (upfront / monthly_net).ceil().to_u32()?.max(1);
    (m <= term.months()).then_some(m)
}

#[allow(clippy::too_many_arguments)]
fn reserved_option(
    c: &[Decimal],
    existing: Decimal,
    count: u32,
    on_demand: Decimal,
    term: Term,
    payment: Payment,
    upfront_each: Decimal,
    hourly_each: Decimal,
) -> ReservationOption {
    let h = Decimal::from(c.len().max(1) as u64);
    let n = Decimal::from(count);
    let total: Decimal = c.iter().copied().sum();
    let covered_new: Decimal = c.iter().map(|x| (*x - existing).max(Decimal::ZERO).min(n)).sum();
    let covered_all: Decimal = c.iter().map(|x| (*x).min(existing + n)).sum();
    let on_demand_monthly = covered_new / h * HOURS_PER_MONTH * on_demand;
    let upfront = n * upfront_each;
    let recurring_monthly = n * hourly_each * HOURS_PER_MONTH;
    let monthly_savings = on_demand_monthly - recurring_monthly - upfront / Decimal::from(term.months());
    ReservationOption {
        term,
        payment,
        count,
        upfront: upfront.round_dp(2),
        recurring_monthly: recurring_monthly.round_dp(2),
        effective_hourly: (hourly_each + upfront_each / term.hours()).round_dp(4),
        on_demand_monthly: on_demand_monthly.round_dp(2),
        monthly_savings: monthly_savings.round_dp(2),
        savings_share: ratio(monthly_savings, on_demand_monthly),
        break_even_month: if count == 0 { None } else { break_even(upfront, on_demand_monthly - recurring_monthly, term) },
        utilization: if count == 0 { Decimal::ZERO } else { ratio(covered_new, n * h) },
        coverage: ratio(covered_all, total),
    }
}

fn savings_plan(
    ec2_hours: &BTreeMap<(String, String), Vec<Decimal>>,
    catalogue: &PriceCatalogue,
    hours: usize,
    existing: Decimal,
    share: Decimal,
    used_offers: &mut BTreeSet<String>,
) -> Option<SavingsPlanProjection> {
    let mut options = Vec::new();
    let mut eligible_od = vec![Decimal::ZERO; hours];
    let mut published = None;
    for term in Term::ALL {
        for payment in Payment::ALL {
            // Per hour: usage at plan rates, and the same usage on demand.
            let mut sp = vec![Decimal::ZERO; hours];
            let mut od = vec![Decimal::ZERO; hours];
            let mut any = false;
            for ((region, itype), series) in ec2_hours {
                let (Some(rate), Some(price)) =
                    (catalogue.savings_plan_rate(region, itype, term, payment), catalogue.instance(Service::Ec2, region, itype, "Linux"))
                else {
                    continue;
                };
                any = true;
                published = Some(published.map_or(rate.published, |p: NaiveDate| p.min(rate.published)));
                for k in 0..hours {
                    sp[k] += series[k] * rate.hourly;
                    od[k] += series[k] * price.on_demand_hourly;
                }
            }
            if !any {
                continue;
            }
            eligible_od.clone_from(&od);
            let after_existing: Vec<Decimal> = sp.iter().map(|s| (*s - existing).max(Decimal::ZERO)).collect();
            // Whole tenths of a cent per hour, as AWS sells commitments.
            let commitment = (at_share(&after_existing, share) * Decimal::from(1000)).floor() / Decimal::from(1000);
            let h = Decimal::from(hours.max(1) as u64);
            let mut covered = Decimal::ZERO;
            let mut avoided = Decimal::ZERO;
            let mut covered_all_od = Decimal::ZERO;
            for k in 0..hours {
                if sp[k].is_zero() {
                    continue;
                }
                let to_od = od[k] / sp[k];
                let new = after_existing[k].min(commitment);
                covered += new;
                avoided += new * to_od;
                covered_all_od += (sp[k].min(existing + commitment)) * to_od;
            }
            let on_demand_monthly = avoided / h * HOURS_PER_MONTH;
            let total = commitment * term.hours();
            let upfront = match payment {
                Payment::NoUpfront => Decimal::ZERO,
                Payment::PartialUpfront => total / Decimal::TWO,
                Payment::AllUpfront => total,
            };
            let recurring_monthly = (total - upfront) / Decimal::from(term.months());
            let monthly_savings = on_demand_monthly - commitment * HOURS_PER_MONTH;
            let od_total: Decimal = od.iter().copied().sum();
            options.push(SavingsPlanOption {
                term,
                payment,
                hourly_commitment: commitment,
                upfront: upfront.round_dp(2),
                recurring_monthly: recurring_monthly.round_dp(2),
                on_demand_monthly: on_demand_monthly.round_dp(2),
                monthly_savings: monthly_savings.round_dp(2),
                savings_share: ratio(monthly_savings, on_demand_monthly),
                break_even_month: if commitment.is_zero() { None } else { break_even(upfront, on_demand_monthly - recurring_monthly, term) },
                utilization: if commitment.is_zero() { Decimal::ZERO } else { ratio(covered, commitment * h) },
                coverage: ratio(covered_all_od, od_total),
            });
        }
    }
    if options.is_empty() {
        return None;
    }
    used_offers.insert("ComputeSavingsPlans".into());
    used_offers.insert("AmazonEC2".into());
    let h = Decimal::from(hours.max(1) as u64);
    Some(SavingsPlanProjection {
        existing_hourly_commitment: existing.round_dp(3),
        eligible_on_demand_monthly: (eligible_od.iter().copied().sum::<Decimal>() / h * HOURS_PER_MONTH).round_dp(2),
        published: published.unwrap_or_default(),
        options,
    })
}
