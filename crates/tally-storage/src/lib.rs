//! Tally's database: one [`Store`] trait with an embedded SQLite backend
//! (the default) and a PostgreSQL backend, chosen from the URL by [`connect`].
//!
//! Architecture invariants:
//! - This is the only crate that knows SQL for Tally's own database. Queries
//!   are checked at run time against migrations embedded from `sql/<backend>/`
//!   and applied in order by [`Store::migrate`].
//! - Both backends run the same SQL text (written once, in `backend.rs`); they
//!   differ only in how money is bound: PostgreSQL `NUMERIC`, SQLite decimal
//!   `TEXT`. Money is never stored as a float.
//! - Every import replaces its scope (a source's billing months, days or
//!   usage hours) in one transaction, so re-importing never double counts and
//!   a failed import leaves the database as it was.
//! - The contract suite in `tests/contract.rs` runs against both backends.

pub mod appdb;
mod backend;
mod error;
mod migrate;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tally_domain::{AllocationRow, CostLine, CostSource, Explanation, JobOutcome, JobRun, Month, RevenueEntry, Tenant, TenantId, UsageSample};

pub use backend::{PostgresStore, SqliteStore};
pub use error::StorageError;
pub use migrate::MigrationStatus;
pub use types::*;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything Tally keeps. Implemented by [`SqliteStore`] and [`PostgresStore`].
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    fn backend(&self) -> Backend;

    /// Applies pending migrations; returns how many were applied.
    async fn migrate(&self) -> Result<usize>;
    async fn migration_status(&self) -> Result<MigrationStatus>;
    /// Cheap round trip to the database.
    async fn ping(&self) -> Result<()>;

    // --- tenants ---
    /// Inserts or updates name and plan.
    async fn upsert_tenants(&self, tenants: &[Tenant]) -> Result<()>;
    /// Creates the tenants that do not exist yet (named after their id) and
    /// returns those it created.
    async fn ensure_tenants(&self, ids: &[TenantId]) -> Result<Vec<TenantId>>;
    async fn tenants(&self) -> Result<Vec<Tenant>>;

    // --- billing ---
    /// Replaces `import.scope` of `import.source` with `import.lines`, in one transaction.
    async fn replace_cost_lines(&self, import: CostImport<'_>) -> Result<ImportSummary>;
    async fn cost_lines(&self, filter: &CostLineFilter) -> Result<Vec<CostLine>>;
    /// Billing sources holding lines for a month, with their line counts.
    async fn billing_sources(&self, month: Month) -> Result<Vec<(CostSource, i64)>>;
    /// Months that hold any billing line.
    async fn billing_months(&self) -> Result<Vec<Month>>;
    async fn import_batches(&self, limit: i64) -> Result<Vec<ImportBatch>>;

    // --- usage ---
    /// Replaces, for each metric in the import, the source's hours from the
    /// metric's first to its last sample.
    async fn replace_usage(&self, import: UsageImport<'_>) -> Result<ImportSummary>;
    /// Samples with `from <= hour < to`.
    async fn usage(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageSample>>;
    /// Per tenant and metric totals with `from <= hour < to`.
    async fn usage_totals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageTotal>>;

    // --- revenue and cash ---
    /// Replaces the revenue of `months` with `entries`.
    async fn replace_revenue(&self, months: &[Month], entries: &[RevenueEntry]) -> Result<ImportSummary>;
    async fn upsert_revenue(&self, entry: &RevenueEntry) -> Result<()>;
    async fn revenue(&self, from: Month, to: Month) -> Result<Vec<RevenueEntry>>;
    async fn add_cash_balance(&self, balance: &NewCashBalance) -> Result<CashBalance>;
    async fn cash_balances(&self) -> Result<Vec<CashBalance>>;

    // --- allocation results ---
    /// Replaces a month's results (rows, billed totals, explanations) atomically.
    async fn replace_allocation(&self, result: &AllocationResultSet) -> Result<()>;
    async fn allocation_rows(&self, filter: &AllocationFilter) -> Result<Vec<AllocationRow>>;
    async fn billed_totals(&self, month: Month) -> Result<Vec<BilledTotal>>;
    async fn explanations(&self, month: Month, allocatee: Option<&str>) -> Result<Vec<Explanation>>;
    async fn allocation_runs(&self) -> Result<Vec<AllocationRun>>;

    // --- access tokens ---
    async fn create_token(&self, token: &NewToken) -> Result<TokenRecord>;
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>>;
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Marks a token revoked; false if there was no such live token.
    async fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> Result<bool>;

    // --- jobs ---
    async fn start_job_run(&self, job: &str, holder: &str, at: DateTime<Utc>) -> Result<i64>;
    async fn finish_job_run(&self, id: i64, finish: &JobFinish) -> Result<()>;
    async fn job_runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<JobRun>>;
    /// The latest start of a run of `job` that did not fail, for catch-up.
    async fn last_job_start(&self, job: &str) -> Result<Option<DateTime<Utc>>>;
    /// The latest successful finish of each job.
    async fn last_successes(&self) -> Result<Vec<(String, DateTime<Utc>)>>;
    /// Takes or renews the lease on `job` for `holder` until `now + ttl`;
    /// false if another holder's lease has not expired.
    async fn try_lease(&self, job: &str, holder: &str, now: DateTime<Utc>, ttl: chrono::Duration) -> Result<bool>;
    async fn release_lease(&self, job: &str, holder: &str) -> Result<()>;
    /// Adds to and returns the month's count of paid requests to `source`.
    async fn add_api_requests(&self, source: &str, month: Month, requests: i64) -> Result<i64>;
    async fn api_requests(&self, source: &str, month: Month) -> Result<i64>;

    // --- documents ---
    async fn put_document(&self, name: &str, body: &str, at: DateTime<Utc>) -> Result<()>;
    async fn document(&self, name: &str) -> Result<Option<(String, DateTime<Utc>)>>;
}

/// Opens the database at `url` (`sqlite://PATH` or `postgres://...`),
/// creating a SQLite file if it does not exist. Does not migrate.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(StorageError::Config(format!("unsupported database URL {:?}: expected sqlite://PATH or postgres://USER@HOST/DB", redact(url))))
    }
}

/// A URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// What finishing a job run records.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFinish {
    pub at: DateTime<Utc>,
    pub outcome: JobOutcome,
    pub rows_written: i64,
    pub api_requests: i64,
    pub error: Option<String>,
    pub detail: Option<String>,
}

/// Filters on monthly or daily allocation rows.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationFilter {
    pub from: Month,
    pub to: Month,
    /// Daily rows instead of monthly ones.
    pub daily: bool,
    /// Only this allocatee (a tenant id or `__idle__`, ...).
    pub allocatee: Option<String>,
    /// Daily rows from this day (inclusive).
    pub from_day: Option<NaiveDate>,
    /// Daily rows before this day (exclusive).
    pub to_day: Option<NaiveDate>,
}

impl AllocationFilter {
    pub fn months(from: Month, to: Month) -> Self {
        Self { from, to, daily: false, allocatee: None, from_day: None, to_day: None }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_in_a_database_url_is_redacted() {
        assert_eq!(redact("postgres://tally:s3cret@db:5432/tally"), "postgres://tally:***@db:5432/tally");
        assert_eq!(redact("postgres://tally@db/tally"), "postgres://tally@db/tally");
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
