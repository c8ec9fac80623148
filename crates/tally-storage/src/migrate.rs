//! Migrations embedded from `sql/<backend>/NNNN_name.sql`, applied in order,
//! each in its own transaction, and recorded with a checksum so that an
//! edited migration is noticed instead of silently diverging.

use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
    /// Tables that must be empty before this migration runs (their rows
    /// move to the columnar store first, see `Store::legacy_partitions`).
    pub(crate) requires_empty: &'static [&'static str],
}

impl Migration {
    pub(crate) fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../../../sql/sqlite/0001_init.sql"), requires_empty: &[] },
    Migration { version: 2, name: "provider", sql: include_str!("../../../sql/sqlite/0002_provider.sql"), requires_empty: &[] },
    Migration { version: 3, name: "monthly_index", sql: include_str!("../../../sql/sqlite/0003_monthly_index.sql"), requires_empty: &[] },
    Migration { version: 4, name: "report_views", sql: include_str!("../../../sql/sqlite/0004_report_views.sql"), requires_empty: &[] },
    Migration { version: 5, name: "lake_and_rollups", sql: include_str!("../../../sql/sqlite/0005_lake_and_rollups.sql"), requires_empty: &[] },
    Migration {
        version: 6,
        name: "drop_raw_tables",
        sql: include_str!("../../../sql/sqlite/0006_drop_raw_tables.sql"),
        requires_empty: &["cost_lines", "usage_samples"],
    },
    Migration { version: 7, name: "sessions", sql: include_str!("../../../sql/sqlite/0007_sessions.sql"), requires_empty: &[] },
    Migration { version: 8, name: "amortized_tenant_views", sql: include_str!("../../../sql/sqlite/0008_amortized_tenant_views.sql"), requires_empty: &[] },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../../../sql/postgres/0001_init.sql"), requires_empty: &[] },
    Migration { version: 2, name: "provider", sql: include_str!("../../../sql/postgres/0002_provider.sql"), requires_empty: &[] },
    Migration { version: 3, name: "monthly_index", sql: include_str!("../../../sql/postgres/0003_monthly_index.sql"), requires_empty: &[] },
    Migration { version: 4, name: "report_views", sql: include_str!("../../../sql/postgres/0004_report_views.sql"), requires_empty: &[] },
    Migration { version: 5, name: "lake_and_rollups", sql: include_str!("../../../sql/postgres/0005_lake_and_rollups.sql"), requires_empty: &[] },
    Migration {
        version: 6,
        name: "drop_raw_tables",
        sql: include_str!("../../../sql/postgres/0006_drop_raw_tables.sql"),
        requires_empty: &["cost_lines", "usage_samples"],
    },
    Migration { version: 7, name: "sessions", sql: include_str!("../../../sql/postgres/0007_sessions.sql"), requires_empty: &[] },
    Migration { version: 8, name: "amortized_tenant_views", sql: include_str!("../../../sql/postgres/0008_amortized_tenant_views.sql"), requires_empty: &[] },
];

pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _tally_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

/// Where the database stands against the migrations this binary carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    pub applied: Vec<i64>,
    pub known: Vec<i64>,
}

impl MigrationStatus {
    /// Every migration this binary knows is applied, and none it does not know.
    pub fn is_current(&self) -> bool {
        self.applied == self.known
    }
}
