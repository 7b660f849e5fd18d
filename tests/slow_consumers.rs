//! Slow consumers: a client that stops reading costs bounded server memory, catches up with the
//! latest price of every symbol when it reads again (conflation), never delays anyone else, and
//! is dropped when it stays stuck past `ws.slow_client_timeout_ms`.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{OP_PING, OP_TEXT, RawClient, SeqTracker, TestApp};
use ticker::protocol::ServerMessage;
use ticker::protocol::quote::Quote;

/// A fast feed that overflows a stalled client's socket buffers within seconds (~3 MB/s).
fn fast_feed() -> ticker::settings::Settings {
    let mut settings = support::test_settings();
    settings.feed.tick_interval_ms = ticker::settings::Millis::new(1);
    settings
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc is readable");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS is listed");
    kib * 1024
}

/// Reads a raw client's backlog; returns the quotes of every `quotes` frame in order.
async fn read_quotes_until(
    raw: &mut RawClient,
    mut done: impl FnMut(&[Quote]) -> bool,
) -> Vec<Quote> {
    let mut all = Vec::new();
    loop {
        let (opcode, payload) = raw.read_frame().await.expect("the connection stays open");
        if opcode != OP_TEXT {
            continue;
        }
        if let Ok(ServerMessage::Quotes { quotes }) = serde_json::from_slice(&payload) {
            all.extend(quotes);
            if done(&all) {
                return all;
            }
        }
    }
}

/// A client that reads nothing while ~15 MB of updates go by leaves the server's memory where
/// it was: what waits for it is one flag per symbol, not a queue of frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_reading_client_does_not_grow_server_memory() {
    let (server, addr) = support::start_server(&[
        ("TICKER__FEED__TICK_INTERVAL_MS", "1"),
        ("TICKER__WS__SLOW_CLIENT_TIMEOUT_MS", "60000"),
    ])
    .await;
    let pid = server.id();
    let _stalled = RawClient::connect(addr, "/ws?symbols=*").await;
    // Let the socket buffers and the connection's queue fill up first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_bytes(pid);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_bytes(pid);
    let growth = after.saturating_sub(before);
    assert!(
        growth < 1 << 20,
        "server RSS grew {growth} bytes ({before} → {after}) for one non-reading client"
    );
}

/// A client that stalls for seconds, then reads again, skips the updates it could not take
/// (seq gaps) but ends up with the latest state of every symbol, its seqs never going backwards;
/// a fast client beside it receives every update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_catches_up_and_fast_client_is_unaffected() {
    let app = TestApp::spawn_with(fast_feed()).await;
    let mut fast = app.connect("/ws?symbols=*").await;
    let fast_reader = tokio::spawn(async move {
        let mut last: HashMap<String, u64> = HashMap::new();
        let started = Instant::now();
        let mut frames = 0u64;
        while started.elapsed() < Duration::from_secs(6) {
            if let ServerMessage::Quotes { quotes } = fast.recv().await {
                frames += 1;
                for q in quotes {
                    if let Some(prev) = last.insert(q.symbol.clone(), q.seq) {
                        assert_eq!(q.seq, prev + 1, "fast client missed {} updates", q.symbol);
                    }
                }
            }
        }
        frames
    });

    let mut stalled = app.raw("/ws?symbols=*").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // What the server holds right now; the stalled client must reach at least this.
    let latest: Value = reqwest::get(app.url("/api/quotes"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let target: HashMap<String, u64> = latest["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["symbol"].as_str().unwrap().to_owned(),
                q["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let quotes = read_quotes_until(&mut stalled, |all| {
        for q in all.iter().rev().take(50) {
            let entry = seen.entry(q.symbol.clone()).or_default();
            *entry = (*entry).max(q.seq);
        }
        target
            .iter()
            .all(|(s, &seq)| seen.get(s).is_some_and(|&got| got >= seq))
    })
    .await;
    let mut order = SeqTracker::default();
    order.update(&quotes);
    let mut last: HashMap<&str, u64> = HashMap::new();
    let gaps: u64 = quotes
        .iter()
        .map(|q| {
            last.insert(&q.symbol, q.seq)
                .map_or(0, |prev| q.seq - prev - 1)
        })
        .sum();
    assert!(gaps > 0, "the stall was long enough to conflate updates");

    let fast_frames = fast_reader.await.expect("the fast client saw every update");
    assert!(
        fast_frames > 1000,
        "the fast client kept receiving: {fast_frames} frames"
    );
    app.stop().await;
}

/// A client that stays unwritable past `ws.slow_client_timeout_ms` loses its session; the
/// server closes the connection once what was already written has drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_client_is_dropped_after_timeout() {
    let mut settings = fast_feed();
    settings.ws.slow_client_timeout_ms = ticker::settings::Millis::new(1000);
    let app = TestApp::spawn_with(settings).await;
    let mut stuck = app.raw("/ws?symbols=*").await;
    let started = Instant::now();
    while !app.sessions.is_empty() {
        assert!(
            started.elapsed() < support::PATIENCE,
            "the stuck session was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "not before the timeout"
    );
    assert_eq!(app.metric("ticker_slow_client_closes_total").await, 1.0);
    assert_eq!(
        app.metric(r#"ticker_connections_closed_total{code="1008"}"#)
            .await,
        1.0
    );
    assert!(
        app.metric("ticker_quotes_conflated_total").await > 0.0,
        "what the stuck client never got is counted"
    );
    while stuck.read_frame().await.is_some() {}
    app.stop().await;
}

/// On the default settings (bar a short slow-client timeout), a client that never reads but
/// keeps its connection alive with Pings fills its bounded kernel send buffer within seconds,
/// is conflated and then closed with 1008; it is never idle-closed (it is not silent), and it
/// never parks megabytes in the kernel for good. (Here it is closed after about 5 s; with
/// `server.send_buffer_bytes = 0` the kernel buffer grows to megabytes and it is still open
/// after 10 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_reading_pinging_client_is_closed_on_defaults() {
    let mut settings = support::test_settings();
    settings.ws.slow_client_timeout_ms = ticker::settings::Millis::new(1000);
    let app = TestApp::spawn_with(settings).await;
    let mut stuck = app.raw("/ws?symbols=*").await;
    let started = Instant::now();
    while !app.sessions.is_empty() {
        assert!(
            started.elapsed() < support::PATIENCE,
            "the non-reading client was never closed"
        );
        stuck.send_frame(OP_PING, b"still here", true).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.metric("ticker_slow_client_closes_total").await, 1.0);
    assert_eq!(
        app.metric(r#"ticker_connections_closed_total{code="1008"}"#)
            .await,
        1.0
    );
    assert_eq!(app.metric("ticker_idle_closes_total").await, 0.0);
    assert!(app.metric("ticker_quotes_conflated_total").await > 0.0);
    app.stop().await;
}
