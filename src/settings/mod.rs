//! The one typed settings tree, loaded in layers by the `config` crate ([`load`]) and checked
//! before start-up.
//!
//! Layers, later wins: `config/default.toml` → `config/{TICKER_ENV}.toml` (if `TICKER_ENV` is set)
//! → the file given by `--config PATH` → environment variables `TICKER__SECTION__KEY`.
//!
//! Adding a setting: one field here with its doc comment and its bounds (`#[validate(...)]`,
//! or a value type from [`types`] that carries its own rule), and its default with a comment
//! in `config/default.toml`. A test fails if the file and this tree disagree on any key.
//! Values are never coerced ([`strict`]); durations are [`Millis`] (at most a day); secrets are
//! [`Secret`]; lists are parsed once into their typed form. This module imports no other area.

mod load;
pub mod strict;
pub mod types;

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

pub use load::{SettingsError, Sources};
pub use types::{AllowedOrigin, Millis, Network, Origin, OriginPattern, PublicHost, Secret};

/// The shortest token `auth.tokens` accepts: guessing must stay out of reach.
pub const MIN_TOKEN_LEN: usize = 16;
/// The shortest `server.handshake_timeout_ms` that is reliably enforced: actix reads the time
/// for this deadline from a clock that ticks every 500 ms, so a shorter one can fall in the
/// past before it is armed, and then never fires.
pub const MIN_HANDSHAKE_TIMEOUT_MS: u64 = 1000;
/// The shortest `auth.hmac_secret`: 32 characters, as many bytes as the HMAC-SHA256 output.
/// A key read from `auth.hmac_secret_file` is held to it when it is loaded.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[validate(nested)]
    pub server: ServerSettings,
    #[validate(nested)]
    pub feed: FeedSettings,
    #[validate(nested)]
    pub ws: WsSettings,
    #[validate(nested)]
    pub history: HistorySettings,
    #[validate(nested)]
    pub log: LogSettings,
    #[validate(nested)]
    pub nats: NatsSettings,
    #[validate(nested)]
    pub auth: AuthSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// The address to listen on: an IP address (`0.0.0.0` for every interface) or `localhost`.
    #[validate(custom(function = "bind_host"))]
    pub host: String,
    /// 0 asks the OS for any free port; the bound address is logged.
    pub port: u16,
    /// HTTP worker threads; 0 means one per CPU core.
    #[validate(range(max = 256))]
    pub workers: usize,
    /// After a shutdown signal, how long the listener keeps answering (`/readyz` 503) before it stops.
    pub shutdown_grace_ms: Millis,
    /// The longest the server waits for open connections to finish once it stops.
    #[validate(custom(function = "positive_ms"))]
    pub shutdown_timeout_ms: Millis,
    /// After a shutdown signal, the window over which open sessions are closed (each told
    /// first when to reconnect), so their clients do not all reconnect elsewhere at once. 0
    /// closes them all at once.
    #[validate(custom(function = "drain_window"))]
    pub drain_ms: Millis,
    /// This node's name in `welcome`; absent means the host name and port (see `node`).
    #[validate(custom(function = "not_blank"))]
    pub node_id: Option<String>,
    /// SO_SNDBUF of every accepted connection, in bytes (Linux doubles it); 0 leaves the kernel's
    /// autotuning, which may grow to `net.ipv4.tcp_wmem`'s maximum (often 4 MiB) per connection.
    #[validate(custom(function = "send_buffer"))]
    pub send_buffer_bytes: u32,
    /// Open WebSocket sessions at most; past it upgrades get 503. Unset (or 0): as many as
    /// the open-file limit leaves. A value set is lowered at start, with a warning, when it
    /// does not fit the open-file limit (see `access::capacity`).
    pub max_connections: Option<usize>,
    /// Open connections per client address (IPv6: per /64), sessions and plain HTTP; past it
    /// 429. 0 = no limit.
    pub max_connections_per_ip: u32,
    /// Upgrade attempts per second per client address (token bucket); past it 429. 0 = no limit.
    pub connect_rate_per_ip: u32,
    /// Upgrade attempts a client address may make at once before the rate applies.
    pub connect_burst_per_ip: u32,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Network>,
    /// Origins (`scheme://host[:port]`) whose pages may open a WebSocket besides this server's
    /// own; `"*"` allows any. Requests without `Origin` are always allowed.
    pub allowed_origins: Vec<AllowedOrigin>,
    /// The host names this server answers for (`ticker.example.com`, `localhost:8080`): a page
    /// is same-origin only if its origin names one of them. Empty: the loopback names when
    /// bound to loopback, else IP addresses only (a DNS name could be rebound to this server).
    pub public_hosts: Vec<PublicHost>,
    /// How long a new connection has to send its request head (slowloris defence).
    #[validate(custom(function = "handshake_timeout"))]
    pub handshake_timeout_ms: Millis,
    /// How long a connection may sit idle between two plain HTTP requests; 0 closes it after
    /// each answer.
    pub keep_alive_ms: Millis,
    /// From a plain HTTP request's head, how long its answer may wait for the client to read
    /// it; past it the connection is closed.
    #[validate(custom(function = "positive_ms"))]
    pub request_timeout_ms: Millis,
    /// Requests one connection may make; the answer to the last says `Connection: close`.
    /// 0 = no limit.
    pub max_requests_per_connection: u32,
    /// Connections kept for plain HTTP (health checks, scrapes, polls, upgrade requests) on top
    /// of the `max_connections` sessions; every connection counts against the sum. Unset: 1000,
    /// or half of what the open-file limit leaves if that is less.
    pub http_headroom: Option<usize>,
    /// Longest request target (path and query) in bytes; longer ones get 414. 0 = no limit.
    pub max_uri_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct FeedSettings {
    /// Where quotes come from: the embedded simulated market, or a `ticker publish` over NATS.
    pub source: FeedSource,
    #[validate(custom(function = "positive_ms"))]
    pub tick_interval_ms: Millis,
    /// Fixed seed for a reproducible market; absent means a fresh random seed per run.
    pub seed: Option<u64>,
    /// Bid/ask spread in basis points of the price; at most 10 % (1000 bps).
    #[validate(range(min = 0.0, max = 1000.0))]
    pub spread_bps: f64,
    /// Simulated market seconds per wall-clock second; makes the random walk visible in a demo.
    /// At most 100,000, beyond which one tick moves prices by more than a trading year.
    #[validate(range(exclusive_min = 0.0, max = 100_000.0))]
    pub time_scale: f64,
    /// Probability that a symbol moves on a given tick.
    #[validate(range(exclusive_min = 0.0, max = 1.0))]
    pub update_probability: f64,
    /// A symbol that has not moved for this many ticks moves on the next one.
    pub max_quiet_ticks: u32,
    #[validate(length(min = 1, max = 65535), nested)]
    pub symbols: Vec<SymbolSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedSource {
    Simulated,
    Nats,
}

/// The NATS connection of `ticker publish` and of edges (`feed.source = "nats"`); see docs/cluster.md.
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct NatsSettings {
    /// One server URL, or several separated by commas.
    #[validate(custom(function = "not_blank"))]
    pub url: String,
    /// Quotes go to `{prefix}.quotes.{SYMBOL}`, snapshots are asked for on `{prefix}.snapshot`.
    #[validate(custom(function = "subject_prefix"))]
    pub subject_prefix: String,
    /// A `.creds` file (JWT and NKey seed).
    pub credentials_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub token: Option<Secret>,
    /// Refuse to talk to the server without TLS.
    pub tls_required: bool,
    /// PEM file with the certificate authorities that sign the server's certificate.
    pub tls_ca_file: Option<PathBuf>,
    /// Reconnect backoff: the first retry waits this long, doubling up to `reconnect_max_ms`.
    #[validate(custom(function = "positive_ms"))]
    pub reconnect_min_ms: Millis,
    pub reconnect_max_ms: Millis,
    /// How long an edge waits for the publisher to answer a snapshot request.
    #[validate(custom(function = "positive_ms"))]
    pub request_timeout_ms: Millis,
    /// An edge with a broker but no quote for this long (the publisher is gone) turns stale.
    pub stale_after_ms: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct SymbolSettings {
    #[validate(custom(function = "symbol"))]
    pub symbol: String,
    #[validate(length(max = 200))]
    pub name: String,
    /// The previous close (the day's open), in dollars.
    #[validate(range(exclusive_min = 0.0, max = 1_000_000_000.0))]
    pub price: f64,
    /// Annualised volatility of the geometric Brownian motion (0.25 = 25 %).
    #[validate(range(min = 0.0, max = 10.0))]
    pub volatility: f64,
    /// Annualised drift of the geometric Brownian motion.
    #[serde(default)]
    #[validate(range(min = -10.0, max = 10.0))]
    pub drift: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct WsSettings {
    #[validate(custom(function = "positive_ms"))]
    pub heartbeat_interval_ms: Millis,
    pub idle_timeout_ms: Millis,
    #[validate(range(min = 64, max = 16_777_216))]
    pub max_message_bytes: usize,
    #[validate(range(min = 1))]
    pub max_subscriptions: usize,
    /// How long a send may wait on a client that does not read before the client is dropped.
    #[validate(custom(function = "positive_ms"))]
    pub slow_client_timeout_ms: Millis,
    /// Client messages per second per session (token bucket); the excess gets `rate_limited`.
    /// 0 = no limit.
    pub max_client_messages_per_sec: u32,
    /// Messages a session may send at once before the rate applies.
    pub client_message_burst: u32,
    /// Excess messages tolerated within 10 s; one more closes the session with 1008.
    pub max_excess_messages: u32,
    /// Most symbols in one subscribe or unsubscribe request (or `?symbols=`).
    #[validate(range(min = 1))]
    pub max_symbols_per_request: usize,
    /// permessage-deflate (RFC 7692) for clients that offer it. `shared` (the default) compresses
    /// each tick's whole frame once and sends the same bytes to every client that takes it, so
    /// compression costs CPU per tick, not per client, at the price of no context takeover
    /// between messages; `per_connection` keeps a compressor per client (better ratios, CPU and
    /// about 250 KiB of memory per client); `off` never negotiates it.
    pub compression: Compression,
}

/// What the feed remembers per symbol (see `feed::history`).
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct HistorySettings {
    /// Updates kept per symbol for resume; 0 = no resume.
    #[validate(range(max = 100_000))]
    pub resume_updates: usize,
    /// The most updates one subscribe replays; symbols past it get a snapshot.
    #[validate(range(max = 1_000_000))]
    pub max_resume_quotes: usize,
    /// One-second bars kept per symbol (at most a day).
    #[validate(range(max = 86_400))]
    pub bars_1s: usize,
    /// One-minute bars kept per symbol (at most a week).
    #[validate(range(max = 10_080))]
    pub bars_1m: usize,
    /// Whether the simulated market starts with a generated past.
    pub generate_past: bool,
}

/// Every delayed tier runs behind by more than nothing.
fn delayed_tiers(tiers: &[Millis]) -> Result<(), ValidationError> {
    if tiers.iter().any(|t| t.ms() == 0) {
        return Err(ValidationError::new("delayed_tiers")
            .with_message("a delayed tier of 0 ms is the live feed: leave it out".into()));
    }
    Ok(())
}

/// `ws.compression`: whether and how server messages are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    Off,
    Shared,
    PerConnection,
}

/// Optional token auth for `/ws` and `/api/*`: static tokens and JWTs (`access::jwt`).
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Accepted static tokens, each good for every symbol; empty (and no JWT key) turns auth off.
    pub tokens: Vec<Secret>,
    /// The HS256 key of JWTs (`ticker token` mints them); absent = no HS256 tokens.
    #[validate(custom(function = "long_secret"))]
    pub hmac_secret: Option<Secret>,
    /// A file holding the HS256 key instead (surrounding white space ignored); re-read on SIGHUP.
    pub hmac_secret_file: Option<PathBuf>,
    /// A PEM public key (RSA, EC P-256 or Ed25519) for RS256, ES256 or EdDSA JWTs; re-read on SIGHUP.
    pub public_key_file: Option<PathBuf>,
    /// A JWKS file (`{"keys":[…]}`) of public keys, chosen by the token's `kid`; re-read on SIGHUP.
    pub jwks_file: Option<PathBuf>,
    /// Accepted `aud` values; a JWT must name one of them. Empty: `aud` is not checked.
    pub audience: Vec<String>,
    /// Accepted `iss` values; a JWT must carry one of them. Empty: `iss` is not checked.
    pub issuer: Vec<String>,
    /// Clock skew forgiven on `exp`, `nbf` and `iat`, in seconds (JWT times are whole seconds).
    #[validate(range(max = 300))]
    pub leeway_secs: u64,
    /// How a browser's upgrade with a token problem is refused: `http` (401/403 before the
    /// upgrade, which a page cannot read) or `close` (101, then a Close with a 40xx code).
    pub browser_refusal: BrowserRefusal,
    /// The delayed tiers served, by delay: a JWT whose `delay_ms` claim is one of them gets that
    /// tier, any other delay is refused. Empty: live only.
    #[validate(custom(function = "delayed_tiers"))]
    pub delayed_tiers_ms: Vec<Millis>,
}

/// `auth.browser_refusal`: how an upgrade from a browser (it sends `Origin`) is refused for its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrowserRefusal {
    Http,
    Close,
}

impl AuthSettings {
    /// Whether any JWT key is configured.
    pub fn has_jwt_keys(&self) -> bool {
        self.hmac_secret.is_some()
            || self.hmac_secret_file.is_some()
            || self.public_key_file.is_some()
            || self.jwks_file.is_some()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter such as `info` or `ticker=debug,actix_server=warn`.
    #[validate(custom(function = "log_filter"))]
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Settings {
    /// Loads every layer and checks the result.
    pub fn load(sources: &Sources) -> Result<Self, SettingsError> {
        load::load(sources)
    }

    /// The defaults alone, checked: what tests start from before overriding fields.
    pub fn defaults() -> Result<Self, SettingsError> {
        Self::load(&Sources {
            env_vars: Some(Vec::new()),
            ..Sources::default()
        })
    }

    /// The effective settings as TOML, for `ticker check-config`; secrets print as `<redacted>`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("settings are plain data and always serialize")
    }

    /// Checks every field's bounds, then the relations between fields; the error names the
    /// first key to change and why. `load` runs it; so can code that edits loaded settings.
    pub fn check(&self) -> Result<(), (String, String)> {
        self.validate()
            .map_err(|errors| load::first_error(&errors))?;
        self.relations()
    }

    /// The relations between settings that no single field's bounds can express; the error
    /// names the key to change.
    fn relations(&self) -> Result<(), (String, String)> {
        let s = self;
        let fail = |key: &str, reason: &str| Err((key.to_owned(), reason.to_owned()));
        if s.ws.heartbeat_interval_ms >= s.ws.idle_timeout_ms {
            return fail(
                "ws.heartbeat_interval_ms",
                "must be less than ws.idle_timeout_ms",
            );
        }
        if s.ws.max_client_messages_per_sec > 0 && s.ws.client_message_burst == 0 {
            return fail(
                "ws.client_message_burst",
                "must be positive when ws.max_client_messages_per_sec is set",
            );
        }
        if s.server.connect_rate_per_ip > 0 && s.server.connect_burst_per_ip == 0 {
            return fail(
                "server.connect_burst_per_ip",
                "must be positive when server.connect_rate_per_ip is set",
            );
        }
        if let Some(longest) = s.auth.delayed_tiers_ms.iter().map(|t| t.ms()).max() {
            // A symbol moves at most once a tick: the ring must hold that many updates.
            let needed = longest.div_ceil(s.feed.tick_interval_ms.ms().max(1));
            if (s.history.resume_updates as u64) < needed {
                let reason = format!(
                    "must be at least {needed} to serve the delayed tier of {longest} ms (its updates \
                     are replayed from the history: the delay divided by feed.tick_interval_ms)"
                );
                return fail("history.resume_updates", &reason);
            }
        }
        let mut seen = HashSet::new();
        for (i, sym) in s.feed.symbols.iter().enumerate() {
            if !seen.insert(sym.symbol.as_str()) {
                return Err((
                    format!("feed.symbols[{i}].symbol"),
                    format!("duplicate symbol {}", sym.symbol),
                ));
            }
        }
        // On an edge: some symbol moves on every tick (none stays quiet past max_quiet_ticks),
        // so a healthy publisher is never silent this long.
        let quiet_ms = s
            .feed
            .tick_interval_ms
            .ms()
            .saturating_mul(u64::from(s.feed.max_quiet_ticks) + 1);
        if s.feed.source == FeedSource::Nats && s.nats.stale_after_ms.ms() <= quiet_ms {
            return fail(
                "nats.stale_after_ms",
                "must be longer than feed.tick_interval_ms * (feed.max_quiet_ticks + 1)",
            );
        }
        if s.nats.user.is_some() != s.nats.password.is_some() {
            return fail("nats.password", "nats.user and nats.password go together");
        }
        let methods = [
            s.nats.credentials_file.is_some(),
            s.nats.user.is_some(),
            s.nats.token.is_some(),
        ];
        if methods.iter().filter(|&&m| m).count() > 1 {
            return fail(
                "nats.token",
                "use one of nats.credentials_file, nats.user/password or nats.token",
            );
        }
        if s.nats.reconnect_min_ms > s.nats.reconnect_max_ms {
            return fail(
                "nats.reconnect_max_ms",
                "must be at least nats.reconnect_min_ms",
            );
        }
        if s.auth.hmac_secret.is_some() && s.auth.hmac_secret_file.is_some() {
            return fail(
                "auth.hmac_secret_file",
                "use one of auth.hmac_secret and auth.hmac_secret_file",
            );
        }
        for (i, token) in s.auth.tokens.iter().enumerate() {
            let token = token.expose();
            if token.len() < MIN_TOKEN_LEN
                || !token.bytes().all(|b| b.is_ascii_graphic() && b != b',')
            {
                return Err((
                    format!("auth.tokens[{i}]"),
                    format!(
                        "must be at least {MIN_TOKEN_LEN} printable ASCII characters, without spaces or commas"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl ServerSettings {
    /// `node_id`, else the host name (containers set it to the container id) with this
    /// process's port (or its pid with port 0), so two processes on one host differ; without a
    /// host name, a random name.
    pub fn node(&self) -> String {
        if let Some(id) = &self.node_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty());
        match host {
            Some(host) if self.port != 0 => format!("{host}:{}", self.port),
            Some(host) => format!("{host}-{}", std::process::id()),
            None => {
                use rand::RngExt;
                let n: u32 = rand::make_rng::<rand::rngs::StdRng>().random();
                format!("node-{n:08x}")
            }
        }
    }
}

impl NatsSettings {
    /// The wait before reconnect attempt `attempts` (counted from 1): doubling from the minimum.
    pub fn reconnect_delay(&self, attempts: usize) -> std::time::Duration {
        let doublings = attempts.saturating_sub(1).min(20) as u32;
        let ms = self.reconnect_min_ms.ms().saturating_mul(1 << doublings);
        std::time::Duration::from_millis(ms.min(self.reconnect_max_ms.ms()))
    }
}

/// Ticker symbols as exchanges print them: `AAPL`, `BRK.B`, `BF-B`.
pub fn is_valid_symbol(symbol: &str) -> bool {
    (1..=12).contains(&symbol.len())
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// The levels a `log.level` directive may name.
const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

// Field rules for `#[validate(custom(...))]`: each returns the reason as its message.

fn rule(ok: bool, reason: &'static str) -> Result<(), ValidationError> {
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new("invalid").with_message(reason.into()))
    }
}

fn positive_ms(ms: &Millis) -> Result<(), ValidationError> {
    rule(ms.ms() > 0, "must be positive")
}

/// The longest `server.drain_ms`: a rolling deploy waits this long per node.
pub const MAX_DRAIN_MS: u64 = 300_000;

fn drain_window(ms: &Millis) -> Result<(), ValidationError> {
    rule(
        ms.ms() <= MAX_DRAIN_MS,
        "must be at most 300000 (5 minutes)",
    )
}

fn handshake_timeout(ms: &Millis) -> Result<(), ValidationError> {
    rule(
        ms.ms() >= MIN_HANDSHAKE_TIMEOUT_MS,
        "must be at least 1000 (the deadline is read from a clock that ticks every 500 ms)",
    )
}

fn not_blank(text: &str) -> Result<(), ValidationError> {
    rule(
        !text.trim().is_empty(),
        "must not be empty (leave it unset instead)",
    )
}

fn bind_host(host: &str) -> Result<(), ValidationError> {
    rule(
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok(),
        "must be an IP address such as 127.0.0.1, 0.0.0.0 or ::, or localhost",
    )
}

fn send_buffer(bytes: u32) -> Result<(), ValidationError> {
    rule(
        bytes == 0 || (4096..=64 * 1024 * 1024).contains(&bytes),
        "must be 0 (kernel autotuning) or from 4096 to 67108864",
    )
}

fn symbol(symbol: &str) -> Result<(), ValidationError> {
    rule(
        is_valid_symbol(symbol),
        "must be 1 to 12 characters of A-Z, 0-9, '.' or '-'",
    )
}

fn subject_prefix(prefix: &str) -> Result<(), ValidationError> {
    // NATS subject tokens for our prefix: no wildcards, no spaces, no empty tokens.
    let valid = !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    rule(
        valid,
        "must be dot-separated tokens of letters, digits, '-' or '_'",
    )
}

fn long_secret(secret: &Secret) -> Result<(), ValidationError> {
    rule(
        secret.expose().len() >= MIN_SECRET_LEN,
        "must be at least 32 characters",
    )
}

/// A tracing filter whose every directive names a level: `info`, `ticker=debug`. A bare word
/// such as `loud` would be read as a target to log at every level, and silence everything else.
fn log_filter(filter: &str) -> Result<(), ValidationError> {
    let level_ok = |level: &str| LOG_LEVELS.contains(&level.trim().to_ascii_lowercase().as_str());
    let valid = !filter.trim().is_empty()
        && filter
            .split(',')
            .all(|directive| match directive.rsplit_once('=') {
                Some((target, level)) => !target.trim().is_empty() && level_ok(level),
                None => level_ok(directive),
            })
        && tracing_subscriber::EnvFilter::try_new(filter).is_ok();
    rule(
        valid,
        "must be a level (trace, debug, info, warn, error, off) or a list of target=level, \
         such as ticker=debug,actix_server=warn",
    )
}
