//! What each subcommand does.

#![allow(clippy::print_stdout, reason = "a command line prints its results")]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use tally_api::auth::{Role, issue};
use tally_domain::{Config, Month, SystemClock, TenantId};
use tally_jobs::App;
use tally_jobs::import::{BillingFormat, import_billing, import_revenue, import_usage, local_files};
use tally_storage::AllocationFilter;

use crate::cli::{Cli, CollectCommand, Command, ExportCommand, FileFormat, ImportCommand, PricesCommand, StoreCommand, TokenCommand};
use crate::output::{Bar, table};

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let config = load_config(&cli)?;
    let data_dir = data_dir(&cli, &config)?;
    let url = database_url(&cli, &config, &data_dir);
    match cli.command {
        Command::Migrate => {
            let app = open(config, data_dir, &url).await?;
            let swept = app.lake.sweep(std::time::Duration::from_secs(3600)).await?;
            let status = app.store.migration_status().await?;
            println!("the database is at version {}; the columnar store is at {}", status.applied.last().copied().unwrap_or(0), app.lake.location());
            if swept.superseded + swept.orphans > 0 {
                println!("swept {} replaced and {} unfinished file(s) from the store", swept.superseded, swept.orphans);
            }
            Ok(ExitCode::SUCCESS)
        }
        command => {
            let app = open(config, data_dir, &url).await?;
            dispatch(app, command).await
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config> {
    let text = match &cli.config {
        Some(path) => Some((path.display().to_string(), std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?)),
        None => None,
    };
    Config::load(text.as_ref().map(|(n, t)| (n.as_str(), t.as_str())), std::env::vars()).map_err(|e| anyhow!("{e}"))
}

fn data_dir(cli: &Cli, config: &Config) -> Result<PathBuf> {
    if let Some(d) = cli.data_dir.clone().or_else(|| config.data_dir.clone()) {
        return Ok(d);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| anyhow!("no data directory: set --data-dir, TALLY_DATA_DIR or HOME"))?;
    Ok(base.join("tally"))
}

fn database_url(cli: &Cli, config: &Config, data_dir: &Path) -> String {
    cli.database_url.clone().or_else(|| config.database.url.clone()).unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tally.db").display()))
}

async fn open(config: Config, data_dir: PathBuf, url: &str) -> Result<App> {
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let store = tally_storage::connect(url).await.with_context(|| format!("opening the database {}", tally_storage::redact(url)))?;
    let holder = format!("{}:{}", hostname(), std::process::id());
    let mut app = App::new(store.clone(), Arc::new(config), Arc::new(SystemClock), data_dir, holder).context("opening the columnar store")?;
    // A test of crash safety pauses an import between writing its files and switching the catalog.
    if let Some(ms) = std::env::var("TALLY_TEST_PAUSE_BEFORE_SWITCH_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        let lake = tally_lake::Lake::open(app.config.storage.lake.as_deref(), &app.data_dir, store.clone())?
            .with_faults(tally_lake::Faults { pause_before_switch: Some(std::time::Duration::from_millis(ms)) });
        app.lake = Arc::new(lake);
    }
    let (applied, moved) = tally_jobs::migrate(&app).await.context("migrating the database")?;
    if applied > 0 {
        tracing::info!(applied, "database migrated");
    }
    if moved.partitions > 0 {
        eprintln!(
            "moved {} billing line(s) and {} usage sample(s) from the database into the columnar store at {}",
            moved.billing_lines,
            moved.usage_samples,
            app.lake.location()
        );
    }
    let config = app.config.clone();
    let tenants: Vec<tally_domain::Tenant> = config
        .tenants
        .iter()
        .map(|t| tally_domain::Tenant::new(t.id.clone(), &t.name, t.plan.as_deref()))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("tenants in the config: {e}"))?;
    if !tenants.is_empty() {
        store.upsert_tenants(&tenants).await?;
    }
    Ok(app)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into())
}

fn day(s: &str, what: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| anyhow!("{what} {s:?}: expected a day, YYYY-MM-DD"))
}

fn month(s: &str, what: &str) -> Result<Month> {
    Month::parse(s).map_err(|e| anyhow!("{what}: {e}"))
}

async fn dispatch(app: App, command: Command) -> Result<ExitCode> {
    match command {
        Command::Migrate => unreachable!("handled before opening the app"),
        Command::Demo { listen, tenants, months, seed, no_serve } => demo(app, listen, tenants, months, seed, no_serve).await,
        Command::Serve { listen, no_scheduler } => serve(app, listen, no_scheduler).await,
        Command::Import(cmd) => import(&app, cmd).await,
        Command::Store(StoreCommand::Status) => {
            println!("columnar store: {}", app.lake.location());
            let mut rows = Vec::new();
            for kind in [tally_storage::LakeKind::Billing, tally_storage::LakeKind::Usage] {
                for p in app.store.lake_partitions(kind).await? {
                    let files = app.store.lake_files(kind, Some(&p.source), p.month, p.month).await?;
                    let bytes: i64 = files.iter().map(|f| f.bytes).sum();
                    rows.push(vec![
                        kind.to_string(),
                        p.source.clone(),
                        p.month.to_string(),
                        p.rows.to_string(),
                        files.len().to_string(),
                        format!("{:.1}", bytes as f64 / 1e6),
                        p.updated_at.format("%Y-%m-%d %H:%M").to_string(),
                    ]);
                }
            }
            print!("{}", table(&["kind", "source", "month", "rows", "files", "MB", "switched (UTC)"], &rows, &[3, 4, 5]));
            Ok(ExitCode::SUCCESS)
        }
        Command::Store(StoreCommand::Sweep { grace }) => {
            let grace = parse_duration(&grace).map_err(|e| anyhow!("--grace: {e}"))?;
            let swept = app.lake.sweep(grace.to_std().unwrap_or_default()).await?;
            println!("deleted {} replaced file(s) and {} unfinished file(s); {} cached copies pruned", swept.superseded, swept.orphans, swept.cached);
            Ok(ExitCode::SUCCESS)
        }
        Command::Collect(CollectCommand::Costs { from, to }) => {
            let window = match (from, to) {
                (Some(f), Some(t)) => Some((day(&f, "--from")?, day(&t, "--to")?)),
                (None, None) => None,
                _ => bail!("give both --from and --to (YYYY-MM-DD, --to exclusive), or neither for the restatement window"),
            };
            let api =
                tally_collectors::cost_explorer::SdkCostExplorer::new(&tally_collectors::aws::sdk_config(&tally_collectors::aws::AwsSettings::default()).await);
            let policy = tally_collectors::retry::RetryPolicy::new(app.config.collectors.cost_explorer.max_retries);
            let r = tally_jobs::collect::collect_costs(&app, &api, window, &policy).await?;
            println!(
                "Cost Explorer {}..{}: {} lines ({} replaced), {} request(s) (${:.2}), {} day(s) still estimated; job run {}",
                r.from,
                r.to,
                r.lines,
                r.replaced,
                r.requests,
                f64::from(r.requests) * 0.01,
                r.estimated_days,
                r.job_run
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Collect(CollectCommand::Usage { from, to }) => {
            let window = match (from, to) {
                (Some(f), Some(t)) => Some((
                    day(&f, "--from")?.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
                    day(&t, "--to")?.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
                )),
                (None, None) => None,
                _ => bail!("give both --from and --to (YYYY-MM-DD), or neither for the configured lookback"),
            };
            let c = &app.config.collectors;
            let mut ran = 0;
            if !c.cloudwatch.queries.is_empty() {
                let api =
                    tally_collectors::cloudwatch::SdkCloudWatch::new(&tally_collectors::aws::sdk_config(&tally_collectors::aws::AwsSettings::default()).await);
                let r = tally_jobs::usage::collect_cloudwatch(&app, &api, window, &tally_collectors::retry::RetryPolicy::new(5)).await?;
                println!("CloudWatch: {} samples; job run {}", r.samples, r.job_run);
                for n in &r.notes {
                    eprintln!("warning: {n}");
                }
                ran += 1;
            }
            if let Some(url) = &c.postgres.url {
                let db = tally_jobs::usage::AppDatabaseSource(tally_storage::appdb::AppDatabase::connect(url).await?);
                let r = tally_jobs::usage::collect_postgres(&app, &db).await?;
                println!("PostgreSQL: {} samples; job run {}", r.samples, r.job_run);
                for n in &r.notes {
                    eprintln!("note: {n}");
                }
                ran += 1;
            }
            if c.redis.url.is_some() {
                let r = tally_jobs::usage::collect_redis_usage(&app).await?;
                println!("Redis: {} samples; job run {}", r.samples, r.job_run);
                ran += 1;
            }
            if ran == 0 {
                bail!("no usage collector is configured: set collectors.cloudwatch.queries, collectors.postgres.url or collectors.redis.url");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Allocate { month: m, from, to, all } => {
            let months: Vec<Month> = match (m, from, to, all) {
                (Some(m), _, _, _) => vec![month(&m, "--month")?],
                (None, Some(f), Some(t), _) => month(&f, "--from")?.through(month(&t, "--to")?).collect(),
                (None, _, _, true) => app.lake.billing_months().await?,
                _ => bail!("say which months: --month YYYY-MM, --from YYYY-MM --to YYYY-MM, or --all"),
            };
            if months.is_empty() {
                bail!("there is no billing data to allocate; import a CUR or FOCUS export first");
            }
            // Each month on its own: one that fails is reported, the others are allocated.
            let (done, failed) = tally_jobs::allocate::allocate_each(&app, &months).await;
            let mut rows = Vec::new();
            for o in &done {
                let rec = app.store.billed_totals(o.month).await?;
                let billed: tally_domain::Decimal = rec.iter().map(|b| b.unblended).sum();
                rows.push(vec![
                    o.month.to_string(),
                    o.billed_lines.to_string(),
                    o.usage_rows.to_string(),
                    o.rows.to_string(),
                    format!("{:.*}", app.config.currency.minor_units() as usize, billed),
                ]);
            }
            if !rows.is_empty() {
                print!("{}", table(&["month", "billing lines", "usage rows", "result rows", "billed"], &rows, &[1, 2, 3, 4]));
            }
            if !failed.is_empty() {
                return Err(tally_jobs::allocate::failed_months(&failed, months.len()).into());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(ExportCommand::Monthly { month: m, out, format }) => {
            let m = month(&m, "--month")?;
            if !app.store.allocation_runs().await?.iter().any(|r| r.month == m) {
                bail!("{m} has not been allocated: run `tally allocate --month {m}`");
            }
            let rows = app.store.allocation_rows(&AllocationFilter::months(m, m)).await?;
            let tenants = app.store.tenants().await?;
            match format {
                FileFormat::Csv => {
                    let bytes = tally_reports::export::monthly_csv(&rows, &tenants)?;
                    write_out(out.as_deref(), &bytes)?;
                }
                FileFormat::Parquet => {
                    let path = out.ok_or_else(|| anyhow!("Parquet needs --out FILE"))?;
                    tally_reports::export::monthly_parquet(&rows, &tenants, &path)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(ExportCommand::Focus { month: m, out, format }) => {
            let m = month(&m, "--month")?;
            let runs = app.store.allocation_runs().await?;
            let source = match runs.iter().find(|r| r.month == m).and_then(|r| r.source.parse().ok()) {
                Some(s) => s,
                None => tally_jobs::allocate::month_source(&app, m).await?,
            };
            // The month streams from the store into the file, batch by batch.
            let sink: Box<dyn std::io::Write + Send> = match (&out, format) {
                (Some(p), _) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).with_context(|| format!("writing {}", p.display()))?)),
                (None, FileFormat::Csv) => Box::new(std::io::stdout()),
                (None, FileFormat::Parquet) => bail!("Parquet needs --out FILE"),
            };
            let writer = std::sync::Arc::new(std::sync::Mutex::new(Some(match format {
                FileFormat::Csv => FocusOut::Csv(tally_reports::focus::FocusCsv::new(sink)?),
                FileFormat::Parquet => FocusOut::Parquet(tally_reports::focus::FocusParquet::new(sink)?),
            })));
            let slot = writer.clone();
            let lines = app
                .lake
                .each_line_batch(source, m, 50_000, move |lines| match slot.lock().expect("writer").as_mut().expect("open") {
                    FocusOut::Csv(w) => w.write(&lines).map_err(|e| e.to_string()),
                    FocusOut::Parquet(w) => w.write(&lines).map_err(|e| e.to_string()),
                })
                .await?;
            match writer.lock().expect("writer").take().expect("open") {
                FocusOut::Csv(w) => w.finish()?.flush()?,
                FocusOut::Parquet(w) => w.finish()?.flush()?,
            }
            if lines == 0 {
                bail!("no billing lines for {m}: import a CUR or FOCUS export first");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Savings { lookback, term, payment, json } => crate::savings_cli::savings(&app, lookback, term, payment, json).await,
        Command::Prices(PricesCommand::Import { file }) => crate::savings_cli::prices_import(&app, &file).await,
        Command::Prices(PricesCommand::Show { filter }) => crate::savings_cli::prices_show(&app, filter).await,
        Command::Collect(CollectCommand::Recommendations { lookback }) => crate::savings_cli::collect_recommendations(&app, lookback).await,
        Command::Token(cmd) => token(&app, cmd).await,
        Command::Jobs { job, limit } => {
            let runs = app.store.job_runs(job.as_deref(), limit).await?;
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.job.clone(),
                        r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        r.finished_at.map(|f| format!("{:.1}s", (f - r.started_at).num_milliseconds() as f64 / 1000.0)).unwrap_or_else(|| "running".into()),
                        r.outcome.to_string(),
                        r.rows_written.to_string(),
                        r.api_requests.to_string(),
                        r.error.clone().or_else(|| r.detail.clone()).unwrap_or_default(),
                    ]
                })
                .collect();
            print!("{}", table(&["id", "job", "started (UTC)", "took", "outcome", "rows", "requests", "detail"], &rows, &[0, 5, 6]));
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { tenant, month: m, pool } => {
            let m = month(&m, "--month")?;
            let t = TenantId::parse(&tenant).map_err(|e| anyhow!("--tenant: {e}"))?;
            let mut ex = app.store.explanations(m, Some(t.as_str())).await?;
            if let Some(p) = pool {
                ex.retain(|e| e.pool.as_str() == p);
            }
            if ex.is_empty() {
                bail!("no allocation of {m} names {t}: check the month is allocated (`tally allocate --month {m}`) and the tenant id");
            }
            for e in &ex {
                println!("{} / {}: {} of {} (share {:.4}%)", e.allocatee, e.pool, e.allocated_unblended, e.pool_unblended, e.share * 100.0);
                println!("  method: {}", e.method);
                if let Some(d) = &e.driver {
                    println!(
                        "  driver: {d}: {} of the pool's {}",
                        e.driver_quantity.map(|q| format!("{q:.4}")).unwrap_or_else(|| "-".into()),
                        e.pool_driver_quantity.map(|q| format!("{q:.4}")).unwrap_or_else(|| "-".into())
                    );
                }
                println!("  amortized: {} of {}", e.allocated_amortized, e.pool_amortized);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The writer of `tally export focus`.
enum FocusOut {
    Csv(tally_reports::focus::FocusCsv<Box<dyn std::io::Write + Send>>),
    Parquet(tally_reports::focus::FocusParquet<Box<dyn std::io::Write + Send>>),
}

fn write_out(out: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match out {
        Some(p) => std::fs::write(p, bytes).with_context(|| format!("writing {}", p.display())),
        None => std::io::stdout().write_all(bytes).context("writing to standard output"),
    }
}

async fn import(app: &App, cmd: ImportCommand) -> Result<ExitCode> {
    let progress = Bar::new();
    match cmd {
        cmd @ (ImportCommand::Cur { .. } | ImportCommand::Focus { .. }) => {
            let (paths, format) = match cmd {
                ImportCommand::Cur { paths } => (paths, BillingFormat::Cur),
                ImportCommand::Focus { paths } => (paths, BillingFormat::Focus),
                _ => unreachable!(),
            };
            let mut files = Vec::new();
            let mut notes = Vec::new();
            for p in &paths {
                let (f, n) = if p.starts_with("s3://") {
                    let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
                    let reader = tally_collectors::s3::S3Reader::new(&tally_collectors::aws::AwsSettings::default(), path_style).await;
                    tally_jobs::import::fetch_s3(app, &reader, p, &tally_collectors::retry::RetryPolicy::new(5)).await?
                } else {
                    local_files(Path::new(p))?
                };
                files.extend(f);
                notes.extend(n);
            }
            let report = import_billing(app, files, notes, format, None, &progress).await?;
            for n in &report.notes {
                println!("{n}");
            }
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            let rows: Vec<Vec<String>> = report
                .months
                .iter()
                .map(|m| vec![m.month.to_string(), m.lines.to_string(), format!("{:.2}", m.unblended), format!("{:.2}", m.amortized)])
                .collect();
            print!("{}", table(&["billing period", "lines", "unblended", "amortized"], &rows, &[1, 2, 3]));
            println!("{} file(s); {} earlier line(s) replaced; job run {}", report.files.len(), report.replaced, report.job_run);
            if !report.tenants_created.is_empty() {
                println!("{}", new_tenants(&report.tenants_created));
            }
            Ok(ExitCode::SUCCESS)
        }
        ImportCommand::Usage { path } => {
            let r = import_usage(app, &path, "file").await?;
            println!(
                "{} samples of {} imported from {}; {} earlier sample(s) replaced; job run {}",
                r.samples,
                r.metrics.join(", "),
                r.file.display(),
                r.replaced,
                r.job_run
            );
            if !r.tenants_created.is_empty() {
                println!("{}", new_tenants(&r.tenants_created));
            }
            Ok(ExitCode::SUCCESS)
        }
        ImportCommand::Revenue { path } => {
            let r = import_revenue(app, &path).await?;
            println!("{} revenue entries for {} imported", r.entries, r.months.iter().map(Month::to_string).collect::<Vec<_>>().join(", "));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The tenants an import created, in a line: all of a few, the first ten of many.
fn new_tenants(ids: &[TenantId]) -> String {
    let shown: Vec<&str> = ids.iter().take(10).map(TenantId::as_str).collect();
    match ids.len() {
        n if n <= 10 => format!("new tenants: {}", shown.join(", ")),
        n => format!("{n} new tenants: {} and {} more", shown.join(", "), n - 10),
    }
}

/// `90s`, `30m`, `12h`, `7d`.
/// A duration such as `90s`, `30m`, `12h` or `7d`: a whole number, then its
/// unit, no longer than 100 years. `None` for anything else.
fn duration(s: &str) -> Option<Duration> {
    let unit = s.chars().next_back()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok().filter(|n| *n >= 0)?;
    let d = match unit {
        's' => Duration::try_seconds(n),
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        _ => None,
    }?;
    (d <= Duration::days(36_525)).then_some(d)
}

fn parse_duration(s: &str) -> Result<Duration> {
    duration(s).ok_or_else(|| anyhow!("{s:?}: expected a duration such as 90s, 30m, 12h or 7d (at most 100 years)"))
}

fn parse_expiry(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    duration(s)
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| anyhow!("--expires {s:?}: expected YYYY-MM-DD, an RFC 3339 time, or a duration such as 30d, 12h or 90m (at most 100 years)"))
}

async fn token(app: &App, cmd: TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Create { role, tenant, expires, label } => {
            let role: Role = role.parse().map_err(|e: String| anyhow!("--role: {e}"))?;
            let tenant = tenant.map(|t| TenantId::parse(&t).map_err(|e| anyhow!("--tenant: {e}"))).transpose()?;
            if let Some(t) = &tenant
                && !app.store.tenants().await?.iter().any(|x| &x.id == t)
            {
                bail!("--tenant: no tenant {t}; import data for it first or add it under [[tenants]] in the config");
            }
            let now = app.clock.now();
            let expires_at = expires.map(|e| parse_expiry(&e, now)).transpose()?;
            let issued = issue(app.store.as_ref(), role, tenant, label, expires_at, now).await.map_err(|e| anyhow!(e))?;
            println!("{}", issued.token);
            eprintln!("token {} created for role {role}; it is shown only now", issued.record.id);
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List => {
            let now = app.clock.now();
            let rows: Vec<Vec<String>> = app
                .store
                .tokens()
                .await?
                .iter()
                .map(|t| {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else if t.expires_at.is_some_and(|e| e <= now) {
                        "expired"
                    } else {
                        "active"
                    };
                    vec![
                        t.id.to_string(),
                        t.role.clone(),
                        t.tenant.as_ref().map(|x| x.to_string()).unwrap_or_default(),
                        t.label.clone().unwrap_or_default(),
                        t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        t.expires_at.map(|e| e.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "never".into()),
                        state.into(),
                    ]
                })
                .collect();
            print!("{}", table(&["id", "role", "tenant", "label", "created", "expires", "state"], &rows, &[0]));
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { id } => {
            if app.store.revoke_token(id, app.clock.now()).await? {
                println!("token {id} revoked");
                Ok(ExitCode::SUCCESS)
            } else {
                bail!("no active token with id {id}")
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn public_base(app: &App, listen: std::net::SocketAddr) -> String {
    app.config.server.public_url.clone().unwrap_or_else(|| format!("http://{listen}")).trim_end_matches('/').to_owned()
}

async fn bind(listen: std::net::SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))
}

async fn serve_until_shutdown(app: &App, listener: tokio::net::TcpListener) -> Result<()> {
    let listen = listener.local_addr()?;
    let state = tally_api::ApiState::new(app.store.clone(), app.lake.clone(), app.config.clone(), app.clock.clone(), Arc::new(app.clone()));
    tracing::info!(%listen, "serving the API and dashboard");
    tally_api::serve(listener, &app.config.server, tally_api::router(state), shutdown_signal()).await.context("serving")?;
    Ok(())
}

async fn serve(app: App, listen: Option<std::net::SocketAddr>, no_scheduler: bool) -> Result<ExitCode> {
    let listen = listen.unwrap_or(app.config.server.listen);
    let listener = bind(listen).await?;
    tally_jobs::keep_configured_monthly_costs(&app).await?;
    println!("Tally is serving on {}", public_base(&app, listen));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = if no_scheduler {
        None
    } else {
        let runner = Arc::new(tally_jobs::runner::ProductRunner { app: app.clone(), aws: tally_collectors::aws::AwsSettings::default() });
        let s = Arc::new(tally_jobs::scheduler::Scheduler::from_config(app.clone(), runner)?);
        Some(tokio::spawn(s.run_forever(stopped)))
    };
    serve_until_shutdown(&app, listener).await?;
    // Let a job in flight finish (each writes in one transaction) before exiting.
    let _ = stop.send(true);
    if let Some(handle) = scheduler {
        let _ = handle.await;
    }
    Ok(ExitCode::SUCCESS)
}

async fn demo(app: App, listen: std::net::SocketAddr, tenants: usize, months: usize, seed: u64, no_serve: bool) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let progress = Bar::new();
    let loaded = tally_jobs::demo::load_demo(&app, &tally_jobs::demo::DemoOptions { tenants, months, seed }, &progress).await?;
    // One demo sign-in token at a time: earlier demo tokens are revoked.
    let now = app.clock.now();
    for t in app.store.tokens().await? {
        if t.label.as_deref() == Some("tally demo") && t.revoked_at.is_none() {
            app.store.revoke_token(t.id, now).await?;
        }
    }
    let issued = issue(app.store.as_ref(), Role::Admin, None, Some("tally demo".into()), Some(now + Duration::days(30)), now).await.map_err(|e| anyhow!(e))?;
    let months_text: Vec<String> = loaded.months.iter().map(Month::to_string).collect();
    println!(
        "Demo loaded in {:.1}s: {} tenants, {} billing lines and {} usage rows for {}.",
        started.elapsed().as_secs_f64(),
        loaded.tenants,
        loaded.billing_lines,
        loaded.usage_rows,
        months_text.join(", ")
    );
    if no_serve {
        println!("Sign-in token (admin, 30 days): {}", issued.token);
        return Ok(ExitCode::SUCCESS);
    }
    let listener = bind(listen).await?;
    let base = public_base(&app, listen);
    // The link signs in once and holds no token: the token stays out of the browser's history.
    let code = tally_api::auth::issue_link(app.store.as_ref(), &issued.record, 24, now).await.map_err(|e| anyhow!(e))?;
    println!(
        "\n  Open {base}/login?code={code}\n  (a one-time sign-in link, valid for 24 hours; afterwards sign in at {base}/login with the token)\n  API token (admin, 30 days): {}\n  Press Ctrl-C to stop.\n",
        issued.token
    );
    std::io::stdout().flush().ok();
    serve_until_shutdown(&app, listener).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_dates_times_or_durations() {
        let now: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        assert_eq!(parse_expiry("30d", now).unwrap(), now + Duration::days(30));
        assert_eq!(parse_expiry("2026-12-01", now).unwrap().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert!(parse_expiry("soon", now).is_err());
        // Not a panic: a unit that is not one byte, a number out of range, a negative one.
        for bad in ["30é", "é", "", "9999999999999999d", "-5d", "d"] {
            assert!(parse_expiry(bad, now).is_err(), "{bad:?}");
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
    }
}
