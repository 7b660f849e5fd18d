//! `Admission`: whether a WebSocket upgrade may open a session now, by the connect rate and open
//! connections of its address (`server.connect_rate_per_ip`, `server.max_connections_per_ip`)
//! and the server's total (`server.max_connections`).
//!
//! An admitted upgrade gets a [`Permit`] that the session task owns: dropping it, however the
//! session ends, gives the connection back. Addresses are tracked in a table that forgets an
//! address once it has no connection and a full bucket, so the table stays bounded.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::Refusal;
use crate::access::rate::{Rate, TokenBucket};
use crate::settings::ServerSettings;

/// Past this many addresses the table is swept at once; otherwise every [`SWEEP_EVERY`].
const MAX_TRACKED: usize = 65_536;
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The limits, from `ServerSettings`; 0 means no limit.
#[derive(Debug, Clone, Copy)]
struct Limits {
    total: usize,
    per_ip: u32,
    rate: Option<Rate>,
}

#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    open: AtomicUsize,
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

/// One open connection, given back when dropped.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    /// The address it counts against, when per-address limits are on.
    key: Option<IpAddr>,
}

impl Admission {
    pub fn new(server: &ServerSettings) -> Arc<Self> {
        Arc::new(Self {
            limits: Limits {
                total: server.max_connections,
                per_ip: server.max_connections_per_ip,
                rate: Rate::new(server.connect_rate_per_ip, server.connect_burst_per_ip),
            },
            open: AtomicUsize::new(0),
            table: Mutex::new(Table {
                entries: HashMap::new(),
                swept: Instant::now(),
            }),
        })
    }

    /// Connections holding a permit now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Admits a connection from `client`, or says why not. Every attempt takes a token from the
    /// address's bucket, refused ones too: retrying in a loop is what the rate is there to stop.
    pub fn admit(self: &Arc<Self>, client: IpAddr, now: Instant) -> Result<Permit, Refusal> {
        let limits = self.limits;
        if limits.per_ip == 0 && limits.rate.is_none() {
            self.take_total()?;
            return Ok(self.permit(None));
        }
        let key = address_key(client);
        let mut table = self.table();
        table.sweep_if_due(limits.rate, now);
        let entry = table.entries.entry(key).or_insert_with(|| Entry {
            open: 0,
            bucket: limits.rate.map(|rate| TokenBucket::full(rate, now)),
        });
        if let (Some(rate), Some(bucket)) = (limits.rate, entry.bucket.as_mut()) {
            bucket
                .try_take(rate, now)
                .map_err(|wait| Refusal::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })?;
        }
        if limits.per_ip > 0 && entry.open >= limits.per_ip {
            return Err(Refusal::TooManyConnectionsFromIp);
        }
        self.take_total()?;
        entry.open += 1;
        Ok(self.permit(Some(key)))
    }

    fn take_total(&self) -> Result<(), Refusal> {
        let total = self.limits.total;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (total == 0 || open < total).then_some(open + 1)
            })
            .map(drop)
            .map_err(|_| Refusal::TooManyConnections)
    }

    fn permit(self: &Arc<Self>, key: Option<IpAddr>) -> Permit {
        Permit {
            admission: Arc::clone(self),
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
        self.admission.open.fetch_sub(1, Ordering::AcqRel);
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

    fn admission(total: usize, per_ip: u32, rate: u32, burst: u32) -> Arc<Admission> {
        Arc::new(Admission {
            limits: Limits {
                total,
                per_ip,
                rate: Rate::new(rate, burst),
            },
            open: AtomicUsize::new(0),
            table: Mutex::new(Table {
                entries: HashMap::new(),
                swept: Instant::now(),
            }),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The total limit refuses the next connection and admits again once a permit is dropped.
    #[test]
    fn total_limit_is_given_back_on_drop() {
        let a = admission(2, 0, 0, 0);
        let now = Instant::now();
        let first = a.admit(ip("192.0.2.1"), now).unwrap();
        let _second = a.admit(ip("192.0.2.2"), now).unwrap();
        assert!(matches!(
            a.admit(ip("192.0.2.3"), now),
            Err(Refusal::TooManyConnections)
        ));
        drop(first);
        assert_eq!(a.open(), 1);
        assert!(a.admit(ip("192.0.2.3"), now).is_ok());
        assert_eq!(a.tracked(), 0, "no table without per-address limits");
    }

    /// Each address has its own connection count and bucket; one /64 is one address.
    #[test]
    fn addresses_have_separate_budgets() {
        let a = admission(0, 2, 0, 0);
        let now = Instant::now();
        let held: Vec<_> = ["2001:db8::1", "2001:db8::2"]
            .iter()
            .map(|s| a.admit(ip(s), now).unwrap())
            .collect();
        assert!(matches!(
            a.admit(ip("2001:db8::3"), now),
            Err(Refusal::TooManyConnectionsFromIp)
        ));
        assert!(a.admit(ip("2001:db8:0:1::1"), now).is_ok(), "another /64");
        drop(held);
        assert!(a.admit(ip("2001:db8::3"), now).is_ok());

        let r = admission(0, 0, 1, 2);
        assert!(r.admit(ip("192.0.2.1"), now).is_ok());
        assert!(r.admit(ip("192.0.2.1"), now).is_ok());
        match r.admit(ip("192.0.2.1"), now) {
            Err(Refusal::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected rate_limited, got {other:?}"),
        }
        assert!(r.admit(ip("192.0.2.2"), now).is_ok());
        assert!(
            r.admit(ip("192.0.2.1"), now + Duration::from_secs(1))
                .is_ok()
        );
    }

    /// Idle addresses are forgotten at the next sweep; addresses with connections are kept.
    #[test]
    fn idle_addresses_are_forgotten() {
        let a = admission(0, 5, 1, 1);
        let now = Instant::now();
        let _held = a.admit(ip("192.0.2.1"), now).unwrap();
        drop(a.admit(ip("192.0.2.2"), now).unwrap());
        assert_eq!(a.tracked(), 2);
        let later = now + SWEEP_EVERY + Duration::from_secs(1);
        drop(a.admit(ip("192.0.2.3"), later).unwrap());
        assert_eq!(
            a.tracked(),
            2,
            "192.0.2.2 was idle and full; .1 is open; .3 is new"
        );
        for i in 0..MAX_TRACKED as u32 {
            let _ = a.admit(IpAddr::from(i.to_be_bytes()), later);
        }
        assert!(a.tracked() <= MAX_TRACKED, "bounded: {}", a.tracked());
    }
}
