//! Retrying throttled and failed calls with exponential backoff and jitter.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// How a failed call is classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Throttled (e.g. `LimitExceededException`): retry after a pause.
    Throttled(String),
    /// A 5xx, a timeout or a dropped connection: retry after a pause.
    Transient(String),
    /// A request the service will never accept: fail at once.
    Permanent(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Throttled(m) => write!(f, "throttled: {m}"),
            Self::Transient(m) => write!(f, "server error: {m}"),
            Self::Permanent(m) => write!(f, "{m}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    pub fn new(max_retries: u32) -> Self {
        Self { max_retries, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(20) }
    }

    /// The pause before retry `attempt` (1-based): base x 2^(attempt-1),
    /// capped, with "full jitter" between half and all of it.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(self.max_delay);
        let jitter: f64 = rand::rng().random_range(0.5..=1.0);
        exp.mul_f64(jitter)
    }
}

/// The outcome of a retried call: its value and how many attempts it took.
#[derive(Debug)]
pub struct Attempted<T> {
    pub value: Result<T, Failure>,
    pub attempts: u32,
}

/// Calls `op` until it succeeds, fails permanently or has used its retries.
pub async fn with_retries<T, F, Fut>(policy: &RetryPolicy, what: &str, mut op: F) -> Attempted<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match op().await {
            Ok(v) => return Attempted { value: Ok(v), attempts },
            Err(Failure::Permanent(m)) => return Attempted { value: Err(Failure::Permanent(m)), attempts },
            Err(e) if attempts > policy.max_retries => {
                return Attempted { value: Err(e), attempts };
            }
            Err(e) => {
                let pause = policy.delay(attempts);
                tracing::warn!(call = what, attempt = attempts, error = %e, pause_ms = pause.as_millis() as u64, "retrying");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stay_under_the_cap() {
        let p = RetryPolicy { max_retries: 10, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        for attempt in 1..=10 {
            let d = p.delay(attempt);
            let full = Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            assert!(d <= full && d >= full / 2, "attempt {attempt}: {d:?}");
        }
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_and_a_permanent_one_is_not() {
        let p = RetryPolicy { max_retries: 3, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        let mut n = 0;
        let r = with_retries(&p, "t", || {
            n += 1;
            let k = n;
            async move { if k < 3 { Err(Failure::Transient("503".into())) } else { Ok(k) } }
        })
        .await;
        assert_eq!((r.value, r.attempts), (Ok(3), 3));
        let r: Attempted<()> = with_retries(&p, "t", || async { Err(Failure::Permanent("bad request".into())) }).await;
        assert_eq!(r.attempts, 1);
        let r: Attempted<()> = with_retries(&p, "t", || async { Err(Failure::Throttled("slow down".into())) }).await;
        assert_eq!(r.attempts, 4, "the first try and three retries");
    }
}
