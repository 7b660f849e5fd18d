//! Every way a connection ends, with its RFC 6455 close code: client close, binary, oversize,
//! invalid UTF-8, idle (heartbeat), and server shutdown.

mod support;

use std::time::Duration;

use support::{Event, OP_BINARY, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, TestApp};
use ticker::protocol::ServerMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A client's Close is answered with a Close of the same code, and nothing follows it.
#[tokio::test]
async fn client_close_is_echoed_with_same_code() {
    let app = TestApp::spawn().await;
    for code in [1000u16, 4000] {
        let mut client = app.connect("/ws?symbols=*").await;
        client
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "bye".into(),
            }))
            .await;
        assert_eq!(client.recv_close().await, code);
        assert!(
            matches!(client.next_event().await, Event::Ended),
            "nothing after Close"
        );
    }
    app.stop().await;
}

/// A Close carrying a code that must never be sent (1005 here) is answered with 1002.
#[tokio::test]
async fn reserved_close_code_gets_1002() {
    let app = TestApp::spawn().await;
    let mut raw = app.raw("/ws").await;
    raw.send_frame(support::OP_CLOSE, &1005u16.to_be_bytes(), true)
        .await;
    assert_eq!(raw.read_until_close().await.0, Some(1002));
    app.stop().await;
}

/// A binary frame closes the connection with 1003 (unsupported data).
#[tokio::test]
async fn binary_frame_closes_with_1003() {
    let app = TestApp::spawn().await;
    let mut raw = app.raw("/ws").await;
    raw.send_frame(OP_BINARY, b"\x00\x01", true).await;
    assert_eq!(raw.read_until_close().await.0, Some(1003));
    assert!(raw.at_eof().await, "the server closes the TCP connection");
    app.stop().await;
}

/// A text message over `ws.max_message_bytes` closes with 1009, whole or in fragments.
#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let app = TestApp::spawn().await;
    let big = vec![b'x'; 4097];
    let mut raw = app.raw("/ws").await;
    raw.send_frame(OP_TEXT, &big, true).await;
    assert_eq!(raw.read_until_close().await.0, Some(1009));

    let mut raw = app.raw("/ws").await;
    raw.send_frame(OP_TEXT, &big[..3000], false).await;
    raw.send_frame(OP_CONTINUATION, &big[..1500], true).await;
    assert_eq!(raw.read_until_close().await.0, Some(1009));

    // At the limit exactly, the message is read (and refused as JSON, not as size).
    let mut client = app.connect("/ws").await;
    client.send_text(&"x".repeat(4096)).await;
    assert!(matches!(client.recv().await, ServerMessage::Error { .. }));
    app.stop().await;
}

/// Text that is not valid UTF-8 closes with 1007, even when split across fragments.
#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let app = TestApp::spawn().await;
    let mut raw = app.raw("/ws").await;
    raw.send_frame(OP_TEXT, b"{\"op\":\"\xff\"}", true).await;
    assert_eq!(raw.read_until_close().await.0, Some(1007));

    let mut raw = app.raw("/ws").await;
    raw.send_frame(OP_TEXT, b"caf\xC3", false).await;
    raw.send_frame(OP_CONTINUATION, b"\x28", true).await;
    assert_eq!(raw.read_until_close().await.0, Some(1007));
    app.stop().await;
}

/// Client Pings are answered with Pongs carrying the same payload.
#[tokio::test]
async fn client_ping_gets_pong() {
    let app = TestApp::spawn().await;
    let mut raw = app.raw("/ws").await;
    raw.send_frame(OP_PING, b"are you there", true).await;
    loop {
        let (opcode, payload) = raw.read_frame().await.expect("a frame");
        if opcode == OP_PONG {
            assert_eq!(payload, b"are you there");
            break;
        }
    }
    app.stop().await;
}

fn short_heartbeat() -> ticker::settings::Settings {
    let mut settings = support::test_settings();
    settings.ws.heartbeat_interval_ms = ticker::settings::Millis::new(100);
    settings.ws.idle_timeout_ms = ticker::settings::Millis::new(350);
    settings
}

/// A client that never answers is pinged on the heartbeat, then closed with 4408 "idle timeout"
/// and its TCP connection closed, without the server waiting for its Close.
#[tokio::test]
async fn silent_client_is_dropped_with_4408() {
    let app = TestApp::spawn_with(short_heartbeat()).await;
    let mut raw = app.raw("/ws").await;
    let started = std::time::Instant::now();
    let (code, before) = raw.read_until_close().await;
    assert_eq!(code, Some(4408));
    let pings = before.iter().filter(|&&op| op == OP_PING).count();
    assert!(
        pings >= 2,
        "pinged on the heartbeat before the close: {before:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "not before the idle timeout"
    );
    assert!(
        raw.at_eof().await,
        "TCP closed without waiting for the client's Close"
    );
    app.stop().await;
}

/// A client that answers the server's Pings (Pongs only, nothing else) stays connected well past
/// the idle timeout, and gets its updates all along.
#[tokio::test]
async fn answering_client_stays_connected() {
    let app = TestApp::spawn_with(short_heartbeat()).await;
    let mut raw = app.raw("/ws?symbols=AAPL").await;
    let until = std::time::Instant::now() + Duration::from_millis(1200);
    let (mut pings, mut texts) = (0, 0);
    while std::time::Instant::now() < until {
        let (opcode, payload) = raw.read_frame().await.expect("still connected");
        match opcode {
            OP_PING => {
                pings += 1;
                raw.send_frame(OP_PONG, &payload, true).await;
            }
            OP_TEXT => texts += 1,
            other => panic!("unexpected opcode {other}"),
        }
    }
    assert!(pings >= 8, "pinged every 100 ms: {pings}");
    assert!(texts > 20, "updates kept flowing: {texts}");
    app.stop().await;
}

/// On shutdown every session gets Close 1001, `/readyz` turns 503 and the server stops.
#[tokio::test]
async fn shutdown_closes_sessions_with_1001() {
    let app = TestApp::spawn().await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(app.connect("/ws?symbols=*").await);
    }
    let mut raw = app.raw("/ws").await;
    app.shutdown.cancel();
    for client in &mut clients {
        assert_eq!(client.recv_close().await, 1001);
    }
    assert_eq!(raw.read_until_close().await.0, Some(1001));
    let ready = reqwest::get(app.url("/readyz"))
        .await
        .expect("still answering in the grace period");
    assert_eq!(ready.status(), 503);
    let upgrade = reqwest::Client::new()
        .get(app.url("/ws"))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("still answering in the grace period");
    assert_eq!(upgrade.status(), 503, "no new sessions once shutdown began");
    assert_eq!(upgrade.headers()["retry-after"], "1");
    app.stop().await;
}

/// A client that drops its TCP connection without a Close, with a FIN or a reset, is counted
/// as lost (`code="none"`), not as a protocol error: there is nobody left to send 1002 to.
#[tokio::test]
async fn dropped_connection_counts_as_lost() {
    let app = TestApp::spawn().await;
    let fin = app.raw("/ws?symbols=*").await;
    let mut reset = app.raw("/ws?symbols=*").await;
    reset.set_linger_zero();
    app.until_sessions(2).await;
    drop(fin);
    drop(reset);
    app.until_no_sessions().await;
    assert_eq!(
        app.metric(r#"ticker_connections_closed_total{code="none"}"#)
            .await,
        2.0
    );
    assert_eq!(
        app.metric(r#"ticker_connections_closed_total{code="1002"}"#)
            .await,
        0.0
    );
    app.stop().await;
}
