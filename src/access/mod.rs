//! Access: who may connect and how often. Admission (connection limits per server and per
//! address, connect rate) within the capacity the open-file limit allows, the client address
//! behind trusted proxies, the origin policy against cross-site upgrades, optional tokens, and
//! the token buckets they share with sessions.
//!
//! Imports `settings`, `clock` and actix's request types only; `http` and `session` use it, never the
//! other way round. Refusals are a [`Refusal`], which `http` turns into a response.

pub(crate) mod admission;
pub mod auth;
pub(crate) mod capacity;
pub(crate) mod client_ip;
pub(crate) mod origin;
pub(crate) mod rate;

/// Why access was refused; `http::error::ApiError` turns it into a status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the server is at its connection limit; retry later")]
    TooManyConnections,
    #[error("too many connections from your address; close one or retry later")]
    TooManyConnectionsFromIp,
    #[error("too many connection attempts from your address; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("origin not allowed: {0}")]
    ForbiddenOrigin(String),
    /// No token, or one the server does not know (`presented`).
    #[error("{}", if *.presented { "invalid or expired token" } else { "a token is required: `Authorization: Bearer …` or `?token=…`" })]
    Unauthorized { presented: bool },
}
