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

/// The label of a request's method: one of the methods HTTP defines, else
/// `other`. A label per made-up method would grow the metrics (and the
/// process) by every request that invents one.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

impl Metrics {
    /// Counts one answer. `route` is a matched route pattern (or `unmatched`)
    /// and `method` one of [`method_label`]'s, so the label sets stay fixed.
    pub fn observe(&self, route: &str, method: &'static str, status: u16, took: Duration) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        let m = Metrics::default();
        for i in 0..100 {
            let method = axum::http::Method::from_bytes(format!("X{i:0>500}").as_bytes()).unwrap();
            m.observe("unmatched", method_label(&method), 405, Duration::from_millis(1));
        }
        m.observe("/healthz", method_label(&axum::http::Method::GET), 200, Duration::from_millis(1));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("tally_http_requests_total{route=\"unmatched\",method=\"other\",status=\"405\"} 100"), "{out}");
        assert!(out.len() < 4_000, "the metrics grew with the methods: {} bytes", out.len());
    }
}
