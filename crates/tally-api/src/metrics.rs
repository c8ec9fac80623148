//! Prometheus metrics in the text exposition format, kept by hand: request
//! counts and latency by route and status; job and collection figures are
//! read from the database at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

/// One route's latency: cumulative bucket counts, observations and their sum.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, took: Duration) {
        *self.requests.lock().expect("metrics").entry((route.to_owned(), method.to_owned(), status)).or_default() += 1;
        let secs = took.as_secs_f64();
        let mut lat = self.latency.lock().expect("metrics");
        let h = lat.entry(route.to_owned()).or_default();
        for (n, b) in h.buckets.iter_mut().zip(BUCKETS) {
            if secs <= b {
                *n += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP tally_http_requests_total HTTP requests by route, method and status.\n# TYPE tally_http_requests_total counter\n");
        for ((route, method, status), n) in self.requests.lock().expect("metrics").iter() {
            let _ = writeln!(out, "tally_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}", escape(route));
        }
        out.push_str("# HELP tally_http_request_duration_seconds Time to answer, by route.\n# TYPE tally_http_request_duration_seconds histogram\n");
        for (route, Histogram { buckets, count, sum }) in self.latency.lock().expect("metrics").iter() {
            let r = escape(route);
            for (b, n) in BUCKETS.iter().zip(buckets) {
                let _ = writeln!(out, "tally_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {n}");
            }
            let _ = writeln!(out, "tally_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "tally_http_request_duration_seconds_sum{{route=\"{r}\"}} {sum}");
            let _ = writeln!(out, "tally_http_request_duration_seconds_count{{route=\"{r}\"}} {count}");
        }
    }
}

pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
