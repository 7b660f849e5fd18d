//! Wire protocol v1: client requests (`op`), server messages (`type`), error codes, and the
//! frame builders that join pre-serialized quotes instead of serializing per client.
//!
//! `docs/protocol.md` is the reference; the tests below check the shapes it shows.
//!
//! Imports no other area: `feed`, `session`, `http` and `cluster` all speak it.

pub mod close;
pub mod history;
pub mod quote;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use history::{Bar, HistoryLimits, Interval};
use quote::Quote;

pub const PROTOCOL_VERSION: u32 = 1;
/// The largest universe `welcome` lists whole; a larger one is only counted.
pub const WELCOME_SYMBOLS_MAX: usize = 256;
/// The `Sec-WebSocket-Protocol` value the server selects when a client offers it.
pub const SUBPROTOCOL: &str = "ticker.v1";

/// What a client asks for: the `op` of a request (its `id` is in [`Request`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientMessage {
    Subscribe {
        symbols: Vec<String>,
        /// Resume: the last seq the client has, per symbol (`{"AAPL":1234}`); checked by
        /// [`parse_since`], so that a bad value gets a message that names it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Value>,
    },
    Unsubscribe {
        symbols: Vec<String>,
    },
    Ping,
    History {
        symbol: String,
        interval: Interval,
        /// The newest `limit` bars; absent = every bar kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// A fresh token for this session, before the current one expires.
    Auth {
        token: String,
    },
}

/// One request: what the client asks, and the `id` (any JSON value) every reply to it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Option<Value>,
    pub message: ClientMessage,
}

/// A request that could not be read: why, and its `id` if it had one, for the error reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub id: Option<Value>,
    pub reason: String,
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
        /// What history and resume can reach.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        history: Option<HistoryLimits>,
        /// Unix epoch milliseconds when the session's token expires; absent when it does not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
        /// On a delayed tier: how far behind the market every update, snapshot and bar is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_ms: Option<u64>,
        /// Which run of the feed this is (a restarted server or publisher starts another): seqs
        /// of one run say nothing about another's, so a client resumes with `since` only on
        /// the run it got them from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<String>,
    },
    /// A token sent with `auth` was accepted: its entitlements apply from now on.
    Authenticated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
    },
    Subscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Value>,
        /// Every symbol the session is subscribed to now.
        symbols: Vec<String>,
        /// The symbols of this request whose missed updates were replayed (resume), in the
        /// `quotes` frames that follow; the others of the request get a `snapshot`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recovered: Vec<String>,
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
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Value>,
        symbol: String,
        interval: Interval,
        /// Oldest first.
        bars: Vec<Bar>,
    },
    /// Whether quotes are flowing: sent when the feed goes stale (the broker is unreachable)
    /// and when it is live again; the connection stays open either way. Also sent once when
    /// the server begins to shut down, with `server` and `reconnect_after_ms`.
    Status {
        feed: Liveness,
        /// Unix epoch milliseconds since when the feed is stale; absent when live.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        /// `draining` once shutdown began; absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<ServerState>,
        /// With `draining`: the server closes this session (1001) in about this many ms;
        /// reconnect then, with jitter, and reach another node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reconnect_after_ms: Option<u64>,
    },
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Value>,
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

/// The `server` of a `status` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// Shutting down: no new sessions, the open ones are closed over the drain window.
    Draining,
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

    /// The feed's liveness (`since`: when it went stale).
    pub fn status(feed: Liveness, since: Option<u64>) -> Self {
        Self::Status {
            feed,
            since,
            server: None,
            reconnect_after_ms: None,
        }
    }

    /// The shutdown notice: this session is closed in `reconnect_after_ms`.
    pub fn draining(feed: Liveness, reconnect_after_ms: u64) -> Self {
        Self::Status {
            feed,
            since: None,
            server: Some(ServerState::Draining),
            reconnect_after_ms: Some(reconnect_after_ms),
        }
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            id: None,
            code,
            message: message.into(),
            symbols: Vec::new(),
        }
    }

    /// This message as a reply to the request with `request` as its id: replies (`subscribed`,
    /// `history`, `pong`, `error`) carry it; other messages are left as they are.
    pub fn with_id(mut self, request: Option<&Value>) -> Self {
        match &mut self {
            Self::Subscribed { id, .. }
            | Self::History { id, .. }
            | Self::Authenticated { id, .. }
            | Self::Error { id, .. } => {
                *id = request.cloned();
            }
            Self::Pong { id } => *id = request.cloned().unwrap_or(Value::Null),
            _ => {}
        }
        self
    }
}

impl Request {
    /// Parses a text frame; the reason is sent back in a `bad_request` error, with the
    /// request's `id` when it had one.
    pub fn parse(text: &str) -> Result<Self, Unreadable> {
        let unreadable = |id, reason| Unreadable { id, reason };
        let value: Value = serde_json::from_str(text)
            .map_err(|e| unreadable(None, format!("not valid JSON: {e}")))?;
        // serde also takes a tagged enum as an array (`["ping"]`); the protocol has objects.
        let Value::Object(mut fields) = value else {
            return Err(unreadable(
                None,
                "not a valid request: a request is a JSON object with an \"op\"".into(),
            ));
        };
        let id = fields.remove("id");
        match serde_json::from_value(Value::Object(fields)) {
            Ok(message) => Ok(Self { id, message }),
            Err(e) => Err(unreadable(id, format!("not a valid request: {e}"))),
        }
    }
}

/// Reads `subscribe`'s `since`: an object of symbol → the last seq the client has.
pub fn parse_since(since: &Value) -> Result<Vec<(String, u64)>, String> {
    let Value::Object(entries) = since else {
        return Err(format!(
            "since must be an object of symbol to the last seq received, like {{\"AAPL\":1234}}, not {since}"
        ));
    };
    entries
        .iter()
        .map(|(symbol, seq)| match seq.as_u64() {
            Some(seq) => Ok((symbol.clone(), seq)),
            None => Err(format!(
                "since.{symbol} must be the last seq received (an integer, 0 or more), not {seq}"
            )),
        })
        .collect()
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
    join(kind.head(), quotes, QUOTES_TAIL).into()
}

/// What closes a `quotes` or `snapshot` message after its list of quotes.
pub const QUOTES_TAIL: &str = "]}";

impl QuotesKind {
    /// What opens the message, up to its list of quotes.
    pub fn head(self) -> &'static str {
        match self {
            QuotesKind::Snapshot => r#"{"type":"snapshot","quotes":["#,
            QuotesKind::Quotes => r#"{"type":"quotes","quotes":["#,
        }
    }
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

    /// Requests parse as documented, with their id; anything else is a `bad_request` with a
    /// reason (and the id, when the request was an object that had one).
    #[test]
    fn requests_parse_as_documented() {
        assert_eq!(
            Request::parse(r#"{"op":"subscribe","symbols":["AAPL","*"]}"#),
            Ok(Request {
                id: None,
                message: ClientMessage::Subscribe {
                    symbols: vec!["AAPL".into(), "*".into()],
                    since: None,
                }
            })
        );
        assert_eq!(
            Request::parse(r#"{"op":"ping","id":{"n":7}}"#),
            Ok(Request {
                id: Some(json!({"n": 7})),
                message: ClientMessage::Ping
            })
        );
        assert_eq!(
            Request::parse(r#"{"op":"history","symbol":"AAPL","interval":"1s","id":"h"}"#),
            Ok(Request {
                id: Some(json!("h")),
                message: ClientMessage::History {
                    symbol: "AAPL".into(),
                    interval: Interval::Second,
                    limit: None
                }
            })
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
            r#"{"op":"history","symbol":"AAPL","interval":"5m"}"#,
        ] {
            assert!(Request::parse(bad).is_err(), "{bad} parsed");
        }
        assert!(
            Request::parse("nope")
                .unwrap_err()
                .reason
                .starts_with("not valid JSON")
        );
        assert_eq!(
            Request::parse(r#"{"op":"buy","id":9}"#).unwrap_err().id,
            Some(json!(9))
        );
    }

    /// `since` is an object of non-negative seqs; anything else is refused with a reason that
    /// names the culprit.
    #[test]
    fn since_is_checked() {
        assert_eq!(
            parse_since(&json!({"AAPL": 12, "MSFT": 0})),
            Ok(vec![("AAPL".into(), 12), ("MSFT".into(), 0)])
        );
        assert!(
            parse_since(&json!({"AAPL": -1}))
                .unwrap_err()
                .contains("since.AAPL")
        );
        assert!(
            parse_since(&json!({"AAPL": 1.5}))
                .unwrap_err()
                .contains("since.AAPL")
        );
        assert!(
            parse_since(&json!({"AAPL": "7"}))
                .unwrap_err()
                .contains("since.AAPL")
        );
        assert!(
            parse_since(&json!([1, 2]))
                .unwrap_err()
                .starts_with("since must be an object")
        );
    }

    /// Replies carry the request's id; other messages never do.
    #[test]
    fn replies_carry_the_request_id() {
        let id = json!({"n": 1});
        let subscribed = ServerMessage::Subscribed {
            id: None,
            symbols: vec!["AAPL".into()],
            recovered: vec!["AAPL".into()],
        }
        .with_id(Some(&id));
        assert_eq!(
            serde_json::to_value(&subscribed).unwrap(),
            json!({"type":"subscribed","id":{"n":1},"symbols":["AAPL"],"recovered":["AAPL"]})
        );
        let error = ServerMessage::error(ErrorCode::BadRequest, "x").with_id(Some(&id));
        assert_eq!(serde_json::to_value(&error).unwrap()["id"], id);
        let pong = ServerMessage::Pong { id: Value::Null };
        assert_eq!(
            serde_json::to_value(pong.clone().with_id(None)).unwrap(),
            json!({"type":"pong","id":null})
        );
        let status = ServerMessage::status(Liveness::Live, None);
        assert_eq!(status.clone().with_id(Some(&id)), status);
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
            history: None,
            expires_at: None,
            delay_ms: None,
            run: None,
        };
        assert_eq!(
            serde_json::to_value(&welcome).unwrap(),
            json!({"type":"welcome","version":1,"session_id":"s1","symbols":["AAPL"],
                   "symbol_count":1,"heartbeat_interval_ms":5000,"idle_timeout_ms":15000,
                   "node":"edge-1"})
        );
        let stale = ServerMessage::status(Liveness::Stale, Some(1_700_000_000_000));
        assert_eq!(
            serde_json::to_value(&stale).unwrap(),
            json!({"type":"status","feed":"stale","since":1_700_000_000_000u64})
        );
        let live = ServerMessage::status(Liveness::Live, None);
        assert_eq!(
            serde_json::to_value(&live).unwrap(),
            json!({"type":"status","feed":"live"})
        );
        let draining = ServerMessage::draining(Liveness::Live, 1840);
        assert_eq!(
            serde_json::to_value(&draining).unwrap(),
            json!({"type":"status","feed":"live","server":"draining","reconnect_after_ms":1840})
        );
        let err = ServerMessage::Error {
            id: None,
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
