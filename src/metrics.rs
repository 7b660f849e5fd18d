//! What the service counts, exported at `GET /metrics` in the Prometheus (OpenMetrics) text
//! format.
//!
//! Sessions keep their counts in plain integers and add them here in batches (every heartbeat
//! and at close), so the hot path of a tick touches no shared cache line. The feed's figures
//! are read from its latest snapshot at scrape time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};

use crate::clock::now_ms;
use crate::feed::FeedHandle;

/// The OpenMetrics text format's media type, as Prometheus asks for it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Seconds from a tick to its frame being queued for a client.
const TICK_TO_SEND_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Every label is a `&'static str` or a number the server itself produces, never text from a
/// client: a label value is a time series, and a client that could choose it could make the
/// server keep as many series as it likes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// From [`close_label`]: the close code the server closed with (1005: the client's Close had
    /// none; a client's private code only by its range), `none` when the connection was lost
    /// first, `panic` when the session panicked, `dropped` when its task was dropped.
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    pub tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: u16,
}

/// One session's traffic since its last report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionCounts {
    pub frames_out: u64,
    pub bytes_out: u64,
    pub quotes_out: u64,
    pub messages_in: u64,
    pub bytes_in: u64,
    /// Quotes the client never received because it could not keep up: replaced by a newer
    /// state of the symbol, or still pending when the session ended.
    pub conflated: u64,
    /// Times the session fell more than the feed's ring behind (its slot's bound) altogether.
    pub resyncs: u64,
    pub tick_to_send: Latencies,
}

/// Tick-to-send latencies one session observed, by bucket of `TICK_TO_SEND_BUCKETS` (the last
/// one is +Inf): filled on the hot path without touching shared memory, added in batches.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Latencies {
    buckets: [u64; TICK_TO_SEND_BUCKETS.len() + 1],
    sum_ms: u64,
}

impl Latencies {
    pub fn observe_ms(&mut self, ms: u64) {
        let seconds = ms as f64 / 1000.0;
        let bucket = TICK_TO_SEND_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(TICK_TO_SEND_BUCKETS.len());
        self.buckets[bucket] += 1;
        self.sum_ms += ms;
    }

    fn minus(&self, earlier: &Self) -> Self {
        let mut buckets = self.buckets;
        for (b, e) in buckets.iter_mut().zip(earlier.buckets) {
            *b -= e;
        }
        Self {
            buckets,
            sum_ms: self.sum_ms - earlier.sum_ms,
        }
    }
}

impl SessionCounts {
    fn minus(&self, earlier: &Self) -> Self {
        Self {
            tick_to_send: self.tick_to_send.minus(&earlier.tick_to_send),
            frames_out: self.frames_out - earlier.frames_out,
            bytes_out: self.bytes_out - earlier.bytes_out,
            quotes_out: self.quotes_out - earlier.quotes_out,
            messages_in: self.messages_in - earlier.messages_in,
            bytes_in: self.bytes_in - earlier.bytes_in,
            conflated: self.conflated - earlier.conflated,
            resyncs: self.resyncs - earlier.resyncs,
        }
    }
}

/// Every metric the service exports. Shared as `Arc<Metrics>`; every field is a cheap handle.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub connections_open: Gauge,
    pub connections_opened: Counter,
    pub connections_closed: Family<CloseLabels, Counter>,
    pub slow_client_closes: Counter,
    pub idle_closes: Counter,
    pub upgrades_rejected: Family<ReasonLabels, Counter>,
    pub messages_rate_limited: Counter,
    pub rate_limit_closes: Counter,
    frames_sent: Counter,
    bytes_sent: Counter,
    quotes_delivered: Counter,
    quotes_conflated: Counter,
    resyncs: Counter,
    messages_received: Counter,
    bytes_received: Counter,
    tick_to_send: Arc<TickToSend>,
    pub poll_requests: Family<StatusLabels, Counter>,
    /// TCP connections of any kind, and the limits in force (set once at start; 0 = none).
    pub tcp_connections_open: Gauge,
    pub tcp_connections_limit: Gauge,
    pub connections_limit: Gauge,
    connections_refused: Family<ReasonLabels, Counter>,
    http_closes: Family<ReasonLabels, Counter>,
    pub uri_too_long: Counter,
    pub session_stalls: Counter,
    auth_refusals: Family<ReasonLabels, Counter>,
    sessions_by_tier: Family<TierLabels, Gauge>,
    pub token_expiry_closes: Counter,
    token_refreshes: Family<ResultLabels, Counter>,
}

impl Metrics {
    /// Builds the registry; `feed` is read at every scrape for the feed's own figures.
    pub fn new(feed: FeedHandle) -> Arc<Self> {
        let mut m = Self::unregistered();
        m.registry = m.registry_for(feed);
        Arc::new(m)
    }

    fn unregistered() -> Self {
        Self {
            registry: Registry::default(),
            connections_open: Gauge::default(),
            connections_opened: Counter::default(),
            connections_closed: Family::default(),
            slow_client_closes: Counter::default(),
            idle_closes: Counter::default(),
            upgrades_rejected: Family::default(),
            messages_rate_limited: Counter::default(),
            rate_limit_closes: Counter::default(),
            frames_sent: Counter::default(),
            bytes_sent: Counter::default(),
            quotes_delivered: Counter::default(),
            quotes_conflated: Counter::default(),
            resyncs: Counter::default(),
            messages_received: Counter::default(),
            bytes_received: Counter::default(),
            tick_to_send: Arc::default(),
            poll_requests: Family::default(),
            tcp_connections_open: Gauge::default(),
            tcp_connections_limit: Gauge::default(),
            connections_limit: Gauge::default(),
            connections_refused: Family::default(),
            http_closes: Family::default(),
            uri_too_long: Counter::default(),
            session_stalls: Counter::default(),
            auth_refusals: Family::default(),
            sessions_by_tier: Family::default(),
            token_expiry_closes: Counter::default(),
            token_refreshes: Family::default(),
        }
    }

    fn registry_for(&self, feed: FeedHandle) -> Registry {
        let m = self;
        let mut registry = Registry::with_prefix("ticker");
        let r = &mut registry;
        r.register(
            "connections_open",
            "WebSocket sessions open now",
            m.connections_open.clone(),
        );
        r.register(
            "connections_opened",
            "WebSocket sessions opened",
            m.connections_opened.clone(),
        );
        r.register(
            "connections_closed",
            "WebSocket sessions closed, by the server's close code (none: the connection was lost)",
            m.connections_closed.clone(),
        );
        r.register(
            "slow_client_closes",
            "Sessions closed with 1008 for not reading past ws.slow_client_timeout_ms",
            m.slow_client_closes.clone(),
        );
        r.register(
            "idle_closes",
            "Sessions closed with 4408 for silence past ws.idle_timeout_ms",
            m.idle_closes.clone(),
        );
        r.register(
            "upgrades_rejected",
            "WebSocket upgrade requests refused before the upgrade, by reason",
            m.upgrades_rejected.clone(),
        );
        r.register(
            "messages_rate_limited",
            "Client messages dropped with a rate_limited error for exceeding ws.max_client_messages_per_sec",
            m.messages_rate_limited.clone(),
        );
        r.register(
            "rate_limit_closes",
            "Sessions closed with 1008 for sending too fast past ws.max_excess_messages",
            m.rate_limit_closes.clone(),
        );
        r.register(
            "frames_sent",
            "WebSocket frames handed to client connections (data and control)",
            m.frames_sent.clone(),
        );
        r.register_with_unit(
            "ws_sent",
            "Wire bytes of those frames, headers included",
            Unit::Bytes,
            m.bytes_sent.clone(),
        );
        r.register(
            "quotes_delivered",
            "Quotes queued to clients (a frame carries one or more)",
            m.quotes_delivered.clone(),
        );
        r.register(
            "quotes_conflated",
            "Quotes a slow client never received: replaced by a newer state, or pending at its close",
            m.quotes_conflated.clone(),
        );
        r.register(
            "session_resyncs",
            "Times a session fell more ticks behind than the feed keeps and resynced from the snapshot",
            m.resyncs.clone(),
        );
        r.register(
            "messages_received",
            "Text messages received from clients",
            m.messages_received.clone(),
        );
        r.register_with_unit(
            "ws_received",
            "Payload bytes of the text messages received from clients",
            Unit::Bytes,
            m.bytes_received.clone(),
        );
        r.register_collector(Box::new(Arc::clone(&m.tick_to_send)));
        r.register(
            "poll_requests",
            "GET /api/quotes requests, by response status (304 = unchanged)",
            m.poll_requests.clone(),
        );
        r.register(
            "connections_limit",
            "WebSocket sessions the server takes at most, after fitting the open-file limit (0 = no limit)",
            m.connections_limit.clone(),
        );
        r.register(
            "tcp_connections_open",
            "TCP connections open now: sessions, plain HTTP and upgrade requests",
            m.tcp_connections_open.clone(),
        );
        r.register(
            "tcp_connections_limit",
            "TCP connections the server takes at most: sessions plus server.http_headroom, after fitting the open-file limit (0 = no limit)",
            m.tcp_connections_limit.clone(),
        );
        r.register(
            "tcp_connections_refused",
            "TCP connections refused at accept, answered 503 or 429 at once, by reason",
            m.connections_refused.clone(),
        );
        r.register(
            "http_connection_closes",
            "Plain HTTP connections the server closed early, by reason: request_body, request_timeout, max_requests",
            m.http_closes.clone(),
        );
        r.register(
            "uri_too_long",
            "Requests refused with 414 for a target longer than server.max_uri_bytes",
            m.uri_too_long.clone(),
        );
        r.register(
            "session_stalls",
            "Session timers (heartbeat, slow client) that fired too late to judge the client: the server itself stalled, and the client's clock was restarted instead",
            m.session_stalls.clone(),
        );
        r.register(
            "auth_refusals",
            "Requests refused for their token, on /ws, /api/* and the auth op, by reason: missing, invalid, expired, forbidden (a tier the token does not grant), forbidden_symbol (symbols it does not open)",
            m.auth_refusals.clone(),
        );
        r.register(
            "sessions_open_by_tier",
            "WebSocket sessions open now, by service tier (live, delayed)",
            m.sessions_by_tier.clone(),
        );
        r.register(
            "token_expiry_closes",
            "Sessions closed with 4004 because their token expired before a fresh one came with auth",
            m.token_expiry_closes.clone(),
        );
        r.register(
            "token_refreshes",
            "Tokens sent on open sessions with the auth op, by result: accepted, refused",
            m.token_refreshes.clone(),
        );
        r.register_collector(Box::new(FeedCollector(feed)));
        r.register_collector(Box::new(LogCollector));
        r.register_collector(Box::new(ProcessCollector));
        registry
    }

    /// Adds a session's counts since its last report.
    pub fn record(&self, now: &SessionCounts, reported: &mut SessionCounts) {
        let d = now.minus(reported);
        *reported = *now;
        self.frames_sent.inc_by(d.frames_out);
        self.bytes_sent.inc_by(d.bytes_out);
        self.quotes_delivered.inc_by(d.quotes_out);
        self.quotes_conflated.inc_by(d.conflated);
        self.resyncs.inc_by(d.resyncs);
        self.messages_received.inc_by(d.messages_in);
        self.bytes_received.inc_by(d.bytes_in);
        self.tick_to_send.add(&d.tick_to_send);
    }

    /// Counts a session on `tier` in; the guard counts it out however it ends, a panic included.
    pub fn session_opened(self: &Arc<Self>, tier: &'static str) -> OpenSession {
        self.connections_opened.inc();
        self.connections_open.inc();
        self.tier_sessions(tier, 1);
        OpenSession {
            metrics: Arc::clone(self),
            tier,
            end: None,
        }
    }

    pub fn rejected(&self, reason: &'static str) {
        self.upgrades_rejected
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A request refused for its token; `reason` is `TokenProblem::label` or `forbidden_symbol`.
    pub fn auth_refused(&self, reason: &'static str) {
        self.auth_refusals
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A session on `tier` opened (`+1`) or closed (`-1`).
    pub fn tier_sessions(&self, tier: &'static str, delta: i64) {
        self.sessions_by_tier
            .get_or_create(&TierLabels { tier })
            .inc_by(delta);
    }

    /// A token sent with the auth op was `accepted` or `refused`.
    pub fn token_refreshed(&self, accepted: bool) {
        let result = if accepted { "accepted" } else { "refused" };
        self.token_refreshes
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn http_closed(&self, reason: &'static str) {
        self.http_closes
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn polled(&self, status: u16) {
        self.poll_requests
            .get_or_create(&StatusLabels { status })
            .inc();
    }

    /// The whole exposition, `# EOF` included.
    pub fn encode(&self) -> String {
        let mut body = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut body, &self.registry)
            .expect("writing to a String never fails");
        body
    }
}

/// One open session in the metrics. `closed` records how it ended; dropped without that (a
/// panic, or the runtime dropping the task), it is counted under `code="panic"` or
/// `code="dropped"`.
pub struct OpenSession {
    metrics: Arc<Metrics>,
    tier: &'static str,
    end: Option<&'static str>,
}

impl OpenSession {
    /// The server closed with `code`, or (`None`) the connection was lost first.
    pub fn closed(mut self, code: Option<u16>) {
        self.end = Some(close_label(code));
    }
}

/// The codes of RFC 6455 and its registry (1000–1015), by value.
const STANDARD_CLOSE_CODES: [&str; 16] = [
    "1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010", "1011",
    "1012", "1013", "1014", "1015",
];

/// The `code` label for a session that ended with `code` (`None`: the connection was lost). The
/// set is fixed: the standard codes, the server's own private codes 4004 (token expired) and
/// 4408 (idle), and the private
/// codes a client may echo, by range only (`3xxx`, `4xxx`), so 2,000 clients closing with 2,000
/// different codes add two series, not 2,000.
pub fn close_label(code: Option<u16>) -> &'static str {
    match code {
        None => "none",
        Some(code @ 1000..=1015) => STANDARD_CLOSE_CODES[usize::from(code - 1000)],
        // `protocol::close::TOKEN_EXPIRED` and `IDLE`; a test there checks they agree.
        Some(4004) => "4004",
        Some(4408) => "4408",
        Some(3000..=3999) => "3xxx",
        Some(4000..=4999) => "4xxx",
        Some(_) => "other",
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        let code = self.end.take().unwrap_or_else(|| {
            if std::thread::panicking() {
                "panic"
            } else {
                "dropped"
            }
        });
        self.metrics.connections_open.dec();
        self.metrics.tier_sessions(self.tier, -1);
        self.metrics
            .connections_closed
            .get_or_create(&CloseLabels { code })
            .inc();
    }
}

/// `ticker_tick_to_send_seconds`: the sessions' `Latencies`, added up in atomics and encoded
/// as a histogram at scrape time.
#[derive(Debug, Default)]
struct TickToSend {
    buckets: [AtomicU64; TICK_TO_SEND_BUCKETS.len() + 1],
    sum_ms: AtomicU64,
}

impl TickToSend {
    fn add(&self, l: &Latencies) {
        for (total, n) in self.buckets.iter().zip(l.buckets) {
            if n > 0 {
                total.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.sum_ms.fetch_add(l.sum_ms, Ordering::Relaxed);
    }
}

impl Collector for TickToSend {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        // Per-bucket counts; the encoder makes them cumulative.
        let buckets: Vec<(f64, u64)> = TICK_TO_SEND_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.buckets)
            .map(|(le, n)| (le, n.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        encoder
            .encode_descriptor(
                "tick_to_send",
                "Time from a tick to its frame being queued for a client",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// `ticker_log_lines_dropped_total`, read from `telemetry` at scrape time (logging is global,
/// set up before any `Metrics`).
#[derive(Debug)]
struct LogCollector;

impl Collector for LogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let dropped = ConstCounter::new(crate::telemetry::dropped_lines());
        dropped.encode(encoder.encode_descriptor(
            "log_lines_dropped",
            "Log lines lost: stderr could not be written (its reader is gone) or the log queue was full",
            None,
            dropped.metric_type(),
        )?)
    }
}

/// The process's own figures, read from `/proc/self` at scrape time (Linux; elsewhere they are
/// left out), and the build: what an operator watches before a node runs out of descriptors
/// or memory (`docs/operations.md`).
#[derive(Debug)]
struct ProcessCollector;

/// Clock ticks per second of `/proc/PID/stat`'s CPU times (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut gauge = |name: &str, help: &str, unit: Option<&Unit>, value: f64| {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, unit, gauge.metric_type())?)
        };
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            gauge(
                "process_open_fds",
                "Open file descriptors",
                None,
                fds.count() as f64,
            )?;
        }
        if let Ok((soft, _)) = rlimit::Resource::NOFILE.get() {
            gauge(
                "process_max_fds",
                "The open-file limit (soft)",
                None,
                soft as f64,
            )?;
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        {
            let help = "Resident memory";
            gauge(
                "process_resident_memory",
                help,
                Some(&Unit::Bytes),
                kib * 1024.0,
            )?;
        }
        // Fields 14 and 15 of /proc/self/stat, counted after the `)` that ends the name.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let times: Vec<f64> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().skip(11).take(2))
            .into_iter()
            .flatten()
            .filter_map(|t| t.parse().ok())
            .collect();
        if let [user, system] = times[..] {
            let cpu = ConstCounter::new((user + system) / USER_HZ);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu",
                "CPU time used by the process, user and system",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?)?;
        }
        let build = ConstGauge::new(1);
        let mut family = encoder.encode_descriptor(
            "build_info",
            "The running build: always 1, with the version as a label",
            None,
            build.metric_type(),
        )?;
        build.encode(family.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?)
    }
}

/// The feed's figures, read from its latest snapshot at scrape time.
struct FeedCollector(FeedHandle);

impl fmt::Debug for FeedCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FeedCollector")
    }
}

impl Collector for FeedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let latest = self.0.latest();
        let ticks = ConstCounter::new(latest.tick);
        ticks.encode(encoder.encode_descriptor(
            "feed_ticks",
            "Ticks of the feed since it started",
            None,
            ticks.metric_type(),
        )?)?;
        let newest = latest.quotes.iter().map(|q| q.ts).max().unwrap_or(0);
        let age = ConstGauge::new(now_ms().saturating_sub(newest) as f64 / 1000.0);
        age.encode(encoder.encode_descriptor(
            "feed_last_update_age",
            "Seconds since the newest quote of the feed (alert when it grows)",
            Some(&Unit::Seconds),
            age.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_counts_are_reported_once() {
        let m = Metrics::unregistered();
        let mut reported = SessionCounts::default();
        let mut now = SessionCounts {
            frames_out: 3,
            quotes_out: 7,
            ..SessionCounts::default()
        };
        m.record(&now, &mut reported);
        now.frames_out = 5;
        m.record(&now, &mut reported);
        m.record(&now, &mut reported);
        assert_eq!(m.frames_sent.get(), 5);
        assert_eq!(m.quotes_delivered.get(), 7);
        assert_eq!(reported, now);
    }

    /// Close labels come from a fixed set however many codes clients send.
    #[test]
    fn close_labels_are_bounded() {
        assert_eq!(close_label(None), "none");
        assert_eq!(close_label(Some(1000)), "1000");
        assert_eq!(close_label(Some(1015)), "1015");
        assert_eq!(close_label(Some(4408)), "4408");
        let labels: std::collections::HashSet<_> =
            (0..=u16::MAX).map(|c| close_label(Some(c))).collect();
        assert_eq!(close_label(Some(4004)), "4004");
        assert_eq!(labels.len(), 16 + 5, "{labels:?}");
        assert!(labels.contains("3xxx") && labels.contains("4xxx") && labels.contains("other"));
    }
}
