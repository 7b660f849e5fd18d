//! Cluster mode on NATS (docs/cluster.md): [`publisher`] (`ticker publish`) sends the simulated
//! feed to NATS; [`edge`] is the feed of a node with `feed.source = "nats"`; [`nats`] holds the
//! subjects, message shapes and connect options, [`sequencer`] the ordering rule.
//!
//! Imports `feed`, `protocol`, `settings`, and `http`'s health handlers for the publisher's own
//! small HTTP server; only `app` imports `cluster`.

pub(crate) mod backfill;
pub(crate) mod edge;
pub(crate) mod nats;
pub mod publisher;
pub(crate) mod sequencer;
