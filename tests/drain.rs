//! The drain window of a rolling deploy, on the real binary: after SIGTERM `/readyz` and new
//! upgrades answer 503 at once, every session is told `{"type":"status","server":"draining",
//! "reconnect_after_ms":N}` and closed with 1001 about N ms later, N spread over
//! `server.drain_ms`; a client that follows the advice reconnects to the other node.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{Client, Event, ServerProcess, connect_first, connect_ws, signal, start_server};
use ticker::protocol::{ServerMessage, ServerState};
use tokio_tungstenite::tungstenite::Error as WsError;

const CLIENTS: usize = 40;
const DRAIN_MS: u64 = 3000;

/// A server with this drain window and node id.
async fn server(node: &str) -> (ServerProcess, SocketAddr) {
    start_server(&[
        ("TICKER__SERVER__DRAIN_MS", &DRAIN_MS.to_string()),
        ("TICKER__SERVER__NODE_ID", node),
    ])
    .await
}

/// What one client saw of the drain: the advice, and when (after the signal) its Close came.
#[derive(Debug)]
struct Drained {
    reconnect_after_ms: u64,
    closed_after: Duration,
    code: u16,
}

/// Reads until the draining notice, then until the Close.
async fn drained(mut client: Client, signalled: Instant) -> Drained {
    let reconnect_after_ms = loop {
        match client.recv().await {
            ServerMessage::Status {
                server: Some(ServerState::Draining),
                reconnect_after_ms: Some(ms),
                ..
            } => break ms,
            ServerMessage::Subscribed { .. }
            | ServerMessage::Snapshot { .. }
            | ServerMessage::Quotes { .. } => {}
            other => panic!("expected quotes or the draining notice, got {other:?}"),
        }
    };
    assert!(reconnect_after_ms <= DRAIN_MS, "{reconnect_after_ms}");
    let code = client.recv_close().await;
    Drained {
        reconnect_after_ms,
        closed_after: signalled.elapsed(),
        code,
    }
}

/// 40 sessions and SIGTERM: the node leaves the load balancer at once (`/readyz` 503, upgrades
/// 503), each session gets the notice and then its 1001 when the notice said, and the closes
/// span most of the 3 s window instead of one instant; then the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_spreads_closes_over_the_drain_window() {
    let (mut server, addr) = server("a").await;
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(connect_ws(addr, "/ws?symbols=AAPL").await.0);
    }
    let signalled = Instant::now();
    signal(server.id(), "TERM");
    let waiting: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(drained(client, signalled)))
        .collect();

    support::wait_unready(addr).await;
    match tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("a draining node takes no new session: {other:?}"),
    }
    assert!(
        signalled.elapsed() < Duration::from_millis(DRAIN_MS / 2),
        "out of the load balancer early in the window"
    );

    let mut seen = Vec::with_capacity(CLIENTS);
    for handle in waiting {
        seen.push(handle.await.expect("client task"));
    }
    for d in &seen {
        assert_eq!(d.code, 1001, "{d:?}");
        let advised = Duration::from_millis(d.reconnect_after_ms);
        assert!(
            d.closed_after + Duration::from_millis(50) >= advised
                && d.closed_after <= advised + Duration::from_millis(1000),
            "closed when the notice said: {d:?}"
        );
    }
    let first = seen.iter().map(|d| d.closed_after).min().unwrap();
    let last = seen.iter().map(|d| d.closed_after).max().unwrap();
    eprintln!("closes from {first:?} to {last:?} after SIGTERM, window {DRAIN_MS} ms");
    assert!(
        last - first >= Duration::from_millis(DRAIN_MS / 2),
        "closes spread over the window, not at once: {first:?}..{last:?}"
    );
    assert_eq!(
        support::exit_code_within(&mut server, Duration::from_millis(DRAIN_MS + 5000)).await,
        Some(0)
    );
}

/// Two nodes; a client whose list of endpoints names the draining node first follows the
/// notice (waits `reconnect_after_ms`, sees its Close) and ends up on the other node, because
/// the draining one refuses it from the signal on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_draining_node_moves_to_the_other() {
    let (mut a, addr_a) = server("a").await;
    let (_b, addr_b) = server("b").await;
    let endpoints = [addr_a, addr_b];
    let (mut client, welcome, _) = connect_first(&endpoints, "/ws?symbols=AAPL").await;
    assert!(matches!(&welcome, ServerMessage::Welcome { node, .. } if node == "a"));

    signal(a.id(), "TERM");
    let advised = loop {
        match client.recv().await {
            ServerMessage::Status {
                server: Some(ServerState::Draining),
                reconnect_after_ms: Some(ms),
                ..
            } => break Duration::from_millis(ms),
            _ => continue,
        }
    };
    let noticed = Instant::now();
    // The advice: reconnect once the session is closed, about `advised` from now.
    loop {
        match client.next_event().await {
            Event::Message(_) => continue,
            Event::Close(frame) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1001));
                break;
            }
            Event::Ended => panic!("the session ended without its Close"),
        }
    }
    tokio::time::sleep(advised.saturating_sub(noticed.elapsed())).await;

    // Node a is still draining or already gone; either way the client lands on b.
    let (mut moved, welcome, refused) = connect_first(&endpoints, "/ws?symbols=AAPL").await;
    assert!(
        matches!(&welcome, ServerMessage::Welcome { node, .. } if node == "b"),
        "{welcome:?}"
    );
    assert_eq!(refused.len(), 1, "node a refused: {refused:?}");
    assert!(matches!(
        moved.recv_control().await,
        ServerMessage::Subscribed { .. }
    ));
    assert_eq!(
        support::exit_code_within(&mut a, Duration::from_millis(DRAIN_MS + 5000)).await,
        Some(0)
    );
}
