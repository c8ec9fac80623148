/// What can go wrong talking to the database.
///
/// `Database` wraps driver errors (connection, constraint, syntax); callers in
/// the request path turn it into a logged 500 without showing its text.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("{0}")]
    Config(String),
    /// Another writer changed what this one read (a columnar-store partition
    /// switched since it was read); the caller may read again and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value that no longer parses: a bug or a hand-edited database.
    #[error("corrupt value in {table}.{column}: {value:?}")]
    Corrupt { table: &'static str, column: &'static str, value: String },
    /// The database is known to be unreachable (a caller's short-cut, without asking it again).
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl StorageError {
    /// Whether the database could not be reached (down, restarting, the pool
    /// waited too long for a connection), as opposed to refusing a query:
    /// the API answers the first with 503 and the second with 500.
    pub fn is_unavailable(&self) -> bool {
        let e = match self {
            Self::Unavailable(_) => return true,
            Self::Database(e) => e,
            _ => return false,
        };
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
            // PostgreSQL's connection exceptions (08...) and operator intervention (57P01-57P03: shutting down, starting up).
            sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")),
            _ => false,
        }
    }

    pub(crate) fn corrupt(table: &'static str, column: &'static str, value: impl ToString) -> Self {
        Self::Corrupt { table, column, value: value.to_string() }
    }
}
