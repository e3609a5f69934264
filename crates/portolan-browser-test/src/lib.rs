//! Headless Chromium for tests, driven over the Chrome DevTools Protocol.
//!
//! [`Browser::launch`] starts Debian's `chromium` with `--headless=new`, a fresh
//! `--user-data-dir`, no sandbox (tests run as root), a proxy and host resolver that
//! lead nowhere (so a page cannot reach the network even if it tried) and the DevTools
//! server on a loopback port; then it attaches to one page. Every call waits at most
//! [`Browser::timeout`]; every event the page sends is kept, so a test can check what
//! was requested, logged, thrown or opened.
//!
//! The set-up every report test shares is here too: [`Browser::for_test`] (skip off CI
//! when `chromium` is missing, launch, enable the domains), [`screenshot_dir`],
//! [`Browser::count`] and [`Browser::assert_clean`].
#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A running headless Chromium with one attached page.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    events: Vec<Value>,
    dir: PathBuf,
    /// The longest any one call waits.
    pub timeout: Duration,
}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Where screenshots and the pages they show are kept: `target/report-screenshots/`,
/// beside `tmpdir` (a test's `env!("CARGO_TARGET_TMPDIR")`, which is `target/tmp`).
pub fn screenshot_dir(tmpdir: &str) -> PathBuf {
    let tmp = Path::new(tmpdir);
    let dir = tmp.parent().unwrap_or(tmp).join("report-screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

impl Browser {
    /// The browser for test `test`, with [`Browser::enable`] done; `None` (the test is
    /// skipped) when `chromium` is not installed, which fails the test on CI.
    pub fn for_test(test: &str) -> Option<Browser> {
        if !portolan_testkit::require_tool(test, "chromium") {
            return None;
        }
        let mut b = Browser::launch().expect("start headless chromium");
        b.enable().expect("enable the DevTools domains");
        Some(b)
    }

    /// Evaluates `expr`, which must give a count.
    pub fn count(&mut self, expr: &str) -> u64 {
        let v = self
            .eval(expr)
            .unwrap_or_else(|e| panic!("evaluating `{expr}`: {e}"));
        v.as_u64()
            .unwrap_or_else(|| panic!("`{expr}` is not a count: {v}"))
    }

    /// The sum of `data-n` over the report chart's marks of `kind` (`listener`, `scan`,
    /// `finding`, `drift`): how many entries they hold, merged or not.
    pub fn chart_marks(&mut self, kind: &str) -> u64 {
        self.count(&format!(
            "[...document.querySelectorAll('#chart .mark[data-kind={kind}]')].reduce((s, m) => s + Number(m.dataset.n), 0)"
        ))
    }

    /// The text of every element `selector` matches, one a line.
    pub fn texts(&mut self, selector: &str) -> String {
        let expr = format!(
            "[...document.querySelectorAll({selector:?})].map(e => e.textContent).join('\\n')"
        );
        let v = self
            .eval(&expr)
            .unwrap_or_else(|e| panic!("evaluating `{expr}`: {e}"));
        v.as_str()
            .unwrap_or_else(|| panic!("`{expr}` is not text: {v}"))
            .to_string()
    }

    /// Checks that the report's script ran (its CSP hash matched) and that the page holds
    /// nothing a hostile payload would have made: no `img`, `iframe`, `object` or
    /// `embed`, no script but the report's two, no `on...` handler attribute anywhere.
    /// Panics otherwise.
    pub fn assert_inert(&mut self) {
        assert_eq!(
            self.eval("document.documentElement.dataset.js").unwrap(),
            "on",
            "the report's script did not run"
        );
        assert_eq!(
            self.count("document.querySelectorAll('img, iframe, object, embed').length"),
            0
        );
        assert_eq!(self.count("document.scripts.length"), 2);
        assert_eq!(
            self.eval("[...document.querySelectorAll('*')].some(e => [...e.attributes].some(a => a.name.startsWith('on')))").unwrap(),
            false,
            "an element has an on... handler attribute"
        );
    }

    /// The control for [`Browser::assert_clean`]'s dialog check: an alert the page opens
    /// is seen. Accepts it.
    pub fn assert_dialogs_are_seen(&mut self) {
        self.eval("setTimeout(() => alert('control'), 0); 1")
            .unwrap();
        let d = self.wait_event("Page.javascriptDialogOpening").unwrap();
        assert_eq!(d["params"]["message"], "control");
        self.call("Page.handleJavaScriptDialog", json!({"accept": true}))
            .unwrap();
    }

    /// The CPU time the page's main thread has spent, in seconds (after
    /// `Performance.enable`): what rendering cost, whatever else the machine runs.
    pub fn main_thread_cpu(&mut self) -> f64 {
        let metrics = self.call("Performance.getMetrics", json!({})).unwrap();
        metrics["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "ThreadTime")
            .and_then(|m| m["value"].as_f64())
            .expect("ThreadTime metric")
    }

    /// Checks that the report shows `want` findings of severity `severity`, in its list
    /// and in the summary's count.
    pub fn assert_severity_count(&mut self, severity: &str, want: u64) {
        let q = format!(
            "document.querySelectorAll('#finding-list .finding[data-severity={severity}]').length"
        );
        assert_eq!(self.count(&q), want, "{severity} findings");
        let q = format!(
            "document.querySelector('.sev-count[data-severity={severity}] .n').textContent"
        );
        assert_eq!(
            self.eval(&q).unwrap(),
            want.to_string(),
            "{severity} in the summary"
        );
    }

    /// Checks that the report's drift section shows `want` changes of kind `kind`, in its
    /// count and in its table's rows.
    pub fn assert_drift_count(&mut self, kind: &str, want: u64) {
        let q =
            format!("document.querySelector('#drift-counts [data-change={kind}] .n').textContent");
        assert_eq!(
            self.eval(&q).unwrap(),
            want.to_string(),
            "{kind} in the drift section"
        );
        let q = format!(
            "document.querySelectorAll('#drift-table tbody tr[data-change={kind}]').length"
        );
        assert_eq!(self.count(&q), want, "{kind} rows");
    }

    /// Checks what a page that must be self-contained and quiet did: it requested
    /// nothing but `url` (the file itself), logged no error (CSP violations included),
    /// and opened no dialog. Panics otherwise.
    pub fn assert_clean(&self, url: &str) {
        let requests = self.requests();
        assert!(
            !requests.is_empty(),
            "the request log is empty: Network events are not arriving"
        );
        for r in &requests {
            assert_eq!(r, url, "the page requested {r}");
        }
        assert_eq!(self.errors(), Vec::<String>::new(), "console errors");
        assert!(
            self.events_named("Page.javascriptDialogOpening").is_empty(),
            "a JavaScript dialog opened"
        );
    }

    /// Starts `chromium` and attaches to a blank page.
    pub fn launch() -> io::Result<Browser> {
        Browser::launch_with("chromium")
    }

    pub fn launch_with(program: &str) -> io::Result<Browser> {
        let dir = std::env::temp_dir().join(format!(
            "portolan-chromium-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut child = Command::new(program)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
                "--proxy-server=http://127.0.0.1:9",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--hide-scrollbars",
                "--mute-audio",
                "--password-store=basic",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", dir.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("starting {program}: {e}")))?;
        // Chromium says where its DevTools server listens on stderr; the thread keeps
        // draining stderr afterwards so the pipe never fills.
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let timeout = Duration::from_secs(60);
        let url = match rx.recv_timeout(timeout) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(err(format!(
                    "{program} did not start its DevTools server within {timeout:?}"
                )));
            }
        };
        let hostport = url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .ok_or_else(|| err(format!("unexpected DevTools address {url}")))?
            .to_string();
        assert!(
            hostport.starts_with("127.0.0.1:"),
            "DevTools must listen on loopback, not {hostport}"
        );
        let stream = TcpStream::connect(&hostport)?;
        stream.set_read_timeout(Some(timeout))?;
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .map_err(|e| err(format!("DevTools handshake with {url}: {e}")))?;
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
            dir,
            timeout,
        };
        let target = b.browser_call("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"].as_str().unwrap_or_default().to_string();
        let attached = b.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        b.session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| err("no sessionId from Target.attachToTarget"))?
            .to_string();
        Ok(b)
    }

    fn send(&mut self, session: Option<String>, method: &str, params: Value) -> io::Result<u64> {
        self.next_id += 1;
        let mut msg = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .map_err(|e| err(format!("sending {method}: {e}")))?;
        Ok(self.next_id)
    }

    /// The next message, or an error once `deadline` has passed.
    fn read(&mut self, deadline: Instant, what: &str) -> io::Result<Value> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(err(format!("timed out waiting for {what}")));
            }
            self.ws.get_mut().set_read_timeout(Some(left))?;
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(t.as_str())
                        .map_err(|e| err(format!("DevTools sent bad JSON: {e}")));
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(err(format!("timed out waiting for {what}")));
                }
                Err(e) => {
                    return Err(err(format!(
                        "reading DevTools while waiting for {what}: {e}"
                    )));
                }
            }
        }
    }

    fn wait_reply(&mut self, id: u64, method: &str) -> io::Result<Value> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let m = self.read(deadline, method)?;
            if m["id"].as_u64() == Some(id) {
                if let Some(e) = m.get("error") {
                    return Err(err(format!("{method} failed: {e}")));
                }
                return Ok(m["result"].clone());
            }
            if m.get("method").is_some() {
                self.events.push(m);
            }
        }
    }

    fn browser_call(&mut self, method: &str, params: Value) -> io::Result<Value> {
        let id = self.send(None, method, params)?;
        self.wait_reply(id, method)
    }

    /// Calls `method` on the page and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> io::Result<Value> {
        let id = self.send(Some(self.session.clone()), method, params)?;
        self.wait_reply(id, method)
    }

    /// Waits for the page to send event `method` (or returns it if it came already).
    pub fn wait_event(&mut self, method: &str) -> io::Result<Value> {
        if let Some(e) = self.events.iter().find(|e| e["method"] == method) {
            return Ok(e.clone());
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let m = self.read(deadline, method)?;
            if m.get("method").is_some() {
                self.events.push(m.clone());
                if m["method"] == method {
                    return Ok(m);
                }
            }
        }
    }

    /// Every event received so far.
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    /// The events named `method`.
    pub fn events_named(&self, method: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["method"] == method)
            .collect()
    }

    /// Turns on the domains whose events a test checks: page lifecycle, console and
    /// exceptions, log entries (CSP violations land there), and network requests.
    pub fn enable(&mut self) -> io::Result<()> {
        for d in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            self.call(d, json!({}))?;
        }
        Ok(())
    }

    /// Opens `path` as a `file://` URL and waits for its load event; the URL.
    pub fn open(&mut self, path: &Path) -> io::Result<String> {
        let abs = std::fs::canonicalize(path)?;
        let url = format!("file://{}", abs.display());
        self.events.retain(|e| e["method"] != "Page.loadEventFired");
        let r = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(e) = r.get("errorText") {
            return Err(err(format!("navigating to {url}: {e}")));
        }
        self.wait_event("Page.loadEventFired")?;
        Ok(url)
    }

    /// Evaluates `expr` in the page and returns its value (promises are awaited).
    pub fn eval(&mut self, expr: &str) -> io::Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(x) = r.get("exceptionDetails") {
            return Err(err(format!("evaluating `{expr}` threw: {x}")));
        }
        Ok(r["result"]["value"].clone())
    }

    /// A PNG of the whole page (up to `max_height` CSS pixels) at `width`, written to
    /// `out`.
    pub fn screenshot(&mut self, out: &Path, width: u32, max_height: u32) -> io::Result<()> {
        let h = self.eval("document.documentElement.scrollHeight")?;
        let height = h.as_u64().unwrap_or(900).min(u64::from(max_height));
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": false}),
        )?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap_or_default())
            .map_err(|e| err(format!("screenshot data: {e}")))?;
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(out, png)
    }

    /// Console errors, exceptions, and error log entries (CSP violations among them).
    pub fn errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.events {
            let p = &e["params"];
            match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => out.push(format!("exception: {p}")),
                Some("Runtime.consoleAPICalled")
                    if matches!(p["type"].as_str(), Some("error" | "assert")) =>
                {
                    out.push(format!("console.{}: {}", p["type"], p["args"]))
                }
                Some("Log.entryAdded")
                    if matches!(p["entry"]["level"].as_str(), Some("error" | "warning")) =>
                {
                    out.push(format!("log: {}", p["entry"]["text"]))
                }
                _ => {}
            }
        }
        out
    }

    /// The URLs of every request the page made.
    pub fn requests(&self) -> Vec<String> {
        self.events_named("Network.requestWillBeSent")
            .iter()
            .map(|e| {
                e["params"]["request"]["url"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.browser_call("Browser.close", json!({}));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
