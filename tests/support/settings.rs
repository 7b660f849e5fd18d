//! Every setting the fixtures change from the defaults, kept as `TICKER__…` variables so the
//! in-process server (`test_settings`, read through `Settings::load`) and the binary
//! (`process.rs` passes them to the child) are configured from the same lists.

use ticker::settings::{Settings, Sources};

/// The per-address and per-session limits of a public endpoint, turned off: every test client
/// comes from one address and some send bursts. `tests/limits.rs` turns each on to test it.
pub const CLIENT_LIMITS_OFF: &[(&str, &str)] = &[
    ("TICKER__SERVER__MAX_CONNECTIONS_PER_IP", "0"),
    ("TICKER__SERVER__CONNECT_RATE_PER_IP", "0"),
    ("TICKER__WS__MAX_CLIENT_MESSAGES_PER_SEC", "0"),
];

/// The in-process server: any free port, two workers, a short grace and no drain window, a fast
/// seeded feed.
pub const IN_PROCESS: &[(&str, &str)] = &[
    ("TICKER__SERVER__PORT", "0"),
    ("TICKER__SERVER__WORKERS", "2"),
    ("TICKER__SERVER__SHUTDOWN_GRACE_MS", "300"),
    ("TICKER__SERVER__DRAIN_MS", "0"),
    ("TICKER__FEED__TICK_INTERVAL_MS", "20"),
    ("TICKER__FEED__SEED", "7"),
];

/// The binary: JSON logs at `info` (kept by `ServerProcess::logs`); a test's own variables
/// come after these and override them. The port is chosen by `process.rs`.
pub const BINARY: &[(&str, &str)] = &[
    ("TICKER__LOG__FORMAT", "json"),
    ("TICKER__LOG__LEVEL", "info"),
    // Sessions close at once on SIGTERM; `tests/drain.rs` tests the drain window.
    ("TICKER__SERVER__DRAIN_MS", "0"),
];

/// Settings for in-process tests: the defaults with `IN_PROCESS` and `CLIENT_LIMITS_OFF`.
pub fn test_settings() -> Settings {
    settings_from(&[IN_PROCESS, CLIENT_LIMITS_OFF].concat())
}

/// The defaults with these variables applied, exactly as the binary would read them.
pub fn settings_from(vars: &[(&str, &str)]) -> Settings {
    let vars = vars
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Settings::load(&Sources {
        env_vars: Some(vars),
        ..Sources::default()
    })
    .expect("the test settings are valid")
}
