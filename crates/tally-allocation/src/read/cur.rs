//! AWS Cost and Usage Reports: CUR 2.0 Parquet (MAP columns), legacy CUR
//! in Athena snake_case Parquet, and legacy CSV with `lineItem/...` headers,
//! plain or gzip. Columns are addressed by name; absent optional columns
//! are null.

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;
use tally_domain::{CostLine, CostSource, Currency, LineType, Month};

use super::cols::{MapCol, NumCol, TextCol, TimeCol, athena_name};
use super::{FileLines, ReadError, ReadOptions, bad_tag_warning, collect_columns, convert_currencies, scan, tenant_of};

const REQUIRED: &[&str] = &[
    "line_item_usage_start_date",
    "line_item_usage_end_date",
    "line_item_product_code",
    "line_item_line_item_type",
    "line_item_unblended_cost",
    "line_item_currency_code",
];

const OPTIONAL: &[&str] = &[
    "bill_billing_period_start_date",
    "bill_payer_account_id",
    "line_item_usage_account_id",
    "line_item_usage_type",
    "line_item_operation",
    "line_item_resource_id",
    "line_item_availability_zone",
    "line_item_line_item_description",
    "line_item_net_unblended_cost",
    "line_item_usage_amount",
    "pricing_unit",
    "pricing_public_on_demand_cost",
    "product_instance_type",
    "product_region_code",
    "product_region",
    "product",
    "resource_tags",
    "reservation_reservation_a_r_n",
    "reservation_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
    "reservation_unused_recurring_fee",
    "savings_plan_savings_plan_a_r_n",
    "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment",
];

/// The parts of a CUR line that AWS's amortized (effective) cost is built from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EffectiveCostParts {
    pub reservation_effective_cost: Option<Decimal>,
    pub savings_plan_effective_cost: Option<Decimal>,
    pub reservation_unused_amortized_upfront_fee: Option<Decimal>,
    pub reservation_unused_recurring_fee: Option<Decimal>,
    pub savings_plan_total_commitment_to_date: Option<Decimal>,
    pub savings_plan_used_commitment: Option<Decimal>,
}

/// AWS's amortized cost of a line: covered usage takes the effective cost of
/// its reservation or Savings Plan; an RI fee keeps only its unused
/// amortized upfront and unused recurring fee; a Savings Plan's recurring fee
/// keeps only its unused commitment; negations and upfront fees are zero
/// (the upfront is spread over the covered usage instead).
pub fn amortized_cost(line_type: LineType, unblended: Decimal, p: &EffectiveCostParts) -> Decimal {
    let z = |v: Option<Decimal>| v.unwrap_or(Decimal::ZERO);
    match line_type {
        LineType::DiscountedUsage => z(p.reservation_effective_cost),
        LineType::SavingsPlanCoveredUsage => z(p.savings_plan_effective_cost),
        LineType::RiFee => z(p.reservation_unused_amortized_upfront_fee) + z(p.reservation_unused_recurring_fee),
        LineType::SavingsPlanRecurringFee => z(p.savings_plan_total_commitment_to_date) - z(p.savings_plan_used_commitment),
        LineType::SavingsPlanNegation | LineType::SavingsPlanUpfrontFee => Decimal::ZERO,
        _ => unblended,
    }
}

/// As [`amortized_cost`], knowing whether the line belongs to a reservation:
/// an RI's upfront `Fee` is spread over the usage it covers, so it is zero.
pub fn amortized_cost_of(line_type: LineType, unblended: Decimal, p: &EffectiveCostParts, reservation: bool) -> Decimal {
    if line_type == LineType::Fee && reservation { Decimal::ZERO } else { amortized_cost(line_type, unblended, p) }
}

/// Reads one CUR file into billing lines.
pub fn read_cur(path: &Path, opts: &ReadOptions) -> Result<FileLines, ReadError> {
    let (lf, _guard) = scan(path)?;
    let wanted: Vec<&str> = REQUIRED.iter().chain(OPTIONAL).copied().collect();
    let df = collect_columns(path, lf, athena_name, &wanted, Some("resource_tags_"))?;
    for req in REQUIRED {
        if df.column(req).is_err() {
            return Err(ReadError::column(path, req, "required column is missing: this does not look like a Cost and Usage Report"));
        }
    }
    let e = |c: &str| {
        let c = c.to_owned();
        move |m: String| ReadError::column(path, &c, m)
    };
    let text = |c: &'static str| TextCol::of(&df, c).map_err(e(c));
    let num = |c: &'static str| NumCol::of(&df, c).map_err(e(c));
    let time = |c: &'static str| TimeCol::of(&df, c).map_err(e(c));

    let start = time("line_item_usage_start_date")?;
    let end = time("line_item_usage_end_date")?;
    let billing_start = time("bill_billing_period_start_date")?;
    let product_code = text("line_item_product_code")?;
    let line_type = text("line_item_line_item_type")?;
    let unblended = num("line_item_unblended_cost")?;
    let net = num("line_item_net_unblended_cost")?;
    let currency = text("line_item_currency_code")?;
    let payer = text("bill_payer_account_id")?;
    let account = text("line_item_usage_account_id")?;
    let usage_type = text("line_item_usage_type")?;
    let operation = text("line_item_operation")?;
    let resource = text("line_item_resource_id")?;
    let az = text("line_item_availability_zone")?;
    let description = text("line_item_line_item_description")?;
    let amount = num("line_item_usage_amount")?;
    let unit = text("pricing_unit")?;
    let list = num("pricing_public_on_demand_cost")?;
    let instance_type = text("product_instance_type")?;
    let region_code = text("product_region_code")?;
    let region = text("product_region")?;
    let product = MapCol::of(&df, "product").map_err(e("product"))?;
    let tags_map = MapCol::of(&df, "resource_tags").map_err(e("resource_tags"))?;
    let ri_arn = text("reservation_reservation_a_r_n")?;
    let sp_arn = text("savings_plan_savings_plan_a_r_n")?;
    let parts = [
        num("reservation_effective_cost")?,
        num("savings_plan_savings_plan_effective_cost")?,
        num("reservation_unused_amortized_upfront_fee_for_billing_period")?,
        num("reservation_unused_recurring_fee")?,
        num("savings_plan_total_commitment_to_date")?,
        num("savings_plan_used_commitment")?,
    ];
    let part_names = [
        "reservation_effective_cost",
        "savings_plan_savings_plan_effective_cost",
        "reservation_unused_amortized_upfront_fee_for_billing_period",
        "reservation_unused_recurring_fee",
        "savings_plan_total_commitment_to_date",
        "savings_plan_used_commitment",
    ];
    let tag_columns: Vec<(String, TextCol)> = df
        .get_column_names()
        .into_iter()
        .filter(|n| n.starts_with("resource_tags_"))
        .map(|n| Ok((n["resource_tags_".len()..].to_owned(), TextCol::of(&df, n.as_str()).map_err(e(n.as_str()))?)))
        .collect::<Result<_, ReadError>>()?;

    let mut lines = Vec::with_capacity(df.height());
    let mut bad_tags = BTreeMap::new();
    let mut currencies: BTreeMap<String, Currency> = BTreeMap::new();
    for i in 0..df.height() {
        let row = i + 1;
        let cell = |c: &str| {
            let c = c.to_owned();
            move |m: String| ReadError::cell(path, row, &c, m)
        };
        let required_time = |col: &TimeCol, name: &str| -> Result<_, ReadError> {
            col.get(i).map_err(cell(name))?.ok_or_else(|| ReadError::cell(path, row, name, "missing value"))
        };
        let usage_start = required_time(&start, "line_item_usage_start_date")?;
        let usage_end = required_time(&end, "line_item_usage_end_date")?;
        let service = product_code.get(i).ok_or_else(|| ReadError::cell(path, row, "line_item_product_code", "missing value"))?;
        let kind = LineType::from_cur(line_type.get(i).unwrap_or_default());
        let cost = unblended.get(i).map_err(cell("line_item_unblended_cost"))?.unwrap_or(Decimal::ZERO);
        let code = currency.get(i).ok_or_else(|| ReadError::cell(path, row, "line_item_currency_code", "missing value"))?;
        let cur = match currencies.get(code) {
            Some(c) => *c,
            None => {
                let c = Currency::parse(code).map_err(|_| ReadError::cell(path, row, "line_item_currency_code", format!("unknown currency {code:?}")))?;
                currencies.insert(code.to_owned(), c);
                c
            }
        };
        let mut p = EffectiveCostParts::default();
        let slots = [
            &mut p.reservation_effective_cost,
            &mut p.savings_plan_effective_cost,
            &mut p.reservation_unused_amortized_upfront_fee,
            &mut p.reservation_unused_recurring_fee,
            &mut p.savings_plan_total_commitment_to_date,
            &mut p.savings_plan_used_commitment,
        ];
        for ((slot, col), name) in slots.into_iter().zip(&parts).zip(part_names) {
            *slot = col.get(i).map_err(cell(name))?;
        }
        let billing_month = match billing_start.get(i).map_err(cell("bill_billing_period_start_date"))? {
            Some(t) => Month::of(t),
            None => Month::of(usage_start),
        };
        let product_attrs = product.get(i).map_err(cell("product"))?;
        let mut tags = tags_map.get(i).map_err(cell("resource_tags"))?;
        for (key, col) in &tag_columns {
            if let Some(v) = col.get(i) {
                tags.insert(key.clone(), v.to_owned());
            }
        }
        let tenant = tenant_of(&tags, opts, &mut bad_tags);
        let az_value = az.get(i).map(str::to_owned);
        let region_value = region_code
            .get(i)
            .or_else(|| product_attrs.get("region_code").map(String::as_str))
            .or_else(|| product_attrs.get("region").map(String::as_str))
            .or_else(|| region.get(i))
            .map(str::to_owned)
            .or_else(|| az_value.as_ref().map(|z| z.trim_end_matches(|c: char| c.is_ascii_alphabetic()).to_owned()));
        let line = CostLine {
            usage_start,
            usage_end,
            billing_month,
            payer_account: payer.get(i).unwrap_or_default().to_owned(),
            usage_account: account.get(i).or(payer.get(i)).unwrap_or_default().to_owned(),
            service: service.to_owned(),
            usage_type: usage_type.get(i).unwrap_or_default().to_owned(),
            operation: operation.get(i).unwrap_or_default().to_owned(),
            resource_id: resource.get(i).map(str::to_owned),
            region: region_value,
            availability_zone: az_value,
            line_type: kind,
            description: description.get(i).map(str::to_owned),
            currency: cur,
            unblended: cost,
            net_unblended: net.get(i).map_err(cell("line_item_net_unblended_cost"))?.unwrap_or(cost),
            amortized: amortized_cost_of(kind, cost, &p, ri_arn.get(i).is_some()),
            list_cost: list.get(i).map_err(cell("pricing_public_on_demand_cost"))?,
            usage_amount: amount.get(i).map_err(cell("line_item_usage_amount"))?.unwrap_or(Decimal::ZERO),
            usage_unit: unit.get(i).map(str::to_owned),
            instance_type: instance_type
                .get(i)
                .or_else(|| product_attrs.get("instance_type").map(String::as_str))
                .or_else(|| product_attrs.get("instanceType").map(String::as_str))
                .map(str::to_owned),
            commitment_id: ri_arn.get(i).or(sp_arn.get(i)).map(str::to_owned),
            tags,
            tenant,
            estimated: false,
            source: CostSource::Cur,
            provider: None,
        };
        line.validate().map_err(|v| ReadError::cell(path, row, "line_item_usage_end_date", v.to_string()))?;
        lines.push(line);
    }
    convert_currencies(path, &mut lines, opts)?;
    let warnings = bad_tag_warning(&bad_tags, &opts.tenant_tag_key).into_iter().collect();
    Ok(FileLines { file: path.to_path_buf(), lines, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<Decimal> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_ri_fee_amortizes_to_its_unused_upfront_and_unused_recurring_fee() {
        let p = EffectiveCostParts {
            reservation_unused_amortized_upfront_fee: d("22.3369863"),
            reservation_unused_recurring_fee: d("22.32"),
            ..Default::default()
        };
        assert_eq!(amortized_cost(LineType::RiFee, "22.32".parse().unwrap(), &p), "44.6569863".parse::<Decimal>().unwrap());
    }

    #[test]
    fn covered_usage_takes_the_effective_cost_of_its_commitment() {
        let p = EffectiveCostParts { reservation_effective_cost: d("0.05145662"), savings_plan_effective_cost: d("0.07"), ..Default::default() };
        assert_eq!(amortized_cost(LineType::DiscountedUsage, Decimal::ZERO, &p), "0.05145662".parse::<Decimal>().unwrap());
        assert_eq!(amortized_cost(LineType::SavingsPlanCoveredUsage, "0.192".parse().unwrap(), &p), "0.07".parse::<Decimal>().unwrap());
    }

    #[test]
    fn a_savings_plan_fee_keeps_only_the_unused_commitment_and_negations_are_zero() {
        let p = EffectiveCostParts { savings_plan_total_commitment_to_date: d("10"), savings_plan_used_commitment: d("7.5"), ..Default::default() };
        assert_eq!(amortized_cost(LineType::SavingsPlanRecurringFee, "10".parse().unwrap(), &p), "2.5".parse::<Decimal>().unwrap());
        assert_eq!(amortized_cost(LineType::SavingsPlanNegation, "-0.192".parse().unwrap(), &p), Decimal::ZERO);
        assert_eq!(amortized_cost(LineType::SavingsPlanUpfrontFee, "1000".parse().unwrap(), &p), Decimal::ZERO);
        assert_eq!(amortized_cost(LineType::Usage, "1.5".parse().unwrap(), &p), "1.5".parse::<Decimal>().unwrap());
    }
}
