//! The scheduler, with a manual clock: catch-up, no overlap, and one runner
//! per job across replicas sharing a PostgreSQL database.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cron::Schedule;
use tally_domain::{Clock, Config, ManualClock};
use tally_jobs::App;
use tally_jobs::scheduler::{JobKind, JobRunner, Ran, ScheduledJob, Scheduler};
use tally_storage::{PostgresStore, SqliteStore, Store};

/// Counts runs; each takes `pause`.
#[derive(Debug, Default)]
struct Counting {
    runs: AtomicU32,
    pause: Duration,
}

#[async_trait]
impl JobRunner for Counting {
    async fn run(&self, _kind: JobKind) -> Result<String, String> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.pause).await;
        Ok("done".into())
    }
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn app(store: Arc<dyn Store>, clock: Arc<ManualClock>, holder: &str) -> App {
    App::new(store, Arc::new(Config::default()), clock, std::env::temp_dir().join(format!("tally-scheduler-{}", std::process::id())), holder.into()).unwrap()
}

fn hourly() -> Vec<ScheduledJob> {
    vec![ScheduledJob { kind: JobKind::Allocate, schedule: Schedule::from_str("0 0 * * * *").unwrap() }]
}

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("s.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), dir)
}

#[tokio::test]
async fn a_job_runs_when_its_time_comes_and_a_missed_run_is_caught_up_once() {
    let (store, _dir) = sqlite().await;
    let clock = Arc::new(ManualClock::new(t("2026-11-02T10:30:00Z")));
    let runner = Arc::new(Counting::default());
    let s = Scheduler::new(app(store.clone(), clock.clone(), "a"), hourly(), runner.clone());
    // Never run: the 10:00 run is caught up at start, once.
    assert!(matches!(s.run_due(clock.now()).await.unwrap()[..], [(JobKind::Allocate, Ran::Succeeded(_))]));
    assert!(s.run_due(clock.now()).await.unwrap().is_empty());
    clock.set(t("2026-11-02T10:59:59Z"));
    assert!(s.run_due(clock.now()).await.unwrap().is_empty());
    clock.set(t("2026-11-02T11:00:00Z"));
    assert_eq!(s.run_due(clock.now()).await.unwrap().len(), 1);
    // Down from 11:00 to 14:20: three runs were missed; one catches up.
    clock.set(t("2026-11-02T14:20:00Z"));
    let restarted = Scheduler::new(app(store.clone(), clock.clone(), "a2"), hourly(), runner.clone());
    assert_eq!(restarted.run_due(clock.now()).await.unwrap().len(), 1);
    assert!(restarted.run_due(clock.now()).await.unwrap().is_empty());
    assert_eq!(runner.runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_job_never_overlaps_itself_in_one_process() {
    let (store, _dir) = sqlite().await;
    let clock = Arc::new(ManualClock::new(t("2026-11-02T10:30:00Z")));
    let runner = Arc::new(Counting { runs: AtomicU32::new(0), pause: Duration::from_millis(300) });
    let s = Arc::new(Scheduler::new(app(store, clock.clone(), "a"), hourly(), runner.clone()));
    let (a, b) = tokio::join!(s.run_due(clock.now()), s.run_due(clock.now()));
    let ran = a.unwrap().into_iter().chain(b.unwrap()).filter(|(_, r)| matches!(r, Ran::Succeeded(_))).count();
    assert_eq!(ran, 1);
    assert_eq!(runner.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn two_schedulers_on_one_postgresql_never_run_the_same_job_twice() {
    let name = tally_test_support::unique_name("tally_sched");
    let admin = tally_test_support::postgres_url("postgres");
    PostgresStore::create_database(&admin, &name).await.unwrap();
    let url = tally_test_support::postgres_url(&name);
    let first: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    first.migrate().await.unwrap();
    let second: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let clock = Arc::new(ManualClock::new(t("2026-11-02T10:30:00Z")));
    let runner = Arc::new(Counting { runs: AtomicU32::new(0), pause: Duration::from_millis(200) });
    let a = Arc::new(Scheduler::new(app(first.clone(), clock.clone(), "replica-a"), hourly(), runner.clone()));
    let b = Arc::new(Scheduler::new(app(second.clone(), clock.clone(), "replica-b"), hourly(), runner.clone()));
    for hour in ["10:30", "11:00", "12:00", "13:00"] {
        clock.set(t(&format!("2026-11-02T{hour}:00Z")));
        // Both replicas wake at the same time, several times over.
        let (ra, rb) = tokio::join!(a.run_due(clock.now()), b.run_due(clock.now()));
        let (ra2, rb2) = tokio::join!(a.run_due(clock.now()), b.run_due(clock.now()));
        let succeeded = [ra.unwrap(), rb.unwrap(), ra2.unwrap(), rb2.unwrap()].into_iter().flatten().filter(|(_, r)| matches!(r, Ran::Succeeded(_))).count();
        assert_eq!(succeeded, 1, "exactly one replica ran the {hour} run");
    }
    assert_eq!(runner.runs.load(Ordering::SeqCst), 4);

    // A replica that dies holding the lease blocks the job until the lease expires.
    clock.set(t("2026-11-02T14:00:00Z"));
    assert!(first.try_lease("allocate", "dead-replica", clock.now(), chrono::Duration::seconds(300)).await.unwrap());
    assert!(matches!(b.run_due(clock.now()).await.unwrap()[..], [(_, Ran::Skipped)]));
    clock.set(t("2026-11-02T14:06:00Z"));
    assert!(matches!(b.run_due(clock.now()).await.unwrap()[..], [(_, Ran::Succeeded(_))]), "the lease expired");
    drop((a, b, first, second));
    PostgresStore::drop_database(&admin, &name).await.unwrap();
}

#[test]
fn the_last_fire_time_is_found_without_walking_the_schedule() {
    let every_second = Schedule::from_str("* * * * * *").unwrap();
    assert_eq!(Scheduler::last_fire(&every_second, t("2026-11-02T10:30:05Z")), Some(t("2026-11-02T10:30:05Z")));
    let daily = Schedule::from_str("0 40 7 * * *").unwrap();
    assert_eq!(Scheduler::last_fire(&daily, t("2026-11-02T07:39:59Z")), Some(t("2026-11-01T07:40:00Z")));
}

/// Fails the way a job can: with an error (holding a secret) or with a panic.
#[derive(Debug)]
struct Failing {
    panics: bool,
}

#[async_trait]
impl JobRunner for Failing {
    async fn run(&self, _kind: JobKind) -> Result<String, String> {
        if self.panics {
            panic!("index out of bounds in a job");
        }
        Err("connecting to postgres://tally:job-s3cret@db/app: connection refused".into())
    }
}

#[tokio::test]
async fn a_failed_scheduled_job_is_in_the_job_list_with_its_error_and_no_secret() {
    let (store, _dir) = sqlite().await;
    let clock = Arc::new(ManualClock::new(t("2026-11-02T10:30:00Z")));
    let s = Scheduler::new(app(store.clone(), clock.clone(), "a"), hourly(), Arc::new(Failing { panics: false }));
    assert!(matches!(s.run_due(clock.now()).await.unwrap()[..], [(JobKind::Allocate, Ran::Failed(_))]));
    let runs = store.job_runs(Some("allocate"), 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].outcome, tally_domain::JobOutcome::Failed);
    let error = runs[0].error.clone().unwrap();
    assert!(error.contains("connection refused") && !error.contains("job-s3cret"), "{error}");
}

#[tokio::test]
async fn a_panicking_job_fails_releases_its_lease_and_runs_again_next_time() {
    let (store, _dir) = sqlite().await;
    let clock = Arc::new(ManualClock::new(t("2026-11-02T10:30:00Z")));
    // A short lease, renewed every 2 s while a job runs: a renewal left running would show within the test.
    let mut config = Config::default();
    config.schedule.lease_seconds = 6;
    let dir = std::env::temp_dir().join(format!("tally-scheduler-{}", std::process::id()));
    let a = App::new(store.clone(), Arc::new(config), clock.clone(), dir, "a".into()).unwrap();
    let s = Scheduler::new(a, hourly(), Arc::new(Failing { panics: true }));
    match &s.run_due(clock.now()).await.unwrap()[..] {
        [(JobKind::Allocate, Ran::Failed(e))] => assert!(e.contains("index out of bounds"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.job_runs(Some("allocate"), 10).await.unwrap()[0].outcome, tally_domain::JobOutcome::Failed);
    // The lease was released and nothing renews it: past a renewal interval (2 s) another holder takes it.
    // (A renewal left running would have taken the free lease back for "a".)
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(store.try_lease("allocate", "b", clock.now(), chrono::Duration::seconds(60)).await.unwrap(), "a renewal outlived the job");
    store.release_lease("allocate", "b").await.unwrap();
    // The job is not stuck as running: the next hour runs it again.
    clock.set(t("2026-11-02T11:00:00Z"));
    assert!(matches!(s.run_due(clock.now()).await.unwrap()[..], [(JobKind::Allocate, Ran::Failed(_))]));
}
