//! The client's address for per-address limits: the TCP peer, or, when the peer is one of
//! `server.trusted_proxies`, the right-most address in `X-Forwarded-For` that is not a proxy.
//!
//! Right-most, because every proxy appends the address it saw: what a client writes into the
//! header itself ends up on the left, and only the entries our own proxies added are believed.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

use crate::settings::Network;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: &[Network]) -> Self {
        Self(networks.iter().map(|n| n.0).collect())
    }

    /// Whether `ip` is one of the proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`. With a trusted peer, `X-Forwarded-For` is read from the right,
    /// skipping trusted hops; an entry that is no address stops the walk at the last good one.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        let networks: Vec<Network> = list.iter().map(|s| Network::parse(s).unwrap()).collect();
        TrustedProxies::new(&networks)
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(
                X_FORWARDED_FOR.parse().unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// An untrusted peer is the client, whatever it claims.
    #[test]
    fn untrusted_peer_is_the_client() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = forwarded(&["203.0.113.9"]);
        assert_eq!(p.client_ip(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        assert_eq!(
            TrustedProxies::default().client_ip(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    /// Behind trusted proxies the right-most untrusted hop is the client; spoofed entries to its
    /// left are ignored.
    #[test]
    fn rightmost_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        let peer = ip("127.0.0.1");
        let h = forwarded(&["1.1.1.1, 203.0.113.9", "10.1.2.3"]);
        assert_eq!(p.client_ip(peer, &h), ip("203.0.113.9"));
        assert_eq!(
            p.client_ip(peer, &forwarded(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            p.client_ip(peer, &forwarded(&["10.9.9.9, 10.1.1.1"])),
            ip("10.9.9.9"),
            "all trusted: the left-most"
        );
        assert_eq!(
            p.client_ip(peer, &forwarded(&["203.0.113.9, junk, 10.1.1.1"])),
            ip("10.1.1.1"),
            "a bad entry stops the walk"
        );
        assert_eq!(p.client_ip(peer, &HeaderMap::new()), peer, "no header");
        assert_eq!(
            p.client_ip(ip("::ffff:127.0.0.1"), &forwarded(&["203.0.113.9"])),
            ip("203.0.113.9"),
            "IPv4-mapped peers match IPv4 entries"
        );
    }

    /// Entries are addresses or networks; anything else is refused.
    #[test]
    fn entries_must_be_addresses_or_networks() {
        assert!(Network::parse("proxy.local").is_none());
        assert!(Network::parse("::1").is_some() && Network::parse("fd00::/8").is_some());
    }
}
