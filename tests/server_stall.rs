//! A stall of the server itself (here SIGSTOP, like a VM migration or a starved host) is not
//! the clients' silence: after the real binary resumes, every client that answered its pings
//! keeps its connection and its updates, with no seq gap, and only a client that stays silent
//! after the resume is closed with 4408.

mod support;

use std::time::{Duration, Instant};

use support::{OP_CLOSE, OP_PING, OP_PONG, RawClient};
use tokio::sync::oneshot;

const IDLE_MS: u64 = 1500;
const PAUSE: Duration = Duration::from_secs(3);

/// A raw client that answers pings until `resumed` fires, then never again; returns the close
/// code it got and how long after the resume it came.
async fn silent_after_resume(
    mut raw: RawClient,
    mut resumed: oneshot::Receiver<Instant>,
) -> (Option<u16>, Duration) {
    let mut resumed_at = None;
    loop {
        let frame = tokio::select! {
            frame = raw.read_frame() => frame,
            at = &mut resumed, if resumed_at.is_none() => {
                resumed_at = Some(at.expect("the test sends the resume time"));
                continue;
            }
        };
        let (opcode, payload) = frame.expect("the server closes with a Close frame");
        match opcode {
            OP_PING if resumed_at.is_none() => raw.send_frame(OP_PONG, &payload, true).await,
            OP_CLOSE => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                let resumed_at = resumed_at.expect("not closed before the resume");
                return (code, resumed_at.elapsed());
            }
            _ => {}
        }
    }
}

/// SIGSTOP for twice the idle timeout, then SIGCONT: clients that answered every ping survive
/// and receive every update; one that stays silent after the resume is closed with 4408 one
/// idle timeout later, not at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_of_the_server_closes_only_clients_silent_after_it() {
    let idle = IDLE_MS.to_string();
    let (mut server, addr) = support::start_server(&[
        ("TICKER__WS__IDLE_TIMEOUT_MS", idle.as_str()),
        ("TICKER__WS__HEARTBEAT_INTERVAL_MS", "500"),
        ("TICKER__FEED__TICK_INTERVAL_MS", "50"),
    ])
    .await;
    let pid = server.id();
    let mut watchers = Vec::new();
    let mut done_senders = Vec::new();
    for _ in 0..3 {
        let (client, _) = support::connect_ws(addr, "/ws?symbols=*").await;
        let (done, done_at) = oneshot::channel();
        done_senders.push(done);
        watchers.push(tokio::spawn(support::watch_gapless(client, done_at)));
    }
    let (resumed, resumed_rx) = oneshot::channel();
    let silent = tokio::spawn(silent_after_resume(
        RawClient::connect(addr, "/ws?symbols=AAPL").await,
        resumed_rx,
    ));
    // Several heartbeats answered before the pause.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    support::signal(pid, "STOP");
    tokio::time::sleep(PAUSE).await;
    // Stamped before the signal: the server cannot run again before it, and a stamp taken after
    // `kill` returns can be late by the time that takes (a close exactly one idle timeout after
    // the real resume once measured 1.4993 s from it).
    let resumed_at = Instant::now();
    support::signal(pid, "CONT");
    resumed.send(resumed_at).expect("the silent client waits");

    let (code, after) = silent.await.expect("the silent client task");
    assert_eq!(code, Some(4408));
    assert!(
        after >= Duration::from_millis(IDLE_MS),
        "closed {after:?} after the resume: it had a whole idle timeout to answer"
    );
    // The others kept receiving all along: every update, up to a quote after that close.
    let end_ms = ticker::clock::now_ms() + 500;
    for done in done_senders {
        done.send(end_ms).expect("the watcher waits");
    }
    for watcher in watchers {
        let (frames, symbols) = watcher
            .await
            .expect("no client missed an update or was closed");
        assert!(frames > 0 && symbols > 0);
    }
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a body");
    assert_eq!(
        support::metric_value(&metrics, "ticker_idle_closes_total"),
        1.0
    );
    assert!(support::metric_value(&metrics, "ticker_session_stalls_total") >= 4.0);
    support::signal(pid, "TERM");
    assert_eq!(
        support::exit_code_within(&mut server, support::PATIENCE).await,
        Some(0)
    );
}
