use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tally_domain::{AllocationRow, CostLine, CostSource, Currency, Explanation, Money, Month, TenantId, UsageSample};

/// What a billing import replaces before inserting its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceScope {
    /// Every line of the source in these invoice months (files: CUR, FOCUS).
    BillingMonths(Vec<Month>),
    /// Every line of the source whose usage starts on these days, inclusive
    /// (Cost Explorer windows).
    UsageDays { from: NaiveDate, to: NaiveDate },
}

impl std::fmt::Display for ReplaceScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BillingMonths(months) => {
                let list: Vec<String> = months.iter().map(Month::to_string).collect();
                write!(f, "months {}", list.join(","))
            }
            Self::UsageDays { from, to } => write!(f, "days {from}..={to}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CostImport<'a> {
    pub source: CostSource,
    /// The file or window imported, for people reading the import history.
    pub label: &'a str,
    pub scope: &'a ReplaceScope,
    pub lines: &'a [CostLine],
}

#[derive(Debug, Clone, Copy)]
pub struct UsageImport<'a> {
    /// `file`, `cloudwatch`, `postgres`, `redis`, `demo`, ...
    pub source: &'a str,
    pub label: &'a str,
    pub samples: &'a [UsageSample],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub batch_id: i64,
    pub inserted: u64,
    pub replaced: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportBatch {
    pub id: i64,
    pub kind: String,
    pub source: String,
    pub label: String,
    pub scope: String,
    pub rows: i64,
    pub replaced: i64,
    pub imported_at: DateTime<Utc>,
}

/// Which billing lines to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostLineFilter {
    pub billing_month: Option<Month>,
    pub source: Option<CostSource>,
    /// Usage starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Usage starting before.
    pub to: Option<DateTime<Utc>>,
    /// Only these services (empty: all).
    pub services: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageTotal {
    pub tenant: TenantId,
    pub metric: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewCashBalance {
    pub as_of: NaiveDate,
    pub amount: Money,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CashBalance {
    pub id: i64,
    pub as_of: NaiveDate,
    pub amount: Money,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A month's billed total for one service, as the allocation saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BilledTotal {
    pub month: Month,
    pub service: String,
    pub currency: Currency,
    #[serde(with = "rust_decimal::serde::str")]
    pub unblended: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub amortized: Decimal,
    pub lines: i64,
}

/// Everything one allocation of one month produced.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationResultSet {
    pub month: Month,
    pub source: CostSource,
    pub billed_lines: i64,
    pub usage_rows: i64,
    pub monthly: Vec<AllocationRow>,
    pub daily: Vec<AllocationRow>,
    pub billed: Vec<BilledTotal>,
    pub explanations: Vec<Explanation>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllocationRun {
    pub month: Month,
    pub source: String,
    pub billed_lines: i64,
    pub usage_rows: i64,
    pub rows: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// SHA-256 of the token, hex.
    pub hash: String,
    pub role: String,
    pub tenant: Option<TenantId>,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: i64,
    pub role: String,
    pub tenant: Option<TenantId>,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}
