//! Test support: the real server on port 0, a well-behaved WebSocket client (tokio-tungstenite),
//! and a raw-frame client for what a library will not do (stay silent, send invalid frames).
#![allow(dead_code)] // each test file uses a different part of this module

pub mod cluster;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use ticker::app::Application;
use ticker::protocol::ServerMessage;
use ticker::protocol::quote::Quote;
use ticker::settings::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Long enough for anything that should happen to happen; only failing tests wait this long.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Settings for tests: any free port, a fast seeded feed, quiet logs.
pub fn test_settings() -> Settings {
    let mut s = Settings::defaults().expect("the default settings are valid");
    s.server.port = 0;
    s.server.workers = 2;
    s.server.shutdown_grace_ms = 300;
    s.feed.tick_interval_ms = 20;
    s.feed.seed = Some(7);
    without_client_limits(&mut s);
    s
}

/// Turns off the per-address and per-session limits of a public endpoint: tests open many
/// connections and send bursts from one address. `tests/limits.rs` turns each on to test it.
pub fn without_client_limits(s: &mut Settings) {
    s.server.max_connections_per_ip = 0;
    s.server.connect_rate_per_ip = 0;
    s.ws.max_client_messages_per_sec = 0;
}

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
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(test_settings()).await
    }

    pub async fn spawn_with(settings: Settings) -> Self {
        let shutdown = CancellationToken::new();
        let app = Application::build(settings, shutdown.clone()).expect("the server binds");
        let addr = app.local_addr();
        let sessions = app.sessions();
        let server = tokio::spawn(app.run_until_stopped());
        Self {
            addr,
            shutdown,
            sessions,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
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

    /// The value of one series in `GET /metrics`, e.g. `ticker_connections_closed_total{code="1000"}`;
    /// 0 when the series has not appeared yet.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("a text body");
        metric_value(&text, series)
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

/// Reads a subscribe-all client until a quote stamped after `done_at`, asserting every symbol's
/// seq rises by exactly one each time (no update lost); returns frames and symbols seen.
pub async fn watch_gapless(
    mut client: Client,
    mut done_at: tokio::sync::oneshot::Receiver<u64>,
) -> (usize, usize) {
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut end_ms = u64::MAX;
    let mut frames = 0;
    loop {
        let message = tokio::select! {
            message = client.recv() => message,
            end = &mut done_at, if end_ms == u64::MAX => {
                end_ms = end.expect("the test sends the end time");
                continue;
            }
        };
        if let ServerMessage::Quotes { quotes } | ServerMessage::Snapshot { quotes } = message {
            frames += 1;
            for q in &quotes {
                if let Some(prev) = last.insert(q.symbol.clone(), q.seq) {
                    assert_eq!(
                        q.seq,
                        prev + 1,
                        "{} skipped from {prev} to {}",
                        q.symbol,
                        q.seq
                    );
                }
            }
            if quotes.iter().any(|q| q.ts >= end_ms) {
                return (frames, last.len());
            }
        }
    }
}

/// The value of `series` in a Prometheus text exposition, 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().expect("a numeric sample"))
}

/// The server process; killed and reaped if the test fails before it exits by itself.
pub struct ServerProcess(pub Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the `ticker` binary on a free port with JSON logs and extra `TICKER__…` variables;
/// returns the process and its bound address.
pub fn start_server(vars: &[(&str, &str)]) -> (ServerProcess, SocketAddr) {
    start_process(&[], vars)
}

/// Like `start_server`, with command-line arguments (`publish`, `serve`, `--config …`).
pub fn start_process(args: &[&str], vars: &[(&str, &str)]) -> (ServerProcess, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ticker"));
    command.args(args);
    with_test_env(&mut command, vars);
    let child = command
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut server = ServerProcess(child);
    let stderr = server.0.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + PATIENCE;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server logs its address in time");
        if let Some(addr) = listening_addr(&line) {
            return (server, addr);
        }
    }
}

/// The environment `start_process` gives the binary: port 0, JSON logs at `info`, no
/// per-address limits, stdout discarded, and `vars` on top.
pub fn with_test_env(command: &mut Command, vars: &[(&str, &str)]) {
    command
        // Every test client comes from one address: no per-address limits unless a test sets them.
        .env("TICKER__SERVER__MAX_CONNECTIONS_PER_IP", "0")
        .env("TICKER__SERVER__CONNECT_RATE_PER_IP", "0")
        .env("TICKER__WS__MAX_CLIENT_MESSAGES_PER_SEC", "0")
        .envs(vars.iter().copied())
        .env("TICKER__SERVER__PORT", "0")
        .env("TICKER__LOG__FORMAT", "json")
        .env("TICKER__LOG__LEVEL", "info")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null());
}

/// The bound address from the server's JSON `listening` log line, if `line` is that line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let event = serde_json::from_str::<serde_json::Value>(line).ok()?;
    (event["message"] == "listening").then(|| {
        event["addr"]
            .as_str()
            .expect("addr is logged")
            .parse()
            .expect("addr is an address")
    })
}

/// Sends `signal` (`TERM`, `STOP`, `CONT`, …) to a process with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits for the process to exit by itself within `limit`; returns its exit code.
pub async fn exit_code_within(server: &mut ServerProcess, limit: Duration) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = server.0.try_wait().expect("the child can be waited for") {
            return status.code();
        }
        assert!(
            started.elapsed() < limit,
            "the process did not exit within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connects a well-behaved client to any server address; returns it and its `welcome`.
pub async fn connect_ws(addr: SocketAddr, path: &str) -> (Client, ServerMessage) {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}"))
        .await
        .expect("the WebSocket upgrade succeeds");
    let mut client = Client::new(ws);
    let welcome = client.recv().await;
    assert!(
        matches!(welcome, ServerMessage::Welcome { .. }),
        "expected welcome first, got {welcome:?}"
    );
    (client, welcome)
}

/// A well-behaved client: it answers pings (tungstenite does, while reading) and speaks JSON.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Server pings seen so far.
    pub pings: usize,
}

/// What a read produced, for tests that look at more than JSON messages.
#[derive(Debug)]
pub enum Event {
    Message(ServerMessage),
    Close(Option<CloseFrame>),
    /// The TCP connection ended without (further) frames.
    Ended,
}

impl Client {
    fn new(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self { ws, pings: 0 }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// The next event, skipping pings and pongs; panics after `PATIENCE`.
    pub async fn next_event(&mut self) -> Event {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the server says something in time");
            match next {
                Some(Ok(Message::Text(text))) => {
                    let message = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("bad server message {text}: {e}"));
                    return Event::Message(message);
                }
                Some(Ok(Message::Ping(_))) => self.pings += 1,
                Some(Ok(Message::Pong(_))) => {}
                Some(Ok(Message::Close(frame))) => return Event::Close(frame),
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
                Some(Err(_)) | None => return Event::Ended,
            }
        }
    }

    /// The next JSON message; panics on anything else.
    pub async fn recv(&mut self) -> ServerMessage {
        match self.next_event().await {
            Event::Message(message) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Skips quote updates until a message that is not one arrives.
    pub async fn recv_control(&mut self) -> ServerMessage {
        loop {
            match self.recv().await {
                ServerMessage::Quotes { .. } => continue,
                other => return other,
            }
        }
    }

    /// Reads until the server's Close frame; returns its code.
    pub async fn recv_close(&mut self) -> u16 {
        loop {
            match self.next_event().await {
                Event::Message(_) => continue,
                Event::Close(Some(frame)) => return u16::from(frame.code),
                other => panic!("expected a Close frame, got {other:?}"),
            }
        }
    }

    pub async fn close(&mut self, frame: Option<CloseFrame>) {
        self.ws.close(frame).await.expect("close");
    }
}

/// Tracks per-symbol seq over a connection and checks it never goes backwards.
#[derive(Default)]
pub struct SeqTracker {
    pub last: HashMap<String, u64>,
}

impl SeqTracker {
    /// Records quotes from a `quotes` frame: each must be above the last seen for its symbol.
    pub fn update(&mut self, quotes: &[Quote]) {
        for q in quotes {
            let last = self.last.insert(q.symbol.clone(), q.seq);
            if let Some(last) = last {
                assert!(
                    q.seq > last,
                    "{} seq went from {last} to {}",
                    q.symbol,
                    q.seq
                );
            }
        }
    }

    /// Records a snapshot: it may repeat the last seq (same state) but never go below it.
    pub fn snapshot(&mut self, quotes: &[Quote]) {
        for q in quotes {
            let last = self.last.insert(q.symbol.clone(), q.seq).unwrap_or(0);
            assert!(
                q.seq >= last,
                "{} snapshot seq {} below {last}",
                q.symbol,
                q.seq
            );
        }
    }
}

/// A hand-rolled WebSocket client that sends exactly the frames it is told to, masked, and
/// never answers anything by itself.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

impl RawClient {
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut client = Self {
            stream,
            buf: Vec::new(),
        };
        let head = client.read_until_headers_end().await;
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        client
    }

    async fn read_until_headers_end(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                return head;
            }
            self.fill().await.expect("the server answers the upgrade");
        }
    }

    /// Reads more bytes; `None` at end of stream.
    async fn fill(&mut self) -> Option<usize> {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .expect("the server sends or closes in time")
            .unwrap_or(0);
        (n > 0).then(|| {
            self.buf.extend_from_slice(&chunk[..n]);
            n
        })
    }

    /// Sends one masked frame.
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8], fin: bool) {
        let mut frame = vec![(u8::from(fin) << 7) | opcode];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // The server may already have closed on an earlier frame; that is for the test to see.
        let _ = self.stream.write_all(&frame).await;
    }

    /// Makes dropping this client reset the connection (RST) instead of closing it (FIN).
    pub fn set_linger_zero(&mut self) {
        socket2::SockRef::from(&self.stream)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER can be set");
    }

    /// Writes bytes as they are, for frames no well-formed builder would produce.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Reads one server frame (unmasked, unfragmented): `(opcode, payload)`, or `None` at EOF.
    pub async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((opcode, payload));
            }
            self.fill().await?;
        }
    }

    /// Reads frames until a Close; returns its code and the opcodes seen before it.
    pub async fn read_until_close(&mut self) -> (Option<u16>, Vec<u8>) {
        let mut seen = Vec::new();
        while let Some((opcode, payload)) = self.read_frame().await {
            if opcode == OP_CLOSE {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                return (code, seen);
            }
            seen.push(opcode);
        }
        panic!("connection ended without a Close frame; saw opcodes {seen:?}");
    }

    /// True when the server has closed the TCP connection (EOF) with nothing more to read.
    pub async fn at_eof(&mut self) -> bool {
        self.buf.is_empty() && self.fill().await.is_none()
    }
}

fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0F;
    assert_eq!(buf[1] & 0x80, 0, "server frames are never masked");
    let (len, header) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (usize::from(n), 2),
    };
    (buf.len() >= header + len).then(|| (opcode, buf[header..header + len].to_vec(), header + len))
}
