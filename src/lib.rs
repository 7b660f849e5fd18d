//! `ticker`: a live stock-ticker push service. A simulated market moves prices by geometric
//! Brownian motion; every change is pushed over WebSocket to the clients subscribed to it, and
//! the same quotes are served to HTTP pollers.
//!
//! # Layout
//! Folders by area; each `mod.rs` says what its area owns and what it may import. Dependencies
//! point one way, down this list: an area imports only areas below it (`tests/layout.rs`
//! checks it), so nothing imports [`app`], and [`settings`], [`clock`] and [`shutdown`] import
//! no other area.
//! - [`app`]: `Application`, which assembles every area from `Settings`, binds and runs until
//!   shutdown.
//! - [`cluster`]: cluster mode on NATS (docs/cluster.md): the publisher (`ticker publish`, which
//!   reuses `http`'s health checks), the edge feed, subjects and message shapes, the ordering rule.
//! - [`http`]: the HTTP face: routes (WebSocket upgrade, polling API, health, metrics,
//!   dashboard), `ApiError`, and `AppState`, the state every handler shares.
//! - [`session`]: the per-connection WebSocket actor, with its inbound frames, outbound frames
//!   and the response body that writes them, subscription (what it sends, conflation),
//!   heartbeat and frame guard.
//! - [`access`]: who may connect: admission (connection limits, connect rate), client address
//!   behind trusted proxies, origin policy, tokens, token buckets.
//! - [`metrics`]: the Prometheus metrics served at `/metrics`.
//! - [`feed`]: the feed actor and its handle, the simulated market, the symbol universe.
//! - [`telemetry`], logging.
//! - [`protocol`]: wire protocol v1 (docs/protocol.md): messages, `Quote`, frame builders.
//! - [`settings`]: the typed settings tree, loaded in layers and checked.
//! - [`clock`], [`shutdown`]: wall-clock time; signals.

pub mod access;
pub mod app;
pub mod clock;
pub mod cluster;
pub mod feed;
pub(crate) mod http;
pub(crate) mod metrics;
pub mod protocol;
pub mod session;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
