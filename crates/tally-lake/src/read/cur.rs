//! AWS Cost and Usage Reports: CUR 2.0 Parquet (MAP columns), legacy CUR
//! in Athena snake_case Parquet, and legacy CSV with `lineItem/...` headers,
//! plain or gzip. Columns are addressed by name; absent optional columns
//! are null. The line-type and effective-cost rules of CUR live here, once.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;
use rust_decimal::Decimal;
use tally_domain::{CostSource, LineType};

use super::cols::{Batch, athena_name, map_entries, map_values};
use super::lines::{Currencies, Lines, Names};
use super::{BATCH_ROWS, Batches, CONVERTERS, FileLines, ReadError, ReadOptions, ReadSummary, TenantTags, collect_lines, convert_in_order};
use crate::decimal::{decimal_of, units_of};
use crate::schema::tags_from_triples;

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

/// The columns AWS's amortized (effective) cost is built from, in the order
/// of [`EffectiveCostParts`]' fields.
const PARTS: [&str; 6] = [
    "reservation_effective_cost",
    "savings_plan_savings_plan_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
    "reservation_unused_recurring_fee",
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

/// AWS's amortized cost of a line, in units of 10⁻¹⁸: covered usage takes
/// the effective cost of its reservation or Savings Plan; an RI fee keeps
/// only its unused amortized upfront and unused recurring fee; a Savings
/// Plan's recurring fee keeps only its unused commitment; negations and
/// upfront fees are zero (the upfront is spread over the covered usage
/// instead), and so is an RI's upfront `Fee` (`reservation` says the line
/// names a reservation). `parts` are in the order of [`EffectiveCostParts`].
pub fn amortized_units(line_type: LineType, unblended: i128, parts: [Option<i128>; 6], reservation: bool) -> i128 {
    let z = |i: usize| parts[i].unwrap_or(0);
    match line_type {
        LineType::DiscountedUsage => z(0),
        LineType::SavingsPlanCoveredUsage => z(1),
        LineType::RiFee => z(2) + z(3),
        LineType::SavingsPlanRecurringFee => z(4) - z(5),
        LineType::SavingsPlanNegation | LineType::SavingsPlanUpfrontFee => 0,
        LineType::Fee if reservation => 0,
        _ => unblended,
    }
}

/// [`amortized_units`] on decimals, for a line that names no reservation.
pub fn amortized_cost(line_type: LineType, unblended: Decimal, p: &EffectiveCostParts) -> Decimal {
    amortized_cost_of(line_type, unblended, p, false)
}

/// [`amortized_units`] on decimals.
pub fn amortized_cost_of(line_type: LineType, unblended: Decimal, p: &EffectiveCostParts, reservation: bool) -> Decimal {
    let u = |d: Option<Decimal>| d.map(|d| units_of(d).unwrap_or(0));
    let parts = [
        u(p.reservation_effective_cost),
        u(p.savings_plan_effective_cost),
        u(p.reservation_unused_amortized_upfront_fee),
        u(p.reservation_unused_recurring_fee),
        u(p.savings_plan_total_commitment_to_date),
        u(p.savings_plan_used_commitment),
    ];
    decimal_of(amortized_units(line_type, units_of(unblended).unwrap_or(0), parts, reservation))
}

/// Reads one CUR file, batch by batch, into lake frames given to `sink`.
pub fn read_cur_batches(path: &Path, opts: &ReadOptions, sink: &mut dyn FnMut(DataFrame) -> Result<(), ReadError>) -> Result<ReadSummary, ReadError> {
    super::guarded(path, || read_cur_batches_unguarded(path, opts, sink))
}

fn read_cur_batches_unguarded(path: &Path, opts: &ReadOptions, sink: &mut dyn FnMut(DataFrame) -> Result<(), ReadError>) -> Result<ReadSummary, ReadError> {
    let wanted: Vec<&str> = REQUIRED.iter().chain(OPTIONAL).copied().collect();
    let batches = Batches::open(path, athena_name, &wanted, Some("resource_tags_"), BATCH_ROWS)?;
    batches.require(REQUIRED, "this does not look like a Cost and Usage Report")?;
    let tag_columns: Vec<String> = batches.columns.iter().filter(|c| c.starts_with("resource_tags_")).cloned().collect();
    let mut rows = 0;
    let new_state = || (TenantTags::new(&opts.tenant_tag_key), Currencies::default(), HashMap::<String, LineType>::new());
    let convert = |state: &mut (TenantTags, Currencies, HashMap<String, LineType>), df: DataFrame| {
        let b = Batch::new(&df, path)?;
        let (tenants, currencies, kinds) = state;
        cur_batch(&b, opts, &tag_columns, tenants, currencies, kinds)
    };
    let states = convert_in_order(batches, CONVERTERS, &new_state, &convert, &mut |out: DataFrame| {
        rows += out.height();
        sink(out)
    })?;
    let mut tenants = TenantTags::new(&opts.tenant_tag_key);
    for (t, _, _) in states {
        tenants.absorb(t);
    }
    Ok(ReadSummary { rows, warnings: tenants.warning().into_iter().collect(), tenants: tenants.seen, metrics: Default::default() })
}

/// Reads one CUR file into billing lines (small files and tests).
pub fn read_cur(path: &Path, opts: &ReadOptions) -> Result<FileLines, ReadError> {
    collect_lines(path, CostSource::Cur, |sink| read_cur_batches(path, opts, sink))
}

fn cur_batch(
    b: &Batch<'_>,
    opts: &ReadOptions,
    tag_columns: &[String],
    tenants: &mut TenantTags,
    currencies: &mut Currencies,
    kinds: &mut HashMap<String, LineType>,
) -> Result<DataFrame, ReadError> {
    let n = b.height();
    let usage_start = b.required_times("line_item_usage_start_date")?;
    let usage_end = b.required_times("line_item_usage_end_date")?;
    let billing_start = b.times("bill_billing_period_start_date")?;
    let service = b.required_text("line_item_product_code")?;
    let kind_text = b.text("line_item_line_item_type")?;
    let kind: Vec<LineType> = kind_text
        .iter()
        .map(|k| {
            let k = k.unwrap_or_default();
            *kinds.entry(k.to_owned()).or_insert_with(|| LineType::from_cur(k))
        })
        .collect();
    let currency = b.required_text("line_item_currency_code")?;
    let [u, net, amount, list, p0, p1, p2, p3, p4, p5] = b.moneys([
        "line_item_unblended_cost",
        "line_item_net_unblended_cost",
        "line_item_usage_amount",
        "pricing_public_on_demand_cost",
        PARTS[0],
        PARTS[1],
        PARTS[2],
        PARTS[3],
        PARTS[4],
        PARTS[5],
    ])?;
    let unblended: Vec<i128> = u.iter().map(|v| v.unwrap_or(0)).collect();
    let net_unblended: Vec<i128> = net.iter().zip(&unblended).map(|(v, u)| v.unwrap_or(*u)).collect();
    let usage_amount: Vec<i128> = amount.iter().map(|v| v.unwrap_or(0)).collect();
    let list_cost: Vec<Option<i128>> = list.iter().collect();
    let payer = b.text("bill_payer_account_id")?;
    let account = b.text("line_item_usage_account_id")?;
    let or_empty = |ca: &StringChunked| -> Result<StringChunked, ReadError> {
        if ca.null_count() == 0 {
            return Ok(ca.clone());
        }
        let filled = ca.clone().into_series().fill_null(FillNullStrategy::Zero).map_err(|e| ReadError::polars(b.path, e));
        filled.and_then(|s| s.str().cloned().map_err(|e| ReadError::polars(b.path, e)))
    };
    let usage_account = StringChunked::from_iter_values("usage_account".into(), account.iter().zip(payer.iter()).map(|(a, p)| a.or(p).unwrap_or_default()));
    let az = b.text("line_item_availability_zone")?;

    // CUR 2.0 keeps product attributes in the `product` MAP.
    let product = b.map("product")?;
    const ATTRS: [&str; 4] = ["instance_type", "instanceType", "region_code", "region"];
    let attrs = match &product {
        Some(p) => map_values(p, &ATTRS).map_err(|m| ReadError::column(b.path, "product", m))?,
        None => ATTRS.iter().map(|_| vec![None; n]).collect(),
    };
    let instance_type = b.text("product_instance_type")?;
    let instance_type = StringChunked::from_iter_options("instance_type".into(), (0..n).map(|i| instance_type.get(i).or(attrs[0][i]).or(attrs[1][i])));
    let (region_code, region) = (b.text("product_region_code")?, b.text("product_region")?);
    let region = StringChunked::from_iter_options(
        "region".into(),
        (0..n).map(|i| {
            region_code
                .get(i)
                .or(attrs[2][i])
                .or(attrs[3][i])
                .or_else(|| region.get(i))
                .or_else(|| az.get(i).map(|z| z.trim_end_matches(|c: char| c.is_ascii_alphabetic())))
                .filter(|r| !r.is_empty())
        }),
    );

    // Tags: the CUR 2.0 `resource_tags` MAP, or legacy `resource_tags_*` columns.
    let map = b.map("resource_tags")?;
    let columns: Vec<(String, StringChunked)> =
        tag_columns.iter().map(|c| Ok((c["resource_tags_".len()..].to_owned(), b.text(c)?))).collect::<Result<_, ReadError>>()?;
    let tenant_keys: Vec<bool> = columns.iter().map(|(k, _)| tenants.is_tenant_key(k)).collect();
    // The MAP's keys that name the tenant tag (`user_tenant`, `user:tenant`, ...).
    let map_keys: Vec<String> = match &map {
        Some(m) => {
            let mut keys: Vec<String> = Vec::new();
            for arr in m.downcast_iter() {
                if let Some(entries) = arr.values().as_any().downcast_ref::<polars_arrow::array::StructArray>()
                    && let Some(k) = entries.values().first().and_then(|a| a.as_any().downcast_ref::<polars_arrow::array::Utf8ViewArray>())
                {
                    for key in k.iter().flatten() {
                        if !keys.iter().any(|x| x == key) && tenants.is_tenant_key(key) {
                            keys.push(key.to_owned());
                        }
                    }
                }
            }
            keys
        }
        None => Vec::new(),
    };
    let key_refs: Vec<&str> = map_keys.iter().map(String::as_str).collect();
    let map_tenant = match (&map, key_refs.is_empty()) {
        (Some(m), false) => map_values(m, &key_refs).map_err(|e| ReadError::column(b.path, "resource_tags", e))?,
        _ => Vec::new(),
    };
    let mut tenant: Vec<Option<String>> = vec![None; n];
    let mut last: Option<(&str, Option<String>)> = None;
    for (i, slot) in tenant.iter_mut().enumerate() {
        let from_column = columns.iter().zip(&tenant_keys).find_map(|((_, c), is)| if *is { c.get(i) } else { None });
        let value = from_column.or_else(|| map_tenant.iter().find_map(|vals| vals[i]));
        *slot = match (value, &last) {
            (None, _) => None,
            (Some(v), Some((lv, t))) if *lv == v => {
                if t.is_none() {
                    tenants.note_bad(v);
                }
                t.clone()
            }
            (Some(v), _) => {
                let t = tenants.tenant(v).map(str::to_owned);
                last = Some((v, t.clone()));
                t
            }
        };
    }
    let tags = if columns.is_empty() {
        match &map {
            Some(m) => m.clone().into_series().with_name("tags".into()),
            None => Series::full_null("tags".into(), n, &crate::schema::tags_type()),
        }
    } else {
        let map_rows = map.as_ref().map(map_entries).transpose().map_err(|m| ReadError::column(b.path, "resource_tags", m))?;
        let mut triples: Vec<(IdxSize, &str, &str)> = Vec::new();
        for i in 0..n {
            if let Some(rows) = &map_rows {
                triples.extend(rows[i].iter().filter(|(k, _)| !columns.iter().any(|(c, _)| c == k)).map(|(k, v)| (i as IdxSize, *k, *v)));
            }
            triples.extend(columns.iter().filter_map(|(k, c)| c.get(i).map(|v| (i as IdxSize, k.as_str(), v))));
        }
        tags_from_triples(n, &triples).map_err(|e| ReadError::polars(b.path, e))?
    };

    let ri_arn = b.text("reservation_reservation_a_r_n")?;
    let sp_arn = b.text("savings_plan_savings_plan_a_r_n")?;
    // Most bills have no commitments: their parts are all null.
    let parts = [p0, p1, p2, p3, p4, p5];
    let has_parts = parts.iter().any(|p| p.null_count() < p.len());
    let part_values: Vec<Vec<Option<i128>>> = if has_parts { parts.iter().map(|p| p.iter().collect()).collect() } else { Vec::new() };
    let reservation: Vec<bool> = ri_arn.iter().map(|a| a.is_some()).collect();
    let amortized: Vec<i128> = (0..n)
        .map(|i| {
            let p: [Option<i128>; 6] = if has_parts { std::array::from_fn(|k| part_values[k][i]) } else { [None; 6] };
            amortized_units(kind[i], unblended[i], p, reservation[i])
        })
        .collect();
    let commitment = StringChunked::from_iter_options("commitment_id".into(), (0..n).map(|i| ri_arn.get(i).or(sp_arn.get(i))));

    let lines = Lines {
        usage_start,
        usage_end,
        billing_start,
        payer_account: or_empty(&payer)?,
        usage_account,
        service,
        usage_type: or_empty(&b.text("line_item_usage_type")?)?,
        operation: or_empty(&b.text("line_item_operation")?)?,
        resource_id: b.text("line_item_resource_id")?,
        region,
        availability_zone: az,
        line_type: StringChunked::from_iter_values("line_type".into(), kind.iter().map(|k| k.as_str())),
        description: b.text("line_item_line_item_description")?,
        currency,
        unblended,
        net_unblended,
        amortized,
        list_cost,
        usage_amount,
        usage_unit: b.text("pricing_unit")?,
        instance_type,
        commitment_id: commitment,
        tags,
        tenant: StringChunked::from_iter_options("tenant".into(), tenant.iter().map(|t| t.as_deref())),
        provider: StringChunked::full_null("provider".into(), n),
    };
    let names = Names {
        start: "line_item_usage_start_date",
        end: "line_item_usage_end_date",
        billing_start: "bill_billing_period_start_date",
        currency: "line_item_currency_code",
    };
    lines.finish(b, &names, opts, currencies)
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

    #[test]
    fn an_ri_upfront_fee_is_spread_over_the_covered_usage_so_it_amortizes_to_zero() {
        let p = EffectiveCostParts::default();
        assert_eq!(amortized_cost_of(LineType::Fee, "1200".parse().unwrap(), &p, true), Decimal::ZERO);
        assert_eq!(amortized_cost_of(LineType::Fee, "1200".parse().unwrap(), &p, false), "1200".parse::<Decimal>().unwrap());
    }
}

#[cfg(test)]
mod fill_tests {
    use polars::prelude::*;

    /// The reader fills absent account ids, usage types and operations so.
    #[test]
    fn zero_fill_of_text_is_the_empty_string() {
        let ca = StringChunked::from_iter_options("x".into(), [Some("a"), None].into_iter());
        let s = ca.into_series().fill_null(FillNullStrategy::Zero).unwrap();
        assert_eq!(s.str().unwrap().get(1), Some(""));
    }
}
