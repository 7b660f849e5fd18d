//! The one typed settings tree, loaded in layers by the `config` crate and validated before start-up.
//!
//! Layers, later wins: `config/default.toml` → `config/{TICKER_ENV}.toml` (if `TICKER_ENV` is set)
//! → the file given by `--config PATH` → environment variables `TICKER__SECTION__KEY`.
//! Durations are stored as integer milliseconds with accessor methods that return `Duration`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

use crate::access::client_ip::TrustedProxies;
use crate::access::origin::OriginPolicy;

/// The defaults, compiled in so the binary runs from any working directory.
const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Settings that are lists; as environment variables their entries are separated by commas.
const LIST_KEYS: [&str; 3] = [
    "server.trusted_proxies",
    "server.allowed_origins",
    "auth.tokens",
];

/// The shortest token `auth.tokens` accepts: guessing must stay out of reach.
pub const MIN_TOKEN_LEN: usize = 16;
/// The shortest `server.handshake_timeout_ms` that is reliably enforced.
pub const MIN_HANDSHAKE_TIMEOUT_MS: u64 = 1000;
/// The shortest `auth.hmac_secret`: 32 characters, as many bytes as the HMAC-SHA256 output.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub feed: FeedSettings,
    pub ws: WsSettings,
    pub log: LogSettings,
    pub nats: NatsSettings,
    pub auth: AuthSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// 0 asks the OS for any free port; the bound address is logged.
    pub port: u16,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// After a shutdown signal, how long the listener keeps answering (`/readyz` 503) before it stops.
    pub shutdown_grace_ms: u64,
    /// The longest the server waits for open connections to finish once it stops.
    pub shutdown_timeout_ms: u64,
    /// This node's name in `welcome`; absent means the host name (or a random one).
    pub node_id: Option<String>,
    /// SO_SNDBUF of every accepted connection, in bytes (Linux doubles it); 0 leaves the kernel's
    /// autotuning, which may grow to `net.ipv4.tcp_wmem`'s maximum (often 4 MiB) per connection.
    pub send_buffer_bytes: u32,
    /// Open WebSocket sessions at most; past it upgrades get 503. 0 = no limit.
    pub max_connections: usize,
    /// Open WebSocket sessions per client address (IPv6: per /64); past it 429. 0 = no limit.
    pub max_connections_per_ip: u32,
    /// Upgrade attempts per second per client address (token bucket); past it 429. 0 = no limit.
    pub connect_rate_per_ip: u32,
    /// Upgrade attempts a client address may make at once before the rate applies.
    pub connect_burst_per_ip: u32,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose pages may open a WebSocket besides this server's
    /// own; `"*"` allows any. Requests without `Origin` are always allowed.
    pub allowed_origins: Vec<String>,
    /// How long a new connection has to send its request head (slowloris defence).
    pub handshake_timeout_ms: u64,
    /// Longest request target (path and query) in bytes; longer ones get 414. 0 = no limit.
    pub max_uri_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSettings {
    /// Where quotes come from: the embedded simulated market, or a `ticker publish` over NATS.
    pub source: FeedSource,
    pub tick_interval_ms: u64,
    /// Fixed seed for a reproducible market; absent means a fresh random seed per run.
    pub seed: Option<u64>,
    pub spread_bps: f64,
    /// Simulated market seconds per wall-clock second; makes the random walk visible in a demo.
    pub time_scale: f64,
    /// Probability that a symbol moves on a given tick.
    pub update_probability: f64,
    /// A symbol that has not moved for this many ticks moves on the next one.
    pub max_quiet_ticks: u32,
    pub symbols: Vec<SymbolSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedSource {
    Simulated,
    Nats,
}

/// The NATS connection of `ticker publish` and of edges (`feed.source = "nats"`); see docs/cluster.md.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSettings {
    /// One server URL, or several separated by commas.
    pub url: String,
    /// Quotes go to `{prefix}.quotes.{SYMBOL}`, snapshots are asked for on `{prefix}.snapshot`.
    pub subject_prefix: String,
    /// A `.creds` file (JWT and NKey seed).
    pub credentials_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// Refuse to talk to the server without TLS.
    pub tls_required: bool,
    /// PEM file with the certificate authorities that sign the server's certificate.
    pub tls_ca_file: Option<PathBuf>,
    /// Reconnect backoff: the first retry waits this long, doubling up to `reconnect_max_ms`.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// How long an edge waits for the publisher to answer a snapshot request.
    pub request_timeout_ms: u64,
    /// An edge with a broker but no quote for this long (the publisher is gone) turns stale.
    pub stale_after_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolSettings {
    pub symbol: String,
    pub name: String,
    pub price: f64,
    /// Annualised volatility of the geometric Brownian motion (0.25 = 25 %).
    pub volatility: f64,
    /// Annualised drift of the geometric Brownian motion.
    #[serde(default)]
    pub drift: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsSettings {
    pub heartbeat_interval_ms: u64,
    pub idle_timeout_ms: u64,
    pub max_message_bytes: usize,
    pub max_subscriptions: usize,
    /// How long a send may wait on a client that does not read before the client is dropped.
    pub slow_client_timeout_ms: u64,
    /// Client messages per second per session (token bucket); the excess gets `rate_limited`.
    /// 0 = no limit.
    pub max_client_messages_per_sec: u32,
    /// Messages a session may send at once before the rate applies.
    pub client_message_burst: u32,
    /// Excess messages tolerated within 10 s; one more closes the session with 1008.
    pub max_excess_messages: u32,
    /// Most symbols in one subscribe or unsubscribe request (or `?symbols=`).
    pub max_symbols_per_request: usize,
}

/// Optional token auth for `/ws` and `/api/*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Accepted tokens; empty (and no `hmac_secret`) turns auth off.
    pub tokens: Vec<String>,
    /// The key of signed, expiring tokens (`ticker token` mints them); absent = none accepted.
    pub hmac_secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter directive such as `info` or `ticker=debug,actix_server=warn`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Why settings could not be loaded; every variant names what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot load settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

/// The longest any `*_ms` setting may be: one day.
const MAX_DURATION_MS: u64 = 86_400_000;

/// Where the layers come from; tests point these at temporary files and variables.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Folder holding `{TICKER_ENV}.toml`; `config` relative to the working directory by default.
    pub config_dir: Option<PathBuf>,
    /// The value of `TICKER_ENV`.
    pub environment: Option<String>,
    /// The file given by `--config PATH`.
    pub file: Option<PathBuf>,
    /// Variables to read instead of the process environment (tests only).
    pub env_vars: Option<Vec<(String, String)>>,
}

impl Sources {
    /// The sources a real process uses: `TICKER_ENV`, `--config`, and its environment.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Self {
            config_dir: None,
            environment: std::env::var("TICKER_ENV").ok().filter(|v| !v.is_empty()),
            file,
            env_vars: None,
        }
    }
}

impl Settings {
    /// Loads every layer and validates the result.
    pub fn load(sources: &Sources) -> Result<Self, SettingsError> {
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(env) = &sources.environment {
            let dir = sources
                .config_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("config"));
            builder =
                builder.add_source(File::from(dir.join(format!("{env}.toml"))).required(true));
        }
        if let Some(path) = &sources.file {
            builder = builder.add_source(File::from(path.as_path()).required(true));
        }
        let mut env = Environment::with_prefix("TICKER")
            .separator("__")
            .try_parsing(true)
            .list_separator(",");
        for key in LIST_KEYS {
            env = env.with_list_parse_key(key);
        }
        if let Some(vars) = &sources.env_vars {
            env = env.source(Some(vars.iter().cloned().collect()));
        }
        let settings: Settings = builder.add_source(env).build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The defaults alone, validated: what tests start from before overriding fields.
    pub fn defaults() -> Result<Self, SettingsError> {
        Self::load(&Sources {
            env_vars: Some(Vec::new()),
            ..Sources::default()
        })
    }

    /// Checks the relations the types cannot express; the error names the offending key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let s = self;
        // Durations become deadlines (`Instant + duration`), which must not overflow.
        for (key, ms) in [
            ("server.shutdown_grace_ms", s.server.shutdown_grace_ms),
            ("server.shutdown_timeout_ms", s.server.shutdown_timeout_ms),
            ("feed.tick_interval_ms", s.feed.tick_interval_ms),
            ("nats.reconnect_min_ms", s.nats.reconnect_min_ms),
            ("nats.reconnect_max_ms", s.nats.reconnect_max_ms),
            ("nats.request_timeout_ms", s.nats.request_timeout_ms),
            ("nats.stale_after_ms", s.nats.stale_after_ms),
            ("ws.heartbeat_interval_ms", s.ws.heartbeat_interval_ms),
            ("ws.idle_timeout_ms", s.ws.idle_timeout_ms),
            ("ws.slow_client_timeout_ms", s.ws.slow_client_timeout_ms),
            ("server.handshake_timeout_ms", s.server.handshake_timeout_ms),
        ] {
            ensure(
                ms <= MAX_DURATION_MS,
                key,
                "must be at most 86400000 (one day)",
            )?;
        }
        ensure(
            !s.server.host.is_empty(),
            "server.host",
            "must not be empty",
        )?;
        ensure(
            s.server.shutdown_timeout_ms > 0,
            "server.shutdown_timeout_ms",
            "must be positive",
        )?;
        ensure(
            s.server.send_buffer_bytes == 0 || s.server.send_buffer_bytes >= 4096,
            "server.send_buffer_bytes",
            "must be 0 (kernel autotuning) or at least 4096",
        )?;
        ensure(
            s.feed.tick_interval_ms > 0,
            "feed.tick_interval_ms",
            "must be positive",
        )?;
        ensure(
            s.feed.spread_bps.is_finite() && s.feed.spread_bps >= 0.0,
            "feed.spread_bps",
            "must be a non-negative number",
        )?;
        ensure(
            s.feed.time_scale.is_finite() && s.feed.time_scale > 0.0,
            "feed.time_scale",
            "must be positive",
        )?;
        ensure(
            s.feed.update_probability > 0.0 && s.feed.update_probability <= 1.0,
            "feed.update_probability",
            "must be in (0, 1]",
        )?;
        ensure(
            !s.feed.symbols.is_empty(),
            "feed.symbols",
            "must list at least one symbol",
        )?;
        ensure(
            s.feed.symbols.len() <= usize::from(u16::MAX),
            "feed.symbols",
            "too many symbols",
        )?;
        let mut seen = HashSet::new();
        for (i, sym) in s.feed.symbols.iter().enumerate() {
            let key = |field: &str| format!("feed.symbols[{i}].{field}");
            ensure_key(
                is_valid_symbol(&sym.symbol),
                key("symbol"),
                "must be 1 to 12 characters of A-Z, 0-9, '.' or '-'",
            )?;
            ensure_key(
                seen.insert(sym.symbol.as_str()),
                key("symbol"),
                &format!("duplicate symbol {}", sym.symbol),
            )?;
            ensure_key(
                sym.price.is_finite() && sym.price > 0.0,
                key("price"),
                "must be positive",
            )?;
            ensure_key(
                sym.volatility.is_finite() && sym.volatility >= 0.0,
                key("volatility"),
                "must be a non-negative number",
            )?;
            ensure_key(
                sym.drift.is_finite(),
                key("drift"),
                "must be a finite number",
            )?;
        }
        ensure(
            s.ws.heartbeat_interval_ms > 0,
            "ws.heartbeat_interval_ms",
            "must be positive",
        )?;
        ensure(
            s.ws.heartbeat_interval_ms < s.ws.idle_timeout_ms,
            "ws.heartbeat_interval_ms",
            "must be less than ws.idle_timeout_ms",
        )?;
        ensure(
            s.ws.max_message_bytes >= 64,
            "ws.max_message_bytes",
            "must be at least 64",
        )?;
        ensure(
            s.ws.max_subscriptions > 0,
            "ws.max_subscriptions",
            "must be positive",
        )?;
        ensure(
            s.ws.slow_client_timeout_ms > 0,
            "ws.slow_client_timeout_ms",
            "must be positive",
        )?;
        // On an edge: some symbol moves on every tick (none stays quiet past max_quiet_ticks),
        // so a healthy publisher is never silent this long.
        let quiet_ms = s
            .feed
            .tick_interval_ms
            .saturating_mul(u64::from(s.feed.max_quiet_ticks) + 1);
        ensure(
            s.feed.source == FeedSource::Simulated || s.nats.stale_after_ms > quiet_ms,
            "nats.stale_after_ms",
            "must be longer than feed.tick_interval_ms * (feed.max_quiet_ticks + 1)",
        )?;
        ensure(
            tracing_subscriber::EnvFilter::try_new(&s.log.level).is_ok(),
            "log.level",
            "is not a valid tracing filter",
        )?;
        ensure(
            s.server
                .node_id
                .as_ref()
                .is_none_or(|id| !id.trim().is_empty()),
            "server.node_id",
            "must not be empty (leave it unset for the host name)",
        )?;
        s.server.validate_limits()?;
        s.ws.validate_limits()?;
        s.auth.validate()?;
        s.nats.validate()
    }

    /// The effective settings as TOML, for `ticker check-config`; secrets are masked.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        for secret in [&mut shown.nats.password, &mut shown.nats.token] {
            if secret.is_some() {
                *secret = Some("<redacted>".to_owned());
            }
        }
        for token in &mut shown.auth.tokens {
            *token = "<redacted>".to_owned();
        }
        if shown.auth.hmac_secret.is_some() {
            shown.auth.hmac_secret = Some("<redacted>".to_owned());
        }
        toml::to_string_pretty(&shown).expect("settings are plain data and always serialize")
    }
}

impl ServerSettings {
    fn validate_limits(&self) -> Result<(), SettingsError> {
        ensure(
            self.connect_rate_per_ip == 0 || self.connect_burst_per_ip > 0,
            "server.connect_burst_per_ip",
            "must be positive when server.connect_rate_per_ip is set",
        )?;
        // actix reads the time for this deadline from a clock that ticks every 500 ms: a
        // shorter timeout can fall in the past before it is armed, and then never fires.
        ensure(
            self.handshake_timeout_ms >= MIN_HANDSHAKE_TIMEOUT_MS,
            "server.handshake_timeout_ms",
            "must be at least 1000",
        )?;
        if let Err((i, _)) = TrustedProxies::parse(&self.trusted_proxies) {
            return Err(invalid(
                format!("server.trusted_proxies[{i}]"),
                "must be an IP address or a CIDR network such as 10.0.0.0/8",
            ));
        }
        if let Err((i, _)) = OriginPolicy::parse(&self.allowed_origins) {
            return Err(invalid(
                format!("server.allowed_origins[{i}]"),
                "must be \"*\" or an origin such as https://example.com or http://localhost:3000",
            ));
        }
        Ok(())
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
}

impl WsSettings {
    fn validate_limits(&self) -> Result<(), SettingsError> {
        ensure(
            self.max_client_messages_per_sec == 0 || self.client_message_burst > 0,
            "ws.client_message_burst",
            "must be positive when ws.max_client_messages_per_sec is set",
        )?;
        ensure(
            self.max_symbols_per_request > 0,
            "ws.max_symbols_per_request",
            "must be positive",
        )
    }
}

impl AuthSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        for (i, token) in self.tokens.iter().enumerate() {
            ensure_key(
                token.len() >= MIN_TOKEN_LEN
                    && token.bytes().all(|b| b.is_ascii_graphic() && b != b','),
                format!("auth.tokens[{i}]"),
                &format!(
                    "must be at least {MIN_TOKEN_LEN} printable ASCII characters, without spaces or commas"
                ),
            )?;
        }
        ensure(
            self.hmac_secret
                .as_ref()
                .is_none_or(|secret| secret.len() >= MIN_SECRET_LEN),
            "auth.hmac_secret",
            &format!("must be at least {MIN_SECRET_LEN} characters"),
        )
    }
}

impl NatsSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        ensure(!self.url.trim().is_empty(), "nats.url", "must not be empty")?;
        ensure(
            is_valid_subject_prefix(&self.subject_prefix),
            "nats.subject_prefix",
            "must be dot-separated tokens of letters, digits, '-' or '_'",
        )?;
        ensure(
            self.user.is_some() == self.password.is_some(),
            "nats.password",
            "nats.user and nats.password go together",
        )?;
        let methods = [
            self.credentials_file.is_some(),
            self.user.is_some(),
            self.token.is_some(),
        ];
        ensure(
            methods.iter().filter(|&&m| m).count() <= 1,
            "nats.token",
            "use one of nats.credentials_file, nats.user/password or nats.token",
        )?;
        ensure(
            self.reconnect_min_ms > 0,
            "nats.reconnect_min_ms",
            "must be positive",
        )?;
        ensure(
            self.reconnect_min_ms <= self.reconnect_max_ms,
            "nats.reconnect_max_ms",
            "must be at least nats.reconnect_min_ms",
        )?;
        ensure(
            self.request_timeout_ms > 0,
            "nats.request_timeout_ms",
            "must be positive",
        )
    }

    /// The wait before reconnect attempt `attempts` (counted from 1): doubling from the minimum.
    pub fn reconnect_delay(&self, attempts: usize) -> Duration {
        let doublings = attempts.saturating_sub(1).min(20) as u32;
        let ms = self.reconnect_min_ms.saturating_mul(1 << doublings);
        Duration::from_millis(ms.min(self.reconnect_max_ms))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn stale_after(&self) -> Duration {
        Duration::from_millis(self.stale_after_ms)
    }
}

/// NATS subject tokens for our prefix: no wildcards, no spaces, no empty tokens.
fn is_valid_subject_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl ServerSettings {
    /// `node_id`, else the host name (containers set it to the container id), else a random name.
    pub fn node(&self) -> String {
        if let Some(id) = &self.node_id {
            return id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| {
                use rand::RngExt;
                let n: u32 = rand::make_rng::<rand::rngs::StdRng>().random();
                format!("node-{n:08x}")
            })
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
}

impl FeedSettings {
    pub fn tick_interval(&self) -> Duration {
        Duration::from_millis(self.tick_interval_ms)
    }
}

impl WsSettings {
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    pub fn slow_client_timeout(&self) -> Duration {
        Duration::from_millis(self.slow_client_timeout_ms)
    }
}

/// Ticker symbols as exchanges print them: `AAPL`, `BRK.B`, `BF-B`.
pub fn is_valid_symbol(symbol: &str) -> bool {
    (1..=12).contains(&symbol.len())
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

fn ensure(ok: bool, key: &str, reason: &str) -> Result<(), SettingsError> {
    ensure_key(ok, key.to_owned(), reason)
}

fn ensure_key(ok: bool, key: String, reason: &str) -> Result<(), SettingsError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, reason))
    }
}

fn invalid(key: String, reason: &str) -> SettingsError {
    SettingsError::Invalid {
        key,
        reason: reason.to_owned(),
    }
}
