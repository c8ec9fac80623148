//! The FOCUS 1.2 export of imported billing lines, with the tenant added to
//! `Tags` (`tally:tenant`) wherever a line belongs wholly to one tenant.
//!
//! Lines that the allocation splits among tenants keep their own tags; the
//! split itself is in the finance export, not here.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tally_domain::{CostLine, LineType};
use tally_parquet::{ColumnData, ColumnType, ParquetWriter};

/// One FOCUS column: its name and how it is typed in Parquet.
enum Kind {
    Text,
    Number,
    Time,
}

const COLUMNS: &[(&str, Kind)] = &[
    ("AvailabilityZone", Kind::Text),
    ("BilledCost", Kind::Number),
    ("BillingAccountId", Kind::Text),
    ("BillingAccountName", Kind::Text),
    ("BillingAccountType", Kind::Text),
    ("BillingCurrency", Kind::Text),
    ("BillingPeriodEnd", Kind::Time),
    ("BillingPeriodStart", Kind::Time),
    ("CapacityReservationId", Kind::Text),
    ("CapacityReservationStatus", Kind::Text),
    ("ChargeCategory", Kind::Text),
    ("ChargeClass", Kind::Text),
    ("ChargeDescription", Kind::Text),
    ("ChargeFrequency", Kind::Text),
    ("ChargePeriodEnd", Kind::Time),
    ("ChargePeriodStart", Kind::Time),
    ("CommitmentDiscountCategory", Kind::Text),
    ("CommitmentDiscountId", Kind::Text),
    ("CommitmentDiscountName", Kind::Text),
    ("CommitmentDiscountQuantity", Kind::Number),
    ("CommitmentDiscountStatus", Kind::Text),
    ("CommitmentDiscountType", Kind::Text),
    ("CommitmentDiscountUnit", Kind::Text),
    ("ConsumedQuantity", Kind::Number),
    ("ConsumedUnit", Kind::Text),
    ("ContractedCost", Kind::Number),
    ("ContractedUnitPrice", Kind::Number),
    ("EffectiveCost", Kind::Number),
    ("InvoiceId", Kind::Text),
    ("InvoiceIssuerName", Kind::Text),
    ("ListCost", Kind::Number),
    ("ListUnitPrice", Kind::Number),
    ("PricingCategory", Kind::Text),
    ("PricingCurrency", Kind::Text),
    ("PricingCurrencyContractedUnitPrice", Kind::Number),
    ("PricingCurrencyEffectiveCost", Kind::Number),
    ("PricingCurrencyListUnitPrice", Kind::Number),
    ("PricingQuantity", Kind::Number),
    ("PricingUnit", Kind::Text),
    ("ProviderName", Kind::Text),
    ("PublisherName", Kind::Text),
    ("RegionId", Kind::Text),
    ("RegionName", Kind::Text),
    ("ResourceId", Kind::Text),
    ("ResourceName", Kind::Text),
    ("ResourceType", Kind::Text),
    ("ServiceCategory", Kind::Text),
    ("ServiceName", Kind::Text),
    ("ServiceSubcategory", Kind::Text),
    ("SkuId", Kind::Text),
    ("SkuMeter", Kind::Text),
    ("SkuPriceDetails", Kind::Text),
    ("SkuPriceId", Kind::Text),
    ("SubAccountId", Kind::Text),
    ("SubAccountName", Kind::Text),
    ("SubAccountType", Kind::Text),
    ("Tags", Kind::Text),
];

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Number(Decimal),
    Time(DateTime<Utc>),
}

impl Cell {
    fn text(s: impl Into<String>) -> Self {
        Self::Text(s.into())
    }

    fn opt(s: Option<&str>) -> Self {
        s.filter(|s| !s.is_empty()).map_or(Self::Null, |s| Self::Text(s.to_owned()))
    }
}

/// (name, category, subcategory, resource type) of an AWS product code: the
/// domain's one table, with the resource type told apart by usage type where
/// one service bills several kinds of resource.
fn service(code: &str, usage_type: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    let Some(s) = tally_domain::aws_service(code) else { return ("", "Other", "Other (Other)", "Resource") };
    let resource_type = match code {
        "AmazonEC2" if usage_type.contains("EBS:") => "Volume",
        "AmazonEC2" if usage_type.contains("DataTransfer") => "Network Interface",
        "AmazonRDS" if usage_type.contains("Storage") || usage_type.contains("Backup") => "DB Storage",
        _ => s.resource_type,
    };
    (s.name, s.category, s.subcategory, resource_type)
}

/// A unit in FOCUS's UnitFormat: AWS's `Hrs` is `Hours`, `GB-Mo` is `GB-Months`.
pub fn focus_unit(unit: &str) -> Option<String> {
    let u = unit.trim();
    if u.is_empty() || u == "N/A" {
        return None;
    }
    let mapped = match u {
        "Hrs" | "Hour" | "hours" => "Hours".to_owned(),
        "GB-Mo" | "GB-Month" | "GB-month" => "GB-Months".to_owned(),
        "Requests" | "Request" => u.to_owned(),
        _ => {
            let (base, time) = match u.rsplit_once('-') {
                Some((b, "Hrs" | "Hour" | "Hours")) => (b, Some("Hours")),
                Some((b, "Mo" | "Month" | "Months")) => (b, Some("Months")),
                Some((b, "Day" | "Days")) => (b, Some("Days")),
                _ => (u, None),
            };
            let clean: String = base
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == ' ' { c } else { ' ' })
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if clean.is_empty() || !clean.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return None;
            }
            match time {
                Some(t) => format!("{clean}-{t}"),
                None => clean,
            }
        }
    };
    Some(mapped)
}

fn region_name(id: &str) -> Option<&'static str> {
    Some(match id {
        "us-east-1" => "US East (N. Virginia)",
        "us-east-2" => "US East (Ohio)",
        "us-west-1" => "US West (N. California)",
        "us-west-2" => "US West (Oregon)",
        "eu-west-1" => "Europe (Ireland)",
        "eu-west-2" => "Europe (London)",
        "eu-central-1" => "Europe (Frankfurt)",
        "ap-northeast-1" => "Asia Pacific (Tokyo)",
        "ap-southeast-1" => "Asia Pacific (Singapore)",
        "ap-southeast-2" => "Asia Pacific (Sydney)",
        "ap-south-1" => "Asia Pacific (Mumbai)",
        "sa-east-1" => "South America (Sao Paulo)",
        "ca-central-1" => "Canada (Central)",
        _ => return None,
    })
}

/// The FOCUS rows of a line, in [`COLUMNS`] order. A purchase whose
/// amortized cost is not zero (an RI or Savings Plan fee with unused
/// commitment) becomes two rows, as FOCUS models it: the purchase (billed,
/// effective cost 0) and the unused commitment (usage, billed 0).
pub fn rows(l: &CostLine) -> Vec<Vec<Cell>> {
    let purchase = matches!(l.line_type, LineType::RiFee | LineType::SavingsPlanRecurringFee | LineType::SavingsPlanUpfrontFee | LineType::Fee);
    if purchase && !l.amortized.is_zero() {
        let mut bought = l.clone();
        bought.amortized = Decimal::ZERO;
        let mut unused = l.clone();
        unused.unblended = Decimal::ZERO;
        unused.net_unblended = Decimal::ZERO;
        unused.list_cost = Some(Decimal::ZERO);
        vec![row(&bought, false), row(&unused, true)]
    } else {
        vec![row(l, false)]
    }
}

fn row(l: &CostLine, unused_commitment: bool) -> Vec<Cell> {
    let (svc_name, category, subcategory, resource_type) = service(&l.service, &l.usage_type);
    // The provider is also the invoice issuer: these are not marketplace charges.
    let provider = l.provider.as_deref().unwrap_or("Amazon Web Services");
    let name = if svc_name.is_empty() { l.service.as_str() } else { svc_name };
    let (charge_category, frequency) = if unused_commitment {
        ("Usage", "Usage-Based")
    } else {
        match l.line_type {
            LineType::Usage | LineType::DiscountedUsage | LineType::SavingsPlanCoveredUsage | LineType::SavingsPlanNegation => ("Usage", "Usage-Based"),
            LineType::RiFee | LineType::SavingsPlanRecurringFee => ("Purchase", "Recurring"),
            LineType::SavingsPlanUpfrontFee | LineType::Fee => ("Purchase", "One-Time"),
            LineType::Credit => ("Credit", "One-Time"),
            LineType::Refund | LineType::Other => ("Adjustment", "One-Time"),
            LineType::Tax => ("Tax", "Recurring"),
        }
    };
    let usage = charge_category == "Usage";
    let commitment = matches!(
        l.line_type,
        LineType::DiscountedUsage | LineType::SavingsPlanCoveredUsage | LineType::RiFee | LineType::SavingsPlanRecurringFee | LineType::SavingsPlanUpfrontFee
    )
    .then_some(l.commitment_id.as_deref())
    .flatten();
    let savings_plan = matches!(l.line_type, LineType::SavingsPlanCoveredUsage | LineType::SavingsPlanRecurringFee | LineType::SavingsPlanUpfrontFee);
    let pricing_category = if unused_commitment {
        "Committed"
    } else {
        match l.line_type {
            LineType::DiscountedUsage | LineType::SavingsPlanCoveredUsage => "Committed",
            _ if l.usage_type.contains("SpotUsage") => "Dynamic",
            LineType::Usage | LineType::SavingsPlanNegation => "Standard",
            _ => "Other",
        }
    };
    let unit = l.usage_unit.as_deref().and_then(focus_unit);
    let has_price = usage && l.usage_amount > Decimal::ZERO && unit.is_some();
    let unit_price = |cost: Decimal| if has_price { Cell::Number((cost / l.usage_amount).round_dp(10)) } else { Cell::Null };
    let list_cost = l.list_cost.unwrap_or(l.unblended);
    let mut tags: std::collections::BTreeMap<String, String> = l.tags.clone();
    if let Some(t) = &l.tenant {
        tags.insert("tally:tenant".into(), t.to_string());
    }
    let tags_json = serde_json::to_string(&tags).unwrap_or_else(|_| "{}".into());
    let (bp_start, bp_end) = (l.billing_month.start(), l.billing_month.end());
    let account = |id: &str| if id.is_empty() { Cell::Null } else { Cell::text(id) };
    let has_sku = !l.usage_type.is_empty() && usage;
    let sku_id = format!("{}:{}", l.service, l.usage_type);
    vec![
        Cell::opt(l.availability_zone.as_deref()),
        Cell::Number(l.unblended),
        account(&l.payer_account),
        account(&l.payer_account),
        if l.payer_account.is_empty() { Cell::Null } else { Cell::text("Billing Account") },
        Cell::text(l.currency.code()),
        Cell::Time(bp_end),
        Cell::Time(bp_start),
        Cell::Null,
        Cell::Null,
        Cell::text(charge_category),
        Cell::Null,
        Cell::opt(l.description.as_deref().or(Some(l.usage_type.as_str()))),
        Cell::text(frequency),
        Cell::Time(l.usage_end),
        Cell::Time(l.usage_start),
        commitment.map_or(Cell::Null, |_| Cell::text(if savings_plan { "Spend" } else { "Usage" })),
        commitment.map_or(Cell::Null, Cell::text),
        commitment.map_or(Cell::Null, |c| Cell::text(c.rsplit('/').next().unwrap_or(c))),
        match (commitment, usage) {
            (Some(_), true) if savings_plan => Cell::Number(l.amortized),
            (Some(_), true) => Cell::Number(l.usage_amount),
            _ => Cell::Null,
        },
        match (commitment, l.line_type) {
            (Some(_), LineType::DiscountedUsage | LineType::SavingsPlanCoveredUsage) => Cell::text("Used"),
            (Some(_), _) if unused_commitment => Cell::text("Unused"),
            _ => Cell::Null,
        },
        commitment.map_or(Cell::Null, |_| Cell::text(if savings_plan { "Compute Savings Plan" } else { "Reserved Instance" })),
        match (commitment, usage) {
            (Some(_), true) => Cell::text(if savings_plan { "USD" } else { "Hours" }),
            _ => Cell::Null,
        },
        if usage && unit.is_some() { Cell::Number(l.usage_amount) } else { Cell::Null },
        if usage { Cell::opt(unit.as_deref()) } else { Cell::Null },
        Cell::Number(l.net_unblended),
        unit_price(l.net_unblended),
        Cell::Number(l.amortized),
        Cell::Null,
        Cell::text(provider),
        Cell::Number(list_cost),
        unit_price(list_cost),
        if usage { Cell::text(pricing_category) } else { Cell::Null },
        Cell::text(l.currency.code()),
        unit_price(l.net_unblended),
        Cell::Number(l.amortized),
        unit_price(list_cost),
        if has_price { Cell::Number(l.usage_amount) } else { Cell::Null },
        if has_price { Cell::opt(unit.as_deref()) } else { Cell::Null },
        Cell::text(provider),
        Cell::text(provider),
        Cell::opt(l.region.as_deref()),
        l.region.as_deref().and_then(region_name).map_or_else(|| Cell::opt(l.region.as_deref()), Cell::text),
        Cell::opt(l.resource_id.as_deref()),
        Cell::opt(l.resource_id.as_deref()),
        if l.resource_id.is_some() { Cell::text(resource_type) } else { Cell::Null },
        Cell::text(category),
        Cell::text(name),
        Cell::text(subcategory),
        if has_sku { Cell::text(sku_id.clone()) } else { Cell::Null },
        if has_sku { Cell::text(l.usage_type.clone()) } else { Cell::Null },
        Cell::Null,
        if has_sku { Cell::text(format!("{sku_id}:{}", l.operation)) } else { Cell::Null },
        account(&l.usage_account),
        account(&l.usage_account),
        if l.usage_account.is_empty() { Cell::Null } else { Cell::text("Linked Account") },
        Cell::text(tags_json),
    ]
}

fn time_text(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// FOCUS CSV (RFC 4180, exact decimals), written batch by batch.
pub struct FocusCsv<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> std::fmt::Debug for FocusCsv<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FocusCsv")
    }
}

impl<W: Write> FocusCsv<W> {
    /// Starts the file with its header row.
    pub fn new(out: W) -> Result<Self, csv::Error> {
        let mut out = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
        out.write_record(COLUMNS.iter().map(|(n, _)| *n))?;
        Ok(Self { out })
    }

    /// Appends the rows of `lines`.
    pub fn write(&mut self, lines: &[CostLine]) -> Result<(), csv::Error> {
        for cells in lines.iter().flat_map(rows) {
            let cells: Vec<String> = cells
                .into_iter()
                .map(|c| match c {
                    Cell::Null => String::new(),
                    Cell::Text(s) => crate::export::neutralise(&s).into_owned(),
                    Cell::Number(d) => d.normalize().to_string(),
                    Cell::Time(t) => time_text(&t),
                })
                .collect();
            self.out.write_record(&cells)?;
        }
        Ok(())
    }

    /// Flushes the file and returns the writer.
    pub fn finish(self) -> Result<W, csv::Error> {
        self.out.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }
}

/// The lines as FOCUS CSV (RFC 4180, exact decimals).
pub fn focus_csv(lines: &[CostLine]) -> Result<Vec<u8>, csv::Error> {
    let mut w = FocusCsv::new(Vec::new())?;
    w.write(lines)?;
    w.finish()
}

/// Digits after the point of FOCUS Parquet's numbers: `DECIMAL(38, 18)`,
/// like the columnar store, so every amount AWS bills is written exactly.
const FOCUS_SCALE: u8 = 18;

/// A decimal as an unscaled integer at [`FOCUS_SCALE`] places (half away
/// from zero beyond them); `None` beyond 38 digits, which no amount Tally
/// takes in reaches.
fn unscaled18(d: Decimal) -> Option<i128> {
    let (m, scale) = (d.mantissa(), d.scale());
    let target = u32::from(FOCUS_SCALE);
    if scale <= target {
        m.checked_mul(10i128.pow(target - scale))
    } else {
        let div = 10i128.pow(scale - target);
        let (q, r) = (m / div, m % div);
        Some(if r.abs() * 2 >= div { q + m.signum() } else { q })
    }
}

/// FOCUS Parquet (numbers as exact DECIMAL(38, 18), times as UTC timestamps), one row group per batch.
#[derive(Debug)]
pub struct FocusParquet<W: Write + Send> {
    out: ParquetWriter<W>,
}

impl<W: Write + Send> FocusParquet<W> {
    pub fn new(out: W) -> Result<Self, tally_parquet::Error> {
        let schema: Vec<(&str, ColumnType)> = COLUMNS
            .iter()
            .map(|(n, k)| {
                (
                    *n,
                    match k {
                        Kind::Text => ColumnType::Utf8,
                        Kind::Number => ColumnType::Decimal128(FOCUS_SCALE),
                        Kind::Time => ColumnType::TimestampMillis,
                    },
                )
            })
            .collect();
        Ok(Self { out: ParquetWriter::to_writer(out, &schema)? })
    }

    /// Appends the rows of `lines` as one row group.
    pub fn write(&mut self, lines: &[CostLine]) -> Result<(), tally_parquet::Error> {
        let rows: Vec<Vec<Cell>> = lines.iter().flat_map(rows).collect();
        if rows.is_empty() {
            return Ok(());
        }
        let number = |i: usize, name: &str| -> Result<ColumnData<'_>, tally_parquet::Error> {
            let values = rows
                .iter()
                .map(|r| match &r[i] {
                    Cell::Number(d) => unscaled18(*d).map(Some).ok_or_else(|| tally_parquet::Error::Shape(format!("{name}: {d} does not fit DECIMAL(38, 18)"))),
                    _ => Ok(None),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ColumnData::Decimal128(values, FOCUS_SCALE))
        };
        let columns: Vec<ColumnData> = COLUMNS
            .iter()
            .enumerate()
            .map(|(i, (name, kind))| match kind {
                Kind::Text => Ok(ColumnData::Utf8(rows.iter().map(|r| if let Cell::Text(s) = &r[i] { Some(s.as_str()) } else { None }).collect())),
                Kind::Number => number(i, name),
                Kind::Time => {
                    Ok(ColumnData::TimestampMillis(rows.iter().map(|r| if let Cell::Time(t) = &r[i] { Some(t.timestamp_millis()) } else { None }).collect()))
                }
            })
            .collect::<Result<_, _>>()?;
        self.out.write_row_group(&columns)
    }

    /// Writes the footer and returns the writer.
    pub fn finish(self) -> Result<W, tally_parquet::Error> {
        self.out.into_inner()
    }
}

/// The lines as a FOCUS Parquet file.
pub fn focus_parquet(lines: &[CostLine], path: &Path) -> Result<(), tally_parquet::Error> {
    let mut w = FocusParquet::new(std::fs::File::create(path)?)?;
    for chunk in lines.chunks(100_000) {
        w.write(chunk)?;
    }
    w.finish()?;
    Ok(())
}

/// The column names, in order.
pub fn columns() -> Vec<&'static str> {
    COLUMNS.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::focus_unit;

    #[test]
    fn aws_units_become_focus_units() {
        assert_eq!(focus_unit("Hrs").as_deref(), Some("Hours"));
        assert_eq!(focus_unit("GB-Mo").as_deref(), Some("GB-Months"));
        assert_eq!(focus_unit("LCU-Hrs").as_deref(), Some("LCU-Hours"));
        assert_eq!(focus_unit("NodeUsage").as_deref(), Some("NodeUsage"));
        assert_eq!(focus_unit("N/A"), None);
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use tally_domain::{CostSource, Currency, Month};

    #[test]
    fn an_ri_fee_with_unused_commitment_is_a_purchase_and_an_unused_usage_row() {
        let l = CostLine {
            usage_start: "2018-10-01T00:00:00Z".parse().unwrap(),
            usage_end: "2018-10-31T23:59:59Z".parse().unwrap(),
            billing_month: Month::parse("2018-10").unwrap(),
            payer_account: "1".into(),
            usage_account: "1".into(),
            service: "AmazonEC2".into(),
            usage_type: "HeavyUsage:c4.large".into(),
            operation: "RunInstances".into(),
            resource_id: None,
            region: Some("us-east-1".into()),
            availability_zone: None,
            line_type: LineType::RiFee,
            description: None,
            currency: Currency::USD,
            unblended: "22.32".parse().unwrap(),
            net_unblended: "22.32".parse().unwrap(),
            amortized: "44.6569863".parse().unwrap(),
            list_cost: None,
            usage_amount: "744".parse().unwrap(),
            usage_unit: Some("Hrs".into()),
            instance_type: None,
            commitment_id: Some("arn:aws:ec2:us-east-1:1:reserved-instances/abc".into()),
            tags: Default::default(),
            tenant: None,
            estimated: false,
            source: CostSource::Cur,
            provider: None,
        };
        let r = rows(&l);
        assert_eq!(r.len(), 2);
        let col = |name: &str| columns().iter().position(|c| *c == name).unwrap();
        assert_eq!(r[0][col("ChargeCategory")], Cell::Text("Purchase".into()));
        assert_eq!(r[0][col("EffectiveCost")], Cell::Number(Decimal::ZERO));
        assert_eq!(r[1][col("ChargeCategory")], Cell::Text("Usage".into()));
        assert_eq!(r[1][col("BilledCost")], Cell::Number(Decimal::ZERO));
        assert_eq!(r[1][col("CommitmentDiscountStatus")], Cell::Text("Unused".into()));
        assert_eq!(r[1][col("EffectiveCost")], Cell::Number("44.6569863".parse().unwrap()));
    }
}
