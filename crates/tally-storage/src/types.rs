use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tally_domain::{AllocationRow, CostSource, Currency, Explanation, Money, Month, TenantId};

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

/// Which of the lake's two tables a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LakeKind {
    Billing,
    Usage,
}

impl LakeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Billing => "billing",
            Self::Usage => "usage",
        }
    }
}

impl std::fmt::Display for LakeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LakeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "billing" => Ok(Self::Billing),
            "usage" => Ok(Self::Usage),
            _ => Err(format!("{s:?} is not billing or usage")),
        }
    }
}

/// One Parquet file of the columnar store, as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LakeFile {
    pub id: i64,
    pub kind: LakeKind,
    pub source: String,
    pub month: Month,
    /// Relative to the store's root, e.g. `billing/source=cur/month=2026-10/part-....parquet`.
    pub path: String,
    pub rows: i64,
    pub bytes: i64,
    pub batch_id: i64,
    pub created_at: DateTime<Utc>,
    pub superseded_at: Option<DateTime<Utc>>,
}

/// A file an import wrote, to enter the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLakeFile {
    pub month: Month,
    pub path: String,
    pub rows: i64,
    pub bytes: i64,
}

/// A partition an import replaces, and what its new snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSwitch {
    pub month: Month,
    /// The partition's version the writer read (a merge), or `None` when
    /// the import replaces the partition whatever it holds.
    pub expected_version: Option<i64>,
    pub rows: i64,
    /// The first and last instant the new snapshot's rows cover.
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
}

/// Switching partitions of the store to new files, in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct LakeCommit<'a> {
    pub kind: LakeKind,
    pub source: &'a str,
    /// The files or window imported, for people reading the import history.
    pub label: &'a str,
    /// What the import replaced, in words (`months 2026-10`).
    pub scope: &'a str,
    /// Rows the import brought.
    pub rows: i64,
    pub partitions: &'a [PartitionSwitch],
    pub files: &'a [NewLakeFile],
    /// Also deletes the rows of these partitions still held in the SQL
    /// tables of earlier versions (`tally migrate` moving them to the store).
    pub retire_legacy: bool,
    pub at: DateTime<Utc>,
}

/// What a switch did: its import batch, and the files it superseded (to delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeCommitted {
    pub batch_id: i64,
    pub replaced_rows: i64,
    pub superseded: Vec<LakeFile>,
}

/// A partition of the store and its current snapshot's size and span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LakePartition {
    pub kind: LakeKind,
    pub source: String,
    pub month: Month,
    pub version: i64,
    pub rows: i64,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Rows of an earlier version's SQL tables still waiting to move to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyPartition {
    pub kind: LakeKind,
    pub source: String,
    pub month: Month,
    pub rows: i64,
}

/// A tenant's usage of a metric over a month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageTotal {
    pub month: Month,
    pub tenant: TenantId,
    pub metric: String,
    pub value: f64,
}

/// A day's cost of one service or one allocatee.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyCost {
    pub day: NaiveDate,
    /// The service, or the allocatee (tenant id or `__idle__`, ...).
    pub key: String,
    pub currency: Currency,
    pub unblended: Decimal,
    pub amortized: Decimal,
}

/// A dimension of the monthly cost rollups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CostDim {
    Month,
    Allocatee,
    Pool,
    Service,
}

/// Monthly costs summed by some dimensions, filtered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostQuery {
    pub from: Month,
    pub to: Month,
    pub dims: Vec<CostDim>,
    pub allocatee: Option<String>,
    pub pool: Option<String>,
    pub service: Option<String>,
}

/// What daily costs are kept by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyBy {
    Service,
    Allocatee,
}

/// Daily costs, from `from` (inclusive) to `to` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Per service or per allocatee; `None`: per day only.
    pub by: Option<DailyBy>,
    pub allocatee: Option<String>,
    pub service: Option<String>,
    /// One group per day (else one for the whole span).
    pub per_day: bool,
}

/// One group of a cost query: the dimensions asked for are set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CostRow {
    pub month: Option<Month>,
    pub day: Option<NaiveDate>,
    pub allocatee: Option<String>,
    pub pool: Option<String>,
    pub service: Option<String>,
    pub unblended: Decimal,
    pub amortized: Decimal,
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
    /// One row per allocatee, pool and service (and reason).
    pub monthly: Vec<AllocationRow>,
    /// Per day and service; they add up to each day's bill.
    pub service_daily: Vec<DailyCost>,
    /// Per day and allocatee.
    pub tenant_daily: Vec<DailyCost>,
    /// Each tenant's usage of each metric in the month.
    pub usage: Vec<UsageTotal>,
    pub billed: Vec<BilledTotal>,
    pub explanations: Vec<Explanation>,
    /// What the allocation read (files and configuration), to tell an unchanged month.
    pub inputs: String,
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
    /// What it read; see [`AllocationResultSet::inputs`].
    pub inputs: Option<String>,
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

/// What a dashboard sign-in is: a session, or a one-time sign-in link that
/// starts one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Session,
    Link,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Link => "link",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// SHA-256 of the session id, hex; the id itself is never stored.
    pub hash: String,
    pub token_id: i64,
    pub kind: SessionKind,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A session with the token it was started from (whose revocation or
/// expiry ends the session too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: i64,
    pub kind: SessionKind,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub token: TokenRecord,
}
