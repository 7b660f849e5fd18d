//! `Entitlements`: what a request's token grants, the one thing sessions and the polling API
//! read from auth: which symbols, at what delay, until when. Auth off and static tokens grant
//! everything live, forever; a JWT grants what its claims say.

use super::symbol_rights::SymbolRights;

/// What a token grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entitlements {
    /// The JWT's `sub`, for logs; `None` for static tokens and with auth off.
    pub subject: Option<String>,
    pub symbols: SymbolRights,
    /// The `delay_ms` claim: 0 is the live tier, more a delayed one, served when it is one of
    /// `auth.delayed_tiers_ms` (refused as `forbidden` otherwise).
    pub delay_ms: u64,
    /// Unix seconds from which the token is no longer accepted (its `exp` plus the leeway);
    /// `None` when it never expires.
    pub expires_at: Option<u64>,
}

/// The service tier a session is on; a label of `ticker_sessions_open_by_tier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Live,
    Delayed,
}

impl Tier {
    pub fn label(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Delayed => "delayed",
        }
    }
}

impl Entitlements {
    /// Every symbol, live, never expiring: auth off, or a static token.
    pub fn unlimited() -> Self {
        Self::default()
    }

    pub fn tier(&self) -> Tier {
        if self.delay_ms > 0 {
            Tier::Delayed
        } else {
            Tier::Live
        }
    }

    /// The expiry in Unix epoch milliseconds, as the protocol gives times.
    pub fn expires_at_ms(&self) -> Option<u64> {
        self.expires_at.map(|secs| secs.saturating_mul(1000))
    }
}
