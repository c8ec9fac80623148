//! The `tally` binary as people run it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tally(data: &std::path::Path) -> Command {
    let mut c = tally_test_support::tally_command(env!("CARGO_BIN_EXE_tally"));
    c.arg("--data-dir").arg(data).env("TALLY_LOG", "warn");
    c
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    let top = tally(dir.path()).arg("--help").output().unwrap();
    assert!(top.status.success());
    let text = String::from_utf8(top.stdout).unwrap();
    for sub in ["demo", "serve", "migrate", "import", "collect", "allocate", "export", "savings", "token", "jobs", "explain", "prices"] {
        assert!(text.contains(sub), "{sub} is listed");
        let out = tally(dir.path()).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help");
    }
    for nested in [["import", "cur"], ["import", "usage"], ["collect", "costs"], ["export", "monthly"], ["token", "create"]] {
        assert!(tally(dir.path()).args(nested).arg("--help").output().unwrap().status.success(), "{nested:?}");
    }
}

#[test]
fn an_invalid_configuration_stops_start_up_naming_the_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let out = tally(dir.path()).env("TALLY_SERVER__RATE_LIMIT_PER_MINUTE", "lots").arg("jobs").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("server.rate_limit_per_minute") && err.contains("lots") && err.contains("TALLY_SERVER__RATE_LIMIT_PER_MINUTE"), "{err}");
}

#[test]
fn a_token_is_printed_alone_on_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = tally(dir.path()).args(["token", "create", "--role", "viewer", "--expires", "30d"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.trim().starts_with("tly_") && stdout.trim().len() == 68);
    let bad = tally(dir.path()).args(["token", "create", "--role", "tenant"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--tenant"));
}

/// A child process killed (by its PID) when the test ends, even on a panic.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tally demo` on a free port and returns it with the sign-in token.
fn start_demo(data: &std::path::Path) -> (Child, u16, String) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tally(data).args(["demo", "--listen", &format!("127.0.0.1:{port}")]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut token = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(t) = line.trim().strip_prefix("API token (admin, 30 days): ") {
            token = Some(t.to_owned());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "the demo did not start");
    }
    (Child(child), port, token.expect("the demo prints a token"))
}

fn get(port: u16, path: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[test]
fn the_demo_serves_real_data_and_running_it_again_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port, token) = start_demo(dir.path());
    let (status, body) = get(port, "/api/v1/costs?group_by=tenant,month", &token);
    assert_eq!(status, 200, "{body}");
    let costs: serde_json::Value = serde_json::from_str(body.split("\r\n").find(|l| l.starts_with('{')).unwrap_or(&body)).unwrap();
    let tenants: std::collections::BTreeSet<&str> = costs["groups"].as_array().unwrap().iter().map(|g| g["key"]["tenant"].as_str().unwrap()).collect();
    assert!(tenants.len() >= 20, "{tenants:?}");
    let (status, rec) = get(port, "/api/v1/reconciliation", &token);
    assert_eq!(status, 200);
    assert!(rec.contains("\"reconciled\":true"), "{rec}");
    // SIGTERM: graceful shutdown.
    unsafe_kill_term(child.0.id());
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let month = costs["groups"][0]["key"]["month"].as_str().unwrap().to_owned();
    let export = || {
        let out = tally(dir.path()).args(["export", "monthly", "--month", &month]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let before = export();
    let lines = String::from_utf8_lossy(&before).lines().count();
    assert!(lines > 100, "the export holds the month's rows: {lines}");
    let out = tally(dir.path()).args(["demo", "--no-serve"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(export(), before, "a second demo replaces the same data: the month's export is byte-identical");
}

fn unsafe_kill_term(pid: u32) {
    // The test owns this child; SIGTERM it by its PID.
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

#[test]
fn collect_costs_talks_to_the_endpoint_in_aws_endpoint_url() {
    let moto = tally_test_support::start_moto().expect("moto_server");
    let body = r#"{"results":[{"ResultsByTime":[{"TimePeriod":{"Start":"2026-10-01","End":"2026-10-02"},"Total":{},"Groups":[{"Keys":["Amazon ElastiCache","NodeUsage:cache.r6g.large"],"Metrics":{"UnblendedCost":{"Amount":"14.832","Unit":"USD"},"AmortizedCost":{"Amount":"14.832","Unit":"USD"},"UsageQuantity":{"Amount":"72","Unit":"Hrs"}}}],"Estimated":false}]}]}"#;
    let seeded = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            body,
            &format!("{}/moto-api/static/ce/cost-and-usage-results", moto.endpoint()),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&seeded.stdout), "201");
    let dir = tempfile::tempdir().unwrap();
    let out = tally(dir.path())
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .args(["collect", "costs", "--from", "2026-10-01", "--to", "2026-10-02"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 lines") && stdout.contains("2 request(s) ($0.02)"), "{stdout}");
}
