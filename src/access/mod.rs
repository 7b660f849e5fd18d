//! Access: who may connect and how often. Admission (connection limits per server and per
//! address, connect rate) within the capacity the open-file limit allows, the client address
//! behind trusted proxies, the origin policy against cross-site upgrades, tokens (static and
//! JWT) and what they entitle to, and the token buckets they share with sessions.
//!
//! Imports `settings`, `clock`, `protocol` (close codes), `feed` (the symbol universe) and
//! actix's request types only; `http` and `session` use it, never the other way round. Refusals
//! are a [`Refusal`], which `http` turns into a response.

pub(crate) mod admission;
pub mod auth;
pub(crate) mod capacity;
pub(crate) mod client_ip;
pub mod entitlements;
pub mod jwt;
pub(crate) mod origin;
pub(crate) mod rate;
pub mod symbol_rights;

use crate::protocol::close;

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
    /// The token is missing, not good, or not enough.
    #[error(transparent)]
    Token(#[from] TokenProblem),
}

/// What is wrong with a request's token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("a token is required: `Authorization: Bearer …` or `?token=…`")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    /// A good token that does not grant what is asked.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

impl TokenProblem {
    /// The `reason` label of `ticker_auth_refusals_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Invalid(_) => "invalid",
            Self::Expired => "expired",
            Self::Forbidden(_) => "forbidden",
        }
    }

    /// The close code that tells a browser about it (`auth.browser_refusal = "close"`).
    pub fn close_code(&self) -> u16 {
        match self {
            Self::Missing => close::UNAUTHORIZED,
            Self::Invalid(_) => close::INVALID_TOKEN,
            Self::Forbidden(_) => close::FORBIDDEN,
            Self::Expired => close::TOKEN_EXPIRED,
        }
    }
}
