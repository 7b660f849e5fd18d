//! Wire protocol v1: client requests (`op`), server messages (`type`), error codes, and the
//! frame builders that join pre-serialized quotes instead of serializing per client.
//!
//! `docs/protocol.md` is the reference; the tests below check the shapes it shows.
//!
//! Imports no other area: `feed`, `session`, `http` and `cluster` all speak it.

pub mod close;
pub mod quote;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use quote::Quote;

pub const PROTOCOL_VERSION: u32 = 1;
/// The largest universe `welcome` lists whole; a larger one is only counted.
pub const WELCOME_SYMBOLS_MAX: usize = 256;
/// The `Sec-WebSocket-Protocol` value the server selects when a client offers it.
pub const SUBPROTOCOL: &str = "ticker.v1";

/// A request from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientMessage {
    Subscribe {
        symbols: Vec<String>,
    },
    Unsubscribe {
        symbols: Vec<String>,
    },
    Ping {
        #[serde(default)]
        id: Value,
    },
    /// A fresh token for this session, before the current one expires.
    Auth {
        token: String,
    },
}

/// A message from the server. `Snapshot` and `Quotes` are built by [`quotes_frame`] on the hot
/// path; this enum is their reference shape and what clients (and tests) deserialize.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        version: u32,
        session_id: String,
        /// Every symbol, when the universe has at most [`WELCOME_SYMBOLS_MAX`]; else empty and
        /// left out: a client searches `GET /api/symbols?q=` instead.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        symbols: Vec<String>,
        /// How many symbols the server has.
        #[serde(default)]
        symbol_count: usize,
        heartbeat_interval_ms: u64,
        idle_timeout_ms: u64,
        /// Which server node this connection is on (`server.node_id`).
        node: String,
        /// Unix epoch milliseconds when the session's token expires; absent when it does not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
    },
    /// A token sent with `auth` was accepted: its entitlements apply from now on.
    Authenticated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
    },
    Subscribed {
        symbols: Vec<String>,
    },
    Snapshot {
        quotes: Vec<Quote>,
    },
    Quotes {
        quotes: Vec<Quote>,
    },
    Pong {
        id: Value,
    },
    /// Whether quotes are flowing: sent when the feed goes stale (the broker is unreachable)
    /// and when it is live again; the connection stays open either way.
    Status {
        feed: Liveness,
        /// Unix epoch milliseconds since when the feed is stale; absent when live.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// The symbols the error is about, for `unknown_symbol` and `forbidden_symbol`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        symbols: Vec<String>,
    },
}

/// The `feed` of a `status` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    Live,
    Stale,
}

/// Why a request was refused; the connection stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownSymbol,
    TooManySubscriptions,
    /// More symbols in one request than `ws.max_symbols_per_request`.
    TooManySymbols,
    /// The message came faster than `ws.max_client_messages_per_sec` and was dropped.
    RateLimited,
    /// The session's token does not open these symbols; the others in the request applied.
    ForbiddenSymbol,
    /// The token sent with `auth` is not good; the session keeps its current one.
    Unauthorized,
    /// The token sent with `auth` is good but does not grant this session's tier.
    Forbidden,
}

impl ServerMessage {
    /// Serializes a control message; only done for rare messages, never per tick.
    pub fn to_frame(&self) -> ByteString {
        serde_json::to_string(self)
            .expect("server messages are plain data and always serialize")
            .into()
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            symbols: Vec::new(),
        }
    }
}

impl ClientMessage {
    /// Parses a text frame; the error text is sent back in a `bad_request` error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed = serde_json::from_str(text).map_err(|e| match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("not valid JSON: {e}")
            }
            _ => format!("not a valid request: {e}"),
        })?;
        // serde also takes a tagged enum as an array (`["ping"]`); the protocol has objects.
        if !text.trim_start().starts_with('{') {
            return Err("not a valid request: a request is a JSON object with an \"op\"".into());
        }
        Ok(parsed)
    }
}

/// The kinds of frame that carry a list of quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotesKind {
    Snapshot,
    Quotes,
}

/// Builds `{"type":"quotes","quotes":[…]}` (or `snapshot`) from quotes already serialized as
/// JSON objects, so a tick's quotes are serialized once no matter how many clients get them.
pub fn quotes_frame<'a>(kind: QuotesKind, quotes: impl IntoIterator<Item = &'a str>) -> ByteString {
    let head = match kind {
        QuotesKind::Snapshot => r#"{"type":"snapshot","quotes":["#,
        QuotesKind::Quotes => r#"{"type":"quotes","quotes":["#,
    };
    join(head, quotes, "]}").into()
}

/// `head` + the items separated by commas + `tail`.
pub fn join<'a>(head: &str, items: impl IntoIterator<Item = &'a str>, tail: &str) -> String {
    let items = items.into_iter();
    let mut out = String::with_capacity(head.len() + tail.len() + 256 * items.size_hint().0);
    out.push_str(head);
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push_str(tail);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn quote(symbol: &str, seq: u64) -> Quote {
        Quote {
            symbol: symbol.into(),
            price: 101.25,
            bid: 101.2,
            ask: 101.3,
            open: 100.0,
            high: 102.0,
            low: 99.5,
            change: 1.25,
            change_pct: 1.25,
            volume: 1200,
            seq,
            ts: 1_700_000_000_000,
        }
    }

    /// The concatenated frame is exactly what serde makes of `ServerMessage::Quotes`/`Snapshot`.
    #[test]
    fn joined_frames_equal_serde_output() {
        let quotes = vec![quote("AAPL", 3), quote("MSFT", 9)];
        let parts: Vec<String> = quotes
            .iter()
            .map(|q| serde_json::to_string(q).unwrap())
            .collect();
        let joined = quotes_frame(QuotesKind::Quotes, parts.iter().map(String::as_str));
        assert_eq!(
            &*joined,
            &*ServerMessage::Quotes {
                quotes: quotes.clone()
            }
            .to_frame()
        );
        let joined = quotes_frame(QuotesKind::Snapshot, parts.iter().map(String::as_str));
        assert_eq!(&*joined, &*ServerMessage::Snapshot { quotes }.to_frame());
        let empty = quotes_frame(QuotesKind::Quotes, []);
        assert_eq!(&*empty, r#"{"type":"quotes","quotes":[]}"#);
    }

    /// Requests parse as documented; anything else is a `bad_request` with a reason.
    #[test]
    fn client_messages_parse_as_documented() {
        assert_eq!(
            ClientMessage::parse(r#"{"op":"subscribe","symbols":["AAPL","*"]}"#),
            Ok(ClientMessage::Subscribe {
                symbols: vec!["AAPL".into(), "*".into()]
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"op":"ping","id":{"n":7}}"#),
            Ok(ClientMessage::Ping {
                id: json!({"n": 7})
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"op":"ping"}"#),
            Ok(ClientMessage::Ping { id: Value::Null })
        );
        for bad in [
            "hello",
            "{",
            "[]",
            r#"{"symbols":["AAPL"]}"#,
            r#"{"op":"buy","symbols":["AAPL"]}"#,
            r#"{"op":"subscribe","symbols":"AAPL"}"#,
            r#"{"op":"subscribe"}"#,
            r#"{"op":7}"#,
        ] {
            assert!(ClientMessage::parse(bad).is_err(), "{bad} parsed");
        }
        assert!(
            ClientMessage::parse("nope")
                .unwrap_err()
                .starts_with("not valid JSON")
        );
    }

    /// Server messages have the documented `type` tags and field names.
    #[test]
    fn server_messages_have_documented_shapes() {
        let welcome = ServerMessage::Welcome {
            version: 1,
            session_id: "s1".into(),
            symbols: vec!["AAPL".into()],
            symbol_count: 1,
            heartbeat_interval_ms: 5000,
            idle_timeout_ms: 15000,
            node: "edge-1".into(),
            expires_at: None,
        };
        assert_eq!(
            serde_json::to_value(&welcome).unwrap(),
            json!({"type":"welcome","version":1,"session_id":"s1","symbols":["AAPL"],
                   "symbol_count":1,"heartbeat_interval_ms":5000,"idle_timeout_ms":15000,
                   "node":"edge-1"})
        );
        let stale = ServerMessage::Status {
            feed: Liveness::Stale,
            since: Some(1_700_000_000_000),
        };
        assert_eq!(
            serde_json::to_value(&stale).unwrap(),
            json!({"type":"status","feed":"stale","since":1_700_000_000_000u64})
        );
        let live = ServerMessage::Status {
            feed: Liveness::Live,
            since: None,
        };
        assert_eq!(
            serde_json::to_value(&live).unwrap(),
            json!({"type":"status","feed":"live"})
        );
        let err = ServerMessage::Error {
            code: ErrorCode::UnknownSymbol,
            message: "unknown symbol: NOPE".into(),
            symbols: vec!["NOPE".into()],
        };
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"type":"error","code":"unknown_symbol","message":"unknown symbol: NOPE","symbols":["NOPE"]})
        );
        assert_eq!(
            serde_json::to_value(ServerMessage::error(ErrorCode::TooManySubscriptions, "x"))
                .unwrap(),
            json!({"type":"error","code":"too_many_subscriptions","message":"x"})
        );
        assert_eq!(
            serde_json::to_value(ServerMessage::Pong { id: json!(3) }).unwrap(),
            json!({"type":"pong","id":3})
        );
    }
}
