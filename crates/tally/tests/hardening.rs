//! `tally serve` as an attacker and a careless operator meet it, as a process
//! on loopback: a database that goes away and comes back (a PostgreSQL this
//! test starts on its own port and data directory), half-sent requests and
//! connection floods, SIGTERM with a request half sent, and secrets that must
//! appear in no stored error and no log line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn tally(data: &Path) -> Command {
    tally_test_support::tally_on(env!("CARGO_BIN_EXE_tally"), data)
}

use tally_test_support::succeeded as ok;

/// `tally serve` on a free port with these settings, killed when dropped.
fn serve(data: &Path, envs: &[(&str, String)]) -> tally_test_support::TallyServer {
    let mut c = tally(data);
    c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    tally_test_support::TallyServer::start(c)
}

/// One request on a connection of its own: status, headers and body.
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(s, "{head}\r\n{body}").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").map(|(h, b)| (h.to_owned(), b.to_owned())).unwrap_or((text.clone(), String::new()));
    (status, head, body)
}

fn token(data: &Path, envs: &[(&str, String)], role: &str) -> String {
    let mut c = tally(data);
    c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    ok(c.args(["token", "create", "--role", role]).output().unwrap()).trim().to_owned()
}

/// A PostgreSQL server of this test's own (initdb in a temporary directory,
/// its own port), which the test stops and starts; stopped when dropped.
struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnPostgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())
            .expect("initdb");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pg");
        std::fs::create_dir(&data).unwrap();
        // PostgreSQL refuses to run as root: as root, the data belong to the postgres user.
        if as_root() {
            assert!(Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().unwrap().success());
        }
        let init = run_as_postgres(&bin.join("initdb")).args(["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "--no-sync"]).output().unwrap();
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let pg = Self { bin, data, port: tally_test_support::free_port(), _dir: dir };
        pg.pg_ctl_start();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl_start(&self) {
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off", self.port, self.data.display());
        let out = run_as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap(), "-o", &options, "-w", "-t", "60", "-l"])
            .arg(self.data.join("log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn stop(&self) {
        let out = run_as_postgres(&self.bin.join("pg_ctl")).args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]).output().unwrap();
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = run_as_postgres(&self.bin.join("pg_ctl")).args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"]).output();
    }
}

fn as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn run_as_postgres(program: &Path) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

#[test]
fn while_the_database_is_away_requests_answer_503_at_once_and_serving_resumes_when_it_returns() {
    let pg = OwnPostgres::start();
    let data = tempfile::tempdir().unwrap();
    let envs = vec![("DATABASE_URL", pg.url())];
    let mut c = tally(data.path());
    ok(c.envs(envs.iter().map(|(k, v)| (*k, v.as_str()))).arg("migrate").output().unwrap());
    let viewer = token(data.path(), &envs, "viewer");
    let server = serve(data.path(), &envs);
    let bearer = format!("Bearer {viewer}");
    let auth = [("Authorization", bearer.as_str())];
    assert_eq!(request(server.port, "GET", "/api/v1/jobs", &auth, "").0, 200);
    // A dashboard session, started while the database is up.
    let form = format!("token={viewer}");
    let origin = format!("http://127.0.0.1:{}", server.port);
    let (status, head, _) =
        request(server.port, "POST", "/login", &[("Origin", origin.as_str()), ("Content-Type", "application/x-www-form-urlencoded")], &form);
    assert_eq!(status, 303, "{head}");
    let cookie = head.lines().find_map(|l| l.strip_prefix("set-cookie: ")).unwrap().split(';').next().unwrap().to_owned();

    pg.stop();
    // Past the 250 ms in which answers may be kept, every request asks the database.
    std::thread::sleep(Duration::from_millis(400));
    for (path, headers) in [("/api/v1/jobs", auth.to_vec()), ("/api/v1/costs", auth.to_vec()), ("/", vec![("Cookie", cookie.as_str())]), ("/readyz", vec![])] {
        let started = Instant::now();
        let (status, head, body) = request(server.port, "GET", path, &headers, "");
        let took = started.elapsed();
        assert_eq!(status, 503, "{path}: {head}\n{body}");
        assert!(took < Duration::from_secs(5), "{path} took {took:?}");
        assert!(!head.to_ascii_lowercase().contains("location: /login"), "{path}: the dashboard does not send people to sign in");
        for leak in ["Connection refused", "os error", &pg.port.to_string()] {
            assert!(!body.contains(leak), "{path} shows the database's error ({leak}): {body}");
        }
        if path.starts_with("/api") || path == "/readyz" {
            assert!(body.contains("\"code\":\"not_ready\""), "{path}: {body}");
        }
    }
    assert_eq!(request(server.port, "GET", "/healthz", &[], "").0, 200, "the process itself is alive");

    pg.pg_ctl_start();
    let started = Instant::now();
    loop {
        if request(server.port, "GET", "/api/v1/jobs", &auth, "").0 == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "serving did not resume after the database returned");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(request(server.port, "GET", "/", &[("Cookie", cookie.as_str())], "").0, 200, "the session outlived the outage");
    assert_eq!(request(server.port, "GET", "/readyz", &[], "").0, 200);
}

/// Connects from `source` (a loopback address) to the server.
fn connect_from(source: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)).into(), Duration::from_secs(2))?;
    Ok(socket.into())
}

/// Whether the server closed `s` (EOF or reset) within `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn half_sent_requests_and_floods_from_one_address_neither_hold_the_server_nor_block_others() {
    let data = tempfile::tempdir().unwrap();
    let envs = vec![("TALLY_SERVER__HEADER_TIMEOUT_SECONDS", "2".to_owned()), ("TALLY_SERVER__MAX_CONNECTIONS_PER_IP", "20".to_owned())];
    let mut c = tally(data.path());
    ok(c.arg("migrate").output().unwrap());
    let server = serve(data.path(), &envs);
    // 300 half-sent requests from one address: only 20 are held, the rest are closed at once.
    let mut slow = Vec::new();
    for _ in 0..300 {
        if let Ok(mut s) = connect_from([127, 0, 0, 2], server.port) {
            let _ = s.write_all(b"GET /api/v1/costs HTTP/1.1\r\nHost: x\r\nX-Slow: ");
            slow.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let closed_at_once = slow.iter_mut().map(|s| closed_by_server(s, Duration::from_millis(50))).filter(|closed| *closed).count();
    assert!(closed_at_once >= 270, "only {closed_at_once} of 300 connections over the per-address limit were closed");
    // Everyone else is served meanwhile, promptly.
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(request(server.port, "GET", "/healthz", &[], "").0, 200);
        assert!(started.elapsed() < Duration::from_millis(500), "/healthz took {:?} during the attack", started.elapsed());
    }
    // The held ones are closed once their headers are late (2 s here).
    let mut held: Vec<TcpStream> = slow.into_iter().filter_map(|mut s| (!closed_by_server(&mut s, Duration::from_millis(10))).then_some(s)).collect();
    assert!(held.len() <= 20, "{} held", held.len());
    let started = Instant::now();
    assert!(held.iter_mut().all(|s| closed_by_server(s, Duration::from_secs(5))), "a half-sent request outlived the header timeout");
    assert!(started.elapsed() < Duration::from_secs(4), "closed after {:?}", started.elapsed());
    // An idle kept-alive connection is closed after as long.
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_by_server(&mut idle, Duration::from_secs(5)));
}

#[test]
fn sigterm_with_a_request_half_sent_exits_within_the_header_timeout() {
    let data = tempfile::tempdir().unwrap();
    let mut c = tally(data.path());
    ok(c.arg("migrate").output().unwrap());
    let mut server = serve(data.path(), &[("TALLY_SERVER__HEADER_TIMEOUT_SECONDS", "3".to_owned())]);
    let mut half = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap().success());
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(6), "still running {:?} after SIGTERM", started.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(half);
}

#[test]
fn secrets_appear_in_no_stored_error_and_no_log_line() {
    let data = tempfile::tempdir().unwrap();
    let secrets = ["redis-s3cret-pw", "pg-s3cret-pw", "parse-s3cret-pw"];
    let mut log = String::new();
    let mut run = |envs: &[(&str, &str)], args: &[&str]| -> Output {
        let mut c = tally(data.path());
        c.env("TALLY_LOG", "debug").envs(envs.iter().copied()).args(args);
        let out = c.output().unwrap();
        log.push_str(&String::from_utf8_lossy(&out.stderr));
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        out
    };
    ok(run(&[], &["migrate"]));
    // Collectors whose addresses hold passwords and fail: refused, unparsable, unreachable.
    let window = ["collect", "usage", "--from", "2026-10-01", "--to", "2026-10-02"];
    run(&[("TALLY_COLLECTORS__REDIS__URL", "redis://:redis-s3cret-pw@127.0.0.1:1/0")], &window);
    run(&[("TALLY_COLLECTORS__REDIS__URL", "redis://:parse-s3cret-pw@[not-a-host/0")], &window);
    run(&[("TALLY_COLLECTORS__POSTGRES__URL", "postgres://app:pg-s3cret-pw@127.0.0.1:1/app")], &window);
    // A bad configuration value holding one.
    run(&[("TALLY_DATABASE__URL", "mysql://root:pg-s3cret-pw@db/tally")], &["jobs"]);
    let jobs = ok(run(&[], &["jobs", "--limit", "100"]));
    assert!(jobs.contains("collect:usage:redis"), "the failures are in the job list: {jobs}");
    // The same list as the API and the operations page show it.
    let viewer = token(data.path(), &[], "viewer");
    let server = serve(data.path(), &[]);
    let bearer = format!("Bearer {viewer}");
    let (status, _, api) = request(server.port, "GET", "/api/v1/jobs?limit=100", &[("Authorization", bearer.as_str())], "");
    assert_eq!(status, 200);
    assert!(api.contains("\"failed\""), "{api}");
    for secret in secrets {
        assert!(!jobs.contains(secret), "`tally jobs` shows {secret}: {jobs}");
        assert!(!api.contains(secret), "/api/v1/jobs shows {secret}");
        for line in log.lines() {
            assert!(!line.contains(secret), "a log line holds {secret}: {line}");
        }
    }
    assert!(log.contains("***"), "the errors were logged, redacted");
}

#[test]
fn a_client_that_stops_reading_an_answer_is_cut_off() {
    let data = tempfile::tempdir().unwrap();
    let mut c = tally(data.path());
    ok(c.arg("migrate").output().unwrap());
    let server = serve(data.path(), &[("TALLY_SERVER__REQUEST_TIMEOUT_SECONDS", "2".to_owned())]);
    // The bundled font, about 740 KB, over a connection whose client reads nothing and keeps a
    // small window; the answer is asked for eight times over (pipelined) to outgrow the kernel's buffers.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&SocketAddr::from(([127, 0, 0, 1], server.port)).into()).unwrap();
    let mut s: TcpStream = socket.into();
    for _ in 0..8 {
        s.write_all(b"GET /static/DejaVuSans.ttf HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    }
    std::thread::sleep(Duration::from_secs(6));
    // Now read what there is: the server gave up on the connection, so it ends well short of eight fonts.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("the connection is still open after {got} bytes")
            }
            Err(_) => break,
        }
    }
    assert!(got < 8 * 700_000, "{got} bytes: the whole pipelined answer came through");
}
