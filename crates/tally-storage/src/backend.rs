//! The SQL of both backends, written once.
//!
//! `store_impl!` expands the same queries for SQLite and PostgreSQL. The
//! only difference it is given is how money crosses the boundary (the
//! `money_*` modules): PostgreSQL binds `Decimal` to `NUMERIC`, SQLite binds
//! the exact decimal text, because SQLite's numbers are floats.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row};
use tally_domain::{
    Allocatee, AllocationRow, CostLine, CostSource, Currency, Explanation, JobOutcome, JobRun, LineType, Money, Month, Period, PoolId, RevenueEntry, Tenant,
    TenantId, UsageSample,
};

use crate::migrate::{self, Migration, MigrationStatus};
use crate::{
    AllocationFilter, AllocationResultSet, AllocationRun, Backend, BilledTotal, CashBalance, CostImport, CostLineFilter, ImportBatch, ImportSummary, JobFinish,
    NewCashBalance, NewToken, ReplaceScope, Result, StorageError, Store, TokenRecord, UsageImport, UsageTotal,
};

/// Rows per multi-row INSERT: under SQLite's and PostgreSQL's bind limits
/// for the widest table (cost_lines, 26 columns).
const CHUNK: usize = 1000;

mod money_pg {
    use super::*;
    pub(super) type Param = Decimal;
    pub(super) fn bind(d: Decimal) -> Param {
        d
    }
    pub(super) fn get(row: &PgRow, col: &'static str, _table: &'static str) -> Result<Decimal> {
        Ok(row.try_get::<Decimal, _>(col)?)
    }
    pub(super) fn get_opt(row: &PgRow, col: &'static str, _table: &'static str) -> Result<Option<Decimal>> {
        Ok(row.try_get::<Option<Decimal>, _>(col)?)
    }
}

mod money_sqlite {
    use super::*;
    pub(super) type Param = String;
    pub(super) fn bind(d: Decimal) -> Param {
        d.to_string()
    }
    pub(super) fn get(row: &SqliteRow, col: &'static str, table: &'static str) -> Result<Decimal> {
        let text: String = row.try_get(col)?;
        Decimal::from_str_exact(&text).map_err(|_| StorageError::corrupt(table, col, text))
    }
    pub(super) fn get_opt(row: &SqliteRow, col: &'static str, table: &'static str) -> Result<Option<Decimal>> {
        let text: Option<String> = row.try_get(col)?;
        text.map(|t| Decimal::from_str_exact(&t).map_err(|_| StorageError::corrupt(table, col, t))).transpose()
    }
}

fn parse<T: FromStr>(table: &'static str, column: &'static str, value: String) -> Result<T> {
    value.parse::<T>().map_err(|_| StorageError::corrupt(table, column, value))
}

fn parse_opt<T: FromStr>(table: &'static str, column: &'static str, value: Option<String>) -> Result<Option<T>> {
    value.map(|v| parse(table, column, v)).transpose()
}

fn check_scope(import: &CostImport<'_>) -> Result<()> {
    for (i, line) in import.lines.iter().enumerate() {
        if line.source != import.source {
            return Err(StorageError::Config(format!("line {i} of {} comes from {} but the import is for {}", import.label, line.source, import.source)));
        }
        let inside = match import.scope {
            ReplaceScope::BillingMonths(months) => months.contains(&line.billing_month),
            ReplaceScope::UsageDays { from, to } => {
                let d = line.usage_start.date_naive();
                *from <= d && d <= *to
            }
        };
        if !inside {
            return Err(StorageError::Config(format!(
                "line {i} of {} ({} {}) lies outside the import's scope ({}); it would never be replaced",
                import.label,
                line.billing_month,
                line.usage_start.to_rfc3339(),
                import.scope
            )));
        }
    }
    Ok(())
}

/// Now, at the microsecond precision both databases keep, so that what is
/// returned equals what a later read gives back.
fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Period::day(d).start()
}

macro_rules! store_impl {
    ($Store:ident, $Db:ty, $Row:ty, $money:ident, $migrations:expr, $migration_lock:expr, $backend:expr) => {
        impl $Store {
            fn cost_line(row: &$Row) -> Result<CostLine> {
                const T: &str = "cost_lines";
                let tags: String = row.try_get("tags")?;
                Ok(CostLine {
                    usage_start: row.try_get("usage_start")?,
                    usage_end: row.try_get("usage_end")?,
                    billing_month: parse(T, "billing_month", row.try_get("billing_month")?)?,
                    payer_account: row.try_get("payer_account")?,
                    usage_account: row.try_get("usage_account")?,
                    service: row.try_get("service")?,
                    usage_type: row.try_get("usage_type")?,
                    operation: row.try_get("operation")?,
                    resource_id: row.try_get("resource_id")?,
                    region: row.try_get("region")?,
                    availability_zone: row.try_get("availability_zone")?,
                    line_type: parse::<LineType>(T, "line_type", row.try_get("line_type")?)?,
                    description: row.try_get("description")?,
                    currency: parse::<Currency>(T, "currency", row.try_get("currency")?)?,
                    unblended: $money::get(row, "unblended", T)?,
                    net_unblended: $money::get(row, "net_unblended", T)?,
                    amortized: $money::get(row, "amortized", T)?,
                    list_cost: $money::get_opt(row, "list_cost", T)?,
                    usage_amount: $money::get(row, "usage_amount", T)?,
                    usage_unit: row.try_get("usage_unit")?,
                    instance_type: row.try_get("instance_type")?,
                    commitment_id: row.try_get("commitment_id")?,
                    tags: serde_json::from_str(&tags).map_err(|_| StorageError::corrupt(T, "tags", tags))?,
                    tenant: parse_opt(T, "tenant_id", row.try_get("tenant_id")?)?,
                    estimated: row.try_get("estimated")?,
                    source: parse::<CostSource>(T, "source", row.try_get("source")?)?,
                    provider: row.try_get("provider")?,
                })
            }

            fn allocation_row(row: &$Row) -> Result<AllocationRow> {
                const T: &str = "allocations";
                Ok(AllocationRow {
                    month: parse(T, "month", row.try_get("month")?)?,
                    day: row.try_get("day")?,
                    allocatee: parse::<Allocatee>(T, "allocatee", row.try_get("allocatee")?)?,
                    pool: parse::<PoolId>(T, "pool", row.try_get("pool")?)?,
                    service: row.try_get("service")?,
                    currency: parse::<Currency>(T, "currency", row.try_get("currency")?)?,
                    unblended: $money::get(row, "unblended", T)?,
                    amortized: $money::get(row, "amortized", T)?,
                    driver: row.try_get("driver")?,
                    driver_quantity: row.try_get("driver_quantity")?,
                    reason: row.try_get("reason")?,
                })
            }

            fn token(row: &$Row) -> Result<TokenRecord> {
                Ok(TokenRecord {
                    id: row.try_get("id")?,
                    role: row.try_get("role")?,
                    tenant: parse_opt("api_tokens", "tenant_id", row.try_get("tenant_id")?)?,
                    label: row.try_get("label")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            }

            fn job_run(row: &$Row) -> Result<JobRun> {
                Ok(JobRun {
                    id: row.try_get("id")?,
                    job: row.try_get("job")?,
                    started_at: row.try_get("started_at")?,
                    finished_at: row.try_get("finished_at")?,
                    outcome: parse::<JobOutcome>("job_runs", "outcome", row.try_get("outcome")?)?,
                    rows_written: row.try_get("rows_written")?,
                    api_requests: row.try_get("api_requests")?,
                    error: row.try_get("error")?,
                    detail: row.try_get("detail")?,
                })
            }

            async fn insert_batch(
                tx: &mut sqlx::Transaction<'_, $Db>,
                kind: &str,
                source: &str,
                label: &str,
                scope: &str,
                rows: usize,
                replaced: u64,
            ) -> Result<i64> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO import_batches (kind, source, label, scope, rows, replaced, imported_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(kind)
                .bind(source)
                .bind(label)
                .bind(scope)
                .bind(rows as i64)
                .bind(replaced as i64)
                .bind(now())
                .fetch_one(&mut **tx)
                .await?;
                Ok(id)
            }

            async fn insert_allocation_rows(tx: &mut sqlx::Transaction<'_, $Db>, rows: &[AllocationRow]) -> Result<()> {
                for chunk in rows.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$Db>::new(
                        "INSERT INTO allocations (month, day, allocatee, pool, service, currency, unblended, amortized, driver, driver_quantity, reason) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.month.to_string())
                            .push_bind(r.day)
                            .push_bind(r.allocatee.as_str().to_owned())
                            .push_bind(r.pool.as_str().to_owned())
                            .push_bind(r.service.clone())
                            .push_bind(r.currency.code().to_owned())
                            .push_bind($money::bind(r.unblended))
                            .push_bind($money::bind(r.amortized))
                            .push_bind(r.driver.clone())
                            .push_bind(r.driver_quantity)
                            .push_bind(r.reason.clone());
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $Store {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn migrate(&self) -> Result<usize> {
                let migrations: &[Migration] = $migrations;
                let mut applied = 0;
                let mut tx = self.pool.begin().await?;
                if let Some(lock) = $migration_lock {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                sqlx::query(migrate::CREATE_TABLE).execute(&mut *tx).await?;
                let done: Vec<(i64, String)> =
                    sqlx::query_as("SELECT version, checksum FROM _tally_migrations ORDER BY version")
                        .fetch_all(&mut *tx)
                        .await?;
                let done: BTreeMap<i64, String> = done.into_iter().collect();
                if let Some(unknown) = done.keys().find(|v| !migrations.iter().any(|m| m.version == **v)) {
                    return Err(StorageError::Migration(format!(
                        "the database has migration {unknown}, which this version of Tally does not know; upgrade Tally"
                    )));
                }
                for m in migrations {
                    match done.get(&m.version) {
                        Some(sum) if *sum == m.checksum() => continue,
                        Some(_) => {
                            return Err(StorageError::Migration(format!(
                                "migration {:04}_{} was changed after it was applied",
                                m.version, m.name
                            )))
                        }
                        None => {}
                    }
                    sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(|e| {
                        StorageError::Migration(format!("{:04}_{}: {e}", m.version, m.name))
                    })?;
                    sqlx::query("INSERT INTO _tally_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
                        .bind(m.version)
                        .bind(m.name)
                        .bind(m.checksum())
                        .bind(now().to_rfc3339())
                        .execute(&mut *tx)
                        .await?;
                    applied += 1;
                }
                tx.commit().await?;
                Ok(applied)
            }

            async fn migration_status(&self) -> Result<MigrationStatus> {
                let migrations: &[Migration] = $migrations;
                let known = migrations.iter().map(|m| m.version).collect();
                let applied = match sqlx::query_scalar::<_, i64>("SELECT version FROM _tally_migrations ORDER BY version")
                    .fetch_all(&self.pool)
                    .await
                {
                    Ok(v) => v,
                    // No table yet: nothing applied.
                    Err(sqlx::Error::Database(_)) => Vec::new(),
                    Err(e) => return Err(e.into()),
                };
                Ok(MigrationStatus { applied, known })
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn upsert_tenants(&self, tenants: &[Tenant]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for t in tenants {
                    sqlx::query(
                        "INSERT INTO tenants (id, display_name, plan, discovered, created_at) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, plan = excluded.plan, discovered = excluded.discovered",
                    )
                    .bind(t.id.as_str())
                    .bind(&t.display_name)
                    .bind(&t.plan)
                    .bind(false)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn ensure_tenants(&self, ids: &[TenantId]) -> Result<Vec<TenantId>> {
                let unique: BTreeSet<&TenantId> = ids.iter().collect();
                let mut created = Vec::new();
                let mut tx = self.pool.begin().await?;
                for id in unique {
                    let done = sqlx::query(
                        "INSERT INTO tenants (id, display_name, plan, discovered, created_at) VALUES ($1, $1, NULL, $2, $3)
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id.as_str())
                    .bind(true)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 1 {
                        created.push(id.clone());
                    }
                }
                tx.commit().await?;
                Ok(created)
            }

            async fn tenants(&self) -> Result<Vec<Tenant>> {
                let rows = sqlx::query("SELECT id, display_name, plan FROM tenants ORDER BY id").fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        Ok(Tenant {
                            id: parse("tenants", "id", r.try_get("id")?)?,
                            display_name: r.try_get("display_name")?,
                            plan: r.try_get("plan")?,
                        })
                    })
                    .collect()
            }

            async fn replace_cost_lines(&self, import: CostImport<'_>) -> Result<ImportSummary> {
                check_scope(&import)?;
                let source = import.source.as_str();
                let mut tx = self.pool.begin().await?;
                let mut replaced = 0;
                match import.scope {
                    ReplaceScope::BillingMonths(months) => {
                        for m in months {
                            replaced += sqlx::query("DELETE FROM cost_lines WHERE source = $1 AND billing_month = $2")
                                .bind(source)
                                .bind(m.to_string())
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                        }
                    }
                    ReplaceScope::UsageDays { from, to } => {
                        let end = day_start(*to) + chrono::Duration::days(1);
                        replaced += sqlx::query("DELETE FROM cost_lines WHERE source = $1 AND usage_start >= $2 AND usage_start < $3")
                            .bind(source)
                            .bind(day_start(*from))
                            .bind(end)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                }
                let batch = Self::insert_batch(&mut tx, "billing", source, import.label, &import.scope.to_string(), import.lines.len(), replaced).await?;
                for chunk in import.lines.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$Db>::new(
                        "INSERT INTO cost_lines (batch_id, source, billing_month, usage_start, usage_end, payer_account, usage_account, \
                         service, usage_type, operation, resource_id, region, availability_zone, line_type, description, currency, \
                         unblended, net_unblended, amortized, list_cost, usage_amount, usage_unit, instance_type, commitment_id, tags, \
                         tenant_id, estimated, provider) ",
                    );
                    let mut tag_error = None;
                    qb.push_values(chunk, |mut b, l| {
                        let tags = serde_json::to_string(&l.tags).unwrap_or_else(|e| {
                            tag_error = Some(e.to_string());
                            String::new()
                        });
                        b.push_bind(batch)
                            .push_bind(source)
                            .push_bind(l.billing_month.to_string())
                            .push_bind(l.usage_start)
                            .push_bind(l.usage_end)
                            .push_bind(l.payer_account.clone())
                            .push_bind(l.usage_account.clone())
                            .push_bind(l.service.clone())
                            .push_bind(l.usage_type.clone())
                            .push_bind(l.operation.clone())
                            .push_bind(l.resource_id.clone())
                            .push_bind(l.region.clone())
                            .push_bind(l.availability_zone.clone())
                            .push_bind(l.line_type.as_str())
                            .push_bind(l.description.clone())
                            .push_bind(l.currency.code().to_owned())
                            .push_bind($money::bind(l.unblended))
                            .push_bind($money::bind(l.net_unblended))
                            .push_bind($money::bind(l.amortized))
                            .push_bind(l.list_cost.map($money::bind))
                            .push_bind($money::bind(l.usage_amount))
                            .push_bind(l.usage_unit.clone())
                            .push_bind(l.instance_type.clone())
                            .push_bind(l.commitment_id.clone())
                            .push_bind(tags)
                            .push_bind(l.tenant.as_ref().map(|t| t.as_str().to_owned()))
                            .push_bind(l.estimated)
                            .push_bind(l.provider.clone());
                    });
                    if let Some(e) = tag_error {
                        return Err(StorageError::Config(format!("tags of {} do not serialise: {e}", import.label)));
                    }
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(ImportSummary { batch_id: batch, inserted: import.lines.len() as u64, replaced })
            }

            async fn cost_lines(&self, filter: &CostLineFilter) -> Result<Vec<CostLine>> {
                let mut qb = QueryBuilder::<$Db>::new("SELECT * FROM cost_lines WHERE 1 = 1");
                if let Some(m) = filter.billing_month {
                    qb.push(" AND billing_month = ").push_bind(m.to_string());
                }
                if let Some(s) = filter.source {
                    qb.push(" AND source = ").push_bind(s.as_str());
                }
                if let Some(from) = filter.from {
                    qb.push(" AND usage_start >= ").push_bind(from);
                }
                if let Some(to) = filter.to {
                    qb.push(" AND usage_start < ").push_bind(to);
                }
                if !filter.services.is_empty() {
                    qb.push(" AND service IN (");
                    let mut sep = qb.separated(", ");
                    for s in &filter.services {
                        sep.push_bind(s.clone());
                    }
                    qb.push(")");
                }
                qb.push(" ORDER BY id");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(Self::cost_line).collect()
            }

            async fn billing_sources(&self, month: Month) -> Result<Vec<(CostSource, i64)>> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT source, COUNT(*) FROM cost_lines WHERE billing_month = $1 GROUP BY source ORDER BY source",
                )
                .bind(month.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(|(s, n)| Ok((parse("cost_lines", "source", s)?, n))).collect()
            }

            async fn billing_months(&self) -> Result<Vec<Month>> {
                let rows: Vec<String> = sqlx::query_scalar("SELECT DISTINCT billing_month FROM cost_lines ORDER BY billing_month")
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(|m| parse("cost_lines", "billing_month", m)).collect()
            }

            async fn import_batches(&self, limit: i64) -> Result<Vec<ImportBatch>> {
                let rows = sqlx::query("SELECT * FROM import_batches ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        Ok(ImportBatch {
                            id: r.try_get("id")?,
                            kind: r.try_get("kind")?,
                            source: r.try_get("source")?,
                            label: r.try_get("label")?,
                            scope: r.try_get("scope")?,
                            rows: r.try_get("rows")?,
                            replaced: r.try_get("replaced")?,
                            imported_at: r.try_get("imported_at")?,
                        })
                    })
                    .collect()
            }

            async fn replace_usage(&self, import: UsageImport<'_>) -> Result<ImportSummary> {
                let mut ranges: BTreeMap<&str, (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
                for s in import.samples {
                    let h = s.hour.start();
                    ranges
                        .entry(s.metric.as_str())
                        .and_modify(|(lo, hi)| {
                            *lo = (*lo).min(h);
                            *hi = (*hi).max(h);
                        })
                        .or_insert((h, h));
                }
                let mut tx = self.pool.begin().await?;
                let mut replaced = 0;
                for (metric, (lo, hi)) in &ranges {
                    replaced += sqlx::query("DELETE FROM usage_samples WHERE source = $1 AND metric = $2 AND hour >= $3 AND hour <= $4")
                        .bind(import.source)
                        .bind(*metric)
                        .bind(*lo)
                        .bind(*hi)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                let scope: Vec<String> = ranges.iter().map(|(m, (lo, hi))| format!("{m} {}..={}", lo.format("%Y-%m-%dT%H"), hi.format("%Y-%m-%dT%H"))).collect();
                let batch = Self::insert_batch(&mut tx, "usage", import.source, import.label, &scope.join("; "), import.samples.len(), replaced).await?;
                for chunk in import.samples.chunks(CHUNK * 3) {
                    let mut qb = QueryBuilder::<$Db>::new(
                        "INSERT INTO usage_samples (batch_id, source, hour, tenant_id, metric, value, unit, resource_id, workload) ",
                    );
                    qb.push_values(chunk, |mut b, s| {
                        b.push_bind(batch)
                            .push_bind(import.source)
                            .push_bind(s.hour.start())
                            .push_bind(s.tenant.as_str().to_owned())
                            .push_bind(s.metric.as_str().to_owned())
                            .push_bind(s.value)
                            .push_bind(s.unit.clone())
                            .push_bind(s.resource_id.clone())
                            .push_bind(s.workload.clone());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(ImportSummary { batch_id: batch, inserted: import.samples.len() as u64, replaced })
            }

            async fn usage(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageSample>> {
                const T: &str = "usage_samples";
                let rows = sqlx::query(
                    "SELECT hour, tenant_id, metric, value, unit, resource_id, workload FROM usage_samples
                     WHERE hour >= $1 AND hour < $2 ORDER BY hour, tenant_id, metric, resource_id, workload",
                )
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let hour: DateTime<Utc> = r.try_get("hour")?;
                        Ok(UsageSample {
                            hour: Period::hour(hour).map_err(|_| StorageError::corrupt(T, "hour", hour))?,
                            tenant: parse(T, "tenant_id", r.try_get("tenant_id")?)?,
                            metric: parse_metric(r.try_get("metric")?)?,
                            value: r.try_get("value")?,
                            unit: r.try_get("unit")?,
                            resource_id: r.try_get("resource_id")?,
                            workload: r.try_get("workload")?,
                        })
                    })
                    .collect()
            }

            async fn usage_totals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageTotal>> {
                let rows: Vec<(String, String, f64)> = sqlx::query_as(
                    "SELECT tenant_id, metric, SUM(value) FROM usage_samples WHERE hour >= $1 AND hour < $2
                     GROUP BY tenant_id, metric ORDER BY tenant_id, metric",
                )
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(t, metric, value)| Ok(UsageTotal { tenant: parse("usage_samples", "tenant_id", t)?, metric, value }))
                    .collect()
            }

            async fn replace_revenue(&self, months: &[Month], entries: &[RevenueEntry]) -> Result<ImportSummary> {
                if let Some(e) = entries.iter().find(|e| !months.contains(&e.month)) {
                    return Err(StorageError::Config(format!("revenue for {} lies outside the months being replaced", e.month)));
                }
                let mut tx = self.pool.begin().await?;
                let mut replaced = 0;
                for m in months {
                    replaced += sqlx::query("DELETE FROM revenue WHERE month = $1").bind(m.to_string()).execute(&mut *tx).await?.rows_affected();
                }
                let scope: Vec<String> = months.iter().map(Month::to_string).collect();
                let batch = Self::insert_batch(&mut tx, "revenue", "revenue", "revenue import", &format!("months {}", scope.join(",")), entries.len(), replaced).await?;
                for e in entries {
                    sqlx::query("INSERT INTO revenue (month, tenant_id, amount, currency, updated_at) VALUES ($1, $2, $3, $4, $5)")
                        .bind(e.month.to_string())
                        .bind(e.tenant.as_str())
                        .bind($money::bind(e.amount.amount))
                        .bind(e.amount.currency.code())
                        .bind(now())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(ImportSummary { batch_id: batch, inserted: entries.len() as u64, replaced })
            }

            async fn upsert_revenue(&self, e: &RevenueEntry) -> Result<()> {
                sqlx::query(
                    "INSERT INTO revenue (month, tenant_id, amount, currency, updated_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (month, tenant_id) DO UPDATE SET amount = excluded.amount, currency = excluded.currency, updated_at = excluded.updated_at",
                )
                .bind(e.month.to_string())
                .bind(e.tenant.as_str())
                .bind($money::bind(e.amount.amount))
                .bind(e.amount.currency.code())
                .bind(now())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn revenue(&self, from: Month, to: Month) -> Result<Vec<RevenueEntry>> {
                const T: &str = "revenue";
                let rows = sqlx::query("SELECT * FROM revenue WHERE month >= $1 AND month <= $2 ORDER BY month, tenant_id")
                    .bind(from.to_string())
                    .bind(to.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        let currency: Currency = parse(T, "currency", r.try_get("currency")?)?;
                        Ok(RevenueEntry {
                            month: parse(T, "month", r.try_get("month")?)?,
                            tenant: parse(T, "tenant_id", r.try_get("tenant_id")?)?,
                            amount: Money::new($money::get(r, "amount", T)?, currency),
                        })
                    })
                    .collect()
            }

            async fn add_cash_balance(&self, b: &NewCashBalance) -> Result<CashBalance> {
                let now = now();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO cash_balances (as_of, amount, currency, note, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(b.as_of)
                .bind($money::bind(b.amount.amount))
                .bind(b.amount.currency.code())
                .bind(&b.note)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                Ok(CashBalance { id, as_of: b.as_of, amount: b.amount, note: b.note.clone(), created_at: now })
            }

            async fn cash_balances(&self) -> Result<Vec<CashBalance>> {
                const T: &str = "cash_balances";
                let rows = sqlx::query("SELECT * FROM cash_balances ORDER BY as_of, id").fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let currency: Currency = parse(T, "currency", r.try_get("currency")?)?;
                        Ok(CashBalance {
                            id: r.try_get("id")?,
                            as_of: r.try_get("as_of")?,
                            amount: Money::new($money::get(r, "amount", T)?, currency),
                            note: r.try_get("note")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn replace_allocation(&self, res: &AllocationResultSet) -> Result<()> {
                let month = res.month.to_string();
                let mut tx = self.pool.begin().await?;
                for table in [
                    "DELETE FROM allocations WHERE month = $1",
                    "DELETE FROM allocation_billed WHERE month = $1",
                    "DELETE FROM allocation_explanations WHERE month = $1",
                ] {
                    sqlx::query(table).bind(&month).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "INSERT INTO allocation_runs (month, source, billed_lines, usage_rows, rows, created_at) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (month) DO UPDATE SET source = excluded.source, billed_lines = excluded.billed_lines,
                     usage_rows = excluded.usage_rows, rows = excluded.rows, created_at = excluded.created_at",
                )
                .bind(&month)
                .bind(res.source.as_str())
                .bind(res.billed_lines)
                .bind(res.usage_rows)
                .bind((res.monthly.len() + res.daily.len()) as i64)
                .bind(res.created_at)
                .execute(&mut *tx)
                .await?;
                Self::insert_allocation_rows(&mut tx, &res.monthly).await?;
                Self::insert_allocation_rows(&mut tx, &res.daily).await?;
                for b in &res.billed {
                    sqlx::query(
                        "INSERT INTO allocation_billed (month, service, currency, unblended, amortized, lines) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(b.month.to_string())
                    .bind(&b.service)
                    .bind(b.currency.code())
                    .bind($money::bind(b.unblended))
                    .bind($money::bind(b.amortized))
                    .bind(b.lines)
                    .execute(&mut *tx)
                    .await?;
                }
                for chunk in res.explanations.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$Db>::new(
                        "INSERT INTO allocation_explanations (month, allocatee, pool, method, driver, driver_quantity, pool_driver_quantity, \
                         share, pool_unblended, allocated_unblended, pool_amortized, allocated_amortized) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(e.month.to_string())
                            .push_bind(e.allocatee.as_str().to_owned())
                            .push_bind(e.pool.as_str().to_owned())
                            .push_bind(e.method.clone())
                            .push_bind(e.driver.clone())
                            .push_bind(e.driver_quantity)
                            .push_bind(e.pool_driver_quantity)
                            .push_bind(e.share)
                            .push_bind($money::bind(e.pool_unblended))
                            .push_bind($money::bind(e.allocated_unblended))
                            .push_bind($money::bind(e.pool_amortized))
                            .push_bind($money::bind(e.allocated_amortized));
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn allocation_rows(&self, f: &AllocationFilter) -> Result<Vec<AllocationRow>> {
                let mut qb = QueryBuilder::<$Db>::new("SELECT * FROM allocations WHERE month >= ");
                qb.push_bind(f.from.to_string()).push(" AND month <= ").push_bind(f.to.to_string());
                qb.push(if f.daily { " AND day IS NOT NULL" } else { " AND day IS NULL" });
                if let Some(a) = &f.allocatee {
                    qb.push(" AND allocatee = ").push_bind(a.clone());
                }
                if let Some(d) = f.from_day {
                    qb.push(" AND day >= ").push_bind(d);
                }
                if let Some(d) = f.to_day {
                    qb.push(" AND day < ").push_bind(d);
                }
                qb.push(" ORDER BY month, day, allocatee, pool, service");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(Self::allocation_row).collect()
            }

            async fn billed_totals(&self, month: Month) -> Result<Vec<BilledTotal>> {
                const T: &str = "allocation_billed";
                let rows = sqlx::query("SELECT * FROM allocation_billed WHERE month = $1 ORDER BY service")
                    .bind(month.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(BilledTotal {
                            month: parse(T, "month", r.try_get("month")?)?,
                            service: r.try_get("service")?,
                            currency: parse(T, "currency", r.try_get("currency")?)?,
                            unblended: $money::get(r, "unblended", T)?,
                            amortized: $money::get(r, "amortized", T)?,
                            lines: r.try_get("lines")?,
                        })
                    })
                    .collect()
            }

            async fn explanations(&self, month: Month, allocatee: Option<&str>) -> Result<Vec<Explanation>> {
                const T: &str = "allocation_explanations";
                let mut qb = QueryBuilder::<$Db>::new("SELECT * FROM allocation_explanations WHERE month = ");
                qb.push_bind(month.to_string());
                if let Some(a) = allocatee {
                    qb.push(" AND allocatee = ").push_bind(a.to_owned());
                }
                qb.push(" ORDER BY allocatee, pool");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        Ok(Explanation {
                            month: parse(T, "month", r.try_get("month")?)?,
                            allocatee: parse(T, "allocatee", r.try_get("allocatee")?)?,
                            pool: parse(T, "pool", r.try_get("pool")?)?,
                            method: r.try_get("method")?,
                            driver: r.try_get("driver")?,
                            driver_quantity: r.try_get("driver_quantity")?,
                            pool_driver_quantity: r.try_get("pool_driver_quantity")?,
                            share: r.try_get("share")?,
                            pool_unblended: $money::get(r, "pool_unblended", T)?,
                            allocated_unblended: $money::get(r, "allocated_unblended", T)?,
                            pool_amortized: $money::get(r, "pool_amortized", T)?,
                            allocated_amortized: $money::get(r, "allocated_amortized", T)?,
                        })
                    })
                    .collect()
            }

            async fn allocation_runs(&self) -> Result<Vec<AllocationRun>> {
                let rows = sqlx::query("SELECT * FROM allocation_runs ORDER BY month").fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        Ok(AllocationRun {
                            month: parse("allocation_runs", "month", r.try_get("month")?)?,
                            source: r.try_get("source")?,
                            billed_lines: r.try_get("billed_lines")?,
                            usage_rows: r.try_get("usage_rows")?,
                            rows: r.try_get("rows")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn create_token(&self, t: &NewToken) -> Result<TokenRecord> {
                let row = sqlx::query(
                    "INSERT INTO api_tokens (token_hash, role, tenant_id, label, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
                     RETURNING id, role, tenant_id, label, created_at, expires_at, revoked_at",
                )
                .bind(&t.hash)
                .bind(&t.role)
                .bind(t.tenant.as_ref().map(TenantId::as_str))
                .bind(&t.label)
                .bind(t.created_at)
                .bind(t.expires_at)
                .fetch_one(&self.pool)
                .await?;
                Self::token(&row)
            }

            async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
                let row = sqlx::query("SELECT * FROM api_tokens WHERE token_hash = $1").bind(hash).fetch_optional(&self.pool).await?;
                row.as_ref().map(Self::token).transpose()
            }

            async fn tokens(&self) -> Result<Vec<TokenRecord>> {
                let rows = sqlx::query("SELECT * FROM api_tokens ORDER BY id").fetch_all(&self.pool).await?;
                rows.iter().map(Self::token).collect()
            }

            async fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> Result<bool> {
                let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(at)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn start_job_run(&self, job: &str, holder: &str, at: DateTime<Utc>) -> Result<i64> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO job_runs (job, started_at, outcome, holder) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(job)
                .bind(at)
                .bind(JobOutcome::Running.as_str())
                .bind(holder)
                .fetch_one(&self.pool)
                .await?;
                Ok(id)
            }

            async fn finish_job_run(&self, id: i64, f: &JobFinish) -> Result<()> {
                sqlx::query(
                    "UPDATE job_runs SET finished_at = $1, outcome = $2, rows_written = $3, api_requests = $4, error = $5, detail = $6 WHERE id = $7",
                )
                .bind(f.at)
                .bind(f.outcome.as_str())
                .bind(f.rows_written)
                .bind(f.api_requests)
                .bind(&f.error)
                .bind(&f.detail)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn job_runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<JobRun>> {
                let rows = match job {
                    Some(j) => sqlx::query("SELECT * FROM job_runs WHERE job = $1 ORDER BY id DESC LIMIT $2").bind(j).bind(limit).fetch_all(&self.pool).await?,
                    None => sqlx::query("SELECT * FROM job_runs ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(&self.pool).await?,
                };
                rows.iter().map(Self::job_run).collect()
            }

            async fn last_job_start(&self, job: &str) -> Result<Option<DateTime<Utc>>> {
                let at: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT started_at FROM job_runs WHERE job = $1 AND outcome <> 'failed' ORDER BY started_at DESC LIMIT 1",
                )
                .bind(job)
                .fetch_optional(&self.pool)
                .await?;
                Ok(at)
            }

            async fn last_successes(&self) -> Result<Vec<(String, DateTime<Utc>)>> {
                let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT job, MAX(finished_at) FROM job_runs WHERE outcome = 'succeeded' AND finished_at IS NOT NULL GROUP BY job ORDER BY job",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn try_lease(&self, job: &str, holder: &str, now: DateTime<Utc>, ttl: chrono::Duration) -> Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO job_leases (job, holder, acquired_at, expires_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
                     WHERE job_leases.expires_at <= excluded.acquired_at OR job_leases.holder = excluded.holder",
                )
                .bind(job)
                .bind(holder)
                .bind(now)
                .bind(now + ttl)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_lease(&self, job: &str, holder: &str) -> Result<()> {
                sqlx::query("DELETE FROM job_leases WHERE job = $1 AND holder = $2").bind(job).bind(holder).execute(&self.pool).await?;
                Ok(())
            }

            async fn add_api_requests(&self, source: &str, month: Month, requests: i64) -> Result<i64> {
                let total: i64 = sqlx::query_scalar(
                    "INSERT INTO api_request_counts (source, month, requests) VALUES ($1, $2, $3)
                     ON CONFLICT (source, month) DO UPDATE SET requests = api_request_counts.requests + excluded.requests
                     RETURNING requests",
                )
                .bind(source)
                .bind(month.to_string())
                .bind(requests)
                .fetch_one(&self.pool)
                .await?;
                Ok(total)
            }

            async fn api_requests(&self, source: &str, month: Month) -> Result<i64> {
                let n: Option<i64> = sqlx::query_scalar("SELECT requests FROM api_request_counts WHERE source = $1 AND month = $2")
                    .bind(source)
                    .bind(month.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(n.unwrap_or(0))
            }

            async fn put_document(&self, name: &str, body: &str, at: DateTime<Utc>) -> Result<()> {
                sqlx::query(
                    "INSERT INTO documents (name, body, updated_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                )
                .bind(name)
                .bind(body)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn document(&self, name: &str) -> Result<Option<(String, DateTime<Utc>)>> {
                let row: Option<(String, DateTime<Utc>)> = sqlx::query_as("SELECT body, updated_at FROM documents WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row)
            }
        }
    };
}

fn parse_metric(value: String) -> Result<tally_domain::Metric> {
    tally_domain::Metric::parse(&value).map_err(|_| StorageError::corrupt("usage_samples", "metric", value))
}

/// The embedded default: one SQLite file, WAL-journaled.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| StorageError::Config(format!("cannot create the data directory {}: {e}", parent.display())))?;
        }
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        Ok(Self { pool })
    }
}

/// The shared backend for several replicas.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new().max_connections(10).acquire_timeout(Duration::from_secs(15)).connect(url).await?;
        Ok(Self { pool })
    }

    /// Creates database `name` on the server at `server_url` (used by tests
    /// and `tally migrate --create`); `name` must be a plain identifier.
    pub async fn create_database(server_url: &str, name: &str) -> Result<()> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(StorageError::Config(format!("invalid database name {name:?}")));
        }
        let pool = PgPoolOptions::new().max_connections(1).connect(server_url).await?;
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1").bind(name).fetch_optional(&pool).await?;
        if exists.is_none() {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await?;
        }
        pool.close().await;
        Ok(())
    }

    /// Drops database `name` (tests clean up after themselves).
    pub async fn drop_database(server_url: &str, name: &str) -> Result<()> {
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(StorageError::Config(format!("invalid database name {name:?}")));
        }
        let pool = PgPoolOptions::new().max_connections(1).connect(server_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&pool).await?;
        pool.close().await;
        Ok(())
    }
}

const PG_MIGRATION_LOCK: Option<&str> = Some("SELECT pg_advisory_xact_lock(7246171)");
const NO_LOCK: Option<&str> = None;

store_impl!(SqliteStore, sqlx::Sqlite, SqliteRow, money_sqlite, migrate::SQLITE, NO_LOCK, Backend::Sqlite);
store_impl!(PostgresStore, sqlx::Postgres, PgRow, money_pg, migrate::POSTGRES, PG_MIGRATION_LOCK, Backend::Postgres);
