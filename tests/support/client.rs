//! A well-behaved WebSocket client (tokio-tungstenite) that speaks the JSON protocol, and
//! checks over what it receives: seq order (`SeqTracker`) and gapless delivery (`watch_gapless`).

use std::collections::HashMap;
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use ticker::protocol::ServerMessage;
use ticker::protocol::quote::Quote;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::PATIENCE;

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

/// Connects like a client with a list of servers: tries `endpoints` in order and keeps the
/// first that takes the session; returns it, its `welcome`, and why each earlier one failed.
pub async fn connect_first(
    endpoints: &[SocketAddr],
    path: &str,
) -> (Client, ServerMessage, Vec<String>) {
    let mut refused = Vec::new();
    for addr in endpoints {
        match tokio_tungstenite::connect_async(format!("ws://{addr}{path}")).await {
            Ok((ws, _)) => {
                let mut client = Client::new(ws);
                let welcome = client.recv().await;
                assert!(
                    matches!(welcome, ServerMessage::Welcome { .. }),
                    "expected welcome first, got {welcome:?}"
                );
                return (client, welcome, refused);
            }
            Err(e) => refused.push(format!("{addr}: {e}")),
        }
    }
    panic!("no endpoint takes a session: {refused:?}");
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
    pub fn new(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
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

    /// The next event, skipping pings and pongs; panics when none came within `PATIENCE` of
    /// the call (pings do not extend the wait).
    pub async fn next_event(&mut self) -> Event {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
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

/// Connects a well-behaved client from `source` (see [`connect_from`]) and reads its `welcome`.
pub async fn connect_ws_from(source: std::net::IpAddr, addr: SocketAddr, path: &str) -> Client {
    let tcp = MaybeTlsStream::Plain(super::raw::connect_from(source, addr).await);
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}{path}"), tcp)
        .await
        .expect("the WebSocket upgrade succeeds");
    let mut client = Client::new(ws);
    match client.recv().await {
        ServerMessage::Welcome { .. } => client,
        other => panic!("expected welcome first, got {other:?}"),
    }
}
