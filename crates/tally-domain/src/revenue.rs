use serde::{Deserialize, Serialize};

use crate::{Money, Month, TenantId, ValidationError};

/// What a tenant paid for a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevenueEntry {
    pub month: Month,
    pub tenant: TenantId,
    pub amount: Money,
}

impl RevenueEntry {
    pub fn new(month: Month, tenant: TenantId, amount: Money) -> Result<Self, ValidationError> {
        if amount.amount.is_sign_negative() && !amount.amount.is_zero() {
            return Err(ValidationError::new("revenue amount", amount.amount, "an amount >= 0 (record refunds as a lower amount)"));
        }
        crate::money::check_amount("revenue amount", amount.amount)?;
        Ok(Self { month, tenant, amount })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    #[test]
    fn negative_revenue_is_rejected() {
        let m = Month::parse("2026-10").unwrap();
        let t = TenantId::parse("acme").unwrap();
        assert!(RevenueEntry::new(m, t.clone(), Money::parse("-1", Currency::USD).unwrap()).is_err());
        assert!(RevenueEntry::new(m, t.clone(), Money::parse("0", Currency::USD).unwrap()).is_ok());
        // The amount that once made every page panic when summed.
        let huge = Money::new("79228162514264337593543950335".parse().unwrap(), Currency::USD);
        assert!(RevenueEntry::new(m, t, huge).unwrap_err().to_string().contains("at most"));
    }
}
