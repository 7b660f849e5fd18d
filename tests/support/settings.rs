//! Every setting the fixtures change from the defaults: `test_settings` for the in-process
//! server (`process.rs` sets the binary's variables).

use ticker::settings::Settings;

/// Settings for tests: any free port, a fast seeded feed, quiet logs.
pub fn test_settings() -> Settings {
    let mut s = Settings::defaults().expect("the default settings are valid");
    s.server.port = 0;
    s.server.workers = 2;
    s.server.shutdown_grace_ms = 300;
    s.feed.tick_interval_ms = 20;
    s.feed.seed = Some(7);
    without_client_limits(&mut s);
    s
}

/// Turns off the per-address and per-session limits of a public endpoint: tests open many
/// connections and send bursts from one address. `tests/limits.rs` turns each on to test it.
pub fn without_client_limits(s: &mut Settings) {
    s.server.max_connections_per_ip = 0;
    s.server.connect_rate_per_ip = 0;
    s.ws.max_client_messages_per_sec = 0;
}
