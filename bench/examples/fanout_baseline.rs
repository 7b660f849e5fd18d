//! The minimal fan-out that `ticker-bench` compares `ticker` with (docs/benchmarks.md): the same
//! simulated market and the same JSON, each tick's WebSocket frame encoded once and written whole
//! to every socket. No parsing of client frames, no subscriptions, no heartbeat, no actix.
//!
//! `cargo run --release -p ticker-bench --example fanout_baseline -- 127.0.0.1:8081` (settings
//! from `TICKER_ENV`, e.g. `TICKER_ENV=bench`, like the server's).

use std::sync::Arc;

use ticker::feed::market::Market;
use ticker::protocol::{QuotesKind, quotes_frame};
use ticker::settings::{Settings, Sources};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let settings = Settings::load(&Sources::from_process(None)).expect("valid settings");
    let listener = TcpListener::bind(&addr).await?;
    rlimit::increase_nofile_limit(u64::MAX)?;
    eprintln!("fanout_baseline listening on {}", listener.local_addr()?);
    let (frames, _) = broadcast::channel::<Arc<[u8]>>(64);
    tokio::spawn(tick(settings, frames.clone()));
    loop {
        let (stream, _) = listener.accept().await?;
        let frames = frames.subscribe();
        tokio::spawn(async move {
            let _ = serve(stream, frames).await;
        });
    }
}

/// Moves the market every tick and publishes one ready-to-write WebSocket frame.
async fn tick(settings: Settings, frames: broadcast::Sender<Arc<[u8]>>) {
    let feed = settings.feed;
    let mut market = Market::new(&feed, feed.seed.unwrap_or(1), ticker::clock::now_ms());
    let mut interval = tokio::time::interval(feed.tick_interval_ms.get());
    loop {
        interval.tick().await;
        let moved = market.step(ticker::clock::now_ms());
        let quotes: Vec<String> = moved
            .into_iter()
            .map(|id| serde_json::to_string(&market.quote(id)).expect("quotes serialize"))
            .collect();
        let payload = quotes_frame(QuotesKind::Quotes, quotes.iter().map(String::as_str));
        let _ = frames.send(encode_text_frame(payload.as_bytes()).into());
    }
}

/// A server-to-client text frame: FIN + text opcode, unmasked length, payload.
fn encode_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(n as u8),
        n if n <= 0xFFFF => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// Answers the upgrade, then writes every frame to the socket until it fails.
async fn serve(
    mut stream: TcpStream,
    mut frames: broadcast::Receiver<Arc<[u8]>>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut request = Vec::new();
    while !request.ends_with(b"\r\n\r\n") {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&request);
    let key = request
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("sec-websocket-key:"))
        .and_then(|l| l.split_once(':'))
        .map_or("", |(_, key)| key.trim());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(response.as_bytes()).await?;
    loop {
        match frames.recv().await {
            Ok(frame) => stream.write_all(&frame).await?,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}
