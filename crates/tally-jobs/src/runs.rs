//! Recording job runs around a unit of work.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tally_domain::{JobOutcome, Month};
use tally_storage::JobFinish;

use crate::{App, Result};

/// What a job has done so far, for its run record. Cloned into the work so
/// that a failed run still records the requests it made.
#[derive(Debug, Clone, Default)]
pub struct Tracker(Arc<Mutex<Counts>>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub rows_written: i64,
    pub api_requests: i64,
    pub detail: Option<String>,
}

impl Tracker {
    pub fn rows(&self, n: i64) {
        self.0.lock().expect("tracker").rows_written += n;
    }

    pub fn requests(&self, n: i64) {
        self.0.lock().expect("tracker").api_requests += n;
    }

    pub fn detail(&self, text: impl Into<String>) {
        self.0.lock().expect("tracker").detail = Some(text.into());
    }

    pub fn counts(&self) -> Counts {
        self.0.lock().expect("tracker").clone()
    }
}

/// Runs `work` as job `name`, recording its start and its end, outcome,
/// rows, requests and error. Returns the work's value and the run's id.
pub async fn record<T, F, Fut>(app: &App, name: &str, work: F) -> Result<(T, i64)>
where
    F: FnOnce(Tracker) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let id = app.store.start_job_run(name, &app.holder, app.clock.now()).await?;
    let tracker = Tracker::default();
    let out = work(tracker.clone()).await;
    let c = tracker.counts();
    let (outcome, error) = match &out {
        Ok(_) => (JobOutcome::Succeeded, None),
        Err(e) => (JobOutcome::Failed, Some(e.to_string())),
    };
    let finish = JobFinish { at: app.clock.now(), outcome, rows_written: c.rows_written, api_requests: c.api_requests, error, detail: c.detail };
    if let Err(e) = app.store.finish_job_run(id, &finish).await {
        tracing::error!(job = name, error = %e, "could not record the end of a job run");
    }
    match &out {
        Ok(_) => tracing::info!(job = name, run = id, rows = c.rows_written, requests = c.api_requests, "job succeeded"),
        Err(e) => tracing::warn!(job = name, run = id, error = %tally_domain::redact(&e.to_string()), "job failed"),
    }
    out.map(|value| (value, id))
}

/// The job name of an allocation, e.g. `allocate:2026-10`.
pub fn allocate_job(month: Month) -> String {
    format!("allocate:{month}")
}
