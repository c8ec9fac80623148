//! The Redis collector against the real Redis: the sampled estimate lies
//! within its reported error bound of the exact total.

use rand::{Rng, SeedableRng};
use tally_collectors::redis_usage::collect_redis;

#[tokio::test]
async fn sampled_memory_estimates_are_within_their_error_bound_of_the_exact_total() {
    let prefix = tally_test_support::unique_name("tallytest");
    let client = redis::Client::open(tally_test_support::redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut keys = Vec::new();
    for (tenant, count, size) in [("acme", 3000, 100..400usize), ("globex", 400, 1500..2500usize)] {
        let mut pipe = redis::pipe();
        for i in 0..count {
            let key = format!("{prefix}:t:{tenant}:{i}");
            let value = "v".repeat(rng.random_range(size.clone()));
            pipe.cmd("SET").arg(&key).arg(value).ignore();
            keys.push((tenant, key));
        }
        let _: () = pipe.query_async(&mut con).await.unwrap();
    }
    let pattern = format!("{prefix}:t:{{tenant}}:*");
    let got = collect_redis(&tally_test_support::redis_url(), &pattern, 300, 500, "2026-11-02T10:00:00Z".parse().unwrap()).await.unwrap();
    for tenant in ["acme", "globex"] {
        let mut exact = 0u64;
        for (_, k) in keys.iter().filter(|(t, _)| *t == tenant) {
            let bytes: Option<u64> = redis::cmd("MEMORY").arg("USAGE").arg(k).query_async(&mut con).await.unwrap();
            exact += bytes.unwrap();
        }
        let est = got.tenants.iter().find(|t| t.tenant.as_str() == tenant).unwrap();
        let written = keys.iter().filter(|(t, _)| *t == tenant).count() as u64;
        assert_eq!(est.keys, written, "{tenant}: every key counted once, however often SCAN returns it");
        let off = (est.estimated_bytes - exact as f64).abs() / exact as f64;
        // The reported bound is a 95% interval, so one walk in twenty lands
        // outside it by design; twice its half-width is the 99.99% interval,
        // which an unbiased estimate leaves about once in 10,000 runs.
        assert!(
            off <= est.relative_error.max(1e-9) * 2.0,
            "{tenant}: estimate {} vs exact {exact} ({off:.4} off, bound {:.4})",
            est.estimated_bytes,
            est.relative_error
        );
        assert!(est.relative_error < 0.1, "{tenant}: a 300-key sample bounds the error under 10%: {}", est.relative_error);
        if tenant == "globex" {
            assert_eq!(est.sampled, 300);
        }
    }
    assert!(got.scan_calls > 1, "SCAN walks in bounded steps");
    let mut pipe = redis::pipe();
    for (_, k) in &keys {
        pipe.cmd("UNLINK").arg(k).ignore();
    }
    let _: () = pipe.query_async(&mut con).await.unwrap();
}
