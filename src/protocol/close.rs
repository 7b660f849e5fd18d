//! The close codes the server sends, and what each tells a client to do next: stay away until
//! something changes, reconnect with backoff, or reconnect at once. A browser sees only the
//! code and reason of a Close, never an HTTP status, so the code alone must say it.
//!
//! Private codes are read by range: 4000–4099 do not retry (the client must change something
//! first: sign in again, fix its request), 4100–4199 retry now, every other code retry with
//! backoff and jitter. The standard codes are read by [`advice`]'s table. docs/protocol.md
//! documents both.

/// No token, where one is required.
pub const UNAUTHORIZED: u16 = 4001;
/// A token that is not good: malformed, bad signature, wrong audience or issuer, not yet valid.
pub const INVALID_TOKEN: u16 = 4002;
/// A good token that does not grant what was asked for.
pub const FORBIDDEN: u16 = 4003;
/// The token expired: at the upgrade, or on an open session that did not send a fresh one.
pub const TOKEN_EXPIRED: u16 = 4004;
/// Nothing arrived from the client for `ws.idle_timeout_ms`.
pub const IDLE: u16 = 4408;

/// What a client should do after a Close with some code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// Do not reconnect until something changes (a new token, a fixed client).
    No,
    /// Reconnect after a growing, jittered delay.
    Backoff,
    /// Reconnect at once.
    Now,
}

/// The documented advice for `code`.
pub fn advice(code: u16) -> Reconnect {
    match code {
        // Normal closure: the client asked for it.
        1000 => Reconnect::No,
        // The client broke the protocol: the same client would again.
        1002 | 1003 | 1007 | 1009 => Reconnect::No,
        4000..=4099 => Reconnect::No,
        4100..=4199 => Reconnect::Now,
        // Going away (shutdown), policy (slow client, rate limit), server errors and restarts,
        // the idle timeout, a lost connection (1006 as browsers report it), and any code
        // this list does not know.
        _ => Reconnect::Backoff,
    }
}

/// Every code the server itself sends, for the tests that hold docs and code together.
pub const SENT_BY_SERVER: &[u16] = &[
    1001,
    1002,
    1003,
    1007,
    1008,
    1009,
    UNAUTHORIZED,
    INVALID_TOKEN,
    FORBIDDEN,
    TOKEN_EXPIRED,
    IDLE,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Token problems mean "do not retry"; shutdown, policy and idle mean "back off".
    #[test]
    fn codes_read_by_range() {
        for code in [
            UNAUTHORIZED,
            INVALID_TOKEN,
            FORBIDDEN,
            TOKEN_EXPIRED,
            1002,
            1009,
        ] {
            assert_eq!(advice(code), Reconnect::No, "{code}");
        }
        for code in [1001, 1006, 1008, 1011, 1012, 1013, IDLE, 4500, 3000] {
            assert_eq!(advice(code), Reconnect::Backoff, "{code}");
        }
        assert_eq!(advice(4100), Reconnect::Now);
        assert_eq!(advice(4199), Reconnect::Now);
    }
}
