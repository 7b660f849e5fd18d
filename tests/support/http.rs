//! Asking any running server (in-process or a child process) over HTTP: the symbols it serves
//! (tests ask rather than assume the default config), and its health and readiness.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::PATIENCE;

/// How often the `wait_*` helpers ask again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// The symbols the server at `addr` lists (`GET /api/symbols`), in its order.
pub async fn symbols(addr: SocketAddr) -> Vec<String> {
    let infos: Vec<Value> = reqwest::get(format!("http://{addr}/api/symbols"))
        .await
        .expect("GET /api/symbols")
        .json()
        .await
        .expect("a JSON array of symbol infos");
    infos
        .iter()
        .map(|info| {
            info["symbol"]
                .as_str()
                .expect("each has a symbol")
                .to_owned()
        })
        .collect()
}

/// How many symbols the server at `addr` lists (`GET /api/symbols`).
pub async fn symbol_count(addr: SocketAddr) -> usize {
    symbols(addr).await.len()
}

/// The status of `GET path`, or why there was none (nothing listening yet, a timeout).
pub async fn status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("an HTTP client");
    client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// Polls `GET path` until it answers `wanted`; panics after `PATIENCE`.
pub async fn wait_status(addr: SocketAddr, path: &str, wanted: u16) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = status(addr, path).await;
        if got == Ok(wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never answered {wanted}: {got:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Waits until the server answers at all: `/healthz` 200 (an edge does while its feed is stale).
pub async fn wait_healthy(addr: SocketAddr) {
    wait_status(addr, "/healthz", 200).await;
}

/// Waits until the server takes traffic: `/readyz` 200 (an edge: it has a live feed).
pub async fn wait_ready(addr: SocketAddr) {
    wait_status(addr, "/readyz", 200).await;
}

/// Waits until the server says it takes no traffic: `/readyz` 503 (stale feed, shutting down).
pub async fn wait_unready(addr: SocketAddr) {
    wait_status(addr, "/readyz", 503).await;
}
