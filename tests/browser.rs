//! The dashboard and the push-versus-polling demo in real headless Chromium, driven over
//! WebDriver (chromedriver) against the real server: rendering, live updates, adding and
//! removing symbols, reconnecting across a server restart without a duplicate connection, the
//! demo's figures, phone width, a clean console, the dashboard with auth on (a token on the
//! page; a sign-in message instead of a retry loop on a refused one), and the chart: full on
//! load from the server's history, without a hole after an outage. Screenshots go to a folder it
//! prints; `TICKER_DOC_IMAGES=1 cargo test --test browser` also refreshes the README's in
//! `docs/images`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `CHROMIUM` and `CHROMEDRIVER` pointing at
//! the binaries). Without them `cargo test` reports the tests as ignored, with the reason
//! (`tests/support/prereq.rs`), except under `CI=true`, where they fail: CI must run them.

mod support;

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::TestApp;
use support::cluster::{Cluster, Roles};
use support::link::Link;
use support::prereq::{self, CHROMEDRIVER, CHROMIUM, NATS_SERVER};

/// The screenshots the README shows, kept in `docs/images`.
const DOC_IMAGES: &[&str] = &["dashboard", "dashboard-narrow", "dashboard-stale", "demo"];

struct BrowserPaths {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// The browser and its driver; the trial checked that both are there.
fn browser() -> BrowserPaths {
    BrowserPaths {
        chromium: CHROMIUM.find().expect("checked by the trial"),
        chromedriver: CHROMEDRIVER.find().expect("checked by the trial"),
    }
}

fn main() {
    let trials = vec![
        prereq::trial(
            "dashboard_and_demo_in_headless_chromium",
            &[CHROMIUM, CHROMEDRIVER],
            dashboard_and_demo_in_headless_chromium,
        ),
        prereq::trial(
            "picker_finds_a_symbol_among_thousands",
            &[CHROMIUM, CHROMEDRIVER],
            picker_finds_a_symbol_among_thousands,
        ),
        prereq::trial(
            "chart_is_full_on_load_and_has_no_hole_after_an_outage",
            &[CHROMIUM, CHROMEDRIVER],
            chart_is_full_on_load_and_has_no_hole_after_an_outage,
        ),
        prereq::trial(
            "a_resume_with_a_gap_says_so_and_refills_the_chart",
            &[CHROMIUM, CHROMEDRIVER],
            a_resume_with_a_gap_says_so_and_refills_the_chart,
        ),
        prereq::trial(
            "dashboard_connects_with_auth_on",
            &[CHROMIUM, CHROMEDRIVER],
            dashboard_connects_with_auth_on,
        ),
        prereq::trial(
            "dashboard_asks_to_sign_in_and_does_not_retry",
            &[CHROMIUM, CHROMEDRIVER],
            dashboard_asks_to_sign_in_and_does_not_retry,
        ),
        prereq::trial(
            "dashboard_shows_a_stale_cluster_feed",
            &[CHROMIUM, CHROMEDRIVER, NATS_SERVER],
            dashboard_shows_a_stale_cluster_feed,
        ),
    ];
    prereq::run(trials)
}

/// chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(path: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + support::PATIENCE;
        while reqwest::get(format!("{}/status", driver.url))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }
}

struct Browser {
    client: Client,
    driver: Driver,
    shots: PathBuf,
    profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// chromedriver's children outlive it when a failing test skips `close`: end every process
    /// started with this test's own profile directory.
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.profile.path())
            .status();
    }
}

impl Browser {
    async fn launch(paths: &BrowserPaths, shots: PathBuf) -> Self {
        let driver = Driver::start(&paths.chromedriver).await;
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": paths.chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("a browser session starts");
        Self {
            client,
            driver,
            shots,
            profile,
        }
    }

    /// The page's WebSocket agreed on permessage-deflate (the page puts `extensions` on `body`).
    async fn assert_deflate(&self, page: &str) {
        let extensions = self
            .js("return document.body.dataset.extensions ?? ''")
            .await;
        assert!(
            extensions
                .as_str()
                .is_some_and(|e| e.starts_with("permessage-deflate")),
            "{page}: negotiated extensions: {extensions}"
        );
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {script}: {e}"))
    }

    async fn number(&self, script: &str) -> f64 {
        self.js(script).await.as_f64().unwrap_or(0.0)
    }

    /// Waits until the status bar shows connection state `state` (`live`, `reconnecting`, …).
    async fn wait_state(&self, what: &str, state: &str, within: Duration) {
        let condition = format!("document.querySelector('#status')?.dataset.state === '{state}'");
        self.wait_until(what, &condition, within).await;
    }

    /// Waits until `condition` (a JS expression) is true; on timeout saves a screenshot and fails.
    async fn wait_until(&self, what: &str, condition: &str, within: Duration) {
        let script = format!("return Boolean({condition});");
        let deadline = Instant::now() + within;
        while self.js(&script).await != Value::Bool(true) {
            if Instant::now() > deadline {
                self.screenshot(&format!("failed-{}", what.replace(' ', "-")))
                    .await;
                panic!("timed out waiting for: {what} ({condition})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), &png).expect("screenshot saved");
        if DOC_IMAGES.contains(&name) && std::env::var_os("TICKER_DOC_IMAGES").is_some() {
            let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/images/{name}.png"));
            std::fs::write(doc, &png).expect("docs/images is writable");
        }
    }

    /// Types `symbol` into the picker and presses Add.
    async fn add_symbol(&self, symbol: &str) {
        let input = self
            .client
            .find(Locator::Css("#symbol-input"))
            .await
            .unwrap();
        input.send_keys(symbol).await.unwrap();
        self.client
            .find(Locator::Css("#symbol-add"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn seq(&self, symbol: &str) -> f64 {
        self.number(&format!(
            "return Number(document.querySelector('[data-symbol=\"{symbol}\"]')?.dataset.seq ?? -1)"
        ))
        .await
    }

    /// Waits until the symbol has moved `moves` times more than the row shows now.
    async fn wait_for_moves(&self, symbol: &str, moves: u32) {
        let seq = self.seq(symbol).await;
        self.wait_until(
            &format!("{symbol} moves {moves} times"),
            &format!(
                "Number(document.querySelector('[data-symbol=\"{symbol}\"]')?.dataset.seq ?? -1) >= {seq} + {moves}"
            ),
            Duration::from_secs(60),
        )
        .await;
    }

    /// Waits until the symbol's row shows a newer seq than it does now.
    async fn wait_for_update(&self, symbol: &str) {
        let seq = self.seq(symbol).await;
        self.wait_until(
            &format!("{symbol} updates"),
            &format!(
                "Number(document.querySelector('[data-symbol=\"{symbol}\"]')?.dataset.seq ?? -1) > {seq}"
            ),
            support::PATIENCE,
        )
        .await;
    }

    async fn state(&self) -> String {
        let state = self
            .js("return document.querySelector('#status')?.dataset.state ?? ''")
            .await;
        state.as_str().unwrap_or_default().to_owned()
    }

    /// Console entries at warning level or above, through chromedriver's log endpoint.
    async fn console_problems(&self) -> Vec<String> {
        let session = self
            .client
            .session_id()
            .await
            .unwrap()
            .expect("a session id");
        let logs: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver.url))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("log entries as JSON");
        logs["value"]
            .as_array()
            .expect("a list of log entries")
            .iter()
            .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The whole user journey in one browser session (starting Chromium is the expensive part).
async fn dashboard_and_demo_in_headless_chromium() {
    let paths = browser();
    let shots = screenshot_dir();
    eprintln!("browser screenshots: {}", shots.display());
    let mut settings = support::test_settings();
    settings.feed.tick_interval_ms = ticker::settings::Millis::new(100);
    let app = TestApp::spawn_with(settings.clone()).await;
    let browser = Browser::launch(&paths, shots).await;
    let long = Duration::from_secs(20);

    // Prices render and change.
    browser.client.goto(&app.url("/")).await.unwrap();
    browser.wait_state("live", "live", long).await;
    browser
        .wait_until(
            "AAPL shows a price",
            r#"/^\d+\.\d\d$/.test(document.querySelector('[data-symbol="AAPL"] [data-field="price"]')?.textContent.trim())"#,
            long,
        )
        .await;
    browser.wait_for_update("AAPL").await;
    browser.wait_for_update("MSFT").await;
    // The README's picture: a chart with some history (and a clock on its axis).
    browser.wait_for_moves("AAPL", 100).await;
    browser.screenshot("dashboard").await;
    // Chromium offers permessage-deflate and the server's default (`shared`) accepts it: the
    // prices above arrived compressed.
    browser.assert_deflate("dashboard").await;

    // A symbol the server does not know is refused with a notice.
    browser.add_symbol("nope").await;
    browser
        .wait_until(
            "the NOPE notice",
            "document.querySelector('#notice').textContent === 'unknown symbol: NOPE'",
            long,
        )
        .await;

    // Adding a symbol subscribes to it and it starts updating; the stale notice goes.
    browser.add_symbol("intc").await;
    browser
        .wait_until(
            "INTC row",
            "document.querySelector('[data-symbol=\"INTC\"]')",
            long,
        )
        .await;
    browser.wait_for_update("INTC").await;
    let notice = browser
        .js("return document.querySelector('#notice').textContent")
        .await;
    assert_eq!(notice, "", "the NOPE notice is gone after a successful add");

    // Removing it stops it: the row goes and stays gone while others keep updating.
    browser
        .client
        .find(Locator::Css(
            "[data-symbol=\"INTC\"] button[data-action=\"remove\"]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_until(
            "INTC removed",
            "!document.querySelector('[data-symbol=\"INTC\"]')",
            long,
        )
        .await;
    for _ in 0..3 {
        browser.wait_for_update("AAPL").await;
    }
    assert_eq!(
        browser.seq("INTC").await,
        -1.0,
        "INTC came back after its removal"
    );
    assert_eq!(app.sessions.len(), 1, "one page, one connection");
    // The log endpoint hands out entries since its last call: check the console up to here.
    let problems = browser.console_problems().await;
    assert!(
        problems.is_empty(),
        "console errors before the restart: {problems:#?}"
    );

    // Stop the server, start it again on the same port: reconnecting, then live, one connection.
    let mut restarted = settings.clone();
    restarted.server.port = app.addr.port();
    app.stop().await;
    browser
        .wait_until(
            "reconnecting",
            "document.querySelector('#status')?.dataset.state === 'reconnecting'",
            long,
        )
        .await;
    let app = TestApp::spawn_with(restarted).await;
    browser.wait_state("live again", "live", long).await;
    browser.wait_for_update("AAPL").await;
    browser.wait_for_update("AAPL").await;
    assert_eq!(
        app.sessions.len(),
        1,
        "no duplicate connection after reconnecting"
    );
    // While the server was down Chromium itself logged the refused connections; only those.
    for message in browser.console_problems().await {
        assert!(
            message.contains("ERR_CONNECTION_REFUSED")
                || message.contains("WebSocket connection to"),
            "unexpected console message during the restart: {message}"
        );
    }
    assert_eq!(browser.state().await, "live");

    // The demo: at a 1 s poll interval, polling misses updates and shows older prices.
    browser.client.goto(&app.url("/demo")).await.unwrap();
    let metric = |panel: &str, name: &str| {
        format!(
            "Number(document.querySelector('#{panel} [data-metric=\"{name}\"]')?.dataset.value ?? NaN)"
        )
    };
    let poll_interval = browser
        .number("return Number(document.querySelector('#poll-interval').value)")
        .await;
    assert_eq!(poll_interval, 1000.0, "default poll interval");
    browser
        .wait_until(
            "demo figures",
            &format!(
                "{} >= 5 && {} > 0 && {} > {} && {} > 20",
                metric("poll-panel", "requests"),
                metric("poll-panel", "missed"),
                metric("poll-panel", "staleness-avg"),
                metric("push-panel", "staleness-avg"),
                metric("push-panel", "shown"),
            ),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        browser
            .number(&format!("return {}", metric("push-panel", "missed")))
            .await,
        0.0
    );
    // Chromium offers permessage-deflate; the demo counts the push side's bytes compressed.
    browser.assert_deflate("demo").await;
    let per_update = browser
        .number(&format!(
            "return {} / {}",
            metric("push-panel", "bytes"),
            metric("push-panel", "shown")
        ))
        .await;
    assert!(
        per_update > 0.0 && per_update < 150.0,
        "compressed push bytes per update shown: {per_update}"
    );
    browser.screenshot("demo").await;

    // Phone width: no horizontal scrolling.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.client.goto(&app.url("/")).await.unwrap();
    browser
        .wait_state("live at phone width", "live", long)
        .await;
    browser.wait_for_update("AAPL").await;
    let overflow = browser
        .number(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        )
        .await;
    assert!(
        overflow <= 0.0,
        "horizontal scroll at phone width: {overflow}px"
    );
    browser.screenshot("dashboard-narrow").await;

    // Since the restart, the console is clean.
    let problems = browser.console_problems().await;
    assert!(problems.is_empty(), "console errors: {problems:#?}");

    browser.client.clone().close().await.unwrap();
    app.stop().await;
}

/// On a freshly started server the chart is full within a second of the first load (its
/// generated past); after the page's connection is cut for 3 s, the page resumes from the last
/// seq it saw, and its 1 s bars have one for every second across the outage, with no update of
/// the charted symbol missing. The 1 min view shows the day, as candles too.
async fn chart_is_full_on_load_and_has_no_hole_after_an_outage() {
    let paths = browser();
    let mut settings = support::test_settings();
    settings.feed.tick_interval_ms = ticker::settings::Millis::new(100);
    let app = TestApp::spawn_with(settings).await;
    let link = Link::start(app.addr).await;
    let browser = Browser::launch(&paths, screenshot_dir()).await;
    let long = Duration::from_secs(20);
    let chart = |name: &str| format!("Number(document.querySelector('#chart').dataset.{name})");

    browser
        .client
        .goto(&format!("http://{}/", link.addr))
        .await
        .unwrap();
    browser
        .wait_until(
            "a full chart within 1 s",
            &format!("{} >= 250", chart("points")),
            Duration::from_secs(1),
        )
        .await;
    browser.wait_state("live", "live", long).await;
    browser.wait_for_update("AAPL").await;
    assert_eq!(
        browser
            .js("return document.querySelector('#chart-symbol').textContent")
            .await,
        json!("AAPL"),
        "the first symbol is charted"
    );

    let (cut_at, restored_at) = outage(&browser, &link, Duration::from_secs(3)).await;
    browser.screenshot("chart-after-outage").await;
    assert!(
        browser.number(&format!("return {}", chart("first"))).await <= cut_at - 60_000.0,
        "the window reaches back before the outage"
    );
    chart_has_every_bar_of(&browser, &app, "AAPL", (cut_at, restored_at)).await;
    assert_eq!(
        browser.number(&format!("return {}", chart("missed"))).await,
        0.0,
        "no seq of the charted symbol went missing"
    );
    assert!(browser.number(&format!("return {}", chart("points"))).await >= 250.0);
    let resume = browser
        .js("return document.querySelector('#status').dataset.resume")
        .await;
    assert_eq!(
        resume,
        json!("recovered"),
        "the resume recovered every symbol"
    );
    assert_eq!(app.sessions.len(), 1, "one page, one connection");

    // The day in 1 min bars, then as candles.
    let click = |selector: &'static str| {
        let client = browser.client.clone();
        async move {
            client
                .find(Locator::Css(selector))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
    };
    click("button[data-interval=\"1m\"]").await;
    browser
        .wait_until(
            "the day in minutes",
            &format!(
                "document.querySelector('#chart').dataset.interval === '1m' && {} >= 1000",
                chart("points")
            ),
            long,
        )
        .await;
    click("button[data-style=\"candles\"]").await;
    browser
        .wait_until(
            "candles",
            "document.querySelector('#chart').dataset.style === 'candles'",
            long,
        )
        .await;
    browser.screenshot("chart-1m-candles").await;
    click("button[data-interval=\"1s\"]").await;
    browser
        .wait_until(
            "1 s candles",
            &format!(
                "document.querySelector('#chart').dataset.interval === '1s' && {} >= 250",
                chart("points")
            ),
            long,
        )
        .await;
    browser.screenshot("chart-1s-candles").await;
    chart_scales_are_sane(&browser).await;

    browser.client.clone().close().await.unwrap();
    app.stop().await;
}

/// Cuts the page's connections for `length`, then waits until the page is live again and its
/// chart has bars from 2 s past the outage; returns when it began and ended (page clock, ms).
async fn outage(browser: &Browser, link: &Link, length: Duration) -> (f64, f64) {
    let long = Duration::from_secs(20);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cut_at = browser.number("return Date.now()").await;
    link.cut();
    browser
        .wait_state("reconnecting", "reconnecting", long)
        .await;
    tokio::time::sleep(length).await;
    link.restore();
    let restored_at = browser.number("return Date.now()").await;
    browser.wait_state("live again", "live", long).await;
    browser
        .wait_until(
            "bars past the outage",
            &format!(
                "Number(document.querySelector('#chart').dataset.last) >= {}",
                restored_at + 2000.0
            ),
            long,
        )
        .await;
    (cut_at, restored_at)
}

/// The chart (of `symbol`, 1 s bars) has a bar for every second the server has one for: a
/// second in which the feed, stalled on a busy machine, moved nothing has no bar anywhere.
async fn chart_has_every_bar_of(
    browser: &Browser,
    app: &TestApp,
    symbol: &str,
    outage: (f64, f64),
) {
    let holes = browser
        .number("return Number(document.querySelector('#chart').dataset.holes)")
        .await;
    assert!(holes <= 5.0, "{holes} holes in the last 5 minutes");
    let missing = browser
        .js("return document.querySelector('#chart').dataset.missing")
        .await;
    let history: Value = reqwest::get(app.url(&format!("/api/history/{symbol}?interval=1s")))
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("bars as JSON");
    let server_has: HashSet<u64> = history["bars"]
        .as_array()
        .expect("a list of bars")
        .iter()
        .filter_map(|bar| bar["t"].as_u64())
        .collect();
    let lost: Vec<u64> = missing
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(|t| t.parse().expect("bar times in ms"))
        .filter(|t| server_has.contains(t))
        .collect();
    assert!(
        lost.is_empty(),
        "bars the server has and the chart lacks: {lost:?} (outage from {} to {})",
        outage.0,
        outage.1
    );
}

/// A resume the server cannot serve (its ring keeps only a few updates) says so on the status
/// line, and the chart is filled from the server's history instead: no hole either.
async fn a_resume_with_a_gap_says_so_and_refills_the_chart() {
    let paths = browser();
    let mut settings = support::test_settings();
    settings.feed.tick_interval_ms = ticker::settings::Millis::new(100);
    settings.history.resume_updates = 5;
    let app = TestApp::spawn_with(settings).await;
    let link = Link::start(app.addr).await;
    let browser = Browser::launch(&paths, screenshot_dir()).await;
    let long = Duration::from_secs(20);
    browser
        .client
        .goto(&format!("http://{}/", link.addr))
        .await
        .unwrap();
    browser.wait_state("live", "live", long).await;
    browser.wait_for_update("AAPL").await;

    let outage = outage(&browser, &link, Duration::from_secs(3)).await;
    browser
        .wait_until(
            "the status tells",
            "document.querySelector('#status').dataset.resume === 'gap'",
            long,
        )
        .await;
    let text = browser
        .js("return document.querySelector('#status').textContent")
        .await;
    assert!(
        text.as_str()
            .unwrap_or_default()
            .contains("resumed with a gap"),
        "{text}"
    );
    browser.screenshot("dashboard-resumed-with-a-gap").await;
    assert!(
        browser
            .number("return Number(document.querySelector('#chart').dataset.missed)")
            .await
            > 0.0,
        "the page counted the updates it never got"
    );
    chart_has_every_bar_of(&browser, &app, "AAPL", outage).await;
    browser.client.clone().close().await.unwrap();
    app.stop().await;
}

/// The chart's axes in the states that used to blow them out, checked on the page's own module:
/// no bars, one bar, a flat series, and clock times as labels.
async fn chart_scales_are_sane(browser: &Browser) {
    let script = r#"
        const done = arguments[arguments.length - 1];
        import("/lib/chart-scales.js").then((s) => {
            const now = 1795508261;
            done({
                empty: s.timeWindow([], 1, 300, now),
                single: s.timeWindow([now - 10], 1, 300, now),
                flat: s.priceWindow([228.5, 228.5], [228.5, 228.5], 0),
                none: s.priceWindow([], [], 0),
                labels: s.timeLabels([now], 15),
                minutes: s.timeLabels([now], 3600),
                missing: s.missingBars([1, 2, 4, 7], 1, 0),
            });
        }, (e) => done({ error: String(e) }));
    "#;
    let got = browser
        .client
        .execute_async(script, Vec::new())
        .await
        .expect("the module loads");
    let range = |key: &str| {
        let r = got[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {got}"));
        (r[0].as_f64().unwrap(), r[1].as_f64().unwrap())
    };
    let now = 1_795_508_261.0;
    assert_eq!(
        range("empty"),
        (now - 300.0, now),
        "no bars: the last 5 minutes"
    );
    assert_eq!(
        range("single"),
        (now - 309.0, now - 9.0),
        "one bar: a normal window"
    );
    let (low, high) = range("flat");
    assert!(
        low < 228.5 && high > 228.5 && high - low < 1.0 && high - low >= 0.05,
        "a flat series gets a small range around its price: {low}..{high}"
    );
    assert_eq!(range("none"), (0.0, 1.0));
    let label = got["labels"][0].as_str().unwrap_or_default();
    assert!(
        label.len() == 8 && label.as_bytes()[2] == b':' && label.as_bytes()[5] == b':',
        "a clock time with seconds: {label}"
    );
    assert_eq!(
        got["minutes"][0].as_str().unwrap_or_default().len(),
        5,
        "{got}"
    );
    assert_eq!(got["missing"], json!([3, 5, 6]));
}

/// With 8,000 symbols (`welcome` counts them instead of listing them), typing in the picker
/// searches the server, and the symbol found can be added and shows live prices.
async fn picker_finds_a_symbol_among_thousands() {
    let paths = browser();
    let mut settings = support::test_settings();
    settings.feed.tick_interval_ms = ticker::settings::Millis::new(100);
    settings.feed.symbols = ticker::feed::generated::universe(8000, 5);
    let wanted = settings.feed.symbols[6000].clone();
    let app = TestApp::spawn_with(settings).await;
    let browser = Browser::launch(&paths, screenshot_dir()).await;
    let long = Duration::from_secs(20);
    browser.client.goto(&app.url("/")).await.unwrap();
    browser.wait_state("live", "live", long).await;
    let input = browser
        .client
        .find(Locator::Css("#symbol-input"))
        .await
        .unwrap();
    input
        .send_keys(&wanted.symbol.to_lowercase())
        .await
        .unwrap();
    browser
        .wait_until(
            "the picker offers it",
            &format!(
                "[...document.querySelectorAll('#known-symbols option')].some(o => o.value === '{}')",
                wanted.symbol
            ),
            long,
        )
        .await;
    browser.screenshot("picker-8000").await;
    browser
        .client
        .find(Locator::Css("#symbol-add"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for_update(&wanted.symbol).await;
    app.stop().await;
}

/// With auth on, the dashboard connects with the token given as `?token=` on its address, which
/// it then keeps for the tab (a reload without it stays live) and takes out of the address bar;
/// without one it asks for it, and the token typed in connects.
async fn dashboard_connects_with_auth_on() {
    const TOKEN: &str = "dashboard-token-0123456789";
    let paths = browser();
    let mut settings = support::test_settings();
    settings.feed.tick_interval_ms = ticker::settings::Millis::new(100);
    settings.auth.tokens = vec![ticker::settings::Secret::new(TOKEN)];
    let app = TestApp::spawn_with(settings).await;
    let browser = Browser::launch(&paths, screenshot_dir()).await;
    let long = Duration::from_secs(20);

    browser
        .client
        .goto(&app.url(&format!("/?token={TOKEN}")))
        .await
        .unwrap();
    browser.wait_state("live with ?token=", "live", long).await;
    browser.wait_for_update("AAPL").await;
    let address = browser.js("return location.href").await;
    assert!(
        !address.as_str().unwrap_or_default().contains(TOKEN),
        "the token left the address bar: {address}"
    );
    // The names come from /api/symbols, which needs the token too.
    browser
        .wait_until(
            "symbol names",
            "document.querySelector('[data-symbol=\"AAPL\"] [data-field=\"name\"]')?.textContent.length > 0",
            long,
        )
        .await;

    browser.client.refresh().await.unwrap();
    browser
        .wait_state("live after a reload", "live", long)
        .await;

    // A tab without the token: the page asks for it.
    browser.js("sessionStorage.clear(); return true").await;
    browser.client.goto(&app.url("/")).await.unwrap();
    browser
        .wait_until(
            "the token field",
            "!document.querySelector('#access').hidden",
            long,
        )
        .await;
    assert_ne!(browser.state().await, "live");
    browser.screenshot("dashboard-token").await;
    browser
        .client
        .find(Locator::Css("#token-input"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    browser
        .client
        .find(Locator::Css("#token-connect"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_state("live with the typed token", "live", long)
        .await;
    browser.wait_for_update("AAPL").await;
    assert!(
        browser
            .js("return document.querySelector('#access').hidden")
            .await
            .as_bool()
            .unwrap_or(false),
        "the field is gone once connected"
    );
    browser.client.clone().close().await.unwrap();
    app.stop().await;
}

/// With auth on and `auth.browser_refusal = "close"`, the dashboard without a token shows the
/// sign-in message with the server's reason and stops there: one refused upgrade, not a retry
/// loop. The connection module does the same for a bad token (4002), and still backs off and
/// retries after a shutdown's 1001.
async fn dashboard_asks_to_sign_in_and_does_not_retry() {
    let paths = browser();
    let mut settings = support::test_settings();
    settings.auth.hmac_secret = Some(ticker::settings::Secret::new(support::jwt::SECRET));
    settings.auth.browser_refusal = ticker::settings::BrowserRefusal::Close;
    let app = TestApp::spawn_with(settings).await;
    let browser = Browser::launch(&paths, screenshot_dir()).await;
    let long = Duration::from_secs(20);
    let refusals = |reason: &str| {
        let series = format!(r#"ticker_auth_refusals_total{{reason="{reason}"}}"#);
        let addr = app.addr;
        async move { support::metrics::metric(addr, &series).await }
    };

    browser.client.goto(&app.url("/")).await.unwrap();
    browser.wait_state("signed out", "signed-out", long).await;
    let text = browser
        .js("return document.querySelector('#status').textContent")
        .await;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("sign in again") && text.contains("token is required"),
        "{text}"
    );
    browser.screenshot("dashboard-signed-out").await;
    // Several backoff periods later (the dashboard's cap is 5 s), no further attempt: the
    // refusals so far are the upgrade's and the page's first API calls (symbols, history).
    let refused = refusals("missing").await;
    assert!(refused >= 1.0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(browser.state().await, "signed-out");
    assert_eq!(refusals("missing").await, refused, "no retry loop");

    // A bad token through the same client package: 4002, no retry.
    let url = app.ws_url("/ws?token=not-a-valid-token");
    browser
        .js(&format!(
            r#"import("/client/index.js").then(({{ TickerClient }}) => {{
                window.probe = {{ states: [] }};
                const c = new TickerClient({{ url: "{url}", poll: false }});
                c.on("state", ({{ state, stopped }}) =>
                    window.probe.states.push({{ state, code: stopped?.code ?? null }}));
                c.start();
            }}); return true;"#
        ))
        .await;
    browser
        .wait_until(
            "the probe stops",
            "window.probe?.states.some((s) => s.state === 'signed-out' && s.code === 4002)",
            long,
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(refusals("invalid").await, 1.0);
    let states = browser.js("return window.probe.states").await;
    assert!(
        !states.to_string().contains("reconnecting"),
        "no retry: {states}"
    );
    let advice = browser
        .js(
            r#"return import("/client/index.js").then(({ reconnectAdvice }) =>
                [4001, 4004, 1002, 1001, 1006, 1008, 4408, 4100].map(reconnectAdvice))"#,
        )
        .await;
    assert_eq!(
        advice,
        json!([
            "no", "no", "no", "backoff", "backoff", "backoff", "backoff", "now"
        ])
    );
    browser.client.clone().close().await.unwrap();
    app.stop().await;
}

/// On a cluster edge the dashboard tells the user when the feed goes stale (the broker is
/// gone, the WebSocket stays open) and shows live prices again when it comes back.
async fn dashboard_shows_a_stale_cluster_feed() {
    let paths = browser();
    let mut cluster = Cluster::start_with(1, Roles::seed("11")).await;
    let addr = cluster.addr(0);
    let browser = Browser::launch(&paths, screenshot_dir()).await;
    let long = Duration::from_secs(20);
    let state_is =
        |state: &str| format!("document.querySelector('#status')?.dataset.state === '{state}'");

    browser
        .client
        .goto(&format!("http://{addr}/"))
        .await
        .unwrap();
    browser.wait_until("live", &state_is("live"), long).await;
    browser.wait_for_update("AAPL").await;
    browser.wait_for_moves("AAPL", 60).await;

    cluster.nats.stop();
    browser.wait_until("stale", &state_is("stale"), long).await;
    // No quotes arrive while stale: the rate shown falls to zero once its window has passed.
    browser
        .wait_until(
            "no updates while stale",
            "document.querySelector('#updates-per-sec').dataset.value === '0'",
            long,
        )
        .await;
    let text = browser
        .js("return document.querySelector('#status').textContent")
        .await;
    assert!(
        text.as_str().unwrap_or_default().contains("stale"),
        "the status says so: {text}"
    );
    browser.screenshot("dashboard-stale").await;

    cluster.nats.restart();
    browser
        .wait_until("live again", &state_is("live"), long)
        .await;
    browser.wait_for_update("AAPL").await;
    browser.client.clone().close().await.unwrap();
}
