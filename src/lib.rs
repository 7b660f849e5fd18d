//! `ticker`: a live stock-ticker push service. A simulated market moves prices by geometric
//! Brownian motion; every change is pushed over WebSocket to the clients subscribed to it, and
//! the same quotes are served to HTTP pollers.
//!
//! # Layout
//! - [`settings`]: the typed settings tree, loaded in layers and validated.
//! - [`market`]: the simulated market (pure, seeded).
//! - [`feed`]: the feed actor that ticks the market and publishes each update once.
//! - [`symbols`], [`quote`], [`protocol`]: the symbol universe, the `Quote` type and wire
//!   protocol v1 (see `docs/protocol.md`).
//! - [`session`]: the per-connection WebSocket actor, with [`heartbeat`], [`inbound`] and
//!   [`subscription`] (what it sends, and conflation for slow clients); [`frame_guard`] refuses
//!   oversized frames from their header.
//! - [`routes`], [`error`]: HTTP: the upgrade, the polling API, health checks, the dashboard.
//! - Limits and access: [`admission`] (connection limits per server and per address, connect
//!   rate), [`client_ip`] (the client behind trusted proxies), [`origin`] (cross-site upgrades),
//!   [`auth`] (optional tokens), [`rate`] (token buckets, also for client messages).
//! - [`metrics`]: the Prometheus metrics served at `/metrics`.
//! - [`startup`]: `Application`, which binds and runs the server until shutdown.
//! - Cluster mode (docs/cluster.md): [`publisher`] (`ticker publish`) sends the simulated feed to
//!   NATS; [`edge`] is the feed of a node with `feed.source = "nats"`; [`nats`] holds the
//!   subjects, message shapes and connect options, [`sequencer`] the ordering rule.
//! - [`shutdown`], [`telemetry`]: signals and logging for the binary.

pub mod admission;
pub mod auth;
pub mod client_ip;
pub mod edge;
pub mod error;
pub mod feed;
pub mod frame_guard;
pub mod heartbeat;
pub mod inbound;
pub mod market;
pub mod metrics;
pub mod nats;
pub mod origin;
pub mod protocol;
pub mod publisher;
pub mod quote;
pub mod rate;
pub mod routes;
pub mod sequencer;
pub mod session;
pub mod settings;
pub mod shutdown;
pub mod startup;
pub mod subscription;
pub mod symbols;
pub mod telemetry;
