//! Test support: the real server (the `ticker` library) on port 0, as in the server's own tests
//! (`tests/support/mod.rs` at the repository root), with only what the bench's tests use.

use std::net::SocketAddr;
use std::time::Duration;

use ticker::app::Application;
use ticker::settings::Settings;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Long enough for anything that should happen to happen; only failing tests wait this long.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Settings for tests: any free port, no drain window, a fast seeded feed and no per-client limits
/// (the bench opens many connections and polls hard from one address).
pub fn test_settings() -> Settings {
    let mut s = Settings::defaults().expect("the default settings are valid");
    s.server.port = 0;
    s.server.workers = 2;
    s.server.shutdown_grace_ms = ticker::settings::Millis::new(300);
    s.server.drain_ms = ticker::settings::Millis::new(0);
    s.feed.tick_interval_ms = ticker::settings::Millis::new(20);
    s.feed.seed = Some(7);
    s.server.max_connections_per_ip = 0;
    s.server.connect_rate_per_ip = 0;
    s.ws.max_client_messages_per_sec = 0;
    s
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub server: JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    pub async fn spawn_with(settings: Settings) -> Self {
        let shutdown = CancellationToken::new();
        let app = Application::build(settings, shutdown.clone()).expect("the server binds");
        let addr = app.local_addr();
        let server = tokio::spawn(app.run_until_stopped());
        Self {
            addr,
            shutdown,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// One sample of the server's `/metrics`, e.g. `ticker_poll_requests_total{status="200"}`;
    /// 0 when the series is absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("a text body");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().expect("a numeric sample"))
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.server)
            .await
            .expect("the server stops in time")
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
    }
}
