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
use rust_decimal::prelude::ToPrimitive;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row};
use tally_domain::{
    Allocatee, AllocationRow, CostLine, CostSource, Currency, Explanation, JobOutcome, JobRun, LineType, Money, Month, Period, PoolId, RevenueEntry, Tenant,
    TenantId, UsageSample,
};

use crate::migrate::{self, Migration, MigrationStatus};
use crate::{
    AllocationFilter, AllocationResultSet, AllocationRun, Backend, BilledTotal, CashBalance, CostDim, CostQuery, CostRow, DailyBy, DailyCost, DailyQuery,
    ImportBatch, ImportSummary, JobFinish, LakeCommit, LakeCommitted, LakeFile, LakeKind, LakePartition, LegacyPartition, NewCashBalance, NewSession, NewToken,
    Result, SessionKind, SessionRecord, StorageError, Store, TokenRecord, UsageTotal,
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
    /// Rollup amounts: NUMERIC, summed exactly by PostgreSQL.
    pub(super) fn get_sum(row: &PgRow, col: &'static str, _table: &'static str) -> Result<Decimal> {
        Ok(row.try_get::<Decimal, _>(col)?)
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
    /// Rollup amounts: INTEGER ten-thousandths, which SQLite sums exactly.
    pub(super) fn bind_sum(d: Decimal, table: &'static str) -> Result<i64> {
        let scaled = d * Decimal::from(10_000);
        if scaled.fract() != Decimal::ZERO {
            return Err(StorageError::Config(format!("{table}: {d} has more than four decimal places")));
        }
        scaled.to_i64().ok_or_else(|| StorageError::Config(format!("{table}: {d} is beyond the largest amount kept (922 trillion)")))
    }
    pub(super) fn get_sum(row: &SqliteRow, col: &'static str, _table: &'static str) -> Result<Decimal> {
        let v: i64 = row.try_get(col)?;
        Ok(Decimal::new(v, 4).normalize())
    }
}

/// An amount at its currency's minor units (`7.5` dollars reads `7.50`),
/// as PostgreSQL's NUMERIC keeps what was stored; rollup amounts are always
/// rounded to them, so nothing is lost.
fn in_minor_units(d: Decimal, currency: Currency) -> Decimal {
    let mut d = d.round_dp(currency.minor_units());
    d.rescale(currency.minor_units());
    d
}

/// Writing an allocation's results in bulk: the one place the backends'
/// SQL differs beyond binding money. SQLite takes multi-row `VALUES`;
/// PostgreSQL takes one array per column through `UNNEST`, which it plans
/// once instead of once per thousand rows (at 40,000 rows, 0.2 s against 1.2 s).
mod bulk_sqlite {
    use super::*;
    type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;
    use money_sqlite as m;

    pub(super) async fn cost_monthly(tx: &mut Tx<'_>, rows: &[AllocationRow]) -> Result<()> {
        const T: &str = "cost_monthly";
        for chunk in rows.chunks(CHUNK) {
            let binds: Vec<(i64, i64)> = chunk.iter().map(|r| Ok((m::bind_sum(r.unblended, T)?, m::bind_sum(r.amortized, T)?))).collect::<Result<_>>()?;
            let mut qb = QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO cost_monthly (month, allocatee, pool, service, currency, unblended, amortized, driver, driver_quantity, reason) ",
            );
            qb.push_values(chunk.iter().zip(binds), |mut b, (r, (u, a))| {
                b.push_bind(r.month.to_string())
                    .push_bind(r.allocatee.as_str().to_owned())
                    .push_bind(r.pool.as_str().to_owned())
                    .push_bind(r.service.clone())
                    .push_bind(r.currency.code().to_owned())
                    .push_bind(u)
                    .push_bind(a)
                    .push_bind(r.driver.clone())
                    .push_bind(r.driver_quantity)
                    .push_bind(r.reason.clone());
            });
            qb.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub(super) async fn monthly_rollup(
        tx: &mut Tx<'_>,
        table: &'static str,
        key: &'static str,
        month: Month,
        rows: &BTreeMap<(String, Currency), (Decimal, Decimal)>,
    ) -> Result<()> {
        let rows: Vec<_> = rows.iter().collect();
        for chunk in rows.chunks(CHUNK * 2) {
            let binds: Vec<(i64, i64)> = chunk.iter().map(|(_, (u, a))| Ok((m::bind_sum(*u, table)?, m::bind_sum(*a, table)?))).collect::<Result<_>>()?;
            let mut qb = QueryBuilder::<sqlx::Sqlite>::new(format!("INSERT INTO {table} (month, {key}, currency, unblended, amortized) "));
            qb.push_values(chunk.iter().zip(binds), |mut b, (((k, c), _), (u, a))| {
                b.push_bind(month.to_string()).push_bind(k.clone()).push_bind(c.code().to_owned()).push_bind(u).push_bind(a);
            });
            qb.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub(super) async fn daily_rollup(tx: &mut Tx<'_>, table: &'static str, key: &'static str, rows: &[DailyCost]) -> Result<()> {
        for chunk in rows.chunks(CHUNK * 2) {
            let binds: Vec<(i64, i64)> =
                chunk.iter().map(|r| Ok((m::bind_sum(r.unblended, table)?, m::bind_sum(r.amortized, table)?))).collect::<Result<_>>()?;
            let mut qb = QueryBuilder::<sqlx::Sqlite>::new(format!("INSERT INTO {table} (day, month, {key}, currency, unblended, amortized) "));
            qb.push_values(chunk.iter().zip(binds), |mut b, (r, (u, a))| {
                b.push_bind(r.day)
                    .push_bind(Month::of_date(r.day).to_string())
                    .push_bind(r.key.clone())
                    .push_bind(r.currency.code().to_owned())
                    .push_bind(u)
                    .push_bind(a);
            });
            qb.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub(super) async fn usage_monthly(tx: &mut Tx<'_>, rows: &[UsageTotal]) -> Result<()> {
        for chunk in rows.chunks(CHUNK * 2) {
            let mut qb = QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO usage_monthly (month, tenant_id, metric, value) ");
            qb.push_values(chunk, |mut b, u| {
                b.push_bind(u.month.to_string()).push_bind(u.tenant.as_str().to_owned()).push_bind(u.metric.clone()).push_bind(u.value);
            });
            qb.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub(super) async fn explanations(tx: &mut Tx<'_>, rows: &[Explanation]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let mut qb = QueryBuilder::<sqlx::Sqlite>::new(
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
                    .push_bind(m::bind(e.pool_unblended))
                    .push_bind(m::bind(e.allocated_unblended))
                    .push_bind(m::bind(e.pool_amortized))
                    .push_bind(m::bind(e.allocated_amortized));
            });
            qb.build().execute(&mut **tx).await?;
        }
        Ok(())
    }
}

mod bulk_pg {
    use super::*;
    type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

    fn texts<T>(rows: &[T], f: impl Fn(&T) -> String) -> Vec<String> {
        rows.iter().map(f).collect()
    }

    pub(super) async fn cost_monthly(tx: &mut Tx<'_>, rows: &[AllocationRow]) -> Result<()> {
        sqlx::query(
            "INSERT INTO cost_monthly (month, allocatee, pool, service, currency, unblended, amortized, driver, driver_quantity, reason)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[], $7::numeric[], $8::text[], $9::float8[], $10::text[])",
        )
        .bind(texts(rows, |r| r.month.to_string()))
        .bind(texts(rows, |r| r.allocatee.as_str().to_owned()))
        .bind(texts(rows, |r| r.pool.as_str().to_owned()))
        .bind(texts(rows, |r| r.service.clone()))
        .bind(texts(rows, |r| r.currency.code().to_owned()))
        .bind(rows.iter().map(|r| r.unblended).collect::<Vec<Decimal>>())
        .bind(rows.iter().map(|r| r.amortized).collect::<Vec<Decimal>>())
        .bind(rows.iter().map(|r| r.driver.clone()).collect::<Vec<Option<String>>>())
        .bind(rows.iter().map(|r| r.driver_quantity).collect::<Vec<Option<f64>>>())
        .bind(rows.iter().map(|r| r.reason.clone()).collect::<Vec<Option<String>>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn monthly_rollup(
        tx: &mut Tx<'_>,
        table: &'static str,
        key: &'static str,
        month: Month,
        rows: &BTreeMap<(String, Currency), (Decimal, Decimal)>,
    ) -> Result<()> {
        let rows: Vec<_> = rows.iter().collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (month, {key}, currency, unblended, amortized)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::numeric[], $5::numeric[])"
        )))
        .bind(month.to_string())
        .bind(texts(&rows, |((k, _), _)| k.clone()))
        .bind(texts(&rows, |((_, c), _)| c.code().to_owned()))
        .bind(rows.iter().map(|(_, (u, _))| *u).collect::<Vec<Decimal>>())
        .bind(rows.iter().map(|(_, (_, a))| *a).collect::<Vec<Decimal>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn daily_rollup(tx: &mut Tx<'_>, table: &'static str, key: &'static str, rows: &[DailyCost]) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (day, month, {key}, currency, unblended, amortized)
             SELECT * FROM UNNEST($1::date[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::numeric[])"
        )))
        .bind(rows.iter().map(|r| r.day).collect::<Vec<NaiveDate>>())
        .bind(texts(rows, |r| Month::of_date(r.day).to_string()))
        .bind(texts(rows, |r| r.key.clone()))
        .bind(texts(rows, |r| r.currency.code().to_owned()))
        .bind(rows.iter().map(|r| r.unblended).collect::<Vec<Decimal>>())
        .bind(rows.iter().map(|r| r.amortized).collect::<Vec<Decimal>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn usage_monthly(tx: &mut Tx<'_>, rows: &[UsageTotal]) -> Result<()> {
        sqlx::query("INSERT INTO usage_monthly (month, tenant_id, metric, value) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[])")
            .bind(texts(rows, |u| u.month.to_string()))
            .bind(texts(rows, |u| u.tenant.as_str().to_owned()))
            .bind(texts(rows, |u| u.metric.clone()))
            .bind(rows.iter().map(|u| u.value).collect::<Vec<f64>>())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub(super) async fn explanations(tx: &mut Tx<'_>, rows: &[Explanation]) -> Result<()> {
        sqlx::query(
            "INSERT INTO allocation_explanations (month, allocatee, pool, method, driver, driver_quantity, pool_driver_quantity,
             share, pool_unblended, allocated_unblended, pool_amortized, allocated_amortized)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::float8[],
                                  $9::numeric[], $10::numeric[], $11::numeric[], $12::numeric[])",
        )
        .bind(texts(rows, |e| e.month.to_string()))
        .bind(texts(rows, |e| e.allocatee.as_str().to_owned()))
        .bind(texts(rows, |e| e.pool.as_str().to_owned()))
        .bind(texts(rows, |e| e.method.clone()))
        .bind(rows.iter().map(|e| e.driver.clone()).collect::<Vec<Option<String>>>())
        .bind(rows.iter().map(|e| e.driver_quantity).collect::<Vec<Option<f64>>>())
        .bind(rows.iter().map(|e| e.pool_driver_quantity).collect::<Vec<Option<f64>>>())
        .bind(rows.iter().map(|e| e.share).collect::<Vec<f64>>())
        .bind(rows.iter().map(|e| e.pool_unblended).collect::<Vec<Decimal>>())
        .bind(rows.iter().map(|e| e.allocated_unblended).collect::<Vec<Decimal>>())
        .bind(rows.iter().map(|e| e.pool_amortized).collect::<Vec<Decimal>>())
        .bind(rows.iter().map(|e| e.allocated_amortized).collect::<Vec<Decimal>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

fn parse<T: FromStr>(table: &'static str, column: &'static str, value: String) -> Result<T> {
    value.parse::<T>().map_err(|_| StorageError::corrupt(table, column, value))
}

fn parse_opt<T: FromStr>(table: &'static str, column: &'static str, value: Option<String>) -> Result<Option<T>> {
    value.map(|v| parse(table, column, v)).transpose()
}

/// Now, at the microsecond precision both databases keep, so that what is
/// returned equals what a later read gives back.
fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

macro_rules! store_impl {
    ($Store:ident, $Db:ty, $Row:ty, $money:ident, $bulk:ident, $migrations:expr, $migration_lock:expr, $backend:expr) => {
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
                const T: &str = "cost_monthly";
                let currency = parse::<Currency>(T, "currency", row.try_get("currency")?)?;
                Ok(AllocationRow {
                    month: parse(T, "month", row.try_get("month")?)?,
                    day: None,
                    allocatee: parse::<Allocatee>(T, "allocatee", row.try_get("allocatee")?)?,
                    pool: parse::<PoolId>(T, "pool", row.try_get("pool")?)?,
                    service: row.try_get("service")?,
                    currency,
                    unblended: in_minor_units($money::get_sum(row, "unblended", T)?, currency),
                    amortized: in_minor_units($money::get_sum(row, "amortized", T)?, currency),
                    driver: row.try_get("driver")?,
                    driver_quantity: row.try_get("driver_quantity")?,
                    reason: row.try_get("reason")?,
                })
            }

            fn lake_file(row: &$Row) -> Result<LakeFile> {
                const T: &str = "lake_files";
                Ok(LakeFile {
                    id: row.try_get("id")?,
                    kind: parse(T, "kind", row.try_get("kind")?)?,
                    source: row.try_get("source")?,
                    month: parse(T, "month", row.try_get("month")?)?,
                    path: row.try_get("path")?,
                    rows: row.try_get("rows")?,
                    bytes: row.try_get("bytes")?,
                    batch_id: row.try_get("batch_id")?,
                    created_at: row.try_get("created_at")?,
                    superseded_at: row.try_get("superseded_at")?,
                })
            }

            /// A cost query's group: the dimensions it was grouped by are set.
            fn cost_row(row: &$Row, table: &'static str, dims: &[&str]) -> Result<CostRow> {
                let currency: Option<String> = row.try_get("currency")?;
                let currency = match currency {
                    Some(c) => parse::<Currency>(table, "currency", c)?,
                    None => Currency::USD,
                };
                let mut out = CostRow {
                    unblended: in_minor_units($money::get_sum(row, "unblended", table)?, currency),
                    amortized: in_minor_units($money::get_sum(row, "amortized", table)?, currency),
                    ..CostRow::default()
                };
                for d in dims {
                    match *d {
                        "month" => out.month = Some(parse(table, "month", row.try_get("month")?)?),
                        "day" => out.day = Some(row.try_get("day")?),
                        "allocatee" => out.allocatee = Some(row.try_get("allocatee")?),
                        "pool" => out.pool = Some(row.try_get("pool")?),
                        "service" => out.service = Some(row.try_get("service")?),
                        _ => {}
                    }
                }
                Ok(out)
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
        }

        #[async_trait]
        impl Store for $Store {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn migrate_to(&self, last: i64) -> Result<usize> {
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
                for m in migrations.iter().filter(|m| m.version <= last) {
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
                    // A migration that drops tables whose rows must move elsewhere first waits for them to be empty.
                    let mut waiting = false;
                    for table in m.requires_empty {
                        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT 1) AS x")))
                            .fetch_one(&mut *tx)
                            .await?;
                        waiting |= rows > 0;
                    }
                    if waiting {
                        tracing::info!(migration = m.version, "rows of earlier versions wait to move to the columnar store; `tally migrate` moves them");
                        break;
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
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn ensure_tenants(&self, ids: &[TenantId]) -> Result<Vec<TenantId>> {
                let unique: Vec<&TenantId> = ids.iter().collect::<BTreeSet<_>>().into_iter().collect();
                let mut created = Vec::new();
                let mut tx = self.pool.begin().await?;
                let at = now();
                for chunk in unique.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$Db>::new("INSERT INTO tenants (id, display_name, plan, discovered, created_at) ");
                    qb.push_values(chunk, |mut b, id| {
                        b.push_bind(id.as_str().to_owned()).push_bind(id.as_str().to_owned()).push_bind(None::<String>).push_bind(true).push_bind(at);
                    });
                    qb.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
                    let ids: Vec<String> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
                    for id in ids {
                        created.push(parse("tenants", "id", id)?);
                    }
                }
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
                tx.commit().await?;
                created.sort();
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

            async fn lake_commit(&self, c: LakeCommit<'_>) -> Result<LakeCommitted> {
                let (kind, source) = (c.kind.as_str(), c.source);
                if let Some(f) = c.files.iter().find(|f| !c.partitions.iter().any(|p| p.month == f.month)) {
                    return Err(StorageError::Config(format!("{} holds {} rows of {}, a month the commit does not switch", f.path, f.rows, f.month)));
                }
                let mut tx = self.pool.begin().await?;
                let mut superseded = Vec::new();
                let mut replaced_rows = 0;
                for p in c.partitions {
                    let month = p.month.to_string();
                    let query = match p.expected_version {
                        Some(0) => sqlx::query(
                            "INSERT INTO lake_partitions (kind, source, month, version, rows, first_at, last_at, updated_at)
                             VALUES ($1, $2, $3, 1, $4, $5, $6, $7) ON CONFLICT (kind, source, month) DO NOTHING",
                        ),
                        Some(_) => sqlx::query(
                            "UPDATE lake_partitions SET version = version + 1, rows = $4, first_at = $5, last_at = $6, updated_at = $7
                             WHERE kind = $1 AND source = $2 AND month = $3 AND version = $8",
                        ),
                        None => sqlx::query(
                            "INSERT INTO lake_partitions (kind, source, month, version, rows, first_at, last_at, updated_at)
                             VALUES ($1, $2, $3, 1, $4, $5, $6, $7)
                             ON CONFLICT (kind, source, month) DO UPDATE SET version = lake_partitions.version + 1, rows = excluded.rows,
                             first_at = excluded.first_at, last_at = excluded.last_at, updated_at = excluded.updated_at",
                        ),
                    }
                    .bind(kind)
                    .bind(source)
                    .bind(&month)
                    .bind(p.rows)
                    .bind(p.first_at)
                    .bind(p.last_at)
                    .bind(c.at);
                    let query = match p.expected_version {
                        Some(v) if v > 0 => query.bind(v),
                        _ => query,
                    };
                    let switched = query.execute(&mut *tx).await?.rows_affected();
                    if switched != 1 {
                        return Err(StorageError::Conflict(format!(
                            "{kind} data of {source} for {month} changed while this import read it; nothing was switched"
                        )));
                    }
                    let old = sqlx::query(
                        "UPDATE lake_files SET superseded_at = $1 WHERE kind = $2 AND source = $3 AND month = $4 AND superseded_at IS NULL RETURNING *",
                    )
                    .bind(c.at)
                    .bind(kind)
                    .bind(source)
                    .bind(&month)
                    .fetch_all(&mut *tx)
                    .await?;
                    for row in &old {
                        let f = Self::lake_file(row)?;
                        replaced_rows += f.rows;
                        superseded.push(f);
                    }
                    if c.retire_legacy {
                        let gone = match c.kind {
                            LakeKind::Billing => sqlx::query("DELETE FROM cost_lines WHERE source = $1 AND billing_month = $2")
                                .bind(source)
                                .bind(&month)
                                .execute(&mut *tx)
                                .await?
                                .rows_affected(),
                            LakeKind::Usage => sqlx::query("DELETE FROM usage_samples WHERE source = $1 AND hour >= $2 AND hour < $3")
                                .bind(source)
                                .bind(p.month.start())
                                .bind(p.month.end())
                                .execute(&mut *tx)
                                .await?
                                .rows_affected(),
                        };
                        replaced_rows += gone as i64;
                    }
                }
                let batch = Self::insert_batch(&mut tx, kind, source, c.label, c.scope, c.rows as usize, replaced_rows as u64).await?;
                for chunk in c.files.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$Db>::new("INSERT INTO lake_files (kind, source, month, path, rows, bytes, batch_id, created_at) ");
                    qb.push_values(chunk, |mut b, f| {
                        b.push_bind(kind)
                            .push_bind(source)
                            .push_bind(f.month.to_string())
                            .push_bind(f.path.clone())
                            .push_bind(f.rows)
                            .push_bind(f.bytes)
                            .push_bind(batch)
                            .push_bind(c.at);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(LakeCommitted { batch_id: batch, replaced_rows, superseded })
            }

            async fn lake_files(&self, kind: LakeKind, source: Option<&str>, from: Month, to: Month) -> Result<Vec<LakeFile>> {
                let mut qb = QueryBuilder::<$Db>::new("SELECT * FROM lake_files WHERE superseded_at IS NULL AND kind = ");
                qb.push_bind(kind.as_str()).push(" AND month >= ").push_bind(from.to_string()).push(" AND month <= ").push_bind(to.to_string());
                if let Some(s) = source {
                    qb.push(" AND source = ").push_bind(s.to_owned());
                }
                qb.push(" ORDER BY source, month, id");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(Self::lake_file).collect()
            }

            async fn lake_partitions(&self, kind: LakeKind) -> Result<Vec<LakePartition>> {
                const T: &str = "lake_partitions";
                let rows = sqlx::query("SELECT * FROM lake_partitions WHERE kind = $1 ORDER BY source, month").bind(kind.as_str()).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        Ok(LakePartition {
                            kind: parse(T, "kind", r.try_get("kind")?)?,
                            source: r.try_get("source")?,
                            month: parse(T, "month", r.try_get("month")?)?,
                            version: r.try_get("version")?,
                            rows: r.try_get("rows")?,
                            first_at: r.try_get("first_at")?,
                            last_at: r.try_get("last_at")?,
                            updated_at: r.try_get("updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn lake_superseded(&self) -> Result<Vec<LakeFile>> {
                let rows = sqlx::query("SELECT * FROM lake_files WHERE superseded_at IS NOT NULL ORDER BY id").fetch_all(&self.pool).await?;
                rows.iter().map(Self::lake_file).collect()
            }

            async fn lake_forget(&self, ids: &[i64]) -> Result<()> {
                for chunk in ids.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$Db>::new("DELETE FROM lake_files WHERE superseded_at IS NOT NULL AND id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(*id);
                    }
                    qb.push(")");
                    qb.build().execute(&self.pool).await?;
                }
                Ok(())
            }

            async fn lake_paths(&self) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT path FROM lake_files ORDER BY path").fetch_all(&self.pool).await?)
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

            async fn legacy_partitions(&self) -> Result<Vec<LegacyPartition>> {
                if self.migration_status().await?.applied.contains(&6) {
                    return Ok(Vec::new());
                }
                let billing: Vec<(String, String, i64)> =
                    sqlx::query_as("SELECT source, billing_month, COUNT(*) FROM cost_lines GROUP BY source, billing_month ORDER BY source, billing_month")
                        .fetch_all(&self.pool)
                        .await?;
                let mut out = Vec::new();
                for (source, month, rows) in billing {
                    out.push(LegacyPartition { kind: LakeKind::Billing, source, month: parse("cost_lines", "billing_month", month)?, rows });
                }
                // Hours are compared, not formatted: the same SQL on both backends.
                let hours: Vec<(String, DateTime<Utc>, i64)> =
                    sqlx::query_as("SELECT source, hour, COUNT(*) FROM usage_samples GROUP BY source, hour ORDER BY source, hour").fetch_all(&self.pool).await?;
                let mut usage: BTreeMap<(String, Month), i64> = BTreeMap::new();
                for (source, hour, rows) in hours {
                    *usage.entry((source, Month::of(hour))).or_default() += rows;
                }
                out.extend(usage.into_iter().map(|((source, month), rows)| LegacyPartition { kind: LakeKind::Usage, source, month, rows }));
                Ok(out)
            }

            async fn legacy_cost_lines(&self, source: &str, month: Month) -> Result<Vec<CostLine>> {
                let rows = sqlx::query("SELECT * FROM cost_lines WHERE source = $1 AND billing_month = $2 ORDER BY id")
                    .bind(source)
                    .bind(month.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::cost_line).collect()
            }

            async fn legacy_usage(&self, source: &str, month: Month) -> Result<Vec<UsageSample>> {
                const T: &str = "usage_samples";
                let rows = sqlx::query(
                    "SELECT hour, tenant_id, metric, value, unit, resource_id, workload FROM usage_samples
                     WHERE source = $1 AND hour >= $2 AND hour < $3 ORDER BY hour, tenant_id, metric, resource_id, workload",
                )
                .bind(source)
                .bind(month.start())
                .bind(month.end())
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

            async fn seed_legacy_rows(&self, lines: &[CostLine], usage_source: &str, samples: &[UsageSample]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let batch = Self::insert_batch(&mut tx, "billing", "legacy", "rows of an earlier version", "seed", lines.len() + samples.len(), 0).await?;
                for chunk in lines.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$Db>::new(
                        "INSERT INTO cost_lines (batch_id, source, billing_month, usage_start, usage_end, payer_account, usage_account, \
                         service, usage_type, operation, resource_id, region, availability_zone, line_type, description, currency, \
                         unblended, net_unblended, amortized, list_cost, usage_amount, usage_unit, instance_type, commitment_id, tags, \
                         tenant_id, estimated, provider) ",
                    );
                    qb.push_values(chunk, |mut b, l| {
                        b.push_bind(batch)
                            .push_bind(l.source.as_str())
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
                            .push_bind(serde_json::to_string(&l.tags).unwrap_or_else(|_| "{}".into()))
                            .push_bind(l.tenant.as_ref().map(|t| t.as_str().to_owned()))
                            .push_bind(l.estimated)
                            .push_bind(l.provider.clone());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                for chunk in samples.chunks(CHUNK * 3) {
                    let mut qb = QueryBuilder::<$Db>::new(
                        "INSERT INTO usage_samples (batch_id, source, hour, tenant_id, metric, value, unit, resource_id, workload) ",
                    );
                    qb.push_values(chunk, |mut b, s| {
                        b.push_bind(batch)
                            .push_bind(usage_source)
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
                Ok(())
            }

            async fn usage_totals(&self, from: Month, to: Month, tenant: Option<&TenantId>) -> Result<Vec<UsageTotal>> {
                const T: &str = "usage_monthly";
                let mut qb = QueryBuilder::<$Db>::new("SELECT month, tenant_id, metric, value FROM usage_monthly WHERE month >= ");
                qb.push_bind(from.to_string()).push(" AND month <= ").push_bind(to.to_string());
                if let Some(t) = tenant {
                    qb.push(" AND tenant_id = ").push_bind(t.as_str().to_owned());
                }
                qb.push(" ORDER BY month, tenant_id, metric");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        Ok(UsageTotal {
                            month: parse(T, "month", r.try_get("month")?)?,
                            tenant: parse(T, "tenant_id", r.try_get("tenant_id")?)?,
                            metric: r.try_get("metric")?,
                            value: r.try_get("value")?,
                        })
                    })
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
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
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
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1").execute(&self.pool).await?;
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
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1").execute(&self.pool).await?;
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
                let mut tenant_monthly: BTreeMap<(String, Currency), (Decimal, Decimal)> = BTreeMap::new();
                let mut service_monthly: BTreeMap<(String, Currency), (Decimal, Decimal)> = BTreeMap::new();
                for r in &res.monthly {
                    for (map, key) in [(&mut tenant_monthly, r.allocatee.as_str()), (&mut service_monthly, r.service.as_str())] {
                        let e = map.entry((key.to_owned(), r.currency)).or_default();
                        e.0 += r.unblended;
                        e.1 += r.amortized;
                    }
                }
                let mut tx = self.pool.begin().await?;
                // The month's run row first: a second writer of the same month waits
                // here on its row lock until the first commits, then deletes what the
                // first wrote, so concurrent allocations of a month replace each other
                // instead of colliding on the rows' keys.
                sqlx::query(
                    "INSERT INTO allocation_runs (month, source, billed_lines, usage_rows, rows, created_at, inputs) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (month) DO UPDATE SET source = excluded.source, billed_lines = excluded.billed_lines,
                     usage_rows = excluded.usage_rows, rows = excluded.rows, created_at = excluded.created_at, inputs = excluded.inputs",
                )
                .bind(&month)
                .bind(res.source.as_str())
                .bind(res.billed_lines)
                .bind(res.usage_rows)
                .bind((res.monthly.len() + res.service_daily.len() + res.tenant_daily.len()) as i64)
                .bind(res.created_at)
                .bind(&res.inputs)
                .execute(&mut *tx)
                .await?;
                for table in [
                    "DELETE FROM cost_monthly WHERE month = $1",
                    "DELETE FROM cost_tenant_monthly WHERE month = $1",
                    "DELETE FROM cost_service_monthly WHERE month = $1",
                    "DELETE FROM cost_service_daily WHERE month = $1",
                    "DELETE FROM cost_tenant_daily WHERE month = $1",
                    "DELETE FROM usage_monthly WHERE month = $1",
                    "DELETE FROM allocation_billed WHERE month = $1",
                    "DELETE FROM allocation_explanations WHERE month = $1",
                ] {
                    sqlx::query(table).bind(&month).execute(&mut *tx).await?;
                }
                $bulk::cost_monthly(&mut tx, &res.monthly).await?;
                $bulk::monthly_rollup(&mut tx, "cost_tenant_monthly", "allocatee", res.month, &tenant_monthly).await?;
                $bulk::monthly_rollup(&mut tx, "cost_service_monthly", "service", res.month, &service_monthly).await?;
                $bulk::daily_rollup(&mut tx, "cost_service_daily", "service", &res.service_daily).await?;
                $bulk::daily_rollup(&mut tx, "cost_tenant_daily", "allocatee", &res.tenant_daily).await?;
                $bulk::usage_monthly(&mut tx, &res.usage).await?;
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
                $bulk::explanations(&mut tx, &res.explanations).await?;
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn allocation_rows(&self, f: &AllocationFilter) -> Result<Vec<AllocationRow>> {
                let mut qb = QueryBuilder::<$Db>::new("SELECT * FROM cost_monthly WHERE month >= ");
                qb.push_bind(f.from.to_string()).push(" AND month <= ").push_bind(f.to.to_string());
                if let Some(a) = &f.allocatee {
                    qb.push(" AND allocatee = ").push_bind(a.clone());
                }
                qb.push(" ORDER BY month, allocatee, pool, service, reason");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(Self::allocation_row).collect()
            }

            async fn monthly_costs(&self, q: &CostQuery) -> Result<Vec<CostRow>> {
                let uses = |d: CostDim| q.dims.contains(&d);
                let tenant_only = !uses(CostDim::Pool) && !uses(CostDim::Service) && q.pool.is_none() && q.service.is_none();
                let service_only = !uses(CostDim::Pool) && !uses(CostDim::Allocatee) && q.pool.is_none() && q.allocatee.is_none();
                // The smallest rollup that answers the query.
                let table = if service_only {
                    "cost_service_monthly"
                } else if tenant_only {
                    "cost_tenant_monthly"
                } else {
                    "cost_monthly"
                };
                let dims: Vec<&str> = q
                    .dims
                    .iter()
                    .map(|d| match d {
                        CostDim::Month => "month",
                        CostDim::Allocatee => "allocatee",
                        CostDim::Pool => "pool",
                        CostDim::Service => "service",
                    })
                    .collect();
                let mut qb = QueryBuilder::<$Db>::new("SELECT ");
                for d in &dims {
                    qb.push(*d).push(", ");
                }
                qb.push("COALESCE(SUM(unblended), 0) AS unblended, COALESCE(SUM(amortized), 0) AS amortized, MIN(currency) AS currency FROM ").push(table);
                qb.push(" WHERE month >= ").push_bind(q.from.to_string()).push(" AND month <= ").push_bind(q.to.to_string());
                for (column, value) in [("allocatee", &q.allocatee), ("pool", &q.pool), ("service", &q.service)] {
                    if let Some(v) = value {
                        qb.push(format!(" AND {column} = ")).push_bind(v.clone());
                    }
                }
                if !dims.is_empty() {
                    qb.push(" GROUP BY ").push(dims.join(", ")).push(" ORDER BY ").push(dims.join(", "));
                }
                let rows = qb.build().fetch_all(&self.pool).await?;
                let out: Vec<CostRow> = rows.iter().map(|r| Self::cost_row(r, table, &dims)).collect::<Result<_>>()?;
                // An empty total is no group at all.
                Ok(if dims.is_empty() && rows.is_empty() { Vec::new() } else { out })
            }

            async fn daily_costs(&self, q: &DailyQuery) -> Result<Vec<CostRow>> {
                let (table, key) = match (q.by, &q.allocatee, &q.service) {
                    (Some(DailyBy::Service), Some(_), _) | (Some(DailyBy::Allocatee), _, Some(_)) | (None, Some(_), Some(_)) => {
                        return Err(StorageError::Config(
                            "daily costs are kept per service and per tenant: a day's cost of one tenant's service is not kept".into(),
                        ));
                    }
                    (Some(DailyBy::Service), None, _) | (None, None, _) => ("cost_service_daily", Some("service")),
                    (Some(DailyBy::Allocatee), _, None) | (None, Some(_), None) => ("cost_tenant_daily", Some("allocatee")),
                };
                let key = if q.by.is_some() { key } else { None };
                let mut dims = if q.per_day { vec!["day"] } else { Vec::new() };
                dims.extend(key);
                let mut qb = QueryBuilder::<$Db>::new("SELECT ");
                for d in &dims {
                    qb.push(*d).push(", ");
                }
                qb.push("COALESCE(SUM(unblended), 0) AS unblended, COALESCE(SUM(amortized), 0) AS amortized, MIN(currency) AS currency FROM ").push(table);
                qb.push(" WHERE day >= ").push_bind(q.from).push(" AND day < ").push_bind(q.to);
                if let Some(a) = &q.allocatee {
                    qb.push(" AND allocatee = ").push_bind(a.clone());
                }
                if let Some(s) = &q.service {
                    qb.push(" AND service = ").push_bind(s.clone());
                }
                if !dims.is_empty() {
                    qb.push(" GROUP BY ").push(dims.join(", ")).push(" ORDER BY ").push(dims.join(", "));
                }
                let rows = qb.build().fetch_all(&self.pool).await?;
                let out: Vec<CostRow> = rows
                    .iter()
                    .map(|r| {
                        let mut row = Self::cost_row(r, table, &dims)?;
                        row.month = row.day.map(Month::of_date);
                        Ok(row)
                    })
                    .collect::<Result<_>>()?;
                // An empty total is no group at all.
                Ok(if dims.is_empty() && out.iter().all(|r| r.unblended.is_zero() && r.amortized.is_zero()) { Vec::new() } else { out })
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

            async fn pool_quantities(&self, from: Month, to: Month, pool: &str, allocatee: Option<&str>) -> Result<Vec<(Month, String, f64)>> {
                let mut qb = QueryBuilder::<$Db>::new("SELECT month, allocatee, driver_quantity FROM allocation_explanations WHERE month >= ");
                qb.push_bind(from.to_string()).push(" AND month <= ").push_bind(to.to_string()).push(" AND pool = ").push_bind(pool.to_owned());
                qb.push(" AND driver_quantity IS NOT NULL");
                if let Some(a) = allocatee {
                    qb.push(" AND allocatee = ").push_bind(a.to_owned());
                }
                qb.push(" ORDER BY month, allocatee");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| Ok((parse("allocation_explanations", "month", r.try_get("month")?)?, r.try_get("allocatee")?, r.try_get("driver_quantity")?)))
                    .collect()
            }

            async fn data_version(&self) -> Result<i64> {
                Ok(sqlx::query_scalar("SELECT version FROM data_version WHERE id = 1").fetch_one(&self.pool).await?)
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
                            inputs: r.try_get("inputs")?,
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
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1").execute(&self.pool).await?;
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
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1").execute(&self.pool).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_session(&self, n: &NewSession) -> Result<SessionRecord> {
                sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(n.created_at - chrono::Duration::days(1)).execute(&self.pool).await?;
                sqlx::query("INSERT INTO sessions (session_hash, token_id, kind, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&n.hash)
                    .bind(n.token_id)
                    .bind(n.kind.as_str())
                    .bind(n.created_at)
                    .bind(n.expires_at)
                    .execute(&self.pool)
                    .await?;
                self.session_by_hash(&n.hash).await?.ok_or_else(|| StorageError::Config("the session just stored cannot be read back".into()))
            }

            async fn session_by_hash(&self, hash: &str) -> Result<Option<SessionRecord>> {
                let row = sqlx::query(
                    "SELECT s.id AS session_id, s.kind, s.created_at AS session_created_at, s.expires_at AS session_expires_at,
                            s.revoked_at AS session_revoked_at, t.id, t.role, t.tenant_id, t.label, t.created_at, t.expires_at, t.revoked_at
                     FROM sessions s JOIN api_tokens t ON t.id = s.token_id WHERE s.session_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let kind: String = row.try_get("kind")?;
                Ok(Some(SessionRecord {
                    id: row.try_get("session_id")?,
                    kind: match kind.as_str() {
                        "session" => SessionKind::Session,
                        "link" => SessionKind::Link,
                        _ => return Err(StorageError::corrupt("sessions", "kind", kind)),
                    },
                    created_at: row.try_get("session_created_at")?,
                    expires_at: row.try_get("session_expires_at")?,
                    revoked_at: row.try_get("session_revoked_at")?,
                    token: Self::token(&row)?,
                }))
            }

            async fn revoke_session(&self, hash: &str, at: DateTime<Utc>) -> Result<bool> {
                let done = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE session_hash = $2 AND revoked_at IS NULL")
                    .bind(at)
                    .bind(hash)
                    .execute(&self.pool)
                    .await?;
                // Other replicas drop the session they keep in memory.
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1").execute(&self.pool).await?;
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
                // Job errors are read by every viewer: no secret is ever stored in one.
                .bind(f.error.as_deref().map(tally_domain::redact))
                .bind(f.detail.as_deref().map(tally_domain::redact))
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

            async fn reserve_api_request(&self, source: &str, month: Month, budget: i64) -> Result<Option<i64>> {
                // Checked and counted in one statement: replicas never pass the budget together.
                let total: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO api_request_counts (source, month, requests) SELECT $1, $2, 1 WHERE $3 >= 1
                     ON CONFLICT (source, month) DO UPDATE SET requests = api_request_counts.requests + 1 WHERE api_request_counts.requests < $3
                     RETURNING requests",
                )
                .bind(source)
                .bind(month.to_string())
                .bind(budget)
                .fetch_optional(&self.pool)
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
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1").execute(&self.pool).await?;
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

/// Creates the database file readable by its owner only (SQLite gives its
/// `-wal` and `-shm` files the same mode); an existing file is left as it is.
fn create_private(path: &std::path::Path) -> Result<()> {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" || path.exists() {
        return Ok(());
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StorageError::Config(format!("cannot create the database file {}: {e}", path.display()))),
    }
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // Rows cross from SQLite's thread in batches rather than a few at a
            // time: a report of 10,000 rows took 100 ms in thread hand-offs.
            .row_buffer_size(4096);
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| StorageError::Config(format!("cannot create the data directory {}: {e}", parent.display())))?;
        }
        create_private(options.get_filename())?;
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        Ok(Self { pool })
    }
}

/// How long a query waits for a database connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// The shared backend for several replicas.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self> {
        // A request waits at most ACQUIRE_TIMEOUT for a connection: when the
        // database is away the API answers 503 at once rather than hanging,
        // and the pool connects again by itself when it is back.
        let pool = PgPoolOptions::new().max_connections(10).acquire_timeout(ACQUIRE_TIMEOUT).connect(url).await?;
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

store_impl!(SqliteStore, sqlx::Sqlite, SqliteRow, money_sqlite, bulk_sqlite, migrate::SQLITE, NO_LOCK, Backend::Sqlite);
store_impl!(PostgresStore, sqlx::Postgres, PgRow, money_pg, bulk_pg, migrate::POSTGRES, PG_MIGRATION_LOCK, Backend::Postgres);
