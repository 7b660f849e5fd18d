//! Test support, shared by every test file (`mod support;`). Where to look:
//!
//! - `settings.rs`: every setting the fixtures change, for in-process servers and the binary;
//! - `app.rs`: the server in-process on a free port (`TestApp`);
//! - `process.rs`: the `ticker` binary as a child process, ready when `/readyz` says so;
//! - `http.rs`: asking any running server over HTTP (its symbols, health, readiness);
//! - `client.rs`: a well-behaved WebSocket client (tokio-tungstenite) and seq checks;
//! - `link.rs`: a TCP relay whose connections a test cuts, as a network outage would;
//! - `raw.rs`: a raw-frame client for what a library will not do (stay silent, bad frames);
//! - `metrics.rs`: reading the Prometheus exposition;
//! - `jwt.rs`: key pairs (made by `openssl`), JWKS files and tokens, good and bad;
//! - `cluster.rs`: `nats-server`, a publisher and edges, as `docker-compose.yml` runs them.
//! - `prereq.rs`: tests that need a browser or a broker: ignored with the reason when it is
//!   missing, failed under CI.
#![allow(dead_code)] // each test file uses a different part of this module

pub mod app;
pub mod client;
pub mod cluster;
pub mod http;
pub mod jwt;
pub mod link;
pub mod metrics;
pub mod prereq;
pub mod process;
pub mod raw;
pub mod settings;

use std::time::Duration;

// What most test files use, by its short name (`support::TestApp`); each uses only some.
#[allow(unused_imports)]
pub use app::{Refused, TestApp};
#[allow(unused_imports)]
pub use client::{
    Client, Event, SeqTracker, connect_first, connect_ws, connect_ws_from, watch_gapless,
};
#[allow(unused_imports)]
pub use http::{symbol_count, symbols, wait_healthy, wait_ready, wait_unready};
#[allow(unused_imports)]
pub use metrics::metric_value;
#[allow(unused_imports)]
pub use process::{
    ServerProcess, exit_code_within, listening_addr, signal, start_process, start_server,
    start_server_with_file_limit, terminate, with_test_env,
};
#[allow(unused_imports)]
pub use raw::{
    Answer, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, RawClient, RawHttp,
    connect_from,
};
#[allow(unused_imports)]
pub use settings::test_settings;

/// Long enough for anything that should happen to happen; only failing tests wait this long.
pub const PATIENCE: Duration = Duration::from_secs(10);
