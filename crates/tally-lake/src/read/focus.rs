//! FOCUS 1.0 to 1.2 exports, CSV or Parquet. Billed cost is the unblended
//! cost, effective cost the amortized cost; the charge category and the
//! commitment discount columns give the line type.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;
use tally_domain::{CostSource, LineType};

use super::cols::Batch;
use super::lines::{Currencies, Lines, Names};
use super::{BATCH_ROWS, Batches, CONVERTERS, FileLines, ReadError, ReadOptions, ReadSummary, TenantTags, collect_lines, convert_in_order};
use crate::schema::tags_from_triples;

const REQUIRED: &[&str] = &["BilledCost", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ServiceName"];

const OPTIONAL: &[&str] = &[
    "EffectiveCost",
    "ListCost",
    "BillingPeriodStart",
    "BillingAccountId",
    "SubAccountId",
    "ProviderName",
    "ChargeClass",
    "ChargeFrequency",
    "ChargeDescription",
    "CommitmentDiscountId",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountCategory",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
    "ResourceId",
    "RegionId",
    "AvailabilityZone",
    "SkuId",
    "Tags",
    "x_ServiceCode",
    "x_UsageType",
    "x_Operation",
    "x_InstanceType",
];

/// AWS's product code for a FOCUS `ServiceName` of AWS, so FOCUS-sourced
/// lines meet the same pool rules as CUR lines (the domain's one table).
pub use tally_domain::aws_service_code;

fn line_type(category: &str, status: Option<&str>, commitment_type: Option<&str>, frequency: Option<&str>, has_commitment: bool) -> LineType {
    let savings_plan = commitment_type.is_some_and(|t| t.to_ascii_lowercase().contains("savings"));
    match category {
        "Tax" => LineType::Tax,
        "Credit" => LineType::Credit,
        "Adjustment" => LineType::Refund,
        "Purchase" if has_commitment => match (frequency.map(str::to_ascii_lowercase).as_deref(), savings_plan) {
            (Some("recurring"), true) => LineType::SavingsPlanRecurringFee,
            (Some("recurring"), false) => LineType::RiFee,
            (_, true) => LineType::SavingsPlanUpfrontFee,
            _ => LineType::Fee,
        },
        "Purchase" => LineType::Fee,
        "Usage" => match status {
            Some("Used") if savings_plan => LineType::SavingsPlanCoveredUsage,
            Some("Used") => LineType::DiscountedUsage,
            // Unused commitment: its effective cost is the commitment nobody used.
            Some("Unused") if savings_plan => LineType::SavingsPlanRecurringFee,
            Some("Unused") => LineType::RiFee,
            _ => LineType::Usage,
        },
        _ => LineType::Other,
    }
}

/// Reads one FOCUS file, batch by batch, into lake frames given to `sink`.
pub fn read_focus_batches(path: &Path, opts: &ReadOptions, sink: &mut dyn FnMut(DataFrame) -> Result<(), ReadError>) -> Result<ReadSummary, ReadError> {
    super::guarded(path, || read_focus_batches_unguarded(path, opts, sink))
}

fn read_focus_batches_unguarded(path: &Path, opts: &ReadOptions, sink: &mut dyn FnMut(DataFrame) -> Result<(), ReadError>) -> Result<ReadSummary, ReadError> {
    let wanted: Vec<&str> = REQUIRED.iter().chain(OPTIONAL).copied().collect();
    let batches = Batches::open(path, |n| n.to_owned(), &wanted, None, BATCH_ROWS)?;
    batches.require(REQUIRED, "this does not look like a FOCUS export")?;
    let mut rows = 0;
    let new_state = || (TenantTags::new(&opts.tenant_tag_key), Currencies::default());
    let convert = |state: &mut (TenantTags, Currencies), df: DataFrame| {
        let b = Batch::new(&df, path)?;
        focus_batch(&b, opts, &mut state.0, &mut state.1)
    };
    let states = convert_in_order(batches, CONVERTERS, &new_state, &convert, &mut |out: DataFrame| {
        rows += out.height();
        sink(out)
    })?;
    let mut tenants = TenantTags::new(&opts.tenant_tag_key);
    for (t, _) in states {
        tenants.absorb(t);
    }
    Ok(ReadSummary { rows, warnings: tenants.warning().into_iter().collect(), tenants: tenants.seen, metrics: Default::default() })
}

/// Reads one FOCUS file into billing lines (small files and tests).
pub fn read_focus(path: &Path, opts: &ReadOptions) -> Result<FileLines, ReadError> {
    collect_lines(path, CostSource::Focus, |sink| read_focus_batches(path, opts, sink))
}

fn focus_batch(b: &Batch<'_>, opts: &ReadOptions, tenants: &mut TenantTags, currencies: &mut Currencies) -> Result<DataFrame, ReadError> {
    let n = b.height();
    let billed = b.money("BilledCost")?;
    if let Some(i) = billed.iter().position(|v| v.is_none()) {
        return Err(b.cell(i, "BilledCost", "missing value"));
    }
    let unblended: Vec<i128> = billed.iter().map(|v| v.unwrap_or(0)).collect();
    let amortized: Vec<i128> = b.money("EffectiveCost")?.iter().zip(&unblended).map(|(e, u)| e.unwrap_or(*u)).collect();
    let list_cost: Vec<Option<i128>> = b.money("ListCost")?.iter().collect();
    let consumed = b.money("ConsumedQuantity")?;
    let pricing_quantity = b.money("PricingQuantity")?;
    let usage_amount: Vec<i128> = consumed.iter().zip(pricing_quantity.iter()).map(|(c, p)| c.or(p).unwrap_or(0)).collect();
    let service_name = b.required_text("ServiceName")?;
    let provider = b.text("ProviderName")?;
    let x_service = b.text("x_ServiceCode")?;
    let (category, status, commitment_type, frequency, commitment) = (
        b.text("ChargeCategory")?,
        b.text("CommitmentDiscountStatus")?,
        b.text("CommitmentDiscountType")?,
        b.text("ChargeFrequency")?,
        b.text("CommitmentDiscountId")?,
    );
    let (account, sub_account) = (b.text("BillingAccountId")?, b.text("SubAccountId")?);
    let (x_usage_type, sku, x_operation) = (b.text("x_UsageType")?, b.text("SkuId")?, b.text("x_Operation")?);
    let (consumed_unit, pricing_unit) = (b.text("ConsumedUnit")?, b.text("PricingUnit")?);
    let tags_json = b.text("Tags")?;

    let mut is_aws = Vec::with_capacity(n);
    let mut service = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut triples: Vec<(IdxSize, String, String)> = Vec::new();
    let mut tenant: Vec<Option<String>> = Vec::with_capacity(n);
    let mut parsed_tags: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for i in 0..n {
        let name = service_name.get(i).unwrap_or_default();
        let aws = provider.get(i).is_none_or(|p| p.eq_ignore_ascii_case("AWS") || p.starts_with("Amazon"));
        is_aws.push(aws);
        service.push(x_service.get(i).or_else(|| if aws { aws_service_code(name) } else { None }).unwrap_or(name));
        kind.push(line_type(category.get(i).unwrap_or("Usage"), status.get(i), commitment_type.get(i), frequency.get(i), commitment.get(i).is_some()));
        let mut this_tenant = None;
        if let Some(json) = tags_json.get(i) {
            if !parsed_tags.contains_key(json) {
                let value: serde_json::Value = serde_json::from_str(json).map_err(|err| b.cell(i, "Tags", format!("not a JSON object: {err}")))?;
                let obj = value.as_object().ok_or_else(|| b.cell(i, "Tags", "not a JSON object"))?;
                parsed_tags.insert(json, obj.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect());
            }
            for (k, v) in &parsed_tags[json] {
                triples.push((i as IdxSize, k.clone(), v.clone()));
                if this_tenant.is_none() && tenants.is_tenant_key(k) {
                    this_tenant = tenants.tenant(v).map(str::to_owned);
                }
            }
        }
        tenant.push(this_tenant);
    }
    let borrowed: Vec<(IdxSize, &str, &str)> = triples.iter().map(|(i, k, v)| (*i, k.as_str(), v.as_str())).collect();
    let tags = tags_from_triples(n, &borrowed).map_err(|e| ReadError::polars(b.path, e))?;
    let text = |name: &str, values: Vec<Option<&str>>| StringChunked::from_iter_options(name.into(), values.into_iter());
    let lines = Lines {
        usage_start: b.required_times("ChargePeriodStart")?,
        usage_end: b.required_times("ChargePeriodEnd")?,
        billing_start: b.times("BillingPeriodStart")?,
        payer_account: StringChunked::from_iter_values("payer_account".into(), account.iter().map(|a| a.unwrap_or_default())),
        usage_account: StringChunked::from_iter_values(
            "usage_account".into(),
            sub_account.iter().zip(account.iter()).map(|(s, a)| s.or(a).unwrap_or_default()),
        ),
        service: StringChunked::from_iter_values("service".into(), service.iter().copied()),
        usage_type: StringChunked::from_iter_values("usage_type".into(), x_usage_type.iter().zip(sku.iter()).map(|(u, s)| u.or(s).unwrap_or_default())),
        operation: StringChunked::from_iter_values("operation".into(), x_operation.iter().map(|o| o.unwrap_or_default())),
        resource_id: b.text("ResourceId")?,
        region: b.text("RegionId")?,
        availability_zone: b.text("AvailabilityZone")?,
        line_type: StringChunked::from_iter_values("line_type".into(), kind.iter().map(|k| k.as_str())),
        description: b.text("ChargeDescription")?,
        currency: b.required_text("BillingCurrency")?,
        net_unblended: unblended.clone(),
        unblended,
        amortized,
        list_cost,
        usage_amount,
        usage_unit: text("usage_unit", consumed_unit.iter().zip(pricing_unit.iter()).map(|(c, p)| c.or(p)).collect()),
        instance_type: b.text("x_InstanceType")?,
        commitment_id: commitment,
        tags,
        tenant: StringChunked::from_iter_options("tenant".into(), tenant.iter().map(|t| t.as_deref())),
        provider: text("provider", (0..n).map(|i| if is_aws[i] { None } else { provider.get(i) }).collect()),
    };
    let names = Names { start: "ChargePeriodStart", end: "ChargePeriodEnd", billing_start: "BillingPeriodStart", currency: "BillingCurrency" };
    lines.finish(b, &names, opts, currencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_charge_categories_map_to_line_types() {
        assert_eq!(line_type("Usage", None, None, None, false), LineType::Usage);
        assert_eq!(line_type("Usage", Some("Used"), Some("Reservation"), None, true), LineType::DiscountedUsage);
        assert_eq!(line_type("Usage", Some("Used"), Some("Savings Plan"), None, true), LineType::SavingsPlanCoveredUsage);
        assert_eq!(line_type("Usage", Some("Unused"), Some("Reservation"), None, true), LineType::RiFee);
        assert_eq!(line_type("Purchase", None, Some("Savings Plan"), Some("Recurring"), true), LineType::SavingsPlanRecurringFee);
        assert_eq!(line_type("Purchase", None, Some("Savings Plan"), Some("One-Time"), true), LineType::SavingsPlanUpfrontFee);
        assert_eq!(line_type("Tax", None, None, None, false), LineType::Tax);
        assert_eq!(line_type("Credit", None, None, None, false), LineType::Credit);
        assert_eq!(line_type("Adjustment", None, None, None, false), LineType::Refund);
    }
}
