//! FOCUS 1.0 to 1.2 exports, CSV or Parquet. Billed cost is the unblended
//! cost, effective cost the amortized cost; the charge category and the
//! commitment discount columns give the line type.

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;
use tally_domain::{CostLine, CostSource, Currency, LineType, Month};

use super::cols::{NumCol, TextCol, TimeCol};
use super::{FileLines, ReadError, ReadOptions, bad_tag_warning, collect_columns, convert_currencies, scan, tenant_of};

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
/// lines meet the same pool rules as CUR lines.
pub fn aws_service_code(service_name: &str) -> Option<&'static str> {
    Some(match service_name {
        "Amazon Elastic Compute Cloud" => "AmazonEC2",
        "Amazon Elastic Container Service for Kubernetes" | "Amazon Elastic Kubernetes Service" => "AmazonEKS",
        "Amazon Relational Database Service" => "AmazonRDS",
        "Amazon ElastiCache" => "AmazonElastiCache",
        "Elastic Load Balancing" => "AWSELB",
        "AWS Data Transfer" => "AWSDataTransfer",
        "Amazon Simple Storage Service" => "AmazonS3",
        "AmazonCloudWatch" | "Amazon CloudWatch" => "AmazonCloudWatch",
        "Amazon Virtual Private Cloud" => "AmazonVPC",
        "Amazon Simple Queue Service" => "AWSQueueService",
        "Amazon Simple Notification Service" => "AmazonSNS",
        "Amazon CloudFront" => "AmazonCloudFront",
        "Amazon API Gateway" => "AmazonApiGateway",
        "Amazon Elastic Container Service" => "AmazonECS",
        "AWS Systems Manager" => "AWSSystemsManager",
        "AWS Lambda" => "AWSLambda",
        "Amazon DynamoDB" => "AmazonDynamoDB",
        "Amazon Route 53" => "AmazonRoute53",
        "AWS Key Management Service" => "awskms",
        "AWS CloudTrail" => "AWSCloudTrail",
        _ => return None,
    })
}

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

/// Reads one FOCUS file into billing lines.
pub fn read_focus(path: &Path, opts: &ReadOptions) -> Result<FileLines, ReadError> {
    let (lf, _guard) = scan(path)?;
    let wanted: Vec<&str> = REQUIRED.iter().chain(OPTIONAL).copied().collect();
    let df = collect_columns(path, lf, |n| n.to_owned(), &wanted, None)?;
    for req in REQUIRED {
        if df.column(req).is_err() {
            return Err(ReadError::column(path, req, "required column is missing: this does not look like a FOCUS export"));
        }
    }
    let e = |c: &str| {
        let c = c.to_owned();
        move |m: String| ReadError::column(path, &c, m)
    };
    let text = |c: &'static str| TextCol::of(&df, c).map_err(e(c));
    let num = |c: &'static str| NumCol::of(&df, c).map_err(e(c));
    let time = |c: &'static str| TimeCol::of(&df, c).map_err(e(c));

    let billed = num("BilledCost")?;
    let effective = num("EffectiveCost")?;
    let list = num("ListCost")?;
    let currency = text("BillingCurrency")?;
    let start = time("ChargePeriodStart")?;
    let end = time("ChargePeriodEnd")?;
    let billing_start = time("BillingPeriodStart")?;
    let category = text("ChargeCategory")?;
    let service_name = text("ServiceName")?;
    let provider = text("ProviderName")?;
    let account = text("BillingAccountId")?;
    let sub_account = text("SubAccountId")?;
    let frequency = text("ChargeFrequency")?;
    let description = text("ChargeDescription")?;
    let commitment = text("CommitmentDiscountId")?;
    let status = text("CommitmentDiscountStatus")?;
    let commitment_type = text("CommitmentDiscountType")?;
    let consumed = num("ConsumedQuantity")?;
    let consumed_unit = text("ConsumedUnit")?;
    let pricing_quantity = num("PricingQuantity")?;
    let pricing_unit = text("PricingUnit")?;
    let resource = text("ResourceId")?;
    let region = text("RegionId")?;
    let az = text("AvailabilityZone")?;
    let sku = text("SkuId")?;
    let tags_json = text("Tags")?;
    let x_service = text("x_ServiceCode")?;
    let x_usage_type = text("x_UsageType")?;
    let x_operation = text("x_Operation")?;
    let x_instance = text("x_InstanceType")?;

    let mut lines = Vec::with_capacity(df.height());
    let mut bad_tags = BTreeMap::new();
    let mut currencies: BTreeMap<String, Currency> = BTreeMap::new();
    for i in 0..df.height() {
        let row = i + 1;
        let cell = |c: &str| {
            let c = c.to_owned();
            move |m: String| ReadError::cell(path, row, &c, m)
        };
        let usage_start = start.get(i).map_err(cell("ChargePeriodStart"))?.ok_or_else(|| ReadError::cell(path, row, "ChargePeriodStart", "missing value"))?;
        let usage_end = end.get(i).map_err(cell("ChargePeriodEnd"))?.ok_or_else(|| ReadError::cell(path, row, "ChargePeriodEnd", "missing value"))?;
        let cost = billed.get(i).map_err(cell("BilledCost"))?.ok_or_else(|| ReadError::cell(path, row, "BilledCost", "missing value"))?;
        let code = currency.get(i).ok_or_else(|| ReadError::cell(path, row, "BillingCurrency", "missing value"))?;
        let cur = match currencies.get(code) {
            Some(c) => *c,
            None => {
                let c = Currency::parse(code).map_err(|_| ReadError::cell(path, row, "BillingCurrency", format!("unknown currency {code:?}")))?;
                currencies.insert(code.to_owned(), c);
                c
            }
        };
        let name = service_name.get(i).ok_or_else(|| ReadError::cell(path, row, "ServiceName", "missing value"))?;
        let is_aws = provider.get(i).is_none_or(|p| p.eq_ignore_ascii_case("AWS") || p.starts_with("Amazon"));
        let service = x_service.get(i).or_else(|| if is_aws { aws_service_code(name) } else { None }).unwrap_or(name);
        let kind = line_type(category.get(i).unwrap_or("Usage"), status.get(i), commitment_type.get(i), frequency.get(i), commitment.get(i).is_some());
        let tags: BTreeMap<String, String> = match tags_json.get(i) {
            None => BTreeMap::new(),
            Some(json) => {
                let value: serde_json::Value =
                    serde_json::from_str(json).map_err(|err| ReadError::cell(path, row, "Tags", format!("not a JSON object: {err}")))?;
                let obj = value.as_object().ok_or_else(|| ReadError::cell(path, row, "Tags", "not a JSON object"))?;
                obj.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect()
            }
        };
        let tenant = tenant_of(&tags, opts, &mut bad_tags);
        let billing_month = match billing_start.get(i).map_err(cell("BillingPeriodStart"))? {
            Some(t) => Month::of(t),
            None => Month::of(usage_start),
        };
        let amount = consumed.get(i).map_err(cell("ConsumedQuantity"))?.or(pricing_quantity.get(i).map_err(cell("PricingQuantity"))?);
        let line = CostLine {
            usage_start,
            usage_end,
            billing_month,
            payer_account: account.get(i).unwrap_or_default().to_owned(),
            usage_account: sub_account.get(i).or(account.get(i)).unwrap_or_default().to_owned(),
            service: service.to_owned(),
            usage_type: x_usage_type.get(i).or(sku.get(i)).unwrap_or_default().to_owned(),
            operation: x_operation.get(i).unwrap_or_default().to_owned(),
            resource_id: resource.get(i).map(str::to_owned),
            region: region.get(i).map(str::to_owned),
            availability_zone: az.get(i).map(str::to_owned),
            line_type: kind,
            description: description.get(i).map(str::to_owned),
            currency: cur,
            unblended: cost,
            net_unblended: cost,
            amortized: effective.get(i).map_err(cell("EffectiveCost"))?.unwrap_or(cost),
            list_cost: list.get(i).map_err(cell("ListCost"))?,
            usage_amount: amount.unwrap_or(Decimal::ZERO),
            usage_unit: consumed_unit.get(i).or(pricing_unit.get(i)).map(str::to_owned),
            instance_type: x_instance.get(i).map(str::to_owned),
            commitment_id: commitment.get(i).map(str::to_owned),
            tags,
            tenant,
            estimated: false,
            source: CostSource::Focus,
            provider: if is_aws { None } else { provider.get(i).map(str::to_owned) },
        };
        line.validate().map_err(|v| ReadError::cell(path, row, "ChargePeriodEnd", v.to_string()))?;
        lines.push(line);
    }
    convert_currencies(path, &mut lines, opts)?;
    let warnings = bad_tag_warning(&bad_tags, &opts.tenant_tag_key).into_iter().collect();
    Ok(FileLines { file: path.to_path_buf(), lines, warnings })
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
