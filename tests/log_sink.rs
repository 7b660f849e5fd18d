//! A broken log sink costs log lines, never the service: the real binary with stderr closed
//! before it starts, or with the reader of its stderr gone while it runs, serves every session,
//! counts the lines it could not write, and still stops on SIGTERM with exit code 0.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{ServerProcess, connect_ws};
use ticker::protocol::ServerMessage;

/// How long the process may take to exit after SIGTERM: the default grace (500 ms) and
/// shutdown timeout (3 s), and a second to write out its log.
const EXIT_LIMIT: Duration = Duration::from_millis(500 + 3000 + 1000);

/// A free port on loopback (the server cannot tell us its port when it cannot log).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn get(addr: SocketAddr, path: &str) -> reqwest::Response {
    reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let text = get(addr, "/metrics").await.text().await.expect("a body");
    support::metric_value(&text, series)
}

/// Waits until the server answers `/healthz`.
async fn until_serving(addr: SocketAddr) {
    let started = Instant::now();
    while reqwest::get(format!("http://{addr}/healthz"))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < support::PATIENCE,
            "the server never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A session works end to end: welcome, then quotes for `*`.
async fn session_works(addr: SocketAddr) -> support::Client {
    let (mut client, _) = connect_ws(addr, "/ws?symbols=*").await;
    while !matches!(client.recv().await, ServerMessage::Quotes { .. }) {}
    client
}

/// stderr closed before start (`exec 2>&-`): the server serves sessions and SIGTERM ends it
/// with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_closed_before_start() {
    let port = free_port();
    let mut command = Command::new("sh");
    command.args(["-c", "exec 2>&-; exec \"$0\"", env!("CARGO_BIN_EXE_ticker")]);
    support::with_test_env(&mut command, &[]);
    let child = command
        .env("TICKER__SERVER__PORT", port.to_string())
        .stderr(Stdio::inherit()) // replaced by the closed descriptor in `sh`
        .spawn()
        .expect("sh starts");
    let mut server = ServerProcess::adopt(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    until_serving(addr).await;

    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(session_works(addr).await);
    }
    support::signal(server.id(), "TERM");
    for client in &mut clients {
        assert_eq!(client.recv_close().await, 1001);
    }
    assert_eq!(
        support::exit_code_within(&mut server, EXIT_LIMIT).await,
        Some(0)
    );
}

/// The reader of stderr goes away after start: new sessions still get their welcome and
/// quotes (no session dies logging), the lost lines are counted, and SIGTERM still ends the
/// process with exit code 0 within the shutdown timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_reader_gone_at_run_time() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ticker"));
    support::with_test_env(&mut command, &[]);
    let child = command
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut server = ServerProcess::adopt(child);
    let stderr = server.take_stderr().expect("stderr is piped");
    let addr = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| support::listening_addr(&line))
        .expect("the server logs its address");
    // The reader (and with it the pipe's only read end) is gone here: writes fail with EPIPE.

    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(session_works(addr).await);
    }
    let mut leaving = clients.pop().expect("five clients");
    leaving.close(None).await;
    let started = Instant::now();
    while metric(addr, r#"ticker_connections_closed_total{code="1005"}"#).await < 1.0 {
        assert!(
            started.elapsed() < support::PATIENCE,
            "the session was never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        metric(addr, "ticker_log_lines_dropped_total").await > 0.0,
        "the session log lines that could not be written are counted"
    );
    assert_eq!(
        metric(addr, r#"ticker_connections_closed_total{code="panic"}"#).await,
        0.0
    );

    let stop = Instant::now();
    support::signal(server.id(), "TERM");
    for client in &mut clients {
        assert_eq!(client.recv_close().await, 1001);
    }
    assert_eq!(
        support::exit_code_within(&mut server, EXIT_LIMIT).await,
        Some(0)
    );
    assert!(stop.elapsed() < EXIT_LIMIT);
}
