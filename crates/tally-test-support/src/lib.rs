//! Dev-only helpers shared by the test suites: where the real peers are
//! (PostgreSQL, Redis, the moto and LocalStack emulators), unique names for
//! fresh databases, and the path to the shared billing samples.
//!
//! Architecture invariants:
//! - Only `[dev-dependencies]` name this crate; nothing in a shipped binary
//!   depends on it.
//! - It depends on no other Tally crate, so any crate's tests can use it
//!   without a dependency cycle.
//! - Peers are real processes on loopback. A helper that starts one owns it:
//!   it is killed by PID when the guard drops, never by name.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod browser;
use rand::Rng;

/// The workspace root (where `Cargo.toml` with `[workspace]` lives).
///
/// Read at run time first: `cargo test` sets `CARGO_MANIFEST_DIR` for each test
/// binary, while the compile-time value can name another clone when several
/// checkouts share one target directory (as CI's cache does).
pub fn workspace_root() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.ancestors().nth(2).expect("crates/<name> sits two levels down").to_path_buf()
}

/// `../shared/data` beside the checkout, or `TEST_TALLY_SHARED_DATA`.
pub fn shared_data() -> PathBuf {
    std::env::var_os("TEST_TALLY_SHARED_DATA").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("../shared/data"))
}

/// The PostgreSQL server the tests use, without a database name.
pub fn postgres_server_url() -> String {
    std::env::var("TEST_TALLY_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// The server URL with a database name appended.
pub fn postgres_url(database: &str) -> String {
    format!("{}/{database}", postgres_server_url().trim_end_matches('/'))
}

/// The Redis server the tests use.
pub fn redis_url() -> String {
    std::env::var("TEST_TALLY_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A fresh name for a test database or key prefix: `prefix_<16 hex>`.
pub fn unique_name(prefix: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("{prefix}_{n:016x}")
}

/// A free TCP port on loopback (racy by nature; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// Where the Python tools are installed (`.ci/run` creates them).
pub fn venv(name: &str) -> PathBuf {
    std::env::var_os("TEST_TALLY_VENVS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
            home.join(".cache/tally/venv")
        })
        .join(name)
}

/// A command for a Tally binary that does not inherit the caller's Tally
/// settings: every `TALLY_*` variable and `DATABASE_URL` are removed, so the
/// configuration a test passes is the only one (a stray variable in the
/// developer's or CI's environment would otherwise be read as a config key).
pub fn tally_command(bin: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(bin);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("TALLY_") || k == "DATABASE_URL") {
            c.env_remove(key);
        }
    }
    c
}

/// The Tally binary `bin` on data directory `data`, logging warnings only,
/// with none of the caller's Tally settings (see [`tally_command`]).
pub fn tally_on(bin: impl AsRef<std::ffi::OsStr>, data: &std::path::Path) -> Command {
    let mut c = tally_command(bin);
    c.arg("--data-dir").arg(data).env("TALLY_LOG", "warn");
    c
}

/// The standard output of a command that must have succeeded (else a panic
/// showing both of its outputs).
pub fn succeeded(out: std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// `tally serve --no-scheduler` on a free loopback port, started from a
/// prepared command (the binary, its data directory and environment);
/// killed by its PID when dropped.
#[derive(Debug)]
pub struct TallyServer {
    pub child: Child,
    pub port: u16,
}

impl TallyServer {
    /// Starts `command` serving and waits (at most a minute) until it listens.
    pub fn start(mut command: Command) -> Self {
        let port = free_port();
        let child = command
            .args(["serve", "--no-scheduler", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tally serve starts");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "tally serve did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port }
    }
}

impl Drop for TallyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server process started by a test; killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    pub addr: SocketAddr,
    _dir: Option<tempfile::TempDir>,
}

impl Peer {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited before listening ({status})");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not listen on {addr} within {timeout:?}")
}

/// Starts moto's server (the Cost Explorer emulator) on a free port.
pub fn start_moto() -> Result<Peer> {
    let bin = venv("moto").join("bin/moto_server");
    if !bin.exists() {
        bail!("{} is missing: run .ci/run (or its install step) first", bin.display());
    }
    // A free port can be taken by another test's process before moto binds
    // it: then something else answers on the port and moto exits. So the
    // port counts only once moto's own API answers there, and moto is tried
    // again on another port if it exited.
    let mut last = None;
    for _ in 0..3 {
        let port = free_port();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        match wait_for_moto(addr, &mut child, Duration::from_secs(30)) {
            Ok(()) => return Ok(Peer { child, addr, _dir: None }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                last = Some(e);
            }
        }
    }
    Err(last.expect("tried at least once"))
}

/// Waits until moto's own dashboard (`GET /moto-api/`, titled "Moto")
/// answers on `addr`, failing as soon as `child` exits.
fn wait_for_moto(addr: SocketAddr, child: &mut Child, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(status) = child.try_wait()? {
            bail!("moto_server exited before listening on {addr} ({status})");
        }
        if http_get(addr, "/moto-api/").is_ok_and(|page| page.contains("<title>Moto</title>")) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("moto_server did not answer on {addr} within {timeout:?}")
}

/// Starts LocalStack (CloudWatch only, no Docker) on a free port and waits
/// until its CloudWatch service answers.
pub fn start_localstack() -> Result<Peer> {
    let python = venv("localstack").join("bin/python");
    if !python.exists() {
        bail!("{} is missing: run .ci/run (or its install step) first", python.display());
    }
    let port = free_port();
    let dir = tempfile::tempdir()?;
    let log = std::fs::File::create(dir.path().join("localstack.log"))?;
    let mut child = Command::new(&python)
        .args(["-m", "localstack.runtime.main"])
        .env("OVERRIDE_IN_DOCKER", "0")
        .env("FILESYSTEM_ROOT", dir.path())
        .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("SERVICES", "cloudwatch")
        .env("EAGER_SERVICE_LOADING", "1")
        .env("DNS_ADDRESS", "0")
        .env("SKIP_SSL_CERT_DOWNLOAD", "1")
        .env("LOCALSTACK_HOST", format!("127.0.0.1:{port}"))
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting LocalStack with {}", python.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for_port(addr, &mut child, "LocalStack", Duration::from_secs(120))?;
    // The gateway listens before the services are ready; poll the health endpoint.
    let start = Instant::now();
    loop {
        if let Ok(body) = http_get(addr, "/_localstack/health")
            && (body.contains("\"cloudwatch\": \"running\"") || body.contains("\"cloudwatch\":\"running\"") || body.contains("\"cloudwatch\": \"available\""))
        {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let log = std::fs::read_to_string(dir.path().join("localstack.log")).unwrap_or_default();
            bail!("LocalStack's CloudWatch did not become ready; log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(Peer { child, addr, _dir: Some(dir) })
}

/// A minimal HTTP/1.1 GET, for health checks without an HTTP client crate.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    // Some servers (Chromium's DevTools) keep the connection open despite
    // `Connection: close`: read the headers, then as many bytes as they announce.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(String::from_utf8_lossy(&raw).into_owned());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..header_end]).into_owned();
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
    });
    match length {
        Some(len) => {
            while raw.len() < header_end + len {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
            }
        }
        None => {
            s.read_to_end(&mut raw)?;
        }
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}
