//! Revenue files: `month,tenant,amount,currency`.

use std::path::Path;

use std::collections::BTreeSet;

use tally_domain::{Currency, Money, Month, RevenueEntry, TenantId};

use super::cols::Batch;
use super::{Batches, ReadError};
use crate::decimal::{decimal_of, parse_units};

const COLUMNS: &[&str] = &["month", "tenant", "amount", "currency"];

/// Reads a revenue file; every amount must be in `currency`.
pub fn read_revenue(path: &Path, currency: Currency) -> Result<Vec<RevenueEntry>, ReadError> {
    super::guarded(path, || read_revenue_unguarded(path, currency))
}

fn read_revenue_unguarded(path: &Path, currency: Currency) -> Result<Vec<RevenueEntry>, ReadError> {
    let batches = Batches::open(path, |n| n.trim().to_ascii_lowercase(), COLUMNS, None, 100_000)?;
    batches.require(COLUMNS, "expected month,tenant,amount,currency")?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for df in batches {
        let df = df?;
        let b = Batch::new(&df, path)?;
        let (month, tenant, amount, cur) = (b.text("month")?, b.text("tenant")?, b.text("amount")?, b.text("currency")?);
        for i in 0..b.height() {
            let cell = |c: &str, m: String| b.cell(i, c, m);
            let m = Month::parse(month.get(i).unwrap_or_default()).map_err(|v| cell("month", v.to_string()))?;
            let t = TenantId::parse(tenant.get(i).unwrap_or_default()).map_err(|v| cell("tenant", v.to_string()))?;
            let c = Currency::parse(cur.get(i).unwrap_or_default()).map_err(|v| cell("currency", v.to_string()))?;
            if c != currency {
                return Err(cell("currency", format!("{c} differs from the reporting currency {currency}")));
            }
            let text = amount.get(i).ok_or_else(|| cell("amount", "missing value".into()))?;
            let a = decimal_of(parse_units(text).map_err(|m| cell("amount", m))?);
            let entry = RevenueEntry::new(m, t.clone(), Money::new(a, c)).map_err(|v| cell("amount", v.to_string()))?;
            if !seen.insert((m, t.clone())) {
                return Err(cell("tenant", format!("{t} appears twice for {m}")));
            }
            out.push(entry);
        }
    }
    Ok(out)
}
