//! Per-tenant cache memory from the application's Redis: keys are walked
//! with `SCAN` (bounded `COUNT`, never `KEYS`), a random sample of each
//! tenant's keys is measured with `MEMORY USAGE`, and the total is
//! extrapolated with a 95% relative error bound.
//!
//! `SCAN` may return a key more than once (while Redis rehashes a growing
//! table it walks some buckets twice), so each key is counted once: the
//! walk remembers a 64-bit hash of every key it has seen, 8 bytes a key.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use tally_domain::{Metric, TenantId, UsageSample};

/// One tenant's estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantMemory {
    pub tenant: TenantId,
    pub keys: u64,
    pub sampled: u64,
    pub estimated_bytes: f64,
    /// Half-width of the 95% confidence interval, relative to the estimate.
    pub relative_error: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisCollected {
    pub tenants: Vec<TenantMemory>,
    pub samples: Vec<UsageSample>,
    pub scan_calls: u64,
}

/// Splits `t:{tenant}:*` into the literal before the tenant and the text
/// that ends it.
fn split_pattern(pattern: &str) -> Result<(String, String), String> {
    let (prefix, rest) = pattern.split_once("{tenant}").ok_or_else(|| format!("key pattern {pattern:?} has no {{tenant}}"))?;
    let end = rest.chars().next().filter(|c| *c != '*').map(String::from).unwrap_or_default();
    Ok((prefix.to_owned(), end))
}

fn tenant_of(key: &str, prefix: &str, end: &str) -> Option<TenantId> {
    let rest = key.strip_prefix(prefix)?;
    let id = if end.is_empty() { rest } else { rest.split_once(end)?.0 };
    TenantId::normalise(id).ok()
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// What a `SCAN` walk has seen: per tenant, how many distinct keys and a
/// uniform reservoir sample of them (Algorithm R, seeded so that the same
/// walk samples the same keys).
struct KeyTally {
    prefix: String,
    end: String,
    sample_size: usize,
    seen: HashSet<u64>,
    hasher: BuildHasherDefault<DefaultHasher>,
    rng: rand::rngs::StdRng,
    per_tenant: BTreeMap<TenantId, (u64, Vec<String>)>,
}

impl KeyTally {
    fn new(prefix: String, end: String, sample_size: usize) -> Self {
        Self {
            prefix,
            end,
            sample_size,
            seen: HashSet::new(),
            hasher: BuildHasherDefault::default(),
            rng: rand::rngs::StdRng::seed_from_u64(0x7a11_7a11),
            per_tenant: BTreeMap::new(),
        }
    }

    fn observe(&mut self, key: String) {
        let Some(tenant) = tenant_of(&key, &self.prefix, &self.end) else { return };
        if !self.seen.insert(self.hasher.hash_one(&key)) {
            return;
        }
        let (n, sample) = self.per_tenant.entry(tenant).or_insert((0, Vec::new()));
        *n += 1;
        if sample.len() < self.sample_size {
            sample.push(key);
        } else {
            let j = self.rng.random_range(0..*n);
            if (j as usize) < sample.len() {
                sample[j as usize] = key;
            }
        }
    }
}

pub async fn collect_redis(url: &str, pattern: &str, sample_size: u32, scan_count: u32, hour: DateTime<Utc>) -> Result<RedisCollected, String> {
    let (prefix, end) = split_pattern(pattern)?;
    let glob = pattern.replace("{tenant}", "*");
    let client = redis::Client::open(url).map_err(|e| tally_domain::redact(&format!("Redis URL {url:?}: {e}")))?;
    let mut con = client.get_multiplexed_async_connection().await.map_err(|e| tally_domain::redact(&format!("connecting to Redis: {e}")))?;
    let mut tally = KeyTally::new(prefix, end, sample_size as usize);
    let mut cursor: u64 = 0;
    let mut scan_calls = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&glob)
            .arg("COUNT")
            .arg(scan_count)
            .query_async(&mut con)
            .await
            .map_err(|e| format!("SCAN: {e}"))?;
        scan_calls += 1;
        for key in keys {
            tally.observe(key);
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut tenants = Vec::new();
    let mut samples = Vec::new();
    for (tenant, (count, keys)) in tally.per_tenant {
        let mut sizes = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.cmd("MEMORY").arg("USAGE").arg(k);
            }
            let got: Vec<Option<u64>> = pipe.query_async(&mut con).await.map_err(|e| format!("MEMORY USAGE: {e}"))?;
            // A key that expired between SCAN and MEMORY USAGE is not in the sample.
            sizes.extend(got.into_iter().flatten().map(|b| b as f64));
        }
        if sizes.is_empty() {
            continue;
        }
        let n = sizes.len() as f64;
        let mean = sizes.iter().sum::<f64>() / n;
        let var = if n > 1.0 { sizes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        let fpc = (1.0 - n / count as f64).max(0.0);
        let relative_error = if mean > 0.0 { 1.96 * (var * fpc / n).sqrt() / mean } else { 0.0 };
        let estimated_bytes = mean * count as f64;
        samples.push(
            UsageSample::new(hour, tenant.clone(), Metric::parse("cache_memory_gb").expect("canonical"), estimated_bytes / GIB).map_err(|e| e.to_string())?,
        );
        tenants.push(TenantMemory { tenant, keys: count, sampled: sizes.len() as u64, estimated_bytes, relative_error });
    }
    Ok(RedisCollected { tenants, samples, scan_calls })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_pattern_names_the_tenant() {
        let (p, e) = split_pattern("t:{tenant}:*").unwrap();
        assert_eq!(tenant_of("t:acme:session:1", &p, &e).unwrap().as_str(), "acme");
        assert!(tenant_of("x:acme:1", &p, &e).is_none());
        let (p, e) = split_pattern("cache-{tenant}").unwrap();
        assert_eq!(tenant_of("cache-globex", &p, &e).unwrap().as_str(), "globex");
        assert!(split_pattern("t:*").is_err());
    }

    #[test]
    fn a_key_that_scan_returns_twice_is_counted_once() {
        let mut tally = KeyTally::new("t:".into(), ":".into(), 2);
        for key in ["t:acme:1", "t:acme:2", "t:acme:1", "t:acme:3", "t:acme:2", "t:globex:1", "other"] {
            tally.observe(key.to_owned());
        }
        let acme = &tally.per_tenant[&TenantId::normalise("acme").unwrap()];
        assert_eq!(acme.0, 3);
        assert_eq!(acme.1.len(), 2);
        assert_eq!(tally.per_tenant[&TenantId::normalise("globex").unwrap()].0, 1);
    }

    #[test]
    fn the_reservoir_keeps_every_key_with_equal_chance() {
        // 10 keys, a sample of 5: over many walks each key is kept about half the time.
        let mut kept = [0u32; 10];
        let mut tally = KeyTally::new("t:".into(), ":".into(), 5);
        for _ in 0..4000 {
            tally.seen.clear();
            tally.per_tenant.clear();
            for i in 0..10 {
                tally.observe(format!("t:acme:{i}"));
            }
            for key in &tally.per_tenant[&TenantId::normalise("acme").unwrap()].1 {
                kept[key.rsplit(':').next().unwrap().parse::<usize>().unwrap()] += 1;
            }
        }
        for (i, k) in kept.iter().enumerate() {
            assert!((1800..=2200).contains(k), "key {i} kept {k} times of 4000, expected about 2000");
        }
    }
}
