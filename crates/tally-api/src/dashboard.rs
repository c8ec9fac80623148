//! The dashboard: server-rendered HTML that works without JavaScript (the
//! Content-Security-Policy allows no script and no inline style).
//! Signing in POSTs a token to `/login`, which starts a server-side session
//! (see [`crate::auth`]); `/login?code=...` is a one-time sign-in link.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use rust_decimal::Decimal;
use tally_domain::Month;
use tally_reports::costs::Measure;
use tally_reports::tenant::TenantReport;

use crate::ApiState;
use crate::auth::{Principal, Role, StartedSession, session_cookie, session_cookie_header, sign_in, sign_in_with_link, sign_out};
use crate::error::ApiError;
use crate::params::{Params, Span};
use crate::routes::{build_burn, build_reconciliation, build_tenant_report, default_month, tenant_of, tenant_reports};

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(ceo))
        .route("/login", get(login_page).post(login))
        .route("/logout", get(logout_page).post(logout))
        .route("/static/tally.css", get(stylesheet))
        // Browsers ask for it on pages without an icon (a JSON error shown on its own): no icon, and no 404.
        .route("/favicon.ico", get(|| async { (StatusCode::NO_CONTENT, [(header::CACHE_CONTROL, "public, max-age=86400")]) }))
        .route("/tenants", get(tenants_page))
        .route("/tenants/{tenant}", get(tenant_page))
        .route("/finance", get(finance))
        .route("/savings", get(savings_page))
        .route("/operations", get(operations))
}

/// The dashboard's stylesheet, served as a file so that the CSP needs no inline style.
pub(crate) const STYLE: &str = r#"
:root{--ink:#1b2430;--muted:#5b6675;--line:#dde3ea;--bg:#f6f8fa;--card:#fff;--accent:#1f6feb;--bad:#c62828;--good:#2e7d32;--warn:#b26a00}
*{box-sizing:border-box}html{-webkit-text-size-adjust:100%;text-size-adjust:100%}body{margin:0;font:15px/1.45 "DejaVu Sans",system-ui,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#0f1b2d;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.25rem 1.2rem;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header a.on{color:#fff;font-weight:bold;border-bottom:2px solid #fff}header .brand{font-weight:bold;color:#fff;margin-right:1rem}
main{max-width:1200px;margin:0 auto;padding:1rem}h1{font-size:1.4rem;margin:.4rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .6rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:.75rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.75rem .9rem}.card .k{color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:1.45rem;font-weight:bold;margin-top:.2rem}.card .s{color:var(--muted);font-size:.85rem}
.bad{color:var(--bad)}.good{color:var(--good)}.warn{color:var(--warn)}
.table{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%}th,td{padding:.45rem .6rem;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}th{white-space:normal;vertical-align:bottom}td.wrap{white-space:normal;min-width:11em}
th a{color:inherit}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tr.below{background:#fff4f4}
.chart{margin:.75rem 0}.chart img{display:block;width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:8px}
.tabs a{display:inline-block;padding:.3rem .7rem;margin:.1rem;border:1px solid var(--line);border-radius:6px;background:#fff;text-decoration:none;color:var(--accent)}.tabs a.on{background:var(--accent);color:#fff}
ul.why li{margin:.3rem 0}
.note{color:var(--muted);font-size:.9rem}form input{font:inherit;padding:.5rem;width:100%;max-width:36rem}form button{font:inherit;padding:.5rem 1rem;margin-top:.5rem}
a.button{display:inline-block;padding:.3rem .6rem;border:1px solid var(--line);border-radius:6px;background:#fff;text-decoration:none;color:var(--accent);margin:.1rem}
header form.signout{margin:0 0 0 auto}header form.signout button{background:none;border:0;color:#cfe0ff;font:inherit;cursor:pointer;padding:0;margin:0;text-decoration:underline}
td.wide{white-space:normal;min-width:18rem}td.wrap-all{white-space:normal}
@media (max-width:600px){main{padding:.6rem}.card .v{font-size:1.2rem}th,td{padding:.35rem .4rem;font-size:.85rem}}
"#;

fn page(title: &str, who: Option<&Principal>, active: &str, body: Markup) -> Markup {
    let nav: &[(&str, &str)] = match who.map(|p| p.role) {
        Some(Role::Tenant) => &[],
        Some(_) => &[("/", "Overview"), ("/tenants", "Tenants"), ("/finance", "Finance"), ("/savings", "Savings"), ("/operations", "Operations")],
        None => &[],
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                link rel="icon" href="data:,";
                title { (title) " · Tally" }
                link rel="stylesheet" href="/static/tally.css";
            }
            body {
                header {
                    span.brand { "Tally" }
                    @for (href, label) in nav {
                        a href=(href) class=@if *href == active { "on" } { (label) }
                    }
                    @if who.is_some() { form.signout method="post" action="/logout" { button type="submit" { "Sign out" } } }
                }
                main { (body) }
            }
        }
    }
}

fn html_response(m: Markup) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], m.into_string()).into_response()
}

/// A chart at 1200 x 600, and at 640 x 480 on a phone, so that its text stays readable.
fn chart(name: &str, query: &str, alt: &str) -> Markup {
    let sep = if query.is_empty() { "" } else { "&" };
    html! {
        figure.chart {
            picture {
                source media="(max-width: 700px)" srcset={ "/charts/" (name) ".png?" (query) (sep) "w=640&h=480" };
                img src={ "/charts/" (name) ".png?" (query) (sep) "w=1200&h=600" } alt=(alt) width="1200" height="600" loading="lazy";
            }
        }
    }
}

/// `$1,234.56`, with the sign before the symbol, at the currency's minor units.
pub(crate) fn money(d: Decimal, currency: &str) -> String {
    tally_domain::format_money(d, currency)
}

fn percent(p: Option<Decimal>) -> String {
    p.map(|p| format!("{p}%")).unwrap_or_else(|| "—".into())
}

/// The caller, or a redirect to the sign-in page.
#[allow(clippy::result_large_err, reason = "the page handlers answer with the redirect as it is; boxing it once per page load buys nothing")]
fn signed_in(who: Result<Principal, ApiError>) -> Result<Principal, Response> {
    who.map_err(|e| match e {
        ApiError::Unauthorized(_) => Redirect::to("/login").into_response(),
        // The database is away: say so, rather than ask for a sign-in that cannot work.
        ApiError::NotReady(m) => {
            let body = page("Unavailable", None, "", html! { h1 { "Tally is unavailable" } p { (m) } p.note { "Reload the page in a moment." } });
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], html_response(body)).into_response()
        }
        other => other.into_response(),
    })
}

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLE).into_response()
}

/// The sign-in form; `?code=` signs in with a one-time link.
async fn login_page(q: Params) -> Response {
    if let Some(code) = q.get("code") {
        // Opening the link uses nothing up (a link preview or scanner may open it first):
        // the person's own click posts it.
        let body = page(
            "Sign in",
            None,
            "",
            html! {
                h1 { "Sign in to Tally" }
                form method="post" action="/login" {
                    input type="hidden" name="code" value=(code);
                    button type="submit" { "Continue to Tally" }
                }
                p.note { "This link signs in once." }
            },
        );
        return html_response(body);
    }
    if q.get("token").is_some() {
        // A token in an address lands in history and proxy logs: refused, never used.
        let body = page(
            "Sign in",
            None,
            "",
            html! {
                h1 { "Sign in" }
                p.bad { "Tokens are not accepted in the address. Paste the token below; treat the one in that address as exposed and revoke it (" code { "tally token revoke" } ")." }
                (login_form())
            },
        );
        return (StatusCode::BAD_REQUEST, html_response(body)).into_response();
    }
    html_response(page("Sign in", None, "", html! { h1 { "Sign in to Tally" } (login_form()) }))
}

/// The forms' POST: a token, or a one-time link's code (form-encoded), for a session.
async fn login(State(state): State<ApiState>, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Form {
        token: Option<String>,
        code: Option<String>,
    }
    match serde_urlencoded::from_bytes::<Form>(&body) {
        Ok(Form { token: Some(token), .. }) => match sign_in(&state, token.trim()).await {
            Ok(started) => signed_in_response(&state, &headers, &started),
            Err(e) => sign_in_failed(e, "That token is unknown, revoked or expired."),
        },
        Ok(Form { code: Some(code), .. }) => match sign_in_with_link(&state, code.trim()).await {
            Ok(started) => signed_in_response(&state, &headers, &started),
            Err(e) => sign_in_failed(e, "This sign-in link has been used, has expired or is unknown. Sign in with your token instead."),
        },
        _ => sign_in_failed(ApiError::BadBody("the form lacks its token field".into()), "Paste an access token."),
    }
}

fn sign_in_failed(e: ApiError, said: &str) -> Response {
    if matches!(e, ApiError::NotReady(_) | ApiError::Internal(_)) {
        return e.into_response();
    }
    let status = e.status();
    let body = page("Sign in", None, "", html! { h1 { "Sign in" } p.bad { (said) } (login_form()) });
    (status, html_response(body)).into_response()
}

/// Sets the session cookie and sends the caller to its first page.
fn signed_in_response(state: &ApiState, headers: &axum::http::HeaderMap, started: &StartedSession) -> Response {
    let cookie = session_cookie_header(&started.secret, started.max_age_seconds, crate::served_over_https(state, headers));
    let to = match (&started.principal.role, &started.principal.tenant) {
        (Role::Tenant, Some(t)) => format!("/tenants/{t}"),
        _ => "/".to_owned(),
    };
    let mut resp = Redirect::to(&to).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp
}

fn login_form() -> Markup {
    html! {
        form method="post" action="/login" {
            label for="token" { "Access token" } br;
            input id="token" name="token" type="password" placeholder="tly_..." autocomplete="off" required;
            br;
            button type="submit" { "Sign in" }
        }
        p.note { "Create one with " code { "tally token create --role viewer" } "; " code { "tally demo" } " prints a one-time sign-in link." }
    }
}

async fn logout_page(who: Result<Principal, ApiError>) -> Response {
    let body = html! {
        h1 { "Sign out" }
        form method="post" action="/logout" { button type="submit" { "Sign out of Tally" } }
    };
    html_response(page("Sign out", who.ok().as_ref(), "", body))
}

/// Ends the session on the server, then clears the cookie.
async fn logout(State(state): State<ApiState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(session) = session_cookie(&headers)
        && let Err(e) = sign_out(&state, &session).await
    {
        return e.into_response();
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, session_cookie_header("", 0, crate::served_over_https(&state, &headers)));
    resp
}

async fn ceo(State(state): State<ApiState>, who: Result<Principal, ApiError>) -> Result<Response, Response> {
    let who = signed_in(who)?;
    if let (Role::Tenant, Some(t)) = (who.role, &who.tenant) {
        return Ok(Redirect::to(&format!("/tenants/{t}")).into_response());
    }
    let burn = build_burn(&state, &Params::default()).await.map_err(IntoResponse::into_response)?;
    let cur = &burn.currency;
    let this = burn.months.last();
    let last = burn.months.iter().rev().nth(1);
    let month = this.map_or_else(|| Month::of(state.clock.now()), |m| m.month);
    let span = Span { from: month, to: month, from_day: None, to_day: None };
    let mut tenants = tenant_reports(&state, &who, &span, Measure::Amortized).await.map_err(IntoResponse::into_response)?;
    tenants.retain(|t| t.cost > t.revenue);
    tenants.sort_by_key(|t| std::cmp::Reverse(t.cost - t.revenue));
    let body = html! {
        h1 { "Burn, revenue and runway" }
        @if let Some(r) = &burn.runway {
            div.cards {
                div.card { div.k { "Cash now (est.)" } div.v { (money(r.cash_now, cur)) } div.s { "balance " (money(r.balance, cur)) " on " (r.balance_date) } }
                div.card { div.k { "Monthly net burn" } div.v { (money(r.monthly_net_burn, cur)) } div.s { "mean of the last complete months" } }
                div.card { div.k { "Runway" }
                    @if r.profitable { div.v.good { "Profitable" } }
                    @else if let (Some(m), Some(d)) = (r.months, r.runs_out_on) { div.v class=@if m < Decimal::from(6) { "bad" } { (m) " months" } div.s { "cash runs out around " (d) } }
                    @else { div.v { "—" } }
                }
            }
        } @else {
            p.note { "Set " code { "finance.cash_balance" } " in the config or post a cash balance to see runway." }
        }
        @for (label, m) in [("This month", this), ("Last month", last)] {
            @if let Some(m) = m {
                h2 { (label) ": " (m.month) @if !m.complete { span.note { " (to date)" } } }
                div.cards {
                    div.card { div.k { "AWS cost" } div.v { (money(m.aws_cost, cur)) } }
                    div.card { div.k { "Other costs" } div.v { (money(m.other_costs, cur)) } }
                    div.card { div.k { "Revenue" } div.v { (money(m.revenue, cur)) } }
                    div.card { div.k { "Net burn" } div.v class=@if m.net_burn > Decimal::ZERO { "bad" } @else { "good" } { (money(m.net_burn, cur)) } }
                    div.card { div.k { "Gross margin" } div.v { (percent(m.gross_margin_percent)) } div.s { "revenue less AWS cost" } }
                }
            }
        }
        (chart("burn", "", "Costs, revenue and net burn by month, with the runway date"))
        h2 { "Tenants that cost more than they pay in " (month) }
        @if tenants.is_empty() { p.good { "None: every tenant pays more than it costs." } }
        @else {
            div.table { table {
                tr { th { "Tenant" } th { "Plan" } th.n { "Cost" } th.n { "Revenue" } th.n { "Shortfall" } }
                @for t in tenants.iter().take(10) {
                    tr.below { td { a href={ "/tenants/" (t.tenant) } { (t.name) } } td { (t.plan.clone().unwrap_or_default()) } td.n { (money(t.cost, cur)) } td.n { (money(t.revenue, cur)) } td.n.bad { (money(t.cost - t.revenue, cur)) } }
                }
            } }
        }
        h2 { "Where the money goes in " (month) }
        (chart("tenants", &format!("month={month}"), &format!("Cost by tenant in {month}, stacked by pool (amortized)")))
        (chart("daily", &format!("from={}&to={}", month.first_day(), month.next().first_day()), &format!("Daily cost by service in {month}")))
        h2 { "By month" }
        div.table { table {
            tr { th { "Month" } th.n { "AWS" } th.n { "Other" } th.n { "Revenue" } th.n { "Net burn" } th.n { "Gross margin" } }
            @for m in &burn.months {
                tr { td { (m.month) @if !m.complete { " (to date)" } } td.n { (money(m.aws_cost, cur)) } td.n { (money(m.other_costs, cur)) } td.n { (money(m.revenue, cur)) } td.n { (money(m.net_burn, cur)) } td.n { (percent(m.gross_margin_percent)) } }
            }
        } }
    };
    Ok(html_response(page("Overview", Some(&who), "/", body)))
}

fn sort_tenants(rows: &mut [TenantReport], key: &str, desc: bool) {
    rows.sort_by(|a, b| {
        let o = match key {
            "tenant" => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            "revenue" => a.revenue.cmp(&b.revenue),
            "margin" => a.gross_margin_percent.unwrap_or(Decimal::MIN).cmp(&b.gross_margin_percent.unwrap_or(Decimal::MIN)),
            _ => a.cost.cmp(&b.cost),
        };
        if desc { o.reverse() } else { o }
    });
}

async fn tenants_page(State(state): State<ApiState>, who: Result<Principal, ApiError>, q: Params) -> Result<Response, Response> {
    let who = signed_in(who)?;
    let month = q.parse::<Month>("month", "a month").map_err(IntoResponse::into_response)?;
    let month = match month {
        Some(m) => m,
        None => default_month(&state).await.map_err(IntoResponse::into_response)?,
    };
    let measure = q.measure(Measure::Amortized).map_err(IntoResponse::into_response)?;
    let span = Span { from: month, to: month, from_day: None, to_day: None };
    let mut rows = tenant_reports(&state, &who, &span, measure).await.map_err(IntoResponse::into_response)?;
    let key = q.get("sort").unwrap_or("cost").to_owned();
    let desc = q.get("dir") != Some("asc");
    sort_tenants(&mut rows, &key, desc);
    let cur = state.config.currency.to_string();
    let th = |k: &str, label: &str, numeric: bool| {
        let dir = if key == k && desc { "asc" } else { "desc" };
        let arrow = if key == k { if desc { " ▼" } else { " ▲" } } else { "" };
        html! { th class=@if numeric { "n" } { a href={ "?month=" (month) "&measure=" (measure.name()) "&sort=" (k) "&dir=" (dir) } { (label) (arrow) } } }
    };
    let body = html! {
        h1 { "Tenants in " (month) }
        p.note { "Rows in red fall below the target gross margin of " (state.config.finance.target_margin_percent) "%. Click a column to sort. " (measure_note(measure, &format!("?month={month}&sort={key}&dir={}", if desc { "desc" } else { "asc" }))) }
        @if who.role != Role::Tenant { (chart("tenants", &format!("month={month}&measure={}", measure.name()), &format!("Cost by tenant in {month}, stacked by pool ({})", measure.name()))) }
        div.table { table {
            tr { (th("tenant", "Tenant", false)) th { "Plan" } (th("cost", "Cost", true)) (th("revenue", "Revenue", true)) (th("margin", "Margin", true)) th.n { "Per 1k requests" } th.n { "Per GB egress" } th.n { "Per GB-month DB" } th.n { "Per vCPU-hour" } }
            @for t in &rows {
                tr class=@if t.below_target { "below" } {
                    td { a href={ "/tenants/" (t.tenant) "?month=" (month) } { (t.name) } }
                    td { (t.plan.clone().unwrap_or_default()) }
                    td.n { (money(t.cost, &cur)) }
                    td.n { (money(t.revenue, &cur)) }
                    td.n class=@if t.below_target { "bad" } { (percent(t.gross_margin_percent)) }
                    td.n { (unit(t.unit_costs.per_1000_requests, &cur)) }
                    td.n { (unit(t.unit_costs.per_gb_egress, &cur)) }
                    td.n { (unit(t.unit_costs.per_gb_month_db_storage, &cur)) }
                    td.n { (unit(t.unit_costs.per_vcpu_hour, &cur)) }
                }
            }
        } }
    };
    Ok(html_response(page("Tenants", Some(&who), "/tenants", body)))
}

/// Which cost a page's margins and unit costs use, with a link to the
/// other (`query` is the page's own query without `measure`).
fn measure_note(measure: Measure, query: &str) -> Markup {
    match measure {
        Measure::Amortized => html! {
            "Costs are amortized: Reserved Instance and Savings Plan fees spread over the usage they covered. "
            a href={ (query) "&measure=unblended" } { "Show as invoiced (unblended)" }
        },
        Measure::Unblended => html! {
            "Costs are as invoiced (unblended): commitment fees in the month they are billed, covered hours at zero. "
            a href={ (query) "&measure=amortized" } { "Show amortized" }
        },
    }
}

fn unit(v: Option<Decimal>, cur: &str) -> String {
    match v {
        Some(v) => format!("{}{}", if cur == "USD" { "$" } else { "" }, v.round_dp(4)),
        None => "—".into(),
    }
}

async fn tenant_page(State(state): State<ApiState>, who: Result<Principal, ApiError>, Path(id): Path<String>, q: Params) -> Result<Response, Response> {
    let who = signed_in(who)?;
    let t = tenant_of(&state, &who, &id).await.map_err(IntoResponse::into_response)?;
    let month = match q.parse::<Month>("month", "a month").map_err(IntoResponse::into_response)? {
        Some(m) => m,
        None => default_month(&state).await.map_err(IntoResponse::into_response)?,
    };
    let measure = q.measure(Measure::Amortized).map_err(IntoResponse::into_response)?;
    let span = Span { from: month, to: month, from_day: None, to_day: None };
    let r = build_tenant_report(&state, &t, &span, measure).await.map_err(IntoResponse::into_response)?;
    let ex = state.store.explanations(month, Some(t.id.as_str())).await.map_err(|e| ApiError::from(e).into_response())?;
    let cur = state.config.currency.to_string();
    let body = html! {
        h1 { (r.name) " in " (month) }
        div.cards {
            div.card { div.k { "Cost (" (measure.name()) ")" } div.v { (money(r.cost, &cur)) } div.s {
                @match measure { Measure::Amortized => { "invoiced " (money(r.cost_unblended, &cur)) } Measure::Unblended => { "amortized " (money(r.cost_amortized, &cur)) } }
            } }
            div.card { div.k { "Revenue" } div.v { (money(r.revenue, &cur)) } div.s { (r.plan.clone().unwrap_or_else(|| "no plan".into())) } }
            div.card { div.k { "Gross margin" } div.v class=@if r.below_target { "bad" } @else { "good" } { (percent(r.gross_margin_percent)) } div.s { (money(r.gross_margin, &cur)) } }
            div.card { div.k { "Per 1,000 requests" } div.v { (unit(r.unit_costs.per_1000_requests, &cur)) } div.s { (format!("{:.0}", r.usage.requests)) " requests" } }
        }
        p.note { (measure_note(measure, &format!("?month={month}"))) }
        (chart("tenant", &format!("tenant={}&measure={}", t.id, measure.name()), &format!("{}: cost, revenue, margin and cost per 1,000 requests by month", r.name)))
        h2 { "Cost by pool" }
        div.table { table {
            tr { th { "Pool" } th { "Service" } th.n { "Unblended" } th.n { "Amortized" } }
            @for l in &r.lines { tr { td { (l.pool) } td { (l.service) } td.n { (money(l.unblended, &cur)) } td.n { (money(l.amortized, &cur)) } } }
        } }
        h2 { "How each share was computed" }
        div.table { table {
            tr { th { "Pool" } th { "Driver" } th.n { "Tenant's quantity" } th.n { "Pool's quantity" } th.n { "Share" } th.n { "Pool cost" } th.n { "Allocated" } th { "Method" } }
            @for e in &ex {
                tr {
                    td { (e.pool) } td { (e.driver.clone().unwrap_or_default()) }
                    td.n { (e.driver_quantity.map(|q| format!("{q:.2}")).unwrap_or_default()) }
                    td.n { (e.pool_driver_quantity.map(|q| format!("{q:.2}")).unwrap_or_default()) }
                    td.n { (format!("{:.2}%", e.share * 100.0)) }
                    td.n { (money(e.pool_unblended, &cur)) } td.n { (money(e.allocated_unblended, &cur)) }
                    td.wide { (e.method) }
                }
            }
        } }
    };
    Ok(html_response(page(&r.name, Some(&who), "/tenants", body)))
}

async fn finance(State(state): State<ApiState>, who: Result<Principal, ApiError>) -> Result<Response, Response> {
    let who = signed_in(who)?;
    who.require_company().map_err(IntoResponse::into_response)?;
    let runs = state.store.allocation_runs().await.map_err(|e| ApiError::from(e).into_response())?;
    let cur = state.config.currency.to_string();
    let mut recs = Vec::new();
    for r in runs.iter().rev() {
        recs.push(build_reconciliation(&state, r.month).await.map_err(IntoResponse::into_response)?);
    }
    let exports = matches!(who.role, Role::Admin | Role::Finance);
    let body = html! {
        h1 { "Finance" }
        p.note { "Each month's allocation adds up to its bill per service, to the cent. The CSV's rows sum to the invoice; FOCUS is the same bill in the FinOps Foundation's open format (1.2), with each line's tenant in its tags." }
        div.table { table {
            tr { th { "Month" } th { "Source" } th.n { "Billed" } th.n { "Allocated" } th.n { "Difference" } th.n { "Unallocated" } th { "Status" } @if exports { th { "Downloads" } } }
            @for rec in &recs {
                tr {
                    td { (rec.month) } td { (rec.source.clone().unwrap_or_default()) }
                    td.n { (money(rec.billed_total, &cur)) } td.n { (money(rec.allocated_total, &cur)) }
                    td.n { (money(rec.allocated_total - rec.billed_total, &cur)) } td.n { (money(rec.unallocated_total, &cur)) }
                    td class=@if rec.reconciled { "good" } @else { "bad" } { @if rec.reconciled { "reconciled" } @else { "does not reconcile" } }
                    @if exports { td {
                        a.button href={ "/api/v1/exports/monthly.csv?month=" (rec.month) } { "CSV" }
                        a.button href={ "/api/v1/exports/monthly.parquet?month=" (rec.month) } { "Parquet" }
                        a.button href={ "/api/v1/exports/focus?month=" (rec.month) "&format=parquet" } { "FOCUS" }
                        a.button href={ "/api/v1/exports/focus?month=" (rec.month) "&format=csv" } { "FOCUS CSV" }
                    } }
                }
            }
        } }
        @if !recs.is_empty() && recs.iter().all(|r| r.unallocated.is_empty()) {
            p.note { "Nothing is unallocated in any month: every billed dollar went to a tenant, or to idle or shared capacity where the allocation policy keeps it." }
        }
        @for rec in recs.iter().filter(|r| !r.unallocated.is_empty()) {
            h2 { "Unallocated in " (rec.month) }
            div.table { table {
                tr { th { "Service" } th { "Pool" } th { "Reason" } th.n { "Amount" } }
                @for u in &rec.unallocated { tr { td { (u.service) } td { (u.pool) } td { (u.reason) } td.n { (money(u.unblended, &cur)) } } }
            } }
        }
    };
    Ok(html_response(page("Finance", Some(&who), "/finance", body)))
}

fn pct(x: Decimal) -> String {
    format!("{}%", (x * Decimal::ONE_HUNDRED).round_dp(1).normalize())
}

async fn savings_page(State(state): State<ApiState>, who: Result<Principal, ApiError>, q: Params) -> Result<Response, Response> {
    let who = signed_in(who)?;
    who.require_company().map_err(IntoResponse::into_response)?;
    let lookback = match q.get("lookback") {
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|d| [7, 30, 60].contains(d))
            .ok_or_else(|| ApiError::bad_parameter("lookback", format!("{v:?} is not 7, 30 or 60")).into_response())?,
        None => state.config.savings.lookback_days,
    };
    let term = match q.get("term") {
        Some(v) => tally_savings::Term::parse(v).ok_or_else(|| ApiError::bad_parameter("term", format!("{v:?} is not 1y or 3y")).into_response())?,
        None => tally_savings::Term::OneYear,
    };
    let payment = match q.get("payment") {
        Some(v) => {
            tally_savings::Payment::parse(v).ok_or_else(|| ApiError::bad_parameter("payment", format!("{v:?} is not none, partial or all")).into_response())?
        }
        None => tally_savings::Payment::NoUpfront,
    };
    let cur = state.config.currency.to_string();
    let mut sq = Params::default();
    sq.0.insert("lookback".into(), lookback.to_string());
    let report = match crate::routes::stored_savings(&state, &sq).await {
        Ok(r) => r,
        Err(ApiError::NotFound(m)) => {
            let body = html! { h1 { "Reserved Instances and Savings Plans" } p.note { (m) } };
            return Ok(html_response(page("Savings", Some(&who), "/savings", body)));
        }
        Err(e) => return Err(e.into_response()),
    };
    let p = &report.projection;
    let link = |l: u32, t: tally_savings::Term, pay: tally_savings::Payment| format!("/savings?lookback={l}&term={t}&payment={pay}");
    let summary = report.summaries.iter().find(|s| s.term == term && s.payment == payment);
    let mut notes: Vec<&str> = Vec::new();
    for src in &p.sources {
        if let Some(n) = src.note.as_deref()
            && !notes.contains(&n)
        {
            notes.push(n);
        }
    }
    let body = html! {
        h1 { "Reserved Instances and Savings Plans" }
        p.note {
            "From the last " (p.lookback_days) " days of billing (" (p.window_start.format("%-d %b")) " to " (p.window_end.format("%-d %b %Y")) "). "
            "Tally reserves what runs in at least " (pct(p.baseline_share)) " of the hours; capacity above that stays on demand."
        }
        p {
            strong { "Prices as of " }
            @for (i, src) in p.sources.iter().enumerate() {
                @if i > 0 { "; " }
                (src.offer) " " strong { (src.published) } " (" (src.origin) ")"
            }
            "."
        }
        @for n in &notes { p.note.warn { (n) } }
        div.tabs {
            "Look-back: " @for l in [7u32, 30, 60] { a href=(link(l, term, payment)) class=@if l == lookback { "on" } { (l) " days" } }
        }
        div.tabs {
            "Term: " @for t in tally_savings::Term::ALL { a href=(link(lookback, t, payment)) class=@if t == term { "on" } { (t) } }
            " Payment: " @for pay in tally_savings::Payment::ALL { a href=(link(lookback, term, pay)) class=@if pay == payment { "on" } { (pay.label()) } }
        }
        @if let Some(s) = summary {
            div.cards {
                div.card { div.k { "Saves per month" } div.v.good { (money(s.monthly_savings, &cur)) } div.s { (term) " " (payment.label()) } }
                div.card { div.k { "Upfront" } div.v { (money(s.upfront, &cur)) } }
                div.card { div.k { "Of the reservable spend" } div.v { (pct(s.share_of_reservable)) } div.s { (money(s.reservable_on_demand_monthly, &cur)) " a month on demand" } }
                div.card { div.k { "Of the bill" } div.v { (pct(s.share_of_bill)) } div.s { (p.bill_basis) ", " (money(p.bill_monthly, &cur)) } }
            }
        } @else {
            p.note { "No family offers " (term) " " (payment.label()) " reservations in the price list." }
        }
        (chart("savings", &format!("lookback={lookback}&term={term}"), "Cumulative cost of each payment option against staying on demand, with break-even points"))
        h2 { "What to reserve: " (term) " " (payment.label()) }
        div.table { table {
            tr { th { "Family" } th.n { "Running (min / mean / max)" } th.n { "Baseline" } th.n { "Reserved" } th.n { "Buy" } th.n { "Upfront" } th.n { "Monthly fee" } th.n { "Saves / month" } th.n { "Saves" } th { "Pays back" } th.n { "Utilization" } th.n { "Coverage" } }
            @for f in &p.families {
                @if let Some(o) = f.options.iter().find(|o| o.term == term && o.payment == payment) {
                    tr {
                        td.wrap { (f.service) " " (f.family) " " (f.variant) br; span.note { "counted as " (f.instance_type) } }
                        td.n { (f.profile.min.normalize()) " / " (f.profile.mean.round_dp(2).normalize()) " / " (f.profile.max.normalize()) }
                        td.n { (f.profile.baseline.normalize()) } td.n { (f.existing.count.normalize()) } td.n { strong { (o.count) } }
                        td.n { (money(o.upfront, &cur)) } td.n { (money(o.recurring_monthly, &cur)) } td.n.good { (money(o.monthly_savings, &cur)) } td.n { (pct(o.savings_share)) }
                        td { @match o.break_even_month { Some(1) => "month 1", Some(m) => { "month " (m) }, None => "not within the term" } }
                        td.n { (pct(o.utilization)) } td.n { (pct(o.coverage)) }
                    }
                }
            }
        } }
        @for u in &p.unpriced { p.note.warn { "Not projected: " (u) "." } }
        @if let Some(sp) = &p.savings_plan {
            h2 { "A Compute Savings Plan instead of EC2 reservations" }
            p.note { "It covers any EC2 instance family, size and region (and Fargate, Lambda) at a smaller discount. EC2 usage on demand: " (money(sp.eligible_on_demand_monthly, &cur)) " a month." }
            div.table { table {
                tr { th { "Option" } th.n { "Commit per hour" } th.n { "Upfront" } th.n { "Monthly fee" } th.n { "Saves / month" } th.n { "Saves" } th { "Pays back" } th.n { "Utilization" } th.n { "Coverage" } }
                @for o in &sp.options {
                    tr class=@if o.term == term && o.payment == payment { "on" } {
                        td { (o.term) " " (o.payment.label()) } td.n { "$" (o.hourly_commitment.normalize()) } td.n { (money(o.upfront, &cur)) } td.n { (money(o.recurring_monthly, &cur)) }
                        td.n.good { (money(o.monthly_savings, &cur)) } td.n { (pct(o.savings_share)) }
                        td { @match o.break_even_month { Some(m) => { "month " (m) }, None => "not within the term" } }
                        td.n { (pct(o.utilization)) } td.n { (pct(o.coverage)) }
                    }
                }
            } }
        }
        @if let Some(e) = &report.estimate {
            h2 { "Against the team's estimate" }
            ul.why { @for line in &e.explanation { li { (line) } } }
        }
        h2 { "Cost Explorer's own recommendations" }
        @match &report.recommendations {
            Some(recs) => {
                p.note { "Collected " (recs.collected_at.format("%-d %b %Y %H:%M UTC")) " over " (recs.lookback_days) " days." }
                @if report.comparison.is_empty() { p { "Cost Explorer recommends nothing, and neither does Tally, under the terms asked." } }
                @else {
                    div.table { table {
                        tr { th { "What" } th { "Option" } th.n { "Tally" } th.n { "Tally saves" } th.n { "Cost Explorer" } th.n { "It saves" } th { "Why they differ" } }
                        @for c in &report.comparison {
                            tr {
                                td { (c.subject) } td { (c.term) " " (c.payment.label()) }
                                td.n { (c.tally_quantity.map(|q| q.normalize().to_string()).unwrap_or_else(|| "nothing".into())) }
                                td.n { (c.tally_monthly_savings.map(|m| money(m, &cur)).unwrap_or_else(|| "—".into())) }
                                td.n { (c.cost_explorer_quantity.map(|q| q.normalize().to_string()).unwrap_or_else(|| "nothing".into())) }
                                td.n { (c.cost_explorer_monthly_savings.map(|m| money(m, &cur)).unwrap_or_else(|| "—".into())) }
                                td.wide { (c.explanation) }
                            }
                        }
                    } }
                }
            }
            None => p.note { "Not collected yet: " code { "tally collect recommendations" } " (24 Cost Explorer requests, $0.24), or set " code { "savings.recommendations_enabled" } " to collect them weekly." },
        }
    };
    Ok(html_response(page("Savings", Some(&who), "/savings", body)))
}

async fn operations(State(state): State<ApiState>, who: Result<Principal, ApiError>) -> Result<Response, Response> {
    let who = signed_in(who)?;
    who.require_company().map_err(IntoResponse::into_response)?;
    let runs = state.store.job_runs(None, 100).await.map_err(|e| ApiError::from(e).into_response())?;
    let body = html! {
        h1 { "Operations" }
        h2 { "Latest job runs" }
        div.table { table {
            tr { th { "Job" } th { "Started (UTC)" } th { "Outcome" } th.n { "Rows" } th.n { "API requests" } th { "Detail or error" } }
            @for r in &runs {
                tr {
                    td { (r.job) } td { (r.started_at.format("%Y-%m-%d %H:%M:%S")) }
                    td class=@match r.outcome { tally_domain::JobOutcome::Failed => "bad", tally_domain::JobOutcome::Succeeded => "good", _ => "warn" } { (r.outcome) }
                    td.n { (r.rows_written) } td.n { (r.api_requests) }
                    td.wrap-all { (r.error.clone().or_else(|| r.detail.clone()).unwrap_or_default()) }
                }
            }
        } }
    };
    Ok(html_response(page("Operations", Some(&who), "/operations", body)))
}

#[cfg(test)]
mod tests {
    use super::money;

    #[test]
    fn money_is_grouped_by_thousands_with_the_sign_first() {
        assert_eq!(money("1234567.891".parse().unwrap(), "USD"), "$1,234,567.89");
        assert_eq!(money("-0.2".parse().unwrap(), "USD"), "-$0.20");
        assert_eq!(money("999".parse().unwrap(), "JPY"), "999 JPY", "yen have no minor unit");
    }
}
