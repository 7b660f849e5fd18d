//! `OriginPolicy`: which web pages may open a WebSocket here (`server.allowed_origins`), against
//! cross-site WebSocket hijacking: browsers send cookies and credentials with an upgrade from
//! any page, and only the `Origin` header tells the pages apart.
//!
//! Same-origin upgrades (the dashboard this server serves) are always allowed, and so are
//! requests without `Origin` (not a browser). `"*"` allows every origin; otherwise the list
//! names the other origins allowed, as `scheme://host[:port]`.

use actix_web::HttpRequest;
use actix_web::http::header;

use super::Refusal;

#[derive(Debug, Clone)]
pub enum OriginPolicy {
    Any,
    /// Same origin, plus these (lower case, no trailing slash).
    Listed(Vec<String>),
}

impl OriginPolicy {
    /// Builds the policy; the error names the entry that is neither `*` nor an origin.
    pub fn parse(entries: &[String]) -> Result<Self, (usize, String)> {
        if entries.iter().any(|e| e == "*") {
            return Ok(Self::Any);
        }
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let origin = normalize(entry);
                split_origin(&origin)
                    .map(|_| origin.clone())
                    .ok_or((i, entry.clone()))
            })
            .collect::<Result<_, _>>()
            .map(Self::Listed)
    }

    pub fn check(&self, req: &HttpRequest) -> Result<(), Refusal> {
        let Some(origin) = req.headers().get(header::ORIGIN) else {
            return Ok(());
        };
        let listed = match self {
            Self::Any => return Ok(()),
            Self::Listed(listed) => listed,
        };
        let origin = origin.to_str().map(normalize).unwrap_or_default();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or_default();
        if listed.contains(&origin) || same_origin(&origin, host) {
            Ok(())
        } else {
            Err(Refusal::ForbiddenOrigin(origin))
        }
    }
}

fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Whether `origin` is the origin of this request's `Host`. A `Host` without a port matches on
/// the host name alone: proxies often pass it on without the port the browser used.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, origin_host, origin_port)) = split_origin(origin) else {
        return false;
    };
    let Some((host, port)) = split_host_port(host) else {
        return false;
    };
    let origin_port = origin_port.or_else(|| default_port(scheme));
    host.eq_ignore_ascii_case(origin_host) && (port.is_none() || port == origin_port)
}

/// `scheme://host[:port]` into its parts; `None` for anything else (a path, `null`).
fn split_origin(origin: &str) -> Option<(&str, &str, Option<u16>)> {
    let (scheme, authority) = origin.split_once("://")?;
    if scheme.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = split_host_port(authority)?;
    Some((scheme, host, port))
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    match port {
        Some(port) => Some((host, Some(port.parse().ok()?))),
        None => Some((host, None)),
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn policy(list: &[&str]) -> OriginPolicy {
        let owned: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        OriginPolicy::parse(&owned).unwrap()
    }

    fn allowed(policy: &OriginPolicy, host: &str, origin: Option<&str>) -> bool {
        let mut req = TestRequest::get().insert_header((header::HOST, host));
        if let Some(origin) = origin {
            req = req.insert_header((header::ORIGIN, origin));
        }
        policy.check(&req.to_http_request()).is_ok()
    }

    /// The same origin and non-browser requests pass; other sites do not, unless listed or `*`.
    #[test]
    fn same_origin_listed_or_any() {
        let same = policy(&[]);
        let host = "127.0.0.1:8080";
        assert!(allowed(&same, host, None));
        assert!(allowed(&same, host, Some("http://127.0.0.1:8080")));
        assert!(allowed(
            &same,
            "Ticker.example:443",
            Some("https://ticker.example")
        ));
        assert!(allowed(
            &same,
            "ticker.example",
            Some("https://ticker.example:8443")
        ));
        assert!(allowed(&same, "[::1]:8080", Some("http://[::1]:8080")));
        assert!(!allowed(&same, host, Some("http://127.0.0.1:9090")));
        assert!(!allowed(&same, host, Some("https://evil.example")));
        assert!(!allowed(&same, host, Some("null")));
        assert!(!allowed(
            &same,
            "ticker.example",
            Some("https://ticker.example.evil.example")
        ));

        let listed = policy(&["https://app.example/", "http://localhost:3000"]);
        assert!(allowed(&listed, host, Some("https://APP.example")));
        assert!(allowed(&listed, host, Some("http://localhost:3000")));
        assert!(allowed(&listed, host, Some("http://127.0.0.1:8080")));
        assert!(!allowed(&listed, host, Some("http://localhost:3001")));

        assert!(allowed(&policy(&["*"]), host, Some("https://evil.example")));
    }

    /// List entries must be `*` or `scheme://host[:port]`.
    #[test]
    fn entries_must_be_origins() {
        for bad in [
            "example.com",
            "https://example.com/app",
            "https://",
            "http://a:b",
        ] {
            assert_eq!(
                OriginPolicy::parse(&["https://ok.example".to_owned(), bad.to_owned()])
                    .unwrap_err()
                    .0,
                1,
                "{bad}"
            );
        }
    }
}
