use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};

use crate::{Currency, Granularity, Month, TenantId, ValidationError};

/// What kind of charge a billing line is, normalised across CUR, FOCUS and
/// Cost Explorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineType {
    /// On-demand usage.
    Usage,
    /// Usage covered by a Reserved Instance.
    DiscountedUsage,
    /// Usage covered by a Savings Plan.
    SavingsPlanCoveredUsage,
    /// The negation of Savings-Plan-covered usage on the unblended bill.
    SavingsPlanNegation,
    /// A Reserved Instance's recurring or upfront fee.
    RiFee,
    /// A Savings Plan's hourly commitment.
    SavingsPlanRecurringFee,
    /// A Savings Plan's upfront payment.
    SavingsPlanUpfrontFee,
    Fee,
    Credit,
    Refund,
    Tax,
    Other,
}

impl LineType {
    pub const ALL: [LineType; 12] = [
        Self::Usage,
        Self::DiscountedUsage,
        Self::SavingsPlanCoveredUsage,
        Self::SavingsPlanNegation,
        Self::RiFee,
        Self::SavingsPlanRecurringFee,
        Self::SavingsPlanUpfrontFee,
        Self::Fee,
        Self::Credit,
        Self::Refund,
        Self::Tax,
        Self::Other,
    ];

    /// Maps AWS's `line_item_line_item_type` spelling; unknown kinds
    /// (BundledDiscount, EdpDiscount, ...) are `Other`, never an error.
    pub fn from_cur(value: &str) -> Self {
        match value.trim() {
            "Usage" => Self::Usage,
            "DiscountedUsage" => Self::DiscountedUsage,
            "SavingsPlanCoveredUsage" => Self::SavingsPlanCoveredUsage,
            "SavingsPlanNegation" => Self::SavingsPlanNegation,
            "RIFee" => Self::RiFee,
            "SavingsPlanRecurringFee" => Self::SavingsPlanRecurringFee,
            "SavingsPlanUpfrontFee" => Self::SavingsPlanUpfrontFee,
            "Fee" => Self::Fee,
            "Credit" => Self::Credit,
            "Refund" => Self::Refund,
            "Tax" => Self::Tax,
            _ => Self::Other,
        }
    }

    /// AWS's own spelling, as CUR writes it.
    pub fn cur_name(self) -> &'static str {
        match self {
            Self::Usage => "Usage",
            Self::DiscountedUsage => "DiscountedUsage",
            Self::SavingsPlanCoveredUsage => "SavingsPlanCoveredUsage",
            Self::SavingsPlanNegation => "SavingsPlanNegation",
            Self::RiFee => "RIFee",
            Self::SavingsPlanRecurringFee => "SavingsPlanRecurringFee",
            Self::SavingsPlanUpfrontFee => "SavingsPlanUpfrontFee",
            Self::Fee => "Fee",
            Self::Credit => "Credit",
            Self::Refund => "Refund",
            Self::Tax => "Tax",
            Self::Other => "Other",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usage => "usage",
            Self::DiscountedUsage => "discounted_usage",
            Self::SavingsPlanCoveredUsage => "savings_plan_covered_usage",
            Self::SavingsPlanNegation => "savings_plan_negation",
            Self::RiFee => "ri_fee",
            Self::SavingsPlanRecurringFee => "savings_plan_recurring_fee",
            Self::SavingsPlanUpfrontFee => "savings_plan_upfront_fee",
            Self::Fee => "fee",
            Self::Credit => "credit",
            Self::Refund => "refund",
            Self::Tax => "tax",
            Self::Other => "other",
        }
    }

    /// Consumption of a resource, as opposed to a fee, tax or adjustment.
    pub fn is_usage(self) -> bool {
        matches!(self, Self::Usage | Self::DiscountedUsage | Self::SavingsPlanCoveredUsage)
    }

    /// A commitment's own charge line, whose amortized cost is the unused commitment.
    pub fn is_commitment_fee(self) -> bool {
        matches!(self, Self::RiFee | Self::SavingsPlanRecurringFee)
    }
}

impl fmt::Display for LineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LineType {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| ValidationError::new("line type", s, "a Tally line type such as usage or ri_fee"))
    }
}

/// Where a billing line came from. Imports replace data per source and
/// period, so a CUR re-delivery never disturbs Cost Explorer data and vice versa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    Cur,
    Focus,
    CostExplorer,
    Demo,
}

impl CostSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cur => "cur",
            Self::Focus => "focus",
            Self::CostExplorer => "cost_explorer",
            Self::Demo => "demo",
        }
    }
}

impl fmt::Display for CostSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CostSource {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cur" => Ok(Self::Cur),
            "focus" => Ok(Self::Focus),
            "cost_explorer" => Ok(Self::CostExplorer),
            "demo" => Ok(Self::Demo),
            _ => Err(ValidationError::new("cost source", s, "one of cur, focus, cost_explorer, demo")),
        }
    }
}

/// One normalised billing line.
///
/// `unblended` is what the invoice shows for the line, `net_unblended` the
/// same after discounts, and `amortized` the effective cost under AWS's
/// rules (reservations and Savings Plans spread over the usage they cover).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    /// Start of the usage the charge is for. Usually an hour or a day;
    /// fees run over the month (AWS writes their end as `23:59:59`).
    pub usage_start: DateTime<Utc>,
    /// End of the usage, exclusive.
    pub usage_end: DateTime<Utc>,
    /// The invoice month the line belongs to.
    pub billing_month: Month,
    pub payer_account: String,
    pub usage_account: String,
    /// AWS product code, e.g. `AmazonEC2`.
    pub service: String,
    pub usage_type: String,
    pub operation: String,
    pub resource_id: Option<String>,
    pub region: Option<String>,
    pub availability_zone: Option<String>,
    pub line_type: LineType,
    pub description: Option<String>,
    pub currency: Currency,
    pub unblended: Decimal,
    pub net_unblended: Decimal,
    pub amortized: Decimal,
    /// The on-demand public price of the line, where the source gives one.
    pub list_cost: Option<Decimal>,
    pub usage_amount: Decimal,
    pub usage_unit: Option<String>,
    /// EC2 instance type, RDS instance class or cache node type.
    pub instance_type: Option<String>,
    /// Reservation or Savings Plan ARN for covered usage and fees.
    pub commitment_id: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The tenant named by the configured tenant tag, if any.
    pub tenant: Option<TenantId>,
    /// Cost Explorer marks recent days as estimated until they are final.
    pub estimated: bool,
    pub source: CostSource,
    /// The cloud that charged the line when it is not AWS (FOCUS exports can
    /// hold several); `None` is AWS.
    pub provider: Option<String>,
}

impl CostLine {
    /// Checks invariants that no reader should be able to break.
    pub fn validate(&self) -> Result<(), ValidationError> {
        Self::check(&self.service, self.usage_start, self.usage_end, self.billing_month)
    }

    /// The invariants of a line's service and period, for readers that hold
    /// lines as columns rather than as `CostLine`s: a product code, an end
    /// after the start, both from 1970 through 9999, and a start within a
    /// month of its billing month.
    pub fn check(service: &str, usage_start: DateTime<Utc>, usage_end: DateTime<Utc>, billing_month: Month) -> Result<(), ValidationError> {
        Self::check_ms(service, usage_start.timestamp_millis(), usage_end.timestamp_millis(), billing_month)
    }

    /// [`CostLine::check`] on milliseconds since the epoch (readers holding columns).
    pub fn check_ms(service: &str, start_ms: i64, end_ms: i64, billing_month: Month) -> Result<(), ValidationError> {
        let time = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(|| format!("{ms} ms since 1970"), |t| t.to_rfc3339());
        if service.trim().is_empty() {
            return Err(ValidationError::new("service", service, "a non-empty AWS product code"));
        }
        for (what, ms) in [("usage start", start_ms), ("usage end", end_ms)] {
            if !(crate::FIRST_INSTANT_MS..crate::END_INSTANT_MS).contains(&ms) {
                return Err(ValidationError::new(what, time(ms), "a time from 1970 through 9999"));
            }
        }
        if end_ms <= start_ms {
            return Err(ValidationError::new("usage period", format!("{}/{}", time(start_ms), time(end_ms)), "an end after the start"));
        }
        let near = Duration::days(31).num_milliseconds();
        if start_ms < billing_month.start().timestamp_millis() - near || start_ms >= billing_month.end().timestamp_millis() + near {
            return Err(ValidationError::new("usage period", time(start_ms), format!("a usage start near its billing month {billing_month}")));
        }
        Ok(())
    }

    /// The finest period the line can be split over: its hour when it lies
    /// within one clock hour, its day when within one UTC day, else its month.
    pub fn granularity(&self) -> Granularity {
        let last = self.usage_end - Duration::nanoseconds(1);
        if floor_hour(self.usage_start) == floor_hour(last) {
            Granularity::Hour
        } else if self.usage_start.date_naive() == last.date_naive() {
            Granularity::Day
        } else {
            Granularity::Month
        }
    }

    /// The clock hour the line's usage starts in.
    pub fn hour(&self) -> DateTime<Utc> {
        floor_hour(self.usage_start)
    }

    /// The UTC day the line's usage starts on.
    pub fn day(&self) -> NaiveDate {
        self.usage_start.date_naive()
    }
}

fn floor_hour(ts: DateTime<Utc>) -> DateTime<Utc> {
    ts.duration_trunc(Duration::hours(1)).expect("hours truncate within range")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(start: &str, end: &str) -> CostLine {
        let ts = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        CostLine {
            usage_start: ts(start),
            usage_end: ts(end),
            billing_month: Month::parse("2018-10").unwrap(),
            payer_account: "1".into(),
            usage_account: "1".into(),
            service: "AmazonEC2".into(),
            usage_type: "HeavyUsage:c4.large".into(),
            operation: "RunInstances".into(),
            resource_id: None,
            region: None,
            availability_zone: None,
            line_type: LineType::RiFee,
            description: None,
            currency: Currency::USD,
            unblended: Decimal::ONE,
            net_unblended: Decimal::ONE,
            amortized: Decimal::ONE,
            list_cost: None,
            usage_amount: Decimal::ONE,
            usage_unit: None,
            instance_type: None,
            commitment_id: None,
            tags: BTreeMap::new(),
            tenant: None,
            estimated: false,
            source: CostSource::Cur,
            provider: None,
        }
    }

    #[test]
    fn an_hourly_line_splits_by_its_hour() {
        let l = line("2018-10-01T05:00:00Z", "2018-10-01T06:00:00Z");
        assert_eq!(l.granularity(), Granularity::Hour);
        assert_eq!(l.hour().to_rfc3339(), "2018-10-01T05:00:00+00:00");
    }

    #[test]
    fn a_daily_line_splits_by_its_day() {
        assert_eq!(line("2018-10-01T00:00:00Z", "2018-10-02T00:00:00Z").granularity(), Granularity::Day);
    }

    #[test]
    fn a_fee_running_to_23_59_59_of_the_month_end_splits_over_the_month() {
        let l = line("2018-10-09T21:40:47Z", "2018-10-31T23:59:59Z");
        assert_eq!(l.granularity(), Granularity::Month);
        assert!(l.validate().is_ok());
    }

    #[test]
    fn a_line_ending_before_it_starts_is_invalid() {
        assert!(line("2018-10-02T00:00:00Z", "2018-10-01T00:00:00Z").validate().is_err());
    }

    #[test]
    fn cur_line_type_names_map_to_their_kinds_and_unknown_ones_to_other() {
        assert_eq!(LineType::from_cur("RIFee"), LineType::RiFee);
        assert_eq!(LineType::from_cur("SavingsPlanNegation"), LineType::SavingsPlanNegation);
        assert_eq!(LineType::from_cur("EdpDiscount"), LineType::Other);
        for t in LineType::ALL {
            assert_eq!(t.as_str().parse::<LineType>().unwrap(), t);
        }
    }
}
