//! `OriginPolicy`: which web pages may open a WebSocket here, against cross-site WebSocket
//! hijacking and DNS rebinding: browsers send cookies and credentials with an upgrade from any
//! page, and only the `Origin` header tells the pages apart.
//!
//! Requests without `Origin` (not a browser) pass. A browser page passes when its origin is
//! listed in `server.allowed_origins` (or that list has `"*"`), or when it is this server's own:
//! an http(s) origin whose host and port are the request's `Host` *and* a host this server
//! answers for (`server.public_hosts`; by default the loopback names when bound to loopback,
//! else IP addresses only). `Host` alone proves nothing: a page on `evil.example` whose name
//! was rebound to this server's address sends `Host: evil.example` and a matching origin.
//! Several `Origin` headers are refused: which one a proxy or framework reads is not defined.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;

use super::Refusal;
use crate::settings::types::split_host_port;
use crate::settings::{AllowedOrigin, Origin, PublicHost, ServerSettings};

#[derive(Debug, Clone)]
pub struct OriginPolicy {
    any: bool,
    /// Other sites' origins, and subdomain patterns, that may connect.
    allowed: Vec<AllowedOrigin>,
    own: OwnHosts,
}

/// The hosts a same-origin page may be served from.
#[derive(Debug, Clone)]
enum OwnHosts {
    Listed(Vec<PublicHost>),
    /// Bound to loopback: `localhost`, `127.0.0.1`, `::1`, on any port.
    Loopback,
    /// No names configured: IP-address hosts only, which no DNS answer can rebind.
    Addresses,
}

impl OriginPolicy {
    pub fn new(server: &ServerSettings) -> Self {
        let own = if !server.public_hosts.is_empty() {
            OwnHosts::Listed(server.public_hosts.clone())
        } else if server.host == "localhost"
            || server
                .host
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
        {
            OwnHosts::Loopback
        } else {
            OwnHosts::Addresses
        };
        let allowed = server
            .allowed_origins
            .iter()
            .filter(|entry| **entry != AllowedOrigin::Any)
            .cloned()
            .collect();
        Self {
            any: server.allowed_origins.contains(&AllowedOrigin::Any),
            allowed,
            own,
        }
    }

    pub fn check(&self, req: &HttpRequest) -> Result<(), Refusal> {
        let mut origins = req.headers().get_all(header::ORIGIN);
        let Some(first) = origins.next() else {
            return Ok(());
        };
        if origins.next().is_some() {
            return Err(Refusal::ForbiddenOrigin(
                "several Origin headers".to_owned(),
            ));
        }
        if self.any {
            return Ok(());
        }
        let text = first.to_str().unwrap_or_default();
        let refused = || Refusal::ForbiddenOrigin(text.trim().to_ascii_lowercase());
        let origin = Origin::parse(text).ok_or_else(refused)?;
        if self.lists(&origin) || self.is_own(&origin, req) {
            Ok(())
        } else {
            Err(refused())
        }
    }

    /// Whether another site's page may read `/api/*` answers (CORS): `origin` is listed in
    /// `server.allowed_origins`, or matches a pattern there, or the list has `"*"`.
    pub fn allows_cross_origin(&self, origin: &str) -> bool {
        self.any || Origin::parse(origin).is_some_and(|o| self.lists(&o))
    }

    fn lists(&self, origin: &Origin) -> bool {
        self.allowed.iter().any(|entry| entry.allows(origin))
    }

    /// Whether `origin` is a page of this server: an http(s) origin naming the request's
    /// `Host` (a `Host` without a port matches any: proxies often drop it), which must be one
    /// of the hosts this server answers for.
    fn is_own(&self, origin: &Origin, req: &HttpRequest) -> bool {
        if !matches!(origin.scheme.as_str(), "http" | "https") {
            return false;
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let Some((host, port)) = split_host_port(&host) else {
            return false;
        };
        host == origin.host
            && port.is_none_or(|p| p == origin.port)
            && self.answers_for(&origin.host, origin.port)
    }

    fn answers_for(&self, host: &str, port: u16) -> bool {
        match &self.own {
            OwnHosts::Listed(hosts) => hosts
                .iter()
                .any(|h| h.host == host && h.port.is_none_or(|p| p == port)),
            OwnHosts::Loopback => matches!(host, "localhost" | "127.0.0.1" | "::1"),
            OwnHosts::Addresses => host.parse::<IpAddr>().is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;
    use crate::settings::Settings;

    /// The policy of a server bound to `bind`, answering for `hosts`, allowing `origins`.
    fn policy(bind: &str, hosts: &[&str], origins: &[&str]) -> OriginPolicy {
        let mut server = Settings::defaults().expect("defaults are valid").server;
        server.host = bind.to_owned();
        server.public_hosts = hosts
            .iter()
            .map(|h| PublicHost::parse(h).unwrap())
            .collect();
        server.allowed_origins = origins
            .iter()
            .map(|o| toml::Value::String((*o).to_owned()).try_into().unwrap())
            .collect();
        OriginPolicy::new(&server)
    }

    fn allowed(policy: &OriginPolicy, host: &str, origins: &[&str]) -> bool {
        let mut req = TestRequest::get().insert_header((header::HOST, host));
        for origin in origins {
            req = req.append_header((header::ORIGIN, *origin));
        }
        policy.check(&req.to_http_request()).is_ok()
    }

    /// On loopback: the same origin and non-browser requests pass; other sites do not, unless
    /// listed or `*`.
    #[test]
    fn same_origin_listed_or_any() {
        let same = policy("127.0.0.1", &[], &[]);
        let host = "127.0.0.1:8080";
        assert!(allowed(&same, host, &[]));
        assert!(allowed(&same, host, &["http://127.0.0.1:8080"]));
        assert!(allowed(&same, "localhost:8080", &["http://localhost:8080"]));
        assert!(allowed(&same, "[::1]:8080", &["http://[::1]:8080"]));
        assert!(allowed(&same, "127.0.0.1", &["http://127.0.0.1:8080"]));
        assert!(!allowed(&same, host, &["http://127.0.0.1:9090"]));
        assert!(!allowed(&same, host, &["https://evil.example"]));
        assert!(!allowed(&same, host, &["null"]));

        let listed = policy(
            "127.0.0.1",
            &[],
            &["https://app.example/", "http://localhost:3000"],
        );
        assert!(allowed(&listed, host, &["https://APP.example"]));
        assert!(allowed(&listed, host, &["http://localhost:3000"]));
        assert!(allowed(&listed, host, &["http://127.0.0.1:8080"]));
        assert!(!allowed(&listed, host, &["http://localhost:3001"]));

        let any = policy("127.0.0.1", &[], &["*"]);
        assert!(allowed(&any, host, &["https://evil.example"]));

        let pattern = policy("127.0.0.1", &[], &["https://*.example.com"]);
        assert!(allowed(&pattern, host, &["https://app.example.com"]));
        assert!(!allowed(&pattern, host, &["https://example.com"]));
        assert!(!allowed(
            &pattern,
            host,
            &["https://app.example.com.evil.net"]
        ));
        assert!(pattern.allows_cross_origin("https://a.b.example.com"));
        assert!(!pattern.allows_cross_origin("http://a.example.com"));
        assert!(!pattern.allows_cross_origin("null"));
    }

    /// DNS rebinding: a page on another name that resolves here sends a matching `Host` and
    /// `Origin`; only the names this server answers for count as its own.
    #[test]
    fn host_alone_proves_nothing() {
        let loopback = policy("127.0.0.1", &[], &[]);
        assert!(!allowed(
            &loopback,
            "evil.com:8080",
            &["http://evil.com:8080"]
        ));
        assert!(!allowed(&loopback, "evil.com", &["http://evil.com"]));

        let named = policy("0.0.0.0", &["ticker.example", "other.example:8443"], &[]);
        assert!(allowed(
            &named,
            "Ticker.example:443",
            &["https://ticker.example"]
        ));
        assert!(allowed(
            &named,
            "ticker.example",
            &["https://ticker.example:8443"]
        ));
        assert!(allowed(
            &named,
            "other.example:8443",
            &["https://other.example:8443"]
        ));
        assert!(!allowed(
            &named,
            "other.example",
            &["https://other.example"]
        ));
        assert!(!allowed(&named, "evil.com", &["https://evil.com"]));
        assert!(!allowed(
            &named,
            "ticker.example",
            &["https://ticker.example.evil.example"]
        ));

        let unnamed = policy("0.0.0.0", &[], &[]);
        assert!(allowed(
            &unnamed,
            "203.0.113.7:8080",
            &["http://203.0.113.7:8080"]
        ));
        assert!(!allowed(
            &unnamed,
            "ticker.example",
            &["http://ticker.example"]
        ));
    }

    /// The scheme counts, and a request with several `Origin` headers is refused.
    #[test]
    fn scheme_and_duplicates() {
        let same = policy("127.0.0.1", &[], &[]);
        let host = "127.0.0.1:8080";
        assert!(!allowed(&same, host, &["foo://127.0.0.1:8080"]));
        assert!(!allowed(&same, host, &["ws://127.0.0.1:8080"]));
        assert!(!allowed(
            &same,
            host,
            &["http://127.0.0.1:8080", "https://evil.example"]
        ));
        assert!(!allowed(
            &policy("127.0.0.1", &[], &["*"]),
            host,
            &["http://a", "http://b"]
        ));
    }
}
