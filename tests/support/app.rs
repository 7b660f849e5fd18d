//! The server in-process on a free port (`TestApp`): built from `Settings`, stopped through
//! its shutdown token, with its live sessions counted server-side.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use ticker::app::Application;
use ticker::protocol::ServerMessage;
use ticker::settings::Settings;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::client::Client;
use super::raw::RawClient;
use super::settings::test_settings;
use super::{PATIENCE, http, metrics};

/// An upgrade the server refused: the HTTP status, headers and JSON error body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub headers: tokio_tungstenite::tungstenite::http::HeaderMap,
    pub body: Value,
}

impl Refused {
    /// The `Retry-After` header in seconds, if there is one.
    pub fn retry_after(&self) -> Option<u64> {
        let value = self.headers.get("retry-after")?;
        Some(
            value
                .to_str()
                .ok()?
                .parse()
                .expect("Retry-After in seconds"),
        )
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    /// The server's live WebSocket sessions, counted server-side.
    pub sessions: TaskTracker,
    pub server: JoinHandle<std::io::Result<()>>,
    /// The settings it was built with.
    pub settings: Settings,
}

impl TestApp {
    /// A server with `test_settings()`.
    pub async fn spawn() -> Self {
        Self::spawn_with(test_settings()).await
    }

    /// A server with these settings (start from `test_settings()` and change fields).
    pub async fn spawn_with(settings: Settings) -> Self {
        let shutdown = CancellationToken::new();
        let app = Application::build(settings.clone(), shutdown.clone()).expect("the server binds");
        let addr = app.local_addr();
        let sessions = app.sessions();
        let server = tokio::spawn(app.run_until_stopped());
        Self {
            addr,
            shutdown,
            sessions,
            server,
            settings,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// The symbols the server lists (`GET /api/symbols`), in its order.
    pub async fn symbols(&self) -> Vec<String> {
        http::symbols(self.addr).await
    }

    /// How many symbols the server lists (`GET /api/symbols`).
    pub async fn symbol_count(&self) -> usize {
        http::symbol_count(self.addr).await
    }

    /// Connects a well-behaved client and reads its `welcome`.
    pub async fn connect(&self, path: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(self.ws_url(path))
            .await
            .expect("the WebSocket upgrade succeeds");
        let mut client = Client::new(ws);
        match client.recv().await {
            ServerMessage::Welcome { .. } => client,
            other => panic!("expected welcome first, got {other:?}"),
        }
    }

    /// Connects with a `Sec-WebSocket-Protocol` offer; returns the client and the selected protocol.
    pub async fn connect_offering(&self, protocols: &str) -> (Client, Option<String>) {
        let mut request = self.ws_url("/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket upgrade succeeds");
        let selected = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_owned());
        (Client::new(ws), selected)
    }

    /// Upgrades with extra request headers: the client with its `welcome` read, or the refusal.
    pub async fn try_connect(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Client, Refused> {
        use tokio_tungstenite::tungstenite::{Error, http::HeaderName};
        let mut request = self.ws_url(path).into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => {
                let mut client = Client::new(ws);
                match client.recv().await {
                    ServerMessage::Welcome { .. } => Ok(client),
                    other => panic!("expected welcome first, got {other:?}"),
                }
            }
            Err(Error::Http(response)) => Err(Refused {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                body: response
                    .body()
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null),
            }),
            Err(e) => panic!("the upgrade failed without an HTTP answer: {e}"),
        }
    }

    pub async fn raw(&self, path: &str) -> RawClient {
        RawClient::connect(self.addr, path).await
    }

    /// A raw client whose upgrade request carries `headers` (lines ending in `\r\n`), and the
    /// 101's head.
    pub async fn raw_with(&self, path: &str, headers: &str) -> (RawClient, String) {
        RawClient::connect_with(self.addr, path, headers).await
    }

    /// The value of one series in `GET /metrics`, e.g. `ticker_connections_closed_total{code="1000"}`;
    /// 0 when the series has not appeared yet.
    pub async fn metric(&self, series: &str) -> f64 {
        metrics::metric(self.addr, series).await
    }

    /// Waits until the server holds no WebSocket session.
    pub async fn until_no_sessions(&self) {
        self.until_sessions(0).await;
    }

    /// Waits until the server holds exactly `n` WebSocket sessions.
    pub async fn until_sessions(&self, n: usize) {
        let started = Instant::now();
        while self.sessions.len() != n {
            assert!(
                started.elapsed() < PATIENCE,
                "{} sessions open, expected {n}",
                self.sessions.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Cancels the shutdown token (as SIGTERM would) and waits for the server to stop.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.server)
            .await
            .expect("the server stops in time")
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
    }
}
