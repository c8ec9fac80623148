//! Jobs: the work Tally does on request or on schedule (import, collect,
//! allocate, load the demo), each recorded as a job run, and the scheduler
//! that runs them.
//!
//! Architecture invariants:
//! - Orchestration only: this crate calls the readers and the allocation
//!   (`tally-allocation`), the outside world (`tally-collectors`) and the
//!   database (`tally-storage`) through their public APIs; it holds no SQL,
//!   no polars, no AWS SDK types and no HTTP.
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
use tally_storage::Store;

pub use progress::{NoProgress, Progress};

/// What every job needs: the database, the configuration and the clock.
#[derive(Clone, Debug)]
pub struct App {
    pub store: Arc<dyn Store>,
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
    Read(#[from] tally_allocation::ReadError),
    #[error(transparent)]
    Storage(#[from] tally_storage::StorageError),
    #[error(transparent)]
    Allocation(#[from] tally_allocation::AllocationError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// Runs CPU-heavy work (file reading, the pipeline) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| JobError::Failed(format!("worker thread failed: {e}")))?
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
