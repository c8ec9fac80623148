//! Read-only queries against the application's own PostgreSQL database
//! (where each tenant has a schema), for the usage collector. Kept here
//! because this is the crate that knows SQL; the collector decides what the
//! figures mean.

use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::{Result, StorageError};

/// The application's database, reached with a read-only role.
#[derive(Debug, Clone)]
pub struct AppDatabase {
    pool: PgPool,
}

impl AppDatabase {
    pub async fn connect(url: &str) -> Result<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StorageError::Config(format!("the application database must be PostgreSQL, not {:?}", crate::redact(url))));
        }
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(15))
            // Never write, never hold locks for long.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY").execute(&mut *conn).await?;
                    sqlx::query("SET statement_timeout = '30s'").execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// Bytes per schema: tables, their indexes and TOAST (each table counted once).
    pub async fn schema_sizes(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT n.nspname AS schema, COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint AS bytes
             FROM pg_namespace n
             LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm', 'p')
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
             GROUP BY n.nspname ORDER BY n.nspname",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("schema")?, r.try_get("bytes")?))).collect()
    }

    /// Whether `pg_stat_statements` is installed and readable.
    pub async fn has_pg_stat_statements(&self) -> Result<bool> {
        let installed: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetch_optional(&self.pool).await?;
        if installed.is_none() {
            return Ok(false);
        }
        Ok(sqlx::query("SELECT 1 FROM pg_stat_statements LIMIT 1").fetch_optional(&self.pool).await.is_ok())
    }

    /// Cumulative statement execution time in milliseconds per role.
    pub async fn exec_ms_by_role(&self) -> Result<Vec<(String, f64)>> {
        let rows = sqlx::query(
            "SELECT r.rolname AS role, SUM(s.total_exec_time)::float8 AS ms
             FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid GROUP BY r.rolname ORDER BY r.rolname",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("role")?, r.try_get("ms")?))).collect()
    }

    /// Cumulative execution time (ms) of the statements that name each schema.
    pub async fn exec_ms_by_schema(&self, schemas: &[String]) -> Result<Vec<(String, f64)>> {
        let rows = sqlx::query("SELECT query, total_exec_time::float8 AS ms FROM pg_stat_statements").fetch_all(&self.pool).await?;
        let mut out: Vec<(String, f64)> = schemas.iter().map(|s| (s.clone(), 0.0)).collect();
        for r in &rows {
            let q: String = r.try_get("query")?;
            let ms: f64 = r.try_get("ms")?;
            if let Some(e) = out.iter_mut().find(|(s, _)| q.contains(&format!("{s}.")) || q.contains(&format!("\"{s}\"."))) {
                e.1 += ms;
            }
        }
        Ok(out)
    }
}
