//! Hostile clients, byte by byte: every framing violation RFC 6455 names gets its close code,
//! floods and vanishing peers are absorbed, and a well-behaved client on the same server
//! receives every tick throughout (its seq never skips).

mod support;

use std::time::Duration;

use serde_json::json;
use support::{OP_CLOSE, OP_CONTINUATION, OP_PING, OP_TEXT, RawHttp, TestApp};
use tokio::net::TcpStream;

/// A client frame header and payload with full control over every bit.
struct Frame<'a> {
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    payload: &'a [u8],
    /// Claims this payload length instead of the real one.
    claimed_len: Option<u64>,
}

impl Frame<'_> {
    fn new(opcode: u8, payload: &[u8]) -> Frame<'_> {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            masked: true,
            payload,
            claimed_len: None,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = vec![(u8::from(self.fin) << 7) | (self.rsv << 4) | self.opcode];
        let len = self.claimed_len.unwrap_or(self.payload.len() as u64);
        let mask_bit = if self.masked { 0x80 } else { 0 };
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if len <= 0xFFFF {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        let mask = [0xA1, 0xB2, 0xC3, 0xD4];
        if self.masked {
            out.extend_from_slice(&mask);
            out.extend(
                self.payload
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[i % 4]),
            );
        } else {
            out.extend_from_slice(self.payload);
        }
        out
    }
}

/// Sends `frames` on a fresh raw connection and returns the close code the server answers with.
async fn close_code_for(app: &TestApp, name: &str, frames: &[Frame<'_>]) -> Option<u16> {
    let mut raw = app.raw("/ws").await;
    for frame in frames {
        raw.send_bytes(&frame.bytes()).await;
    }
    tokio::time::timeout(support::PATIENCE, raw.read_until_close())
        .await
        .unwrap_or_else(|_| panic!("{name}: no Close in time"))
        .0
}

/// Every framing violation is closed with 1002 (or 1007/1009 where the RFC says so) while a
/// bystander keeps receiving every update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_violations_get_their_close_codes() {
    let app = TestApp::spawn().await;
    let bystander = app.connect("/ws?symbols=*").await;
    let (done, done_at) = tokio::sync::oneshot::channel();
    let bystander = tokio::spawn(support::watch_gapless(bystander, done_at));

    let big_ping = [b'p'; 126];
    let cases: Vec<(&str, Vec<Frame>, u16)> = vec![
        (
            "unmasked client frame",
            vec![Frame {
                masked: false,
                ..Frame::new(OP_TEXT, br#"{"op":"ping","id":1}"#)
            }],
            1002,
        ),
        (
            "reserved bit RSV1 without an extension",
            vec![Frame {
                rsv: 0b100,
                ..Frame::new(OP_TEXT, b"{}")
            }],
            1002,
        ),
        (
            "reserved data opcode 0x3",
            vec![Frame::new(0x3, b"x")],
            1002,
        ),
        (
            "reserved control opcode 0xB",
            vec![Frame::new(0xB, b"")],
            1002,
        ),
        (
            "control frame over 125 bytes",
            vec![Frame::new(OP_PING, &big_ping)],
            1002,
        ),
        (
            "fragmented control frame",
            vec![Frame {
                fin: false,
                ..Frame::new(OP_PING, b"a")
            }],
            1002,
        ),
        (
            "continuation without a start",
            vec![Frame::new(OP_CONTINUATION, b"x")],
            1002,
        ),
        (
            "new message while a fragmented one is open",
            vec![
                Frame {
                    fin: false,
                    ..Frame::new(OP_TEXT, b"{\"op\":")
                },
                Frame::new(OP_TEXT, b"{}"),
            ],
            1002,
        ),
        (
            "invalid UTF-8 split across fragments",
            vec![
                Frame {
                    fin: false,
                    ..Frame::new(OP_TEXT, b"ab\xE2\x82")
                },
                Frame::new(OP_CONTINUATION, b"\x28cd"),
            ],
            1007,
        ),
        (
            "a 2^63 length header",
            vec![Frame {
                claimed_len: Some(1 << 63),
                ..Frame::new(OP_TEXT, b"")
            }],
            1009,
        ),
        (
            "a length far over ws.max_message_bytes",
            vec![Frame {
                claimed_len: Some(u64::from(u32::MAX)),
                ..Frame::new(OP_TEXT, b"")
            }],
            1009,
        ),
    ];
    for (name, frames, expected) in &cases {
        assert_eq!(
            close_code_for(&app, name, frames).await,
            Some(*expected),
            "{name}"
        );
    }

    done.send(ticker::clock::now_ms()).unwrap();
    let (frames, _) = bystander.await.expect("the bystander saw no gap");
    assert!(frames > 0);
    app.stop().await;
}

/// Floods of pings and subscriptions, a reset connection and clients that connect and never
/// read: the server answers what it must, drops what it must, and the bystander sees every
/// tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_and_vanishing_peers_are_absorbed() {
    let app = TestApp::spawn().await;
    let bystander = app.connect("/ws?symbols=*").await;
    let (done, done_at) = tokio::sync::oneshot::channel();
    let bystander = tokio::spawn(support::watch_gapless(bystander, done_at));

    // Ping flood: 2,000 WebSocket Pings back to back; the connection stays usable (or is
    // closed by policy with 1008), never anything else.
    let mut pinger = app.raw("/ws").await;
    let flood: Vec<u8> = (0..2000)
        .flat_map(|_| Frame::new(OP_PING, b"flood").bytes())
        .collect();
    pinger.send_bytes(&flood).await;
    pinger
        .send_bytes(&Frame::new(OP_TEXT, br#"{"op":"ping","id":"after"}"#).bytes())
        .await;
    let (code, _) = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match pinger.read_frame().await {
                Some((OP_TEXT, payload)) if payload.windows(7).any(|w| w == b"\"after\"") => {
                    return (None, ());
                }
                Some((OP_CLOSE, payload)) => {
                    return (Some(u16::from_be_bytes([payload[0], payload[1]])), ());
                }
                Some(_) => {}
                None => panic!("the ping flooder was dropped without a Close"),
            }
        }
    })
    .await
    .unwrap_or((None, ()));
    assert!(
        code.is_none() || code == Some(1008),
        "ping flood ended with {code:?}"
    );

    // Subscribe flood: 1,000 requests in a row; every one gets an answer (its `subscribed`, or
    // an error such as rate_limited), or the connection is closed by policy with 1008.
    let mut subscriber = app.connect("/ws").await;
    for i in 0..1000 {
        let symbol = if i % 2 == 0 { "AAPL" } else { "MSFT" };
        subscriber
            .send_json(json!({"op": "subscribe", "symbols": [symbol]}))
            .await;
    }
    subscriber
        .send_json(json!({"op": "ping", "id": "done"}))
        .await;
    loop {
        match subscriber.next_event().await {
            support::Event::Message(ticker::protocol::ServerMessage::Pong { .. }) => break,
            support::Event::Message(_) => {}
            support::Event::Close(frame) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1008));
                break;
            }
            support::Event::Ended => panic!("the subscriber was dropped without a Close"),
        }
    }

    // A peer that resets its connection, and ones that connect and never read or write.
    let reset = TcpStream::connect(app.addr).await.unwrap();
    socket2::SockRef::from(&reset)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(reset);
    let mut reset_ws = app.raw("/ws?symbols=*").await;
    reset_ws.set_linger_zero();
    drop(reset_ws);
    let silent: Vec<_> =
        futures_util::future::join_all((0..20).map(|_| app.raw("/ws?symbols=*"))).await;

    let every = app.symbol_count().await;
    done.send(ticker::clock::now_ms()).unwrap();
    let (frames, symbols) = bystander.await.expect("the bystander saw no gap");
    assert!(
        frames > 0 && symbols == every,
        "{frames} frames, {symbols} symbols"
    );
    drop(silent);
    app.stop().await;
}

/// An upgrade that actix-http would not hand over to the session (another protocol beside
/// `websocket`, a body, `Connection: close`) gets 400 with `Connection: close`, never 101, and
/// the connection ends at once (the frame an eager client sends after it is at most refused as
/// a bad request); a plain upgrade still works.
#[tokio::test]
async fn upgrades_that_cannot_be_served_get_400() {
    let app = TestApp::spawn().await;
    let handshake = "GET /ws HTTP/1.1\r\nHost: t\r\nSec-WebSocket-Version: 13\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases = [
        "Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n",
        "Connection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n",
        "Connection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n\r\n",
        "Connection: Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello",
        "Connection: close, Upgrade\r\nUpgrade: websocket\r\n\r\n",
    ];
    for case in cases {
        let mut conn = RawHttp::connect(app.addr).await;
        conn.send(format!("{handshake}{case}").as_bytes()).await;
        conn.send(&Frame::new(OP_TEXT, br#"{"op":"ping"}"#).bytes())
            .await;
        let answer = conn.answer().await;
        assert_eq!(answer.status, 400, "{case}: {answer:?}");
        assert_eq!(answer.json()["error"], "bad_request", "{case}");
        assert_eq!(answer.header("connection"), Some("close"), "{case}");
        let started = std::time::Instant::now();
        let rest = String::from_utf8_lossy(&conn.until_closed().await).into_owned();
        assert!(started.elapsed() < Duration::from_secs(2), "{case}");
        assert!(
            rest.is_empty() || rest.starts_with("HTTP/1.1 400"),
            "{case}: then {rest}"
        );
    }
    let refused = "ticker_upgrades_rejected_total{reason=\"bad_request\"}";
    assert_eq!(app.metric(refused).await, cases.len() as f64);
    let mut plain = app.raw("/ws").await;
    assert!(
        matches!(plain.read_frame().await, Some((OP_TEXT, _))),
        "welcome"
    );
    app.stop().await;
}

/// An upgrade request to a route that is no WebSocket goes through that route like any
/// request and gets its answer (`/healthz` 200, an unknown path 404), then the connection
/// closes: after asking for an upgrade, what the client sends next is not HTTP.
#[tokio::test]
async fn upgrade_requests_to_other_routes_get_their_answer_and_a_close() {
    let app = TestApp::spawn().await;
    for (path, status) in [("/healthz", 200), ("/nope", 404), ("/api/quotes", 200)] {
        let mut conn = RawHttp::connect(app.addr).await;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        conn.send(request.as_bytes()).await;
        let answer = conn.answer().await;
        assert_eq!(answer.status, status, "{path}: {answer:?}");
        assert_eq!(answer.header("connection"), Some("close"), "{path}");
        let started = std::time::Instant::now();
        let rest = conn.until_closed().await;
        assert!(rest.is_empty(), "{path}: nothing after the answer");
        assert!(started.elapsed() < Duration::from_secs(2), "{path}");
    }
    app.stop().await;
}
