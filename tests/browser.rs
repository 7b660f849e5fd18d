//! The dashboard and the push-versus-polling demo in real headless Chromium, driven over
//! WebDriver (chromedriver) against the real server: rendering, live updates, adding and
//! removing symbols, reconnecting across a server restart without a duplicate connection, the
//! demo's figures, phone width, a clean console, and with auth on, a sign-in message instead of
//! a retry loop. Screenshots go to a folder it prints.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `CHROMIUM` and `CHROMEDRIVER` pointing at
//! the binaries). Without them `cargo test` reports the tests as ignored, with the reason
//! (`tests/support/prereq.rs`), except under `CI=true`, where they fail: CI must run them.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::TestApp;
use support::cluster::{Cluster, Roles};
use support::prereq::{self, CHROMEDRIVER, CHROMIUM, NATS_SERVER};

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
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("screenshot saved");
    }

    async fn seq(&self, symbol: &str) -> f64 {
        self.number(&format!(
            "return Number(document.querySelector('[data-symbol=\"{symbol}\"]')?.dataset.seq ?? -1)"
        ))
        .await
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
    browser.screenshot("dashboard").await;
    // Chromium offers permessage-deflate and the server's default (`shared`) accepts it: the
    // prices above arrived compressed.
    let extensions = browser
        .js("return document.body.dataset.extensions ?? ''")
        .await;
    assert!(
        extensions
            .as_str()
            .is_some_and(|e| e.starts_with("permessage-deflate")),
        "negotiated extensions: {extensions}"
    );

    // Adding a symbol subscribes to it and it starts updating.
    let input = browser
        .client
        .find(Locator::Css("#symbol-input"))
        .await
        .unwrap();
    input.send_keys("intc").await.unwrap();
    browser
        .client
        .find(Locator::Css("#symbol-add"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_until(
            "INTC row",
            "document.querySelector('[data-symbol=\"INTC\"]')",
            long,
        )
        .await;
    browser.wait_for_update("INTC").await;

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
    // Several backoff periods later (the dashboard's cap is 5 s), still one attempt.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(browser.state().await, "signed-out");
    assert_eq!(refusals("missing").await, 1.0);

    // A bad token through the same connection module: 4002, no retry.
    let url = app.ws_url("/ws?token=not-a-valid-token");
    browser
        .js(&format!(
            r#"import("/lib/connection.js").then(({{ Connection }}) => {{
                window.probe = {{ states: [] }};
                const c = new Connection({{
                    url: "{url}",
                    onMessage: () => {{}},
                    onState: (state, attempt, stopped) =>
                        window.probe.states.push({{ state, code: stopped?.code ?? null }}),
                }});
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
            r#"return import("/lib/connection.js").then(({ reconnectAdvice }) =>
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

    cluster.nats.stop();
    browser.wait_until("stale", &state_is("stale"), long).await;
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
