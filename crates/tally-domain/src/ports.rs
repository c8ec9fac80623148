//! Interfaces that the HTTP layer and the CLI call and the jobs crate
//! implements, so that neither needs to know how the work is done.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Month, ValidationError};

/// How a recorded job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome {
    Running,
    Succeeded,
    Failed,
    /// Not run: another replica held the job, or it had nothing to do.
    Skipped,
}

impl JobOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

impl fmt::Display for JobOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobOutcome {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(Self::Running),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            "skipped" => Ok(Self::Skipped),
            _ => Err(ValidationError::new("job outcome", s, "running, succeeded, failed or skipped")),
        }
    }
}

/// One recorded run of a job (a collector, an import, an allocation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: JobOutcome,
    pub rows_written: i64,
    pub api_requests: i64,
    pub error: Option<String>,
    pub detail: Option<String>,
}

/// What re-running an allocation produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationOutcome {
    pub month: Month,
    pub rows: usize,
    pub billed_lines: usize,
    pub usage_rows: usize,
    pub job_run_id: Option<i64>,
}

/// Re-runs the allocation of a month on request (the admin API, the CLI).
#[async_trait::async_trait]
pub trait AllocationTrigger: Send + Sync {
    async fn allocate_month(&self, month: Month) -> Result<AllocationOutcome, AllocationFailure>;
}

/// Why an allocation asked for did not run, as its caller must tell it apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationFailure {
    /// Nothing to allocate (no billing data for the month): the caller's to fix.
    #[error("{0}")]
    NoData(String),
    /// The database cannot be reached now; asking again later may work.
    #[error("the database is unreachable; try again shortly")]
    Unavailable,
    /// Anything else: a fault to log, not to show.
    #[error("{0}")]
    Failed(String),
}
