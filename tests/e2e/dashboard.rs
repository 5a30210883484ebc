//! The dashboard in a real browser: Debian's chromium, headless, driven over the DevTools
//! protocol (headless_chrome, with an explicit executable and nothing downloaded), against
//! `backfill serve --demo`. These tests fail when chromium is missing; `.ci/run` installs it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::Page::AddScriptToEvaluateOnNewDocument;
use headless_chrome::types::Bounds;
use headless_chrome::util::Wait;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;

use crate::helpers::ServeProcess;

/// Debian's chromium.
const CHROMIUM: &str = "/usr/bin/chromium";
/// What a careless page would turn into markup.
const XSS: &str = "<img src=x onerror=alert(1)>";
/// Installed before the page's own script: records every use of an API that parses a string
/// as markup, so a test can prove the page never writes HTML.
const MARKUP_TRAP: &str = "(() => {
  const writes = [];
  Object.defineProperty(window, '__markupWrites', { value: writes });
  const setter = (proto, name) => {
    const d = Object.getOwnPropertyDescriptor(proto, name);
    if (!d || !d.set) { writes.push(`cannot watch ${name}`); return; }
    Object.defineProperty(proto, name, { ...d, set(v) { writes.push(name); d.set.call(this, v); } });
  };
  const method = (proto, name) => {
    const f = proto[name];
    proto[name] = function (...args) { writes.push(name); return f.apply(this, args); };
  };
  setter(Element.prototype, 'innerHTML');
  setter(Element.prototype, 'outerHTML');
  setter(ShadowRoot.prototype, 'innerHTML');
  method(Element.prototype, 'insertAdjacentHTML');
  method(Element.prototype, 'setHTMLUnsafe');
  method(Document.prototype, 'write');
  method(Document.prototype, 'writeln');
  method(Range.prototype, 'createContextualFragment');
  method(DOMParser.prototype, 'parseFromString');
})();";
/// A bound for every wait on the page: generous for a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(60);
const WIDTH: u32 = 1440;

/// A headless chromium with a fresh profile, showing one page.
struct Session {
    tab: Arc<Tab>,
    dialogs: Arc<AtomicBool>,
    _browser: Browser,
    _profile: tempfile::TempDir,
}

impl Session {
    fn open(url: &str) -> Self {
        assert!(
            Path::new(CHROMIUM).exists(),
            "Debian's chromium is missing at {CHROMIUM}: `apt-get install chromium` (.ci/run does)"
        );
        let profile = tempfile::tempdir().unwrap();
        let args: Vec<&OsStr> = [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--lang=en-US",
        ]
        .iter()
        .map(OsStr::new)
        .collect();
        let options = LaunchOptions::default_builder()
            .path(Some(PathBuf::from(CHROMIUM)))
            .headless(true)
            .sandbox(false)
            .user_data_dir(Some(profile.path().to_path_buf()))
            .window_size(Some((WIDTH, 1000)))
            .idle_browser_timeout(Duration::from_secs(90))
            .args(args)
            .build()
            .unwrap();
        let browser = Browser::new(options).expect("chromium starts");
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(WAIT);
        let dialogs = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&dialogs);
        tab.add_event_listener(Arc::new(move |event: &Event| {
            if let Event::PageJavascriptDialogOpening(_) = event {
                seen.store(true, Ordering::SeqCst);
            }
        }))
        .unwrap();
        tab.call_method(AddScriptToEvaluateOnNewDocument {
            source: MARKUP_TRAP.to_owned(),
            world_name: None,
            include_command_line_api: None,
            run_immediately: None,
        })
        .unwrap();
        tab.navigate_to(url)
            .unwrap()
            .wait_until_navigated()
            .unwrap();
        Self {
            tab,
            dialogs,
            _browser: browser,
            _profile: profile,
        }
    }

    /// Evaluates a JavaScript expression (awaiting a promise) and answers its value.
    fn eval(&self, expression: &str) -> Value {
        self.assert_no_dialog();
        let result = self
            .tab
            .evaluate(expression, true)
            .unwrap_or_else(|e| panic!("evaluating {expression}: {e}"));
        result.value.unwrap_or(Value::Null)
    }

    fn text(&self, expression: &str) -> String {
        match self.eval(expression) {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// Polls `expression` until it is truthy (bounded by [`WAIT`]) and answers its value.
    fn wait_for(&self, what: &str, expression: &str) -> Value {
        let found = Wait::new(WAIT, Duration::from_millis(100)).until(|| {
            let value = self.eval(expression);
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            truthy.then_some(value)
        });
        found.unwrap_or_else(|_| panic!("timed out waiting for {what}; page: {}", self.summary()))
    }

    fn click(&self, selector: &str) {
        self.tab
            .wait_for_element(selector)
            .unwrap_or_else(|e| panic!("{selector}: {e}"))
            .click()
            .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
    }

    /// Empties a field, then types into it key by key as a person would.
    fn type_into(&self, selector: &str, text: &str) {
        self.eval(&format!(
            "document.querySelector({}).value = ''",
            js_string(selector)
        ));
        self.click(selector);
        self.tab.type_str(text).unwrap();
    }

    fn set_value(&self, selector: &str, value: &str) {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); e.value = {}; \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); return e.value; }})()",
            js_string(selector),
            js_string(value)
        ));
    }

    fn assert_no_dialog(&self) {
        assert!(
            !self.dialogs.load(Ordering::SeqCst),
            "the page opened a JavaScript dialog"
        );
    }

    /// The page built everything with DOM calls: nothing ever parsed a string as markup.
    fn assert_no_markup_written(&self) {
        assert_eq!(
            self.eval("Array.isArray(window.__markupWrites) ? window.__markupWrites.length : -1"),
            Value::from(0),
            "markup written: {}",
            self.text("JSON.stringify(window.__markupWrites)")
        );
    }

    /// The full page as a PNG at `path`: the window grows to the page's height first.
    fn screenshot(&self, path: &Path) {
        let size = |expression: &str| self.eval(expression).as_f64().unwrap_or(0.0);
        for _ in 0..3 {
            let page = size("document.documentElement.scrollHeight");
            let viewport = size("window.innerHeight");
            if viewport >= page {
                break;
            }
            // The window's height includes what a headed browser would draw around the page.
            let chrome = size("window.outerHeight - window.innerHeight").max(0.0);
            self.tab
                .set_bounds(Bounds::Normal {
                    left: None,
                    top: None,
                    width: Some(f64::from(WIDTH)),
                    height: Some((page + chrome).ceil()),
                })
                .unwrap();
        }
        self.eval("window.scrollTo({top: 0, left: 0, behavior: 'instant'})");
        let png = self
            .tab
            .capture_screenshot(
                headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption::Png,
                None,
                None,
                true,
            )
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// What a failed wait prints: the texts a person would be looking at.
    fn summary(&self) -> String {
        self.text(
            "JSON.stringify({form_error: document.querySelector('#form-error')?.textContent, \
             detail_error: document.querySelector('#detail-error')?.textContent, \
             jobs: [...document.querySelectorAll('#job-list li')].map(l => l.textContent), \
             chart: document.querySelector('#chart')?.dataset.state, \
             chart_error: document.querySelector('#chart-error')?.textContent, \
             plan: document.querySelector('#plan')?.dataset.state, \
             plan_text: document.querySelector('#plan-body')?.textContent, \
             detail: document.querySelector('#detail-body')?.textContent, \
             auth: !document.querySelector('#auth')?.hidden})",
        )
    }

    /// Fills the form, submits it, and answers the id of the job the page opened.
    fn submit_job(&self, symbols: &str, timeframe: &str, from: &str, to: &str) -> String {
        self.type_into("#f-symbols", symbols);
        self.set_value("#f-timeframe", timeframe);
        self.set_value("#f-from", from);
        self.set_value("#f-to", to);
        self.submit_form()
    }

    /// Submits the form as it is, and answers the id of the job the page opened.
    fn submit_form(&self) -> String {
        self.eval("document.querySelector('#job-detail').dataset.jobId = ''");
        self.click("#f-submit");
        let id = self.wait_for(
            "the submitted job to open",
            "document.querySelector('#job-detail').dataset.jobId",
        );
        id.as_str().unwrap().to_owned()
    }

    /// Evaluates an expression that answers a JSON text, and parses it.
    fn json(&self, expression: &str) -> Value {
        let text = self.text(expression);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{expression}: {e}: {text}"))
    }

    /// Calls the API itself from the page: (status, JSON body; null when there is none).
    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u64, Value) {
        let answer = self.json(&format!(
            "(async () => {{
                const body = {};
                const r = await fetch({}, {{
                    method: {}, cache: 'no-store',
                    headers: body === null ? {{}} : {{'Content-Type': 'application/json'}},
                    body: body === null ? undefined : body,
                }});
                const text = await r.text();
                return JSON.stringify({{status: r.status, body: text ? JSON.parse(text) : null}});
            }})()",
            body.map_or_else(|| "null".to_owned(), |b| js_string(&b.to_string())),
            js_string(path),
            js_string(method),
        ));
        (answer["status"].as_u64().unwrap(), answer["body"].clone())
    }

    /// Waits until the API answers the job in `status` (its status answers may lag a moment
    /// behind: a short-lived cache), and answers that status body.
    fn wait_for_api_status(&self, id: &str, status: &str) -> Value {
        let body = self.wait_for(
            &format!("the API to answer the job {status}"),
            &format!(
                "(async () => {{
                    const body = await (await fetch('/api/v1/backfill/status/{id}', {{cache: 'no-store'}})).json();
                    return body.job.status === '{status}' ? JSON.stringify(body) : null;
                }})()"
            ),
        );
        serde_json::from_str(body.as_str().unwrap()).unwrap()
    }

    /// Asks the API itself for the plan of `request`, from the page: (status, body).
    fn api_plan(&self, request: &Value) -> (u64, Value) {
        self.api("POST", "/api/v1/backfill/plan", Some(request))
    }

    /// Waits until the plan preview answers `request` (debounced after the form changed), and
    /// answers its state: `ready` or `error`.
    fn wait_for_plan(&self, request: &Value) -> String {
        let found = Wait::new(WAIT, Duration::from_millis(100)).until(|| {
            let shown = self.json(
                "(() => {
                    const p = document.querySelector('#plan');
                    const done = p.dataset.state === 'ready' || p.dataset.state === 'error';
                    return JSON.stringify(done && p.dataset.request
                        ? {state: p.dataset.state, request: JSON.parse(p.dataset.request)}
                        : null);
                })()",
            );
            (shown["request"] == *request).then(|| shown["state"].as_str().unwrap().to_owned())
        });
        found.unwrap_or_else(|_| {
            panic!(
                "timed out waiting for the plan of {request}; shown: {}; page: {}",
                self.text("document.querySelector('#plan').dataset.request"),
                self.summary()
            )
        })
    }

    /// The preview's table is the API's plan: every source in its order, its calls and bytes,
    /// `chosen` with the reason for the job's source, `unavailable` with the reason for those
    /// that cannot serve it.
    fn assert_plan_shows(&self, plan: &Value) {
        let rows = self.json(
            "JSON.stringify([...document.querySelectorAll('#plan tr.plan-row')].map(r => ({
                source: r.dataset.source,
                state: r.dataset.state,
                calls: Number(r.dataset.calls),
                bytes: Number(r.dataset.bytes),
                calls_text: r.querySelector('.plan-calls').textContent,
                why: document.querySelector(`#plan tr[data-why=\"${r.dataset.source}\"] .plan-why-text`)?.textContent || null,
                pill: document.querySelector(`#plan tr[data-why=\"${r.dataset.source}\"] .plan-pill`)?.textContent ?? null,
            })))",
        );
        let spec = &plan["spec"];
        let costs = plan["costs"].as_array().unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), costs.len(), "{rows:?}");
        for (row, cost) in rows.iter().zip(costs) {
            let source = cost["source"].as_str().unwrap();
            assert_eq!(row["source"], source);
            assert_eq!(row["calls"], cost["calls"], "{source}");
            assert_eq!(row["bytes"], cost["estimated_bytes"], "{source}");
            let (state, why) = if spec["source"] == source {
                ("chosen", spec["source_reason"].clone())
            } else if cost["unavailable"].is_string() {
                ("unavailable", cost["unavailable"].clone())
            } else {
                ("available", Value::Null)
            };
            assert_eq!(row["state"], state, "{source}");
            assert_eq!(row["why"], why, "{source}");
            if state != "available" {
                assert_eq!(row["pill"], state, "{source}");
            }
            let calls_text = row["calls_text"].as_str().unwrap();
            if state == "unavailable" && cost["calls"] == 0 {
                assert_eq!(calls_text, "—", "{source}");
            } else {
                let unit = if source == "flatfiles" {
                    "download"
                } else {
                    "request"
                };
                assert!(
                    calls_text.starts_with(&en_us(cost["calls"].as_u64().unwrap()))
                        && calls_text.contains(unit),
                    "{source}: {calls_text}"
                );
            }
        }
        let unit = if spec["source"] == "rest" {
            "symbol"
        } else {
            "day"
        };
        let summary = self.text("document.querySelector('#plan .plan-summary').textContent");
        assert!(
            summary.starts_with(&format!("{} {unit}", plan["tasks"])),
            "{summary}"
        );
        assert_eq!(
            self.text("document.querySelector('#plan').dataset.source"),
            spec["source"].as_str().unwrap()
        );
    }

    /// The job view's Cancel and Retry buttons are enabled exactly as given (a disabled one says
    /// why in its title).
    fn assert_job_actions(&self, cancel: bool, retry: bool) {
        for (id, enabled) in [("d-cancel", cancel), ("d-retry", retry)] {
            let button = format!("document.querySelector('#{id}')");
            assert_eq!(
                self.eval(&format!("{button}.disabled")),
                Value::Bool(!enabled),
                "#{id}; page: {}",
                self.summary()
            );
            let title = self.text(&format!("{button}.title"));
            assert_eq!(title.is_empty(), enabled, "#{id}: {title}");
        }
    }

    /// Waits until the job view shows its job in `status` with Cancel and Retry enabled exactly
    /// as given.
    fn wait_for_job_actions(&self, status: &str, cancel: bool, retry: bool) {
        self.wait_for(
            &format!("a {status} job's buttons"),
            &format!(
                "document.querySelector('#job-detail').dataset.status === '{status}' && \
                 document.querySelector('#d-cancel').disabled === {} && \
                 document.querySelector('#d-retry').disabled === {}",
                !cancel, !retry
            ),
        );
        self.assert_job_actions(cancel, retry);
    }

    /// Charts a stored series from the chart's form and waits until it is drawn.
    fn show_chart(&self, symbol: &str, timeframe: &str, from: &str, to: &str, hours: &str) {
        self.eval("document.querySelector('#chart').dataset.state = 'idle'");
        self.type_into("#c-symbol", symbol);
        self.set_value("#c-timeframe", timeframe);
        self.set_value("#c-from", from);
        self.set_value("#c-to", to);
        self.set_value("#c-hours", hours);
        self.click("#c-submit");
        self.wait_for(
            "the chart",
            "document.querySelector('#chart').dataset.state === 'ready'",
        );
    }

    /// Waits until the job's progress bar in the list reaches 100 %, fed by its event stream.
    fn wait_until_done(&self, id: &str) {
        let row = format!("document.querySelector('#job-list li[data-job-id=\"{id}\"]')");
        self.wait_for(
            "the job's progress bar to reach 100 %",
            &format!("{row}?.querySelector('[role=progressbar]').getAttribute('aria-valuenow') === '100'"),
        );
        // A symbol's bar reaches its end a moment before the job settles: wait for that too.
        self.wait_for(
            "the job to be shown as succeeded",
            &format!("{row}?.dataset.status === 'succeeded'"),
        );
        assert_eq!(
            self.text(&format!("{row}.querySelector('.bar-label').textContent")),
            "100 %"
        );
        self.wait_for(
            "the stream's done event",
            &format!("{row}.dataset.streamDone === 'true'"),
        );
    }
}

/// An integer as the page prints it with `--lang=en-US`: `1,234`.
fn en_us(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A JavaScript string literal.
fn js_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A week ending today, as the form's dates.
fn last_week() -> (String, String) {
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Days::new(7);
    (from.to_string(), today.to_string())
}

fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name)
}

#[test]
fn dashboard_runs_a_backfill_charts_it_and_escapes_what_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(dir.path(), &[], &["--demo"]);
    let page = Session::open(&server.url("/"));

    // The page says its data is simulated.
    page.wait_for(
        "the simulated-data banner",
        "!document.querySelector('#demo-banner').hidden",
    );
    assert!(page
        .text("document.querySelector('#demo-banner').textContent")
        .contains("Simulated data"));
    assert_eq!(
        page.text("document.querySelector('#version').textContent"),
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );

    // A job submitted through the form runs to 100 %.
    let (from, to) = last_week();
    let id = page.submit_job("AAPL, X:BTCUSD", "1h", &from, &to);
    page.wait_until_done(&id);
    page.wait_for(
        "the job's symbols",
        "document.querySelectorAll('#detail-body tr[data-status=succeeded]').length === 2",
    );
    assert_eq!(
        page.text(
            "[...document.querySelectorAll('#detail-body tbody th')].map(t => t.textContent).join(',')"
        ),
        "AAPL,X:BTCUSD"
    );

    // The chart of one of its symbols draws every stored candle of the query.
    page.click("#detail-body button[data-symbol='X:BTCUSD']");
    page.wait_for(
        "the chart",
        "document.querySelector('#chart').dataset.state === 'ready'",
    );
    let drawn = page
        .eval("document.querySelectorAll('#chart svg g.candle').length")
        .as_u64()
        .unwrap();
    // The same query straight from the API, following its cursor in small pages.
    let stored = page
        .eval(
            "(async () => {
                const q = new URLSearchParams({
                    timeframe: document.querySelector('#c-timeframe').value,
                    from: document.querySelector('#c-from').value,
                    to: document.querySelector('#c-to').value,
                    adjusted: String(document.querySelector('#c-adjusted').checked),
                    limit: '50',
                });
                const symbol = document.querySelector('#c-symbol').value;
                let count = 0;
                let cursor = null;
                do {
                    if (cursor) q.set('cursor', cursor);
                    const page = await (await fetch(`/api/v1/candles/${encodeURIComponent(symbol)}?${q}`)).json();
                    count += page.candles.length;
                    cursor = page.next_cursor;
                } while (cursor);
                return count;
            })()",
        )
        .as_u64()
        .unwrap();
    assert!(drawn > 0, "no candle drawn");
    assert_eq!(drawn, stored, "candles drawn vs stored");
    assert!(
        page.eval("document.querySelectorAll('#chart svg text.tick').length")
            .as_u64()
            .unwrap()
            >= 4,
        "the chart has no axis labels"
    );
    page.screenshot(&screenshot_path("dashboard.png"));

    // A job that succeeded can be neither cancelled nor retried: both buttons say why not.
    page.wait_for_job_actions("succeeded", false, false);

    // Markup typed as a symbol comes back as a validation error, shown as text.
    page.type_into("#f-symbols", XSS);
    page.click("#f-submit");
    page.wait_for(
        "the validation error",
        "!document.querySelector('#form-error').hidden",
    );
    let error = page.text("document.querySelector('#form-error').textContent");
    assert!(error.contains(XSS), "{error}");
    assert!(error.contains("invalid_symbol"), "{error}");
    assert_eq!(
        page.text("document.querySelector('#form-error').dataset.code"),
        "invalid_symbol"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#form-error img, #form-error *[onerror]').length"),
        Value::from(0)
    );
    assert_eq!(
        page.eval("[...document.images].filter(i => i.getAttribute('src') === 'x').length"),
        Value::from(0)
    );
    page.assert_no_dialog();
    page.assert_no_markup_written();
    page.screenshot(&screenshot_path("dashboard-validation.png"));
    server.terminate();
}

#[test]
fn dashboard_asks_for_the_api_token_and_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = "e2e-dashboard-token";
    let server = ServeProcess::spawn(dir.path(), &[("BACKFILL_API_TOKEN", token)], &["--demo"]);
    let page = Session::open(&server.url("/"));

    page.wait_for("the token form", "!document.querySelector('#auth').hidden");
    page.type_into("#auth-token", "not-the-token");
    page.click("#auth-form button[type=submit]");
    let refused = page.wait_for(
        "the refusal",
        "!document.querySelector('#auth-error').hidden && document.querySelector('#auth-error').textContent",
    );
    assert!(refused.as_str().unwrap().contains("refused"), "{refused}");

    page.type_into("#auth-token", token);
    page.click("#auth-form button[type=submit]");
    page.wait_for(
        "the dashboard",
        "document.querySelector('#auth').hidden && !document.querySelector('#demo-banner').hidden",
    );
    assert_eq!(
        page.text("sessionStorage.getItem('backfill.apiToken')"),
        token
    );

    // Every call carries the token, the progress stream's included.
    let (from, to) = last_week();
    let id = page.submit_job("MSFT", "1d", &from, &to);
    page.wait_until_done(&id);
    assert!(page.eval("document.querySelector('#auth').hidden") == Value::Bool(true));
    server.terminate();
}

/// Thirty US stocks: the rest source needs a request each, the bulk sources one per weekday.
const MANY_STOCKS: &str = "AAPL, MSFT, AMZN, GOOGL, META, NVDA, TSLA, BRK.B, JPM, V, \
     JNJ, WMT, PG, MA, HD, XOM, CVX, KO, PEP, ABBV, MRK, COST, AVGO, ADBE, CSCO, CRM, NFLX, \
     INTC, AMD, ORCL";

#[test]
fn dashboard_previews_what_each_source_would_cost_and_which_one_serves_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(dir.path(), &[], &["--demo"]);
    let page = Session::open(&server.url("/"));
    page.wait_for(
        "the simulated-data banner",
        "!document.querySelector('#demo-banner').hidden",
    );
    assert_eq!(
        page.text("document.querySelector('#plan').dataset.state"),
        "idle"
    );
    assert_eq!(
        page.text("document.querySelector('#plan-body').getAttribute('aria-live')"),
        "polite"
    );

    // Many symbols of day bars, auto: one grouped request per weekday beats one per symbol.
    let symbols: Vec<&str> = MANY_STOCKS.split(',').map(str::trim).collect();
    page.type_into("#f-symbols", MANY_STOCKS);
    page.set_value("#f-timeframe", "1d");
    page.set_value("#f-from", "2024-03-04");
    page.set_value("#f-to", "2024-03-08");
    page.set_value("#f-source", "auto");
    let mut request = serde_json::json!({
        "symbols": symbols, "timeframe": "1d", "from": "2024-03-04", "to": "2024-03-08",
        "adjusted": true, "mode": "missing", "source": "auto",
    });
    assert_eq!(page.wait_for_plan(&request), "ready");
    let (status, plan) = page.api_plan(&request);
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["spec"]["source"], "grouped", "{plan}");
    page.assert_plan_shows(&plan);
    assert_eq!(
        page.text(
            "[...document.querySelectorAll('#plan tr.plan-row')].map(r => `${r.dataset.source}:${r.dataset.state}`).join(',')"
        ),
        "rest:available,flatfiles:unavailable,grouped:chosen"
    );
    // Flat Files hold raw prices only: the reason says so, and names the fix.
    let why = page
        .text("document.querySelector('#plan tr[data-why=flatfiles] .plan-why-text').textContent");
    assert!(why.contains("raw prices"), "{why}");
    page.screenshot(&screenshot_path("dashboard-plan.png"));

    // Raw prices: Flat Files could serve the job, if the server had S3 credentials (the demo
    // server has none unless its environment gives them; the API says which).
    page.click("#f-adjusted");
    request["adjusted"] = Value::Bool(false);
    assert_eq!(page.wait_for_plan(&request), "ready");
    let (status, plan) = page.api_plan(&request);
    assert_eq!(status, 200, "{plan}");
    page.assert_plan_shows(&plan);

    // Asking for Flat Files by name: what the API refuses is shown in the preview as text.
    page.set_value("#f-source", "flatfiles");
    request["source"] = Value::from("flatfiles");
    let state = page.wait_for_plan(&request);
    let (status, plan) = page.api_plan(&request);
    if status == 200 {
        assert_eq!(state, "ready");
        page.assert_plan_shows(&plan);
    } else {
        assert_eq!(status, 400, "{plan}");
        assert_eq!(state, "error");
        let code = plan["error"]["code"].as_str().unwrap();
        assert_eq!(code, "source_unavailable", "{plan}");
        assert_eq!(
            page.text("document.querySelector('#plan').dataset.code"),
            code
        );
        assert_eq!(
            page.text("document.querySelector('#plan .plan-error-message').textContent"),
            plan["error"]["message"].as_str().unwrap()
        );
        assert!(page
            .text("document.querySelector('#plan .plan-error').textContent")
            .contains(&format!("400 {code}")));
    }

    // The whole market: the symbols field is cleared and disabled, the default source is auto,
    // and the rest source says why it cannot serve it.
    page.click("#f-all");
    page.set_value("#f-source", "");
    assert_eq!(
        page.eval("document.querySelector('#f-symbols').disabled"),
        Value::Bool(true)
    );
    assert_eq!(page.text("document.querySelector('#f-symbols').value"), "");
    let request = serde_json::json!({
        "universe": "all", "timeframe": "1d", "from": "2024-03-04", "to": "2024-03-08",
        "adjusted": false, "mode": "missing",
    });
    assert_eq!(page.wait_for_plan(&request), "ready");
    let (status, plan) = page.api_plan(&request);
    assert_eq!(status, 200, "{plan}");
    page.assert_plan_shows(&plan);
    assert_eq!(
        page.text("document.querySelector('#plan tr[data-source=rest]').dataset.state"),
        "unavailable"
    );
    assert!(page
        .text("document.querySelector('#plan .plan-summary').textContent")
        .contains("all tickers"));

    // Unticked, the symbols come back.
    page.click("#f-all");
    assert_eq!(
        page.eval("document.querySelector('#f-symbols').disabled"),
        Value::Bool(false)
    );
    assert_eq!(
        page.text("document.querySelector('#f-symbols').value"),
        MANY_STOCKS
    );

    // Markup typed as a symbol: the preview shows the refusal, as text.
    page.type_into("#f-symbols", XSS);
    let request = serde_json::json!({
        "symbols": [XSS], "timeframe": "1d", "from": "2024-03-04", "to": "2024-03-08",
        "adjusted": false, "mode": "missing",
    });
    assert_eq!(page.wait_for_plan(&request), "error");
    assert_eq!(
        page.text("document.querySelector('#plan').dataset.code"),
        "invalid_symbol"
    );
    assert!(page
        .text("document.querySelector('#plan-body').textContent")
        .contains(XSS));
    assert_eq!(
        page.eval("[...document.images].filter(i => i.getAttribute('src') === 'x').length"),
        Value::from(0)
    );
    // Plan errors stay in the preview: the form's alert is for submissions.
    assert_eq!(
        page.eval("document.querySelector('#form-error').hidden"),
        Value::Bool(true)
    );
    page.assert_no_dialog();
    page.assert_no_markup_written();
    server.terminate();
}

#[test]
fn dashboard_runs_a_whole_market_grouped_job_day_by_day() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(dir.path(), &[], &["--demo"]);
    let page = Session::open(&server.url("/"));
    page.wait_for(
        "the simulated-data banner",
        "!document.querySelector('#demo-banner').hidden",
    );

    // Friday to Tuesday over a weekend: three weekdays, so three tasks.
    page.click("#f-all");
    page.set_value("#f-timeframe", "1d");
    page.set_value("#f-from", "2023-12-29");
    page.set_value("#f-to", "2024-01-02");
    page.set_value("#f-source", "grouped");
    let request = serde_json::json!({
        "universe": "all", "timeframe": "1d", "from": "2023-12-29", "to": "2024-01-02",
        "adjusted": true, "mode": "missing", "source": "grouped",
    });
    assert_eq!(page.wait_for_plan(&request), "ready");
    assert_eq!(
        page.text("document.querySelector('#plan tr[data-source=grouped]').dataset.state"),
        "chosen"
    );
    let id = page.submit_form();
    let ok = page.text("document.querySelector('#form-ok').textContent");
    assert!(
        ok.ends_with("queued: all tickers, 3 days at 1d from grouped."),
        "{ok}"
    );

    // One row per weekday, keyed by its day, without a chart button.
    page.wait_for(
        "the job's days",
        "document.querySelectorAll('#detail-body tr[data-day]').length === 3",
    );
    assert_eq!(
        page.text("[...document.querySelectorAll('#detail-body tbody th')].map(t => t.textContent).join(',')"),
        "2023-12-29,2024-01-01,2024-01-02"
    );
    assert_eq!(
        page.text("document.querySelector('#detail-body thead th').textContent"),
        "Day"
    );
    // Mark the rows: the stream must update these very elements.
    page.eval(
        "document.querySelectorAll('#detail-body tr[data-day]').forEach(r => { r.__first = true; })",
    );

    let row = format!("document.querySelector('#job-list li[data-job-id=\"{id}\"]')");
    page.wait_for(
        "the job to end",
        &format!(
            "{row}?.dataset.streamDone === 'true' && \
             ['succeeded', 'completed_with_errors', 'failed', 'cancelled'].includes({row}.dataset.status)"
        ),
    );
    // The API's status answers may lag a moment behind the stream (a short-lived cache): read
    // it until it has the end too.
    let body = page.wait_for(
        "the API to answer the ended job",
        &format!(
            "(async () => {{
                const body = await (await fetch('/api/v1/backfill/status/{id}', {{cache: 'no-store'}})).json();
                return body.job.finished_at ? JSON.stringify(body) : null;
            }})()"
        ),
    );
    let body: Value = serde_json::from_str(body.as_str().unwrap()).unwrap();
    let job = &body["job"];
    let progress = &body["progress"];
    let tasks = body["tasks"].as_array().unwrap();
    assert_eq!(job["universe"], "all");
    assert_eq!(job["source"], "grouped");
    assert_eq!(tasks.len(), 3);

    // Every day's row shows its task as the API has it.
    let rows = page.json(
        "JSON.stringify([...document.querySelectorAll('#detail-body tr[data-day]')].map(r => ({
            day: r.dataset.day,
            status: r.dataset.status,
            same: r.__first === true,
            cells: [...r.querySelectorAll('td')].map(td => td.textContent),
            note_error: r.querySelector('.task-note').classList.contains('has-error'),
            buttons: r.querySelectorAll('button').length,
        })))",
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for (row, task) in rows.iter().zip(tasks) {
        let day = task["day"].as_str().unwrap();
        assert_eq!(row["day"], day);
        assert_eq!(row["status"], task["status"], "{day}: {body}");
        assert_eq!(row["same"], true, "{day}: the row was rebuilt, not updated");
        assert_eq!(row["buttons"], 0, "{day}");
        let cells: Vec<&str> = row["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        // Status, candles, requests, received, file, attempts, note.
        assert_eq!(
            cells[1],
            en_us(task["candles_stored"].as_u64().unwrap()),
            "{day}"
        );
        assert_eq!(cells[2], en_us(task["requests"].as_u64().unwrap()), "{day}");
        assert_eq!(cells[5], en_us(task["attempts"].as_u64().unwrap()), "{day}");
        let expected_note = match (task["status"].as_str(), task["note"].as_str()) {
            (Some("succeeded"), Some(note)) => note,
            _ => task["last_error"]
                .as_str()
                .or(task["note"].as_str())
                .unwrap_or("—"),
        };
        assert_eq!(cells[6], expected_note, "{day}");
    }

    // The simulator serves grouped daily: every weekday has the universe's bars (the demo
    // simulator has no holidays, so no day ends with a note), and no row shows an error.
    assert_eq!(job["status"], "succeeded", "{body}");
    for (row, task) in rows.iter().zip(tasks) {
        assert_eq!(task["status"], "succeeded", "{body}");
        assert!(task["candles_stored"].as_u64() > Some(0), "{body}");
        assert_eq!(row["note_error"], false, "{row}");
    }
    assert_eq!(
        page.text(&format!("{row}.querySelector('.bar-label').textContent")),
        "100 %"
    );

    // The job list says what the job covers, in days, and from which source.
    assert_eq!(
        page.text(&format!("{row}.querySelector('.job-symbols').textContent")),
        "all tickers"
    );
    assert_eq!(
        page.text(&format!("{row}.querySelector('.tag-source').textContent")),
        "grouped"
    );
    let counts = page.text(&format!("{row}.querySelector('.job-counts').textContent"));
    assert!(counts.starts_with("3/3 days"), "{counts}");
    assert!(!counts.contains("symbols"), "{counts}");

    // The detail names the source, why, and the upstream requests and bytes.
    assert_eq!(
        page.text("document.querySelector('#detail-body .detail-source .tag-source').textContent"),
        "grouped"
    );
    assert_eq!(
        page.text("document.querySelector('#detail-body .source-reason').textContent"),
        job["source_reason"].as_str().unwrap()
    );
    let stats = page.json(
        "JSON.stringify(Object.fromEntries([...document.querySelectorAll('#detail-body .stat')]\
         .map(s => [s.querySelector('dt').textContent, s.querySelector('dd').textContent])))",
    );
    assert_eq!(
        stats["Days done"],
        format!(
            "{} / {}",
            progress["symbols_done"], progress["symbols_total"]
        )
    );
    assert_eq!(
        stats["Requests"],
        en_us(progress["requests"].as_u64().unwrap())
    );
    assert!(
        stats["Received"].as_str().unwrap().ends_with('B'),
        "{stats}"
    );
    page.screenshot(&screenshot_path("dashboard-bulk.png"));
    page.assert_no_dialog();
    page.assert_no_markup_written();
    server.terminate();
}

/// Runs `backfill <args>` in `dir` (the demo's database there) and checks that it succeeded.
fn backfill_ok(dir: &Path, args: &[&str]) {
    let out = crate::helpers::backfill(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        crate::helpers::stderr(&out)
    );
}

/// The New York date of an RFC 3339 instant.
fn ny_date(ts: &str) -> String {
    let t: chrono::DateTime<chrono::Utc> = ts.parse().unwrap();
    t.with_timezone(&chrono_tz::America::New_York)
        .date_naive()
        .to_string()
}

#[test]
fn dashboard_lists_schedules_universes_and_the_quota_and_pauses_a_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(
        dir.path(),
        &[("POLYGON_REQUESTS_PER_MINUTE", "600")],
        &["--demo"],
    );
    let page = Session::open(&server.url("/"));
    page.wait_for(
        "the simulated-data banner",
        "!document.querySelector('#demo-banner').hidden",
    );
    page.wait_for(
        "the empty schedule list",
        "!document.querySelector('#schedules-empty').hidden",
    );

    // A universe, a schedule of it firing every second, and one of two symbols after the close.
    let (status, universe) = page.api(
        "PUT",
        "/api/v1/universes/tech",
        Some(&serde_json::json!({"symbols": ["AAPL", "MSFT", "NVDA"]})),
    );
    assert_eq!(status, 200, "{universe}");
    let (status, created) = page.api(
        "POST",
        "/api/v1/schedules",
        Some(&serde_json::json!({
            "name": "tech-daily", "universe": "tech", "timeframes": ["1d"],
            "trigger": "* * * * * *", "lookback_days": 1,
        })),
    );
    assert_eq!(status, 201, "{created}");
    let (status, nightly) = page.api(
        "POST",
        "/api/v1/schedules",
        Some(&serde_json::json!({
            "name": "nightly", "symbols": ["X:BTCUSD", "C:EURUSD"], "timeframes": ["1h", "1d"],
            "trigger": "after_close+30m",
        })),
    );
    assert_eq!(status, 201, "{nightly}");

    // The page shows them (it refreshes by itself; the button does it at once).
    page.click("#schedules-refresh");
    let row = |name: &str| {
        format!("document.querySelector('#schedule-list tr[data-schedule=\"{name}\"]')")
    };
    let cell = |name: &str, class: &str| {
        page.text(&format!(
            "{}.querySelector('.{class}').textContent",
            row(name)
        ))
    };
    page.wait_for(
        "the schedules",
        &format!("!!({} && {})", row("tech-daily"), row("nightly")),
    );
    assert_eq!(
        page.text("[...document.querySelectorAll('#schedule-list tr')].map(r => r.dataset.schedule).join(',')"),
        "nightly,tech-daily"
    );
    assert_eq!(cell("tech-daily", "schedule-covers"), "universe tech");
    assert_eq!(cell("tech-daily", "schedule-timeframes"), "1d");
    assert_eq!(cell("tech-daily", "schedule-trigger"), "* * * * * *");
    assert_eq!(cell("tech-daily", "schedule-state"), "active");
    assert_eq!(cell("nightly", "schedule-covers"), "X:BTCUSD, C:EURUSD");
    assert_eq!(cell("nightly", "schedule-timeframes"), "1h, 1d");
    assert_eq!(cell("nightly", "schedule-trigger"), "after_close+30m");
    assert_eq!(cell("nightly", "schedule-run"), "never");
    // The next due time is the API's.
    let (_, nightly) = page.api("GET", "/api/v1/schedules/nightly", None);
    assert_eq!(
        page.text(&format!(
            "{}.querySelector('.next-time').dataset.at",
            row("nightly")
        )),
        nightly["next_due_at"].as_str().unwrap()
    );

    // The every-second schedule runs: its last run links its job, which opens in the job view.
    let link = page.wait_for(
        "the schedule's first run",
        &format!(
            "{}?.querySelector('.schedule-run a.job-link')?.dataset.jobId",
            row("tech-daily")
        ),
    );
    assert!(link.as_str().is_some(), "{link}");
    // Read the link's job and click it in one step: the every-second schedule keeps adding runs,
    // and the list may show a newer one between a read and a separate click.
    let clicked = page.text(&format!(
        "(() => {{ const a = {}.querySelector('.schedule-run a.job-link'); a.click(); return a.dataset.jobId; }})()",
        row("tech-daily")
    ));
    let job_id = clicked;
    page.wait_for(
        "the run's job to open",
        &format!("document.querySelector('#job-detail').dataset.jobId === '{job_id}'"),
    );
    let (status, job) = page.api("GET", &format!("/api/v1/backfill/status/{job_id}"), None);
    assert_eq!(status, 200, "{job}");
    assert_eq!(
        job["job"]["symbols"],
        serde_json::json!(["AAPL", "MSFT", "NVDA"])
    );
    assert_eq!(job["job"]["timeframe"], "1d");

    // Universes: name, size, source, refreshed at.
    page.wait_for(
        "the universe",
        "!!document.querySelector('#universe-list tr[data-universe=tech]')",
    );
    let cells = page.json(
        "JSON.stringify([...document.querySelectorAll('#universe-list tr[data-universe=tech] > *')].map(c => c.textContent))",
    );
    assert_eq!(cells[0], "tech");
    assert_eq!(cells[1], "3");
    assert_eq!(cells[2], universe["origin"]);
    assert!(!cells[3].as_str().unwrap().is_empty(), "{cells}");

    // The quota meter shows the server's limit.
    let (status, quota) = page.api("GET", "/api/v1/quota", None);
    assert_eq!(status, 200, "{quota}");
    assert_eq!(quota["limit"], 600, "{quota}");
    page.wait_for(
        "the quota meter",
        "document.querySelector('#quota').dataset.state === 'ready'",
    );
    assert_eq!(
        page.text("document.querySelector('#quota').dataset.limit"),
        "600"
    );
    assert_eq!(
        page.text("document.querySelector('#quota').dataset.scope"),
        quota["scope"].as_str().unwrap()
    );
    assert_eq!(
        page.text("document.querySelector('#quota [role=meter]').getAttribute('aria-valuemax')"),
        "600"
    );
    let used = page.text("document.querySelector('#quota .quota-use').textContent");
    assert!(used.ends_with(" of 600"), "{used}");
    page.screenshot(&screenshot_path("dashboard-schedules.png"));

    // Pause from the page: the API reports it paused, and so does the page; then resume.
    let press = |action: &str, paused: bool| {
        page.click(&format!(
            "#schedule-list tr[data-schedule=\"tech-daily\"] button[data-action={action}]"
        ));
        page.wait_for(
            &format!("the page to show the schedule after {action}"),
            &format!("{}.dataset.paused === '{paused}'", row("tech-daily")),
        );
        let (_, schedule) = page.api("GET", "/api/v1/schedules/tech-daily", None);
        assert_eq!(schedule["paused"], paused, "{schedule}");
        schedule
    };
    let paused = press("pause", true);
    assert_eq!(paused["next_due_at"], Value::Null, "{paused}");
    assert_eq!(cell("tech-daily", "schedule-state"), "paused");
    assert_eq!(cell("tech-daily", "schedule-next"), "paused");
    press("resume", false);
    assert_eq!(cell("tech-daily", "schedule-state"), "active");

    // Delete takes a second press on the same button.
    let delete = "#schedule-list tr[data-schedule=\"nightly\"] button[data-action=delete]";
    page.click(delete);
    // A refresh of the list in between keeps the button asking (and focused).
    let renders = page.text("document.querySelector('#schedule-list').dataset.renders");
    page.eval("document.querySelector('#schedules-refresh').click()");
    page.wait_for(
        "the list to be refreshed",
        &format!("document.querySelector('#schedule-list').dataset.renders !== '{renders}'"),
    );
    assert_eq!(
        page.text(&format!("document.querySelector('{delete}').textContent")),
        "Confirm delete"
    );
    assert_eq!(
        page.eval(&format!(
            "document.activeElement === document.querySelector('{delete}')"
        )),
        Value::Bool(true)
    );
    let (status, _) = page.api("GET", "/api/v1/schedules/nightly", None);
    assert_eq!(status, 200, "one press deletes nothing");
    page.click(delete);
    page.wait_for("the row to go", &format!("!{}", row("nightly")));
    let (status, _) = page.api("GET", "/api/v1/schedules/nightly", None);
    assert_eq!(status, 404);

    page.assert_no_dialog();
    page.assert_no_markup_written();
    server.terminate();
}

#[test]
fn dashboard_enables_cancel_and_retry_only_where_the_api_allows_them() {
    const KEY: &str = "e2e-dashboard-key";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(
            backfill_polygon_sim::Simulator::new(
                backfill_polygon_sim::SimConfig::new().api_key(KEY),
            )
            .spawn("127.0.0.1:0"),
        )
        .unwrap();
    // MSFT's bars are refused as outside the plan: a permanent failure of that symbol.
    sim.simulator().inject_on(
        "/ticker/MSFT/",
        vec![backfill_polygon_sim::Fault::Status(403); 4],
    );
    let polygon = [
        ("POLYGON_API_KEY", KEY),
        ("POLYGON_BASE_URL", sim.base_url()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(dir.path(), &polygon, &[]);
    let page = Session::open(&server.url("/"));
    let (from, to) = last_week();

    // Succeeded: neither.
    let id = page.submit_job("AAPL", "1d", &from, &to);
    page.wait_for(
        "the job to succeed",
        &format!("document.querySelector('#job-list li[data-job-id=\"{id}\"]')?.dataset.status === 'succeeded'"),
    );
    page.wait_for_job_actions("succeeded", false, false);
    assert!(page
        .text("document.querySelector('#d-retry').title")
        .contains("nothing to retry"),);

    // A symbol failed: Retry, and not Cancel.
    let id = page.submit_job("AAPL, MSFT", "1d", &from, &to);
    let row = format!("document.querySelector('#job-list li[data-job-id=\"{id}\"]')");
    page.wait_for(
        "the job to end with errors",
        &format!("{row}?.dataset.status === 'completed_with_errors'"),
    );
    page.wait_for_job_actions("completed_with_errors", false, true);
    assert_eq!(
        page.text("document.querySelector('#detail-body tr[data-symbol=MSFT]').dataset.status"),
        "failed"
    );
    let body = page.wait_for_api_status(&id, "completed_with_errors");
    let failed: Vec<&Value> = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{body}");
    assert_eq!(failed[0]["symbol"], "MSFT");
    page.screenshot(&screenshot_path("dashboard-job-actions.png"));
    server.terminate();

    // Queued (no worker takes it): Cancel, and not Retry; cancelled, its symbols can be retried.
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(dir.path(), &polygon, &["--no-worker"]);
    let page = Session::open(&server.url("/"));
    let id = page.submit_job("NVDA", "1d", &from, &to);
    page.wait_for_job_actions("queued", true, false);
    page.wait_for_api_status(&id, "queued");
    page.click("#d-cancel");
    page.wait_for_job_actions("cancelled", false, true);
    page.wait_for_api_status(&id, "cancelled");
    // Retried, it is queued again: Cancel, and not Retry.
    page.click("#d-retry");
    page.wait_for_job_actions("queued", true, false);
    page.wait_for_api_status(&id, "queued");
    page.assert_no_dialog();
    page.assert_no_markup_written();
    server.terminate();
    rt.block_on(sim.shutdown()).unwrap();
}

#[test]
fn dashboard_charts_a_long_minute_series_resampled_over_its_whole_range() {
    let dir = tempfile::tempdir().unwrap();
    // Two days of bitcoin minutes: 2,880 bars, more than the chart draws (2,000).
    let (from, to) = ("2024-03-04", "2024-03-05");
    backfill_ok(
        dir.path(),
        &[
            "run", "X:BTCUSD", "-t", "1m", "--from", from, "--to", to, "--demo",
        ],
    );
    let server = ServeProcess::spawn(dir.path(), &[], &["--demo"]);
    let page = Session::open(&server.url("/"));
    page.wait_for(
        "the simulated-data banner",
        "!document.querySelector('#demo-banner').hidden",
    );
    page.show_chart("X:BTCUSD", "1m", from, to, "extended");

    let (_, stored) = page.api(
        "GET",
        &format!("/api/v1/candles/X:BTCUSD/quality?timeframe=1m&from={from}&to={to}"),
        None,
    );
    assert!(stored["bars"].as_u64().unwrap() > 2000, "{stored}");
    // The finest timeframe whose bars fit: 5m (576 bars), built from the stored minutes.
    let chart = page.json("JSON.stringify(document.querySelector('#chart').dataset)");
    assert_eq!(chart["timeframe"], "5m", "{chart}");
    assert_eq!(chart["resampledFrom"], "1m", "{chart}");
    assert_eq!(
        page.text("document.querySelector('#chart svg text.chart-basis').textContent"),
        "5m bars resampled from 1m"
    );
    assert!(page
        .text("document.querySelector('#chart-meta').textContent")
        .contains("5m bars resampled from 1m"));
    // Every bar of the API's resampled series is drawn: the whole range, first to last minute.
    let (_, resampled) = page.api(
        "GET",
        &format!(
            "/api/v1/candles/X:BTCUSD?timeframe=5m&resample_from=1m&from={from}&to={to}&limit=50000"
        ),
        None,
    );
    let bars = resampled["candles"].as_array().unwrap();
    assert_eq!(resampled["next_cursor"], Value::Null);
    assert_eq!(chart["candles"], bars.len().to_string());
    assert_eq!(
        page.eval("document.querySelectorAll('#chart svg g.candle').length"),
        Value::from(bars.len())
    );
    let five_minutes = |ts: &Value| {
        let t: chrono::DateTime<chrono::Utc> = ts.as_str().unwrap().parse().unwrap();
        let secs = t.timestamp();
        chrono::DateTime::from_timestamp(secs - secs.rem_euclid(300), 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    assert_eq!(chart["first"], five_minutes(&stored["first_bar"]));
    assert_eq!(chart["last"], five_minutes(&stored["last_bar"]));
    assert_eq!(ny_date(chart["first"].as_str().unwrap()), from);
    assert_eq!(ny_date(chart["last"].as_str().unwrap()), to);
    page.screenshot(&screenshot_path("dashboard-resampled.png"));

    // Regular hours: the same minutes, only those of the 09:30-16:00 session.
    page.show_chart("X:BTCUSD", "1m", from, to, "regular");
    let chart = page.json("JSON.stringify(document.querySelector('#chart').dataset)");
    assert_eq!(chart["hours"], "regular", "{chart}");
    assert_eq!(
        page.text("document.querySelector('#chart svg text.chart-basis').textContent"),
        format!(
            "{} bars resampled from 1m, regular hours",
            chart["timeframe"].as_str().unwrap()
        )
    );
    let first: chrono::DateTime<chrono::Utc> = chart["first"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        first
            .with_timezone(&chrono_tz::America::New_York)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        format!("{from} 09:30")
    );
    page.assert_no_dialog();
    page.assert_no_markup_written();
    server.terminate();
}

#[test]
fn dashboard_shows_the_quality_report_of_the_charted_series() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = ("2024-03-04", "2024-03-08");
    // A ticker of the simulator's market: most are thin, with minutes that have no trade.
    let sim = backfill_polygon_sim::Simulator::new(backfill_polygon_sim::SimConfig::new());
    let symbol = sim.market_tickers()[0].clone();
    for tf in ["1m", "1d"] {
        backfill_ok(
            dir.path(),
            &[
                "run", &symbol, "-t", tf, "--from", from, "--to", to, "--demo",
            ],
        );
    }
    let server = ServeProcess::spawn(dir.path(), &[], &["--demo"]);
    let page = Session::open(&server.url("/"));
    page.wait_for(
        "the simulated-data banner",
        "!document.querySelector('#demo-banner').hidden",
    );
    page.show_chart(&symbol, "1m", from, to, "extended");
    page.wait_for(
        "the quality panel",
        "document.querySelector('#quality').dataset.state === 'ready'",
    );
    let (status, report) = page.api(
        "GET",
        &format!("/api/v1/candles/{symbol}/quality?timeframe=1m&adjusted=true&from={from}&to={to}"),
        None,
    );
    assert_eq!(status, 200, "{report}");
    let figures = page.json(
        "JSON.stringify(Object.fromEntries([...document.querySelectorAll('#quality .stat')]\
         .map(s => [s.dataset.q, s.querySelector('dd').textContent])))",
    );
    let n = |v: &Value| en_us(v.as_u64().unwrap_or_else(|| panic!("{v} in {report}")));
    let gaps = &report["session_gaps"];
    let agreement = &report["day_agreement"];
    assert_eq!(figures["bars"], n(&report["bars"]));
    assert_eq!(figures["covered_days"], n(&report["days"]["covered"]));
    assert_eq!(
        figures["days_without_bars"],
        n(&report["days"]["without_bars"])
    );
    assert_eq!(figures["regular_missing"], n(&gaps["regular_missing"]));
    assert_eq!(figures["extended_missing"], n(&gaps["extended_missing"]));
    assert_eq!(figures["ohlc"], n(&report["ohlc"]["violations"]));
    assert_eq!(figures["day_agreement"], n(&agreement["days_disagreeing"]));
    // The totals they are out of.
    let sub = |key: &str| {
        page.text(&format!(
            "document.querySelector('#quality .stat[data-q={key}] .stat-sub').textContent"
        ))
    };
    assert!(sub("regular_missing").contains(&n(&gaps["regular_minutes"])));
    assert!(sub("extended_missing").contains(&n(&gaps["extended_minutes"])));
    assert!(sub("day_agreement").contains(&n(&agreement["days_compared"])));
    assert!(sub("covered_days").starts_with(&n(&report["days"]["with_bars"])));
    // The simulator leaves minutes without trades: the worst days are listed as the API has them.
    let worst = gaps["worst_days"].as_array().unwrap();
    assert!(!worst.is_empty(), "{report}");
    let rows = page.json(
        "JSON.stringify([...document.querySelectorAll('#quality .worst-days tbody tr')]\
         .map(r => [...r.children].map(c => c.textContent)))",
    );
    let expected: Vec<Value> = worst
        .iter()
        .map(|d| {
            serde_json::json!([
                d["date"],
                n(&d["regular_missing"]),
                n(&d["extended_missing"])
            ])
        })
        .collect();
    assert_eq!(rows, Value::from(expected));
    page.screenshot(&screenshot_path("dashboard-quality.png"));
    page.assert_no_dialog();
    page.assert_no_markup_written();
    server.terminate();
}
