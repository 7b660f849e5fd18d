//! permessage-deflate negotiation (RFC 7692 §5, §7.1): reads the client's
//! `Sec-WebSocket-Extensions` offers and picks the first one this server can honour, which
//! decides the 101's answer and how each side compresses. Pure: no I/O, no state.
//!
//! An offer is declined (skipped) when it has an unknown, duplicated or malformed parameter,
//! or asks for `server_max_window_bits` below 15: flate2's default backend always deflates
//! with a 32 KiB window, and RFC 7692 §7.1.2.1 lets a server decline such an offer.
//! `client_max_window_bits` is a hint the server may ignore: it inflates with a full window.

use crate::settings::Compression;

/// The extension's registered name.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// What was agreed with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    /// The server starts every message with an empty window (always in `shared` mode: the same
    /// compressed bytes go to every client).
    pub server_no_context_takeover: bool,
    /// The client promised to do the same; the server may then forget its inflate window.
    pub client_no_context_takeover: bool,
    /// The offer named `server_max_window_bits` (15): the answer must repeat it.
    server_max_window_bits: bool,
}

impl Deflate {
    /// The `Sec-WebSocket-Extensions` value of the 101.
    pub fn response(&self) -> String {
        let mut out = PERMESSAGE_DEFLATE.to_owned();
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits {
            out.push_str("; server_max_window_bits=15");
        }
        out
    }
}

/// The parameters of one acceptable offer.
#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: bool,
}

/// Picks the first permessage-deflate offer among the header values `offers` (each possibly a
/// comma-separated list) that can be honoured in `mode`; `None` means no extension.
pub fn negotiate<'a>(
    offers: impl IntoIterator<Item = &'a str>,
    mode: Compression,
) -> Option<Deflate> {
    if mode == Compression::Off {
        return None;
    }
    let offer = offers
        .into_iter()
        .flat_map(|value| split_unquoted(value, ','))
        .find_map(parse_offer)?;
    Some(Deflate {
        server_no_context_takeover: mode == Compression::Shared || offer.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover,
        server_max_window_bits: offer.server_max_window_bits,
    })
}

/// One offer: `permessage-deflate` and its parameters, or `None` for another extension or an
/// offer this server declines.
fn parse_offer(offer: &str) -> Option<Offer> {
    let mut parts = split_unquoted(offer, ';').into_iter();
    let name = parts.next()?.trim();
    if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
        return None;
    }
    let mut out = Offer::default();
    let mut client_max_window_bits = false;
    for param in parts {
        let (key, value) = match param.split_once('=') {
            Some((key, value)) => (key.trim(), Some(unquote(value.trim())?)),
            None => (param.trim(), None),
        };
        let seen = match key.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => {
                std::mem::replace(&mut out.server_no_context_takeover, true)
            }
            "client_no_context_takeover" if value.is_none() => {
                std::mem::replace(&mut out.client_no_context_takeover, true)
            }
            "server_max_window_bits" => {
                // A smaller window cannot be produced: decline.
                if window_bits(value?)? != 15 {
                    return None;
                }
                std::mem::replace(&mut out.server_max_window_bits, true)
            }
            "client_max_window_bits" => {
                if let Some(value) = value {
                    window_bits(value)?;
                }
                std::mem::replace(&mut client_max_window_bits, true)
            }
            _ => return None,
        };
        if seen {
            return None;
        }
    }
    Some(out)
}

/// A window size: 8 to 15, digits only, no leading zero.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// A token or a quoted string's content (no escapes: a valid value is a token anyway).
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(rest) => {
            let inner = rest.strip_suffix('"')?;
            (!inner.contains(['"', '\\'])).then_some(inner)
        }
        None => (!value.is_empty()).then_some(value),
    }
}

/// Splits at `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(offers: &[&str], mode: Compression) -> Option<String> {
        negotiate(offers.iter().copied(), mode).map(|d| d.response())
    }

    fn shared(offers: &[&str]) -> Option<String> {
        answer(offers, Compression::Shared)
    }

    /// A plain offer: in shared mode the server never takes over its context.
    #[test]
    fn plain_offer() {
        assert_eq!(
            shared(&["permessage-deflate"]).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        assert_eq!(
            answer(&["permessage-deflate"], Compression::PerConnection).as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(answer(&["permessage-deflate"], Compression::Off), None);
    }

    /// What browsers send, and the parameters the server answers with.
    #[test]
    fn parameters_are_answered() {
        let browser = "permessage-deflate; client_max_window_bits";
        assert_eq!(
            shared(&[browser]).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        let all = "Permessage-Deflate; client_no_context_takeover; server_no_context_takeover; \
                   server_max_window_bits=\"15\"; client_max_window_bits=10";
        let expected = "permessage-deflate; server_no_context_takeover; \
                        client_no_context_takeover; server_max_window_bits=15";
        assert_eq!(shared(&[all]).as_deref(), Some(expected));
        let per = negotiate([all], Compression::PerConnection).unwrap();
        assert!(per.server_no_context_takeover && per.client_no_context_takeover);
        let per = negotiate(["permessage-deflate"], Compression::PerConnection).unwrap();
        assert!(!per.server_no_context_takeover && !per.client_no_context_takeover);
    }

    /// The first offer that can be honoured wins, across commas and header lines.
    #[test]
    fn first_acceptable_offer_wins() {
        let offers = "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10, \
                      permessage-deflate; client_no_context_takeover, permessage-deflate";
        assert_eq!(
            shared(&[offers]).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        assert_eq!(
            shared(&["foo", "permessage-deflate; bogus", "permessage-deflate"]).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    /// Offers the server declines: nothing acceptable means no extension at all.
    #[test]
    fn declined_offers() {
        for offer in [
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=015",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=\"15",
            "permessage-deflate; mystery",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=15",
            "x-webkit-deflate-frame",
            "",
        ] {
            assert_eq!(shared(&[offer]), None, "{offer}");
        }
        assert_eq!(shared(&[]), None);
    }
}
