//! What every billing reader does last: derive the billing month, check
//! each line's period (`CostLine::check`), convert other currencies at the
//! configured rates, and lay the columns out as the lake keeps them.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use rust_decimal::Decimal;
use tally_domain::{CostLine, Currency, Month};

use super::cols::{Batch, instant};
use super::{ReadError, ReadOptions};
use crate::decimal::{PRECISION, SCALE, decimal_of, units_of};
use crate::schema::{BILLING, billing_type, tags_type};

/// A batch of billing lines as columns, before the last checks.
pub(crate) struct Lines {
    /// Milliseconds since the epoch; never null.
    pub(crate) usage_start: Int64Chunked,
    pub(crate) usage_end: Int64Chunked,
    /// The invoice's period start where the file gives it.
    pub(crate) billing_start: Int64Chunked,
    pub(crate) payer_account: StringChunked,
    pub(crate) usage_account: StringChunked,
    pub(crate) service: StringChunked,
    pub(crate) usage_type: StringChunked,
    pub(crate) operation: StringChunked,
    pub(crate) resource_id: StringChunked,
    pub(crate) region: StringChunked,
    pub(crate) availability_zone: StringChunked,
    /// Tally's line-type names.
    pub(crate) line_type: StringChunked,
    pub(crate) description: StringChunked,
    pub(crate) currency: StringChunked,
    /// Units of 10⁻¹⁸; never null but `list_cost`.
    pub(crate) unblended: Vec<i128>,
    pub(crate) net_unblended: Vec<i128>,
    pub(crate) amortized: Vec<i128>,
    pub(crate) list_cost: Vec<Option<i128>>,
    pub(crate) usage_amount: Vec<i128>,
    pub(crate) usage_unit: StringChunked,
    pub(crate) instance_type: StringChunked,
    pub(crate) commitment_id: StringChunked,
    /// A tags column (`schema::tags_type`).
    pub(crate) tags: Series,
    pub(crate) tenant: StringChunked,
    pub(crate) provider: StringChunked,
}

/// The file's names of the columns checks refer to.
pub(crate) struct Names {
    pub(crate) start: &'static str,
    pub(crate) end: &'static str,
    pub(crate) billing_start: &'static str,
    pub(crate) currency: &'static str,
}

/// Per-import state: currencies parsed once.
#[derive(Default)]
pub(crate) struct Currencies {
    parsed: HashMap<String, Currency>,
}

impl Lines {
    /// Checks and converts the lines and returns them as a lake frame.
    pub(crate) fn finish(mut self, b: &Batch<'_>, names: &Names, opts: &ReadOptions, currencies: &mut Currencies) -> Result<DataFrame, ReadError> {
        let n = b.height();
        let mut months: Vec<Month> = Vec::with_capacity(n);
        let mut month_text: BTreeMap<Month, String> = BTreeMap::new();
        let mut codes: Vec<Currency> = Vec::with_capacity(n);
        // Most lines of a file share their billing period and currency: parse each once.
        let mut last_from: Option<(i64, Month)> = None;
        let mut last_code: Option<(&str, Currency)> = None;
        for i in 0..n {
            let (start, end) = (self.usage_start.get(i).unwrap_or(i64::MIN), self.usage_end.get(i).unwrap_or(i64::MIN));
            let (from, column) = match self.billing_start.get(i) {
                Some(ms) => (ms, names.billing_start),
                None => (start, names.start),
            };
            let month = match last_from {
                Some((ms, m)) if ms == from => m,
                _ => {
                    let m = Month::checked_of(instant(from)).map_err(|e| b.cell(i, column, e.to_string()))?;
                    last_from = Some((from, m));
                    m
                }
            };
            CostLine::check_ms(self.service.get(i).unwrap_or_default(), start, end, month).map_err(|e| b.cell(i, names.end, e.to_string()))?;
            months.push(month);
            month_text.entry(month).or_insert_with(|| month.to_string());
            let code = self.currency.get(i).unwrap_or_default();
            let c = match last_code {
                Some((k, c)) if k == code => c,
                _ => {
                    let c = match currencies.parsed.get(code) {
                        Some(c) => *c,
                        None => {
                            let c = Currency::parse(code).map_err(|_| b.cell(i, names.currency, format!("unknown currency {code:?}")))?;
                            currencies.parsed.insert(code.to_owned(), c);
                            c
                        }
                    };
                    last_code = Some((code, c));
                    c
                }
            };
            codes.push(c);
        }
        self.convert(b, names, opts, &months, &codes)?;
        let month_col = StringChunked::from_iter_values("billing_month".into(), months.iter().map(|m| month_text[m].as_str()));
        // Every line is in the reporting currency now.
        let currency_col = StringChunked::full("currency".into(), opts.currency.code(), n);
        let time =
            |ca: Int64Chunked, name: &str| ca.with_name(name.into()).into_datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)).into_series();
        let money = |v: Vec<Option<i128>>, name: &str| -> PolarsResult<Series> {
            Ok(Int128Chunked::from_iter_options(name.into(), v.into_iter()).into_decimal(PRECISION, SCALE as usize)?.into_series())
        };
        let some = |v: Vec<i128>| v.into_iter().map(Some).collect::<Vec<_>>();
        let named = |ca: StringChunked, name: &str| ca.with_name(name.into()).into_series();
        let e = |err: PolarsError| ReadError::polars(b.path, err);
        let columns: Vec<Series> = vec![
            time(self.usage_start, "usage_start"),
            time(self.usage_end, "usage_end"),
            month_col.into_series(),
            named(self.payer_account, "payer_account"),
            named(self.usage_account, "usage_account"),
            named(self.service, "service"),
            named(self.usage_type, "usage_type"),
            named(self.operation, "operation"),
            named(self.resource_id, "resource_id"),
            named(self.region, "region"),
            named(self.availability_zone, "availability_zone"),
            named(self.line_type, "line_type"),
            named(self.description, "description"),
            currency_col.into_series(),
            money(some(self.unblended), "unblended").map_err(e)?,
            money(some(self.net_unblended), "net_unblended").map_err(e)?,
            money(some(self.amortized), "amortized").map_err(e)?,
            money(self.list_cost, "list_cost").map_err(e)?,
            money(some(self.usage_amount), "usage_amount").map_err(e)?,
            named(self.usage_unit, "usage_unit"),
            named(self.instance_type, "instance_type"),
            named(self.commitment_id, "commitment_id"),
            self.tags.cast(&tags_type()).map_err(e)?.with_name("tags".into()),
            named(self.tenant, "tenant"),
            BooleanChunked::full("estimated".into(), false, n).into_series(),
            named(self.provider, "provider"),
        ];
        debug_assert!(columns.iter().zip(BILLING).all(|(c, name)| c.name().as_str() == name && *c.dtype() == billing_type(name)));
        DataFrame::new_infer_height(columns.into_iter().map(Column::from).collect()).map_err(e)
    }

    /// Converts lines in other currencies at the configured rates, or
    /// explains why it cannot.
    fn convert(&mut self, b: &Batch<'_>, names: &Names, opts: &ReadOptions, months: &[Month], codes: &[Currency]) -> Result<(), ReadError> {
        let mut by_month: BTreeMap<Month, Vec<Currency>> = BTreeMap::new();
        for (m, c) in months.iter().zip(codes) {
            let list = by_month.entry(*m).or_default();
            if !list.contains(c) {
                list.push(*c);
            }
        }
        for (month, currencies) in &by_month {
            for c in currencies {
                if *c != opts.currency && !opts.rates.contains_key(c) {
                    let mut list: Vec<&str> = currencies.iter().map(Currency::code).collect();
                    list.sort_unstable();
                    let what = if currencies.len() > 1 { "several currencies" } else { "a currency other than the reporting currency" };
                    return Err(ReadError::column(
                        b.path,
                        names.currency,
                        format!(
                            "billing period {month} holds {what} ({}) and no exchange rate from {c} to {} is configured (currency_rates.{c})",
                            list.join(", "),
                            opts.currency
                        ),
                    ));
                }
            }
        }
        let convert = |units: i128, rate: Decimal, i: usize| units_of(decimal_of(units) * rate).map_err(|m| b.cell(i, names.currency, m));
        for (i, c) in codes.iter().enumerate() {
            if *c == opts.currency {
                continue;
            }
            let rate = opts.rates[c];
            self.unblended[i] = convert(self.unblended[i], rate, i)?;
            self.net_unblended[i] = convert(self.net_unblended[i], rate, i)?;
            self.amortized[i] = convert(self.amortized[i], rate, i)?;
            if let Some(l) = self.list_cost[i] {
                self.list_cost[i] = Some(convert(l, rate, i)?);
            }
        }
        Ok(())
    }
}
