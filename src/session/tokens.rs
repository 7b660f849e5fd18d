//! A session's token over time: when it expires the session is closed with 4004, unless the
//! client sent a fresh one first with `{"op":"auth","token":…}`. A fresh token's entitlements
//! apply at once: symbols it no longer opens are unsubscribed, with a `forbidden_symbol`
//! notice naming them, and `authenticated` carries the new expiry.

use std::time::Duration;

use actix_ws::CloseCode;
use tokio::time::Instant;

use super::inbound::reason;
use super::{End, Session};
use crate::access::TokenProblem;
use crate::clock::now_ms;
use crate::protocol::{ErrorCode, ServerMessage, close};

/// A deadline that never comes, for tokens that do not expire (about 30 years, as tokio's own).
const NEVER: Duration = Duration::from_secs(86_400 * 365 * 30);

impl Session {
    /// When the session's token stops being good, as a timer deadline.
    pub(super) fn token_deadline(&self) -> Instant {
        let left = match self.entitlements.expires_at_ms() {
            Some(at) => Duration::from_millis(at.saturating_sub(now_ms())),
            None => NEVER,
        };
        Instant::now() + left
    }

    /// The token ran out: the session ends with 4004 (do not retry without a new token).
    pub(super) fn on_token_expired(&self) -> End {
        self.ctx.metrics.auth_refused(TokenProblem::Expired.label());
        tracing::info!(session = %self.id, subject = ?self.entitlements.subject, "token expired");
        End::Close(reason(
            CloseCode::Other(close::TOKEN_EXPIRED),
            "token expired",
        ))
    }

    /// `{"op":"auth"}`: takes a fresh token, or refuses it and keeps the current one.
    pub(super) fn on_auth(&mut self, token: &str) {
        let metrics = std::sync::Arc::clone(&self.ctx.metrics);
        let verified = match self.ctx.auth.verify(token) {
            Ok(granted) if granted.tier() != self.entitlements.tier() => Err(
                TokenProblem::Forbidden("the token is for another tier; reconnect with it".into()),
            ),
            other => other,
        };
        let granted = match verified {
            Ok(granted) => granted,
            Err(problem) => return self.refuse_token(problem),
        };
        metrics.token_refreshed(true);
        let universe = std::sync::Arc::clone(self.ctx.feed.universe());
        let lost: Vec<_> = self
            .out
            .state()
            .subscription
            .symbols()
            .filter(|&id| !granted.symbols.allows(universe.name(id)))
            .collect();
        self.entitlements = granted;
        if !lost.is_empty() {
            self.out.state().subscription.remove(&lost);
            self.out.watch_symbols();
            let names: Vec<String> = lost
                .iter()
                .map(|&id| universe.name(id).to_owned())
                .collect();
            self.send(ServerMessage::Error {
                id: None,
                code: ErrorCode::ForbiddenSymbol,
                message: format!(
                    "the new token does not open {}; unsubscribed",
                    names.join(", ")
                ),
                symbols: names,
            });
            self.send_subscribed(Vec::new());
        }
        self.send(ServerMessage::Authenticated {
            id: None,
            expires_at: self.entitlements.expires_at_ms(),
        });
    }

    fn refuse_token(&mut self, problem: TokenProblem) {
        let metrics = &self.ctx.metrics;
        metrics.token_refreshed(false);
        metrics.auth_refused(problem.label());
        let code = match problem {
            TokenProblem::Forbidden(_) => ErrorCode::Forbidden,
            _ => ErrorCode::Unauthorized,
        };
        let message = format!("{problem}; the session keeps its current token");
        self.send(ServerMessage::error(code, message));
    }

    /// Tells the client which symbols of its request the token does not open.
    pub(super) fn report_forbidden(&mut self, forbidden: Vec<String>) {
        if forbidden.is_empty() {
            return;
        }
        self.ctx.metrics.auth_refused("forbidden_symbol");
        let message = format!("your token does not open {}", forbidden.join(", "));
        self.send(ServerMessage::Error {
            id: None,
            code: ErrorCode::ForbiddenSymbol,
            message,
            symbols: forbidden,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token-expiry close has a series of its own in `ticker_connections_closed_total`.
    #[test]
    fn expiry_close_has_its_own_metrics_label() {
        assert_eq!(
            crate::metrics::close_label(Some(close::TOKEN_EXPIRED)),
            "4004"
        );
    }
}
