//! The scheduler inside `tally serve`: each collector and the allocation on
//! its own cron expression (UTC, with seconds).
//!
//! - A job is due when the latest time its schedule fired (at or before now)
//!   has not been triggered yet; a run missed while the service was down is
//!   therefore caught up once at start, not once per missed time.
//! - Within a process a job never overlaps itself; across replicas sharing a
//!   database, a lease row decides who runs it, and the lease expires if its
//!   holder dies. The holder re-checks and records the trigger before
//!   running, so a replica that takes the lease later does not run it again.
//! - Time comes from the clock: tests call [`Scheduler::run_due`] with a
//!   manual clock instead of sleeping.
//! - A job that fails or panics is a failed run in the job list with its
//!   error (the jobs record their own runs; a failure before a job could
//!   record one, such as an unreachable database, is recorded here), and its
//!   lease is released and stops being renewed.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use cron::Schedule;
use futures::FutureExt as _;
use rand::Rng;
use tally_domain::{JobOutcome, Month};
use tally_storage::JobFinish;

use crate::{App, JobError, Result};

/// What the scheduler can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum JobKind {
    CollectCosts,
    CollectCloudWatch,
    CollectPostgres,
    CollectRedis,
    CollectRecommendations,
    Allocate,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::CollectCosts => "collect:costs",
            Self::CollectCloudWatch => "collect:usage:cloudwatch",
            Self::CollectPostgres => "collect:usage:postgres",
            Self::CollectRedis => "collect:usage:redis",
            Self::CollectRecommendations => "collect:recommendations",
            Self::Allocate => "allocate",
        }
    }
}

/// Runs a job of a kind; the product's runner builds the real clients.
#[async_trait]
pub trait JobRunner: Send + Sync {
    async fn run(&self, kind: JobKind) -> std::result::Result<String, String>;
}

#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub kind: JobKind,
    pub schedule: Schedule,
}

pub struct Scheduler {
    app: App,
    jobs: Vec<ScheduledJob>,
    runner: Arc<dyn JobRunner>,
    running: Mutex<BTreeSet<JobKind>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("jobs", &self.jobs.iter().map(|j| j.kind).collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

/// What happened to a due job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Succeeded(String),
    Failed(String),
    /// Another replica holds the job, or it already ran for this time.
    Skipped,
}

fn parse(expr: &str, key: &str) -> Result<Schedule> {
    Schedule::from_str(expr).map_err(|e| JobError::Invalid(format!("{key} = {expr:?}: {e}")))
}

fn trigger_doc(kind: JobKind) -> String {
    format!("schedule:last:{}", kind.name())
}

impl Scheduler {
    pub fn new(app: App, jobs: Vec<ScheduledJob>, runner: Arc<dyn JobRunner>) -> Self {
        Self { app, jobs, runner, running: Mutex::new(BTreeSet::new()) }
    }

    /// The enabled collectors and the allocation, on their configured schedules.
    pub fn from_config(app: App, runner: Arc<dyn JobRunner>) -> Result<Self> {
        let c = &app.config.collectors;
        let mut jobs = Vec::new();
        if c.cost_explorer.enabled {
            jobs.push(ScheduledJob { kind: JobKind::CollectCosts, schedule: parse(&c.cost_explorer.schedule, "collectors.cost_explorer.schedule")? });
        }
        if c.cloudwatch.enabled {
            jobs.push(ScheduledJob { kind: JobKind::CollectCloudWatch, schedule: parse(&c.cloudwatch.schedule, "collectors.cloudwatch.schedule")? });
        }
        if c.postgres.enabled {
            jobs.push(ScheduledJob { kind: JobKind::CollectPostgres, schedule: parse(&c.postgres.schedule, "collectors.postgres.schedule")? });
        }
        if c.redis.enabled {
            jobs.push(ScheduledJob { kind: JobKind::CollectRedis, schedule: parse(&c.redis.schedule, "collectors.redis.schedule")? });
        }
        if app.config.savings.recommendations_enabled && c.cost_explorer.enabled {
            jobs.push(ScheduledJob {
                kind: JobKind::CollectRecommendations,
                schedule: parse(&app.config.savings.recommendations_schedule, "savings.recommendations_schedule")?,
            });
        }
        jobs.push(ScheduledJob { kind: JobKind::Allocate, schedule: parse(&app.config.schedule.allocate, "schedule.allocate")? });
        Ok(Self::new(app, jobs, runner))
    }

    pub fn jobs(&self) -> &[ScheduledJob] {
        &self.jobs
    }

    /// The latest time `schedule` fired at or before `now`.
    pub fn last_fire(schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        schedule.after(&(now + Duration::seconds(1))).next_back().filter(|t| *t <= now)
    }

    async fn last_trigger(&self, kind: JobKind) -> Result<Option<DateTime<Utc>>> {
        Ok(self.app.store.document(&trigger_doc(kind)).await?.and_then(|(body, _)| DateTime::parse_from_rfc3339(&body).ok()).map(|t| t.with_timezone(&Utc)))
    }

    /// Jobs whose latest fire time is not yet triggered.
    pub async fn due(&self, now: DateTime<Utc>) -> Result<Vec<(JobKind, DateTime<Utc>)>> {
        let mut out = Vec::new();
        for job in &self.jobs {
            let Some(fire) = Self::last_fire(&job.schedule, now) else { continue };
            let triggered = self.last_trigger(job.kind).await?;
            if triggered.is_none_or(|t| t < fire) {
                out.push((job.kind, fire));
            }
        }
        Ok(out)
    }

    /// Runs every due job once (sequentially), each under its lease.
    pub async fn run_due(&self, now: DateTime<Utc>) -> Result<Vec<(JobKind, Ran)>> {
        let mut results = Vec::new();
        for (kind, fire) in self.due(now).await? {
            results.push((kind, self.run_one(kind, fire).await?));
        }
        Ok(results)
    }

    async fn run_one(&self, kind: JobKind, fire: DateTime<Utc>) -> Result<Ran> {
        {
            let mut running = self.running.lock().expect("scheduler lock");
            if !running.insert(kind) {
                return Ok(Ran::Skipped);
            }
        }
        // Removed however the run ends, a panic included.
        let _running = Running { set: &self.running, kind };
        self.run_leased(kind, fire).await
    }

    async fn run_leased(&self, kind: JobKind, fire: DateTime<Utc>) -> Result<Ran> {
        let store = &self.app.store;
        let ttl = Duration::seconds(i64::from(self.app.config.schedule.lease_seconds.max(5)));
        let name = kind.name();
        if !store.try_lease(name, &self.app.holder, self.app.clock.now(), ttl).await? {
            return Ok(Ran::Skipped);
        }
        // Another replica may have run it between our check and our lease.
        if self.last_trigger(kind).await?.is_some_and(|t| t >= fire) {
            store.release_lease(name, &self.app.holder).await?;
            return Ok(Ran::Skipped);
        }
        store.put_document(&trigger_doc(kind), &fire.to_rfc3339(), self.app.clock.now()).await?;
        // Renew the lease while the job runs, so a long job keeps it; the
        // renewal stops when the run ends, however it ends.
        let renew = AbortOnDrop({
            let (store, holder, clock) = (store.clone(), self.app.holder.clone(), self.app.clock.clone());
            tokio::spawn(async move {
                let every = std::time::Duration::from_secs((ttl.num_seconds() / 3).max(1) as u64);
                loop {
                    tokio::time::sleep(every).await;
                    if !matches!(store.try_lease(name, &holder, clock.now(), ttl).await, Ok(true)) {
                        tracing::warn!(job = name, "lost the job's lease while running");
                    }
                }
            })
        });
        let started = self.app.clock.now();
        let outcome = match AssertUnwindSafe(self.runner.run(kind)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(panic) => Err(format!("the job stopped on a bug (panic: {})", panic_message(panic.as_ref()))),
        };
        drop(renew);
        // The job's own failure is recorded first: releasing the lease may fail too (the database away).
        if let Err(e) = &outcome {
            self.record_failure(kind, started, e).await;
        }
        store.release_lease(name, &self.app.holder).await?;
        Ok(match outcome {
            Ok(detail) => Ran::Succeeded(detail),
            Err(e) => Ran::Failed(e),
        })
    }

    /// Puts a failed scheduled job in the job list, unless the job recorded
    /// its own failed run already.
    async fn record_failure(&self, kind: JobKind, started: DateTime<Utc>, error: &str) {
        let store = &self.app.store;
        let recorded = match store.job_runs(Some(kind.name()), 1).await {
            Ok(runs) => runs.first().is_some_and(|r| r.started_at >= started && r.outcome == JobOutcome::Failed),
            Err(_) => false,
        };
        if recorded {
            return;
        }
        let now = self.app.clock.now();
        let finish = JobFinish { at: now, outcome: JobOutcome::Failed, rows_written: 0, api_requests: 0, error: Some(error.to_owned()), detail: None };
        let saved = match store.start_job_run(kind.name(), &self.app.holder, started).await {
            Ok(id) => store.finish_job_run(id, &finish).await,
            Err(e) => Err(e),
        };
        if let Err(e) = saved {
            tracing::error!(job = kind.name(), error = %e, "could not record the scheduled job's failure");
        }
    }

    /// Ticks until `shutdown` resolves, running due jobs after a random jitter.
    pub async fn run_forever(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let jitter = self.app.config.schedule.jitter_seconds;
        tracing::info!(jobs = ?self.jobs.iter().map(|j| j.kind.name()).collect::<Vec<_>>(), "scheduler started");
        loop {
            match self.due(self.app.clock.now()).await {
                Ok(due) if !due.is_empty() => {
                    let pause = if jitter > 0 { rand::rng().random_range(0..=jitter) } else { 0 };
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(u64::from(pause))) => {}
                        _ = shutdown.changed() => break,
                    }
                    for (kind, fire) in due {
                        if *shutdown.borrow() {
                            break;
                        }
                        match self.run_one(kind, fire).await {
                            Ok(Ran::Failed(e)) => tracing::warn!(job = kind.name(), error = %tally_domain::redact(&e), "scheduled job failed"),
                            Ok(_) => {}
                            Err(e) => tracing::error!(job = kind.name(), error = %e, "scheduler error"),
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "scheduler cannot read its state"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!("scheduler stopped");
    }
}

/// Takes a job kind out of the running set when dropped.
struct Running<'a> {
    set: &'a Mutex<BTreeSet<JobKind>>,
    kind: JobKind,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.kind);
        }
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_else(|| "no message".into())
}

/// The months the scheduled allocation covers: the current one and the previous.
pub fn allocation_months(now: DateTime<Utc>) -> [Month; 2] {
    let m = Month::of(now);
    [m.prev(), m]
}
