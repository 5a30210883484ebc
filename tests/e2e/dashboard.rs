//! The dashboard in a real browser: Debian's chromium, headless, driven over the DevTools
//! protocol (headless_chrome, with an explicit executable and nothing downloaded), against
//! `backfill serve --demo`. These tests fail when chromium is missing; `.ci/run` installs it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::types::Bounds;
use headless_chrome::util::Wait;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;

use crate::helpers::ServeProcess;

/// Debian's chromium.
const CHROMIUM: &str = "/usr/bin/chromium";
/// What a careless page would turn into markup.
const XSS: &str = "<img src=x onerror=alert(1)>";
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
             auth: !document.querySelector('#auth')?.hidden})",
        )
    }

    /// Fills the form, submits it, and answers the id of the job the page opened.
    fn submit_job(&self, symbols: &str, timeframe: &str, from: &str, to: &str) -> String {
        self.type_into("#f-symbols", symbols);
        self.set_value("#f-timeframe", timeframe);
        self.set_value("#f-from", from);
        self.set_value("#f-to", to);
        self.eval("document.querySelector('#job-detail').dataset.jobId = ''");
        self.click("#f-submit");
        let id = self.wait_for(
            "the submitted job to open",
            "document.querySelector('#job-detail').dataset.jobId",
        );
        id.as_str().unwrap().to_owned()
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

    // Cancelling a job that already ended is a 409, shown as text.
    page.click("#d-cancel");
    let refused = page.wait_for(
        "the cancel conflict",
        "!document.querySelector('#detail-error').hidden && document.querySelector('#detail-error').textContent",
    );
    assert!(
        refused
            .as_str()
            .unwrap()
            .starts_with("Could not cancel the job: "),
        "{refused}"
    );

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
