//! The dashboard in headless Chromium against `tally demo`: every page loads
//! without console errors or failed requests, its charts are drawn with data,
//! it fits a phone's width, and a screenshot of each is kept.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tally_test_support::browser::Browser;

fn tally(data: &Path) -> Command {
    let mut c = tally_test_support::tally_command(env!("CARGO_BIN_EXE_tally"));
    c.arg("--data-dir").arg(data).env("TALLY_LOG", "warn");
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

/// `tally demo` serving on a free port, and its sign-in link.
fn start_demo(data: &Path) -> (Child, String, String) {
    let port = tally_test_support::free_port();
    let mut child = tally(data).args(["demo", "--listen", &format!("127.0.0.1:{port}")]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut link = None;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(l) = line.trim().strip_prefix("Open ") {
            link = Some(l.to_owned());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "the demo did not start");
    }
    // Keep reading what the demo prints after the link: a closed pipe would stop it.
    std::thread::spawn(move || lines.for_each(drop));
    let link = link.expect("the demo prints a sign-in link");
    let base = link.split("/login").next().unwrap().to_owned();
    (Child(child), base, link)
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    // Only this run's pages: an earlier run's pictures would pass for today's.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Per image: its source, whether it loaded, its width, and how many of its
/// pixels are coloured (bars, lines, areas; text and grid are grey). Charts
/// load lazily, so each is scrolled into view first, as a reader would; one
/// that has not loaded 20 s later counts as not loaded.
const IMAGES: &str = r#"(async () => { const out = []; for (const i of Array.from(document.images)) {
  i.scrollIntoView({ block: 'center' });
  if (!i.complete || i.naturalWidth === 0) await new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 20000); if (i.complete && i.naturalWidth > 0) r(); });
  let coloured = 0;
  if (i.naturalWidth > 0) {
    const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
    const x = c.getContext('2d'); x.drawImage(i, 0, 0);
    const d = x.getImageData(0, 0, c.width, c.height).data;
    for (let p = 0; p < d.length; p += 16) { const m = Math.max(d[p], d[p+1], d[p+2]), n = Math.min(d[p], d[p+1], d[p+2]); if (m - n > 60) coloured++; }
  }
  out.push({ src: i.currentSrc || i.src, width: i.naturalWidth, coloured });
} window.scrollTo(0, 0); return out; })()"#;

struct Expect {
    path: &'static str,
    name: &'static str,
    charts: usize,
    text: &'static [&'static str],
}

fn check_page(b: &mut Browser, base: &str, page: &Expect, phone: bool, out: &Path) {
    let label = format!("{} ({})", page.path, if phone { "phone" } else { "desktop" });
    if phone {
        b.viewport(390, 844, true).unwrap();
    } else {
        b.viewport(1280, 900, false).unwrap();
    }
    b.open(&format!("{base}{}", page.path)).unwrap();
    let problems = b.take_problems();
    assert!(problems.is_empty(), "{label}: the page reported {problems:#?}");
    let text = b.eval("document.body.innerText").unwrap();
    let text = text.as_str().unwrap_or_default();
    // innerText is what a reader sees, capitals from CSS included: compare without case.
    let seen = text.to_lowercase();
    for want in page.text {
        assert!(seen.contains(&want.to_lowercase()), "{label}: {want:?} is not on the page, which reads:\n{text}");
    }
    let images = b.eval(IMAGES).unwrap();
    let images = images.as_array().unwrap();
    assert_eq!(images.len(), page.charts, "{label}: charts {images:#?}");
    for img in images {
        let src = img["src"].as_str().unwrap_or_default();
        assert!(src.contains("/charts/"), "{label}: {src}");
        assert_eq!(img["width"].as_u64(), Some(if phone { 640 } else { 1200 }), "{label}: {src} did not load at the size for this screen");
        assert!(img["coloured"].as_u64().unwrap_or(0) > 500, "{label}: {src} draws no data ({} coloured pixels)", img["coloured"]);
    }
    let overflow: Value = b.eval("document.documentElement.scrollWidth - window.innerWidth").unwrap();
    assert!(overflow.as_i64().unwrap_or(0) <= 1, "{label}: the page is {overflow} px wider than the screen");
    b.screenshot(&out.join(format!("{}-{}.png", page.name, if phone { "phone" } else { "desktop" }))).unwrap();
    assert!(b.take_problems().is_empty(), "{label}: problems while capturing");
}

#[test]
fn every_dashboard_page_loads_cleanly_shows_its_charts_and_fits_a_phone() {
    let dir = tempfile::tempdir().unwrap();
    let (_demo, base, link) = start_demo(dir.path());
    let out = screenshots();
    eprintln!("screenshots: {}", out.display());

    let mut b = Browser::launch().expect("headless Chromium");
    // The one-time sign-in link asks for a click, then starts a session and lands on a clean overview.
    b.open(&link).unwrap();
    b.navigate_by("document.querySelector('main form').submit()").unwrap();
    assert_eq!(b.eval("location.pathname").unwrap(), "/", "the sign-in link redirects to /");
    assert_eq!(b.eval("location.search").unwrap(), "", "the link's code does not stay in the address bar");
    assert_eq!(b.eval("document.cookie").unwrap(), "", "the session cookie is out of the page's reach (HttpOnly)");
    assert!(b.take_problems().is_empty());

    let pages = [
        Expect { path: "/", name: "overview", charts: 3, text: &["Burn, revenue and runway", "Runway", "Net burn", "Tenants that cost more than they pay"] },
        Expect { path: "/tenants", name: "tenants", charts: 1, text: &["Tenants in", "Globex", "Per 1k requests"] },
        Expect { path: "/tenants/globex", name: "tenant-globex", charts: 1, text: &["Globex", "Gross margin", "How each share was computed"] },
        Expect { path: "/finance", name: "finance", charts: 0, text: &["reconciled", "CSV", "FOCUS", "Nothing is unallocated in any month"] },
        Expect {
            path: "/savings",
            name: "savings",
            charts: 1,
            text: &["Prices as of", "2026-11-01", "What to reserve", "m5.xlarge", "db.r6g.xlarge", "cache.r6g.large", "Against the team's estimate"],
        },
        Expect { path: "/operations", name: "operations", charts: 0, text: &["Latest job runs", "allocate"] },
    ];
    for page in &pages {
        for phone in [false, true] {
            check_page(&mut b, &base, page, phone, &out);
        }
    }
    // Sorting the tenants table is a link, not a script.
    b.viewport(1280, 900, false).unwrap();
    b.open(&format!("{base}/tenants?sort=tenant&dir=asc")).unwrap();
    let first: Value = b.eval("document.querySelector('table tr:nth-child(2) td a').textContent").unwrap();
    assert_eq!(first, "Acme Logistics");
    assert!(b.take_problems().is_empty());
    drop(b);

    // A tenant's token sees its own pages only.
    let token = tally(dir.path()).args(["token", "create", "--role", "tenant", "--tenant", "globex"]).output().unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let mut t = Browser::launch().unwrap();
    // Signing in as a person does: the form, posted; the token never enters an address.
    t.open(&format!("{base}/login")).unwrap();
    t.navigate_by(&format!("document.getElementById('token').value = '{token}'; document.querySelector('main form').submit()")).unwrap();
    assert_eq!(t.eval("location.pathname").unwrap(), "/tenants/globex", "a tenant lands on its own page");
    assert_eq!(t.eval("location.search").unwrap(), "");
    assert!(t.take_problems().is_empty());
    check_page(&mut t, &base, &Expect { path: "/tenants/globex", name: "tenant-view-globex", charts: 1, text: &["Globex"] }, true, &out);
    t.open(&format!("{base}/tenants")).unwrap();
    let rows: Value = t.eval("document.querySelectorAll('table tr').length").unwrap();
    assert_eq!(rows, 2, "the tenants table holds the tenant alone");
    t.open(&format!("{base}/tenants/acme")).unwrap();
    let problems = t.take_problems();
    assert!(problems.iter().any(|p| p.kind == "HTTP 404"), "another tenant's page is a 404: {problems:?}");
    let nav: Value = t.eval("Array.from(document.querySelectorAll('header a')).map(a => a.textContent).join(',')").unwrap_or_default();
    assert!(!nav.as_str().unwrap_or_default().contains("Finance"), "{nav}");
    // Signing out ends the session: the pages ask for a sign-in again.
    t.open(&format!("{base}/tenants/globex")).unwrap();
    t.navigate_by("document.querySelector('form.signout').submit()").unwrap();
    assert_eq!(t.eval("location.pathname").unwrap(), "/login");
    t.open(&format!("{base}/tenants/globex")).unwrap();
    assert_eq!(t.eval("location.pathname").unwrap(), "/login", "a signed-out browser is sent to sign in");
    let problems = t.take_problems();
    assert!(problems.is_empty(), "{problems:?}");
}
