//! `Admission`: whether a connection may open now. Every accepted TCP connection is admitted
//! against the server's total (`Capacity::connections`) and the open connections of its address
//! (`server.max_connections_per_ip`); a WebSocket upgrade is admitted again as a session, against
//! the sessions' total (`Capacity::sessions`) and the connect rate of its address
//! (`server.connect_rate_per_ip`).
//!
//! One table of addresses, and each connection counts once per limit. At accept the address is
//! the TCP peer's: nothing else is known yet. A peer in `server.trusted_proxies` carries many
//! clients, so its connections count only against the total, and a session through it counts
//! against the client that `X-Forwarded-For` names, at upgrade. A session from any other peer
//! was counted per address at accept and is not counted again.
//!
//! An admitted connection or session gets a [`Permit`] that its owner holds (the connection's
//! task, the session's task): dropping it, however the owner ends, gives the place back.
//! Addresses are tracked in a table that forgets an address once it has no connection and a
//! full bucket, so the table stays bounded.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::Refusal;
use super::capacity::Capacity;
use crate::access::rate::{Rate, TokenBucket};
use crate::settings::ServerSettings;

/// Past this many addresses the table is swept at once; otherwise every [`SWEEP_EVERY`].
const MAX_TRACKED: usize = 65_536;
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The limits; `usize::MAX` (totals) or 0 (per address) means no limit.
#[derive(Debug, Clone, Copy)]
struct Limits {
    connections: usize,
    sessions: usize,
    per_ip: u32,
    rate: Option<Rate>,
}

#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    connections: AtomicUsize,
    sessions: AtomicUsize,
    table: Mutex<Table>,
}

#[derive(Debug)]
struct Table {
    entries: HashMap<IpAddr, Entry>,
    swept: Instant,
}

#[derive(Debug)]
struct Entry {
    open: u32,
    bucket: Option<TokenBucket>,
}

/// What a permit holds a place in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connection,
    Session,
}

/// One open connection or session, given back when dropped.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    kind: Kind,
    /// The address it counts against, when it counts against one.
    key: Option<IpAddr>,
}

impl Admission {
    pub fn new(server: &ServerSettings, capacity: Capacity) -> Arc<Self> {
        Arc::new(Self::with_limits(Limits {
            connections: capacity.connections,
            sessions: capacity.sessions,
            per_ip: server.max_connections_per_ip,
            rate: Rate::new(server.connect_rate_per_ip, server.connect_burst_per_ip),
        }))
    }

    fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            connections: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
            table: Mutex::new(Table {
                entries: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// TCP connections holding a permit now, sessions included.
    #[cfg(test)]
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Sessions holding a permit now.
    #[cfg(test)]
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::Relaxed)
    }

    /// Admits a TCP connection at accept. `peer` is the address it counts against: the TCP
    /// peer, or None for a trusted proxy (its sessions count per client at upgrade).
    pub fn admit_connection(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<Permit, Refusal> {
        let key = peer.filter(|_| self.limits.per_ip > 0).map(address_key);
        let Some(key) = key else {
            self.take(Kind::Connection)?;
            return Ok(self.permit(Kind::Connection, None));
        };
        let now = Instant::now();
        let mut table = self.table();
        table.sweep_if_due(self.limits.rate, now);
        let entry = table.entry(key, self.limits.rate, now);
        if entry.open >= self.limits.per_ip {
            return Err(Refusal::TooManyConnectionsFromIp);
        }
        self.take(Kind::Connection)?;
        entry.open += 1;
        Ok(self.permit(Kind::Connection, Some(key)))
    }

    /// Admits a WebSocket session from `client`, or says why not. `counted` says its connection
    /// already counts against this address (it was admitted with it as the peer). Every attempt
    /// takes a token from the address's bucket, refused ones too: retrying in a loop is what
    /// the rate is there to stop.
    pub fn admit_session(
        self: &Arc<Self>,
        client: IpAddr,
        counted: bool,
        now: Instant,
    ) -> Result<Permit, Refusal> {
        let limits = self.limits;
        let per_ip = if counted { 0 } else { limits.per_ip };
        if per_ip == 0 && limits.rate.is_none() {
            self.take(Kind::Session)?;
            return Ok(self.permit(Kind::Session, None));
        }
        let key = address_key(client);
        let mut table = self.table();
        table.sweep_if_due(limits.rate, now);
        let entry = table.entry(key, limits.rate, now);
        if let (Some(rate), Some(bucket)) = (limits.rate, entry.bucket.as_mut()) {
            bucket
                .try_take(rate, now)
                .map_err(|wait| Refusal::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })?;
        }
        if per_ip > 0 && entry.open >= per_ip {
            return Err(Refusal::TooManyConnectionsFromIp);
        }
        self.take(Kind::Session)?;
        if per_ip == 0 {
            return Ok(self.permit(Kind::Session, None));
        }
        entry.open += 1;
        Ok(self.permit(Kind::Session, Some(key)))
    }

    fn counter(&self, kind: Kind) -> (&AtomicUsize, usize) {
        match kind {
            Kind::Connection => (&self.connections, self.limits.connections),
            Kind::Session => (&self.sessions, self.limits.sessions),
        }
    }

    fn take(&self, kind: Kind) -> Result<(), Refusal> {
        let (open, limit) = self.counter(kind);
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (open < limit).then_some(open + 1)
        })
        .map(drop)
        .map_err(|_| Refusal::TooManyConnections)
    }

    fn permit(self: &Arc<Self>, kind: Kind, key: Option<IpAddr>) -> Permit {
        Permit {
            admission: Arc::clone(self),
            kind,
            key,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves only counts behind, which stay usable.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Addresses tracked now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.table().entries.len()
    }
}

impl Table {
    fn entry(&mut self, key: IpAddr, rate: Option<Rate>, now: Instant) -> &mut Entry {
        self.entries.entry(key).or_insert_with(|| Entry {
            open: 0,
            bucket: rate.map(|rate| TokenBucket::full(rate, now)),
        })
    }

    /// Forgets addresses with nothing to remember: no connection open, bucket full again. If
    /// that is not enough, addresses without a connection are forgotten whatever their bucket
    /// (they get a fresh burst): the table never grows past `MAX_TRACKED` plus open connections.
    fn sweep_if_due(&mut self, rate: Option<Rate>, now: Instant) {
        let full = self.entries.len() >= MAX_TRACKED;
        if !full && now.saturating_duration_since(self.swept) < SWEEP_EVERY {
            return;
        }
        self.swept = now;
        self.entries.retain(|_, e| {
            e.open > 0 || matches!((rate, &e.bucket), (Some(r), Some(b)) if !b.is_full(r, now))
        });
        if self.entries.len() >= MAX_TRACKED {
            self.entries.retain(|_, e| e.open > 0);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let (open, _) = self.admission.counter(self.kind);
        open.fetch_sub(1, Ordering::AcqRel);
        if let Some(key) = self.key
            && let Some(entry) = self.admission.table().entries.get_mut(&key)
        {
            entry.open = entry.open.saturating_sub(1);
        }
    }
}

/// What per-address limits count against: the address, or for IPv6 its /64, which is what one
/// subscriber usually gets (counting single IPv6 addresses would let anyone pick fresh ones).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: usize = usize::MAX;

    fn admission(sessions: usize, per_ip: u32, rate: u32, burst: u32) -> Arc<Admission> {
        Arc::new(Admission::with_limits(Limits {
            connections: NONE,
            sessions,
            per_ip,
            rate: Rate::new(rate, burst),
        }))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The sessions' total refuses the next session and admits again once a permit is dropped.
    #[test]
    fn total_limit_is_given_back_on_drop() {
        let a = admission(2, 0, 0, 0);
        let now = Instant::now();
        let first = a.admit_session(ip("192.0.2.1"), false, now).unwrap();
        let _second = a.admit_session(ip("192.0.2.2"), false, now).unwrap();
        assert!(matches!(
            a.admit_session(ip("192.0.2.3"), false, now),
            Err(Refusal::TooManyConnections)
        ));
        drop(first);
        assert_eq!(a.sessions(), 1);
        assert!(a.admit_session(ip("192.0.2.3"), false, now).is_ok());
        assert_eq!(a.tracked(), 0, "no table without per-address limits");
    }

    /// Each address has its own connection count and bucket; one /64 is one address.
    #[test]
    fn addresses_have_separate_budgets() {
        let a = admission(NONE, 2, 0, 0);
        let now = Instant::now();
        let held: Vec<_> = ["2001:db8::1", "2001:db8::2"]
            .iter()
            .map(|s| a.admit_session(ip(s), false, now).unwrap())
            .collect();
        assert!(matches!(
            a.admit_session(ip("2001:db8::3"), false, now),
            Err(Refusal::TooManyConnectionsFromIp)
        ));
        assert!(
            a.admit_session(ip("2001:db8:0:1::1"), false, now).is_ok(),
            "another /64"
        );
        drop(held);
        assert!(a.admit_session(ip("2001:db8::3"), false, now).is_ok());

        let r = admission(NONE, 0, 1, 2);
        assert!(r.admit_session(ip("192.0.2.1"), false, now).is_ok());
        assert!(r.admit_session(ip("192.0.2.1"), false, now).is_ok());
        match r.admit_session(ip("192.0.2.1"), false, now) {
            Err(Refusal::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected rate_limited, got {other:?}"),
        }
        assert!(r.admit_session(ip("192.0.2.2"), false, now).is_ok());
        assert!(
            r.admit_session(ip("192.0.2.1"), false, now + Duration::from_secs(1))
                .is_ok()
        );
    }

    /// A connection counts once per limit: per address at accept (not again when it becomes a
    /// session), in the connections' total, and as a session in the sessions' total.
    #[test]
    fn a_session_counts_once_per_limit() {
        let a = Arc::new(Admission::with_limits(Limits {
            connections: 3,
            sessions: 1,
            per_ip: 2,
            rate: None,
        }));
        let now = Instant::now();
        let peer = Some(ip("192.0.2.1"));
        let first = a.admit_connection(peer).unwrap();
        let _session = a.admit_session(ip("192.0.2.1"), true, now).unwrap();
        let _second = a.admit_connection(peer).unwrap();
        assert!(matches!(
            a.admit_connection(peer),
            Err(Refusal::TooManyConnectionsFromIp)
        ));
        assert!(matches!(
            a.admit_session(ip("192.0.2.1"), true, now),
            Err(Refusal::TooManyConnections)
        ));
        let _other = a.admit_connection(Some(ip("192.0.2.2"))).unwrap();
        assert!(matches!(
            a.admit_connection(Some(ip("192.0.2.3"))),
            Err(Refusal::TooManyConnections)
        ));
        assert_eq!((a.connections(), a.sessions()), (3, 1));
        drop(first);
        assert!(a.admit_connection(peer).is_ok());
    }

    /// A trusted proxy's connections count only in the total; its sessions count against the
    /// forwarded client's address.
    #[test]
    fn proxied_sessions_count_against_the_client() {
        let a = admission(NONE, 1, 0, 0);
        let now = Instant::now();
        let proxy: Vec<_> = (0..3).map(|_| a.admit_connection(None).unwrap()).collect();
        assert_eq!(a.connections(), 3);
        let _client = a.admit_session(ip("203.0.113.1"), false, now).unwrap();
        assert!(matches!(
            a.admit_session(ip("203.0.113.1"), false, now),
            Err(Refusal::TooManyConnectionsFromIp)
        ));
        assert!(a.admit_session(ip("203.0.113.2"), false, now).is_ok());
        drop(proxy);
        assert_eq!(a.connections(), 0);
    }

    /// Idle addresses are forgotten at the next sweep; addresses with connections are kept.
    #[test]
    fn idle_addresses_are_forgotten() {
        let a = admission(NONE, 5, 1, 1);
        let now = Instant::now();
        let _held = a.admit_session(ip("192.0.2.1"), false, now).unwrap();
        drop(a.admit_session(ip("192.0.2.2"), false, now).unwrap());
        assert_eq!(a.tracked(), 2);
        let later = now + SWEEP_EVERY + Duration::from_secs(1);
        drop(a.admit_session(ip("192.0.2.3"), false, later).unwrap());
        assert_eq!(
            a.tracked(),
            2,
            "192.0.2.2 was idle and full; .1 is open; .3 is new"
        );
        for i in 0..MAX_TRACKED as u32 {
            let _ = a.admit_session(IpAddr::from(i.to_be_bytes()), false, later);
        }
        assert!(a.tracked() <= MAX_TRACKED, "bounded: {}", a.tracked());
    }
}
