//! `push`: N WebSocket clients against a running server. Connects them at a bounded rate,
//! warms up, then measures over a window: connections held, failed and dropped; frames, quotes
//! and bytes per second; tick-to-client latency; per-symbol seq gaps; and, given the server's
//! pid, its CPU and memory. A share of the clients can be slow: they never read their socket.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::BenchError;
use crate::counting::{ByteCounts, CountingStream};
use crate::histogram::Histogram;
use crate::process::{self, Usage};
use crate::raw_ws::{RawWs, Received};
use crate::scan::Scanner;

#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// The server's address; several, comma-separated, spread the clients round-robin (for
    /// example over the edges of a cluster).
    #[arg(long, default_value = "127.0.0.1:8080", value_delimiter = ',')]
    pub addr: Vec<SocketAddr>,
    /// The path and query each client opens.
    #[arg(long, default_value = "/ws?symbols=*")]
    pub path: String,
    /// Clients to connect.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Instead of `--path`: each client subscribes to this many symbols of the server's
    /// universe, drawn with Zipf-like popularity (1/rank), seeded by `--zipf-seed`.
    #[arg(long)]
    pub symbols_per_client: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub zipf_seed: u64,
    /// Connections opened per second.
    #[arg(long, default_value_t = 2000)]
    pub connect_rate: u32,
    /// Seconds between the last connection and the start of measuring.
    #[arg(long, default_value_t = 5)]
    pub warmup_secs: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 30)]
    pub duration_secs: u64,
    /// The server's pid, to report its CPU and memory (read from /proc); several,
    /// comma-separated, are added up (every process of a cluster).
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Share of clients (0 to 1) that never read their socket.
    #[arg(long, default_value_t = 0.0)]
    pub slow_share: f64,
    /// Slow clients send a WebSocket Ping this often (and still never read), so the server's
    /// idle timeout does not end them; 0 = they send nothing.
    #[arg(long, default_value_t = 0)]
    pub slow_ping_secs: u64,
    /// Local source addresses 127.0.0.1 … 127.0.0.N, for more than ~28,000 connections.
    #[arg(long, default_value_t = 1)]
    pub source_addrs: u8,
    /// Offer permessage-deflate (the server's `ws.compression` decides how it compresses);
    /// the clients then read with a raw WebSocket client that inflates.
    #[arg(long)]
    pub compression: bool,
    /// A name for this run in the report.
    #[arg(long, default_value = "push")]
    pub label: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Counters shared by every client task; the report takes differences over the window.
#[derive(Debug, Default)]
struct Counters {
    held: AtomicU64,
    failed: AtomicU64,
    /// Why the first failed connection failed.
    first_failure: std::sync::Mutex<Option<String>>,
    dropped: AtomicU64,
    frames: AtomicU64,
    quotes: AtomicU64,
    bytes: AtomicU64,
    gaps: AtomicU64,
    malformed: AtomicU64,
    /// Bytes on the wire, both ways, frame headers included.
    wire: Arc<ByteCounts>,
    /// The extension the first client agreed on, if any.
    agreed: std::sync::Mutex<Option<String>>,
}

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    frames: u64,
    quotes: u64,
    bytes: u64,
    wire: u64,
    gaps: u64,
    dropped: u64,
    at: Instant,
    server: Option<Usage>,
}

impl Counters {
    fn snapshot(&self, server_pid: &[u32]) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            frames: get(&self.frames),
            quotes: get(&self.quotes),
            bytes: get(&self.bytes),
            wire: get(&self.wire.read),
            gaps: get(&self.gaps),
            dropped: get(&self.dropped),
            at: Instant::now(),
            server: process::total_usage(server_pid),
        }
    }
}

pub async fn run(args: PushArgs) -> Result<(), BenchError> {
    if !(0.0..=1.0).contains(&args.slow_share) {
        return Err(BenchError::Usage(
            "--slow-share must be between 0 and 1".into(),
        ));
    }
    if args.addr.is_empty() {
        return Err(BenchError::Usage("--addr needs an address".into()));
    }
    let idle_server = process::total_usage(&args.server_pid);
    let counters = Arc::new(Counters::default());
    let latency = Arc::new(Histogram::default());
    let stop = CancellationToken::new();
    let slow_clients = (args.clients as f64 * args.slow_share).round() as usize;

    connect_all(&args, slow_clients, &counters, &latency, &stop).await?;
    progress(&format!("warming up for {} s", args.warmup_secs));
    tokio::time::sleep(Duration::from_secs(args.warmup_secs)).await;

    latency.reset();
    let start = counters.snapshot(&args.server_pid);
    let window = Duration::from_secs(args.duration_secs);
    while start.at.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(1).min(window.saturating_sub(start.at.elapsed())))
            .await;
        let frames = counters.frames.load(Ordering::Relaxed) - start.frames;
        progress(&format!(
            "measuring {:>3.0}/{} s: {frames} frames",
            start.at.elapsed().as_secs_f64(),
            args.duration_secs
        ));
    }
    let end = counters.snapshot(&args.server_pid);
    stop.cancel();
    progress("");

    let report = Report::new(
        &args,
        slow_clients,
        &counters,
        &latency,
        start,
        end,
        idle_server,
    );
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

pub fn progress(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K{line}");
    let _ = err.flush();
}

/// Opens every connection at the configured rate and waits until each has succeeded or failed.
async fn connect_all(
    args: &PushArgs,
    slow_clients: usize,
    counters: &Arc<Counters>,
    latency: &Arc<Histogram>,
    stop: &CancellationToken,
) -> Result<(), BenchError> {
    let scanner = Arc::new(Scanner::default());
    let batch_every = Duration::from_millis(10);
    let per_batch = (args.connect_rate as usize / 100).max(1);
    let mut batches = tokio::time::interval(batch_every);
    // A realistic mix: the server's universe, ranked by (seeded) popularity.
    let mut mix = match args.symbols_per_client {
        Some(_) => {
            let universe = crate::zipf::universe(args.addr[0]).await?;
            let popularity = crate::zipf::Popularity::new(universe.len(), args.zipf_seed);
            Some((universe, popularity))
        }
        None => None,
    };
    let mut started = 0;
    while started < args.clients {
        batches.tick().await;
        for _ in 0..per_batch.min(args.clients - started) {
            let source = Ipv4Addr::new(
                127,
                0,
                0,
                1 + (started % usize::from(args.source_addrs.max(1))) as u8,
            );
            let server = args.addr[started % args.addr.len()];
            let client = Client {
                server,
                source,
                url: match &mut mix {
                    Some((universe, popularity)) => {
                        let k = args.symbols_per_client.unwrap_or(1);
                        let names: Vec<&str> = popularity
                            .pick(k)
                            .into_iter()
                            .map(|rank| universe[rank].as_str())
                            .collect();
                        format!("ws://{server}/ws?symbols={}", names.join(","))
                    }
                    None => format!("ws://{server}{}", args.path),
                },
                slow: is_slow(started, slow_clients, args.clients),
                compression: args.compression,
                slow_ping: Duration::from_secs(args.slow_ping_secs),
                counters: counters.clone(),
                latency: latency.clone(),
                scanner: scanner.clone(),
                stop: stop.clone(),
            };
            tokio::spawn(client.run());
            started += 1;
        }
        let done = counters.held.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed);
        progress(&format!(
            "connecting: {done}/{} resolved, {started} started",
            args.clients
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = counters.held.load(Ordering::Relaxed);
        let failed = counters.failed.load(Ordering::Relaxed);
        progress(&format!(
            "connecting: {held} held, {failed} failed of {}",
            args.clients
        ));
        if held + failed >= args.clients as u64 || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Exactly `slow` of `total` clients are slow, spread evenly: client `i` is slow when
/// ⌊i·slow/total⌋ steps up at `i + 1`.
fn is_slow(i: usize, slow: usize, total: usize) -> bool {
    i * slow / total != (i + 1) * slow / total
}

/// SO_RCVBUF of a slow client (the kernel doubles it).
const SLOW_RECV_BUFFER: u32 = 16 * 1024;

struct Client {
    server: SocketAddr,
    source: Ipv4Addr,
    url: String,
    slow: bool,
    compression: bool,
    /// How often a slow client pings; zero: never.
    slow_ping: Duration,
    counters: Arc<Counters>,
    latency: Arc<Histogram>,
    scanner: Arc<Scanner>,
    stop: CancellationToken,
}

impl Client {
    async fn run(self) {
        if self.compression {
            return self.run_raw().await;
        }
        let mut ws = match self.connect().await {
            Ok(ws) => ws,
            Err(e) => return self.failed(&*e),
        };
        self.counters.held.fetch_add(1, Ordering::Relaxed);
        if self.slow {
            // Hold the connection and never read it; ping it, if asked, so it looks alive.
            if !self.slow_ping.is_zero() {
                let mut pings = tokio::time::interval(self.slow_ping);
                loop {
                    tokio::select! {
                        _ = pings.tick() => {
                            if ws.send(Message::Ping(Default::default())).await.is_err() {
                                break;
                            }
                        }
                        () = self.stop.cancelled() => break,
                    }
                }
            }
            self.stop.cancelled().await;
            drop(ws);
            return;
        }
        let mut last_seq: HashMap<Box<[u8]>, u64> = HashMap::new();
        loop {
            let message = tokio::select! {
                message = ws.next() => message,
                () = self.stop.cancelled() => return,
            };
            match message {
                Some(Ok(Message::Text(text))) => self.on_text(text.as_bytes(), &mut last_seq),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    if !self.stop.is_cancelled() {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
                Some(Ok(_)) => {}
            }
        }
    }

    fn failed(&self, e: &dyn std::error::Error) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .counters
            .first_failure
            .lock()
            .expect("no holder of this lock panics");
        first.get_or_insert_with(|| e.to_string());
    }

    /// A client that offered permessage-deflate: reads with the raw client, which inflates.
    async fn run_raw(self) {
        let connected = async {
            let tcp = self.tcp().await?;
            let path = self
                .url
                .split_once(&self.server.to_string())
                .map_or("/ws", |(_, path)| path);
            let host = self.server.to_string();
            RawWs::connect(tcp, &host, path, true).await
        };
        let mut ws = match connected.await {
            Ok(ws) => ws,
            Err(e) => return self.failed(&e),
        };
        self.counters.held.fetch_add(1, Ordering::Relaxed);
        let agreed = ws.agreed.clone().unwrap_or_else(|| "(none)".to_owned());
        self.counters
            .agreed
            .lock()
            .expect("no holder of this lock panics")
            .get_or_insert(agreed);
        if self.slow {
            self.stop.cancelled().await;
            return;
        }
        let mut last_seq: HashMap<Box<[u8]>, u64> = HashMap::new();
        loop {
            let received = tokio::select! {
                received = ws.next() => received,
                () = self.stop.cancelled() => return,
            };
            match received {
                Ok(Received::Text(text)) => self.on_text(&text, &mut last_seq),
                Ok(Received::Closed) | Err(_) => {
                    if !self.stop.is_cancelled() {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            }
        }
    }

    /// The TCP connection, its bytes counted.
    async fn tcp(&self) -> std::io::Result<CountingStream> {
        let socket = TcpSocket::new_v4()?;
        if self.slow {
            // A slow client's small window, as on a congested link: on loopback the kernel
            // would otherwise buffer tens of MB for it before the server saw any backpressure.
            socket.set_recv_buffer_size(SLOW_RECV_BUFFER)?;
        }
        socket.bind(SocketAddr::V4(SocketAddrV4::new(self.source, 0)))?;
        let tcp = socket.connect(self.server).await?;
        tcp.set_nodelay(true)?;
        Ok(CountingStream::new(tcp, Arc::clone(&self.counters.wire)))
    }

    async fn connect(
        &self,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<CountingStream>,
        Box<dyn std::error::Error + Send + Sync>,
    > {
        let tcp = self.tcp().await?;
        // Small buffers: a load generator holds tens of thousands of these.
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(0);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(self.url.as_str(), tcp, Some(config))
                .await?;
        Ok(ws)
    }

    fn on_text(&self, frame: &[u8], last_seq: &mut HashMap<Box<[u8]>, u64>) {
        let c = &self.counters;
        c.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
        if !frame.starts_with(br#"{"type":"quotes""#) {
            return;
        }
        c.frames.fetch_add(1, Ordering::Relaxed);
        let now = ticker::clock::now_ms();
        let (mut quotes, mut gaps, mut newest) = (0, 0, 0);
        let ok = self.scanner.quotes(frame, |q| {
            quotes += 1;
            newest = newest.max(q.ts);
            match last_seq.get_mut(q.symbol) {
                Some(last) => {
                    gaps += q.seq.saturating_sub(*last + 1);
                    *last = q.seq;
                }
                None => {
                    last_seq.insert(q.symbol.into(), q.seq);
                }
            }
        });
        if !ok {
            c.malformed.fetch_add(1, Ordering::Relaxed);
        }
        c.quotes.fetch_add(quotes, Ordering::Relaxed);
        c.gaps.fetch_add(gaps, Ordering::Relaxed);
        self.latency.record(now.saturating_sub(newest));
    }
}

/// The figures of one run, over the measuring window.
struct Report {
    label: String,
    clients: usize,
    slow_clients: usize,
    held: u64,
    failed: u64,
    first_failure: Option<String>,
    dropped: u64,
    secs: f64,
    frames: u64,
    quotes: u64,
    bytes: u64,
    /// Bytes read from the wire, frame headers (and compression) included.
    wire: u64,
    /// The extension agreed, with `--compression`.
    agreed: Option<String>,
    gaps: u64,
    malformed: u64,
    latency_ms: [u64; 4],
    server_cpu_cores: Option<f64>,
    server_cpu_us_per_frame: Option<f64>,
    /// Of `server_cpu_us_per_frame`, the server's own code (user time).
    server_user_us_per_frame: Option<f64>,
    server_rss_bytes: Option<u64>,
    server_rss_per_conn: Option<f64>,
}

impl Report {
    fn new(
        args: &PushArgs,
        slow_clients: usize,
        counters: &Counters,
        latency: &Histogram,
        start: Snapshot,
        end: Snapshot,
        idle_server: Option<Usage>,
    ) -> Self {
        let secs = (end.at - start.at).as_secs_f64();
        let frames = end.frames - start.frames;
        let held = counters.held.load(Ordering::Relaxed);
        let cpu_us = match (start.server, end.server) {
            (Some(a), Some(b)) => Some((b.cpu_us - a.cpu_us) as f64),
            _ => None,
        };
        let user_us = match (start.server, end.server) {
            (Some(a), Some(b)) => Some((b.user_us - a.user_us) as f64),
            _ => None,
        };
        Self {
            label: args.label.clone(),
            clients: args.clients,
            slow_clients,
            held,
            failed: counters.failed.load(Ordering::Relaxed),
            first_failure: counters
                .first_failure
                .lock()
                .expect("no holder of this lock panics")
                .clone(),
            dropped: end.dropped,
            secs,
            frames,
            quotes: end.quotes - start.quotes,
            bytes: end.bytes - start.bytes,
            wire: end.wire - start.wire,
            agreed: counters
                .agreed
                .lock()
                .expect("no holder of this lock panics")
                .clone(),
            gaps: end.gaps - start.gaps,
            malformed: counters.malformed.load(Ordering::Relaxed),
            latency_ms: [0.5, 0.99, 0.999]
                .map(|q| latency.quantile(q))
                .into_iter()
                .chain([latency.max()])
                .collect::<Vec<_>>()
                .try_into()
                .expect("four figures"),
            server_cpu_cores: cpu_us.map(|us| us / (secs * 1e6)),
            server_cpu_us_per_frame: cpu_us.map(|us| us / frames.max(1) as f64),
            server_user_us_per_frame: user_us.map(|us| us / frames.max(1) as f64),
            server_rss_bytes: end.server.map(|u| u.rss_bytes),
            server_rss_per_conn: match (idle_server, end.server) {
                (Some(idle), Some(now)) => {
                    Some(now.rss_bytes.saturating_sub(idle.rss_bytes) as f64 / held.max(1) as f64)
                }
                _ => None,
            },
        }
    }

    fn table(&self) -> String {
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(
                || "n/a (no --server-pid)".to_owned(),
                |v| format!("{v:.digits$}"),
            )
        };
        let mut out = format!(
            "{} — {} clients ({} slow), {:.1} s measured\n",
            self.label, self.clients, self.slow_clients, self.secs
        );
        let mut row = |name: &str, value: String| out += &format!("  {name:<34}{value}\n");
        row(
            "connections held/failed/dropped",
            format!("{}/{}/{}", self.held, self.failed, self.dropped),
        );
        if let Some(why) = &self.first_failure {
            row("first connect failure", why.clone());
        }
        row("frames/s", format!("{:.0}", self.frames as f64 / self.secs));
        row("quotes/s", format!("{:.0}", self.quotes as f64 / self.secs));
        row(
            "MB/s received",
            format!("{:.1}", self.bytes as f64 / self.secs / 1e6),
        );
        if let Some(agreed) = &self.agreed {
            row("permessage-deflate", agreed.clone());
        }
        row(
            "wire bytes per quote",
            format!("{:.1}", self.wire as f64 / self.quotes.max(1) as f64),
        );
        let [p50, p99, p999, max] = self.latency_ms;
        row(
            "latency p50/p99/p999/max (ms)",
            format!("{p50}/{p99}/{p999}/{max}"),
        );
        row("seq gaps (fast clients)", self.gaps.to_string());
        row("malformed frames", self.malformed.to_string());
        row("server CPU (cores)", opt(self.server_cpu_cores, 2));
        row(
            "server CPU µs/quote",
            opt(
                self.server_cpu_cores
                    .map(|c| c * self.secs * 1e6 / self.quotes.max(1) as f64),
                2,
            ),
        );
        row(
            "server CPU per frame (µs)",
            opt(self.server_cpu_us_per_frame, 2),
        );
        row(
            "  of which user time (µs)",
            opt(self.server_user_us_per_frame, 2),
        );
        row(
            "server RSS (MiB)",
            opt(self.server_rss_bytes.map(|b| b as f64 / 1048576.0), 1),
        );
        row(
            "server RSS per connection (KiB)",
            opt(self.server_rss_per_conn.map(|b| b / 1024.0), 2),
        );
        out
    }

    fn json(&self) -> serde_json::Value {
        let [p50, p99, p999, max] = self.latency_ms;
        serde_json::json!({
            "mode": "push",
            "label": self.label,
            "clients": self.clients,
            "slow_clients": self.slow_clients,
            "held": self.held,
            "failed": self.failed,
            "first_failure": self.first_failure,
            "dropped": self.dropped,
            "seconds": self.secs,
            "frames_per_sec": self.frames as f64 / self.secs,
            "quotes_per_sec": self.quotes as f64 / self.secs,
            "bytes_per_sec": self.bytes as f64 / self.secs,
            "wire_bytes_per_quote": self.wire as f64 / self.quotes.max(1) as f64,
            "permessage_deflate": self.agreed,
            "latency_ms": {"p50": p50, "p99": p99, "p999": p999, "max": max},
            "seq_gaps": self.gaps,
            "malformed": self.malformed,
            "server_cpu_cores": self.server_cpu_cores,
            "server_cpu_us_per_frame": self.server_cpu_us_per_frame,
            "server_user_us_per_frame": self.server_user_us_per_frame,
            "server_cpu_us_per_quote": self.server_cpu_cores.map(|c| c * self.secs * 1e6 / self.quotes.max(1) as f64),
            "server_rss_bytes": self.server_rss_bytes,
            "server_rss_per_conn_bytes": self.server_rss_per_conn,
        })
    }
}

#[cfg(test)]
mod tests {
    /// The slow share is exact and spread out.
    #[test]
    fn slow_clients_are_exact_and_spread() {
        let slow: Vec<usize> = (0..100).filter(|&i| super::is_slow(i, 10, 100)).collect();
        assert_eq!(slow, vec![9, 19, 29, 39, 49, 59, 69, 79, 89, 99]);
        assert_eq!(
            (0..5000).filter(|&i| super::is_slow(i, 500, 5000)).count(),
            500
        );
        assert!((0..10).all(|i| !super::is_slow(i, 0, 10)));
    }
}
