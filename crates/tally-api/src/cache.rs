//! Answers and token checks kept in memory while the data stays the same.
//!
//! Every write that changes what a report shows increases the database's
//! data version (`Store::data_version`). A request looks the version up at
//! most every [`CHECK_EVERY`] (one request does, the others go on), and a
//! new version drops everything kept: what another replica writes, a revoked
//! token included, shows here within that time; what this server writes, at
//! once.
//!
//! While the database is unreachable, the cache remembers it for
//! [`OUTAGE_PROBE_EVERY`]: requests meanwhile are told so at once (503)
//! instead of each waiting for a connection; then one request probes again.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use tally_storage::{SessionRecord, StorageError, Store, TokenRecord};

/// How stale a replica's answers may be, at most.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(250);
/// How long a database found unreachable is taken as still unreachable.
pub(crate) const OUTAGE_PROBE_EVERY: Duration = Duration::from_secs(1);
/// Answers kept before the oldest are dropped (all at once: simple, and rare).
const MAX_ENTRIES: usize = 4096;
/// Answers larger than this are not kept.
pub(crate) const MAX_BODY: usize = 8 << 20;

/// A kept answer.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub(crate) body: Bytes,
    /// The answer's headers (content type, cache control), as first sent.
    pub(crate) headers: HeaderMap,
}

#[derive(Debug)]
pub(crate) struct Cache {
    started: Instant,
    /// Milliseconds since `started` of the last version check.
    checked_ms: AtomicU64,
    version: AtomicI64,
    /// Milliseconds since `started` until which the database is taken as away (0: not away).
    away_until_ms: AtomicU64,
    answers: RwLock<HashMap<String, Kept>>,
    tokens: RwLock<HashMap<String, TokenRecord>>,
    sessions: RwLock<HashMap<String, SessionRecord>>,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            checked_ms: AtomicU64::new(0),
            version: AtomicI64::new(i64::MIN),
            away_until_ms: AtomicU64::new(0),
            answers: RwLock::default(),
            tokens: RwLock::default(),
            sessions: RwLock::default(),
        }
    }
}

impl Cache {
    /// Drops what is kept when the data changed (checking at most every
    /// [`CHECK_EVERY`]); `Err` while the database is unreachable.
    pub(crate) async fn refresh(&self, store: &dyn Store) -> Result<(), StorageError> {
        let now = self.started.elapsed().as_millis() as u64;
        if now < self.away_until_ms.load(Ordering::Relaxed) {
            return Err(StorageError::Unavailable("the database was unreachable a moment ago".into()));
        }
        let last = self.checked_ms.load(Ordering::Relaxed);
        let due = self.version.load(Ordering::Relaxed) == i64::MIN || now.saturating_sub(last) >= CHECK_EVERY.as_millis() as u64;
        // One request checks; the others use what is kept meanwhile.
        if !due || self.checked_ms.compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Relaxed).is_err() {
            // After an outage, while one request probes, the others are told at once.
            if self.away_until_ms.load(Ordering::Relaxed) != 0 {
                return Err(StorageError::Unavailable("the database was unreachable a moment ago".into()));
            }
            return Ok(());
        }
        match store.data_version().await {
            Ok(v) => {
                self.away_until_ms.store(0, Ordering::Relaxed);
                if self.version.swap(v, Ordering::AcqRel) != v {
                    self.clear();
                }
                Ok(())
            }
            // The database is away: keep nothing, so that every request asks it (and fails plainly).
            Err(e) => {
                self.version.store(i64::MIN, Ordering::Release);
                self.clear();
                if e.is_unavailable() {
                    let after = self.started.elapsed().as_millis() as u64;
                    self.away_until_ms.store(after + OUTAGE_PROBE_EVERY.as_millis() as u64, Ordering::Relaxed);
                    return Err(e);
                }
                Ok(())
            }
        }
    }

    /// Drops everything kept (this server wrote something).
    pub(crate) fn clear(&self) {
        self.answers.write().expect("cache lock").clear();
        self.tokens.write().expect("cache lock").clear();
        self.sessions.write().expect("cache lock").clear();
    }

    pub(crate) fn answer(&self, key: &str) -> Option<Kept> {
        self.answers.read().expect("cache lock").get(key).cloned()
    }

    pub(crate) fn keep_answer(&self, key: String, kept: Kept) {
        keep(&self.answers, key, kept);
    }

    pub(crate) fn token(&self, hash: &str) -> Option<TokenRecord> {
        self.tokens.read().expect("cache lock").get(hash).cloned()
    }

    pub(crate) fn keep_token(&self, hash: String, record: TokenRecord) {
        keep(&self.tokens, hash, record);
    }

    pub(crate) fn session(&self, hash: &str) -> Option<SessionRecord> {
        self.sessions.read().expect("cache lock").get(hash).cloned()
    }

    pub(crate) fn keep_session(&self, hash: String, record: SessionRecord) {
        keep(&self.sessions, hash, record);
    }

    /// Forgets one session at once (this server signed it out).
    pub(crate) fn forget_session(&self, hash: &str) {
        self.sessions.write().expect("cache lock").remove(hash);
    }
}

/// Keeps `value`, dropping everything kept in `map` first when it is full
/// (all at once: simple, and rare).
fn keep<V>(map: &RwLock<HashMap<String, V>>, key: String, value: V) {
    let mut kept = map.write().expect("cache lock");
    if kept.len() >= MAX_ENTRIES {
        kept.clear();
    }
    kept.insert(key, value);
}
