//! Value types of settings that carry their own rules: a duration that cannot overflow, a
//! secret that cannot be printed, a network and an origin parsed once, where the settings load.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration setting (`*_ms`), in whole milliseconds from 0 to one day. The bound makes every
/// deadline built from it (`Instant + duration`) safe from overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Millis(u64);

impl Millis {
    /// The longest a duration setting may be: one day.
    pub const MAX: u64 = 86_400_000;

    /// A duration of `ms` milliseconds; more than [`Millis::MAX`] is a bug in the caller.
    pub const fn new(ms: u64) -> Self {
        assert!(ms <= Self::MAX, "a duration setting is at most one day");
        Self(ms)
    }

    pub const fn ms(self) -> u64 {
        self.0
    }

    pub const fn get(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ms = u64::deserialize(deserializer)?;
        if ms > Self::MAX {
            return Err(serde::de::Error::custom(format!(
                "must be at most {} (one day), not {ms}",
                Self::MAX
            )));
        }
        Ok(Self(ms))
    }
}

/// A secret setting (a key, a password, a token). Its `Debug` and its serialized form (what
/// `ticker check-config` prints) are `<redacted>`; only [`Secret::expose`] reads it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: &str) -> Self {
        Self(SecretString::from(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

/// An address (`10.0.0.7`, `::1`) or a network (`10.0.0.0/8`), as in `server.trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(pub IpNet);

impl Network {
    pub fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim();
        entry
            .parse::<IpNet>()
            .ok()
            .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
            .map(Self)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entry = String::deserialize(deserializer)?;
        Self::parse(&entry).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "must be an IP address or a CIDR network such as 10.0.0.0/8, not {entry:?}"
            ))
        })
    }
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A web origin, `scheme://host[:port]`, in lower case; the port is explicit or the scheme's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses `https://app.example.com`, `http://localhost:3000`, `http://[::1]:8080`; only the
    /// http(s) and ws(s) schemes, whose default ports are known. A trailing `/` is allowed.
    pub fn parse(origin: &str) -> Option<Self> {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, authority) = origin.split_once("://")?;
        let default = match scheme {
            "http" | "ws" => 80,
            "https" | "wss" => 443,
            _ => return None,
        };
        let (host, port) = split_host_port(authority)?;
        Some(Self {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port: port.unwrap_or(default),
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` for anything else (paths, user info,
/// empty host, a port that is not a number).
pub fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, rest) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
    if !valid_host {
        return None;
    }
    match port {
        None => Some((host, None)),
        Some(port) => Some((host, Some(port.parse().ok()?))),
    }
}

/// An entry of `server.public_hosts`: a host name or address this server answers for, with an
/// optional port (`ticker.example.com`, `localhost:8080`); without one, any port matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicHost {
    pub host: String,
    pub port: Option<u16>,
}

impl PublicHost {
    pub fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim().to_ascii_lowercase();
        let (host, port) = split_host_port(&entry)?;
        Some(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl<'de> Deserialize<'de> for PublicHost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entry = String::deserialize(deserializer)?;
        Self::parse(&entry).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "must be a host name or address with an optional port, such as ticker.example.com or localhost:8080, not {entry:?}"
            ))
        })
    }
}

impl Serialize for PublicHost {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => serializer.collect_str(&format_args!("{host}:{port}")),
            None => serializer.serialize_str(&host),
        }
    }
}

/// An entry of `server.allowed_origins`: `"*"`, an origin, or a subdomain pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigin {
    Any,
    Origin(Origin),
    Pattern(OriginPattern),
}

/// `https://*.example.com[:port]`: every subdomain of `example.com`, at any depth, with this
/// scheme and port; not `example.com` itself (list it as well to allow it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    pub scheme: String,
    /// `.example.com`: what a matching host ends with.
    pub suffix: String,
    pub port: u16,
}

impl OriginPattern {
    /// Parses `https://*.example.com`; `None` for anything else (a bare `*.`, a `*` elsewhere).
    pub fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, rest) = entry.split_once("://")?;
        let parent = rest.strip_prefix("*.")?;
        // The rest must be an origin of its own, with at least two labels: `*.com` is too wide.
        let origin = Origin::parse(&format!("{scheme}://{parent}"))?;
        if origin.host.contains('*') || !origin.host.contains('.') || origin.host.contains(':') {
            return None;
        }
        Some(Self {
            scheme: origin.scheme,
            suffix: format!(".{}", origin.host),
            port: origin.port,
        })
    }

    pub fn matches(&self, origin: &Origin) -> bool {
        origin.scheme == self.scheme
            && origin.port == self.port
            && origin.host.len() > self.suffix.len()
            && origin.host.ends_with(&self.suffix)
    }
}

impl AllowedOrigin {
    /// Whether a page of `origin` is allowed by this entry.
    pub fn allows(&self, origin: &Origin) -> bool {
        match self {
            Self::Any => true,
            Self::Origin(allowed) => allowed == origin,
            Self::Pattern(pattern) => pattern.matches(origin),
        }
    }
}

impl<'de> Deserialize<'de> for AllowedOrigin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entry = String::deserialize(deserializer)?;
        if entry.trim() == "*" {
            return Ok(Self::Any);
        }
        let parsed = if entry.contains('*') {
            OriginPattern::parse(&entry).map(Self::Pattern)
        } else {
            Origin::parse(&entry).map(Self::Origin)
        };
        parsed.ok_or_else(|| {
            serde::de::Error::custom(format!(
                "must be \"*\", an origin such as https://example.com or http://localhost:3000, \
                 or a subdomain pattern such as https://*.example.com, not {entry:?}"
            ))
        })
    }
}

impl Serialize for AllowedOrigin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Any => serializer.serialize_str("*"),
            Self::Origin(origin) => serializer.collect_str(origin),
            Self::Pattern(p) => {
                serializer.collect_str(&format_args!("{}://*{}:{}", p.scheme, p.suffix, p.port))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Origins parse to scheme, host and port, with the scheme's default port.
    #[test]
    fn origins() {
        let o = Origin::parse("HTTPS://App.Example.com/").unwrap();
        assert_eq!(
            (o.scheme.as_str(), o.host.as_str(), o.port),
            ("https", "app.example.com", 443)
        );
        let o = Origin::parse("http://[::1]:8080").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("::1", 8080));
        for bad in [
            "example.com",
            "ftp://x",
            "http://",
            "http://a/b",
            "http://a:b",
            "http://u@a",
        ] {
            assert!(Origin::parse(bad).is_none(), "{bad}");
        }
    }

    /// `https://*.example.com` matches subdomains at any depth with its scheme and port, and
    /// nothing else; patterns too wide or malformed do not parse.
    #[test]
    fn origin_patterns() {
        let p = OriginPattern::parse("https://*.Example.com/").unwrap();
        let o = |s: &str| Origin::parse(s).unwrap();
        assert!(p.matches(&o("https://app.example.com")));
        assert!(p.matches(&o("https://a.b.example.com:443")));
        assert!(!p.matches(&o("https://example.com")));
        assert!(!p.matches(&o("http://app.example.com")));
        assert!(!p.matches(&o("https://app.example.com:8443")));
        assert!(!p.matches(&o("https://evilexample.com")));
        assert!(!p.matches(&o("https://app.example.com.evil.net")));
        let with_port = OriginPattern::parse("http://*.local.test:3000").unwrap();
        assert!(with_port.matches(&o("http://x.local.test:3000")));
        for bad in [
            "https://*.com",
            "https://*",
            "https://a.*.com",
            "*.example.com",
            "ftp://*.a.b",
        ] {
            assert!(OriginPattern::parse(bad).is_none(), "{bad}");
        }
    }

    /// Secrets never show in `Debug` or in serialized settings.
    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("hunter2-hunter2-hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(
            toml::Value::try_from(&s).unwrap().as_str(),
            Some("<redacted>")
        );
        assert_eq!(s.expose(), "hunter2-hunter2-hunter2");
    }
}
