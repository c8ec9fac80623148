//! The columnar store as people run it: `tally` processes killed between
//! writing an import's files and switching the catalog, a full disk, a
//! refused S3 write, a database of an earlier version moved into the store,
//! and three replicas on one PostgreSQL database and one S3 bucket (moto).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tally_domain::{Month, TenantId};
use tally_storage::{PostgresStore, SqliteStore, Store};

fn tally(data: &Path) -> Command {
    tally_test_support::tally_on(env!("CARGO_BIN_EXE_tally"), data)
}

use tally_test_support::succeeded as ok;

fn oct() -> Month {
    Month::parse("2026-10").unwrap()
}

/// The reference deployment's October: a CUR 2.0 file and a usage file.
fn generated(dir: &Path) -> (PathBuf, PathBuf) {
    let g = tally_datagen::generate(&tally_datagen::Params::reference(7, 8, vec![oct()]), dir).unwrap();
    (g.cur_files[0].clone(), g.usage_files[0].clone())
}

/// The billed total `tally allocate` prints for October.
fn billed(data: &Path, envs: &[(&str, String)]) -> String {
    let mut c = tally(data);
    c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let out = ok(c.args(["allocate", "--month", "2026-10"]).output().unwrap());
    out.lines().find(|l| l.starts_with("2026-10")).unwrap().split_whitespace().last().unwrap().to_owned()
}

/// Every file under the store's data folders.
fn store_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("billing"), root.join("usage")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out.sort();
    out
}

/// Waits until `tally` prints the pause before the switch on standard error.
fn wait_for_pause(child: &mut std::process::Child) {
    let stderr = child.stderr.take().unwrap();
    let started = Instant::now();
    for line in BufReader::new(stderr).lines() {
        if line.unwrap().contains("pausing between writing the files and switching the catalog") {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no pause");
    }
    panic!("the process ended before its pause");
}

#[test]
fn a_process_killed_between_writing_its_files_and_switching_leaves_the_previous_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cur, usage) = generated(&dir.path().join("gen"));
    ok(tally(&data).args(["import", "cur"]).arg(&cur).output().unwrap());
    ok(tally(&data).args(["import", "usage"]).arg(&usage).output().unwrap());
    let before = billed(&data, &[]);
    let files = store_files(&data.join("lake"));

    // A second delivery of October, killed (SIGKILL) once its files are written.
    let (cur2, _) = {
        let g = tally_datagen::generate(&tally_datagen::Params::reference(8, 8, vec![oct()]), &dir.path().join("gen2")).unwrap();
        (g.cur_files[0].clone(), ())
    };
    let mut child = tally(&data)
        .env("TALLY_LOG", "warn")
        .env("TALLY_TEST_PAUSE_BEFORE_SWITCH_MS", "60000")
        .args(["import", "cur"])
        .arg(&cur2)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_pause(&mut child);
    let written = store_files(&data.join("lake"));
    assert!(written.len() > files.len(), "the killed import wrote its files: {written:?}");
    assert!(Command::new("kill").arg("-KILL").arg(child.id().to_string()).status().unwrap().success());
    let _ = child.wait();

    // The previous snapshot is what everything reads.
    assert_eq!(billed(&data, &[]), before);
    let status = ok(tally(&data).args(["store", "status"]).output().unwrap());
    assert!(status.contains("billing  cur"), "{status}");
    // A sweep removes the unfinished files (once older than the grace period).
    ok(tally(&data).args(["store", "sweep"]).output().unwrap());
    assert_eq!(store_files(&data.join("lake")).len(), written.len(), "a fresh unfinished file may be an import in progress");
    let swept = ok(tally(&data).args(["store", "sweep", "--grace", "0s"]).output().unwrap());
    assert!(swept.contains("unfinished file(s)") && !swept.contains(" 0 unfinished"), "the published part and its staged copy: {swept}");
    assert_eq!(store_files(&data.join("lake")), files);
    // The same delivery imports whole afterwards.
    ok(tally(&data).args(["import", "cur"]).arg(&cur2).output().unwrap());
    assert_ne!(billed(&data, &[]), before);
}

#[test]
fn a_full_disk_fails_the_import_plainly_and_keeps_the_previous_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cur, usage) = generated(&dir.path().join("gen"));
    ok(tally(&data).args(["import", "cur"]).arg(&cur).output().unwrap());
    ok(tally(&data).args(["import", "usage"]).arg(&usage).output().unwrap());
    let before = billed(&data, &[]);
    let files = store_files(&data.join("lake"));
    // Files may grow to 64 KiB: the usage file's part does not fit (the shell ignores SIGXFSZ, so writes fail with EFBIG).
    let script = format!("trap '' XFSZ; ulimit -f 128; exec {} --data-dir {} import usage {}", env!("CARGO_BIN_EXE_tally"), data.display(), usage.display());
    let out = tally_test_support::tally_command("sh").env("TALLY_LOG", "warn").args(["-c", &script]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot write to the columnar store") || err.contains("File too large"), "{err}");
    assert_eq!(billed(&data, &[]), before);
    assert_eq!(store_files(&data.join("lake")), files, "nothing half written stays");
}

/// A database of the version before the columnar store: raw rows in SQL.
async fn legacy_database(store: &dyn Store, cur: &Path, usage: &Path) -> usize {
    store.migrate_to(4).await.unwrap();
    let opts = tally_lake::ReadOptions::new("user_tenant", tally_domain::Currency::USD);
    let mut lines = tally_lake::read::read_cur(cur, &opts).unwrap().lines;
    for l in &mut lines {
        l.source = tally_domain::CostSource::Cur;
    }
    let samples = tally_lake::read::read_usage(usage).unwrap().samples;
    store.seed_legacy_rows(&lines, "file", &samples).await.unwrap();
    lines.len()
}

fn migrate_and_check(data: &Path, envs: &[(&str, String)], lines: usize) {
    // A first `tally migrate` killed while moving its first partition...
    let mut c = tally(data);
    c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let mut child = c.env("TALLY_TEST_PAUSE_BEFORE_SWITCH_MS", "60000").arg("migrate").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_pause(&mut child);
    assert!(Command::new("kill").arg("-KILL").arg(child.id().to_string()).status().unwrap().success());
    let _ = child.wait();
    // ...and run again: it finishes the job.
    let mut c = tally(data);
    c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let out = c.arg("migrate").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(err.contains(&format!("moved {lines} billing line(s)")), "{err}");
    let mut c = tally(data);
    c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let status = ok(c.args(["store", "status"]).output().unwrap());
    let rows: usize = status.lines().filter(|l| l.starts_with("billing")).map(|l| l.split_whitespace().nth(3).unwrap().parse::<usize>().unwrap()).sum();
    assert_eq!(rows, lines, "every line moved once: {status}");
    // Nothing moves twice.
    let mut c = tally(data);
    c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let again = c.arg("migrate").output().unwrap();
    assert!(!String::from_utf8_lossy(&again.stderr).contains("moved"), "{}", String::from_utf8_lossy(&again.stderr));
    let total = billed(data, envs);
    assert!(total.parse::<f64>().unwrap() > 1000.0, "{total}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tally_migrate_moves_a_sqlite_database_of_the_previous_version_into_the_store_and_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cur, usage) = generated(&dir.path().join("gen"));
    let store = SqliteStore::connect(&format!("sqlite://{}", data.join("tally.db").display())).await.unwrap();
    let lines = legacy_database(&store, &cur, &usage).await;
    drop(store);
    tokio::task::spawn_blocking(move || migrate_and_check(&data, &[], lines)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tally_migrate_moves_a_postgresql_database_of_the_previous_version_into_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cur, usage) = generated(&dir.path().join("gen"));
    let name = tally_test_support::unique_name("tally_legacy");
    PostgresStore::create_database(&tally_test_support::postgres_url("postgres"), &name).await.unwrap();
    let url = tally_test_support::postgres_url(&name);
    let store = PostgresStore::connect(&url).await.unwrap();
    let lines = legacy_database(&store, &cur, &usage).await;
    drop(store);
    let envs = vec![("DATABASE_URL", url)];
    tokio::task::spawn_blocking(move || migrate_and_check(&data, &envs, lines)).await.unwrap();
    PostgresStore::drop_database(&tally_test_support::postgres_url("postgres"), &name).await.unwrap();
}

/// `tally serve` on a free port with these settings, killed when dropped.
fn serve(data: &Path, envs: &[(&str, String)]) -> tally_test_support::TallyServer {
    let mut c = tally(data);
    c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    tally_test_support::TallyServer::start(c)
}

fn http(port: u16, method: &str, path: &str, token: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// A bucket on moto's S3.
fn bucket(moto: &tally_test_support::Peer, name: &str) {
    let out = Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", &format!("{}/{name}", moto.endpoint())]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}

fn s3_env(endpoint: &str, lake: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("TALLY_STORAGE__LAKE", lake.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_share_one_database_and_one_bucket() {
    let moto = tally_test_support::start_moto().expect("moto_server");
    bucket(&moto, "tally-lake");
    let dir = tempfile::tempdir().unwrap();
    let (cur, usage) = generated(&dir.path().join("gen"));
    let name = tally_test_support::unique_name("tally_replicas");
    PostgresStore::create_database(&tally_test_support::postgres_url("postgres"), &name).await.unwrap();
    let url = tally_test_support::postgres_url(&name);
    let mut envs = s3_env(&moto.endpoint(), "s3://tally-lake/prod");
    envs.push(("DATABASE_URL", url.clone()));
    let replica = |n: u32| dir.path().join(format!("replica-{n}"));
    let envs2 = envs.clone();
    let (first, second, third) = (replica(1), replica(2), replica(3));
    let (costs, files_in_bucket) = tokio::task::spawn_blocking(move || {
        let run = |data: &Path, args: &[&str], extra: &[&PathBuf]| {
            let mut c = tally(data);
            c.envs(envs2.iter().map(|(k, v)| (*k, v.as_str())));
            ok(c.args(args).args(extra).output().unwrap())
        };
        // Imports through the first replica...
        run(&first, &["import", "cur"], &[&cur]);
        run(&first, &["import", "usage"], &[&usage]);
        let admin = run(&first, &["token", "create", "--role", "admin"], &[]).trim().to_owned();
        // ...allocates on the second...
        let b = serve(&second, &envs2);
        let (status, body) = http(b.port, "POST", "/api/v1/allocations/2026-10", &admin);
        assert_eq!(status, 200, "{body}");
        // ...and reads the reports through the third, which never saw the files before.
        let c = serve(&third, &envs2);
        let (status, body) = http(c.port, "GET", "/api/v1/costs?group_by=service&month=2026-10", &admin);
        assert_eq!(status, 200, "{body}");
        let costs: serde_json::Value = serde_json::from_str(&body).unwrap();
        let (status, body) = http(c.port, "GET", "/api/v1/reconciliation?month=2026-10", &admin);
        assert_eq!(status, 200, "{body}");
        let rec: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(rec["reconciled"], true, "{body}");
        assert_eq!(rec["billed_total"], costs["total"], "the bill, to the cent, read through another replica");
        let (status, focus) = http(c.port, "GET", "/api/v1/exports/focus?month=2026-10&format=csv", &admin);
        assert_eq!(status, 200);
        assert!(focus.contains("BilledCost") && focus.lines().count() > 100, "the FOCUS export streams from the bucket");
        assert!(!first.join("lake").exists() && !third.join("lake").exists(), "no replica keeps the store on its own disk");
        let listed = Command::new("curl").arg(format!("{}/tally-lake?list-type=2&prefix=prod/", moto.endpoint())).output().unwrap();
        (costs, String::from_utf8_lossy(&listed.stdout).into_owned())
    })
    .await
    .unwrap();
    assert!(files_in_bucket.contains("prod/billing/source=cur/month=2026-10/part-"), "{files_in_bucket}");
    assert!(files_in_bucket.contains("prod/usage/source=file/month=2026-10/part-"), "{files_in_bucket}");
    assert!(costs["groups"].as_array().unwrap().len() > 5);
    let store = PostgresStore::connect(&url).await.unwrap();
    assert!(store.tenants().await.unwrap().iter().any(|t| t.id == TenantId::parse("globex").unwrap()));
    drop(store);
    PostgresStore::drop_database(&tally_test_support::postgres_url("postgres"), &name).await.unwrap();
}

/// An S3 endpoint in front of moto that refuses every write with 403
/// AccessDenied, as a bucket policy would, and passes reads through.
fn refusing_proxy(moto: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let moto = moto.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let length: usize =
                    text.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))).unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = client.read_exact(&mut body);
                let method = text.split(' ').next().unwrap_or_default();
                if method == "PUT" || method == "POST" {
                    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
                    let _ = write!(
                        client,
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                        xml.len()
                    );
                    return;
                }
                let mut upstream = TcpStream::connect(moto.trim_start_matches("http://")).unwrap();
                let head = text.replace("Connection: keep-alive", "Connection: close").replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1);
                upstream.write_all(head.as_bytes()).unwrap();
                upstream.write_all(&body).unwrap();
                let mut answer = Vec::new();
                let _ = upstream.read_to_end(&mut answer);
                let _ = client.write_all(&answer);
            });
        }
    });
    port
}

#[test]
fn a_refused_s3_write_fails_the_import_and_keeps_the_previous_snapshot() {
    let moto = tally_test_support::start_moto().expect("moto_server");
    bucket(&moto, "tally-lake");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cur, usage) = generated(&dir.path().join("gen"));
    let direct = s3_env(&moto.endpoint(), "s3://tally-lake/lake");
    let run = |envs: &[(&str, String)], args: &[&str], file: &Path| {
        let mut c = tally(&data);
        c.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
        c.args(args).arg(file).output().unwrap()
    };
    ok(run(&direct, &["import", "cur"], &cur));
    ok(run(&direct, &["import", "usage"], &usage));
    let before = billed(&data, &direct);

    let proxy = refusing_proxy(moto.endpoint());
    let refused = s3_env(&format!("http://127.0.0.1:{proxy}"), "s3://tally-lake/lake");
    let out = run(&refused, &["import", "cur"], &cur);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writing s3://tally-lake/lake/billing/source=cur/month=2026-10/part-"), "{err}");
    assert_eq!(billed(&data, &direct), before, "the previous snapshot is whole");
}
