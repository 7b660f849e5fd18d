//! `Capacity`: how many connections the server takes, from `server.max_connections`,
//! `server.http_headroom` and the process's open-file limit.
//!
//! Every connection is a file descriptor. Limits above the open-file limit fail at accept
//! (EMFILE) before they refuse anyone politely: new clients hang in the backlog, and `/healthz`
//! and `/metrics` go dark with them, so a liveness probe restarts a node that was only full. So
//! the limits in force are derived: descriptors for the rest of the process are set aside, and
//! what is left is shared, the headroom for plain HTTP first (at most half of it), the sessions
//! next. Sessions are a subset of the connections, so a server full of sessions still has the
//! headroom to answer health checks, scrapes and refused upgrades.

/// Descriptors the process needs besides its connections: standard streams, the listener, the
/// accept loop's poll, logs, NATS, and connections refused at accept while they are answered
/// (`http::server` answers at most 32 at a time).
pub const RESERVED_FDS: u64 = 64;
/// And per worker thread: its event poll and wake-up descriptors.
pub const RESERVED_FDS_PER_WORKER: u64 = 4;
/// `server.http_headroom` when it is not set (and the open-file limit leaves room for it).
pub const DEFAULT_HTTP_HEADROOM: usize = 1000;

/// The connection limits in force; `usize::MAX` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Open WebSocket sessions at most.
    pub sessions: usize,
    /// Open TCP connections at most, sessions included.
    pub connections: usize,
    /// The open-file limit lowered a limit the operator set.
    pub lowered: bool,
}

impl Capacity {
    /// The limits for `max_sessions` and `headroom`, on `workers` threads, within
    /// `open_file_limit` (None: unknown, no bound). An unset `max_sessions` (or 0) takes what
    /// the open-file limit leaves; an unset `headroom` is [`DEFAULT_HTTP_HEADROOM`] or half of
    /// what is left, whichever is less. Only a value that was set and does not fit is
    /// `lowered`: the defaults fit any limit by construction.
    pub fn derive(
        max_sessions: Option<usize>,
        headroom: Option<usize>,
        workers: usize,
        open_file_limit: Option<u64>,
    ) -> Self {
        let sessions = match max_sessions {
            None | Some(0) => usize::MAX,
            Some(n) => n,
        };
        let wanted_headroom = headroom.unwrap_or(DEFAULT_HTTP_HEADROOM);
        let reserved = RESERVED_FDS + RESERVED_FDS_PER_WORKER * workers as u64;
        let Some(budget) = open_file_limit
            .map(|limit| usize::try_from(limit.saturating_sub(reserved)).unwrap_or(usize::MAX))
        else {
            return Self {
                sessions,
                connections: sessions.saturating_add(wanted_headroom),
                lowered: false,
            };
        };
        let fitted_headroom = wanted_headroom.min(budget / 2);
        let fitted_sessions = sessions.min(budget - fitted_headroom);
        let set = |n: Option<usize>| n.filter(|&n| n != 0);
        Self {
            sessions: fitted_sessions,
            connections: fitted_sessions.saturating_add(fitted_headroom),
            lowered: set(max_sessions).is_some_and(|n| fitted_sessions < n)
                || headroom.is_some_and(|h| fitted_headroom < h),
        }
    }

    /// A limit as a gauge shows it: 0 for none.
    pub fn shown(limit: usize) -> i64 {
        if limit == usize::MAX {
            0
        } else {
            i64::try_from(limit).unwrap_or(i64::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The old defaults set explicitly (20,000 sessions, headroom 1,000) under a 20,000 file
    /// limit: the sessions give way so that the total fits with the reserve, and it says so.
    #[test]
    fn explicit_limits_are_fitted_to_a_20000_file_limit() {
        let c = Capacity::derive(Some(20_000), Some(1_000), 2, Some(20_000));
        assert_eq!(c.connections, 20_000 - 72);
        assert_eq!(c.sessions, 20_000 - 72 - 1_000);
        assert!(c.lowered);
    }

    /// Unset, the limits take what the file limit leaves, and nothing counts as lowered: a
    /// default start has nothing to warn about, whatever the limit.
    #[test]
    fn unset_limits_fit_any_file_limit_silently() {
        let c = Capacity::derive(None, None, 2, Some(20_000));
        assert_eq!(
            (c.sessions, c.connections),
            (20_000 - 72 - 1_000, 20_000 - 72)
        );
        assert!(!c.lowered);
        let c = Capacity::derive(None, None, 2, Some(300));
        assert_eq!((c.sessions, c.connections, c.lowered), (114, 228, false));
        let c = Capacity::derive(None, None, 2, None);
        assert_eq!((c.sessions, c.connections), (usize::MAX, usize::MAX));
    }

    /// A low file limit halves what is left between the headroom and the sessions.
    #[test]
    fn a_low_file_limit_shares_what_is_left() {
        let c = Capacity::derive(Some(20_000), None, 2, Some(300));
        assert_eq!((c.sessions, c.connections), (114, 228));
        assert!(c.lowered);
        let c = Capacity::derive(None, Some(1_000), 2, Some(300));
        assert!(c.lowered, "an explicit headroom that does not fit");
    }

    /// Limits that fit are kept as configured; without a file limit nothing is lowered.
    #[test]
    fn limits_that_fit_are_kept() {
        let c = Capacity::derive(Some(1_000), Some(100), 2, Some(1 << 20));
        assert_eq!(
            (c.sessions, c.connections, c.lowered),
            (1_000, 1_100, false)
        );
        let c = Capacity::derive(Some(1_000), Some(100), 2, None);
        assert_eq!(
            (c.sessions, c.connections, c.lowered),
            (1_000, 1_100, false)
        );
        let c = Capacity::derive(Some(0), Some(100), 2, None);
        assert_eq!((c.sessions, c.connections), (usize::MAX, usize::MAX));
        let c = Capacity::derive(Some(0), Some(100), 2, Some(1_072));
        assert_eq!((c.sessions, c.connections, c.lowered), (900, 1_000, false));
        assert_eq!(Capacity::shown(usize::MAX), 0);
    }

    /// A file limit below the reserve leaves nothing: every connection is refused, none fails.
    #[test]
    fn a_file_limit_below_the_reserve_admits_nothing() {
        let c = Capacity::derive(Some(10), Some(10), 2, Some(50));
        assert_eq!((c.sessions, c.connections), (0, 0));
    }
}
