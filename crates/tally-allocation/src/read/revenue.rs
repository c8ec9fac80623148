//! Revenue files: `month,tenant,amount,currency`.

use std::path::Path;

use tally_domain::{Currency, Money, Month, RevenueEntry, TenantId};

use super::cols::{TextCol, parse_decimal};
use super::{ReadError, collect_columns, scan};

const COLUMNS: &[&str] = &["month", "tenant", "amount", "currency"];

/// Reads a revenue file; every amount must be in `currency`.
pub fn read_revenue(path: &Path, currency: Currency) -> Result<Vec<RevenueEntry>, ReadError> {
    let (lf, _guard) = scan(path)?;
    let df = collect_columns(path, lf, |n| n.trim().to_ascii_lowercase(), COLUMNS, None)?;
    for req in COLUMNS {
        if df.column(req).is_err() {
            return Err(ReadError::column(path, req, "required column is missing: expected month,tenant,amount,currency"));
        }
    }
    let text = |c: &str| TextCol::of(&df, c).map_err(|m| ReadError::column(path, c, m));
    let (month, tenant, amount, cur) = (text("month")?, text("tenant")?, text("amount")?, text("currency")?);
    let mut out = Vec::with_capacity(df.height());
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..df.height() {
        let row = i + 1;
        let cell = |c: &str, m: String| ReadError::cell(path, row, c, m);
        let m = Month::parse(month.get(i).unwrap_or_default()).map_err(|v| cell("month", v.to_string()))?;
        let t = TenantId::parse(tenant.get(i).unwrap_or_default()).map_err(|v| cell("tenant", v.to_string()))?;
        let c = Currency::parse(cur.get(i).unwrap_or_default()).map_err(|v| cell("currency", v.to_string()))?;
        if c != currency {
            return Err(cell("currency", format!("{c} differs from the reporting currency {currency}")));
        }
        let a = parse_decimal(amount.get(i).ok_or_else(|| cell("amount", "missing value".into()))?).map_err(|m| cell("amount", m))?;
        let entry = RevenueEntry::new(m, t.clone(), Money::new(a, c)).map_err(|v| cell("amount", v.to_string()))?;
        if !seen.insert((m, t.clone())) {
            return Err(cell("tenant", format!("{t} appears twice for {m}")));
        }
        out.push(entry);
    }
    Ok(out)
}
