//! `poll`: M HTTP clients polling `GET /api/quotes` every I ms, the polling side of
//! push-versus-polling under load: requests, 304s, bytes, staleness and missed updates, and the
//! server's CPU and memory, to set beside a `push` run with as many clients.
//!
//! One WebSocket reference client records every update, so the staleness of a polled quote is
//! now − ts of the first update of that symbol the poller had not shown yet (as in `compare`).

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::BenchError;
use crate::compare::{self, History, Side};
use crate::process::{self, Usage};
use crate::push::progress;
use crate::stats::Samples;

#[derive(Debug, clap::Args)]
pub struct PollArgs {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Pollers, each on its own keep-alive connection.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// How often each poller asks; pollers are spread evenly over the interval.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Symbols polled, comma-separated, or `*` for all.
    #[arg(long, default_value = "*")]
    symbols: String,
    /// Seconds measured.
    #[arg(long, default_value_t = 30)]
    duration_secs: u64,
    /// The server's pid, to report its CPU and memory (read from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// A name for this run in the report.
    #[arg(long, default_value = "poll")]
    label: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

struct Totals {
    pollers: usize,
    failed: usize,
    requests: u64,
    not_modified: u64,
    shown: u64,
    missed: u64,
    bytes: u64,
    staleness: Samples,
}

pub async fn run(args: PollArgs) -> Result<(), BenchError> {
    if args.clients == 0 || args.interval_ms == 0 {
        return Err(BenchError::Usage(
            "--clients and --interval-ms must be positive".into(),
        ));
    }
    let interval = Duration::from_millis(args.interval_ms);
    let duration = Duration::from_secs(args.duration_secs);
    let history = History::default();
    // The reference client starts first, so every update a poller sees is in the history.
    let reference_until = Instant::now() + interval + duration + Duration::from_secs(1);
    let reference = tokio::spawn({
        let (addr, symbols, history) = (args.addr.clone(), args.symbols.clone(), history.clone());
        async move { compare::push(&addr, &symbols, false, reference_until, history).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let start = Instant::now();
    let until = start + interval + duration;
    let before = args.server_pid.and_then(process::usage);
    let mut pollers = JoinSet::new();
    for i in 0..args.clients {
        let offset = interval.mul_f64(i as f64 / args.clients as f64);
        let (addr, symbols, history) = (args.addr.clone(), args.symbols.clone(), history.clone());
        pollers.spawn(async move {
            tokio::time::sleep_until(start + offset).await;
            compare::poll(&addr, &symbols, interval, until, history).await
        });
    }
    while Instant::now() < until {
        progress(&format!(
            "polling {:>3.0}/{} s with {} clients",
            start.elapsed().as_secs_f64(),
            (interval + duration).as_secs(),
            args.clients
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let after = args.server_pid.and_then(process::usage);
    let elapsed = start.elapsed();
    progress("");

    let mut totals = Totals {
        pollers: args.clients,
        failed: 0,
        requests: 0,
        not_modified: 0,
        shown: 0,
        missed: 0,
        bytes: 0,
        staleness: Samples::default(),
    };
    while let Some(joined) = pollers.join_next().await {
        match joined.expect("a poller task does not panic") {
            Ok(side) => totals.add(side),
            Err(e) => {
                totals.failed += 1;
                eprintln!("a poller failed: {e}");
            }
        }
    }
    reference
        .await
        .expect("the reference client does not panic")?;
    let server = match (before, after) {
        (Some(b), Some(a)) => Some((b, a)),
        _ => None,
    };
    if args.json {
        println!("{}", report_json(&args, &totals, elapsed, server));
    } else {
        print!("{}", report_table(&args, &totals, elapsed, server));
    }
    Ok(())
}

impl Totals {
    fn add(&mut self, side: Side) {
        self.requests += side.requests;
        self.not_modified += side.not_modified;
        self.shown += side.shown;
        self.missed += side.missed;
        self.bytes += side.bytes.total();
        self.staleness.extend(&side.staleness);
    }
}

fn cpu_cores(server: (Usage, Usage), elapsed: Duration) -> f64 {
    (server.1.cpu_us - server.0.cpu_us) as f64 / elapsed.as_micros() as f64
}

fn report_table(
    args: &PollArgs,
    t: &Totals,
    elapsed: Duration,
    server: Option<(Usage, Usage)>,
) -> String {
    let secs = elapsed.as_secs_f64();
    let row = |name: &str, value: String| format!("  {name:<34}{value}\n");
    let mut out = format!(
        "{} — {} pollers every {} ms, {:.1} s\n",
        args.label, args.clients, args.interval_ms, secs
    );
    out += &row(
        "pollers ok/failed",
        format!("{}/{}", t.pollers - t.failed, t.failed),
    );
    out += &row("requests/s", format!("{:.0}", t.requests as f64 / secs));
    out += &row(
        "304 Not Modified",
        format!(
            "{:.1} %",
            100.0 * t.not_modified as f64 / t.requests.max(1) as f64
        ),
    );
    out += &row("updates shown/s", format!("{:.0}", t.shown as f64 / secs));
    out += &row("updates missed/s", format!("{:.0}", t.missed as f64 / secs));
    out += &row(
        "MB/s, both directions",
        format!("{:.1}", t.bytes as f64 / secs / 1e6),
    );
    out += &row(
        "staleness p50/p99 (ms)",
        format!(
            "{:.0}/{:.0}",
            t.staleness.quantile(0.5),
            t.staleness.quantile(0.99)
        ),
    );
    if let Some(server) = server {
        let cores = cpu_cores(server, elapsed);
        out += &row("server CPU (cores)", format!("{cores:.2}"));
        out += &row(
            "server CPU per request (µs)",
            format!(
                "{:.1}",
                (server.1.cpu_us - server.0.cpu_us) as f64 / t.requests.max(1) as f64
            ),
        );
        out += &row(
            "server RSS (MiB)",
            format!("{:.1}", server.1.rss_bytes as f64 / (1 << 20) as f64),
        );
    }
    out
}

fn report_json(
    args: &PollArgs,
    t: &Totals,
    elapsed: Duration,
    server: Option<(Usage, Usage)>,
) -> serde_json::Value {
    let secs = elapsed.as_secs_f64();
    serde_json::json!({
        "mode": "poll",
        "label": args.label,
        "clients": args.clients,
        "failed": t.failed,
        "interval_ms": args.interval_ms,
        "seconds": secs,
        "requests_per_sec": t.requests as f64 / secs,
        "not_modified_share": t.not_modified as f64 / t.requests.max(1) as f64,
        "shown_per_sec": t.shown as f64 / secs,
        "missed_per_sec": t.missed as f64 / secs,
        "bytes_per_sec": t.bytes as f64 / secs,
        "staleness_ms": {
            "p50": t.staleness.quantile(0.5),
            "p99": t.staleness.quantile(0.99),
            "mean": t.staleness.mean(),
        },
        "server": server.map(|s| serde_json::json!({
            "cpu_cores": cpu_cores(s, elapsed),
            "cpu_us_per_request": (s.1.cpu_us - s.0.cpu_us) as f64 / t.requests.max(1) as f64,
            "rss_bytes": s.1.rss_bytes,
        })),
    })
}
