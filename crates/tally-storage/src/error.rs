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
}

impl StorageError {
    pub(crate) fn corrupt(table: &'static str, column: &'static str, value: impl ToString) -> Self {
        Self::Corrupt { table, column, value: value.to_string() }
    }
}
