//! Tally's database: one [`Store`] trait with an embedded SQLite backend
//! (the default) and a PostgreSQL backend, chosen from the URL by [`connect`].
//!
//! Architecture invariants:
//! - This is the only crate that knows SQL for Tally's own database. Queries
//!   are checked at run time against migrations embedded from `sql/<backend>/`
//!   and applied in order by [`Store::migrate`].
//! - Both backends run the same SQL text (written once, in `backend.rs`); they
//!   differ only in how money is bound (PostgreSQL `NUMERIC`, SQLite decimal
//!   `TEXT` or, in the rollups, INTEGER ten-thousandths) and in how an
//!   allocation's results are inserted in bulk (`bulk_sqlite`, `bulk_pg`).
//!   Money is never stored as a float.
//! - Raw billing lines and usage samples are not kept here but in the
//!   columnar store (`tally-lake`); this crate keeps its catalog, and an
//!   import's switch from one snapshot to the next is one transaction
//!   ([`Store::lake_commit`]).
//! - Allocation results are kept as the rollups the reports read, so that no
//!   request sums a month of rows: on SQLite their amounts are INTEGER
//!   ten-thousandths of the currency unit, so `SUM` stays exact.
//! - The contract suite in `tests/contract.rs` runs against both backends.

pub mod appdb;
mod backend;
mod error;
mod migrate;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_domain::{AllocationRow, CostLine, Explanation, JobOutcome, JobRun, Month, RevenueEntry, Tenant, TenantId, UsageSample};

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

    /// Applies pending migrations; returns how many were applied. Stops
    /// before a migration that drops the SQL tables of raw data while they
    /// still hold rows: those move to the columnar store first
    /// ([`Store::legacy_partitions`]), then `migrate` finishes.
    async fn migrate(&self) -> Result<usize> {
        self.migrate_to(i64::MAX).await
    }
    /// As [`Store::migrate`], up to version `last` (tests build databases of earlier versions).
    async fn migrate_to(&self, last: i64) -> Result<usize>;
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

    // --- the columnar store's catalog ---
    /// Switches the partitions of `commit` to its files in one transaction:
    /// their current files become superseded, the new ones current, each
    /// partition's version goes up by one. Fails with
    /// [`StorageError::Conflict`] when a partition's version is not the one
    /// the writer read.
    async fn lake_commit(&self, commit: LakeCommit<'_>) -> Result<LakeCommitted>;
    /// The current files of `kind`, for one source or all, in months `from..=to`.
    async fn lake_files(&self, kind: LakeKind, source: Option<&str>, from: Month, to: Month) -> Result<Vec<LakeFile>>;
    /// Every partition of `kind` with files.
    async fn lake_partitions(&self, kind: LakeKind) -> Result<Vec<LakePartition>>;
    /// Files replaced by a later import and not yet deleted.
    async fn lake_superseded(&self) -> Result<Vec<LakeFile>>;
    /// Forgets superseded files once they are deleted.
    async fn lake_forget(&self, ids: &[i64]) -> Result<()>;
    /// Every path the catalog knows, current or superseded.
    async fn lake_paths(&self) -> Result<Vec<String>>;
    async fn import_batches(&self, limit: i64) -> Result<Vec<ImportBatch>>;

    // --- rows of earlier versions, on their way to the store ---
    /// Partitions whose rows are still in the SQL tables of earlier versions.
    async fn legacy_partitions(&self) -> Result<Vec<LegacyPartition>>;
    async fn legacy_cost_lines(&self, source: &str, month: Month) -> Result<Vec<CostLine>>;
    async fn legacy_usage(&self, source: &str, month: Month) -> Result<Vec<UsageSample>>;
    /// Writes rows into the SQL tables of earlier versions, as a database
    /// built before the columnar store holds them (tests of the move).
    #[doc(hidden)]
    async fn seed_legacy_rows(&self, lines: &[CostLine], usage_source: &str, samples: &[UsageSample]) -> Result<()>;

    // --- revenue and cash ---
    /// Replaces the revenue of `months` with `entries`.
    async fn replace_revenue(&self, months: &[Month], entries: &[RevenueEntry]) -> Result<ImportSummary>;
    async fn upsert_revenue(&self, entry: &RevenueEntry) -> Result<()>;
    async fn revenue(&self, from: Month, to: Month) -> Result<Vec<RevenueEntry>>;
    async fn add_cash_balance(&self, balance: &NewCashBalance) -> Result<CashBalance>;
    async fn cash_balances(&self) -> Result<Vec<CashBalance>>;

    // --- allocation results ---
    /// Replaces a month's results (rows, rollups, billed totals, usage,
    /// explanations) atomically.
    async fn replace_allocation(&self, result: &AllocationResultSet) -> Result<()>;
    /// Monthly rows (allocatee x pool x service) of the months, for one allocatee or all.
    async fn allocation_rows(&self, filter: &AllocationFilter) -> Result<Vec<AllocationRow>>;
    /// Monthly costs summed by the query's dimensions, from the smallest rollup that answers it.
    async fn monthly_costs(&self, query: &CostQuery) -> Result<Vec<CostRow>>;
    /// Daily costs, per service, per allocatee or per day.
    async fn daily_costs(&self, query: &DailyQuery) -> Result<Vec<CostRow>>;
    /// Each tenant's usage per metric and month, as the allocations read it.
    async fn usage_totals(&self, from: Month, to: Month, tenant: Option<&TenantId>) -> Result<Vec<UsageTotal>>;
    async fn billed_totals(&self, month: Month) -> Result<Vec<BilledTotal>>;
    async fn explanations(&self, month: Month, allocatee: Option<&str>) -> Result<Vec<Explanation>>;
    /// Each allocatee's quantity of a pool's driver per month (e.g. the
    /// vCPU-hours of `eks_compute`), from the explanations.
    async fn pool_quantities(&self, from: Month, to: Month, pool: &str, allocatee: Option<&str>) -> Result<Vec<(Month, String, f64)>>;
    async fn allocation_runs(&self) -> Result<Vec<AllocationRun>>;
    /// A number that every write changing what a report shows (results,
    /// revenue, cash, tenants, tokens, documents) increases: a server may
    /// keep answers while it stays the same.
    async fn data_version(&self) -> Result<i64>;

    // --- access tokens ---
    async fn create_token(&self, token: &NewToken) -> Result<TokenRecord>;
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>>;
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Marks a token revoked; false if there was no such live token.
    async fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> Result<bool>;

    // --- dashboard sessions ---
    /// Stores a new session (and forgets sessions that expired a day ago).
    async fn create_session(&self, session: &NewSession) -> Result<SessionRecord>;
    /// A session by the SHA-256 of its id, with its token; revoked and
    /// expired ones too (the caller decides).
    async fn session_by_hash(&self, hash: &str) -> Result<Option<SessionRecord>>;
    /// Revokes a live session; false if it was revoked already or unknown.
    /// Exactly one of several concurrent callers gets true (a one-time
    /// link is used once).
    async fn revoke_session(&self, hash: &str, at: DateTime<Utc>) -> Result<bool>;

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
    /// Counts one request of `source` in `month` if fewer than `budget`
    /// were counted: the new count, or `None` when the budget is used up.
    /// Checked and counted at once, so several replicas never pass it together.
    async fn reserve_api_request(&self, source: &str, month: Month, budget: i64) -> Result<Option<i64>>;
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

/// A URL with any password replaced, for messages and logs (the domain's one rule).
pub use tally_domain::redact;

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

/// Filters on monthly allocation rows.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationFilter {
    pub from: Month,
    pub to: Month,
    /// Only this allocatee (a tenant id or `__idle__`, ...).
    pub allocatee: Option<String>,
}

impl AllocationFilter {
    pub fn months(from: Month, to: Month) -> Self {
        Self { from, to, allocatee: None }
    }
}
