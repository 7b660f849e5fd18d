//! permessage-deflate (RFC 7692) byte by byte: what the 101 answers to each offer, compressed
//! server frames that inflate to the protocol's JSON, small frames left plain, compressed
//! requests inflated and answered, a deflate bomb closed with 1009, and RSV1 from a client that
//! did not negotiate closed with 1002.

mod support;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use serde_json::Value;
use support::{OP_CONTINUATION, OP_TEXT, RawClient, TestApp, settings::settings_from};

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

fn offer(value: &str) -> String {
    format!("Sec-WebSocket-Extensions: {value}\r\n")
}

/// The value of the 101's `Sec-WebSocket-Extensions`, if any.
fn extensions(head: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-extensions")
            .then(|| value.trim().to_owned())
    })
}

/// A client's deflate: raw, sync-flushed, tail removed.
fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(payload.len() + 1024);
    c.compress_vec(payload, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&TAIL));
    out.truncate(out.len() - 4);
    out
}

/// Inflates one message as a client does: the tail appended.
fn inflate(d: &mut Decompress, payload: &[u8]) -> Vec<u8> {
    let input = [payload, &TAIL].concat();
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .expect("valid deflate data");
    assert!(out.len() < out.capacity(), "inflated whole");
    out
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// Reads frames (inflating compressed ones, each on its own) until `wanted` says yes; returns
/// the message and whether it came compressed.
async fn read_until(raw: &mut RawClient, wanted: impl Fn(&Value) -> bool) -> (Value, bool) {
    for _ in 0..500 {
        let (first, payload) = raw.read_frame_with_first().await.expect("a frame");
        assert_eq!(first & 0x0F, OP_TEXT, "only text frames expected");
        let compressed = first & RSV1 != 0;
        let message = if compressed {
            json(&inflate(&mut Decompress::new(false), &payload))
        } else {
            json(&payload)
        };
        if wanted(&message) {
            return (message, compressed);
        }
    }
    panic!("the message never came");
}

fn of_type(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |m| m["type"] == kind
}

/// Each offer gets the answer RFC 7692 asks for; no offer, or none acceptable, gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_answers_each_offer() {
    let app = TestApp::spawn().await;
    let cases: &[(String, Option<&str>)] = &[
        (String::new(), None),
        (
            offer("permessage-deflate"),
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (
            offer("permessage-deflate; client_max_window_bits"),
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (
            offer(
                "permessage-deflate; server_max_window_bits=10, \
                 permessage-deflate; client_no_context_takeover, permessage-deflate",
            ),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        ),
        (
            offer("foo, permessage-deflate; server_max_window_bits=15")
                + &offer("permessage-deflate"),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=15"),
        ),
        (offer("permessage-deflate; server_max_window_bits=10"), None),
        (offer("permessage-deflate; mystery=1"), None),
        (
            offer("permessage-deflate; client_no_context_takeover; client_no_context_takeover"),
            None,
        ),
        (offer("x-webkit-deflate-frame"), None),
    ];
    for (headers, expected) in cases {
        let (_raw, head) = app.raw_with("/ws", headers).await;
        assert_eq!(extensions(&head).as_deref(), *expected, "{headers:?}");
    }
    app.stop().await;

    let per = TestApp::spawn_with(with(&[("TICKER__WS__COMPRESSION", "per_connection")])).await;
    let (_raw, head) = per.raw_with("/ws", &offer("permessage-deflate")).await;
    assert_eq!(extensions(&head).as_deref(), Some("permessage-deflate"));
    per.stop().await;
    let off = TestApp::spawn_with(with(&[("TICKER__WS__COMPRESSION", "off")])).await;
    let (_raw, head) = off.raw_with("/ws", &offer("permessage-deflate")).await;
    assert_eq!(extensions(&head), None);
    off.stop().await;
}

fn with(vars: &[(&str, &str)]) -> ticker::settings::Settings {
    use support::settings::{CLIENT_LIMITS_OFF, IN_PROCESS};
    settings_from(&[IN_PROCESS, CLIENT_LIMITS_OFF, vars].concat())
}

/// Shared mode: the welcome and the whole-tick frames come compressed, each inflating alone to
/// the protocol's JSON; a short reply comes plain; a compressed request is inflated and answered,
/// also when fragmented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_frames_both_ways() {
    let app = TestApp::spawn().await;
    let (mut raw, _) = app
        .raw_with("/ws?symbols=*", &offer("permessage-deflate"))
        .await;
    let (welcome, compressed) = read_until(&mut raw, of_type("welcome")).await;
    assert!(compressed, "the welcome is long enough to be compressed");
    assert!(welcome["symbols"].as_array().is_some_and(|s| !s.is_empty()));
    let (quotes, compressed) = read_until(&mut raw, |m| {
        m["type"] == "quotes" && m["quotes"].as_array().is_some_and(|q| q.len() > 2)
    })
    .await;
    assert!(compressed, "a tick's frame is compressed: {quotes}");

    raw.send_frame(OP_TEXT, br#"{"op":"ping","id":1}"#, true)
        .await;
    let (pong, compressed) = read_until(&mut raw, of_type("pong")).await;
    assert_eq!(
        (pong["id"].as_u64(), compressed),
        (Some(1), false),
        "short: plain"
    );

    raw.send_frame_with_first(FIN | RSV1 | OP_TEXT, &deflate(br#"{"op":"ping","id":2}"#))
        .await;
    let (pong, _) = read_until(&mut raw, of_type("pong")).await;
    assert_eq!(pong["id"], 2);

    let request = deflate(br#"{"op":"ping","id":3}"#);
    let (a, b) = request.split_at(request.len() / 2);
    raw.send_frame_with_first(RSV1 | OP_TEXT, a).await;
    raw.send_frame(OP_CONTINUATION, b, true).await;
    let (pong, _) = read_until(&mut raw, of_type("pong")).await;
    assert_eq!(pong["id"], 3);
    app.stop().await;
}

/// Per-connection mode: context takeover, so the client keeps one inflater for the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_connection_frames_inflate_in_order() {
    let app = TestApp::spawn_with(with(&[("TICKER__WS__COMPRESSION", "per_connection")])).await;
    let (mut raw, _) = app
        .raw_with("/ws?symbols=*", &offer("permessage-deflate"))
        .await;
    let mut inflater = Decompress::new(false);
    let mut compressed = 0;
    let mut quotes = 0;
    while quotes < 20 {
        let (first, payload) = raw.read_frame_with_first().await.expect("a frame");
        let message = if first & RSV1 != 0 {
            compressed += 1;
            json(&inflate(&mut inflater, &payload))
        } else {
            json(&payload)
        };
        if message["type"] == "quotes" {
            quotes += 1;
        }
    }
    assert!(compressed >= 10, "{compressed} compressed");
    app.stop().await;
}

/// A compressed message that inflates past `ws.max_message_bytes` is closed with 1009; RSV1 on
/// a continuation, or from a client that did not negotiate, with 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_and_stray_rsv1_are_closed() {
    let app = TestApp::spawn().await;
    let bomb = deflate(&vec![b' '; 1 << 20]);
    assert!(bomb.len() < 4096, "fits the compressed size limit");
    let (mut raw, _) = app.raw_with("/ws", &offer("permessage-deflate")).await;
    raw.send_frame_with_first(FIN | RSV1 | OP_TEXT, &bomb).await;
    assert_eq!(raw.read_until_close().await.0, Some(1009));

    let (mut raw, _) = app.raw_with("/ws", &offer("permessage-deflate")).await;
    raw.send_frame(OP_TEXT, b"{", false).await;
    raw.send_frame_with_first(FIN | RSV1 | OP_CONTINUATION, b"}")
        .await;
    assert_eq!(raw.read_until_close().await.0, Some(1002));

    let (mut raw, _) = app.raw_with("/ws", &offer("permessage-deflate")).await;
    raw.send_frame_with_first(FIN | RSV1 | OP_TEXT, &[0xff; 8])
        .await;
    assert_eq!(
        raw.read_until_close().await.0,
        Some(1002),
        "not deflate data"
    );

    let mut raw = app.raw("/ws").await;
    raw.send_frame_with_first(FIN | RSV1 | OP_TEXT, &deflate(br#"{"op":"ping","id":1}"#))
        .await;
    assert_eq!(raw.read_until_close().await.0, Some(1002));
    app.stop().await;
}
