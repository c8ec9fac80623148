//! The Grafana dashboards in `dashboards/` against a real PostgreSQL holding
//! `tally demo`'s data: every panel's SQL (and every variable's) runs with
//! Grafana's macros expanded and returns rows, and the views the panels read
//! give the same figures as the API.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Column, Row};

/// Tally on the test's database. Shared costs are kept as `__shared__` rather
/// than spread over the tenants (a policy finance can choose), so that the
/// demo's months have rows that went to no tenant for the panels that list them.
fn tally(data: &Path, database_url: &str) -> Command {
    let mut c = tally_test_support::tally_command(env!("CARGO_BIN_EXE_tally"));
    c.arg("--data-dir").arg(data).env("DATABASE_URL", database_url).env("TALLY_ALLOCATION__SHARED_POLICY", "keep").env("TALLY_LOG", "warn");
    c
}

/// Killed by its PID when the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dashboards() -> Vec<(PathBuf, Value)> {
    let dir = tally_test_support::workspace_root().join("dashboards");
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The start of a Grafana relative range such as `now-1y`, `now-90d`, `now-6h`.
fn range_start(from: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    let spec = from.strip_prefix("now-").unwrap_or_else(|| panic!("time.from {from:?} is not now-N<unit>"));
    let (n, unit) = spec.split_at(spec.len() - 1);
    let n: i64 = n.parse().unwrap_or_else(|_| panic!("time.from {from:?}"));
    match unit {
        "y" => now - chrono::Duration::days(365 * n),
        "M" => now - chrono::Duration::days(31 * n),
        "w" => now - chrono::Duration::weeks(n),
        "d" => now - chrono::Duration::days(n),
        "h" => now - chrono::Duration::hours(n),
        other => panic!("time.from unit {other:?}"),
    }
}

/// Grafana's expansion of what these dashboards use: `$__timeFilter(col)`,
/// `$__timeFrom()`, `$__timeTo()` and `$var` / `${var}` template variables.
/// Anything else left with a `$` fails the test, so a panel cannot pass by
/// using a macro the test does not know.
fn expand(sql: &str, from: DateTime<Utc>, to: DateTime<Utc>, vars: &BTreeMap<String, String>, what: &str) -> String {
    let (f, t) = (from.format("'%Y-%m-%dT%H:%M:%SZ'").to_string(), to.format("'%Y-%m-%dT%H:%M:%SZ'").to_string());
    let mut out = sql.replace("$__timeFrom()", &f).replace("$__timeTo()", &t);
    while let Some(at) = out.find("$__timeFilter(") {
        let close = out[at..].find(')').map(|i| at + i).unwrap_or_else(|| panic!("{what}: unclosed $__timeFilter"));
        let col = out[at + "$__timeFilter(".len()..close].trim().to_owned();
        out.replace_range(at..=close, &format!("{col} BETWEEN {f} AND {t}"));
    }
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
    }
    assert!(!out.contains('$'), "{what}: unexpanded macro or variable in {out}");
    out
}

fn cell(row: &PgRow, i: usize) -> String {
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return v.unwrap_or_default();
    }
    if let Ok(v) = row.try_get::<Option<Decimal>, _>(i) {
        return v.map(|d| d.to_string()).unwrap_or_default();
    }
    String::from("?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grafana_panel_returns_rows_from_the_demo_in_postgresql_and_agrees_with_the_api() {
    let name = tally_test_support::unique_name("tally_grafana");
    tally_storage::PostgresStore::create_database(&tally_test_support::postgres_url("postgres"), &name).await.unwrap();
    let url = tally_test_support::postgres_url(&name);
    let data = tempfile::tempdir().unwrap();

    let demo = tally(data.path(), &url).args(["demo", "--no-serve"]).output().unwrap();
    assert!(demo.status.success(), "tally demo on PostgreSQL: {}", String::from_utf8_lossy(&demo.stderr));

    let pool = PgPool::connect(&url).await.unwrap();
    let now = Utc::now();
    let boards = dashboards();
    assert!(boards.len() >= 3, "burn, tenants and reconciliation dashboards: {:?}", boards.iter().map(|b| &b.0).collect::<Vec<_>>());
    let mut panels_run = 0;
    for (path, board) in &boards {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        // Importable into any Grafana: the data source is an input, and it is PostgreSQL.
        let inputs = board["__inputs"].as_array().unwrap_or_else(|| panic!("{file}: no __inputs"));
        assert!(inputs.iter().any(|i| i["name"] == "DS_TALLY" && i["pluginId"] == "grafana-postgresql-datasource"), "{file}: {inputs:?}");
        assert!(board["uid"].as_str().is_some_and(|u| !u.is_empty()) && board["title"].as_str().is_some(), "{file}: uid and title");
        let from = range_start(board["time"]["from"].as_str().unwrap(), now);

        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for v in board["templating"]["list"].as_array().into_iter().flatten() {
            let var = v["name"].as_str().unwrap().to_owned();
            assert_eq!(v["type"], "query", "{file}: variable {var}");
            let sql = expand(v["query"].as_str().unwrap(), from, now, &vars, &format!("{file} ${var}"));
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_all(&pool).await.unwrap_or_else(|e| panic!("{file} ${var}: {e}\n{sql}"));
            assert!(!rows.is_empty(), "{file}: variable ${var} has no values\n{sql}");
            // Grafana takes `__value` when the query names one, else the first column.
            let r = &rows[0];
            let i = r.columns().iter().position(|c| c.name() == "__value").unwrap_or(0);
            vars.insert(var, cell(r, i));
        }

        let panels = board["panels"].as_array().unwrap();
        assert!(!panels.is_empty(), "{file}: no panels");
        for p in panels {
            let title = p["title"].as_str().unwrap_or("?");
            assert_eq!(p["datasource"]["uid"], "${DS_TALLY}", "{file} {title}: panel data source");
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{file} {title}: no targets"));
            assert!(!targets.is_empty(), "{file} {title}: no queries");
            for t in targets {
                let raw = t["rawSql"].as_str().unwrap_or_else(|| panic!("{file} {title}: no rawSql"));
                let what = format!("{file} panel {title:?}");
                let sql = expand(raw, from, now, &vars, &what);
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_all(&pool).await.unwrap_or_else(|e| panic!("{what}: {e}\n{sql}"));
                assert!(!rows.is_empty(), "{what} returns no rows\n{sql}");
                // A time series needs its time column; a panel of figures needs figures.
                if t["format"] == "time_series" {
                    assert!(rows[0].columns().iter().any(|c| c.name() == "time"), "{what}: no time column");
                }
                let all_null = rows.iter().all(|r| (0..r.columns().len()).all(|i| r.try_get_raw(i).map(|v| sqlx::ValueRef::is_null(&v)).unwrap_or(true)));
                assert!(!all_null, "{what}: every value is null\n{sql}");
                panels_run += 1;
            }
        }
    }
    eprintln!("{panels_run} panel queries returned rows from {} dashboards", boards.len());

    // The views agree with the API to the cent.
    let token = tally(data.path(), &url).args(["token", "create", "--role", "admin"]).output().unwrap();
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let port = tally_test_support::free_port();
    let mut child = tally(data.path(), &url)
        .args(["serve", "--no-scheduler", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Child(child);
    let started = Instant::now();
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("serving on") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "tally serve did not start");
    }
    let http = reqwest::Client::new();
    let get = |path: String| {
        let req = http.get(format!("http://127.0.0.1:{port}{path}")).bearer_auth(&token);
        async move {
            let resp = req.send().await.unwrap();
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            resp.json::<Value>().await.unwrap()
        }
    };
    let dec = |v: &Value| -> Option<Decimal> { v.as_str().map(|s| s.parse().unwrap()) };
    let num = |r: &PgRow, col: &str| -> Option<Decimal> { r.try_get::<Option<Decimal>, _>(col).unwrap_or_else(|e| panic!("{col}: {e}")) };

    let months: Vec<String> = sqlx::query_scalar("SELECT month FROM report_reconciliation ORDER BY month").fetch_all(&pool).await.unwrap();
    assert!(months.len() >= 3, "the demo allocates several months: {months:?}");
    let burn = get(format!("/api/v1/burn?from={}&to={}", months[0], months[months.len() - 1])).await;
    let api_months = burn["months"].as_array().unwrap();
    assert_eq!(api_months.len(), months.len());
    for m in api_months {
        let month = m["month"].as_str().unwrap();
        let r = sqlx::query("SELECT * FROM report_monthly_burn WHERE month = $1").bind(month).fetch_one(&pool).await.unwrap();
        for col in ["aws_cost", "other_costs", "total_costs", "revenue", "net_burn", "gross_margin_percent"] {
            assert_eq!(num(&r, col), dec(&m[col]), "{month} {col}: view against /api/v1/burn");
        }
        assert_eq!(r.get::<bool, _>("complete"), m["complete"].as_bool().unwrap(), "{month} complete");
    }
    let runway = &burn["runway"];
    let r = sqlx::query("SELECT * FROM report_runway").fetch_one(&pool).await.unwrap();
    for (col, key) in [("balance", "balance"), ("cash_now", "cash_now"), ("monthly_net_burn", "monthly_net_burn"), ("runway_months", "months")] {
        assert_eq!(num(&r, col), dec(&runway[key]), "runway {col}");
    }
    assert_eq!(r.get::<Option<chrono::NaiveDate>, _>("runs_out_on").map(|d| d.to_string()), runway["runs_out_on"].as_str().map(str::to_owned), "runs out on");

    let month = months.last().unwrap();
    let rec = get(format!("/api/v1/reconciliation?month={month}")).await;
    let r = sqlx::query("SELECT * FROM report_reconciliation WHERE month = $1").bind(month).fetch_one(&pool).await.unwrap();
    assert!(r.get::<bool, _>("reconciled"), "{month} reconciles in the view");
    assert_eq!(num(&r, "difference"), Some(Decimal::ZERO));
    assert_eq!(num(&r, "billed"), dec(&rec["billed_total"]), "{month} billed against /api/v1/reconciliation");
    assert_eq!(num(&r, "allocated"), dec(&rec["allocated_total"]), "{month} allocated");
    assert_eq!(num(&r, "unallocated"), dec(&rec["unallocated_total"]), "{month} unallocated");
    let unallocated_view: Option<Decimal> =
        sqlx::query_scalar("SELECT SUM(unblended) FROM report_unassigned WHERE month = $1 AND allocatee = '__unallocated__'")
            .bind(month)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(unallocated_view.unwrap_or_default(), dec(&rec["unallocated_total"]).unwrap(), "{month} unallocated reasons");
    let shared: Option<Decimal> = sqlx::query_scalar("SELECT SUM(unblended) FROM report_unassigned WHERE month = $1 AND allocatee = '__shared__'")
        .bind(month)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(shared.is_some_and(|s| s > Decimal::ZERO), "shared costs are kept as __shared__: {shared:?}");
    for s in rec["services"].as_array().unwrap() {
        let service = s["service"].as_str().unwrap();
        let v = sqlx::query("SELECT * FROM report_reconciliation_by_service WHERE month = $1 AND service = $2")
            .bind(month)
            .bind(service)
            .fetch_one(&pool)
            .await
            .unwrap();
        for col in ["billed", "allocated", "difference", "billed_amortized", "allocated_amortized"] {
            assert_eq!(num(&v, col), dec(&s[col]), "{month} {service} {col}");
        }
    }

    for month in &months {
        let tenants = get(format!("/api/v1/tenants?month={month}")).await;
        let view = sqlx::query("SELECT * FROM report_tenant_unit_costs WHERE month = $1").bind(month).fetch_all(&pool).await.unwrap();
        let with_cost = tenants.as_array().unwrap().iter().filter(|t| dec(&t["cost"]) != Some(Decimal::ZERO)).count();
        assert_eq!(view.len(), with_cost, "{month}: one row per tenant with a cost");
        for r in &view {
            let id: String = r.get("tenant_id");
            let t = tenants.as_array().unwrap().iter().find(|t| t["tenant"] == id.as_str()).unwrap_or_else(|| panic!("{id} in the API"));
            for (col, key) in [
                ("cost", "cost"),
                ("cost_unblended", "cost_unblended"),
                ("cost_amortized", "cost_amortized"),
                ("revenue", "revenue"),
                ("gross_margin", "gross_margin"),
                ("gross_margin_percent", "gross_margin_percent"),
            ] {
                assert_eq!(num(r, col), dec(&t[key]), "{month} {id} {col}");
            }
            // Unit costs divide by usage summed in floating point; they agree to the 4th decimal.
            for (col, key) in [
                ("cost_per_1000_requests", "per_1000_requests"),
                ("transfer_per_gb_egress", "per_gb_egress"),
                ("db_storage_per_gb_month", "per_gb_month_db_storage"),
                ("eks_per_vcpu_hour", "per_vcpu_hour"),
            ] {
                let (v, a) = (num(r, col), dec(&t["unit_costs"][key]));
                assert_eq!(v.is_some(), a.is_some(), "{month} {id} {col}: {v:?} against {a:?}");
                if let (Some(v), Some(a)) = (v, a) {
                    assert!((v - a).abs() <= Decimal::new(1, 4), "{month} {id} {col}: {v} against {a}");
                }
            }
        }
    }
    pool.close().await;
    drop(server);
    tally_storage::PostgresStore::drop_database(&tally_test_support::postgres_url("postgres"), &name).await.unwrap();
}
