//! `compare`: one WebSocket client and one HTTP poller on the same symbols, side by side, the
//! same figures as the dashboard's demo: updates shown and missed, staleness, requests, bytes.
//!
//! Staleness of a shown price is now − ts of the first update of that symbol the client had not
//! shown yet. For push that is the quote's own age on arrival; for polling it is looked up in the
//! push client's history, which sees every update.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{ETAG, HOST, IF_NONE_MATCH, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use ticker::clock::now_ms;
use ticker::protocol::ServerMessage;
use ticker::protocol::quote::Quote;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior, sleep_until};

use crate::BenchError;
use crate::counting::{ByteCounts, CountingStream};
use crate::raw_ws::{RawWs, Received};
use crate::stats::Samples;

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Symbols both clients follow.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "AAPL,MSFT,NVDA,AMZN,GOOGL,TSLA"
    )]
    symbols: Vec<String>,
    /// How often the poller asks.
    #[arg(long, default_value_t = 1000)]
    poll_interval_ms: u64,
    /// How long both run.
    #[arg(long, default_value_t = 30)]
    duration_secs: u64,
    /// The push client offers permessage-deflate (the server's `ws.compression` decides):
    /// its bytes are then what the compressed frames took on the wire.
    #[arg(long)]
    compression: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// What one client showed and what it cost.
#[derive(Debug, Default)]
pub struct Side {
    pub shown: u64,
    pub missed: u64,
    pub staleness: Samples,
    pub requests: u64,
    /// Polls answered 304 Not Modified.
    pub not_modified: u64,
    pub bytes: Arc<ByteCounts>,
    /// The WebSocket extension agreed (push side, with `--compression`).
    pub extension: Option<String>,
}

/// (symbol, seq) → ts of that update, as the push client saw it.
pub type History = Arc<Mutex<HashMap<(String, u64), u64>>>;

pub async fn run(args: CompareArgs) -> Result<(), BenchError> {
    let uri: hyper::Uri = args.url.parse()?;
    let authority = uri
        .authority()
        .ok_or_else(|| BenchError::Usage("--url needs a host and port".into()))?
        .to_string();
    let until = Instant::now() + Duration::from_secs(args.duration_secs);
    let history = History::default();
    let symbols = args.symbols.join(",");
    let (push, poll) = tokio::try_join!(
        push(
            &authority,
            &symbols,
            args.compression,
            until,
            history.clone()
        ),
        poll(
            &authority,
            &symbols,
            Duration::from_millis(args.poll_interval_ms),
            until,
            history
        ),
    )?;
    if args.json {
        println!("{}", report_json(&args, &push, &poll));
    } else {
        print!("{}", report_table(&args, &push, &poll));
    }
    Ok(())
}

/// A WebSocket client on `symbols` until `until`; records every update it sees in `history`.
pub async fn push(
    authority: &str,
    symbols: &str,
    compression: bool,
    until: Instant,
    history: History,
) -> Result<Side, BenchError> {
    let mut side = Side {
        requests: 1, // the upgrade
        ..Side::default()
    };
    let tcp = TcpStream::connect(authority).await?;
    tcp.set_nodelay(true)?;
    let path = format!("/ws?symbols={symbols}");
    let stream = CountingStream::new(tcp, side.bytes.clone());
    let mut ws = RawWs::connect(stream, authority, &path, compression).await?;
    side.extension = ws.agreed.clone();
    let mut last: HashMap<String, u64> = HashMap::new();
    loop {
        let received = tokio::select! {
            received = ws.next() => received?,
            () = sleep_until(until) => break,
        };
        let text = match received {
            Received::Text(text) => text,
            Received::Closed => {
                return Err(BenchError::Usage("the server closed the WebSocket".into()));
            }
        };
        let now = now_ms();
        match serde_json::from_slice::<ServerMessage>(&text)? {
            ServerMessage::Snapshot { quotes } => {
                for q in quotes {
                    last.insert(q.symbol.clone(), q.seq);
                    record(&history, &q);
                }
            }
            ServerMessage::Quotes { quotes } => {
                for q in quotes {
                    if let Some(prev) = last.insert(q.symbol.clone(), q.seq) {
                        side.missed += q.seq.saturating_sub(prev + 1);
                    }
                    side.shown += 1;
                    side.staleness.push(now.saturating_sub(q.ts) as f64);
                    record(&history, &q);
                }
            }
            _ => {}
        }
    }
    Ok(side)
}

fn record(history: &History, q: &Quote) {
    history
        .lock()
        .expect("no holder of the history lock panics")
        .insert((q.symbol.clone(), q.seq), q.ts);
}

#[derive(Deserialize)]
struct PollBody {
    quotes: Vec<Quote>,
}

/// Polls `/api/quotes?symbols=…` (all quotes for `*`) every `interval` with `If-None-Match`
/// until `until`; staleness of each newly shown quote is looked up in `history`.
pub async fn poll(
    authority: &str,
    symbols: &str,
    interval: Duration,
    until: Instant,
    history: History,
) -> Result<Side, BenchError> {
    let mut side = Side::default();
    let tcp = TcpStream::connect(authority).await?;
    tcp.set_nodelay(true)?;
    let io = TokioIo::new(CountingStream::new(tcp, side.bytes.clone()));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    let path = if symbols == "*" {
        "/api/quotes".to_owned()
    } else {
        format!("/api/quotes?symbols={symbols}")
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut etag = None;
    let mut last: HashMap<String, u64> = HashMap::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = sleep_until(until) => break,
        }
        let mut request = Request::get(path.as_str())
            .header(HOST, authority)
            .header(USER_AGENT, "ticker-bench");
        if let Some(tag) = &etag {
            request = request.header(IF_NONE_MATCH, tag);
        }
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new())?)
            .await?;
        side.requests += 1;
        let status = response.status();
        if status != StatusCode::NOT_MODIFIED {
            etag = response.headers().get(ETAG).cloned();
        }
        let body = response.into_body().collect().await?.to_bytes();
        if status == StatusCode::NOT_MODIFIED {
            side.not_modified += 1;
            continue;
        }
        let now = now_ms();
        let history = history
            .lock()
            .expect("no holder of the history lock panics");
        for q in serde_json::from_slice::<PollBody>(&body)?.quotes {
            match last.insert(q.symbol.clone(), q.seq) {
                Some(prev) if q.seq > prev => {
                    side.shown += 1;
                    side.missed += q.seq - prev - 1;
                    let first_unseen = history
                        .get(&(q.symbol.clone(), prev + 1))
                        .copied()
                        .unwrap_or(q.ts);
                    side.staleness.push(now.saturating_sub(first_unseen) as f64);
                }
                _ => {}
            }
        }
    }
    Ok(side)
}

fn report_table(args: &CompareArgs, push: &Side, poll: &Side) -> String {
    let row = |name: &str, a: String, b: String| format!("{name:<26}{a:>18}{b:>18}\n");
    let mut out = format!(
        "push vs polling on {} for {} s, polling every {} ms\n",
        args.symbols.join(","),
        args.duration_secs,
        args.poll_interval_ms
    );
    out += &row("", "push (WebSocket)".into(), "polling (HTTP)".into());
    out += &row(
        "updates shown",
        push.shown.to_string(),
        poll.shown.to_string(),
    );
    out += &row(
        "updates missed",
        push.missed.to_string(),
        poll.missed.to_string(),
    );
    for (name, q) in [("staleness p50 (ms)", 0.5), ("staleness p99 (ms)", 0.99)] {
        out += &row(
            name,
            format!("{:.1}", push.staleness.quantile(q)),
            format!("{:.1}", poll.staleness.quantile(q)),
        );
    }
    out += &row(
        "staleness mean (ms)",
        format!("{:.1}", push.staleness.mean()),
        format!("{:.1}", poll.staleness.mean()),
    );
    out += &row(
        "HTTP requests",
        push.requests.to_string(),
        poll.requests.to_string(),
    );
    out += &row(
        "bytes, both directions",
        push.bytes.total().to_string(),
        poll.bytes.total().to_string(),
    );
    out += &row(
        "bytes per update shown",
        format!("{:.0}", per_update(push)),
        format!("{:.0}", per_update(poll)),
    );
    let deflate = match push.extension.as_deref() {
        None => "none",
        Some(e) if e.contains("server_no_context_takeover") => "deflate, shared",
        Some(_) => "deflate, per conn.",
    };
    // The poller sends no Accept-Encoding, so its answers are not compressed.
    out += &row("compression", deflate.to_owned(), "none".to_owned());
    out
}

fn per_update(side: &Side) -> f64 {
    side.bytes.total() as f64 / side.shown.max(1) as f64
}

fn report_json(args: &CompareArgs, push: &Side, poll: &Side) -> serde_json::Value {
    let side = |s: &Side| {
        serde_json::json!({
            "shown": s.shown,
            "missed": s.missed,
            "staleness_ms": {
                "mean": s.staleness.mean(),
                "p50": s.staleness.quantile(0.5),
                "p99": s.staleness.quantile(0.99),
                "samples": s.staleness.len(),
            },
            "requests": s.requests,
            "bytes": s.bytes.total(),
            "bytes_per_update": per_update(s),
            "extension": s.extension,
        })
    };
    serde_json::json!({
        "mode": "compare",
        "symbols": args.symbols,
        "duration_secs": args.duration_secs,
        "poll_interval_ms": args.poll_interval_ms,
        "push": side(push),
        "poll": side(poll),
    })
}
