//! Jobs: the work Tally does on request or on schedule (import, collect,
//! allocate, load the demo), each recorded as a job run, and the scheduler
//! that runs them.
//!
//! Architecture invariants:
//! - Orchestration only: this crate calls the columnar store and its readers
//!   (`tally-lake`), the allocation (`tally-allocation`), the outside world
//!   (`tally-collectors`) and the database (`tally-storage`) through their
//!   public APIs; it holds no SQL, no polars, no AWS SDK types and no HTTP.
//! - Every run is recorded (start, end, outcome, rows written, API requests,
//!   error) whether it succeeds or fails.
//! - Time comes from a [`tally_domain::Clock`], so schedules and windows are
//!   tested without sleeping.
//!
//! Entry points: [`App`], [`import`], [`allocate`], [`savings`], [`demo`], [`scheduler`].

pub mod allocate;
pub mod collect;
pub mod demo;
pub mod import;
pub mod progress;
pub mod runner;
pub mod runs;
pub mod savings;
pub mod scheduler;
pub mod usage;

use std::path::PathBuf;
use std::sync::Arc;

use tally_domain::{Clock, Config};
use tally_lake::Lake;
use tally_storage::Store;

pub use progress::{NoProgress, Progress};

/// What every job needs: the database, the columnar store, the configuration and the clock.
#[derive(Clone, Debug)]
pub struct App {
    pub store: Arc<dyn Store>,
    /// Raw billing lines and usage samples; its catalog is in `store`.
    pub lake: Arc<Lake>,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// Where generated and downloaded files go.
    pub data_dir: PathBuf,
    /// Names this process in job runs and leases (host and PID).
    pub holder: String,
}

/// Errors of jobs: what a person can act on, already in words.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Read(#[from] tally_lake::ReadError),
    #[error(transparent)]
    Storage(#[from] tally_storage::StorageError),
    #[error(transparent)]
    Allocation(#[from] tally_allocation::AllocationError),
    #[error(transparent)]
    Lake(#[from] tally_lake::LakeError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// Runs CPU-heavy work (file reading, the pipeline) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tally_lake::on_worker_thread(f).await
}

/// Keeps the configured costs besides AWS (`finance.monthly_costs`) with the
/// data, so that SQL tools reading the database (the Grafana views) count the
/// same burn as the API. Nothing is written when none are configured: the
/// costs already kept (the demo's, say) stay. Returns whether it wrote.
pub async fn keep_configured_monthly_costs(app: &App) -> Result<bool> {
    if app.config.finance.monthly_costs.is_empty() {
        return Ok(false);
    }
    let body = serde_json::to_string(&app.config.finance.monthly_costs).map_err(|e| JobError::Failed(e.to_string()))?;
    if app.store.document(tally_domain::MONTHLY_COSTS_DOCUMENT).await?.is_some_and(|(kept, _)| kept == body) {
        return Ok(false);
    }
    app.store.put_document(tally_domain::MONTHLY_COSTS_DOCUMENT, &body, app.clock.now()).await?;
    Ok(true)
}

impl App {
    /// An app over `store`, with the columnar store configured in `config`
    /// (`storage.lake`, by default `lake/` in `data_dir`).
    pub fn new(store: Arc<dyn Store>, config: Arc<Config>, clock: Arc<dyn Clock>, data_dir: PathBuf, holder: String) -> Result<Self> {
        let lake = Lake::open(config.storage.lake.as_deref(), &data_dir, store.clone())?;
        Ok(Self { store, lake: Arc::new(lake), config, clock, data_dir, holder })
    }
}

/// Brings the database to the current version: applies the SQL migrations,
/// moves raw rows that earlier versions kept in SQL into the columnar store
/// (partition by partition; running it again after a crash finishes the
/// job), then applies the migrations that waited for that. Returns the
/// migrations applied and what moved.
pub async fn migrate(app: &App) -> Result<(usize, tally_lake::LegacyMoved)> {
    let mut applied = app.store.migrate().await?;
    let moved = app.lake.move_legacy().await?;
    if moved.partitions > 0 {
        tracing::info!(
            partitions = moved.partitions,
            lines = moved.billing_lines,
            samples = moved.usage_samples,
            "moved raw rows from SQL to the columnar store"
        );
    }
    applied += app.store.migrate().await?;
    Ok((applied, moved))
}
