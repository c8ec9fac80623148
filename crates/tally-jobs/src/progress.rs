//! Progress of long work, shown as a bar on a terminal or as log lines.

/// Receives the progress of a long job.
pub trait Progress: Send + Sync {
    /// A new stage of `total` units (0 when unknown).
    fn stage(&self, what: &str, total: u64);
    /// `n` more units of the current stage are done.
    fn advance(&self, n: u64);
    /// The current stage ended with `message`.
    fn done(&self, message: &str);
}

/// Ignores progress (tests, the scheduler).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn done(&self, _: &str) {}
}
