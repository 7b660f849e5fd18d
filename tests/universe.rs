//! A real exchange's universe (thousands of symbols, generated): a connection costs what it
//! watches, not what the server lists, and gets exactly the symbols it asked for.

mod support;

use std::net::SocketAddr;
use std::path::Path;

use support::{Client, SeqTracker, ServerProcess, connect_ws, start_process};
use ticker::protocol::ServerMessage;

/// Generated symbols in the large universe.
const LARGE: usize = 5_000;
/// Connections opened to measure memory per connection.
const CONNECTIONS: usize = 300;

/// The binary with a generated universe of `count` symbols (`None`: the default 22).
async fn server(dir: &Path, count: Option<usize>) -> (ServerProcess, SocketAddr) {
    let vars = [
        ("TICKER__WS__HEARTBEAT_INTERVAL_MS", "30000"),
        ("TICKER__WS__IDLE_TIMEOUT_MS", "60000"),
        // History off: its rings fill while the test measures memory per connection (it has
        // its own figure in docs/benchmarks.md §12), and a debug build would spend most of the
        // start-up generating 5,000 symbols' past.
        ("TICKER__HISTORY__GENERATE_PAST", "false"),
        ("TICKER__HISTORY__RESUME_UPDATES", "0"),
        ("TICKER__HISTORY__BARS_1S", "0"),
        ("TICKER__HISTORY__BARS_1M", "0"),
    ];
    match count {
        None => start_process(&[], &vars).await,
        Some(count) => {
            let path = dir.join(format!("universe-{count}.toml"));
            let symbols = ticker::feed::generated::universe(count, 3);
            std::fs::write(&path, ticker::feed::generated::to_toml(&symbols)).unwrap();
            start_process(&["--config", path.to_str().unwrap()], &vars).await
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Opens `CONNECTIONS` clients each watching one symbol (read up to their snapshot); returns
/// the server's RSS growth per connection in KiB.
async fn kib_per_connection(process: &ServerProcess, addr: SocketAddr, symbol: &str) -> f64 {
    // Warm up the allocator and the workers with a first batch, then measure a second.
    let mut warm = Vec::new();
    for _ in 0..50 {
        warm.push(watch_one(addr, symbol).await);
    }
    let before = rss_kib(process.id());
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(watch_one(addr, symbol).await);
    }
    let after = rss_kib(process.id());
    (after.saturating_sub(before)) as f64 / CONNECTIONS as f64
}

async fn watch_one(addr: SocketAddr, symbol: &str) -> Client {
    let (mut client, _) = connect_ws(addr, &format!("/ws?symbols={symbol}")).await;
    loop {
        if let ServerMessage::Snapshot { .. } = client.recv().await {
            return client;
        }
    }
}

/// A session subscribed to one symbol of 5,000 gets that symbol's updates and nothing else,
/// with no seq gap; `welcome` counts the universe instead of listing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_symbol_of_thousands() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = server(dir.path(), Some(LARGE)).await;
    let symbol = ticker::feed::generated::universe(LARGE, 3)[LARGE / 2]
        .symbol
        .clone();
    let (mut client, welcome) = connect_ws(addr, &format!("/ws?symbols={symbol}")).await;
    let ServerMessage::Welcome {
        symbols,
        symbol_count,
        ..
    } = welcome
    else {
        panic!("welcome first");
    };
    assert_eq!(symbol_count, LARGE);
    assert!(symbols.is_empty(), "a large universe is not listed");
    let mut seqs = SeqTracker::default();
    let mut updates = 0;
    while updates < 10 {
        match client.recv().await {
            ServerMessage::Snapshot { quotes } => seqs.snapshot(&quotes),
            ServerMessage::Quotes { quotes } => {
                assert!(quotes.iter().all(|q| q.symbol == symbol), "{quotes:?}");
                for q in &quotes {
                    if let Some(&last) = seqs.last.get(&q.symbol) {
                        assert_eq!(q.seq, last + 1, "no gap");
                    }
                }
                seqs.update(&quotes);
                updates += quotes.len();
            }
            _ => {}
        }
    }
}

/// Memory per connection does not grow with the universe: 5,000 symbols against the default
/// 22, clients watching one symbol each, in one run (a generous bound; the exact figures are
/// in docs/benchmarks.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_per_connection_follows_what_it_watches() {
    let dir = tempfile::tempdir().unwrap();
    let (small, small_addr) = server(dir.path(), None).await;
    let small_kib = kib_per_connection(&small, small_addr, "AAPL").await;
    drop(small);
    let (large, large_addr) = server(dir.path(), Some(LARGE)).await;
    let symbol = ticker::feed::generated::universe(LARGE, 3)[7]
        .symbol
        .clone();
    let large_kib = kib_per_connection(&large, large_addr, &symbol).await;
    eprintln!("KiB per connection: {small_kib:.1} with 22 symbols, {large_kib:.1} with {LARGE}");
    assert!(
        large_kib <= small_kib * 1.5 + 8.0,
        "{large_kib:.1} KiB per connection with {LARGE} symbols, {small_kib:.1} with 22"
    );
}

/// `*` on a universe larger than `ws.max_subscriptions` is refused with a clear error (the
/// setting allows it when raised), and the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_all_of_thousands_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = server(dir.path(), Some(LARGE)).await;
    let (mut client, _) = connect_ws(addr, "/ws?symbols=*").await;
    match client.recv().await {
        ServerMessage::Error { code, message, .. } => {
            assert_eq!(code, ticker::protocol::ErrorCode::TooManySubscriptions);
            assert!(message.contains("100"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    client
        .send_json(serde_json::json!({"op": "ping", "id": 1}))
        .await;
    assert!(matches!(
        client.recv_control().await,
        ServerMessage::Subscribed { .. } | ServerMessage::Pong { .. }
    ));
}
