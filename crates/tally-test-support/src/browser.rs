//! Headless Chromium driven over the DevTools protocol: load a page, read
//! what the page logged, evaluate expressions and take screenshots.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Debian's `chromium`, or `TEST_TALLY_CHROMIUM`.
pub fn chromium_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("TEST_TALLY_CHROMIUM") {
        return Ok(PathBuf::from(p));
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    bail!("no Chromium: install Debian's `chromium` (./scripts/test.sh does) or set TEST_TALLY_CHROMIUM")
}

/// Something a page reported: a console error, an uncaught exception or a
/// failed load.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub kind: String,
    pub text: String,
}

/// One headless Chromium with one page; killed when dropped.
pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    problems: Vec<Problem>,
    loaded: bool,
    /// The emulated screen: width, height, phone.
    screen: (u32, u32, bool),
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("problems", &self.problems).finish_non_exhaustive()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts Chromium headless (`--no-sandbox --disable-gpu
    /// --disable-background-networking`) and attaches to its first page.
    pub fn launch() -> Result<Self> {
        let bin = chromium_binary()?;
        let profile = tempfile::tempdir()?;
        let port = crate::free_port();
        let mut child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--disable-extensions",
                "--hide-scrollbars",
                &format!("--remote-debugging-port={port}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        let page_ws = loop {
            if let Some(status) = child.try_wait()? {
                bail!("Chromium exited at start ({status})");
            }
            if let Ok(body) = crate::http_get(addr, "/json/list")
                && let Some(json_start) = body.find('[')
                && let Ok(Value::Array(targets)) = serde_json::from_str::<Value>(&body[json_start..])
                && let Some(url) = targets.iter().find(|t| t["type"] == "page").and_then(|t| t["webSocketDebuggerUrl"].as_str())
            {
                break url.to_owned();
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                bail!("Chromium's DevTools did not answer on {addr} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(150));
        };
        let (ws, _) = tungstenite::connect(page_ws.as_str()).with_context(|| format!("connecting to {page_ws}"))?;
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(60)))?;
        }
        let mut b = Self { child, ws, next_id: 0, problems: Vec::new(), loaded: false, screen: (800, 600, false), _profile: profile };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable", "Network.enable"] {
            b.call(domain, json!({}))?;
        }
        Ok(b)
    }

    fn note(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str().unwrap_or_default() {
            "Runtime.consoleAPICalled" if matches!(params["type"].as_str(), Some("error" | "assert")) => {
                let text = params["args"]
                    .as_array()
                    .map(|a| {
                        a.iter().map(|x| x["value"].as_str().map(str::to_owned).unwrap_or_else(|| x["description"].to_string())).collect::<Vec<_>>().join(" ")
                    })
                    .unwrap_or_default();
                self.problems.push(Problem { kind: "console.error".into(), text });
            }
            "Runtime.exceptionThrown" => {
                self.problems.push(Problem {
                    kind: "exception".into(),
                    text: params["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .or(params["exceptionDetails"]["text"].as_str())
                        .unwrap_or("?")
                        .to_owned(),
                });
            }
            "Log.entryAdded" if params["entry"]["level"] == "error" => {
                let e = &params["entry"];
                self.problems.push(Problem {
                    kind: format!("log ({})", e["source"].as_str().unwrap_or("?")),
                    text: format!("{} {}", e["text"].as_str().unwrap_or(""), e["url"].as_str().unwrap_or("")),
                });
            }
            "Network.loadingFailed" if params["canceled"] != true => {
                self.problems.push(Problem { kind: "load failed".into(), text: params["errorText"].as_str().unwrap_or("?").to_owned() });
            }
            "Network.responseReceived" if params["response"]["status"].as_u64().is_some_and(|s| s >= 400) => {
                self.problems.push(Problem {
                    kind: format!("HTTP {}", params["response"]["status"]),
                    text: params["response"]["url"].as_str().unwrap_or("?").to_owned(),
                });
            }
            "Page.loadEventFired" => self.loaded = true,
            _ => {}
        }
    }

    fn read(&mut self) -> Result<Value> {
        loop {
            match self.ws.read()? {
                Message::Text(t) => return Ok(serde_json::from_str(t.as_str())?),
                Message::Close(_) => bail!("DevTools closed the connection"),
                _ => {}
            }
        }
    }

    /// Sends a command and waits for its answer, noting the events on the way.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.ws.send(Message::text(json!({ "id": id, "method": method, "params": params }).to_string()))?;
        loop {
            let msg = self.read()?;
            if msg["id"].as_u64() == Some(id) {
                if let Some(e) = msg.get("error") {
                    bail!("{method}: {e}");
                }
                return Ok(msg["result"].clone());
            }
            self.note(&msg);
        }
    }

    /// Loads `url` and waits for its load event (images included).
    pub fn open(&mut self, url: &str) -> Result<()> {
        self.loaded = false;
        let r = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(e) = r["errorText"].as_str() {
            bail!("navigating to {url}: {e}");
        }
        self.wait_for_load(url)
    }

    /// Runs `expression`, which navigates as a person would (submitting a
    /// form, following a link), and waits for the next page's load event.
    pub fn navigate_by(&mut self, expression: &str) -> Result<()> {
        self.loaded = false;
        self.eval(expression)?;
        self.wait_for_load(expression)
    }

    fn wait_for_load(&mut self, what: &str) -> Result<()> {
        let start = Instant::now();
        while !self.loaded {
            if start.elapsed() > Duration::from_secs(60) {
                bail!("{what} did not finish loading within 60 s");
            }
            let msg = self.read()?;
            self.note(&msg);
        }
        Ok(())
    }

    /// The value of a JavaScript expression (JSON-serialisable).
    pub fn eval(&mut self, expression: &str) -> Result<Value> {
        let r = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }))?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("evaluating {expression}: {e}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// A desktop (`mobile = false`) or phone viewport.
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) -> Result<()> {
        self.call("Emulation.setDeviceMetricsOverride", json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }))?;
        self.screen = (width, height, mobile);
        Ok(())
    }

    /// A screenshot of the whole page, written to `path` as PNG.
    pub fn screenshot(&mut self, path: &Path) -> Result<()> {
        // The screen is made as tall as the page for the capture: headless
        // Chromium leaves parts of scrolling boxes unpainted when asked to
        // capture beyond the viewport.
        let (width, height, mobile) = self.screen;
        let tall = self.eval("document.documentElement.scrollHeight")?.as_u64().unwrap_or(u64::from(height)).clamp(u64::from(height), 16_000) as u32;
        self.call("Emulation.setDeviceMetricsOverride", json!({ "width": width, "height": tall, "deviceScaleFactor": 1, "mobile": mobile }))?;
        // Let the resized page lay out and paint before it is captured.
        self.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 100))))")?;
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        self.viewport(width, height, mobile)?;
        let r = shot?;
        let data = r["data"].as_str().ok_or_else(|| anyhow!("no screenshot data"))?;
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// What the pages reported since the last call.
    pub fn take_problems(&mut self) -> Vec<Problem> {
        std::mem::take(&mut self.problems)
    }
}
