//! Every connection bounded: plain HTTP connections (not only WebSocket sessions) count against
//! the limits at accept and have a bounded life, a full server answers 503 at once and keeps
//! answering health checks and scrapes, and the limits fit the open-file limit.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use support::{
    Answer, Client, PATIENCE, RawHttp, TestApp, connect_ws, connect_ws_from, metric_value,
    start_server_with_file_limit, test_settings,
};
use ticker::protocol::ServerMessage;

/// A second loopback address: a client with a per-address budget of its own.
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn receives_quotes(client: &mut Client) {
    loop {
        if let ServerMessage::Quotes { quotes } = client.recv().await
            && !quotes.is_empty()
        {
            return;
        }
    }
}

/// One series of `/metrics`, read over `conn` (a connection held open, so that reading does
/// not change what is counted).
async fn metric(conn: &mut RawHttp, series: &str) -> f64 {
    let answer = conn.get("/metrics").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    metric_value(&answer.body, series)
}

/// Waits until `series` reads `value`.
async fn until_metric(conn: &mut RawHttp, series: &str, value: f64) {
    let started = Instant::now();
    while metric(conn, series).await != value {
        assert!(
            started.elapsed() < PATIENCE,
            "{series} never reached {value}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_refused(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.json()["error"], code, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    assert!(answer.header("retry-after").is_some(), "{answer:?}");
}

/// A request whose body never ends (chunked, or shorter than its `Content-Length`) is answered
/// with `Connection: close` and its connection closed at once, its body never read; before,
/// it held the connection for ever.
#[tokio::test]
async fn request_bodies_are_never_read() {
    let app = TestApp::spawn().await;
    let mut admin = RawHttp::connect(app.addr).await;
    for request in [
        "GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "GET /api/quotes HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    ] {
        let started = Instant::now();
        let mut conn = RawHttp::connect(app.addr).await;
        conn.send(request.as_bytes()).await;
        let answer = conn.answer().await;
        assert!(answer.status == 200 || answer.status == 405, "{answer:?}");
        assert_eq!(answer.header("connection"), Some("close"), "{request}");
        assert!(conn.until_closed().await.is_empty(), "{request}");
        assert!(started.elapsed() < Duration::from_secs(2), "{request}");
    }
    let closes = "ticker_http_connection_closes_total{reason=\"request_body\"}";
    assert_eq!(metric(&mut admin, closes).await, 3.0);
    app.stop().await;
}

/// A client that pipelines requests and never reads the answers is dropped once
/// `server.request_timeout_ms` passes with its writes blocked; a keep-alive client that reads
/// its answers and then idles past that time keeps its connection.
#[tokio::test]
async fn unread_answers_are_dropped_after_the_request_timeout() {
    let mut settings = test_settings();
    settings.server.request_timeout_ms = ticker::settings::Millis::new(1000);
    settings.server.send_buffer_bytes = 4096;
    let app = TestApp::spawn_with(settings).await;
    let mut admin = RawHttp::connect(app.addr).await;

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut hog = RawHttp::over(socket.connect(app.addr).await.unwrap());
    // 64 dashboards of about 4 KB each, far more than both socket buffers hold.
    let request = "GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(64);
    hog.send(request.as_bytes()).await;
    let closes = "ticker_http_connection_closes_total{reason=\"request_timeout\"}";
    until_metric(&mut admin, closes, 1.0).await;
    let read = hog.until_closed().await;
    let answers = String::from_utf8_lossy(&read)
        .matches("HTTP/1.1 200")
        .count();
    assert!(answers < 64, "all {answers} answers arrived");

    // The admin connection has been idle between its scrapes for longer than the timeout.
    assert_eq!(admin.get("/healthz").await.status, 200);
    assert_eq!(metric(&mut admin, closes).await, 1.0);
    app.stop().await;
}

/// An idle keep-alive connection is closed after `server.keep_alive_ms`, and the answer to
/// request number `server.max_requests_per_connection` says `Connection: close` and ends it.
#[tokio::test]
async fn keep_alive_and_request_count_bound_plain_connections() {
    let mut settings = test_settings();
    settings.server.keep_alive_ms = ticker::settings::Millis::new(1000);
    settings.server.max_requests_per_connection = 3;
    let app = TestApp::spawn_with(settings).await;

    let mut idle = RawHttp::connect(app.addr).await;
    assert_eq!(idle.get("/healthz").await.status, 200);
    let started = Instant::now();
    assert!(idle.until_closed().await.is_empty());
    let waited = started.elapsed();
    // actix reads this deadline from a clock that ticks every 500 ms.
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );

    let mut busy = RawHttp::connect(app.addr).await;
    for _ in 0..2 {
        let answer = busy.get("/healthz").await;
        assert_eq!(answer.header("connection"), None, "{answer:?}");
    }
    let last = busy.get("/api/symbols").await;
    assert_eq!(last.status, 200);
    assert_eq!(last.header("connection"), Some("close"), "{last:?}");
    assert!(busy.until_closed().await.is_empty());
    app.stop().await;
}

/// Plain connections count against `server.max_connections_per_ip` at accept, sessions
/// included once: past it, that address gets `429 too_many_connections_from_ip` at once, while
/// health checks and scrapes from another address are answered and its session is served.
#[tokio::test]
async fn the_per_address_budget_is_kept_at_accept() {
    let mut settings = test_settings();
    settings.server.max_connections_per_ip = 3;
    let app = TestApp::spawn_with(settings).await;
    let mut admin = RawHttp::connect(app.addr).await;
    let mut session = connect_ws_from(OTHER, app.addr, "/ws?symbols=*").await;
    let _held: Vec<RawHttp> = vec![
        RawHttp::connect_from(OTHER, app.addr).await,
        RawHttp::connect_from(OTHER, app.addr).await,
    ];
    // Connected is not yet accepted: wait until the server counts all four.
    until_metric(&mut admin, "ticker_tcp_connections_open", 4.0).await;

    let mut excess = RawHttp::connect_from(OTHER, app.addr).await;
    excess
        .send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert_refused(&excess.answer().await, 429, "too_many_connections_from_ip");
    assert!(excess.until_closed().await.is_empty());

    assert_eq!(admin.get("/healthz").await.status, 200);
    let refused = "ticker_tcp_connections_refused_total{reason=\"too_many_connections_from_ip\"}";
    assert_eq!(metric(&mut admin, refused).await, 1.0);
    receives_quotes(&mut session).await;
    app.stop().await;
}

/// With sessions at `server.max_connections`, an upgrade gets 503 while health checks and
/// scrapes are answered from the headroom; with every connection taken
/// (`max_connections + http_headroom`), a new one is answered 503 at once, and the open ones
/// are served.
#[tokio::test]
async fn a_full_server_answers_503_and_stays_observable() {
    let mut settings = test_settings();
    settings.server.max_connections = Some(2);
    settings.server.http_headroom = Some(2);
    let app = TestApp::spawn_with(settings).await;
    let mut sessions = vec![
        app.connect("/ws?symbols=*").await,
        app.connect("/ws?symbols=*").await,
    ];
    let mut admin = RawHttp::connect(app.addr).await;
    assert_eq!(metric(&mut admin, "ticker_connections_limit").await, 2.0);
    assert_eq!(
        metric(&mut admin, "ticker_tcp_connections_limit").await,
        4.0
    );
    until_metric(&mut admin, "ticker_tcp_connections_open", 3.0).await;

    let upgrade = app.try_connect("/ws", &[]).await.err().expect("refused");
    assert_eq!(upgrade.status, 503);
    assert_eq!(upgrade.body["error"], "too_many_connections");
    assert_eq!(admin.get("/healthz").await.status, 200);
    until_metric(&mut admin, "ticker_tcp_connections_open", 3.0).await;

    let held = RawHttp::connect(app.addr).await;
    until_metric(&mut admin, "ticker_tcp_connections_open", 4.0).await;
    let mut excess = RawHttp::connect(app.addr).await;
    excess
        .send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert_refused(&excess.answer().await, 503, "too_many_connections");
    let refused = "ticker_tcp_connections_refused_total{reason=\"too_many_connections\"}";
    assert_eq!(metric(&mut admin, refused).await, 1.0);
    for session in &mut sessions {
        receives_quotes(session).await;
    }

    drop(held);
    until_metric(&mut admin, "ticker_tcp_connections_open", 3.0).await;
    assert_eq!(
        RawHttp::connect(app.addr).await.get("/readyz").await.status,
        200
    );
    app.stop().await;
}

/// Under an open-file limit of 300 the binary lowers its limits to fit, with room for health
/// checks: sessions past the derived limit get 503 while `/healthz` and `/metrics` answer, and
/// connections past the total are answered 503 at once instead of failing to be accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_fit_the_open_file_limit() {
    let (_server, addr) = start_server_with_file_limit(
        300,
        &[
            ("TICKER__SERVER__HANDSHAKE_TIMEOUT_MS", "60000"),
            ("TICKER__SERVER__KEEP_ALIVE_MS", "60000"),
            ("TICKER__WS__HEARTBEAT_INTERVAL_MS", "30000"),
            ("TICKER__WS__IDLE_TIMEOUT_MS", "60000"),
        ],
    )
    .await;
    let mut admin = RawHttp::connect(addr).await;
    let sessions = metric(&mut admin, "ticker_connections_limit").await as usize;
    let total = metric(&mut admin, "ticker_tcp_connections_limit").await as usize;
    assert!(
        sessions > 0 && sessions < total && total < 300,
        "{sessions} sessions, {total} connections"
    );

    let mut clients = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        clients.push(connect_ws(addr, "/ws?symbols=AAPL").await.0);
    }
    let upgrade = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
    match upgrade {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(
        RawHttp::connect(addr).await.get("/healthz").await.status,
        200
    );
    let open = "ticker_tcp_connections_open";
    until_metric(&mut admin, open, (sessions + 1) as f64).await;

    let mut held = Vec::new();
    for _ in sessions + 1..total {
        held.push(RawHttp::connect(addr).await);
    }
    until_metric(&mut admin, open, total as f64).await;
    for _ in 0..3 {
        let mut excess = RawHttp::connect(addr).await;
        excess
            .send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        assert_refused(&excess.answer().await, 503, "too_many_connections");
    }
    assert_eq!(admin.get("/healthz").await.status, 200);

    drop(held);
    until_metric(&mut admin, open, (sessions + 1) as f64).await;
    assert_eq!(
        RawHttp::connect(addr).await.get("/healthz").await.status,
        200
    );
    receives_quotes(&mut clients[0]).await;
}

/// The warnings in a binary's JSON log, once it has logged `listening`.
async fn warnings(server: &support::ServerProcess) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    while !server.logs().iter().any(|l| l.contains("\"listening\"")) {
        assert!(Instant::now() < deadline, "no `listening` line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server
        .logs()
        .into_iter()
        .filter(|line| line.contains("\"level\":\"WARN\""))
        .collect()
}

/// A default start prints no warning, whatever the open-file limit (here this machine's, and
/// 300): the connection limits are derived from it. A `server.max_connections` set explicitly
/// that does not fit is lowered with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_limit_set_that_does_not_fit_warns() {
    let (server, _) = support::start_server(&[]).await;
    assert_eq!(warnings(&server).await, Vec::<String>::new());
    drop(server);
    let (server, addr) = start_server_with_file_limit(300, &[]).await;
    assert_eq!(warnings(&server).await, Vec::<String>::new());
    let mut admin = RawHttp::connect(addr).await;
    assert!(metric(&mut admin, "ticker_connections_limit").await > 0.0);
    drop(server);
    let (server, _) =
        start_server_with_file_limit(300, &[("TICKER__SERVER__MAX_CONNECTIONS", "20000")]).await;
    let warned = warnings(&server).await;
    assert!(
        warned.len() == 1 && warned[0].contains("connection limits lowered"),
        "{warned:#?}"
    );
}
